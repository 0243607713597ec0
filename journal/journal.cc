// Opening a journal, its metadata and volumes, and maintenance.
#include <fcntl.h>
#include <rocksdb/options.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>

#include "coding.h"
#include "journal_impl.h"
#include "tidemark/journal/time.h"

namespace tidemark::journal {

namespace {

constexpr char kImportMarkerPrefix = 'I';

rocksdb::ColumnFamilyOptions CfOptions(size_t cf, const OpenOptions& o,
                                       const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions c;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = cache;
  // XXH3 block checksums: Debian's librocksdb computes CRC32C in software
  // (measured: a restore spent a third of its time there).
  t.checksum = rocksdb::kXXH3;
  if (cf == kBlocks) {
    // Values are compressed (or incompressible) before they get here.
    c.compression = rocksdb::kNoCompression;
    c.write_buffer_size = 64 << 20;
    c.target_file_size_base = 64 << 20;
    t.block_size = 16 << 10;
    // A point-in-time read seeks within one volume|block prefix: a prefix
    // bloom filter skips the SST files that hold no version of the block.
    // Iterators that cross blocks use total_order_seek.
    c.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(12));
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    t.whole_key_filtering = false;
    if (o.blob_files) {
      c.enable_blob_files = true;
      c.min_blob_size = 512;
      c.blob_file_size = 256 << 20;
      c.enable_blob_garbage_collection = true;
    }
  } else if (cf == kExtents) {
    // Format 2's index: a point-in-time lookup seeks within one
    // volume|chunk prefix, as format 1 did within a block's.
    c.compression = rocksdb::kLZ4Compression;
    c.write_buffer_size = 64 << 20;
    c.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(12));
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    t.whole_key_filtering = false;
  } else {
    c.compression = rocksdb::kLZ4Compression;
    c.write_buffer_size = 16 << 20;
  }
  c.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return c;
}

