// tests/fixture.h: reads tests/fixtures/fixture_selftest.bin (known values written by
// tools/ref/fixture.py: selftest_tensors) back exactly, rejects corrupt files with errors naming
// the file, and checks the layout contract of the GPT parity fixtures (tools/ref/README.md).
#include "fixture.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "testing.h"

namespace foundry::testing {
namespace {

const std::string kSelftest = FOUNDRY_FIXTURES_DIR "/fixture_selftest.bin";

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string write_temp(const std::string& name, const std::vector<char>& bytes) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

// Fixture::load(path) throws foundry::Error whose message contains every one of `parts`.
::testing::AssertionResult load_fails_with(const std::string& path, const std::vector<std::string>& parts) {
  try {
    Fixture::load(path);
  } catch (const Error& e) {
    for (const auto& p : parts)
      if (e.message().find(p) == std::string::npos)
        return ::testing::AssertionFailure() << "message '" << e.message() << "' lacks '" << p << "'";
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "no error loading " << path;
}

TEST(Fixture, ReadsSelftestValuesExactly) {
  const Fixture fx = Fixture::load(kSelftest);
  const std::vector<std::string> names = {"f32_2x3", "i32_4", "i64_2x1x2", "scalar", "empty_0x5",
                                          "grad.na\xc3\xafve.weight"};
  EXPECT_EQ(fx.names(), names);

  const Tensor& a = fx.at("f32_2x3");
  EXPECT_EQ(a.dtype(), DType::f32);
  EXPECT_EQ(a.shape(), Shape({2, 3}));
  const std::vector<float> want_a = {0.f, 1.5f, -2.25f, 3.0e-3f, -1.0e9f, 7.f};
  EXPECT_EQ(a.to_vector(), want_a);

  const Tensor& b = fx.at("i32_4");
  EXPECT_EQ(b.dtype(), DType::i32);
  EXPECT_EQ(b.shape(), Shape({4}));
  const int32_t* pb = b.ptr<int32_t>();
  EXPECT_EQ(pb[0], -1);
  EXPECT_EQ(pb[1], 0);
  EXPECT_EQ(pb[2], INT32_MAX);
  EXPECT_EQ(pb[3], INT32_MIN);

  const Tensor& c = fx.at("i64_2x1x2");
  EXPECT_EQ(c.dtype(), DType::i64);
  EXPECT_EQ(c.shape(), Shape({2, 1, 2}));
  const int64_t* pc = c.ptr<int64_t>();
  EXPECT_EQ(pc[0], 1);
  EXPECT_EQ(pc[1], -2);
  EXPECT_EQ(pc[2], int64_t{1} << 40);
  EXPECT_EQ(pc[3], -(int64_t{1} << 62));

  const Tensor& s = fx.at("scalar");
  EXPECT_EQ(s.ndim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.ptr<float>()[0], 0.25f);

  const Tensor& e = fx.at("empty_0x5");
  EXPECT_EQ(e.shape(), Shape({0, 5}));
  EXPECT_EQ(e.numel(), 0);

  const Tensor& u = fx.at("grad.na\xc3\xafve.weight");
  EXPECT_EQ(u.to_vector(), (std::vector<float>{1.f, -1.f}));
  EXPECT_TRUE(fx.contains("scalar"));
  EXPECT_FALSE(fx.contains("Scalar"));
}

TEST(Fixture, MissingTensorErrorNamesFileAndTensor) {
  const Fixture fx = Fixture::load(kSelftest);
  try {
    fx.at("decoder.layers.0.mlp.linear_fc1.weight");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("fixture_selftest.bin"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("decoder.layers.0.mlp.linear_fc1.weight"), std::string::npos) << e.message();
  }
}

TEST(Fixture, MissingFileIsAnError) {
  EXPECT_TRUE(load_fails_with(FOUNDRY_FIXTURES_DIR "/no_such_fixture.bin", {"no_such_fixture.bin", "cannot open"}));
}

TEST(Fixture, BadMagicIsAnError) {
  auto bytes = read_bytes(kSelftest);
  bytes[7] = '2';
  EXPECT_TRUE(load_fails_with(write_temp("fixture_bad_magic.bin", bytes), {"fixture_bad_magic.bin", "magic"}));
  EXPECT_TRUE(load_fails_with(write_temp("fixture_empty.bin", {}), {"fixture_empty.bin", "magic"}));
}

TEST(Fixture, EveryTruncationIsAnError) {
  const auto bytes = read_bytes(kSelftest);
  ASSERT_GT(bytes.size(), 100u);
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<char> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    ASSERT_TRUE(load_fails_with(write_temp("fixture_truncated.bin", prefix), {"fixture_truncated.bin"}))
        << "prefix of " << n << " bytes";
  }
}

TEST(Fixture, TrailingBytesAreAnError) {
  auto bytes = read_bytes(kSelftest);
  bytes.push_back('\0');
  EXPECT_TRUE(load_fails_with(write_temp("fixture_trailing.bin", bytes), {"fixture_trailing.bin", "trailing"}));
}

TEST(Fixture, CorruptHeaderFieldsAreErrors) {
  const auto good = read_bytes(kSelftest);
  // First tensor "f32_2x3": name_len at 12, name at 16..22, dtype at 23, ndim at 24, dims at 28.
  auto bad_dtype = good;
  bad_dtype[23] = 7;
  EXPECT_TRUE(load_fails_with(write_temp("fixture_bad_dtype.bin", bad_dtype), {"fixture_bad_dtype.bin", "dtype code 7"}));
  auto bad_ndim = good;
  bad_ndim[24] = 9;
  EXPECT_TRUE(load_fails_with(write_temp("fixture_bad_ndim.bin", bad_ndim), {"fixture_bad_ndim.bin", "9 dims"}));
  auto negative_dim = good;
  negative_dim[35] = static_cast<char>(0x80);  // top byte of dims[0]
  EXPECT_TRUE(load_fails_with(write_temp("fixture_neg_dim.bin", negative_dim), {"fixture_neg_dim.bin", "negative"}));
  auto huge_dims = good;  // dims (2^62, 3): would overflow a naive byte count
  huge_dims[35] = 0x40;
  EXPECT_TRUE(load_fails_with(write_temp("fixture_huge_dim.bin", huge_dims), {"fixture_huge_dim.bin", "f32_2x3"}));
  auto count = good;
  count[8] = 7;  // one tensor more than present
  EXPECT_TRUE(load_fails_with(write_temp("fixture_count.bin", count), {"fixture_count.bin", "truncated"}));
}

TEST(Fixture, DuplicateNamesAreAnError) {
  // Two copies of the selftest body's first tensor under one header.
  const auto good = read_bytes(kSelftest);
  const size_t first_end = 12 + 4 + 7 + 1 + 4 + 2 * 8 + 6 * 4;  // "f32_2x3" record
  std::vector<char> bytes(good.begin(), good.begin() + 12);
  bytes[8] = 2;
  bytes[9] = bytes[10] = bytes[11] = 0;
  for (int k = 0; k < 2; ++k) bytes.insert(bytes.end(), good.begin() + 12, good.begin() + first_end);
  EXPECT_TRUE(load_fails_with(write_temp("fixture_dup.bin", bytes), {"fixture_dup.bin", "twice", "f32_2x3"}));
}

// The layout contract of the GPT parity fixtures (tools/ref/write_gpt_fixture.py).
void check_gpt_fixture(const std::string& file, bool tied) {
  SCOPED_TRACE(file);
  const Fixture fx = Fixture::load(FOUNDRY_FIXTURES_DIR "/" + file);
  const Tensor& config = fx.at("config");
  ASSERT_EQ(config.dtype(), DType::i64);
  ASSERT_EQ(config.shape(), Shape({9}));
  const int64_t* c = config.ptr<int64_t>();
  const int64_t V = c[0], H = c[1], L = c[2], NH = c[3], NKV = c[4], F = c[5], S = c[6], B = c[7];
  EXPECT_EQ(std::vector<int64_t>(c, c + 9), (std::vector<int64_t>{256, 64, 2, 4, 2, 128, 16, 2, tied ? 1 : 0}));
  const int64_t HD = H / NH;

  std::vector<std::pair<std::string, Shape>> params = {{"embedding.word_embeddings.weight", {V, H}}};
  for (int64_t i = 0; i < L; ++i) {
    const std::string p = "decoder.layers." + std::to_string(i) + ".";
    params.push_back({p + "input_layernorm.weight", {H}});
    params.push_back({p + "self_attention.linear_qkv.weight", {(NH + 2 * NKV) * HD, H}});
    params.push_back({p + "self_attention.linear_proj.weight", {H, NH * HD}});
    params.push_back({p + "pre_mlp_layernorm.weight", {H}});
    params.push_back({p + "mlp.linear_fc1.weight", {2 * F, H}});
    params.push_back({p + "mlp.linear_fc2.weight", {H, F}});
  }
  params.push_back({"decoder.final_layernorm.weight", {H}});
  if (!tied) params.push_back({"output_layer.weight", {V, H}});
  EXPECT_EQ(fx.contains("output_layer.weight"), !tied);
  for (const auto& [name, shape] : params)
    for (const std::string prefix : {"", "grad.", "final."}) {
      const Tensor& t = fx.at(prefix + name);
      EXPECT_EQ(t.dtype(), DType::f32) << prefix + name;
      EXPECT_EQ(t.shape(), shape) << prefix + name;
    }
  // Norm weights start at 1.
  for (float w : fx.at("decoder.final_layernorm.weight").to_vector()) EXPECT_EQ(w, 1.f);

  EXPECT_EQ(fx.at("tokens").dtype(), DType::i32);
  EXPECT_EQ(fx.at("tokens").shape(), Shape({B, S}));
  EXPECT_EQ(fx.at("targets").shape(), Shape({B, S}));
  // targets are the next tokens of one sequence: targets[b, s] == tokens[b, s + 1].
  const int32_t* tok = fx.at("tokens").ptr<int32_t>();
  const int32_t* tgt = fx.at("targets").ptr<int32_t>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s + 1 < S; ++s) EXPECT_EQ(tgt[b * S + s], tok[b * S + s + 1]);
  for (int64_t i = 0; i < B * S; ++i) EXPECT_TRUE(tok[i] >= 0 && tok[i] < V && tgt[i] >= 0 && tgt[i] < V);

