#include "tidemark/journal/codec.h"

#include <isa-l/igzip_lib.h>
#include <zstd.h>

#include <array>
#include <cmath>
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

// True when zstd cannot win: the order-0 entropy of a byte sample says even
// a perfect Huffman coder would not get under 7 bits a byte, so unless the
// bytes repeat (LZ matches), compression fails the 7/8 test below. Random,
// encrypted and already compressed data, and fio's buffers (random with ~10 %
// zero bytes, which a flat-histogram test missed), cost zstd level 1 a failed
// attempt of about as long as the rest of a journal write (measured: libzstd
// was 27 % of the tap's samples); this test costs ~0.66 us a 4 KiB block
// (bench/journal_ingest_bench BM_Compress4KiB on incompressible data).
// Repetitions of a random pattern also have a high order-0 entropy and are
// stored raw: a missed saving, never a wrong byte.
bool LooksIncompressible(std::string_view in) {
  // 32 runs of 32 bytes spread over the input: runs, not single bytes, so
  // that data with a 4- or 8-byte structure (fio's) is sampled fairly.
  constexpr size_t kRuns = 32, kRun = 32, kSample = kRuns * kRun;
  if (in.size() < kSample) return false;
  static const std::array<float, kSample + 1> c_log2_c = [] {
    std::array<float, kSample + 1> t{};
    for (size_t c = 1; c <= kSample; ++c) t[c] = static_cast<float>(c * std::log2(double(c)));
    return t;
  }();
  // Four tables, summed at the end: consecutive equal bytes do not wait on
  // each other's increment.
  uint16_t counts[4][256] = {};
  const size_t stride = in.size() / kRuns;
  for (size_t r = 0; r < kRuns; ++r) {
    const auto* p = reinterpret_cast<const uint8_t*>(in.data() + r * stride);
    for (size_t i = 0; i < kRun; i += 4) {
      ++counts[0][p[i]];
      ++counts[1][p[i + 1]];
      ++counts[2][p[i + 2]];
      ++counts[3][p[i + 3]];
    }
  }
  // bits = n log2 n - sum c log2 c; a uniform sample of 1024 gives ~7.8 a byte
  // (2048 bytes gave ~7.9 and cost twice as much).
  // Four partial sums: four independent chains of float adds.
  float part[4] = {};
  for (size_t b = 0; b < 256; b += 4) {
    for (size_t k = 0; k < 4; ++k) {
      part[k] += c_log2_c[counts[0][b + k] + counts[1][b + k] + counts[2][b + k] + counts[3][b + k]];
    }
  }
  const float sum = (part[0] + part[1]) + (part[2] + part[3]);
  float bits_per_byte = std::log2(float(kSample)) - sum / kSample;
  return bits_per_byte >= 7.0f;
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