std::array<uint8_t, 16> NewUuid() {
  std::array<uint8_t, 16> u{};
  std::random_device rd;
  for (auto& b : u) b = static_cast<uint8_t>(rd());
  u[6] = static_cast<uint8_t>((u[6] & 0x0f) | 0x40);  // version 4
  u[8] = static_cast<uint8_t>((u[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return u;
}


// True when another process holds RocksDB's LOCK file (a writer is running).
bool LockHeldElsewhere(const std::string& dir) {
  int fd = ::open((dir + "/LOCK").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  // An open-file-description query also sees the POSIX lock RocksDB holds
  // in this very process (F_GETLK does not report a process's own locks):
  // the target reads the journals its ingest workers write.
  bool held = ::fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
  ::close(fd);
  return held;
}

// The journal's open lock, a flock on DIR/OPEN.lock (docs/design.md#readiness).
// A writer holds it exclusively while RocksDB recovers and tidemark finishes
// what a crash left; a reader holds it shared while it opens. RocksDB's LOCK
// says that a writer runs, not that its recovery is over: a reader opened in
// the middle could take the MANIFEST from before the recovery's flush and the
// WAL list from after it, and miss acknowledged writes. A reader that may not
// create the file (read-only media, another user's journal) opens without it.
class OpenLock {
 public:
  OpenLock(const std::string& dir, bool writer) {
    const std::string path = dir + "/OPEN.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0 && !writer) fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return;
    while (::flock(fd_, writer ? LOCK_EX : LOCK_SH) != 0 && errno == EINTR) {
    }
  }
  ~OpenLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  OpenLock(const OpenLock&) = delete;
  OpenLock& operator=(const OpenLock&) = delete;

 private:
  int fd_ = -1;
};

Result<std::unique_ptr<Journal::Impl>> OpenDb(const std::string& dir, const OpenOptions& o,
                                               bool read_only) {
  auto impl = std::make_unique<Journal::Impl>();
  impl->dir = dir;
  impl->options = o;
  impl->read_only = read_only;
  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = !read_only;
  db_opts.create_missing_column_families = !read_only;
  db_opts.max_background_jobs = 2;
  db_opts.bytes_per_sync = 1 << 20;
  db_opts.keep_log_file_num = 2;
  db_opts.info_log_level = rocksdb::WARN_LEVEL;
  db_opts.max_total_wal_size = 256 << 20;
  auto cache = rocksdb::NewLRUCache(o.block_cache_bytes);
  // A reader opens the column families the journal has (a format-1 journal
  // written by an older build has no `extents`); a writer adds the missing.
  std::vector<std::string> existing;
  const bool listed = read_only && rocksdb::DB::ListColumnFamilies(db_opts, dir, &existing).ok();
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  std::vector<size_t> index;  // Cf of each descriptor
  for (size_t i = 0; i < kCfCount; ++i) {
    if (listed && std::find(existing.begin(), existing.end(), kColumnFamilies[i]) == existing.end()) {
      continue;
    }
    cfs.emplace_back(kColumnFamilies[i], CfOptions(i, o, cache));
    index.push_back(i);
  }
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (read_only && LockHeldElsewhere(dir)) {
    // A daemon has the journal open for writing: follow it as a RocksDB
    // secondary instance (its own info log and state in a private dir).
    std::string tmpl = (std::getenv("TMPDIR") ? std::string(std::getenv("TMPDIR")) : "/tmp") +
                       "/tidemark-secondary-XXXXXX";
    if (!mkdtemp(tmpl.data())) return Status::FromErrno(errno, "create " + tmpl);
    impl->secondary_dir = tmpl;
    db_opts.max_open_files = -1;  // required by secondary instances
    s = rocksdb::DB::OpenAsSecondary(db_opts, dir, tmpl, cfs, &impl->cf, &raw);
    if (s.ok()) s = raw->TryCatchUpWithPrimary();
  } else if (read_only) {
    s = rocksdb::DB::OpenForReadOnly(db_opts, dir, cfs, &impl->cf, &raw);
    if (s.ok() && LockHeldElsewhere(dir)) {
      // A writer started while this opened (one without the open lock: an
      // older build): what was read may be half of its recovery. Follow it.
      for (auto* h : impl->cf) raw->DestroyColumnFamilyHandle(h).PermitUncheckedError();
      impl->cf.clear();
      delete raw;
      raw = nullptr;
      return OpenDb(dir, o, read_only);
    }
  } else {
    s = rocksdb::DB::Open(db_opts, dir, cfs, &impl->cf, &raw);
  }
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return Status::TryAgain("journal " + dir + " is in use by another process");
    }
    if (s.IsInvalidArgument() && s.ToString().find("Column famil") != std::string::npos) {
      return Status::Corruption("journal " + dir + " lacks tidemark's column families (" +
                                s.ToString() + ")");
    }
    return FromRocks(s, "open journal " + dir);
  }
  impl->db.reset(raw);
  // Handles by Cf, nullptr for a column family the journal lacks.
  std::vector<rocksdb::ColumnFamilyHandle*> by_cf(kCfCount, nullptr);
  for (size_t k = 0; k < index.size() && k < impl->cf.size(); ++k) by_cf[index[k]] = impl->cf[k];
  impl->cf = std::move(by_cf);
  return impl;
}

}  // namespace

std::string UuidString(const std::array<uint8_t, 16>& u) {
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < u.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(hex[u[i] >> 4]);
    s.push_back(hex[u[i] & 15]);
  }
  return s;
}

std::string Hex(std::string_view s) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 15]);
  }
  return out;
}

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string m = std::string(what) + ": " + s.ToString();
  if (s.IsNoSpace() || s.ToString().find("No space left") != std::string::npos) {
    return Status::NoSpace(std::move(m));
  }
  if (s.IsCorruption()) return Status::Corruption(std::move(m));
  if (s.IsNotFound()) return Status::NotFound(std::move(m));
  if (s.IsInvalidArgument()) return Status::InvalidArgument(std::move(m));
  if (s.IsNotSupported()) return Status::NotSupported(std::move(m));
  if (s.IsTryAgain() || s.IsBusy()) return Status::TryAgain(std::move(m));
  return Status::IOError(std::move(m));
}

