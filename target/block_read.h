// Private to target/: the body of GET /v1/volumes/NAME/read, random access to
// the blocks of a point (docs/protocol.md#block-read):
//
//   read := state(count) data* crc32c:be32
//
// one state byte per block (journal::BlockState: 0 stored bytes, 1 reads as
// zeros), then the bytes of every block whose state is 0, in block order
// (none when the caller asked for states only), then the CRC32C of all that.
// remote_read.cc encodes, remote_client.cc decodes.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tidemark/journal/journal.h"
#include "tidemark/journal/status.h"

namespace tidemark::target {

// The body for `count` blocks: states[i] for each, and when `data` is not
// null (count * block_bytes, block i at i * block_bytes) the bytes of the
// kData blocks.
std::string EncodeBlockRead(uint32_t block_bytes, uint32_t count, const journal::BlockState* states,
                            const char* data);

// Decodes a body of `count` blocks: states into `states` unless null, and
// when `out` is not null (the body then carries data) every block into out
// (kZero blocks as zeros). kCorruption saying what is wrong (short, CRC,
// unknown state, length) and writing nothing meaningful then.
Status DecodeBlockRead(std::string_view body, uint32_t block_bytes, uint32_t count, char* out,
                       journal::BlockState* states);

}  // namespace tidemark::target
