// Block compression codecs of the journal and, later, the wire.
// See docs/format-journal.md#codecs. Ids are stored on disk: never renumber.
// Thread-safety: pure functions; each call allocates its own state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tidemark/journal/status.h"

namespace tidemark {

enum class Codec : uint8_t {
  kNone = 0,
  kZstd = 1,   // zstd frame, level 1
  kIgzip = 2,  // raw DEFLATE from ISA-L igzip, level 1
};

// "none", "zstd", "igzip"; parses the same names.
std::string_view CodecName(Codec codec);
Result<Codec> ParseCodec(std::string_view name);

// Compresses `in` into *out (replacing it). Returns false when the codec did
// not make the data smaller than `in.size() * 7 / 8`: the caller then stores
// the raw bytes with Codec::kNone. kNone always returns false.
bool Compress(Codec codec, std::string_view in, std::string* out);

// Decompresses `in`, which must expand to exactly `raw_bytes` bytes, into out
// (which must have room for raw_bytes). kCorruption when it does not.
Status Decompress(Codec codec, std::string_view in, char* out, size_t raw_bytes);

}  // namespace tidemark
