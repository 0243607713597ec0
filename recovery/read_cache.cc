#include "read_cache.h"

#include <algorithm>
#include <cstring>

namespace tidemark::recovery {

ReadCache::ReadCache(uint64_t capacity_bytes, uint32_t chunk_bytes, uint32_t block_bytes,
                     uint64_t volume_blocks)
    : block_bytes_(block_bytes),
      chunk_blocks_(std::max<uint32_t>(1, chunk_bytes / block_bytes)),
      volume_blocks_(volume_blocks),
      max_chunks_(std::max<uint64_t>(1, capacity_bytes / (uint64_t{chunk_blocks_} * block_bytes))) {
}

ReadCache::Chunk ReadCache::Find(uint64_t chunk) {
  std::lock_guard lock(mu_);
  auto it = map_.find(chunk);
  if (it == map_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.pos);
  return it->second.data;
}

void ReadCache::Insert(uint64_t chunk, Chunk data) {
  std::lock_guard lock(mu_);
  if (map_.count(chunk)) return;  // another thread read it meanwhile
  lru_.push_front(chunk);
  map_[chunk] = {std::move(data), lru_.begin()};
  while (map_.size() > max_chunks_) {
    map_.erase(lru_.back());
    lru_.pop_back();
  }
}

Status ReadCache::Read(uint64_t first_block, uint32_t count, char* out, const BlockReadFn& read) {
  const uint64_t end = first_block + count;
  // Copies the part of chunk `chunk` (holding `data`) that the read wants.
  auto copy = [&](uint64_t chunk, const std::string& data) {
    const uint64_t c_first = chunk * chunk_blocks_;
    const uint64_t from = std::max(first_block, c_first);
    const uint64_t upto = std::min(end, c_first + chunk_blocks_);
    std::memcpy(out + (from - first_block) * block_bytes_,
                data.data() + (from - c_first) * block_bytes_, (upto - from) * block_bytes_);
  };
  const uint64_t last_chunk = (end - 1) / chunk_blocks_;
  for (uint64_t chunk = first_block / chunk_blocks_; chunk <= last_chunk;) {
    if (Chunk data = Find(chunk)) {
      ++hits_;
      copy(chunk, *data);
      ++chunk;
      continue;
    }
    // A run of missing chunks: one read (one round trip) for all of them.
    uint64_t run_end = chunk + 1;
    while (run_end <= last_chunk && !Find(run_end)) ++run_end;
    const uint64_t b_first = chunk * chunk_blocks_;
    const uint64_t b_end = std::min(volume_blocks_, run_end * chunk_blocks_);
    std::string buf((b_end - b_first) * block_bytes_, '\0');
    TM_RETURN_IF_ERROR(read(b_first, static_cast<uint32_t>(b_end - b_first), buf.data(), nullptr));
    const size_t chunk_len = static_cast<size_t>(chunk_blocks_) * block_bytes_;
    for (uint64_t c = chunk; c < run_end; ++c) {
      ++misses_;
      auto data = std::make_shared<const std::string>(
          buf.substr((c - chunk) * chunk_len, chunk_len));  // the last one may be short
      copy(c, *data);
      Insert(c, std::move(data));
    }
    chunk = run_end;
  }
  return Status::Ok();
}

}  // namespace tidemark::recovery
