#!/usr/bin/env python3
"""Manual check that real TensorBoard reads foundry's event files (src/foundry/train/tensorboard.*).

Needs the `tensorboard` package (pip install tensorboard), which foundry's build and tests never
use; this script is run by hand, not in CI.

    python3 tools/ref/check_tensorboard_events.py RUN_DIR_OR_EVENT_FILE
        loads the file(s) with TensorBoard's EventAccumulator and prints every scalar series
    python3 tools/ref/check_tensorboard_events.py --golden
        prints the bytes TensorBoard's own writer produces for the events that
        tests/train/tensorboard_test.cpp (BytesMatchTensorBoardsOwnWriter) compares against
"""
import io
import os
import sys


def golden_hex():
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    def scalar(wall_time, step, tag, value):
        value = summary_pb2.Summary.Value(tag=tag, simple_value=value)
        return event_pb2.Event(wall_time=wall_time, step=step, summary=summary_pb2.Summary(value=[value]))

    buf = io.BytesIO()
    writer = RecordWriter(buf)
    writer.write(event_pb2.Event(wall_time=1700000000.25, file_version="brain.Event:2").SerializeToString())
    writer.write(scalar(1700000001.5, 42, "train/loss", 3.25).SerializeToString())
    writer.write(scalar(1700000002.0, -3, "lr", 1e-3).SerializeToString())
    return buf.getvalue().hex()


def main(argv):
    if len(argv) == 2 and argv[1] == "--golden":
        print(golden_hex())
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    from tensorboard.backend.event_processing import event_accumulator

    path = argv[1]
    files = [path] if os.path.isfile(path) else sorted(
        os.path.join(path, f) for f in os.listdir(path) if "tfevents" in f)
    if not files:
        print(f"no event files in {path}", file=sys.stderr)
        return 1
    for f in files:
        acc = event_accumulator.EventAccumulator(f, size_guidance={event_accumulator.SCALARS: 0})
        acc.Reload()
        print(f"{f}:")
        print(f"  file_version: {acc.file_version}")
        tags = acc.Tags()["scalars"]
        print(f"  scalar tags: {tags}")
        for tag in tags:
            events = acc.Scalars(tag)
            print(f"  {tag}: {len(events)} values")
            for e in events:
                print(f"    step {e.step:>6}  value {e.value!r:<24}  wall_time {e.wall_time:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
