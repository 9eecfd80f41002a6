// Byte-level BPE training: the merges of a corpus worked by hand (Wikipedia's "aaabdaaabac"),
// the vocabulary-size and min-frequency stops, determinism across threads and text order, and
// that the trained tokenizer round-trips, compresses its training text and saves as a
// tokenizer.json that loads back identically.
#include "foundry/data/bpe_trainer.h"

#include <gtest/gtest.h>

#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "testing.h"
#include "tokenizer_testing.h"

namespace foundry {
namespace {

std::string token_text(const Tokenizer& tok, int32_t id) { return tok.decode(std::vector<int32_t>{id}); }

TEST(BpeTrainer, MergesWorkedByHand) {
  // One word "aaabdaaabac": pairs aa:4 ab:2 bd:1 da:1 ba:1 ac:1 -> merge (a,a) = 256, left to
  // right: aa a b d aa a b a c. Then (a,b):2 and (aa,a):2 tie; (97,98) < (256,97) -> ab = 257:
  // aa ab d aa ab a c. Then (aa,ab):2 -> aaab = 258. Every pair left occurs once.
  BpeTrainer trainer({.vocab_size = 1000, .special_tokens = {}, .pattern = "[a-z]+", .min_frequency = 2});
  trainer.add_text("aaabdaaabac");
  const auto tok = trainer.train();
  EXPECT_EQ(tok->vocab_size(), 259);
  EXPECT_EQ(token_text(*tok, 256), "aa");
  EXPECT_EQ(token_text(*tok, 257), "ab");
  EXPECT_EQ(token_text(*tok, 258), "aaab");
  const std::vector<BytePairEncoder::Merge> merges = {{'a', 'a'}, {'a', 'b'}, {256, 257}};
  EXPECT_EQ(tok->spec().bpe.merges(), merges);
  EXPECT_EQ(tok->encode("aaabdaaabac"), (std::vector<int32_t>{258, 'd', 258, 'a', 'c'}));

  // min_frequency 1 goes on while any pair is left; vocab_size stops it first here.
  BpeTrainer more({.vocab_size = 261, .special_tokens = {"<|endoftext|>"}, .pattern = "[a-z]+", .min_frequency = 1});
  more.add_text("aaabdaaabac");
  const auto tok2 = more.train();
  EXPECT_EQ(tok2->vocab_size(), 261);
  EXPECT_EQ(tok2->eod_id(), 260);  // special tokens follow the learned ones
  EXPECT_EQ(tok2->spec().bpe.merges().size(), 4u);
}

TEST(BpeTrainer, BadOptionsAreErrors) {
  EXPECT_ERROR_MENTIONS(BpeTrainer({.vocab_size = 256, .special_tokens = {"<|endoftext|>"}}), "vocab_size 256",
                        "256 byte tokens + 1 special");
  EXPECT_ERROR_MENTIONS(BpeTrainer({.vocab_size = 300, .special_tokens = {"<s>", "<s>"}}), "'<s>' is given twice");
  EXPECT_ERROR_MENTIONS(BpeTrainer({.vocab_size = 300, .special_tokens = {""}}), "special token 0 is empty");
  EXPECT_ERROR_MENTIONS(BpeTrainer({.vocab_size = 300, .pattern = "(("}), "does not compile");
  EXPECT_ERROR_MENTIONS(BpeTrainer({.vocab_size = 300, .min_frequency = 0}), "min_frequency");
}

std::vector<std::string> corpus() {
  std::vector<std::string> docs;
  for (uint32_t i = 0; i < 40; ++i) docs.push_back(testing::english_like_text(8000 + 97 * i, i));
  docs.push_back("日本語のテキストと中文文本 emoji 🚀🔥 👩‍👩‍👧 Ünïcödé façade naïve café\n\n\tcode() { return 1; }");
  return docs;
}

std::string train_to_json(const std::vector<std::string>& docs, int threads, const std::string& dir) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  BpeTrainer trainer({.vocab_size = 1024});
  trainer.add_texts(docs);
  omp_set_num_threads(saved);
  trainer.train()->save(dir);
  return testing::read_text(dir + "/tokenizer.json");
}

TEST(BpeTrainer, DeterministicAcrossThreadsAndOrder) {
  auto docs = corpus();
  const std::string one = train_to_json(docs, 1, testing::scratch_dir("one"));
  const std::string two = train_to_json(docs, 2, testing::scratch_dir("two"));
  std::reverse(docs.begin(), docs.end());
  const std::string reversed = train_to_json(docs, 2, testing::scratch_dir("reversed"));
  EXPECT_GT(one.size(), 10000u);
  EXPECT_EQ(one, two);
  EXPECT_EQ(one, reversed);
  // add_text's chunking (at line starts) counts the same words as whole documents.
  std::string joined;
  for (const auto& d : corpus()) joined += d + "\n";
  BpeTrainer whole({.vocab_size = 600});
  whole.add_texts(std::vector<std::string>{joined});
  BpeTrainer chunked({.vocab_size = 600});
  chunked.add_text(joined);
  EXPECT_EQ(whole.distinct_words(), chunked.distinct_words());
  const std::string a = testing::scratch_dir("whole"), b = testing::scratch_dir("chunked");
  whole.train()->save(a);
  chunked.train()->save(b);
  EXPECT_EQ(testing::read_text(a + "/tokenizer.json"), testing::read_text(b + "/tokenizer.json"));
}

TEST(BpeTrainer, TrainedTokenizerRoundTripsCompressesAndLoadsBack) {
  const auto docs = corpus();
  BpeTrainer trainer({.vocab_size = 1024});
  trainer.add_texts(docs);
  const auto tok = trainer.train();
  EXPECT_EQ(tok->vocab_size(), 1024);
  EXPECT_EQ(tok->eod_id(), 1023);
  // The pre-tokenizer's pieces bound any encoding from below (each is at least one token); on
  // its own training text, whose distinct words number a few hundred, the vocabulary should
  // come close to one token per piece.
  const Pretokenizer pretokenizer({pretokenizer_pattern("llama3")});
  size_t bytes = 0, tokens = 0, pieces = 0;
  for (const auto& d : docs) {
    const auto ids = tok->encode(d);
    ASSERT_EQ(tok->decode(ids), d);
    bytes += d.size();
    tokens += ids.size();
    std::vector<std::string_view> p;
    pretokenizer.split(d, p);
    pieces += p.size();
  }
  EXPECT_LT(static_cast<double>(tokens), 1.1 * static_cast<double>(pieces)) << tokens << " tokens, " << pieces << " pieces";
  EXPECT_GT(static_cast<double>(bytes) / static_cast<double>(tokens), 3.0) << bytes << " bytes in " << tokens << " tokens";
  std::mt19937 rng(29);
  for (int i = 0; i < 100; ++i) {
    const std::string text = testing::random_utf8(rng, rng() % 200);
    ASSERT_EQ(tok->decode(tok->encode(text)), text);
  }

  const std::string dir = testing::scratch_dir("trained");
  tok->save(dir);
  const auto loaded = Tokenizer::load(dir);
  EXPECT_EQ(loaded->vocab_size(), 1024);
  EXPECT_EQ(loaded->eod_id(), 1023);
  for (const auto& d : docs) ASSERT_EQ(loaded->encode(d), tok->encode(d));
  EXPECT_EQ(loaded->encode_with_special("a<|endoftext|>b"), tok->encode_with_special("a<|endoftext|>b"));
}

// Text with tens of thousands of distinct words: GPT-2 tokens drawn at random (Zipf over ids,
// which GPT-2 assigned roughly by frequency) and decoded.
std::string token_soup(size_t bytes, uint32_t seed) {
  const Tokenizer& gpt2 = testing::tiktoken("gpt2");
  std::mt19937 rng(seed);
  std::string text;
  while (text.size() < bytes) {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    const auto id = static_cast<int32_t>(std::pow(50000.0, u)) - 1;
    text += gpt2.decode(std::vector<int32_t>{id});
  }
  return text;
}

TEST(BpeTrainer, FourThousandTokensOnAMegabyteInSeconds) {
  const std::string text = token_soup(1 << 20, 99);
  const auto start = std::chrono::steady_clock::now();
  BpeTrainer trainer({.vocab_size = 4096});
  trainer.add_text(text);
  EXPECT_GT(trainer.distinct_words(), 20000);
  const auto tok = trainer.train();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(tok->vocab_size(), 4096);
  EXPECT_LT(seconds, 10.0) << "training took " << seconds << " s";  // generous for a loaded CI machine
  EXPECT_EQ(tok->decode(tok->encode(text)), text);
  std::printf("[ trained 4096 tokens on 1 MiB (%lld distinct words) in %.2f s ]\n",
              static_cast<long long>(trainer.distinct_words()), seconds);
}

}  // namespace
}  // namespace foundry
