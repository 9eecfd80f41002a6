// safetensors: round trips, files built byte by byte from the spec, the reference writer's
// known byte vectors and fixtures (tools/ref/write_safetensors_fixture.py), and one clear error
// per kind of corruption.
#include "foundry/checkpoint/safetensors.h"

#include <cmath>
#include <cstring>

#include "checkpoint/scratch.h"
#include "foundry/core/rng.h"
#include "testing.h"

namespace foundry {
namespace {

using testing::le_bytes;
using testing::read_bytes;
using testing::safetensors_bytes;
using testing::scratch_dir;
using testing::write_bytes;

// A tensor of dtype t filled with pseudo-random bytes.
Tensor random_bytes(const Shape& s, DType t, uint32_t seed) {
  Tensor x = Tensor::empty(s, t);
  auto* p = static_cast<unsigned char*>(x.data());
  uint32_t state = seed * 2654435761u + 1;
  for (int64_t i = 0; i < x.nbytes(); ++i) {
    state = state * 1664525u + 1013904223u;
    p[i] = static_cast<unsigned char>(state >> 24);
  }
  if (t == DType::boolean)
    for (int64_t i = 0; i < x.nbytes(); ++i) p[i] &= 1;
  return x;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.nbytes() == b.nbytes() &&
         std::memcmp(a.data(), b.data(), static_cast<size_t>(a.nbytes())) == 0;
}

TEST(Safetensors, RoundTripsEveryDtype) {
  const DType all[] = {DType::f32, DType::bf16, DType::f16,  DType::e4m3, DType::e5m2, DType::e2m1,
                       DType::e8m0, DType::i8,  DType::i32,  DType::i64,  DType::u8,   DType::boolean};
  std::vector<Tensor> keep;
  std::vector<NamedTensor> tensors;
  uint32_t seed = 1;
  for (DType t : all) {
    keep.push_back(random_bytes({3, 4}, t, seed++));
    tensors.push_back({std::string("t.") + std::string(dtype_name(t)), keep.back()});
  }
  keep.push_back(random_bytes({7}, DType::f32, 99));  // odd size
  tensors.push_back({"odd", keep.back()});
  keep.push_back(random_bytes({}, DType::i64, 100));  // scalar
  tensors.push_back({"scalar", keep.back()});
  keep.push_back(Tensor::empty({0, 5}, DType::bf16));  // no elements
  tensors.push_back({"empty", keep.back()});

  const std::string path = scratch_dir() + "/all.safetensors";
  const int64_t size = save_safetensors(path, tensors, {{"format", "pt"}, {"note", "a \"quoted\" value"}});
  EXPECT_EQ(size, static_cast<int64_t>(read_bytes(path).size()));
  EXPECT_EQ(read_bytes(path), serialize_safetensors(tensors, {{"format", "pt"}, {"note", "a \"quoted\" value"}}));

  const SafetensorsFile f(path);
  EXPECT_EQ(f.header_bytes() % 8, 0);
  EXPECT_EQ(f.metadata().at("note"), "a \"quoted\" value");
  ASSERT_EQ(f.entries().size(), tensors.size());
  for (const NamedTensor& t : tensors) {
    const SafetensorsEntry& e = f.entry(t.name);
    EXPECT_EQ(e.dtype, t.tensor.dtype) << t.name;
    EXPECT_EQ(e.shape, t.tensor.shape) << t.name;
    // Data is aligned to the element size (the reference writer's ordering guarantees it).
    EXPECT_EQ((8 + f.header_bytes() + e.begin) % std::max<int64_t>(dtype_size(t.tensor.dtype), 1), 0) << t.name;
  }
  const auto loaded = load_safetensors(path);
  for (size_t i = 0; i < tensors.size(); ++i)
    EXPECT_TRUE(same_bytes(loaded.at(tensors[i].name), keep[i])) << tensors[i].name;
  EXPECT_EQ(safetensors_dtype(DType::e2m1), "F4");
  EXPECT_EQ(dtype_from_safetensors("F8_E4M3"), DType::e4m3);
  EXPECT_EQ(dtype_from_safetensors("F64"), std::nullopt);
}

// Byte vectors from the reference implementation's own unit tests (safetensors/src/tensor.rs:
// test_serialization, test_empty, test_serialization_forced_alignement).
TEST(Safetensors, WriterMatchesTheReferenceByteVectors) {
  const float v[6] = {0, 1, 2, 3, 4, 5};
  Tensor x = Tensor::from<float>({1, 2, 3}, v);
  const std::string h1 = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  ASSERT_EQ(h1.size(), 64u);
  std::string data(reinterpret_cast<const char*>(v), 24);
  EXPECT_EQ(serialize_safetensors(std::vector<NamedTensor>{{"attn.0", x}}), safetensors_bytes(h1, data));

  const std::string h2 = R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})";
  EXPECT_EQ(serialize_safetensors(std::vector<NamedTensor>{{"attn0", x.reshape({1, 1, 2, 3})}}),
            safetensors_bytes(h2 + std::string(7, ' '), data));  // padded 65 -> 72

