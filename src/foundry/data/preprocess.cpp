#include "foundry/data/preprocess.h"

#include <chrono>
#include <exception>
#include <filesystem>

#include "foundry/core/check.h"
#include "foundry/core/threads.h"

namespace foundry {

PreprocessResult preprocess(const Tokenizer& tokenizer, const PreprocessOptions& opts,
                            const std::function<void(const PreprocessProgress&)>& progress) {
  FOUNDRY_CHECK(!opts.output_prefix.empty(), "preprocess: no output prefix");
  FOUNDRY_CHECK(opts.workers >= 0, "preprocess: workers must be >= 0, got {}", opts.workers);
  FOUNDRY_CHECK(opts.chunk_bytes >= 1, "preprocess: chunk_bytes must be >= 1");
  const auto t0 = std::chrono::steady_clock::now();
  TextCorpus corpus(opts.inputs, opts.corpus);

  const std::filesystem::path parent = std::filesystem::path(opts.output_prefix).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    FOUNDRY_CHECK(!ec, "preprocess: cannot create directory {}: {}", parent.string(), ec.message());
  }
  const int64_t vocab = tokenizer.vocab_size();
  const int32_t eod = tokenizer.eod_id();
  FOUNDRY_CHECK(!opts.append_eod || (eod >= 0 && eod < vocab),
                "preprocess: tokenizer {} has no end-of-document token in [0, {}) (eod id {})",
                tokenizer.description(), vocab, eod);
  PreprocessResult result;
  result.dtype = optimal_indexed_dtype(vocab);
  IndexedDatasetWriter writer(opts.output_prefix, result.dtype);
  const int workers = opts.workers > 0 ? opts.workers : num_threads();

  std::vector<std::string> docs;
  std::vector<std::string> where;
  std::vector<std::vector<int32_t>> ids;
  std::string text;
  bool more = true;
  while (more) {
    docs.clear();
    where.clear();
    int64_t chunk = 0;
    while (chunk < opts.chunk_bytes && (more = corpus.next(text))) {
      chunk += static_cast<int64_t>(text.size());
      docs.push_back(std::move(text));
      where.push_back(corpus.location());
      text.clear();
    }
    const int64_t n = static_cast<int64_t>(docs.size());
    ids.assign(docs.size(), {});
    std::exception_ptr error;
    int64_t failed = -1;
#pragma omp parallel for schedule(dynamic, 1) num_threads(workers)
    for (int64_t i = 0; i < n; ++i) {
      try {
        ids[static_cast<size_t>(i)] = tokenizer.encode(docs[static_cast<size_t>(i)]);
      } catch (...) {
#pragma omp critical(foundry_preprocess_error)
        if (failed < 0 || i < failed) {
          failed = i;
          error = std::current_exception();
        }
      }
    }
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        FOUNDRY_FAIL("{}: cannot tokenize the document: {}", where[static_cast<size_t>(failed)], e.what());
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      std::vector<int32_t>& d = ids[static_cast<size_t>(i)];
      for (const int32_t id : d)
        FOUNDRY_CHECK(id >= 0 && id < vocab, "{}: tokenizer {} produced id {} outside its vocabulary [0, {})",
                      where[static_cast<size_t>(i)], tokenizer.description(), id, vocab);
      if (opts.append_eod) d.push_back(eod);
      if (d.empty()) {
        ++result.empty_documents;  // text that encodes to nothing, with no eod to carry
        continue;
      }
      writer.add_document(d);
      result.tokens += static_cast<int64_t>(d.size());
      ++result.documents;
      result.bytes += static_cast<int64_t>(docs[static_cast<size_t>(i)].size());
    }
    if (progress) {
      progress({.bytes_read = corpus.bytes_read(),
                .total_bytes = corpus.total_bytes(),
                .documents = result.documents,
                .tokens = result.tokens,
                .seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()});
    }
  }
  writer.finalize();
  result.empty_documents += corpus.empty_documents();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace foundry
