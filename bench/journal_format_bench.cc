// Journal format choice (issue #2): which RocksDB layout and which block codec
// the journal uses, chosen by measurement. Results: docs/benchmarks.md.
//
// Layouts (docs/design.md#journal-format):
//   versioned       blocks CF: be32 volume | be64 block | be64 ~seq -> value
//   versioned+blob  the same, values in integrated BlobDB files
//   seqdata+index   data CF: be32 space | be64 seq | be32 index -> value, plus
//                   index CF: be32 volume | be64 block | be64 ~seq ->
//                   be64 seq | be32 index (12 bytes)
//   format2         the journal as built (journal::Journal, format 2): one
//                   segment record per write, chunks of 64 KiB, the extent
//                   index in RocksDB (docs/design.md#journal-format)
// Values are journal::EncodeValue(kBlock, codec, payload); the codec runs in
// the application on each 4 KiB block, RocksDB's own compression is off.
// Every write also puts a SeqRecord in the seqs CF, as the journal does.
//
// versioned+blob is kept as a measured, rejected row (integrated BlobDB
// writes each value to the WAL and again to a blob file:
// docs/design.md#journal-format). format2 runs the same workloads through
// the real journal; it has no pit_read_cold row (its reads go through the
// page cache, the cold restore is bench/restore_vs_cp.sh's).
//
// chunk/N: format 2's chunk size (issue #13 asks to measure it). 1 MiB
// writes encoded with seg::EncodeData at chunks of N bytes (zstd), then
// random 4 KiB reads that each fetch and decode the chunk holding the block:
// encode speed and stored bytes against read amplification.
//
// Each case opens a fresh RocksDB under $TM_BENCH_DIR (default /tmp), runs
// once and times itself (manual time); the figures are the counters.
// TM_BENCH_QUICK=1 divides every size by 8 (smoke runs).

#include <benchmark/benchmark.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tidemark/journal/codec.h"
#include "tidemark/journal/crc32c.h"
#include "tidemark/journal/format.h"
#include "tidemark/journal/journal.h"
#include "tidemark/journal/segment.h"
#include "tidemark/journal/types.h"

namespace tidemark::journal {
namespace {

constexpr size_t kBlock = kDefaultBlockBytes;
constexpr uint32_t kVolume = 1;
constexpr uint32_t kSpace = 1;
constexpr size_t kGroupWrites = 64;               // writes per WriteBatch
constexpr size_t kGroupBytes = size_t{4} << 20;   // ... or this many bytes
constexpr size_t kScanChunkBlocks = 256;          // MultiGet batch of a scan

enum class Layout { kVersioned, kVersionedBlob, kSeqData, kFormat2 };
enum class Content { kMixed, kRandom };

const char* LayoutName(Layout l) {
  switch (l) {
    case Layout::kVersioned: return "versioned";
    case Layout::kVersionedBlob: return "versioned+blob";
    case Layout::kSeqData: return "seqdata+index";
    case Layout::kFormat2: return "format2";
  }
  return "?";
}

size_t Scale(size_t n) {
  const char* q = getenv("TM_BENCH_QUICK");
  return (q != nullptr && q[0] == '1') ? std::max<size_t>(n / 8, 1) : n;
}

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "journal_format_bench: %s\n", what.c_str());
  abort();
}
void Check(const rocksdb::Status& s, const char* what) {
  if (!s.ok()) Die(std::string(what) + ": " + s.ToString());
}

