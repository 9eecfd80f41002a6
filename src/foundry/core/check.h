// foundry::Error and FOUNDRY_CHECK: every recoverable failure in foundry is an exception that
// carries the file and line where it was raised, so the CLI can print one clear line and tests
// can assert on the message.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace foundry {

class Error : public std::runtime_error {
 public:
  Error(std::string message, const char* file, int line)
      : std::runtime_error(fmt::format("{} ({}:{})", message, file, line)),
        message_(std::move(message)),
        file_(file),
        line_(line) {}
  const std::string& message() const { return message_; }
  const char* file() const { return file_; }
  int line() const { return line_; }

 private:
  std::string message_;
  const char* file_;
  int line_;
};

}  // namespace foundry

// FOUNDRY_CHECK(cond, "format {}", args...): throws foundry::Error when cond is false.
#define FOUNDRY_CHECK(cond, ...)                                                   \
  do {                                                                             \
    if (!(cond)) [[unlikely]]                                                      \
      throw ::foundry::Error(::fmt::format(__VA_ARGS__), __FILE__, __LINE__);      \
  } while (0)

// FOUNDRY_FAIL("format {}", args...): unconditional throw.
#define FOUNDRY_FAIL(...) throw ::foundry::Error(::fmt::format(__VA_ARGS__), __FILE__, __LINE__)
