// Private to recovery/: an LRU cache of a point's blocks in front of a
// snapshot's readers (snapshot.h), for remote readers where every miss is a
// round trip to the target. A point's bytes never change, so an entry is
// never stale and is only ever dropped for room.
//
// Entries are chunks of chunk_blocks blocks: a miss reads the whole chunk
// (read-around: a 4 KiB read brings its 64 KiB neighbourhood along).
//
// Thread-safety: Read() from any thread; the BlockReadFn passed is the
// caller's own. Two threads missing the same chunk both read it.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "tidemark/recovery/snapshot.h"

namespace tidemark::recovery {

class ReadCache {
 public:
  ReadCache(uint64_t capacity_bytes, uint32_t chunk_bytes, uint32_t block_bytes,
            uint64_t volume_blocks);
  // Blocks [first_block, first_block + count) into out, from the cache or
  // through `read` (whose errors are returned; nothing is cached then).
  Status Read(uint64_t first_block, uint32_t count, char* out, const BlockReadFn& read);

  uint64_t hits() const { return hits_.load(); }
  uint64_t misses() const { return misses_.load(); }

 private:
  using Chunk = std::shared_ptr<const std::string>;
  Chunk Find(uint64_t chunk);
  void Insert(uint64_t chunk, Chunk data);

  const uint32_t block_bytes_;
  const uint32_t chunk_blocks_;
  const uint64_t volume_blocks_;
  const size_t max_chunks_;
  std::mutex mu_;
  std::list<uint64_t> lru_;  // most recent first; guarded by mu_
  struct Entry {
    Chunk data;
    std::list<uint64_t>::iterator pos;
  };
  std::unordered_map<uint64_t, Entry> map_;  // guarded by mu_
  std::atomic<uint64_t> hits_{0}, misses_{0};
};

}  // namespace tidemark::recovery
