// File helpers shared by the tokenizer formats: whole-file reads and atomic writes (temp file +
// rename, so a reader never sees half a tokenizer), with errors that name the path.
#pragma once

#include <string>

namespace foundry {

// The bytes of file `path`; `what` says what the file is for the error message ("tokenizer rank file").
std::string read_file(const std::string& path, const std::string& what);
// Writes `bytes` to `path` through `path`.tmp and a rename.
void write_file_atomic(const std::string& path, const std::string& bytes);
// `text` with control and non-ASCII bytes escaped, cut to `max` bytes: for error messages.
std::string quote_for_error(const std::string& text, size_t max = 60);

}  // namespace foundry
