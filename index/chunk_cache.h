// An LRU cache of decoded chunks, bounded in bytes, shared by all readers.
#pragma once
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace dzfs {

using ChunkBytes = std::shared_ptr<const std::string>;

class ChunkCache {
 public:
  explicit ChunkCache(size_t capacity_bytes) : cap_(capacity_bytes) {}
  ChunkBytes get(int64_t id);
  void put(int64_t id, ChunkBytes bytes);
  void erase(int64_t id);

 private:
  using Entry = std::pair<int64_t, ChunkBytes>;
  std::mutex mu_;
  size_t cap_, used_ = 0;
  std::list<Entry> lru_;  // front = most recent
  std::unordered_map<int64_t, std::list<Entry>::iterator> map_;
};

}  // namespace dzfs