void PutBE(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t GetBE(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

uint64_t SplitMix(uint64_t* s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The bytes of `block` at `seq`: 16 bytes naming (block, seq), then for
// kMixed 256-byte runs alternating pseudo-random bytes and text (about 2:1
// for zstd and igzip), for kRandom pseudo-random bytes only.
void FillBlock(Content content, uint64_t block, Seq seq, char* out) {
  static const char kText[] =
      "2026-11-23T10:14:59.123456789Z INFO orders: committed txn id=000418 "
      "rows=12 table=stock warehouse=7 district=3 latency_us=418\n";
  uint64_t state = block * 0x100000001B3ull ^ seq;
  for (size_t i = 0; i < kBlock; i += 8) {
    uint64_t r = SplitMix(&state);
    memcpy(out + i, &r, 8);
  }
  if (content == Content::kMixed) {
    for (size_t run = 256; run < kBlock; run += 512) {
      for (size_t i = 0; i < 256; ++i) out[run + i] = kText[(run + i) % (sizeof(kText) - 1)];
    }
  }
  memcpy(out, &block, 8);
  memcpy(out + 8, &seq, 8);
}

std::string DataKey(Seq seq, uint32_t index) {
  std::string k;
  k.reserve(16);
  PutBE(&k, kSpace, 4);
  PutBE(&k, seq, 8);
  PutBE(&k, index, 4);
  return k;
}

// Decodes a stored block value into 4096 bytes at out.
void DecodeBlock(std::string_view stored, char* out) {
  auto v = DecodeValue(stored);
  if (!v) Die(v.error().ToString());
  if (v.value().kind != ValueKind::kBlock) Die("not a block value");
  Status s = Decompress(v.value().codec, v.value().payload, out, kBlock);
  if (!s.ok()) Die(s.ToString());
}

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);  // every thread: RocksDB's background jobs too
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// CPU time of the calling thread alone: the ingest or read path itself.
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Bytes this process handed to write(2)/pwrite(2): WAL, flushes,
// compactions and blob files.
uint64_t WrittenBytes() {
  std::ifstream io("/proc/self/io");
  std::string name;
  uint64_t value = 0;
  while (io >> name >> value) {
    if (name == "wchar:") return value;
  }
  return 0;
}

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// One journal-shaped RocksDB in a temporary directory, removed on destruction.
class Store {
 public:
  Store(Layout layout, Codec codec) : layout_(layout), codec_(codec) {
    const char* base = getenv("TM_BENCH_DIR");
    std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/tm-journal-bench-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) Die("mkdtemp " + tmpl);
    dir_ = tmpl;
    Open(false);
    scan_options_.adaptive_readahead = true;
  }

  ~Store() {
    Close();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Reopens the DB; with direct_reads, reads bypass the page cache and the
  // block cache is 8 MiB: every read that misses goes to the device.
  void Reopen(bool direct_reads) {
    Commit();
    Close();
    Open(direct_reads);
  }
  bool direct_reads() const { return direct_reads_; }

 private:
  void Open(bool direct_reads) {
    direct_reads_ = direct_reads;
    if (layout_ == Layout::kFormat2) {
      OpenJournal();
      return;
    }
    rocksdb::DBOptions db;
    db.use_direct_reads = direct_reads;
    db.create_if_missing = true;
    db.create_missing_column_families = true;
    db.max_background_jobs = 2;  // the machine has 2 cores
    // No bytes_per_sync: without it the runs measure the CPU cost of each
    // layout, not the VM disk's writeback mood; io_bytes_per_written_byte
    // says what the device must absorb.

    auto cache = rocksdb::NewLRUCache(direct_reads ? 8 << 20 : 64 << 20);
    auto cf = [&](bool prefix_seek, bool blob) {
      rocksdb::ColumnFamilyOptions o;
      o.compression = rocksdb::kNoCompression;  // the codec runs above RocksDB
      // The LSM scaled down 1:4 (defaults 64/64/256 MiB) so that a run of a
      // few hundred MiB reaches L1/L2 compaction as a long-running journal does.
      o.write_buffer_size = 16 << 20;
      o.target_file_size_base = 16 << 20;
      o.max_bytes_for_level_base = 64 << 20;
      rocksdb::BlockBasedTableOptions t;
      t.block_cache = cache;
      if (prefix_seek) {
        // Every read is a Seek within one block's versions: a prefix bloom on
        // volume|block lets it skip files that hold no version of the block.
        o.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(12));
        t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
        t.whole_key_filtering = false;
      }
      o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
      if (blob) {
        o.enable_blob_files = true;
        o.min_blob_size = 512;
        o.blob_file_size = uint64_t{256} << 20;
        o.blob_compression_type = rocksdb::kNoCompression;
      }
      return o;
    };
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {kCfDefault, cf(false, false)},
        {kCfSeqs, cf(false, false)},
        {kCfBlocks, cf(true, layout_ == Layout::kVersionedBlob)},
    };
    if (layout_ == Layout::kSeqData) cfs.push_back({"data", cf(false, false)});
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    Check(rocksdb::DB::Open(db, dir_, cfs, &handles, &raw), "open");
    db_.reset(raw);
    handles_ = handles;
    seqs_ = handles[1];
    blocks_ = handles[2];  // versioned values, or the index of seqdata+index
    data_ = layout_ == Layout::kSeqData ? handles[3] : nullptr;
  }

  // Format 2: the journal in dir_/j with one volume, its seq 0 all zeros.
  void OpenJournal() {
    OpenOptions o;
    o.create_if_missing = true;
    o.codec = codec_;
    o.format = 2;
    o.group_commit_writes = kGroupWrites;
    auto j = Journal::Open(dir_ + "/j", o);
    if (!j) Die("open journal: " + j.error().ToString());
    journal_ = std::move(j.value());
    if (auto v = journal_->FindVolume("bench")) {
      volume_ = v.value().id;
      return;
    }
    auto v = journal_->CreateVolume("bench", kFormat2VolumeBlocks * kBlock, kBlock);
    if (!v) Die("create volume: " + v.error().ToString());
    volume_ = v.value().id;
    auto zeros = [](uint64_t, char* b, size_t n) {
      memset(b, 0, n);
      return Status::Ok();
    };
    if (auto s = journal_->Import(volume_, zeros, 1, 0); !s) Die("import: " + s.error().ToString());
  }

  void Close() {
    if (layout_ == Layout::kFormat2) {
      journal_.reset();
      return;
    }
    it_.reset();
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    handles_.clear();
    db_.reset();
  }

 public:
  // Adds a write of n_blocks blocks from first_block at seq to the group.
  void AddWrite(Seq seq, uint64_t first_block, const char* raw, size_t n_blocks) {
    if (layout_ == Layout::kFormat2) {
      WriteOp op;
      op.seq = seq;
      op.time_ns = static_cast<TimeNs>(seq) * 1000 + 1000;
      op.offset_bytes = first_block * kBlock;
      op.length_bytes = n_blocks * kBlock;
      op.data = std::string_view(raw, n_blocks * kBlock);
      if (Status s = journal_->Apply(volume_, op); !s.ok()) Die("apply: " + s.ToString());
      ++pending_writes_;
      logical_bytes_ += n_blocks * kBlock;
      return;
    }
    for (size_t i = 0; i < n_blocks; ++i) {
      std::string_view block(raw + i * kBlock, kBlock);
      std::string value = Compress(codec_, block, &scratch_)
                              ? EncodeValue(ValueKind::kBlock, codec_, scratch_)
                              : EncodeValue(ValueKind::kBlock, Codec::kNone, block);
      std::string key = BlockKey(kVolume, first_block + i, seq);
      if (layout_ == Layout::kSeqData) {
        std::string ptr;
        PutBE(&ptr, seq, 8);
        PutBE(&ptr, i, 4);
        Check(batch_.Put(data_, DataKey(seq, static_cast<uint32_t>(i)), value), "put");
        Check(batch_.Put(blocks_, key, ptr), "put");
      } else {
        Check(batch_.Put(blocks_, key, value), "put");
      }
    }
    SeqRecord rec;
    rec.time_ns = static_cast<TimeNs>(seq) * 1000;
    rec.volume = kVolume;
    rec.extents.push_back({first_block * kBlock, n_blocks * kBlock});
    Check(batch_.Put(seqs_, SeqKey(kSpace, seq), EncodeSeq(rec)), "put");
    ++pending_writes_;
    logical_bytes_ += n_blocks * kBlock;
  }

  bool GroupFull() const {
    return pending_writes_ >= kGroupWrites || batch_.GetDataSize() >= kGroupBytes;
  }

  // Writes the group: WAL on, no sync (the target syncs per group on FLUSH).
  void Commit() {
    if (pending_writes_ == 0) return;
    if (layout_ == Layout::kFormat2) {
      if (Status s = journal_->Commit(); !s.ok()) Die("commit: " + s.ToString());
      pending_writes_ = 0;
      return;
    }
    rocksdb::WriteOptions wo;
    wo.sync = false;
    Check(db_->Write(wo, &batch_), "write");
    batch_.Clear();
    pending_writes_ = 0;
    it_.reset();  // a new iterator sees the group
  }

  // The newest version of `block` at or before `at` into out (4096 bytes);
  // false when there is none. Sees committed groups only.
  bool ReadAt(uint64_t block, Seq at, char* out, Seq* found) {
    if (layout_ == Layout::kFormat2) {
      // The journal reads zeros where no version is; the blocks written
      // here name their (block, seq) in their first 16 bytes.
      Status s = journal_->ReadBlock(volume_, block, at, out);
      if (!s.ok()) Die("read: " + s.ToString());
      *found = GetLE64(out + 8);
      return GetLE64(out) != 0 || *found != 0;
    }
    if (!it_) it_.reset(db_->NewIterator(rocksdb::ReadOptions(), blocks_));
    std::string_view v;
    if (!Lookup(it_.get(), block, at, found, &v)) return false;
    if (layout_ != Layout::kSeqData) {
      DecodeBlock(v, out);
      return true;
    }
    std::string key = DataKey(GetBE(v.data(), 8), static_cast<uint32_t>(GetBE(v.data() + 8, 4)));
    rocksdb::PinnableSlice value;
    Check(db_->Get(rocksdb::ReadOptions(), data_, key, &value), "get data");
    DecodeBlock(value.ToStringView(), out);
    return true;
  }

  // Restore: every block of [0, n_blocks) as of `at`, in block order;
  // fn(block, seq or kNoSeq, bytes or nullptr) for each.
  template <class Fn>
  void Scan(uint64_t n_blocks, Seq at, Fn fn) {
    if (layout_ == Layout::kFormat2) {
      // ScanBlocks delivers the non-zero blocks in block order; the rest
      // have no version.
      uint64_t next = 0;
      Status s = journal_->ScanBlockRange(volume_, at, 0, n_blocks,
                                          [&](uint64_t b, std::string_view data) {
                                            if (b < next) Die("scan: blocks out of order");
                                            for (; next < b; ++next) fn(next, kNoSeq, nullptr);
                                            fn(b, GetLE64(data.data() + 8), data.data());
                                            next = b + 1;
                                            return Status::Ok();
                                          });
      if (!s.ok()) Die("scan: " + s.ToString());
      for (; next < n_blocks; ++next) fn(next, kNoSeq, nullptr);
      return;
    }
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(scan_options_, blocks_));
    std::vector<char> buf(kBlock * kScanChunkBlocks);
    std::string_view v;
    for (uint64_t first = 0; first < n_blocks; first += kScanChunkBlocks) {
      uint64_t n = std::min<uint64_t>(kScanChunkBlocks, n_blocks - first);
      if (layout_ != Layout::kSeqData) {
        for (uint64_t b = first; b < first + n; ++b) {
          Seq seq = kNoSeq;
          if (Lookup(it.get(), b, at, &seq, &v)) DecodeBlock(v, buf.data());
          fn(b, seq, seq == kNoSeq ? nullptr : buf.data());
        }
        continue;
      }
      // seqdata+index: resolve the chunk in the index, then one MultiGet.
      std::vector<std::string> keys;
      std::vector<uint64_t> key_block;
      std::vector<Seq> key_seq;
      for (uint64_t b = first; b < first + n; ++b) {
        Seq seq = kNoSeq;
        if (!Lookup(it.get(), b, at, &seq, &v)) {
          fn(b, kNoSeq, nullptr);
          continue;
        }
        keys.push_back(DataKey(GetBE(v.data(), 8), static_cast<uint32_t>(GetBE(v.data() + 8, 4))));
        key_block.push_back(b);
        key_seq.push_back(seq);
      }
      std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
      std::vector<rocksdb::PinnableSlice> values(keys.size());
      std::vector<rocksdb::Status> statuses(keys.size());
      db_->MultiGet(scan_options_, data_, keys.size(), slices.data(), values.data(),
                    statuses.data());
      for (size_t i = 0; i < keys.size(); ++i) {
        Check(statuses[i], "multiget data");
        DecodeBlock(values[i].ToStringView(), buf.data());
        fn(key_block[i], key_seq[i], buf.data());
      }
    }
    Check(it->status(), "scan");
  }

  // Flushes every memtable and waits for compactions; returns seconds.
  double FlushAndSettle() {
    auto start = Clock::now();
    if (layout_ == Layout::kFormat2) {
      // Everything durable, the index included; a reopen rolls nothing forward.
      if (auto s = journal_->Sync(volume_); !s) Die("sync: " + s.error().ToString());
      pending_writes_ = 0;
      Close();
      OpenJournal();
      return Since(start);
    }
    Commit();
    Check(db_->Flush(rocksdb::FlushOptions(), handles_), "flush");
    for (;;) {
      uint64_t busy = 0;
      for (auto* h : handles_) {
        uint64_t v = 0;
        db_->GetIntProperty(h, "rocksdb.compaction-pending", &v);
        busy += v;
      }
      uint64_t v = 0;
      db_->GetIntProperty("rocksdb.num-running-compactions", &v);
      busy += v;
      db_->GetIntProperty("rocksdb.num-running-flushes", &v);
      busy += v;
      if (busy == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return Since(start);
  }

  // Bytes of every file in the DB directory except the info LOGs.
  uint64_t DiskBytes() const {
    uint64_t sum = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_)) {
      if (!e.is_regular_file() || e.path().filename().string().rfind("LOG", 0) == 0) continue;
      sum += e.file_size();
    }
    return sum;
  }

  uint64_t logical_bytes() const { return logical_bytes_; }

 private:
  // Seeks to the newest version of block at or before `at`; *v is the
  // value (a stored block, or seqdata's 12-byte pointer).
  bool Lookup(rocksdb::Iterator* it, uint64_t block, Seq at, Seq* found, std::string_view* v) {
    std::string target = BlockKey(kVolume, block, at);
    it->Seek(target);
    if (!it->Valid()) {
      Check(it->status(), "seek");
      return false;
    }
    rocksdb::Slice k = it->key();
    if (k.size() != 20 || memcmp(k.data(), target.data(), 12) != 0) return false;
    *found = ~GetBE(k.data() + 12, 8);
    *v = it->value().ToStringView();
    return true;
  }

  static uint64_t GetLE64(const char* p) {
    uint64_t v = 0;
    memcpy(&v, p, 8);
    return v;
  }

  // The largest volume a case uses (BM_Random4k's and BM_Seq1m's).
  static constexpr uint64_t kFormat2VolumeBlocks = 65536;

  Layout layout_;
  Codec codec_;
  bool direct_reads_ = false;
  std::unique_ptr<Journal> journal_;
  uint32_t volume_ = 0;
  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* seqs_ = nullptr;
  rocksdb::ColumnFamilyHandle* blocks_ = nullptr;
  rocksdb::ColumnFamilyHandle* data_ = nullptr;
  rocksdb::WriteBatch batch_;
  size_t pending_writes_ = 0;
  uint64_t logical_bytes_ = 0;
  std::string scratch_;
  std::unique_ptr<rocksdb::Iterator> it_;
  rocksdb::ReadOptions scan_options_;
};

