// Journal::ReadBlocks and PointReader: ranges of blocks at a point, for
// virtual snapshots (recovery/snapshot.h) that serve NBD reads and
// BLOCK_STATUS straight from the journal.
#include <rocksdb/options.h>

#include <algorithm>
#include <cstring>

#include "coding.h"
#include "journal_impl.h"

namespace tidemark::journal {

namespace {

// Up to this many blocks, each block is one prefix Seek (the prefix bloom
// filter skips SST files without a version of it: a random 4 KiB read).
// Longer ranges are one total-order scan that steps over blocks without
// versions in one Seek (a sequential read, a BLOCK_STATUS of a large hole).
constexpr uint32_t kSeekEachBlockMax = 4;

// After this many Next() calls over versions of one block, Seek instead
// (as ScanBlocks does).
constexpr int kNextsBeforeSeek = 8;

// Reads ranges of one volume at one seq. Its iterators are made on first
// use and kept: a PointReader keeps one for its life, ReadBlocks makes one
// per call. Uses only the const, read-only parts of Impl.
class RangeReader final : public PointReader {
 public:
  RangeReader(const Journal::Impl* impl, const VolumeState* vol, Seq seq)
      : impl_(impl), vol_(vol), seq_(seq) {}

  Status Read(uint64_t first_block, uint32_t count, char* out, BlockState* states) override;

 private:
  // The newest version of `block` at or before seq_ is `stored`.
  Status Take(uint64_t first_block, uint64_t block, Seq version, std::string_view stored, char* out,
              BlockState* states) const;
  Status SeekEach(uint64_t first_block, uint32_t count, char* out, BlockState* states);
  Status Scan(uint64_t first_block, uint32_t count, char* out, BlockState* states);

