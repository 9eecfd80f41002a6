// Builds the trainer's data from a RunConfig's `data:` section, as Megatron's pretrain_gpt does
// with --data-path / --split / --mock-data, plus one convenience: raw text files are prepared
// on first use (a byte-level BPE tokenizer is trained on them unless one is given, and they are
// preprocessed into a Megatron indexed dataset under output_dir/data), so `foundry train` goes
// from text to a trained model in one command.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "foundry/data/tokenizer.h"
#include "foundry/train/trainer.h"

namespace foundry {

struct TrainingData {
  Trainer::Data data;
  std::shared_ptr<const Tokenizer> tokenizer;  // null for mock data
  std::string description;                     // one line for the log
};

// Resolves model.vocab_size = 0 to the tokenizer's vocabulary padded to a multiple of 128
// (Megatron's --make-vocab-size-divisible-by) and builds the train and valid sources.
TrainingData build_training_data(RunConfig& cfg, std::FILE* log);

// Prepares data.text_files into output_dir/data (tokenizer/ and corpus.{bin,idx}) unless already
// there; returns the indexed dataset prefix. Documents are cut at lines equal to
// data.text_document_separator, and bytes that are not valid UTF-8 become U+FFFD.
std::string prepare_text_data(const RunConfig& cfg, std::FILE* log);

// Replaces every invalid UTF-8 sequence by U+FFFD (one per maximal invalid subpart).
std::string sanitize_utf8(std::string_view text);

}  // namespace foundry
