// TensorBoard event files: TFRecord framing + hand-written protobuf encoding of tensorflow.Event.
// Formats and sources in tensorboard.h; protobuf wire format from
// https://protobuf.dev/programming-guides/encoding/ (varint keys (field << 3) | wire_type;
// wire types 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32; all little-endian).
#include "foundry/train/tensorboard.h"

#include <unistd.h>

#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "foundry/core/check.h"
#include "foundry/core/crc32c.h"

namespace foundry {

namespace {

// ---- protobuf wire format ----------------------------------------------------------------
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
template <typename T>
void put_le(std::string& out, T v) {  // fixed-width little-endian
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_key(std::string& out, int field, int wire_type) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire_type));
}
void put_double(std::string& out, int field, double v) {
  put_key(out, field, 1);
  put_le(out, std::bit_cast<uint64_t>(v));
}
void put_float(std::string& out, int field, float v) {
  put_key(out, field, 5);
  put_le(out, std::bit_cast<uint32_t>(v));
}
void put_int64(std::string& out, int field, int64_t v) {  // negative: ten-byte two's complement
  put_key(out, field, 0);
  put_varint(out, static_cast<uint64_t>(v));
}
void put_bytes(std::string& out, int field, std::string_view v) {  // strings and sub-messages
  put_key(out, field, 2);
  put_varint(out, v.size());
  out.append(v);
}

// Event fields and the Summary / Summary.Value fields (event.proto, summary.proto). These are
// proto3 messages: a plain field at its default (step 0, wall_time 0) is not written, exactly as
// protobuf's own serialiser does; simple_value is a member of a oneof, so it is always written.
constexpr int kEventWallTime = 1, kEventStep = 2, kEventFileVersion = 3, kEventSummary = 5;
constexpr int kSummaryValue = 1;
constexpr int kValueTag = 1, kValueSimpleValue = 2;

void put_event_time_and_step(std::string& e, double wall_time, int64_t step) {
  if (std::bit_cast<uint64_t>(wall_time) != 0) put_double(e, kEventWallTime, wall_time);
  if (step != 0) put_int64(e, kEventStep, step);
}

}  // namespace

namespace tfevent {

std::string file_version_event(double wall_time) {
  std::string e;
  put_event_time_and_step(e, wall_time, 0);
  put_bytes(e, kEventFileVersion, "brain.Event:2");
  return e;
}

std::string scalar_event(std::string_view tag, float value, int64_t step, double wall_time) {
  std::string v;
  put_bytes(v, kValueTag, tag);
  put_float(v, kValueSimpleValue, value);
  std::string summary;
  put_bytes(summary, kSummaryValue, v);
  std::string e;
  put_event_time_and_step(e, wall_time, step);
  put_bytes(e, kEventSummary, summary);
  return e;
}

}  // namespace tfevent

namespace {

double now_unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char buf[256] = {};
  std::string h = gethostname(buf, sizeof(buf) - 1) == 0 ? std::string(buf) : std::string();
  for (char& c : h)
    if (c == '/' || c == '\\') c = '_';  // keep the file inside run_dir whatever the name
  return h.empty() ? "localhost" : h;
}

}  // namespace

namespace tfrecord {

uint32_t mask_crc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

std::string frame(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  put_le(out, static_cast<uint64_t>(data.size()));
  put_le(out, mask_crc(crc32c(out.data(), 8)));
  out.append(data);
  put_le(out, mask_crc(crc32c(data)));
  return out;
}

}  // namespace tfrecord

TensorBoardWriter::TensorBoardWriter(const std::string& run_dir) {
  std::error_code ec;
  std::filesystem::create_directories(run_dir, ec);
  FOUNDRY_CHECK(!ec && std::filesystem::is_directory(run_dir), "tensorboard: cannot create run directory '{}': {}",
                run_dir, ec ? ec.message() : "not a directory");
  const double wall = now_unix_seconds();
  const std::string base = (std::filesystem::path(run_dir) /
                            fmt::format("events.out.tfevents.{:010d}.{}", static_cast<long long>(wall), host_name()))
                               .string();
  for (int n = 0; n < 1000 && file_ == nullptr; ++n) {
    path_ = n == 0 ? base : fmt::format("{}.{}", base, n);
    file_.reset(std::fopen(path_.c_str(), "wbx"));  // x: fail rather than overwrite another writer's file
    FOUNDRY_CHECK(file_ != nullptr || errno == EEXIST, "tensorboard: cannot create '{}': {}", path_,
                  std::strerror(errno));
  }
  FOUNDRY_CHECK(file_ != nullptr, "tensorboard: too many event files named '{}.*'", base);
  write_record(tfevent::file_version_event(wall));
  flush();
}

TensorBoardWriter::~TensorBoardWriter() = default;

void TensorBoardWriter::add_scalar(std::string_view tag, double value, int64_t step) {
  add_scalar(tag, value, step, now_unix_seconds());
}

void TensorBoardWriter::add_scalar(std::string_view tag, double value, int64_t step, double wall_time) {
  FOUNDRY_CHECK(!tag.empty(), "tensorboard: empty scalar tag (step {})", step);
  write_record(tfevent::scalar_event(tag, static_cast<float>(value), step, wall_time));
}

void TensorBoardWriter::flush() {
  FOUNDRY_CHECK(std::fflush(file_.get()) == 0, "tensorboard: cannot write '{}': {}", path_, std::strerror(errno));
}

void TensorBoardWriter::write_record(const std::string& data) {
  const std::string rec = tfrecord::frame(data);
  FOUNDRY_CHECK(std::fwrite(rec.data(), 1, rec.size(), file_.get()) == rec.size(), "tensorboard: cannot write '{}': {}",
                path_, std::strerror(errno));
}

}  // namespace foundry
