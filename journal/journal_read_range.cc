// Journal::ReadBlocks: a range of blocks at a point with one iterator, for
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

}  // namespace

Status Journal::ReadBlocks(uint32_t volume, uint64_t first_block, uint32_t count, Seq seq,
                           char* out, BlockState* states) const {
  BOOST_OUTCOME_TRY(vol, impl_->Volume(volume));
  const uint64_t blocks = vol->Info().blocks();
  if (count == 0 || first_block >= blocks || count > blocks - first_block) {
    return Status::InvalidArgument("blocks " + std::to_string(first_block) + "+" +
                                   std::to_string(count) + " are not inside " + vol->rec.name);
  }
  const uint32_t bs = vol->epoch().block_bytes;
  const uint32_t id = vol->rec.id;
  // Everything reads as zeros until a version says otherwise.
  if (out) std::memset(out, 0, static_cast<size_t>(count) * bs);
  if (states) std::fill(states, states + count, BlockState::kZero);

  // The newest version of `block` at or before seq is at the iterator.
  auto take = [&](uint64_t block, Seq version, std::string_view stored) -> Status {
    if (impl_->ZeroedByRange(*vol, block, version, seq)) return Status::Ok();
    const uint64_t i = block - first_block;
    if (!out) {
      // The kind byte only: no CRC over bytes nobody reads here.
      bool zero = !stored.empty() && static_cast<ValueKind>(stored[0]) == ValueKind::kZeroBlock;
      if (states && !zero) states[i] = BlockState::kData;
      return Status::Ok();
    }
    bool zero = false;
    TM_RETURN_IF_ERROR(impl_->DecodeBlockValue(*vol, block, version, stored, out + i * bs, &zero));
    if (states && !zero) states[i] = BlockState::kData;
    return Status::Ok();
  };

  if (count <= kSeekEachBlockMax) {
    rocksdb::ReadOptions ro;
    ro.prefix_same_as_start = true;  // a valid key is always of the block sought
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf[kBlocks]));
    for (uint64_t block = first_block; block < first_block + count; ++block) {
      it->Seek(BlockKey(id, block, seq));
      TM_RETURN_IF_ERROR(FromRocks(it->status(), "read block"));
      if (!it->Valid()) continue;
      BOOST_OUTCOME_TRY(key, DecodeBlockKey(it->key().ToStringView()));
      if (key.block != block) continue;
      TM_RETURN_IF_ERROR(take(block, key.seq, it->value().ToStringView()));
    }
    return Status::Ok();
  }

  std::string upper = BlockKey(id, first_block + count, kNoSeq);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.total_order_seek = true;  // crosses block prefixes
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf[kBlocks]));
  it->Seek(BlockKey(id, first_block, seq));
  while (it->Valid()) {
    BOOST_OUTCOME_TRY(key, DecodeBlockKey(it->key().ToStringView()));
    const uint64_t block = key.block;
    if (key.seq <= seq) TM_RETURN_IF_ERROR(take(block, key.seq, it->value().ToStringView()));
    // Versions newer than the point (key.seq > seq) or older than the one
    // taken: step over a few, else seek to where the next answer is.
    int n = 0;
    for (; n < kNextsBeforeSeek; ++n) {
      it->Next();
      if (!it->Valid()) break;
      std::string_view k = it->key().ToStringView();
      if (k.size() != 20 || coding::GetBE(k.data() + 4, 8) != block) break;
      if (key.seq > seq && ~coding::GetBE(k.data() + 12, 8) <= seq) break;  // the one to take
    }
    if (n == kNextsBeforeSeek) {
      it->Seek(key.seq > seq ? BlockKey(id, block, seq) : BlockKey(id, block + 1, seq));
    }
  }
  return FromRocks(it->status(), "read blocks of " + vol->rec.name);
}

}  // namespace tidemark::journal
