// Value types shared by every module: sequence numbers, extents, operations.
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace tidemark {

// A position in a consistency group's seq space. Seq 0 is the volume as it was
// when protection started; seqs only grow; gaps are allowed.
using Seq = uint64_t;
inline constexpr Seq kNoSeq = ~Seq{0};

// Wall-clock time as nanoseconds since the Unix epoch (UTC).
using TimeNs = int64_t;

// A byte range of a volume. Offsets and lengths are bytes.
struct Extent {
  uint64_t offset_bytes = 0;
  uint64_t length_bytes = 0;
  uint64_t end_bytes() const { return offset_bytes + length_bytes; }
  friend bool operator==(const Extent&, const Extent&) = default;
};

// Sorts and merges overlapping or touching extents in place.
void CoalesceExtents(std::vector<Extent>* extents);

// What a seq did. Values are stored on disk: never renumber.
enum class OpKind : uint8_t {
  kWrite = 1,        // data for [offset, offset+length)
  kTrim = 2,         // reads back as zeros afterwards
  kWriteZeroes = 3,  // zeros
  kImport = 4,       // a whole-volume import: changed blocks as one seq
};

// Flags of a seq. Stored on disk: never renumber.
enum SeqFlags : uint8_t {
  kSeqFua = 1 << 0,    // the write carried FUA
  kSeqFlush = 1 << 1,  // a FLUSH completed covering this seq
};

// One write of the ordered stream (docs/design.md#order-is-the-contract), as the tap hands
// it on and the journal takes it. Offsets and lengths are bytes, multiples
// of 512; data holds length_bytes bytes for kWrite and is empty otherwise
// (it points into the caller's buffer).
struct WriteOp {
  Seq seq = 0;
  TimeNs time_ns = 0;
  OpKind op = OpKind::kWrite;
  uint64_t offset_bytes = 0;
  uint64_t length_bytes = 0;
  std::string_view data;
  uint8_t flags = 0;  // kSeqFua
};

}  // namespace tidemark
