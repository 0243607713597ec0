// Ingest and read throughput of the journal as built (journal/), through its
// public API: 4 KiB random writes, 1 MiB sequential writes, 512-byte
// sub-block writes (read-modify-write), point-in-time block reads, plus
// CRC32C and the codecs on one 4 KiB block. Figures: docs/benchmarks.md.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "tidemark/journal/codec.h"
#include "tidemark/journal/crc32c.h"
#include "tidemark/journal/journal.h"

namespace tidemark::journal {
namespace {

constexpr uint64_t kVolumeBytes = 1ull << 30;
constexpr uint32_t kBlock = 4096;

// Half pseudo-random, half text: compresses about 2:1, like file data.
std::string MakeData(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  static const char kText[] = "the quick brown fox jumps over the lazy dog 0123456789 ";
  for (size_t blk = 0; blk < n; blk += kBlock) {
    for (size_t i = blk + kBlock / 2; i < std::min(n, blk + kBlock); ++i) {
      s[i] = kText[i % (sizeof kText - 1)];
    }
  }
  return s;
}

struct TempJournal {
  std::string dir;
  std::unique_ptr<Journal> j;
  uint32_t vol = 0;
  explicit TempJournal(Codec codec, bool sync_index_at_flush = true) {
    const char* base = std::getenv("BENCH_WORK");
    dir = std::string(base ? base : "/tmp") + "/tm-ingest-bench-" + std::to_string(getpid());
    std::filesystem::remove_all(dir);
    OpenOptions o;
    o.create_if_missing = true;
    o.codec = codec;
    // TM_BENCH_SYNC_INDEX=1: format 2 writes the index at each commit (the
    // other way of docs/format-journal.md#writes-and-durability).
    o.async_index = !std::getenv("TM_BENCH_SYNC_INDEX");
    o.sync_index_at_flush = sync_index_at_flush;
    j = Journal::Open(dir, o).value();
    vol = j->CreateVolume("bench", kVolumeBytes, kBlock).value().id;
    auto zeros = [](uint64_t, char* b, size_t n) {
      std::memset(b, 0, n);
      return Status::Ok();
    };
    j->Import(vol, zeros, 1).value();
  }
  ~TempJournal() {
    j.reset();
    std::filesystem::remove_all(dir);
  }
};

// Writes `count` writes of `len` bytes at offsets from next_offset().
template <class NextOffset>
void Ingest(benchmark::State& state, uint64_t len, NextOffset next_offset) {
  const Codec codec = static_cast<Codec>(state.range(0));
  const std::string data = MakeData(2 << 20, 7);  // room for 1 MiB slices
  uint64_t writes = 0;
  double sync_secs = 0;  // the final Sync's share of the time
  for (auto _ : state) {
    state.PauseTiming();
    auto tj = std::make_unique<TempJournal>(codec);
    TempJournal& t = *tj;
    std::mt19937_64 rng(1);
    state.ResumeTiming();
    // TM_BENCH_QUICK (CI smoke runs): an eighth of the work.
    const uint64_t total = std::getenv("TM_BENCH_QUICK") ? (32ull << 20) : (256ull << 20);
    const uint64_t count = total / std::max<uint64_t>(len, kBlock);
    for (uint64_t i = 0; i < count; ++i) {
      WriteOp op;
      op.seq = i + 1;
      op.time_ns = static_cast<TimeNs>(i + 2);
      op.offset_bytes = next_offset(rng, i);
      op.length_bytes = len;
      op.data = std::string_view(data).substr((i * 4096) % (data.size() - len), len);
      Status s = t.j->Apply(t.vol, op);
      if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    }
    auto sync_start = std::chrono::steady_clock::now();
    if (!t.j->Sync(t.vol)) state.SkipWithError("sync");
    sync_secs += std::chrono::duration<double>(std::chrono::steady_clock::now() - sync_start).count();
    writes += count;
    state.PauseTiming();
    tj.reset();  // removing the files is not ingest
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(writes));
  state.SetBytesProcessed(static_cast<int64_t>(writes * len));
  state.counters["final_sync_ms"] = sync_secs * 1e3 / static_cast<double>(state.iterations());
  state.SetLabel(std::string(CodecName(codec)));
}

void BM_Ingest4KiBRandom(benchmark::State& state) {
  Ingest(state, 4096, [](std::mt19937_64& rng, uint64_t) {
    return (rng() % (kVolumeBytes / 4096)) * 4096;
  });
}
void BM_Ingest1MiBSequential(benchmark::State& state) {
  Ingest(state, 1 << 20, [](std::mt19937_64&, uint64_t i) {
    return (i << 20) % kVolumeBytes;
  });
}
void BM_Ingest512SubBlock(benchmark::State& state) {
  Ingest(state, 512, [](std::mt19937_64& rng, uint64_t) {
    return (rng() % ((64ull << 20) / 512)) * 512;  // 64 MiB hot area: RMW of real data
  });
}

// 4 KiB random writes with a FLUSH (MarkFlush, then Sync) after every 32,
// as a guest's filesystem journal issues them. Argument 1: whether the FLUSH
// also makes the index durable (OpenOptions::sync_index_at_flush; 1 is what
// the journal does).
void BM_Ingest4KiBFlush32(benchmark::State& state) {
  const Codec codec = static_cast<Codec>(state.range(0));
  const bool sync_index = state.range(1) != 0;
  const std::string data = MakeData(2 << 20, 7);
  const uint64_t count = std::getenv("TM_BENCH_QUICK") ? 4096 : 32768;
  uint64_t writes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto tj = std::make_unique<TempJournal>(codec, sync_index);
    std::mt19937_64 rng(1);
    state.ResumeTiming();
    for (uint64_t i = 0; i < count; ++i) {
      WriteOp op;
      op.seq = i + 1;
      op.time_ns = static_cast<TimeNs>(i + 2);
      op.offset_bytes = (rng() % (kVolumeBytes / 4096)) * 4096;
      op.length_bytes = 4096;
      op.data = std::string_view(data).substr((i * 4096) % (data.size() - 4096), 4096);
      Status s = tj->j->Apply(tj->vol, op);
      if (s.ok() && (i + 1) % 32 == 0) {
        s = tj->j->MarkFlush(tj->vol, op.seq, op.time_ns, kSeqFlush);
        if (s.ok() && !tj->j->Sync(tj->vol)) s = Status::IOError("sync");
      }
      if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    }
    writes += count;
    state.PauseTiming();
    tj.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(writes));
  state.counters["flushes_per_s"] =
      benchmark::Counter(static_cast<double>(writes / 32), benchmark::Counter::kIsRate);
  state.SetLabel(std::string(CodecName(codec)) + (sync_index ? ", index synced" : ", segments only"));
}

void BM_PointInTimeRead(benchmark::State& state) {
  const Codec codec = static_cast<Codec>(state.range(0));
  TempJournal t(codec);
  const std::string data = MakeData(1 << 20, 9);
  const uint64_t kBlocks = (std::getenv("TM_BENCH_QUICK") ? (8ull << 20) : (64ull << 20)) / 4096;
  std::mt19937_64 rng(3);
  const uint64_t writes = kBlocks * 3;  // ~3 versions per block
  for (uint64_t i = 0; i < writes; ++i) {
    WriteOp op{i + 1, static_cast<TimeNs>(i + 2), OpKind::kWrite, (rng() % kBlocks) * 4096,
               4096, std::string_view(data).substr((i * 4096) % (data.size() - 4096), 4096)};
    if (!t.j->Apply(t.vol, op).ok()) state.SkipWithError("apply");
  }
  if (!t.j->Sync(t.vol)) state.SkipWithError("sync");
  std::string out(4096, '\0');
  for (auto _ : state) {
    Status s = t.j->ReadBlock(t.vol, rng() % kBlocks, rng() % (writes + 1), out.data());
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::string(CodecName(codec)));
}

void BM_Crc32c4KiB(benchmark::State& state) {
  const std::string data = MakeData(4096, 5);
  for (auto _ : state) benchmark::DoNotOptimize(Crc32c(data));
  state.SetBytesProcessed(state.iterations() * 4096);
}

// The memory-bandwidth limit every copy in the data path is measured against:
// one memcpy of a 4 KiB block and of a 1 MiB buffer (source and target reused,
// so the 4 KiB case is cache to cache, the 1 MiB case mostly L2/L3).
void BM_Memcpy(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const std::string src = MakeData(n, 6);
  std::string dst(n, '\0');
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), n);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
}

