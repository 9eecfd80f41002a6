// Byte-level BPE training (see bpe_trainer.h).
#include "foundry/data/bpe_trainer.h"

#include <algorithm>
#include <cctype>
#include <exception>
#include <queue>

#include "foundry/core/check.h"
#include "foundry/data/tokenizer_io.h"

namespace foundry {

namespace {

uint64_t pack(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

struct Candidate {
  int64_t count;
  uint64_t pair;
  // priority_queue pops the largest: the highest count, then the smallest pair.
  bool operator<(const Candidate& o) const { return count != o.count ? count < o.count : pair > o.pair; }
};

}  // namespace

BpeTrainer::BpeTrainer(BpeTrainerOptions options)
    : options_(std::move(options)), pretokenizer_(std::vector<std::string>{options_.pattern}) {
  const int64_t n_special = static_cast<int64_t>(options_.special_tokens.size());
  FOUNDRY_CHECK(options_.vocab_size >= 256 + n_special,
                "BPE training: vocab_size {} is below the 256 byte tokens + {} special tokens", options_.vocab_size,
                n_special);
  FOUNDRY_CHECK(options_.vocab_size <= INT32_MAX, "BPE training: vocab_size {} is too large", options_.vocab_size);
  FOUNDRY_CHECK(options_.min_frequency >= 1, "BPE training: min_frequency must be at least 1, got {}",
                options_.min_frequency);
  for (size_t i = 0; i < options_.special_tokens.size(); ++i) {
    FOUNDRY_CHECK(!options_.special_tokens[i].empty(), "BPE training: special token {} is empty", i);
    for (size_t j = 0; j < i; ++j)
      FOUNDRY_CHECK(options_.special_tokens[i] != options_.special_tokens[j],
                    "BPE training: special token '{}' is given twice", options_.special_tokens[i]);
  }
}

void BpeTrainer::add_pieces(std::span<const std::string_view> texts) {
  std::exception_ptr error;
#pragma omp parallel
  {
    std::unordered_map<std::string, int64_t> local;
    std::vector<std::string_view> pieces;
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < static_cast<int64_t>(texts.size()); ++i) {
      try {
        pieces.clear();
        pretokenizer_.split(texts[i], pieces);
        for (std::string_view p : pieces) ++local[std::string(p)];
      } catch (...) {
#pragma omp critical(foundry_bpe_trainer_error)
        if (!error) error = std::current_exception();
      }
    }
#pragma omp critical(foundry_bpe_trainer_merge)
    for (auto& [word, n] : local) counts_[word] += n;
  }
  if (error) std::rethrow_exception(error);
  for (std::string_view t : texts) bytes_ += static_cast<int64_t>(t.size());
}

void BpeTrainer::add_texts(std::span<const std::string> texts) {
  std::vector<std::string_view> views(texts.begin(), texts.end());
  add_pieces(views);
}

void BpeTrainer::add_text(std::string_view text) {
  constexpr size_t kChunk = 1 << 20;
  std::vector<std::string_view> chunks;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t cut = std::min(text.size(), begin + kChunk);
    // Cut after a '\n' followed by a non-space byte: no standard pattern's piece crosses that point.
    while (cut < text.size() && !(text[cut - 1] == '\n' && !std::isspace(static_cast<unsigned char>(text[cut]))))
      ++cut;
    chunks.push_back(text.substr(begin, cut - begin));
    begin = cut;
  }
  add_pieces(chunks);
}

