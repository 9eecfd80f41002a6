#include "foundry/core/crc32c.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace foundry {
namespace {

// Bit-at-a-time CRC-32C straight from the definition: the independent reference.
uint32_t crc32c_bitwise(const std::vector<uint8_t>& data) {
  uint32_t c = 0xFFFFFFFFu;
  for (uint8_t b : data) {
    c ^= b;
    for (int i = 0; i < 8; ++i) c = (c >> 1) ^ ((c & 1u) ? 0x82F63B78u : 0u);
  }
  return ~c;
}

std::vector<uint8_t> bytes(std::initializer_list<int> v) { return {v.begin(), v.end()}; }

// Every implementation, so each vector checks the table path and (where the CPU has it) SSE4.2.
std::vector<uint32_t> all_crcs(const std::vector<uint8_t>& d) {
  std::vector<uint32_t> out = {crc32c(d.data(), d.size()), detail::crc32c_extend_table(0, d.data(), d.size())};
  if (detail::crc32c_have_sse42()) out.push_back(detail::crc32c_extend_sse42(0, d.data(), d.size()));
  return out;
}

TEST(Crc32c, CheckValueAndShortStrings) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the catalogued check value of CRC-32/ISCSI
  EXPECT_EQ(crc32c(""), 0x00000000u);
  EXPECT_EQ(crc32c("a"), 0xC1D04330u);
  EXPECT_EQ(crc32c("The quick brown fox jumps over the lazy dog"), 0x22620404u);
}

// RFC 3720 (iSCSI) appendix B.4 "CRC Examples".
TEST(Crc32c, Rfc3720Vectors) {
  std::vector<uint8_t> zeros(32, 0x00), ones(32, 0xFF), inc(32), dec(32);
  for (int i = 0; i < 32; ++i) {
    inc[i] = static_cast<uint8_t>(i);
    dec[i] = static_cast<uint8_t>(31 - i);
  }
  // An iSCSI SCSI Read (10) command PDU.
  const std::vector<uint8_t> pdu =
      bytes({0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
             0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
             0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00});
  const std::pair<const std::vector<uint8_t>*, uint32_t> cases[] = {
      {&zeros, 0x8A9136AAu}, {&ones, 0x62A8AB43u}, {&inc, 0x46DD794Eu}, {&dec, 0x113FDB5Cu}, {&pdu, 0xD9963A56u}};
  for (const auto& [data, want] : cases) {
    EXPECT_EQ(crc32c_bitwise(*data), want);
    for (uint32_t got : all_crcs(*data)) EXPECT_EQ(got, want);
  }
}

// Every length 0..300 at every start alignment 0..7 against the bitwise reference.
TEST(Crc32c, AllLengthsAndAlignmentsMatchTheBitwiseReference) {
  std::vector<uint8_t> buf(320);
  uint32_t x = 12345;
  for (auto& b : buf) b = static_cast<uint8_t>((x = x * 1664525u + 1013904223u) >> 24);
  for (size_t offset = 0; offset < 8; ++offset)
    for (size_t n = 0; n <= 300; ++n) {
      const std::vector<uint8_t> d(buf.begin() + offset, buf.begin() + offset + n);
      const uint32_t want = crc32c_bitwise(d);
      ASSERT_EQ(crc32c(buf.data() + offset, n), want) << "offset " << offset << " n " << n;
      ASSERT_EQ(detail::crc32c_extend_table(0, buf.data() + offset, n), want) << "offset " << offset << " n " << n;
      if (detail::crc32c_have_sse42()) {
        ASSERT_EQ(detail::crc32c_extend_sse42(0, buf.data() + offset, n), want) << "offset " << offset << " n " << n;
      }
    }
}

TEST(Crc32c, ExtendEqualsCrcOfTheConcatenation) {
  const std::string a = "hello, ", b = "world and some more bytes to cross a word boundary";
  EXPECT_EQ(crc32c_extend(crc32c(a), b.data(), b.size()), crc32c(a + b));
  EXPECT_EQ(crc32c_extend(crc32c("1234"), "56789", 5), 0xE3069283u);
  EXPECT_EQ(detail::crc32c_extend_table(crc32c("1234"), "56789", 5), 0xE3069283u);
}

}  // namespace
}  // namespace foundry