struct Case {
  Layout layout;
  Codec codec;
};

// CPU clocks at the start of a timed region. Wall-clock rates move with
// whatever else runs on the machine; CPU per operation much less.
struct CpuMark {
  double process = CpuSeconds();
  double thread = ThreadCpuSeconds();
  uint64_t io = WrittenBytes();
};

// Counters shared by the write workloads. fg_cpu_us_per_write: the writing
// thread (codec, encoding, WAL); total_cpu_us_per_write: every thread,
// flushes and compactions included, up to the settled state.
void ReportWrites(benchmark::State& state, Store& store, size_t writes, uint64_t payload_bytes,
                  double secs, const CpuMark& m, bool disk) {
  double fg_cpu = ThreadCpuSeconds() - m.thread;
  auto n = static_cast<double>(writes);
  state.SetIterationTime(secs);
  state.counters["writes_per_s"] = n / secs;
  state.counters["MB_per_s"] = static_cast<double>(payload_bytes) / secs / 1e6;
  state.counters["fg_cpu_us_per_write"] = fg_cpu * 1e6 / n;
  if (!disk) {
    state.counters["total_cpu_us_per_write"] = (CpuSeconds() - m.process) * 1e6 / n;
    return;
  }
  state.counters["settle_s"] = store.FlushAndSettle();
  state.counters["total_cpu_us_per_write"] = (CpuSeconds() - m.process) * 1e6 / n;
  auto logical = static_cast<double>(store.logical_bytes());
  state.counters["disk_bytes_per_written_byte"] = static_cast<double>(store.DiskBytes()) / logical;
  state.counters["io_bytes_per_written_byte"] = static_cast<double>(WrittenBytes() - m.io) / logical;
}