VolumeInfo VolumeState::Info() const {
  return VolumeInfo{rec.id,   rec.space, rec.name, epoch().size_bytes, epoch().block_bytes,
                    group, import_seq};
}

Journal::Impl::~Impl() {
  if (db) {
    if (!read_only && failed.ok()) Commit().IgnoreError();  // best effort at close
    index_writer.reset();  // what it queued is written
    if (!read_only && failed.ok()) {
      SyncLogs().IgnoreError();  // the next open has no unsynced tail to check
      // Leave no WAL behind: every read-only open would replay it, and with
      // several column families one small unflushed record pins old WAL
      // files full of block data.
      rocksdb::FlushOptions fo;
      std::vector<rocksdb::ColumnFamilyHandle*> all;
      for (auto* h : cf) {
        if (h) all.push_back(h);
      }
      db->Flush(fo, all).PermitUncheckedError();
    }
    for (auto* h : cf) {
      if (h) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    db->Close().PermitUncheckedError();
    db.reset();
  }
  if (!secondary_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(secondary_dir, ec);
  }
}

Result<VolumeState*> Journal::Impl::Volume(uint32_t id) {
  auto it = volumes.find(id);
  if (it == volumes.end()) return Status::NotFound("no volume with id " + std::to_string(id));
  return &it->second;
}

Result<const VolumeState*> Journal::Impl::Volume(uint32_t id) const {
  auto it = volumes.find(id);
  if (it == volumes.end()) return Status::NotFound("no volume with id " + std::to_string(id));
  return &it->second;
}

Status Journal::Impl::Writable() const {
  if (read_only) {
    return Status::NotSupported("journal " + dir + " is open read-only" +
                                (read_only_reason.empty() ? "" : ": " + read_only_reason));
  }
  if (!failed.ok()) return failed;
  return Status::Ok();
}

Status Journal::Impl::LoadState() {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, cf[kDefault]));
  for (it->Seek("V"); it->Valid() && it->key().starts_with("V"); it->Next()) {
    auto v = DecodeVolume(it->value().ToStringView());
    if (!v) return v.error().Annotate("journal " + dir + " volume record");
    VolumeState st;
    st.rec = std::move(v.value());
    volumes[st.rec.id] = std::move(st);
  }
  TM_RETURN_IF_ERROR(FromRocks(it->status(), "read volumes"));
  for (it->Seek("U"); it->Valid() && it->key().starts_with("U"); it->Next()) {
    std::string_view k = it->key().ToStringView();
    auto u = DecodeUnordered(it->value().ToStringView());
    if (k.size() != 13 || !u) return Status::Corruption("journal " + dir + ": bad unordered record");
    uint32_t space = static_cast<uint32_t>(coding::GetBE(k.data() + 1, 4));
    unordered[space].push_back({coding::GetBE(k.data() + 5, 8), u.value().upto, u.value().begin_ns});
  }
  TM_RETURN_IF_ERROR(FromRocks(it->status(), "read unordered intervals"));
  for (it->Seek("G"); it->Valid() && it->key().starts_with("G"); it->Next()) {
    std::string name(it->key().ToStringView().substr(1));
    auto g = DecodeGroup(it->value().ToStringView());
    if (!g) return g.error().Annotate("journal " + dir + " group " + name);
    for (size_t i = 0; i < g.value().volumes.size(); ++i) {
      auto v = volumes.find(g.value().volumes[i]);
      if (v == volumes.end() || v->second.rec.space != g.value().space) {
        return Status::Corruption("journal " + dir + ": group " + name +
                                  " names a volume that is not in its space");
      }
      v->second.group = name;
      v->second.import_seq = i;
      v->second.first_seq = g.value().volumes.size() - 1;
    }
    groups[name] = std::move(g.value());
  }
  TM_RETURN_IF_ERROR(FromRocks(it->status(), "read groups"));
  for (auto& [id, vol] : volumes) {
    std::unique_ptr<rocksdb::Iterator> r(db->NewIterator({}, cf[kRanges]));
    std::string prefix = IdPrefix(id);
    for (r->Seek(prefix); r->Valid() && r->key().starts_with(prefix); r->Next()) {
      BOOST_OUTCOME_TRY(key, DecodeSeqKey(r->key().ToStringView()));
      auto rec = DecodeRange(r->value().ToStringView());
      if (!rec) {
        return rec.error().Annotate("volume " + vol.rec.name + " range record at seq " +
                                    std::to_string(key.seq));
      }
      vol.ranges.push_back({key.seq, rec.value()});
    }
    TM_RETURN_IF_ERROR(FromRocks(r->status(), "read ranges"));
    SpaceState& sp = spaces[vol.rec.space];
    LastAtOrBefore flush(db.get(), cf[kFlushes], vol.rec.space, FlushKey(vol.rec.space, kNoSeq));
    if (flush->Valid()) {
      auto key = DecodeSeqKey(flush->key().ToStringView());
      if (key) sp.last_flush_seq = key.value().seq;
    }
    auto last = Edge(vol, /*first=*/false);
    if (last) {
      sp.last_seq = sp.committed_seq = last.value().seq;
      sp.last_time_ns = last.value().time_ns;
    }
  }
  return Status::Ok();
}

