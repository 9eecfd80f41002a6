// Durable file-system steps for atomic checkpoints (POSIX): a file or directory is only
// "written" once its bytes are fsync'ed, and a rename is only durable once the directory that
// holds it is fsync'ed. Every failure is a foundry::Error naming the path and the OS error.
//
// The atomic-publish recipe used by checkpoint.cpp (the same one Megatron-Core, PyTorch DCP and
// most databases use): write into a temporary name, fsync the file(s), rename onto the final
// name (atomic within one file system), fsync the parent directory.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace foundry {

// Writes all n bytes at the descriptor's position (retrying short writes and EINTR).
void write_all(int fd, const void* data, size_t n, const std::string& path);
// Reads exactly n bytes at offset (retrying short reads); a short file is an error naming path.
void pread_exact(int fd, void* data, size_t n, int64_t offset, const std::string& path);

// fsync of one regular file or directory.
void fsync_path(const std::string& path);
// fsync of every regular file and directory under dir (directories after their contents).
void fsync_tree(const std::string& dir);

// Writes `text` to path atomically: path.tmp-<pid> is written and fsync'ed, renamed onto path,
// and the parent directory is fsync'ed. Readers see the old or the new contents, never a mix.
void write_file_atomic(const std::string& path, std::string_view text);

// Whole file as a string; files larger than max_bytes are an error (guards against reading a
// huge or wrong file by mistake).
std::string read_small_file(const std::string& path, int64_t max_bytes = int64_t{64} << 20);

// True when a process with this pid exists on this machine (kill(pid, 0)).
bool process_alive(int64_t pid);

}  // namespace foundry
