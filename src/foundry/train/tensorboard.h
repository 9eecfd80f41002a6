// TensorBoardWriter: scalar summaries in a TensorBoard event file, written without TensorFlow.
//
// File: <run_dir>/events.out.tfevents.<unix seconds, 10 digits>.<hostname> (TensorFlow's
// EventsWriter naming, tensorflow/core/util/events_writer.cc), a sequence of TFRecords
// (tensorflow/core/lib/io/record_writer.cc):
//   u64 length (little-endian) | u32 masked_crc32c(length bytes) | data | u32 masked_crc32c(data)
//   masked_crc32c(x) = ((c >> 15) | (c << 17)) + 0xa282ead8, c = crc32c(x)
// Each record's data is a serialised tensorflow.Event (tensorflow/core/util/event.proto):
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; }
// The first record holds file_version = "brain.Event:2"; every add_scalar is one more Event.
// Fields at their proto3 default (step 0) are left out, as protobuf does, so the bytes equal
// those of TensorBoard's own Python writer (checked in tests/train/tensorboard_test.cpp).
// TensorBoard (its event_accumulator and the scalars dashboard) reads these directly.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

namespace foundry {

class TensorBoardWriter {
 public:
  // Creates run_dir (and its parents) when missing and a new event file inside it; when a file
  // of that name already exists (two writers in the same second) a ".N" suffix keeps them apart.
  explicit TensorBoardWriter(const std::string& run_dir);
  ~TensorBoardWriter();  // flushes and closes (errors are ignored here: call flush() to see them)
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // Appends one scalar (stored as float32, as TensorBoard's simple_value) at `step`, stamped
  // with the current wall time (or `wall_time`, seconds since the Unix epoch, when given).
  void add_scalar(std::string_view tag, double value, int64_t step);
  void add_scalar(std::string_view tag, double value, int64_t step, double wall_time);
  // Makes everything written so far visible to readers (TensorBoard polls the file).
  void flush();

  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& data);

  struct Closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::string path_;
  std::unique_ptr<std::FILE, Closer> file_;
};

namespace tfrecord {
// TFRecord's CRC mask (record_writer.cc / crc32c.h Mask): rotate right by 15, add a constant.
uint32_t mask_crc(uint32_t crc);
// One framed record: length, masked CRC of the length, data, masked CRC of the data.
std::string frame(std::string_view data);
}  // namespace tfrecord

namespace tfevent {
// Serialised tensorflow.Event messages, fields in field-number order (as protobuf writes them).
std::string file_version_event(double wall_time);  // step 0, file_version "brain.Event:2"
std::string scalar_event(std::string_view tag, float value, int64_t step, double wall_time);
}  // namespace tfevent

}  // namespace foundry