// Format 2: a space's segments do not end at its committed tail: records after
// it (a writer died before indexing writes it had answered), or fewer bytes
// than it names (a power loss kept index entries whose segment bytes it lost).
// A writer's open rolls the first forward and cuts the second
// (docs/format-journal.md#roll-forward).
bool TailsNeedAWriter(const Journal::Impl& probe, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(dir) / "segments", ec)) {
    const std::string name = e.path().filename().string();
    char* end = nullptr;
    const unsigned long space = std::strtoul(name.c_str(), &end, 16);
    if (name.size() != 8 || *end) continue;
    seg::Location tail;
    auto t = probe.ReadTail(static_cast<uint32_t>(space), /*synced=*/false);
    if (!t) return false;  // damage: the open reports it
    if (t.value()) tail = {t.value()->segment, t.value()->offset};
    auto log = seg::SegmentLog::Open(dir, static_cast<uint32_t>(space), probe.meta.uuid, {},
                                     /*create=*/false);
    if (!log) continue;
    const std::vector<uint64_t> segs = log.value()->Segments();
    if (segs.empty()) {
      if (tail.segment != 0) return true;
      continue;
    }
    // Records and no tail yet, or records in a later segment than the tail's.
    if (tail.segment == 0 || segs.back() != tail.segment) return true;
    const auto size = fs::file_size(log.value()->SegmentPath(segs.back()), ec);
    if (ec || size != tail.offset) return true;
  }
  return false;
}

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& dir, const OpenOptions& o) {
  namespace fs = std::filesystem;
  std::error_code ec;
  bool exists = fs::exists(fs::path(dir) / "CURRENT", ec);
  if (exists && o.read_only && !LockHeldElsewhere(dir) && ::access(dir.c_str(), W_OK) == 0) {
    // No writer runs: if one died leaving answered writes unindexed, or a
    // power loss left the index naming bytes the segments lost, a writer's
    // open rolls forward or cuts first, so that readers see what is there.
    bool roll = false;
    {
      OpenLock shared(dir, /*writer=*/false);
      auto probe = OpenDb(dir, o, /*read_only=*/true);
      if (probe) {
        std::string v;
        if (probe.value()->db->Get({}, probe.value()->cf[kDefault], MetaKey(), &v).ok()) {
          auto m = DecodeMeta(v);
          if (m && m.value().format_version >= 2 && m.value().write_floor <= kMaxFormatVersion) {
            probe.value()->meta = m.value();
            roll = TailsNeedAWriter(*probe.value(), dir);
          }
        }
      }
    }
    if (roll) {
      OpenOptions w = o;
      w.read_only = false;
      w.create_if_missing = false;
      (void)Journal::Open(dir, w);  // on failure (or a writer that won the race) read as is
    }
  }
  if (!exists) {
    if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
      return Status::InvalidArgument("journal " + dir + " is not a directory");
    }
    if (!o.create_if_missing || o.read_only) {
      return Status::NotFound("no journal at " + dir);
    }
    fs::create_directories(dir, ec);
    if (ec) return Status::FromErrno(ec.value(), "create journal directory " + dir);
  }
  OpenLock open_lock(dir, /*writer=*/!o.read_only);
  // Check the floors with a read-only open first, so that a journal this
  // build must not write is never opened for writing at all.
  MetaRecord meta;
  bool have_meta = false;
  if (exists) {
    BOOST_OUTCOME_TRY(probe, OpenDb(dir, o, /*read_only=*/true));
    std::string value;
    rocksdb::Status s = probe->db->Get({}, probe->cf[kDefault], MetaKey(), &value);
    if (s.IsNotFound()) return Status::Corruption("journal " + dir + " has no metadata record");
    TM_RETURN_IF_ERROR(FromRocks(s, "read metadata of " + dir));
    auto m = DecodeMeta(value);
    if (!m) return m.error().Annotate("journal " + dir + " metadata");
    meta = m.value();
    have_meta = true;
    if (meta.read_floor > kMaxFormatVersion) {
      return Status::NotSupported("journal " + dir + " needs format version " +
                                  std::to_string(meta.read_floor) +
                                  " to read; this build reads up to version " +
                                  std::to_string(kMaxFormatVersion));
    }
  }
  if (have_meta && meta.format_version < 2 && !o.allow_format1) {
    const char* env = std::getenv("TIDEMARK_JOURNAL_FORMAT");
    if (!(env && std::string_view(env) == "1")) {
      return Status::NotSupported("journal " + dir + " is format 1: run tidemark journal upgrade --journal " + dir);
    }
  }
  bool read_only = o.read_only;
  std::string reason;
  if (have_meta && meta.write_floor > kMaxFormatVersion) {
    read_only = true;
    reason = "format write floor " + std::to_string(meta.write_floor) +
             " is newer than this build's version " + std::to_string(kMaxFormatVersion);
  }
  BOOST_OUTCOME_TRY(impl, OpenDb(dir, o, read_only));
  impl->read_only_reason = reason;
  if (!have_meta) {
    uint32_t format = o.format;
    if (format == 0) {
      const char* env = std::getenv("TIDEMARK_JOURNAL_FORMAT");
      format = env && std::string_view(env) == "1" ? 1 : kMaxFormatVersion;
    }
    if (format < 1 || format > kMaxFormatVersion) {
      return Status::InvalidArgument("journal format " + std::to_string(format) +
                                     " (this build writes 1 to " +
                                     std::to_string(kMaxFormatVersion) + ")");
    }
    meta.format_version = meta.read_floor = meta.write_floor = format;
    meta.uuid = NewUuid();
    meta.codec = o.codec;
    meta.created_ns = NowNs();
    rocksdb::WriteOptions wo;
    wo.sync = true;
    TM_RETURN_IF_ERROR(
        FromRocks(impl->db->Put(wo, impl->cf[kDefault], MetaKey(), EncodeMeta(meta)),
                  "write metadata of " + dir));
  }
  impl->meta = meta;
  TM_RETURN_IF_ERROR(impl->LoadState());
  if (!impl->read_only && impl->v2()) {
    // Damage below the synced tails: writes answered durable are lost. The
    // journal opens read-only, and every write names the damage.
    std::string damage;
    TM_RETURN_IF_ERROR(impl->CheckSyncedChains(&damage));
    if (!damage.empty()) {
      impl->read_only = true;
      impl->read_only_reason = "damaged: " + damage;
    }
  }
  if (!impl->read_only && impl->v2()) {
    // What a power loss may have left after the synced tails (format 2).
    bool cut = false, rolled = false;
    TM_RETURN_IF_ERROR(impl->CheckUnsyncedTails(&cut));
    // What a crash left written but not indexed (after the committed tails).
    TM_RETURN_IF_ERROR(impl->RollForward(&rolled));
    if (cut || rolled) {
      impl->volumes.clear();
      impl->spaces.clear();
      impl->groups.clear();
      impl->unordered.clear();
      TM_RETURN_IF_ERROR(impl->LoadState());
    }
    if (o.async_index) impl->index_writer = std::make_unique<IndexWriter>(impl->db.get());
  }
  auto journal = std::unique_ptr<Journal>(new Journal(std::move(impl)));
  if (!journal->read_only()) {
    // Finish what a crash interrupted: drop block versions of an import
    // whose seq record was never written (they are above every point, so
    // readers never saw them, but a later seq must not inherit them).
    Journal::Impl& in = *journal->impl_;
    std::unique_ptr<rocksdb::Iterator> it(in.db->NewIterator({}, in.cf[kDefault]));
    std::vector<std::string> markers;
    for (it->Seek(std::string(1, kImportMarkerPrefix));
         it->Valid() && it->key().starts_with(std::string(1, kImportMarkerPrefix)); it->Next()) {
      markers.push_back(it->key().ToString());
    }
    for (const std::string& marker : markers) {
      std::string v;
      TM_RETURN_IF_ERROR(FromRocks(in.db->Get({}, in.cf[kDefault], marker, &v), "read marker"));
      if (v.size() == 16) continue;  // a staged import: resumed, not abandoned
      TM_RETURN_IF_ERROR(in.AbandonImport(marker));
    }
  }
  return journal;
}