// 4 KiB writes at uniformly random blocks of a 256 MiB volume.
void BM_Random4k(benchmark::State& state, Case c, Content content) {
  const uint64_t volume_blocks = Scale(65536);
  const size_t writes = Scale(65536);
  for (auto _ : state) {
    Store store(c.layout, c.codec);
    std::mt19937_64 rng(42);
    std::vector<char> buf(kBlock);
    CpuMark mark;
    auto t0 = Clock::now();
    for (size_t w = 1; w <= writes; ++w) {
      uint64_t b = rng() % volume_blocks;
      FillBlock(content, b, w, buf.data());
      store.AddWrite(w, b, buf.data(), 1);
      if (store.GroupFull()) store.Commit();
    }
    store.Commit();
    ReportWrites(state, store, writes, writes * kBlock, Since(t0), mark, true);
  }
}

// 1 MiB writes (256 blocks) sweeping a 256 MiB volume, two passes.
void BM_Seq1m(benchmark::State& state, Case c) {
  const uint64_t volume_blocks = Scale(65536);
  const size_t write_blocks = 256;
  const size_t passes = 2;
  for (auto _ : state) {
    Store store(c.layout, c.codec);
    std::vector<char> buf(kBlock * write_blocks);
    CpuMark mark;
    auto t0 = Clock::now();
    Seq seq = 0;
    for (size_t p = 0; p < passes; ++p) {
      for (uint64_t b = 0; b + write_blocks <= volume_blocks; b += write_blocks) {
        ++seq;
        for (size_t i = 0; i < write_blocks; ++i) {
          FillBlock(Content::kMixed, b + i, seq, buf.data() + i * kBlock);
        }
        store.AddWrite(seq, b, buf.data(), write_blocks);
        if (store.GroupFull()) store.Commit();
      }
    }
    store.Commit();
    ReportWrites(state, store, seq, seq * write_blocks * kBlock, Since(t0), mark, true);
  }
}