  EXPECT_EQ(serialize_safetensors({}), safetensors_bytes("{}      ", ""));
  EXPECT_EQ(serialize_safetensors({}, {{"framework", "pt"}}),
            safetensors_bytes(R"({"__metadata__":{"framework":"pt"}})" + std::string(5, ' '), ""));
}

TEST(Safetensors, ReadsAFileBuiltByteByByteFromTheSpec) {
  // Entries out of data order, __metadata__ last, unpadded header, extra whitespace.
  const std::string header =
      R"({ "b": {"dtype": "I32", "shape": [2], "data_offsets": [8, 16]},)"
      R"( "a": {"shape": [2, 1], "dtype": "F32", "data_offsets": [0, 8]},)"
      R"( "h": {"dtype": "BF16", "shape": [], "data_offsets": [16, 18]},)"
      R"( "__metadata__": {"who": "hand"} })";
  const std::string data = le_bytes(1.5f) + le_bytes(-2.0f) + le_bytes(int32_t{7}) + le_bytes(int32_t{-9}) +
                           le_bytes(uint16_t{0x3f80});  // bf16 1.0
  const std::string path = scratch_dir() + "/hand.safetensors";
  write_bytes(path, safetensors_bytes(header, data));
  const SafetensorsFile f(path);
  EXPECT_EQ(f.metadata().at("who"), "hand");
  ASSERT_EQ(f.entries().size(), 3u);
  EXPECT_EQ(f.entries()[0].name, "a");  // data order
  EXPECT_EQ(f.read("a").shape(), Shape({2, 1}));
  EXPECT_EQ(f.read("a").to_vector(), (std::vector<float>{1.5f, -2.f}));
  const Tensor b = f.read("b");
  EXPECT_EQ(b.ptr<int32_t>()[0], 7);
  EXPECT_EQ(b.ptr<int32_t>()[1], -9);
  EXPECT_EQ(f.read("h").to_vector(), std::vector<float>{1.f});
}

TEST(Safetensors, ReadsTheReferenceLibrarysFixtureAndWritesTheSameBytes) {
  const std::string path = std::string(FOUNDRY_FIXTURES_DIR) + "/reference.safetensors";
  const SafetensorsFile f(path);
  EXPECT_EQ(f.metadata(), (SafetensorsMetadata{{"format", "pt"}}));
  const auto t = load_safetensors(path);
  ASSERT_EQ(t.size(), 10u);
  std::vector<float> emb(12);
  for (int i = 0; i < 12; ++i) emb[static_cast<size_t>(i)] = i * 0.25f - 1;
  EXPECT_EQ(t.at("embedding.weight").shape(), Shape({3, 4}));
  EXPECT_EQ(t.at("embedding.weight").to_vector(), emb);
  EXPECT_EQ(t.at("norm.weight").dtype(), DType::bf16);
  EXPECT_EQ(t.at("norm.weight").to_vector(), (std::vector<float>{1, -2, 0.5f, 3.140625f, -0.0078125f}));
  EXPECT_EQ(t.at("half").dtype(), DType::f16);
  EXPECT_EQ(t.at("half").to_vector(), (std::vector<float>{0.5f, -1.5f, 65504.f, std::ldexp(1.f, -14)}));
  const int32_t* ids = t.at("ids").ptr<int32_t>();
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], -1);
  EXPECT_EQ(ids[2], INT32_MAX);
  EXPECT_EQ(ids[3], INT32_MIN);
  EXPECT_EQ(t.at("counts").ptr<int64_t>()[0], int64_t{1} << 40);
  EXPECT_EQ(t.at("counts").ptr<int64_t>()[1], -3);
  EXPECT_EQ(t.at("bytes").ptr<uint8_t>()[2], 255);
  EXPECT_EQ(t.at("small").ptr<int8_t>()[0], -128);
  EXPECT_EQ(t.at("mask").ptr<bool>()[0], true);
  EXPECT_EQ(t.at("mask").ptr<bool>()[1], false);
  EXPECT_EQ(t.at("scalar").ndim(), 0);
  EXPECT_EQ(t.at("scalar").to_vector(), std::vector<float>{2.5f});
  EXPECT_EQ(t.at("empty").shape(), Shape({0, 3}));

  // Our writer, given the same tensors, produces the reference writer's bytes exactly.
  std::vector<NamedTensor> same;
  for (const auto& [name, tensor] : t) same.push_back({name, tensor});
  EXPECT_EQ(serialize_safetensors(same, {{"format", "pt"}}), read_bytes(path));
}