Journal::Journal(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Journal::~Journal() = default;

const std::string& Journal::dir() const { return impl_->dir; }
bool Journal::follows_writer() const { return !impl_->secondary_dir.empty(); }
bool Journal::read_only() const { return impl_->read_only; }
const std::string& Journal::read_only_reason() const { return impl_->read_only_reason; }
const MetaRecord& Journal::meta() const { return impl_->meta; }

std::vector<VolumeInfo> Journal::Volumes() const {
  std::vector<VolumeInfo> out;
  for (const auto& [id, v] : impl_->volumes) out.push_back(v.Info());
  return out;
}

Result<VolumeInfo> Journal::FindVolume(std::string_view name) const {
  std::string names;
  for (const auto& [id, v] : impl_->volumes) {
    if (v.rec.name == name) return v.Info();
    names += (names.empty() ? "" : ", ") + v.rec.name;
  }
  return Status::NotFound("no volume '" + std::string(name) + "' in journal " + impl_->dir +
                          (names.empty() ? " (it has none)" : " (it has: " + names + ")"));
}

namespace {

Status CheckName(std::string_view what, std::string_view name) {
  if (name.empty() || name.size() > 255) {
    return Status::InvalidArgument(std::string(what) + " name must be 1 to 255 bytes");
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '/') {
      return Status::InvalidArgument(std::string(what) + " name '" + std::string(name) +
                                     "' has a control character or '/'");
    }
  }
  return Status::Ok();
}

Status CheckGeometry(uint64_t size_bytes, uint32_t block_bytes) {
  if (block_bytes < 512 || block_bytes > (1u << 20) || (block_bytes & (block_bytes - 1))) {
    return Status::InvalidArgument("block size " + std::to_string(block_bytes) +
                                   " is not a power of two from 512 to 1048576");
  }
  if (size_bytes == 0 || size_bytes % kSectorBytes) {
    return Status::InvalidArgument("volume size " + std::to_string(size_bytes) +
                                   " is not a positive multiple of 512");
  }
  return Status::Ok();
}

}  // namespace