  EXPECT_EQ(fx.at("logits").shape(), Shape({B * S, V}));
  EXPECT_EQ(fx.at("loss").shape(), Shape({1}));
  // loss = mean over the B*S tokens of logsumexp(logits) - logits[target].
  const float* lg = fx.at("logits").ptr<float>();
  double ce = 0;
  for (int64_t i = 0; i < B * S; ++i) {
    const float* row = lg + i * V;
    double mx = row[0], sum = 0;
    for (int64_t v = 0; v < V; ++v) mx = std::max(mx, static_cast<double>(row[v]));
    for (int64_t v = 0; v < V; ++v) sum += std::exp(row[v] - mx);
    ce += mx + std::log(sum) - row[tgt[i]];
  }
  EXPECT_NEAR(ce / static_cast<double>(B * S), fx.at("loss").to_vector()[0], 1e-5);
  EXPECT_EQ(fx.at("adamw").to_vector(), (std::vector<float>{1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.f}));
  const auto losses = fx.at("losses").to_vector();
  ASSERT_EQ(losses.size(), 10u);
  EXPECT_EQ(losses[0], fx.at("loss").to_vector()[0]);
  EXPECT_LT(losses[9], losses[0]);
  EXPECT_EQ(fx.at("grad_norms").shape(), Shape({10}));
  // Untrained loss is close to ln V.
  EXPECT_NEAR(losses[0], std::log(static_cast<double>(V)), 0.2);
}

TEST(Fixture, GptTinyLayout) { check_gpt_fixture("gpt_tiny.bin", false); }
TEST(Fixture, GptTinyTiedLayout) { check_gpt_fixture("gpt_tiny_tied.bin", true); }

}  // namespace
}  // namespace foundry::testing