TEST(Safetensors, Fp8AndFp4MatchTheReferenceLibrary) {
  const std::string path = std::string(FOUNDRY_FIXTURES_DIR) + "/reference_fp8.safetensors";
  const auto t = load_safetensors(path);
  auto bytes_of = [&](const char* name) {
    const Tensor& x = t.at(name);
    return std::string(static_cast<const char*>(x.data()), static_cast<size_t>(x.nbytes()));
  };
  EXPECT_EQ(t.at("e4m3").dtype(), DType::e4m3);
  EXPECT_EQ(bytes_of("e4m3"), std::string("\x00\x38\xC0\x7E", 4));
  EXPECT_EQ(bytes_of("e5m2"), std::string("\x3C\xFB", 2));
  EXPECT_EQ(t.at("e8m0").dtype(), DType::e8m0);
  EXPECT_EQ(bytes_of("e8m0"), std::string("\x7F\x00\xFE", 3));
  EXPECT_EQ(t.at("fp4").dtype(), DType::e2m1);
  EXPECT_EQ(t.at("fp4").shape(), Shape({4}));
  EXPECT_EQ(bytes_of("fp4"), std::string("\x21\xF7", 2));
  std::vector<NamedTensor> same;
  for (const auto& [name, tensor] : t) same.push_back({name, tensor});
  EXPECT_EQ(serialize_safetensors(same), read_bytes(path));
}

TEST(Safetensors, UnsupportedDtypeIsReportedOnRead) {
  const std::string header = R"({"d":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},)"
                             R"("f":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  const std::string path = scratch_dir() + "/f64.safetensors";
  write_bytes(path, safetensors_bytes(header, le_bytes(1.0) + le_bytes(2.f)));
  const SafetensorsFile f(path);
  EXPECT_EQ(f.read("f").to_vector(), std::vector<float>{2.f});
  EXPECT_ERROR_MENTIONS(f.read("d"), "f64.safetensors", "'d'", "F64", "does not support");
  EXPECT_ERROR_MENTIONS(f.read("zz"), "f64.safetensors", "no tensor named 'zz'");
  Tensor wrong = Tensor::empty({2});
  EXPECT_ERROR_MENTIONS(f.read_into("f", wrong), "'f'", "F32 (1,)", "f32(2,)");
}

TEST(Safetensors, DeviceTensorsAreStagedThroughHostMemory) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device in this build or machine";
  const Tensor x = random_bytes({3, 5}, DType::bf16, 5);
  const Tensor gx = x.to_device(Device::cuda());
  const std::string path = scratch_dir() + "/device.safetensors";
  save_safetensors(path, std::vector<NamedTensor>{{"g", gx}});
  EXPECT_EQ(read_bytes(path), serialize_safetensors(std::vector<NamedTensor>{{"g", x}}));
  Tensor back = Tensor::zeros({3, 5}, DType::bf16, Device::cuda());
  SafetensorsFile(path).read_into("g", back);
  EXPECT_TRUE(same_bytes(back.to_device(Device::cpu()), x));
}

// Writes a file and returns the message of the error opening it throws.
std::string open_error(const std::string& bytes) {
  const std::string path = scratch_dir() + "/bad.safetensors";
  write_bytes(path, bytes);
  return testing::error_of([&] { SafetensorsFile f(path); });
}

#define EXPECT_CORRUPT(bytes, ...)                                                          \
  do {                                                                                      \
    const std::string msg_ = open_error(bytes);                                             \
    EXPECT_NE(msg_, "") << "no error";                                                      \
    for (const char* part : {"bad.safetensors", __VA_ARGS__})                               \
      EXPECT_NE(msg_.find(part), std::string::npos) << "'" << part << "' not in: " << msg_; \
  } while (0)

