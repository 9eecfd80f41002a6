// Preprocessing: raw text files -> a Megatron indexed dataset (indexed_dataset.h), as
// Megatron's tools/preprocess_data.py does with one JSON key and no sentence splitting: each
// document is tokenized, the end-of-document token appended (append_eod), and written as one
// sequence of one document. The token dtype is Megatron's choice for the tokenizer's vocabulary
// (uint16 below 65500 ids, else int32).
//
// Streaming: documents are read in chunks of about chunk_bytes of text, each chunk encoded in
// parallel by `workers` OpenMP threads (result[i] = tokenizer.encode(doc[i]), the contract of
// Tokenizer::encode_batch) and written in input order, so the output does not depend on the
// number of workers.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "foundry/data/indexed_dataset.h"
#include "foundry/data/text_corpus.h"
#include "foundry/data/tokenizer.h"

namespace foundry {

struct PreprocessOptions {
  std::vector<std::string> inputs;
  std::string output_prefix;  // writes output_prefix.bin and .idx (parent directories created)
  bool append_eod = true;
  int workers = 0;            // encoding threads; 0: all of foundry's threads
  TextCorpusOptions corpus;
  int64_t chunk_bytes = 4 << 20;
};

struct PreprocessProgress {
  int64_t bytes_read = 0, total_bytes = 0;
  int64_t documents = 0, tokens = 0;
  double seconds = 0;
};

struct PreprocessResult {
  int64_t documents = 0, tokens = 0, bytes = 0, empty_documents = 0;
  double seconds = 0;
  IndexedDType dtype = IndexedDType::u16;
};

// `progress` is called after every chunk (from the calling thread).
PreprocessResult preprocess(const Tokenizer& tokenizer, const PreprocessOptions& opts,
                            const std::function<void(const PreprocessProgress&)>& progress = {});

}  // namespace foundry