// Writes every block of the volume once, as 1 MiB writes; returns the next seq.
Seq Populate(Store& store, uint64_t volume_blocks) {
  std::vector<char> buf(kBlock * 256);
  Seq seq = 0;
  for (uint64_t b = 0; b < volume_blocks; b += 256) {
    ++seq;
    size_t n = std::min<uint64_t>(256, volume_blocks - b);
    for (size_t i = 0; i < n; ++i) FillBlock(Content::kMixed, b + i, seq, buf.data() + i * kBlock);
    store.AddWrite(seq, b, buf.data(), n);
    if (store.GroupFull()) store.Commit();
  }
  store.Commit();
  return seq + 1;
}

// 512-byte writes at random sectors of a 64 MiB volume that holds one version
// of every block: read the newest version (from the uncommitted group when it
// is there), patch one sector, write the block as a new version.
void BM_Sub512(benchmark::State& state, Case c) {
  const uint64_t volume_blocks = Scale(16384);
  const size_t writes = Scale(32768);
  for (auto _ : state) {
    Store store(c.layout, c.codec);
    Seq seq = Populate(store, volume_blocks);
    store.FlushAndSettle();
    std::mt19937_64 rng(7);
    std::unordered_map<uint64_t, std::vector<char>> group;  // newest, uncommitted
    std::vector<char> block(kBlock), fresh(kBlock);
    size_t from_group = 0;
    CpuMark mark;
    auto t0 = Clock::now();
    for (size_t w = 0; w < writes; ++w, ++seq) {
      uint64_t sector = rng() % (volume_blocks * (kBlock / kSectorBytes));
      uint64_t b = sector / (kBlock / kSectorBytes);
      size_t at = (sector % (kBlock / kSectorBytes)) * kSectorBytes;
      if (auto g = group.find(b); g != group.end()) {
        block = g->second;
        ++from_group;
      } else {
        Seq found = kNoSeq;
        if (!store.ReadAt(b, kNoSeq, block.data(), &found)) Die("sub512: block missing");
      }
      FillBlock(Content::kMixed, b, seq, fresh.data());
      memcpy(block.data() + at, fresh.data() + at, kSectorBytes);
      store.AddWrite(seq, b, block.data(), 1);
      group[b] = block;
      if (store.GroupFull()) {
        store.Commit();
        group.clear();
      }
    }
    store.Commit();
    ReportWrites(state, store, writes, writes * kSectorBytes, Since(t0), mark, false);
    state.counters["rmw_from_group"] = static_cast<double>(from_group);
  }
}

