// foundry preprocess --input FILES... --tokenizer PATH --output-prefix P: tokenizes raw text
// (.txt, .jsonl/.json with a "text" field) into Megatron's indexed dataset P.bin / P.idx
// (data/preprocess.h). A progress bar on stderr when it is a terminal, a line every few seconds
// otherwise; a summary line on stdout at the end.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "foundry/cli/commands.h"
#include "foundry/data/preprocess.h"

namespace foundry::cli {

namespace {

std::string human(double x) {
  const char* units[] = {"", "k", "M", "G", "T"};
  int u = 0;
  while (x >= 1000.0 && u < 4) {
    x /= 1000.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f%s" : "%.1f%s", x, units[u]);
  return buf;
}

// Renders PreprocessProgress: a redrawn bar on a terminal, periodic plain lines elsewhere.
class ProgressDisplay {
 public:
  ProgressDisplay() : tty_(::isatty(::fileno(stderr)) != 0) {}
  void update(const PreprocessProgress& p) {
    const double frac = p.total_bytes > 0 ? static_cast<double>(p.bytes_read) / static_cast<double>(p.total_bytes) : 1.0;
    const double mb_s = p.seconds > 0 ? static_cast<double>(p.bytes_read) / 1e6 / p.seconds : 0.0;
    const double tok_s = p.seconds > 0 ? static_cast<double>(p.tokens) / p.seconds : 0.0;
    if (tty_) {
      constexpr int width = 30;
      const int fill = static_cast<int>(frac * width + 0.5);
      std::fprintf(stderr, "\r[%.*s%*s] %3.0f%% | %s docs | %s tokens | %.1f MB/s | %s tok/s ",
                   fill, "##############################", width - fill, "", 100.0 * frac,
                   human(static_cast<double>(p.documents)).c_str(), human(static_cast<double>(p.tokens)).c_str(),
                   mb_s, human(tok_s).c_str());
      drawn_ = true;
    } else if (p.seconds - last_line_ >= 5.0) {
      std::fprintf(stderr, "preprocess: %.0f%% | %lld docs | %lld tokens | %.1f MB/s | %.0f tok/s\n", 100.0 * frac,
                   static_cast<long long>(p.documents), static_cast<long long>(p.tokens), mb_s, tok_s);
      last_line_ = p.seconds;
    }
    std::fflush(stderr);
  }
  void finish() {
    if (drawn_) std::fputc('\n', stderr);
  }

 private:
  bool tty_;
  bool drawn_ = false;
  double last_line_ = 0;
};

void run_preprocess(const PreprocessOptions& opts, const std::string& tokenizer_path) {
  const std::unique_ptr<Tokenizer> tokenizer = Tokenizer::load(tokenizer_path);
  ProgressDisplay display;
  const PreprocessResult r =
      preprocess(*tokenizer, opts, [&](const PreprocessProgress& p) { display.update(p); });
  display.finish();
  const IndexedDataset written(opts.output_prefix);
  std::printf("foundry preprocess: %s\n", written.describe().c_str());
  std::printf("tokenizer %s | %lld documents (%lld empty skipped) | %.1f MB of text | %.1f s | %.0f tokens/s\n",
              tokenizer->description().c_str(), static_cast<long long>(r.documents),
              static_cast<long long>(r.empty_documents), static_cast<double>(r.bytes) / 1e6, r.seconds,
              r.seconds > 0 ? static_cast<double>(r.tokens) / r.seconds : 0.0);
}

}  // namespace

void add_preprocess_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "preprocess", "Tokenize .txt / .jsonl files into a Megatron indexed dataset (PREFIX.bin / PREFIX.idx)");
  auto opts = std::make_shared<PreprocessOptions>();
  auto tokenizer = std::make_shared<std::string>();
  cmd->add_option("--input", opts->inputs, "Input files: .txt (one document per file, or see "
                  "--split-documents-on) or .jsonl/.json (one JSON object per line)")->required()->expected(1, -1);
  cmd->add_option("--tokenizer", *tokenizer, "Tokenizer: a .tiktoken file, a tokenizer.json, or a directory")->required();
  cmd->add_option("--output-prefix", opts->output_prefix, "Writes PREFIX.bin and PREFIX.idx")->required();
  cmd->add_flag("--append-eod,!--no-append-eod", opts->append_eod,
                "Append the end-of-document token to every document (default: on)");
  cmd->add_option("--workers", opts->workers, "Encoding threads (default: all)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--json-key", opts->corpus.json_key, "Field of each JSON line holding the text (default: text)");
  cmd->add_option("--split-documents-on", opts->corpus.document_separator,
                  "In .txt files, a line holding exactly this text ends a document (e.g. %)");
  cmd->callback([opts, tokenizer] { run_preprocess(*opts, *tokenizer); });
}

}  // namespace foundry::cli
