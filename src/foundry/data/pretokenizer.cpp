// Pre-tokenization with PCRE2 (see pretokenizer.h). Named patterns: the pat_str of js-tiktoken 1.0.21
// (gpt2, cl100k_base, o200k_base; equivalent to tiktoken's openai_public.py) and of Meta's Llama 3
// tokenizer.py.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "foundry/data/pretokenizer.h"

#include <pcre2.h>

#include "foundry/core/check.h"
#include "foundry/data/byte_level.h"

namespace foundry {

namespace {

// Unicode White_Space (PropList.txt), which Rust's regex crate uses for `\s`.
constexpr std::string_view kWhiteSpaceClass =
    "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
    "\\x{205F}\\x{3000}";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  const int n = pcre2_get_error_message(code, buf, sizeof(buf));
  return n < 0 ? "unknown PCRE2 error " + std::to_string(code) : std::string(reinterpret_cast<char*>(buf));
}

// One JIT stack per thread, grown on demand up to 64 MiB (long whitespace runs backtrack).
struct ThreadState {
  pcre2_jit_stack* jit_stack = nullptr;
  pcre2_match_data* match_data = nullptr;
  ThreadState() {
    jit_stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr);
    match_data = pcre2_match_data_create(1, nullptr);  // the whole match is all we read
  }
  ~ThreadState() {
    pcre2_match_data_free(match_data);
    pcre2_jit_stack_free(jit_stack);
  }
};

ThreadState& thread_state() {
  thread_local ThreadState state;
  FOUNDRY_CHECK(state.match_data != nullptr, "pre-tokenizer: out of memory for PCRE2 match data");
  return state;
}

pcre2_jit_stack* jit_stack_callback(void*) { return thread_state().jit_stack; }

size_t utf8_char_length(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

}  // namespace

std::string pretokenizer_pattern(std::string_view name) {
  if (name == "gpt2")
    return R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  if (name == "cl100k")
    return R"(('s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  if (name == "o200k")
    return R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+('s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*('s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  if (name == "llama3")
    return R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  FOUNDRY_FAIL("unknown pre-tokenizer pattern name '{}' (expected gpt2, cl100k, o200k or llama3)", name);
}

std::string translate_pattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[++i];
      if (e == 's') {
        out += in_class ? std::string(kWhiteSpaceClass) : "[" + std::string(kWhiteSpaceClass) + "]";
      } else if (e == 'S') {
        FOUNDRY_CHECK(!in_class, "pre-tokenizer pattern '{}': \\S inside a character class is not supported", p);
        out += "[^" + std::string(kWhiteSpaceClass) + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    out += c;
    if (!in_class && c == '[') {
      in_class = true;
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];  // a leading ']' is literal
    } else if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      const size_t end = p.find(":]", i + 2);  // POSIX class [:name:]
      if (end != std::string_view::npos) {
        out.append(p.substr(i + 1, end + 2 - (i + 1)));
        i = end + 1;
      }
    } else if (in_class && c == ']') {
      in_class = false;
    }
  }
  return out;
}

struct Pretokenizer::Regex {
  pcre2_code* code = nullptr;
  pcre2_match_context* context = nullptr;
  bool jit = false;
  ~Regex() {
    pcre2_match_context_free(context);
    pcre2_code_free(code);
  }
};

Pretokenizer::Pretokenizer(std::vector<std::string> patterns) : patterns_(std::move(patterns)) {
  for (const std::string& pattern : patterns_) {
    const std::string translated = translate_pattern(pattern);
    auto re = std::make_unique<Regex>();
    int error = 0;
    PCRE2_SIZE offset = 0;
    re->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                             PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
    FOUNDRY_CHECK(re->code != nullptr, "pre-tokenizer pattern '{}' does not compile: {} (at offset {} of '{}')",
                  pattern, pcre2_message(error), offset, translated);
    re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;  // else the interpreter runs it
    re->context = pcre2_match_context_create(nullptr);
    FOUNDRY_CHECK(re->context != nullptr, "pre-tokenizer: out of memory for a PCRE2 match context");
    if (re->jit) pcre2_jit_stack_assign(re->context, jit_stack_callback, nullptr);
    regexes_.push_back(std::move(re));
  }
}

Pretokenizer::~Pretokenizer() = default;
Pretokenizer::Pretokenizer(Pretokenizer&&) noexcept = default;
Pretokenizer& Pretokenizer::operator=(Pretokenizer&&) noexcept = default;

void Pretokenizer::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t bad = byte_level::find_invalid_utf8(text, pos);
    if (bad > pos) {
      if (regexes_.empty())
        pieces.push_back(text.substr(pos, bad - pos));
      else
        split_valid(text.substr(pos, bad - pos), 0, pieces);
    }
    if (bad < text.size()) pieces.push_back(text.substr(bad, 1));
    pos = bad + 1;
  }
}

// `text` is valid UTF-8 here, so PCRE2's own UTF check is skipped.
void Pretokenizer::split_valid(std::string_view text, size_t level, std::vector<std::string_view>& pieces) const {
  const auto emit = [&](size_t begin, size_t end) {
    if (level + 1 == regexes_.size())
      pieces.push_back(text.substr(begin, end - begin));
    else
      split_valid(text.substr(begin, end - begin), level + 1, pieces);
  };
  const Regex& re = *regexes_[level];
  ThreadState& ts = thread_state();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(ts.match_data);
  size_t search = 0, done = 0;  // next search start; end of the last piece emitted
  while (search <= text.size()) {
    const int rc = re.jit ? pcre2_jit_match(re.code, subject, text.size(), search, 0, ts.match_data, re.context)
                          : pcre2_match(re.code, subject, text.size(), search, PCRE2_NO_UTF_CHECK,
                                        ts.match_data, re.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    FOUNDRY_CHECK(rc >= 0, "pre-tokenizer pattern '{}' failed at byte {} of a {}-byte text: {}", patterns_[level],
                  search, text.size(), pcre2_message(rc));
    const size_t begin = ov[0], end = ov[1];
    if (begin > done) emit(done, begin);  // unmatched text between matches is a piece too
    if (end > begin) {
      emit(begin, end);
      done = search = end;
    } else {  // an empty match: step over one character, which joins the next gap
      done = begin;
      if (begin == text.size()) break;
      search = begin + utf8_char_length(static_cast<unsigned char>(text[begin]));
    }
  }
  if (done < text.size()) emit(done, text.size());
}

}  // namespace foundry
