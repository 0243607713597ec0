#include "block_read.h"

#include <cstring>

#include "tidemark/journal/crc32c.h"

namespace tidemark::target {

using journal::BlockState;

std::string EncodeBlockRead(uint32_t block_bytes, uint32_t count, const BlockState* states,
                            const char* data) {
  std::string body;
  body.reserve(count + 4);
  for (uint32_t i = 0; i < count; ++i) body.push_back(static_cast<char>(states[i]));
  for (uint32_t i = 0; data && i < count; ++i) {
    if (states[i] == BlockState::kData) {
      body.append(data + static_cast<size_t>(i) * block_bytes, block_bytes);
    }
  }
  const uint32_t crc = Crc32c(body.data(), body.size());
  for (int shift = 24; shift >= 0; shift -= 8) body.push_back(static_cast<char>(crc >> shift));
  return body;
}

Status DecodeBlockRead(std::string_view body, uint32_t block_bytes, uint32_t count, char* out,
                       BlockState* states) {
  if (body.size() < uint64_t{count} + 4) {
    return Status::Corruption("is " + std::to_string(body.size()) + " bytes, too short for " +
                              std::to_string(count) + " states and a CRC");
  }
  uint32_t want = 0;
  for (size_t i = body.size() - 4; i < body.size(); ++i) {
    want = (want << 8) | static_cast<unsigned char>(body[i]);
  }
  if (Crc32c(body.data(), body.size() - 4) != want) return Status::Corruption("failed its CRC32C");
  uint64_t data_blocks = 0;
  for (uint32_t i = 0; i < count; ++i) {
    const auto st = static_cast<BlockState>(body[i]);
    if (st != BlockState::kData && st != BlockState::kZero) {
      return Status::Corruption("has an unknown block state " +
                                std::to_string(static_cast<unsigned char>(body[i])));
    }
    data_blocks += st == BlockState::kData;
  }
  const uint64_t expect = count + (out ? data_blocks * block_bytes : 0) + 4;
  if (body.size() != expect) {
    return Status::Corruption("is " + std::to_string(body.size()) + " bytes, not " +
                              std::to_string(expect));
  }
  const char* p = body.data() + count;
  for (uint32_t i = 0; i < count; ++i) {
    const auto st = static_cast<BlockState>(body[i]);
    if (states) states[i] = st;
    if (!out) continue;
    char* dst = out + static_cast<size_t>(i) * block_bytes;
    if (st == BlockState::kData) {
      std::memcpy(dst, p, block_bytes);
      p += block_bytes;
    } else {
      std::memset(dst, 0, block_bytes);
    }
  }
  return Status::Ok();
}

}  // namespace tidemark::target