TEST(Safetensors, CorruptFilesGiveOneClearErrorEach) {
  const std::string ok_header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string data8(8, '\1');
  ASSERT_EQ(open_error(safetensors_bytes(ok_header, data8)), "");

  EXPECT_ERROR_MENTIONS(SafetensorsFile(scratch_dir() + "/missing.safetensors"), "missing.safetensors",
                        "cannot open");
  EXPECT_CORRUPT(std::string("\x05\x00\x00", 3), "3 bytes", "too short");
  EXPECT_CORRUPT(safetensors_bytes(ok_header, data8, 1000), "header length 1000", "past the end");
  EXPECT_CORRUPT(safetensors_bytes(ok_header, data8, uint64_t{1} << 40), "exceeds", "limit");
  EXPECT_CORRUPT(safetensors_bytes(" [1, 2]", ""), "does not start with '{'");
  EXPECT_CORRUPT(safetensors_bytes(R"({"a":{"dtype":"F32",)", ""), "not valid JSON");
  EXPECT_CORRUPT(safetensors_bytes("{\"a\xff\":1}", ""), "not valid JSON");
  EXPECT_CORRUPT(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2]}})", data8), "'a'",
                 "dtype, shape and data_offsets");
  EXPECT_CORRUPT(safetensors_bytes(R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", data8),
                 "'a'", "unknown dtype 'F33'");
  EXPECT_CORRUPT(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data8),
                 "'a'", "shape entry -2");
  EXPECT_CORRUPT(safetensors_bytes(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", data8), "'a'",
                 "not an array");
  EXPECT_CORRUPT(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}})", data8),
                 "'a'", "[begin, end]");
  EXPECT_CORRUPT(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", data8),
                 "'a'", "begin after end");
  // Offsets out of range.
  EXPECT_CORRUPT(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", data8),
                 "'a'", "[4, 12]", "beyond the 8 data bytes");
  // dtype/shape vs byte size.
  EXPECT_CORRUPT(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8),
                 "'a'", "F32 (3,) (12 bytes)", "span 8 bytes");
  EXPECT_CORRUPT(safetensors_bytes(R"({"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", "\1\1"),
                 "'a'", "not a whole number of bytes");
  EXPECT_CORRUPT(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                                   data8),
                 "'a'", "overflows");
  // Overlap, gap, trailing bytes.
  EXPECT_CORRUPT(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                   R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                   data8),
                 "'b'", "overlap tensor 'a'");
  EXPECT_CORRUPT(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data8),
                 "4 bytes of data before tensor 'a'", "belong to no tensor");
  EXPECT_CORRUPT(safetensors_bytes(ok_header, data8 + "xyz"), "3 bytes of data after the last tensor");
  // Truncated data: a valid file missing its last bytes.
  const std::string whole = serialize_safetensors(
      std::vector<NamedTensor>{{"w", Tensor::zeros({4, 4})}, {"v", Tensor::zeros({3})}});
  EXPECT_CORRUPT(whole.substr(0, whole.size() - 5), "beyond the", "truncated");
  // Duplicate names.
  EXPECT_CORRUPT(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                   R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                   data8),
                 "tensor 'a' appears twice");
  EXPECT_CORRUPT(safetensors_bytes(R"({"__metadata__":{"n":1}})", ""), "__metadata__", "'n'", "not a string");
}

TEST(Safetensors, WriterRejectsBadInput) {
  const Tensor x = Tensor::zeros({2});
  const std::string dir = scratch_dir();
  EXPECT_ERROR_MENTIONS(save_safetensors(dir + "/a.safetensors", std::vector<NamedTensor>{{"x", x}, {"x", x}}),
                        "'x' given twice");
  EXPECT_ERROR_MENTIONS(serialize_safetensors(std::vector<NamedTensor>{{"", x}}), "empty name");
  EXPECT_ERROR_MENTIONS(serialize_safetensors(std::vector<NamedTensor>{{"__metadata__", x}}), "reserved");
  EXPECT_ERROR_MENTIONS(serialize_safetensors(std::vector<NamedTensor>{{"q", Tensor::zeros({3}, DType::e2m1)}}),
                        "'q'", "odd element count 3");
  EXPECT_ERROR_MENTIONS(save_safetensors(dir + "/no/such/dir/a.safetensors", std::vector<NamedTensor>{{"x", x}}),
                        "cannot create", "a.safetensors");
}

}  // namespace
}  // namespace foundry