  const Journal::Impl* impl_;
  const VolumeState* vol_;
  const Seq seq_;
  std::unique_ptr<rocksdb::Iterator> point_it_;  // prefix mode, one block per Seek
  std::unique_ptr<rocksdb::Iterator> scan_it_;   // total order, across blocks
  ChunkCache cache_;                             // format 2: the last chunk read
};

Status RangeReader::Read(uint64_t first_block, uint32_t count, char* out, BlockState* states) {
  const uint64_t blocks = vol_->Info().blocks();
  if (count == 0 || first_block >= blocks || count > blocks - first_block) {
    return Status::InvalidArgument("blocks " + std::to_string(first_block) + "+" +
                                   std::to_string(count) + " are not inside " + vol_->rec.name);
  }
  // Everything reads as zeros until a version says otherwise.
  if (out) std::memset(out, 0, static_cast<size_t>(count) * vol_->epoch().block_bytes);
  if (states) std::fill(states, states + count, BlockState::kZero);
  if (impl_->v2()) {
    const uint32_t bs = vol_->epoch().block_bytes;
    return impl_->ForEachExtent(
        *vol_, seq_, first_block, first_block + count,
        [&](uint64_t block, Seq version, const ExtentRecord& rec) -> Status {
          if ((rec.flags & kExtentZero) || impl_->ZeroedByRange(*vol_, block, version, seq_)) {
            return Status::Ok();
          }
          const uint64_t i = block - first_block;
          if (states) states[i] = BlockState::kData;
          if (!out) return Status::Ok();
          const char* bytes = nullptr;
          TM_RETURN_IF_ERROR(impl_->BlockFromExtent(*vol_, block, version, rec, &cache_, &bytes));
          std::memcpy(out + i * bs, bytes, bs);
          return Status::Ok();
        });
  }
  return count <= kSeekEachBlockMax ? SeekEach(first_block, count, out, states)
                                    : Scan(first_block, count, out, states);
}

Status RangeReader::Take(uint64_t first_block, uint64_t block, Seq version, std::string_view stored,
                         char* out, BlockState* states) const {
  if (impl_->ZeroedByRange(*vol_, block, version, seq_)) return Status::Ok();
  const uint64_t i = block - first_block;
  if (!out) {
    // The kind byte only: no CRC over bytes nobody reads here.
    bool zero = !stored.empty() && static_cast<ValueKind>(stored[0]) == ValueKind::kZeroBlock;
    if (states && !zero) states[i] = BlockState::kData;
    return Status::Ok();
  }
  bool zero = false;
  TM_RETURN_IF_ERROR(impl_->DecodeBlockValue(*vol_, block, version, stored,
                                             out + i * vol_->epoch().block_bytes, &zero));
  if (states && !zero) states[i] = BlockState::kData;
  return Status::Ok();
}

Status RangeReader::SeekEach(uint64_t first_block, uint32_t count, char* out, BlockState* states) {
  if (!point_it_) {
    rocksdb::ReadOptions ro;
    ro.prefix_same_as_start = true;  // a valid key is always of the block sought
    point_it_.reset(impl_->db->NewIterator(ro, impl_->cf[kBlocks]));
  }
  rocksdb::Iterator* it = point_it_.get();
  for (uint64_t block = first_block; block < first_block + count; ++block) {
    it->Seek(BlockKey(vol_->rec.id, block, seq_));
    TM_RETURN_IF_ERROR(FromRocks(it->status(), "read block"));
    if (!it->Valid()) continue;
    BOOST_OUTCOME_TRY(key, DecodeBlockKey(it->key().ToStringView()));
    if (key.block != block) continue;
    TM_RETURN_IF_ERROR(Take(first_block, block, key.seq, it->value().ToStringView(), out, states));
  }
  return Status::Ok();
}

Status RangeReader::Scan(uint64_t first_block, uint32_t count, char* out, BlockState* states) {
  if (!scan_it_) {
    // No upper bound (it would be fixed for the iterator's life): the loop
    // stops at the first key past the range instead.
    rocksdb::ReadOptions ro;
    ro.total_order_seek = true;  // crosses block prefixes
    scan_it_.reset(impl_->db->NewIterator(ro, impl_->cf[kBlocks]));
  }
  rocksdb::Iterator* it = scan_it_.get();
  const uint32_t id = vol_->rec.id;
  const uint64_t end = first_block + count;
  // The block of key k when it is a block key of this volume inside the
  // range, else `end`.
  auto block_of = [&](std::string_view k) -> uint64_t {
    if (k.size() != 20 || coding::GetBE(k.data(), 4) != id) return end;
    return std::min(end, coding::GetBE(k.data() + 4, 8));
  };
  it->Seek(BlockKey(id, first_block, seq_));
  while (it->Valid() && block_of(it->key().ToStringView()) < end) {
    BOOST_OUTCOME_TRY(key, DecodeBlockKey(it->key().ToStringView()));
    const uint64_t block = key.block;
    if (key.seq <= seq_) {
      TM_RETURN_IF_ERROR(
          Take(first_block, block, key.seq, it->value().ToStringView(), out, states));
    }
    // Versions newer than the point (key.seq > seq_) or older than the one
    // taken: step over a few, else seek to where the next answer is.
    int n = 0;
    for (; n < kNextsBeforeSeek; ++n) {
      it->Next();
      if (!it->Valid()) break;
      std::string_view k = it->key().ToStringView();
      if (block_of(k) != block) break;
      if (key.seq > seq_ && ~coding::GetBE(k.data() + 12, 8) <= seq_) break;  // the one to take
    }
    if (n == kNextsBeforeSeek) {
      it->Seek(key.seq > seq_ ? BlockKey(id, block, seq_) : BlockKey(id, block + 1, seq_));
    }
  }
  return FromRocks(it->status(), "read blocks of " + vol_->rec.name);
}

}  // namespace

Status Journal::ReadBlocks(uint32_t volume, uint64_t first_block, uint32_t count, Seq seq,
                           char* out, BlockState* states) const {
  TM_RETURN_IF_ERROR(impl_->Barrier());  // what was committed is indexed
  BOOST_OUTCOME_TRY(vol, impl_->Volume(volume));
  RangeReader reader(impl_.get(), vol, seq);
  return reader.Read(first_block, count, out, states);
}

Result<std::unique_ptr<PointReader>> Journal::NewPointReader(uint32_t volume, Seq seq) const {
  TM_RETURN_IF_ERROR(impl_->Barrier());  // what was committed is indexed
  BOOST_OUTCOME_TRY(vol, impl_->Volume(volume));
  return std::unique_ptr<PointReader>(new RangeReader(impl_.get(), vol, seq));
}

}  // namespace tidemark::journal