Result<VolumeInfo> Journal::CreateVolume(std::string_view name, uint64_t size_bytes,
                                         uint32_t block_bytes) {
  TM_RETURN_IF_ERROR(impl_->Writable());
  TM_RETURN_IF_ERROR(CheckName("volume", name));
  if (FindVolume(name)) {
    return Status::InvalidArgument("volume '" + std::string(name) + "' already exists");
  }
  TM_RETURN_IF_ERROR(CheckGeometry(size_bytes, block_bytes));
  uint32_t id = impl_->volumes.empty() ? 1 : impl_->volumes.rbegin()->first + 1;
  VolumeRecord rec{id, id, std::string(name), {Epoch{0, 0, size_bytes, block_bytes}}};
  rocksdb::WriteOptions wo;
  wo.sync = true;
  TM_RETURN_IF_ERROR(impl_->Commit());
  TM_RETURN_IF_ERROR(impl_->SyncLogs());  // segments before a synced WAL
  TM_RETURN_IF_ERROR(FromRocks(
      impl_->db->Put(wo, impl_->cf[kDefault], VolumeKey(id), EncodeVolume(rec)),
      "create volume " + std::string(name)));
  VolumeState st;
  st.rec = rec;
  impl_->volumes[id] = st;
  impl_->spaces[id];
  return st.Info();
}

