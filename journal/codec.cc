#include "tidemark/journal/codec.h"

#include <isa-l/igzip_lib.h>
#include <zstd.h>

#include <memory>
#include <vector>

namespace tidemark {

std::string_view CodecName(Codec codec) {
  switch (codec) {
    case Codec::kNone: return "none";
    case Codec::kZstd: return "zstd";
    case Codec::kIgzip: return "igzip";
  }
  return "unknown";
}

Result<Codec> ParseCodec(std::string_view name) {
  for (Codec c : {Codec::kNone, Codec::kZstd, Codec::kIgzip}) {
    if (CodecName(c) == name) return c;
  }
  return Status::InvalidArgument("unknown codec '" + std::string(name) +
                                 "' (none, zstd, igzip)");
}

namespace {

bool CompressZstd(std::string_view in, std::string* out) {
  // One context per thread: creating one costs more than compressing 4 KiB.
  thread_local std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(
      ZSTD_createCCtx(), ZSTD_freeCCtx);
  out->resize(ZSTD_compressBound(in.size()));
  size_t n = ZSTD_compressCCtx(cctx.get(), out->data(), out->size(), in.data(),
                               in.size(), 1);
  if (ZSTD_isError(n)) return false;
  out->resize(n);
  return true;
}

bool CompressIgzip(std::string_view in, std::string* out) {
  thread_local std::vector<uint8_t> level_buf(ISAL_DEF_LVL1_DEFAULT);
  isal_zstream stream;
  isal_deflate_stateless_init(&stream);
  stream.level = 1;
  stream.level_buf = level_buf.data();
  stream.level_buf_size = static_cast<uint32_t>(level_buf.size());
  stream.gzip_flag = IGZIP_DEFLATE;
  stream.end_of_stream = 1;
  stream.flush = NO_FLUSH;
  out->resize(in.size() + in.size() / 8 + 1024);
  stream.next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(in.data()));
  stream.avail_in = static_cast<uint32_t>(in.size());
  stream.next_out = reinterpret_cast<uint8_t*>(out->data());
  stream.avail_out = static_cast<uint32_t>(out->size());
  if (isal_deflate_stateless(&stream) != COMP_OK) return false;
  out->resize(stream.total_out);
  return true;
}

// True when the bytes look random (encrypted, already compressed): their
// byte histogram is as flat as uniform noise's. zstd level 1 spends about
// as long failing on such a block as the rest of a journal write costs
// (measured: libzstd was 26 % of the tap's samples under fio's random data).
// Repetitions of a random pattern also look flat and are stored raw: a
// missed saving, never a wrong byte. Same test as btrfs's heuristic, simpler.
bool LooksIncompressible(std::string_view in) {
  if (in.size() < 1024) return false;
  uint32_t counts[256] = {};
  const size_t step = in.size() / 1024;  // 1024 samples: flat vs skewed is clear
  uint64_t n = 0;
  for (size_t i = 0; i < in.size(); i += step, ++n) ++counts[static_cast<uint8_t>(in[i])];
  uint64_t sum_squares = 0;
  for (uint32_t c : counts) sum_squares += uint64_t{c} * c;
  // For uniform bytes E[sum c^2] = n + n(n-1)/256; allow 15 % above it.
  return sum_squares * 256 <= (n * 256 + n * (n - 1)) * 115 / 100;
}

}  // namespace

bool Compress(Codec codec, std::string_view in, std::string* out) {
  bool ok = false;
  if (codec != Codec::kNone && LooksIncompressible(in)) return false;
  switch (codec) {
    case Codec::kNone: return false;
    case Codec::kZstd: ok = CompressZstd(in, out); break;
    case Codec::kIgzip: ok = CompressIgzip(in, out); break;
  }
  return ok && out->size() < in.size() - in.size() / 8;
}

Status Decompress(Codec codec, std::string_view in, char* out, size_t raw_bytes) {
  switch (codec) {
    case Codec::kNone:
      if (in.size() != raw_bytes) {
        return Status::Corruption("stored length " + std::to_string(in.size()) +
                                  " != " + std::to_string(raw_bytes));
      }
      std::copy(in.begin(), in.end(), out);
      return Status::Ok();
    case Codec::kZstd: {
      thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(
          ZSTD_createDCtx(), ZSTD_freeDCtx);
      size_t n = ZSTD_decompressDCtx(dctx.get(), out, raw_bytes, in.data(), in.size());
      if (ZSTD_isError(n) || n != raw_bytes) {
        return Status::Corruption("zstd payload does not expand to " +
                                  std::to_string(raw_bytes) + " bytes");
      }
      return Status::Ok();
    }
    case Codec::kIgzip: {
      inflate_state state;
      isal_inflate_init(&state);
      state.crc_flag = ISAL_DEFLATE;
      state.next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(in.data()));
      state.avail_in = static_cast<uint32_t>(in.size());
      state.next_out = reinterpret_cast<uint8_t*>(out);
      state.avail_out = static_cast<uint32_t>(raw_bytes);
      int rc = isal_inflate_stateless(&state);
      if (rc != ISAL_DECOMP_OK || state.total_out != raw_bytes) {
        return Status::Corruption("igzip payload does not expand to " +
                                  std::to_string(raw_bytes) + " bytes");
      }
      return Status::Ok();
    }
  }
  return Status::Corruption("unknown codec id " +
                            std::to_string(static_cast<int>(codec)));
}

}  // namespace tidemark
