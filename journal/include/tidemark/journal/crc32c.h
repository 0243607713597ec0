// CRC32C (Castagnoli), the standard one: initial value and final XOR
// 0xFFFFFFFF; Crc32c("123456789") == 0xE3069283. Computed with ISA-L.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tidemark {

// CRC32C of n bytes at p.
uint32_t Crc32c(const void* p, size_t n);
inline uint32_t Crc32c(std::string_view s) { return Crc32c(s.data(), s.size()); }
// CRC32C of (bytes already summed into crc) followed by n bytes at p:
// Crc32cExtend(Crc32c(a), b) == Crc32c(a + b).
uint32_t Crc32cExtend(uint32_t crc, const void* p, size_t n);

}  // namespace tidemark