Result<GroupInfo> Journal::CreateGroup(std::string_view name,
                                       const std::vector<VolumeSpec>& specs) {
  Impl& in = *impl_;
  TM_RETURN_IF_ERROR(in.Writable());
  TM_RETURN_IF_ERROR(CheckName("group", name));
  if (in.groups.count(std::string(name))) {
    return Status::InvalidArgument("group '" + std::string(name) + "' already exists");
  }
  if (specs.empty() || specs.size() > 65535) {
    return Status::InvalidArgument("group '" + std::string(name) + "' needs 1 to 65535 volumes");
  }
  std::set<std::string> names;
  for (const VolumeSpec& v : specs) {
    TM_RETURN_IF_ERROR(CheckName("volume", v.name));
    if (FindVolume(v.name) || !names.insert(v.name).second) {
      return Status::InvalidArgument("volume '" + v.name + "' already exists");
    }
    TM_RETURN_IF_ERROR(CheckGeometry(v.size_bytes, v.block_bytes).Annotate("volume " + v.name));
  }
  TM_RETURN_IF_ERROR(in.Commit());
  const uint32_t space = in.volumes.empty() ? 1 : in.volumes.rbegin()->first + 1;
  GroupRecord group{space, {}};
  rocksdb::WriteBatch wb;
  std::vector<VolumeState> states;
  for (size_t i = 0; i < specs.size(); ++i) {
    const uint32_t id = space + static_cast<uint32_t>(i);
    VolumeState st;
    st.rec = {id, space, specs[i].name, {Epoch{0, 0, specs[i].size_bytes, specs[i].block_bytes}}};
    st.group = std::string(name);
    st.import_seq = i;
    st.first_seq = specs.size() - 1;
    TM_RETURN_IF_ERROR(FromRocks(wb.Put(in.cf[kDefault], VolumeKey(id), EncodeVolume(st.rec)),
                                 "batch put"));
    group.volumes.push_back(id);
    states.push_back(std::move(st));
  }
  TM_RETURN_IF_ERROR(
      FromRocks(wb.Put(in.cf[kDefault], GroupKey(name), EncodeGroup(group)), "batch put"));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  TM_RETURN_IF_ERROR(in.SyncLogs());  // segments before a synced WAL
  TM_RETURN_IF_ERROR(FromRocks(in.db->Write(wo, &wb), "create group " + std::string(name)));
  for (VolumeState& st : states) in.volumes[st.rec.id] = std::move(st);
  in.spaces[space];
  in.groups[std::string(name)] = group;
  return in.GroupOf(std::string(name), group);
}

GroupInfo Journal::Impl::GroupOf(const std::string& name, const GroupRecord& rec) const {
  GroupInfo g{name, rec.space, {}};
  for (uint32_t id : rec.volumes) {
    auto it = volumes.find(id);
    if (it != volumes.end()) g.volumes.push_back(it->second.Info());
  }
  return g;
}

std::vector<GroupInfo> Journal::Groups() const {
  std::vector<GroupInfo> out;
  for (const auto& [name, rec] : impl_->groups) out.push_back(impl_->GroupOf(name, rec));
  return out;
}

