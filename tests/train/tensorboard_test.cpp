#include "foundry/train/tensorboard.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "testing.h"

namespace foundry {
namespace {

namespace fs = std::filesystem;

// ---- an independent minimal TFRecord + protobuf reader ----------------------------------------
// Written from the format descriptions (record_writer.cc, protobuf encoding guide), sharing no
// code with the writer: a bitwise CRC-32C, its own varint and fixed-width decoding.

uint32_t bitwise_crc32c(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}
uint32_t masked(uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }
uint64_t read_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Splits a TFRecord file into its records, checking both CRCs of each.
std::vector<std::string> read_records(const std::string& bytes) {
  std::vector<std::string> out;
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t pos = 0;
  while (pos < bytes.size()) {
    EXPECT_LE(pos + 12, bytes.size()) << "truncated record header";
    if (pos + 12 > bytes.size()) break;
    const uint64_t len = read_le(p + pos, 8);
    EXPECT_EQ(read_le(p + pos + 8, 4), masked(bitwise_crc32c(p + pos, 8))) << "length CRC at " << pos;
    EXPECT_LE(pos + 12 + len + 4, bytes.size()) << "truncated record";
    if (pos + 12 + len + 4 > bytes.size()) break;
    EXPECT_EQ(read_le(p + pos + 12 + len, 4), masked(bitwise_crc32c(p + pos + 12, len))) << "data CRC at " << pos;
    out.emplace_back(bytes.substr(pos + 12, len));
    pos += 12 + len + 4;
  }
  return out;
}

// One protobuf field: its number, wire type, and value (varint, fixed bits or bytes).
struct Field {
  int number = 0;
  int wire = 0;
  uint64_t u = 0;
  std::string bytes;
};

std::vector<Field> parse_message(const std::string& m) {
  std::vector<Field> fields;
  size_t pos = 0;
  auto varint = [&]() {
    uint64_t v = 0;
    for (int shift = 0; pos < m.size(); shift += 7) {
      const auto b = static_cast<uint8_t>(m[pos++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    ADD_FAILURE() << "truncated varint";
    return v;
  };
  while (pos < m.size()) {
    Field f;
    const uint64_t key = varint();
    f.number = static_cast<int>(key >> 3);
    f.wire = static_cast<int>(key & 7);
    const auto* p = reinterpret_cast<const uint8_t*>(m.data());
    switch (f.wire) {
      case 0: f.u = varint(); break;
      case 1: f.u = read_le(p + pos, 8); pos += 8; break;
      case 5: f.u = read_le(p + pos, 4); pos += 4; break;
      case 2: {
        const uint64_t n = varint();
        f.bytes = m.substr(pos, n);
        pos += n;
        break;
      }
      default: ADD_FAILURE() << "unexpected wire type " << f.wire; return fields;
    }
    EXPECT_LE(pos, m.size()) << "field " << f.number << " runs past the message";
    fields.push_back(f);
  }
  return fields;
}

// The decoded Event, with checks that every field has the number and wire type of event.proto.
struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::vector<std::pair<std::string, float>> values;  // Summary.Value (tag, simple_value)
};

Event decode_event(const std::string& data) {
  Event e;
  for (const Field& f : parse_message(data)) {
    switch (f.number) {
      case 1: EXPECT_EQ(f.wire, 1); e.wall_time = std::bit_cast<double>(f.u); break;
      case 2: EXPECT_EQ(f.wire, 0); e.step = static_cast<int64_t>(f.u); break;
      case 3: EXPECT_EQ(f.wire, 2); e.file_version = f.bytes; break;
      case 5:
        EXPECT_EQ(f.wire, 2);
        for (const Field& v : parse_message(f.bytes)) {
          EXPECT_EQ(v.number, 1);
          EXPECT_EQ(v.wire, 2);
          std::string tag;
          std::optional<float> value;
          for (const Field& x : parse_message(v.bytes)) {
            if (x.number == 1 && x.wire == 2) tag = x.bytes;
            else if (x.number == 2 && x.wire == 5) value = std::bit_cast<float>(static_cast<uint32_t>(x.u));
            else ADD_FAILURE() << "unexpected Summary.Value field " << x.number << " wire " << x.wire;
          }
          EXPECT_TRUE(value.has_value()) << "no simple_value for tag " << tag;
          e.values.emplace_back(tag, value.value_or(0.f));
        }
        break;
      default: ADD_FAILURE() << "unexpected Event field " << f.number;
    }
  }
  return e;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::string fresh_dir(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / (name + "_" + std::to_string(getpid()));  // unique per process
  fs::remove_all(d);
  return d.string();
}

// ---- tests ------------------------------------------------------------------------------------

TEST(TensorBoardWriter, EventFileParsesBackWithValidCrcsAndFields) {
  const std::string dir = fresh_dir("tb_roundtrip");
  const double before = static_cast<double>(time(nullptr));
  std::string path;
  {
    TensorBoardWriter w(dir + "/nested/run");  // creates missing directories
    path = w.path();
    w.add_scalar("train/loss", 3.25, 1);
    w.add_scalar("train/lr", 1e-3, 1);
    w.add_scalar("train/loss", 2.5, 10, 1700000000.5);
    w.add_scalar("train/loss", -0.125, 1LL << 40);  // large step: a multi-byte varint
    w.add_scalar("odd", std::numeric_limits<double>::infinity(), -7);  // negative step: 10-byte varint
    w.flush();
    // flush() makes the records readable while the writer is still open.
    EXPECT_EQ(read_records(slurp(path)).size(), 6u);
  }
  const std::string name = fs::path(path).filename().string();
  EXPECT_EQ(fs::path(path).parent_path(), fs::path(dir + "/nested/run"));
  ASSERT_EQ(name.rfind("events.out.tfevents.", 0), 0u) << name;
  const long long stamp = std::stoll(name.substr(20, 10));
  EXPECT_GE(stamp, static_cast<long long>(before));
  EXPECT_EQ(name[30], '.');  // then the hostname

  const std::vector<std::string> records = read_records(slurp(path));
  ASSERT_EQ(records.size(), 6u);
  const Event first = decode_event(records[0]);
  EXPECT_EQ(first.file_version, "brain.Event:2");
  EXPECT_EQ(first.step, 0);
  EXPECT_TRUE(first.values.empty());
  EXPECT_GE(first.wall_time, before);
  EXPECT_LT(first.wall_time, before + 3600);

  const struct {
    int64_t step;
    const char* tag;
    float value;
  } want[] = {{1, "train/loss", 3.25f},
              {1, "train/lr", 1e-3f},
              {10, "train/loss", 2.5f},
              {1LL << 40, "train/loss", -0.125f},
              {-7, "odd", std::numeric_limits<float>::infinity()}};
  for (size_t i = 0; i < 5; ++i) {
    const Event e = decode_event(records[i + 1]);
    EXPECT_EQ(e.step, want[i].step) << i;
    EXPECT_TRUE(e.file_version.empty());
    ASSERT_EQ(e.values.size(), 1u) << i;
    EXPECT_EQ(e.values[0].first, want[i].tag);
    EXPECT_EQ(e.values[0].second, want[i].value);
    if (i == 2) EXPECT_EQ(e.wall_time, 1700000000.5);
    else EXPECT_GE(e.wall_time, first.wall_time);
  }
}

// The exact bytes TensorBoard's own Python writer produces for the same events (protobuf
// SerializeToString + tensorboard.summary.writer.record_writer.RecordWriter); the generating
// snippet is in tools/ref/README.md.
TEST(TensorBoardWriter, BytesMatchTensorBoardsOwnWriter) {
  const std::string golden_hex =
      "1800000000000000a37f4b220900001040fc54d9411a0d627261696e2e4576656e743a32338d2fe9200000000000000029eda9"
      "500900006040fc54d941102a2a130a110a0a747261696e2f6c6f73731500005040993a6c942100000000000000017becf609"
      "00008040fc54d94110fdffffffffffffffff012a0b0a090a026c72156f12833a9b08b66c";
  std::string golden;
  for (size_t i = 0; i < golden_hex.size(); i += 2)
    golden.push_back(static_cast<char>(std::stoi(golden_hex.substr(i, 2), nullptr, 16)));
  const std::string ours = tfrecord::frame(tfevent::file_version_event(1700000000.25)) +
                           tfrecord::frame(tfevent::scalar_event("train/loss", 3.25f, 42, 1700000001.5)) +
                           tfrecord::frame(tfevent::scalar_event("lr", 1e-3f, -3, 1700000002.0));
  EXPECT_EQ(ours, golden);
}

TEST(TensorBoardWriter, MaskMatchesTheFormula) {
  EXPECT_EQ(tfrecord::mask_crc(0), 0xa282ead8u);
  EXPECT_EQ(tfrecord::mask_crc(0xE3069283u), ((0xE3069283u >> 15) | (0xE3069283u << 17)) + 0xa282ead8u);
}

TEST(TensorBoardWriter, TwoWritersInOneDirectoryGetTwoFiles) {
  const std::string dir = fresh_dir("tb_two");
  TensorBoardWriter a(dir), b(dir);
  EXPECT_NE(a.path(), b.path());
  a.add_scalar("x", 1, 1);
  b.add_scalar("x", 2, 1);
  a.flush();
  b.flush();
  EXPECT_EQ(read_records(slurp(a.path())).size(), 2u);
  EXPECT_EQ(decode_event(read_records(slurp(b.path()))[1]).values.at(0).second, 2.f);
}

TEST(TensorBoardWriter, BadInputIsAClearError) {
  const std::string dir = fresh_dir("tb_bad");
  fs::create_directories(dir);
  std::ofstream(dir + "/file") << "x";
  EXPECT_ERROR_MENTIONS(TensorBoardWriter(dir + "/file"), "tensorboard: cannot create run directory", "/file");
  TensorBoardWriter w(dir + "/run");
  EXPECT_ERROR_MENTIONS(w.add_scalar("", 1.0, 3), "empty scalar tag", "step 3");
}

}  // namespace
}  // namespace foundry