void BM_Compress4KiB(benchmark::State& state) {
  const Codec codec = static_cast<Codec>(state.range(0));
  const std::string data = MakeData(4096, 5);
  std::string out;
  for (auto _ : state) benchmark::DoNotOptimize(Compress(codec, data, &out));
  state.SetBytesProcessed(state.iterations() * 4096);
  // Stored raw (Compress() false: the incompressibility test or too little
  // gain) counts as ratio 1, as the journal stores it.
  const bool smaller = Compress(codec, data, &out);
  state.counters["ratio"] = smaller ? static_cast<double>(out.size()) / 4096 : 1.0;
  state.SetLabel(std::string(CodecName(codec)));
}

void BM_Decompress4KiB(benchmark::State& state) {
  const Codec codec = static_cast<Codec>(state.range(0));
  const std::string data = MakeData(4096, 5);
  std::string packed;
  if (!Compress(codec, data, &packed)) packed = data;
  std::string out(4096, '\0');
  for (auto _ : state) {
    Status s = Decompress(codec, packed, out.data(), 4096);
    benchmark::DoNotOptimize(s.ok());
  }
  state.SetBytesProcessed(state.iterations() * 4096);
  state.SetLabel(std::string(CodecName(codec)));
}

void Codecs(benchmark::internal::Benchmark* b) {
  for (Codec c : {Codec::kNone, Codec::kZstd, Codec::kIgzip}) b->Arg(static_cast<int>(c));
}

BENCHMARK(BM_Ingest4KiBRandom)->Apply(Codecs)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Ingest1MiBSequential)->Apply(Codecs)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Ingest4KiBFlush32)->Args({1, 1})->Args({1, 0})->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Ingest512SubBlock)->Arg(0)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PointInTimeRead)->Arg(0)->Arg(1)->UseRealTime();
BENCHMARK(BM_Crc32c4KiB);
BENCHMARK(BM_Memcpy)->Arg(4096)->Arg(1 << 20);
BENCHMARK(BM_Compress4KiB)->Arg(1)->Arg(2);
BENCHMARK(BM_Decompress4KiB)->Apply(Codecs);

}  // namespace
}  // namespace tidemark::journal

BENCHMARK_MAIN();