// A 64 MiB volume written three times over in random block order (4 KiB
// writes); versions[b] lists the seqs of block b.
struct History {
  Case c;
  uint64_t volume_blocks = 0;
  Seq last_seq = 0;
  std::vector<std::vector<Seq>> versions;
  std::unique_ptr<Store> store;
  double ingest_writes_per_s = 0;
  double disk_per_byte = 0;

  Seq Expected(uint64_t b, Seq at) const {
    const auto& v = versions[b];
    auto it = std::upper_bound(v.begin(), v.end(), at);
    return it == v.begin() ? kNoSeq : *(it - 1);
  }
};

// The history the read cases share: built by the first, reused by the next
// case of the same layout and codec.
std::unique_ptr<History> g_history;

// Closes and deletes the shared history before static destruction begins.
void ResetHistory() { g_history.reset(); }

History& GetHistory(Case c) {
  std::unique_ptr<History>& h = g_history;
  if (h && h->c.layout == c.layout && h->c.codec == c.codec) return *h;
  h.reset();
  h = std::make_unique<History>();
  h->c = c;
  h->volume_blocks = Scale(16384);
  h->versions.resize(h->volume_blocks);
  h->store = std::make_unique<Store>(c.layout, c.codec);
  std::mt19937_64 rng(99);
  std::vector<uint64_t> order(h->volume_blocks);
  std::iota(order.begin(), order.end(), 0);
  std::vector<char> buf(kBlock);
  Seq seq = 0;
  auto t0 = Clock::now();
  for (int pass = 0; pass < 3; ++pass) {
    std::shuffle(order.begin(), order.end(), rng);
    for (uint64_t b : order) {
      ++seq;
      FillBlock(Content::kMixed, b, seq, buf.data());
      h->store->AddWrite(seq, b, buf.data(), 1);
      h->versions[b].push_back(seq);
      if (h->store->GroupFull()) h->store->Commit();
    }
  }
  h->store->Commit();
  h->ingest_writes_per_s = static_cast<double>(seq) / Since(t0);
  h->last_seq = seq;
  h->store->FlushAndSettle();
  h->disk_per_byte = static_cast<double>(h->store->DiskBytes()) /
                     static_cast<double>(h->store->logical_bytes());
  return *h;
}

// Reads of random blocks at random seqs after the first pass (so every
// block has a version), each checked against the history.
void BM_PitRead(benchmark::State& state, Case c) {
  const size_t reads = Scale(50000);
  for (auto _ : state) {
    History& h = GetHistory(c);
    std::mt19937_64 rng(5);
    std::vector<char> buf(kBlock);
    size_t wrong = 0;
    CpuMark mark;
    auto t0 = Clock::now();
    for (size_t r = 0; r < reads; ++r) {
      uint64_t b = rng() % h.volume_blocks;
      Seq at = h.volume_blocks + rng() % (h.last_seq - h.volume_blocks + 1);
      Seq found = kNoSeq;
      bool ok = h.store->ReadAt(b, at, buf.data(), &found);
      uint64_t got_block = 0;
      Seq got_seq = 0;
      memcpy(&got_block, buf.data(), 8);
      memcpy(&got_seq, buf.data() + 8, 8);
      if (!ok || found != h.Expected(b, at) || got_block != b || got_seq != found) ++wrong;
    }
    double secs = Since(t0);
    if (wrong != 0) state.SkipWithError("point-in-time reads returned wrong versions");
    state.SetIterationTime(secs);
    state.counters["reads_per_s"] = static_cast<double>(reads) / secs;
    state.counters["us_per_read"] = secs * 1e6 / static_cast<double>(reads);
    state.counters["cpu_us_per_read"] =
        (ThreadCpuSeconds() - mark.thread) * 1e6 / static_cast<double>(reads);
    state.counters["ingest_writes_per_s"] = h.ingest_writes_per_s;
    state.counters["disk_bytes_per_written_byte"] = h.disk_per_byte;
  }
}

// The same reads with the page cache bypassed (O_DIRECT) and an 8 MiB block
// cache: what a read costs when the history is larger than memory.
void BM_PitReadCold(benchmark::State& state, Case c) {
  const size_t reads = Scale(4000);
  for (auto _ : state) {
    History& h = GetHistory(c);
    if (!h.store->direct_reads()) h.store->Reopen(true);
    std::mt19937_64 rng(6);
    std::vector<char> buf(kBlock);
    size_t wrong = 0;
    CpuMark mark;
    auto t0 = Clock::now();
    for (size_t r = 0; r < reads; ++r) {
      uint64_t b = rng() % h.volume_blocks;
      Seq at = h.volume_blocks + rng() % (h.last_seq - h.volume_blocks + 1);
      Seq found = kNoSeq;
      if (!h.store->ReadAt(b, at, buf.data(), &found) || found != h.Expected(b, at)) ++wrong;
    }
    double secs = Since(t0);
    if (wrong != 0) state.SkipWithError("point-in-time reads returned wrong versions");
    state.SetIterationTime(secs);
    state.counters["reads_per_s"] = static_cast<double>(reads) / secs;
    state.counters["us_per_read"] = secs * 1e6 / static_cast<double>(reads);
    state.counters["cpu_us_per_read"] =
        (ThreadCpuSeconds() - mark.thread) * 1e6 / static_cast<double>(reads);
  }
}

