// Decode-ahead pool: see chunk_prefetcher.h.
#include "index/chunk_prefetcher.h"

namespace dzfs {

ChunkPrefetcher::ChunkPrefetcher(ChunkStore& chunks, int threads, size_t max_queued)
    : chunks_(chunks), max_queued_(max_queued) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

ChunkPrefetcher::~ChunkPrefetcher() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ChunkPrefetcher::want(int64_t id) {
  if (chunks_.cached(id)) return;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (queued_.count(id) || queue_.size() >= max_queued_) return;
    queue_.push_back(id);
    queued_.insert(id);
  }
  cv_.notify_one();
}

void ChunkPrefetcher::run() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    int64_t id = queue_.front();
    queue_.pop_front();
    lk.unlock();
    ChunkPlace loc;  // a guessed id may not exist: skip it quietly
    if (!chunks_.cached(id) && chunks_.locate(id, loc).ok()) (void)chunks_.get(id);  // errors reach the reader
    lk.lock();
    queued_.erase(id);
  }
}

}  // namespace dzfs
