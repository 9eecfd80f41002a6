// CRC-32C (Castagnoli): the checksum of iSCSI (RFC 3720 §12.1, test vectors in its appendix B.4),
// ext4, and TensorFlow's TFRecord files (tensorflow/tsl/lib/hash/crc32c.h). Reflected polynomial
// 0x82F63B78 (0x1EDC6F41 unreflected), initial value and final XOR 0xFFFFFFFF, so
// crc32c("123456789") = 0xE3069283.
//
// Uses the SSE4.2 `crc32` instruction when the CPU has it (checked once at run time) and a
// slicing-by-8 table otherwise; both give identical results.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace foundry {

// CRC-32C of `crc`'s message followed by data[0, n): crc32c_extend(crc32c(a), b) == crc32c(a + b).
// `crc` is a finished CRC (as returned), 0 for the empty message.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n);

inline uint32_t crc32c(const void* data, size_t n) { return crc32c_extend(0, data, n); }
inline uint32_t crc32c(std::string_view s) { return crc32c_extend(0, s.data(), s.size()); }

namespace detail {
// The two implementations, exposed so tests can check that they agree.
uint32_t crc32c_extend_table(uint32_t crc, const void* data, size_t n);
uint32_t crc32c_extend_sse42(uint32_t crc, const void* data, size_t n);  // only where supported
bool crc32c_have_sse42();
}  // namespace detail

}  // namespace foundry