// Restore-style scans of the whole volume at three points (mid pass 2,
// mid pass 3, latest), each block checked against the history.
void BM_RestoreScan(benchmark::State& state, Case c) {
  for (auto _ : state) {
    History& h = GetHistory(c);
    const uint64_t n = h.volume_blocks;
    size_t wrong = 0;
    uint64_t bytes = 0;
    CpuMark mark;
    auto t0 = Clock::now();
    for (Seq at : {n + n / 2, 2 * n + n / 2, h.last_seq}) {
      h.store->Scan(n, at, [&](uint64_t b, Seq seq, const char* data) {
        uint64_t got_block = 0;
        if (data != nullptr) memcpy(&got_block, data, 8);
        if (seq != h.Expected(b, at) || data == nullptr || got_block != b) ++wrong;
        bytes += kBlock;
      });
    }
    double secs = Since(t0);
    if (wrong != 0) state.SkipWithError("restore scan returned wrong versions");
    state.SetIterationTime(secs);
    state.counters["MB_per_s"] = static_cast<double>(bytes) / secs / 1e6;
    state.counters["cpu_MB_per_s"] =
        static_cast<double>(bytes) / (ThreadCpuSeconds() - mark.thread) / 1e6;
  }
}

// The codecs alone on 4 KiB and 64 KiB units: ratio and single-core speed.
void BM_Codec(benchmark::State& state, Codec codec, size_t unit, Content content) {
  const size_t total = Scale(size_t{64} << 20);
  std::vector<char> data(total);
  for (size_t b = 0; b < total / kBlock; ++b) FillBlock(content, b, 1, data.data() + b * kBlock);
  for (auto _ : state) {
    std::vector<std::string> out(total / unit);
    std::vector<bool> compressed(out.size());
    uint64_t stored = 0;
    auto t0 = Clock::now();
    for (size_t i = 0; i < out.size(); ++i) {
      compressed[i] = Compress(codec, std::string_view(data.data() + i * unit, unit), &out[i]);
      stored += compressed[i] ? out[i].size() : unit;
    }
    double csecs = Since(t0);
    std::vector<char> back(unit);
    t0 = Clock::now();
    for (size_t i = 0; i < out.size(); ++i) {
      if (!compressed[i]) continue;
      Status s = Decompress(codec, out[i], back.data(), unit);
      if (!s.ok() || memcmp(back.data(), data.data() + i * unit, unit) != 0) {
        state.SkipWithError("round trip failed");
        break;
      }
    }
    double dsecs = Since(t0);
    state.SetIterationTime(csecs);
    state.counters["ratio"] = static_cast<double>(total) / static_cast<double>(stored);
    state.counters["compress_MB_per_s"] = static_cast<double>(total) / csecs / 1e6;
    state.counters["decompress_MB_per_s"] = static_cast<double>(total) / dsecs / 1e6;
  }
}

// Log lines with varying numbers: about 4:1 for zstd, and no period that
// lines up with the codec's entropy sample (FillBlock's 512-byte runs do, at
// chunks of 16 KiB and more, where every sample falls in a random run).
void FillLogLines(uint64_t seed, char* out, size_t n) {
  static const char* kWords[] = {"orders", "stock", "payment", "delivery", "district", "customer"};
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  size_t at = 0;
  char line[160];
  while (at < n) {
    uint64_t r = SplitMix(&state);
    int len = snprintf(line, sizeof line,
                       "2026-11-23T10:%02u:%02u.%09u INFO %s: committed txn id=%06u rows=%u "
                       "latency_us=%u\n",
                       unsigned(r % 60), unsigned(r / 60 % 60), unsigned(r % 1000000000),
                       kWords[r % 6], unsigned(r >> 20) % 1000000, unsigned(r >> 40) % 100,
                       unsigned(r >> 50) % 5000);
    size_t take = std::min(n - at, static_cast<size_t>(len));
    memcpy(out + at, line, take);
    at += take;
  }
}

