// The block stream of the control API over TLS: the body of
// GET /v1/volumes/NAME/blocks?seq=S, a volume's non-zero blocks at one
// point, in block order. Private to target/: the server encodes it
// (remote_routes.cc), the CLI side decodes it (remote_client.cc).
// See docs/protocol.md#block-stream.
//
//   stream := record* end
//   record := block:be64 data(block_bytes)
//   end    := 0xFFFFFFFFFFFFFFFF count:be64 crc32c:be32       (complete)
//           | 0xFFFFFFFFFFFFFFFE length:be32 error(length)      (the server failed)
//
// Integers are big-endian. `count` is the number of records; the CRC32C
// covers every byte before it (records, the end marker and count). `error`
// is the contract's JSON error body {"error": {"code", "message"}}. A
// stream that stops before its end (a dropped connection, a killed server)
// is therefore always detected: the decoder reports it as truncated.
//
// Thread-safety: values; one thread per object.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tidemark/journal/journal.h"
#include "tidemark/journal/status.h"

namespace tidemark::target {

inline constexpr uint64_t kBlockStreamEnd = ~uint64_t{0};
inline constexpr uint64_t kBlockStreamError = ~uint64_t{0} - 1;
inline constexpr size_t kBlockStreamEndBytes = 8 + 8 + 4;

class BlockStreamEncoder {
 public:
  explicit BlockStreamEncoder(uint32_t block_bytes) : block_bytes_(block_bytes) {}
  // Appends one record to *out. `data` must be block_bytes long and `block`
  // above the previous one and below kBlockStreamError (bugs: abort).
  void AppendBlock(std::string* out, uint64_t block, std::string_view data);
  // Appends the end of a complete stream. Nothing may follow it.
  void AppendEnd(std::string* out);
  // Appends the end of a failed stream carrying `s` (not ok). Nothing may
  // follow it.
  static void AppendError(std::string* out, const Status& s);
  uint64_t count() const { return count_; }

 private:
  uint32_t block_bytes_;
  uint64_t count_ = 0;
  uint64_t last_ = 0;
  uint32_t crc_ = 0;  // CRC32C of everything appended so far
};

class BlockStreamDecoder {
 public:
  // `blocks`: the volume's block count; every record's block must be below
  // it.
  BlockStreamDecoder(uint32_t block_bytes, uint64_t blocks)
      : block_bytes_(block_bytes), blocks_(blocks) {}

  // Takes the next bytes of the stream (any split) and calls `fn` for every
  // record completed by them, in order. Returns fn's first error, or:
  //   kCorruption: a block out of order or beyond the volume, a count or
  //     CRC that does not match, an error end that is not valid JSON, bytes
  //     after the end;
  //   the server's Status (code and message from the error end), prefixed
  //     with nothing, when the stream ends with an error.
  // After an error the decoder stays failed and returns that error again.
  Status Feed(std::string_view bytes, const journal::BlockFn& fn);

  // Call when the transport has ended: Ok only when a complete end was
  // decoded and checked; the stored error when one was found; kCorruption
  // "block stream truncated after N blocks" otherwise.
  Status Finish() const;

  uint64_t blocks_seen() const { return count_; }
  bool ended() const { return ended_; }

 private:
  Status Fail(Status s);
  const uint32_t block_bytes_;
  const uint64_t blocks_;
  std::string buf_;     // bytes not yet decoded
  uint64_t count_ = 0;  // records decoded
  uint64_t next_ = 0;   // the next record's block must be at least this
  uint32_t crc_ = 0;    // CRC32C of the bytes decoded so far
  bool ended_ = false;
  Status failed_;
};

}  // namespace tidemark::target
