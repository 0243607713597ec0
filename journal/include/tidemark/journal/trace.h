// Block I/O traces in the MQSim text format (tests/data/traces/README.md):
// `time_ns device lba sectors type` per line, type 0 = write, 1 = read.
// Folding onto a volume and the write payload follow that README exactly, so
// that every replay of a trace writes the same bytes.
// Thread-safety: pure functions and value types.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tidemark/journal/status.h"

namespace tidemark {

struct TraceRequest {
  uint64_t line = 0;  // 0-based line number in the file: the payload's r
  int64_t time_ns = 0;
  uint32_t device = 0;
  uint64_t lba = 0;
  uint64_t sectors = 0;
  bool write = false;
};

// Parses a whole trace. kInvalidArgument naming the line on a bad one.
Result<std::vector<TraceRequest>> ReadTrace(const std::string& path);

struct FoldedExtent {
  uint64_t offset_bytes = 0;
  uint64_t length_bytes = 0;
};
// Folds a request onto a volume of volume_bytes: offset = lba*512 mod V, moved
// back to fit, with align (0 or 4096...) applied first: offset rounded down
// and length rounded up to align. Lengths above the volume are clamped to it.
FoldedExtent FoldRequest(const TraceRequest& r, uint64_t volume_bytes, uint64_t align);

// The payload of request `line` covering `length_bytes`: 512-byte sector k
// holds the little-endian u64 line*65536 + k, 64 times.
std::string TracePayload(uint64_t line, uint64_t length_bytes);

}  // namespace tidemark
