// Decode-ahead for sequential reads: a small pool of threads that fetches chunks (read, decode,
// verify) into the ChunkStore's cache before the reader asks for them, in parallel across
// chunks. Neural chunks decode at about 1 MB/s per core, so a restore scales with the cores only
// if several chunks decode at once. Requests are hints: dropped when the queue is full, and
// failures are left for the reader to meet (and report) itself.
#pragma once
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "index/chunk_store.h"

namespace dzfs {

class ChunkPrefetcher {
 public:
  ChunkPrefetcher(ChunkStore& chunks, int threads, size_t max_queued = 64);
  ~ChunkPrefetcher();
  void want(int64_t chunk_id);

 private:
  void run();
  ChunkStore& chunks_;
  size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<int64_t> queue_;
  std::set<int64_t> queued_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace dzfs
