// LRU chunk cache: see chunk_cache.h.
#include "index/chunk_cache.h"

namespace dzfs {

ChunkBytes ChunkCache::get(int64_t id) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = map_.find(id);
  if (it == map_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void ChunkCache::put(int64_t id, ChunkBytes bytes) {
  if (!bytes || bytes->size() > cap_) return;
  std::lock_guard<std::mutex> g(mu_);
  if (map_.count(id)) return;
  used_ += bytes->size();
  lru_.emplace_front(id, std::move(bytes));
  map_[id] = lru_.begin();
  while (used_ > cap_ && !lru_.empty()) {
    used_ -= lru_.back().second->size();
    map_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

void ChunkCache::erase(int64_t id) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = map_.find(id);
  if (it == map_.end()) return;
  used_ -= it->second->second->size();
  lru_.erase(it->second);
  map_.erase(it);
}

}  // namespace dzfs