Result<GroupInfo> Journal::FindGroup(std::string_view name) const {
  auto it = impl_->groups.find(std::string(name));
  if (it != impl_->groups.end()) return impl_->GroupOf(it->first, it->second);
  std::string names;
  for (const auto& [n, rec] : impl_->groups) names += (names.empty() ? "" : ", ") + n;
  return Status::NotFound("no group '" + std::string(name) + "' in journal " + impl_->dir +
                          (names.empty() ? " (it has none)" : " (it has: " + names + ")"));
}

bool Journal::Impl::AwaitsImage(const VolumeState& vol) const {
  auto it = spaces.find(vol.rec.space);
  Seq last = it == spaces.end() ? kNoSeq : it->second.last_seq;
  return last == kNoSeq || last < vol.import_seq;
}

Status Journal::Impl::ImageIsNext(const VolumeState& vol) const {
  auto it = spaces.find(vol.rec.space);
  Seq last = it == spaces.end() ? kNoSeq : it->second.last_seq;
  Seq next = last == kNoSeq ? 0 : last + 1;
  if (next == vol.import_seq) return Status::Ok();
  if (next > vol.import_seq) {
    return Status::InvalidArgument("volume " + vol.rec.name + " already has its seq 0 image");
  }
  return Status::InvalidArgument("volume " + vol.rec.name + " is member " +
                                 std::to_string(vol.import_seq + 1) + " of group " + vol.group +
                                 ": the images of the members ahead of it come first");
}

Status Journal::SetBackingCheckpoint(uint32_t volume, Seq seq) {
  TM_RETURN_IF_ERROR(impl_->Writable());
  BOOST_OUTCOME_TRY(vol, impl_->Volume(volume));
  Impl& in = *impl_;
  if (in.v2()) {
    TM_RETURN_IF_ERROR(in.AppendRecord(vol->rec.space, seg::RecordKind::kCheckpoint, 0, volume,
                                       seq, seg::EncodeCheckpointBody(NowNs())));
  }
  TM_RETURN_IF_ERROR(FromRocks(
      in.batch.Put(in.cf[kDefault], CheckpointKey(volume), EncodeCheckpoint(seq)), "batch put"));
  return in.CommitDurable();
}

Result<Seq> Journal::BackingCheckpoint(uint32_t volume) const {
  BOOST_OUTCOME_TRY(vol, impl_->Volume(volume));
  (void)vol;
  std::string v;
  rocksdb::Status s = impl_->db->Get({}, impl_->cf[kDefault], CheckpointKey(volume), &v);
  if (s.IsNotFound()) return kNoSeq;
  TM_RETURN_IF_ERROR(FromRocks(s, "read backing checkpoint"));
  return DecodeCheckpoint(v);
}

Status Journal::CatchUp() {
  if (impl_->secondary_dir.empty()) return Status::Ok();
  TM_RETURN_IF_ERROR(FromRocks(impl_->db->TryCatchUpWithPrimary(), "follow the journal writer"));
  // Volumes and ranges may have changed: reload them.
  impl_->volumes.clear();
  impl_->spaces.clear();
  impl_->groups.clear();
  impl_->unordered.clear();
  return impl_->LoadState();
}

Status Journal::SetFloors(uint32_t read_floor, uint32_t write_floor) {
  TM_RETURN_IF_ERROR(impl_->Writable());
  MetaRecord m = impl_->meta;
  m.read_floor = read_floor;
  m.write_floor = write_floor;
  rocksdb::WriteOptions wo;
  wo.sync = true;
  TM_RETURN_IF_ERROR(impl_->SyncLogs());  // segments before a synced WAL
  TM_RETURN_IF_ERROR(FromRocks(impl_->db->Put(wo, impl_->cf[kDefault], MetaKey(), EncodeMeta(m)),
                               "write metadata"));
  impl_->meta = m;
  return Status::Ok();
}

}  // namespace tidemark::journal