// Format 2's chunk size: 1 MiB writes encoded at chunks of 2^chunk_log2
// bytes (zstd), then random 4 KiB reads, each of which fetches the chunk that
// holds its block, checks its CRC and decodes it.
void BM_ChunkSize(benchmark::State& state, uint8_t chunk_log2) {
  constexpr size_t kWrite = size_t{1} << 20;
  const size_t writes = Scale(256);
  // Fewer reads of the big chunks (a 1 MiB chunk's read decodes 1 MiB).
  const size_t reads =
      std::max<size_t>(Scale(50000) >> std::max(0, int{chunk_log2} - 14), 1000);
  std::vector<char> raw(kWrite);
  for (auto _ : state) {
    std::vector<std::string> recs(writes);
    std::string rec;
    std::vector<std::vector<seg::ChunkDesc>> chunks(writes);
    uint64_t stored = 0, n_chunks = 0;
    double encode_secs = 0;
    for (size_t w = 0; w < writes; ++w) {
      FillLogLines(w, raw.data(), kWrite);
      for (size_t i = 0; i < kWrite / kBlock; ++i) {
        const uint64_t block = w * (kWrite / kBlock) + i;
        memcpy(raw.data() + i * kBlock, &block, 8);
      }
      seg::DataIn in;
      in.volume = kVolume;
      in.seq = w + 1;
      in.codec = Codec::kZstd;
      in.header.time_ns = 1;
      in.header.offset_bytes = w * kWrite;
      in.header.length_bytes = kWrite;
      in.header.block_bytes = kBlock;
      in.header.chunk_log2 = chunk_log2;
      in.data = std::string_view(raw.data(), kWrite);
      // Into a reused buffer: a fresh 1 MiB string costs this VM more in
      // page faults than the encoding does.
      rec.clear();
      auto t0 = Clock::now();
      Status s = seg::EncodeData(in, &rec, &chunks[w]);
      encode_secs += Since(t0);
      if (!s.ok()) Die("encode: " + s.ToString());
      recs[w] = rec;
      for (const auto& c : chunks[w]) stored += c.stored_len;
      n_chunks += chunks[w].size();
    }
    std::mt19937_64 rng(11);
    std::vector<char> chunk(size_t{1} << chunk_log2);
    uint64_t fetched = 0;
    size_t wrong = 0;
    auto t0 = Clock::now();
    for (size_t r = 0; r < reads; ++r) {
      const size_t w = rng() % writes;
      const uint64_t block = rng() % (kWrite / kBlock);
      const seg::ChunkDesc& c = chunks[w][(block * kBlock) >> chunk_log2];
      std::string_view stored_bytes(recs[w].data() + c.payload_offset, c.stored_len);
      fetched += c.stored_len;
      if (Crc32c(stored_bytes) != c.crc) ++wrong;
      if (!Decompress(c.codec, stored_bytes, chunk.data(), c.raw_len).ok()) ++wrong;
      const uint64_t in_chunk = w * kWrite + block * kBlock - c.volume_offset;
      uint64_t got = 0;
      memcpy(&got, chunk.data() + in_chunk, 8);
      if (got != w * (kWrite / kBlock) + block) ++wrong;
    }
    double read_secs = Since(t0);
    if (wrong != 0) state.SkipWithError("chunk reads returned wrong blocks");
    const double bytes = static_cast<double>(writes * kWrite);
    state.SetIterationTime(encode_secs);
    state.counters["encode_MB_per_s"] = bytes / encode_secs / 1e6;
    state.counters["stored_per_byte"] = static_cast<double>(stored) / bytes;
    state.counters["chunks_per_MiB"] = static_cast<double>(n_chunks) / static_cast<double>(writes);
    state.counters["us_per_4k_read"] = read_secs * 1e6 / static_cast<double>(reads);
    state.counters["read_bytes_per_4k_read"] = static_cast<double>(fetched) / static_cast<double>(reads);
  }
}

void RegisterAll() {
  auto add = [](const std::string& name, auto fn) {
    benchmark::RegisterBenchmark(name.c_str(), fn)
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  };
  for (Codec codec : {Codec::kZstd, Codec::kIgzip}) {
    for (size_t unit : {kBlock, size_t{65536}}) {
      for (Content content : {Content::kMixed, Content::kRandom}) {
        std::string name = "codec/" + std::string(CodecName(codec)) + "/" +
                           std::to_string(unit) +
                           (content == Content::kMixed ? "/mixed" : "/incompressible");
        add(name, [=](benchmark::State& s) { BM_Codec(s, codec, unit, content); });
      }
    }
  }
  for (uint8_t log2 = 12; log2 <= 20; ++log2) {
    add("chunk/" + std::to_string(size_t{1} << log2),
        [=](benchmark::State& s) { BM_ChunkSize(s, log2); });
  }
  std::vector<Case> cases;
  for (Layout l : {Layout::kVersioned, Layout::kVersionedBlob, Layout::kSeqData, Layout::kFormat2}) {
    for (Codec codec : {Codec::kNone, Codec::kZstd, Codec::kIgzip}) cases.push_back({l, codec});
  }
  auto suffix = [](Case c) {
    return "/" + std::string(LayoutName(c.layout)) + "/" + std::string(CodecName(c.codec));
  };
  for (Case c : cases) {
    add("rand4k" + suffix(c), [=](benchmark::State& s) { BM_Random4k(s, c, Content::kMixed); });
    add("rand4k_incompressible" + suffix(c),
        [=](benchmark::State& s) { BM_Random4k(s, c, Content::kRandom); });
    add("seq1m" + suffix(c), [=](benchmark::State& s) { BM_Seq1m(s, c); });
    add("sub512_rmw" + suffix(c), [=](benchmark::State& s) { BM_Sub512(s, c); });
    add("pit_read" + suffix(c), [=](benchmark::State& s) { BM_PitRead(s, c); });
    add("restore_scan" + suffix(c), [=](benchmark::State& s) { BM_RestoreScan(s, c); });
    if (c.layout != Layout::kFormat2) {
      add("pit_read_cold" + suffix(c), [=](benchmark::State& s) { BM_PitReadCold(s, c); });
    }
  }
}

}  // namespace
}  // namespace tidemark::journal

int main(int argc, char** argv) {
  tidemark::journal::RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  tidemark::journal::ResetHistory();
  benchmark::Shutdown();
  return 0;
}