std::unique_ptr<BpeTokenizer> BpeTrainer::train() const {
  const int64_t target = options_.vocab_size - static_cast<int64_t>(options_.special_tokens.size());

  // Words in byte order, so everything below is independent of hashing and threads.
  std::vector<const std::pair<const std::string, int64_t>*> sorted;
  sorted.reserve(counts_.size());
  for (const auto& entry : counts_) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  std::vector<std::vector<int32_t>> words(sorted.size());
  std::vector<int64_t> freq(sorted.size());
  for (size_t w = 0; w < sorted.size(); ++w) {
    for (unsigned char c : sorted[w]->first) words[w].push_back(c);
    freq[w] = sorted[w]->second;
  }

  std::vector<std::string> tokens(256);
  BytesMap token_ids;
  for (int b = 0; b < 256; ++b) {
    tokens[b] = std::string(1, static_cast<char>(b));
    token_ids.insert(tokens[b], b);
  }

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<uint32_t>> where;  // pair -> words that may hold it
  for (size_t w = 0; w < words.size(); ++w) {
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      const uint64_t p = pack(words[w][i], words[w][i + 1]);
      pair_count[p] += freq[w];
      auto& list = where[p];
      if (list.empty() || list.back() != w) list.push_back(static_cast<uint32_t>(w));
    }
  }
  std::priority_queue<Candidate> heap;
  for (const auto& [p, n] : pair_count) heap.push({n, p});

  std::vector<BytePairEncoder::Merge> merges;
  std::vector<uint64_t> touched;
  std::vector<int32_t> merged;
  while (static_cast<int64_t>(tokens.size()) < target && !heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    const auto it = pair_count.find(top.pair);
    const int64_t current = it == pair_count.end() ? 0 : it->second;
    if (current != top.count) {  // stale: the count fell since this entry was pushed
      if (current > 0) heap.push({current, top.pair});
      continue;
    }
    if (current < options_.min_frequency) break;

    const auto a = static_cast<int32_t>(top.pair >> 32), b = static_cast<int32_t>(top.pair & 0xFFFFFFFFu);
    const std::string joined = tokens[a] + tokens[b];
    int32_t id = token_ids.find(joined);
    if (id < 0) {  // (a merge may rebuild bytes an earlier merge already made: same token)
      id = static_cast<int32_t>(tokens.size());
      tokens.push_back(joined);
      token_ids.insert(joined, id);
    }
    merges.push_back({a, b});

    std::vector<uint32_t> holders = std::move(where[top.pair]);
    where.erase(top.pair);
    std::sort(holders.begin(), holders.end());
    holders.erase(std::unique(holders.begin(), holders.end()), holders.end());
    touched.clear();
    for (const uint32_t w : holders) {
      std::vector<int32_t>& sym = words[w];
      bool holds = false;
      for (size_t i = 0; i + 1 < sym.size() && !holds; ++i) holds = sym[i] == a && sym[i + 1] == b;
      if (!holds) continue;
      const int64_t f = freq[w];
      for (size_t i = 0; i + 1 < sym.size(); ++i) pair_count[pack(sym[i], sym[i + 1])] -= f;
      merged.clear();
      for (size_t i = 0; i < sym.size();) {
        if (i + 1 < sym.size() && sym[i] == a && sym[i + 1] == b) {
          merged.push_back(id);
          i += 2;
        } else {
          merged.push_back(sym[i++]);
        }
      }
      sym.assign(merged.begin(), merged.end());
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        const uint64_t q = pack(sym[i], sym[i + 1]);
        pair_count[q] += f;
        if (sym[i] == id || sym[i + 1] == id) {  // a pair this merge made: new or grown
          where[q].push_back(w);
          touched.push_back(q);
        }
      }
    }
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (const uint64_t q : touched) heap.push({pair_count[q], q});
  }

  BpeTokenizer::Spec spec;
  spec.format = BpeTokenizer::Format::tokenizer_json;
  spec.name = "(trained)";
  spec.patterns = {options_.pattern};
  std::vector<BytePairEncoder::Token> vocab;
  vocab.reserve(tokens.size());
  for (size_t id = 0; id < tokens.size(); ++id) vocab.push_back({tokens[id], static_cast<int32_t>(id)});
  for (const std::string& s : options_.special_tokens)
    spec.special.push_back({s, static_cast<int32_t>(tokens.size() + spec.special.size())});
  spec.bpe = BytePairEncoder::from_merges(std::move(vocab), std::move(merges), /*ignore_merges=*/false,
                                          "trained tokenizer");
  return std::make_unique<BpeTokenizer>(std::move(spec));
}

}  // namespace foundry
