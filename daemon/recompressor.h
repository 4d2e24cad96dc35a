// Background neural recompression. Chunks land in the zstd (or raw) tier; after a settle delay,
// worker threads take them in batches, encode them with the volume's current model, decode the
// result and check it against the chunk before it counts, write the new frame to a pack, and
// switch the chunk over in one index update (ChunkStore::recode). A chunk stays as it is when the
// neural frame is not smaller by `margin`; either way it is marked tried (chunks.tier_done).
//
// Workers run at idle priority and pause while the volume has seen writes in the last second;
// they never lock a chunk, so reads are never blocked by them. A crash at any point loses
// nothing: until the index update commits, the chunk's old record is what the index names.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "index/stats.h"
#include "index/store.h"

namespace dzfs {

struct RecompressOptions {
  int threads = 1;
  int settle_secs = 10;     // leave fresh chunks alone this long (they may be overwritten soon)
  int batch = 8;            // chunks claimed at once by a worker
  double margin = 0.02;     // neural must save at least this share of the stored bytes
  std::function<int64_t()> last_foreground_write_ns;  // null: never pause
};

struct RecompressCounters {
  std::atomic<uint64_t> tried{0}, recompressed{0}, kept{0}, failed{0};
  std::atomic<uint64_t> raw_bytes{0}, bytes_before{0}, bytes_after{0};
  std::atomic<int64_t> busy_ns{0};  // worker time spent encoding and verifying
};

// Queues every neural chunk whose model is not in the active set for re-encoding with it.
Status queue_model_migration(Store& store);

class Recompressor {
 public:
  Recompressor(Store& store, RecompressOptions opts);
  ~Recompressor();  // stops the workers; a chunk in progress is finished or dropped, never half-done

  void start();
  // Works in the calling thread until no chunk is left (settle delay ignored); for `dzfs compress`.
  Status drain(const std::function<void(uint64_t done, uint64_t total)>& progress);
  const RecompressCounters& counters() const { return c_; }

 private:
  struct Claim {
    int64_t id;
    PackLocation loc;
    bool migrate;  // neural under an older model: moved to the current one to retire the old
  };
  void worker();
  Result<std::vector<Claim>> claim(int settle_secs);
  void release(const std::vector<Claim>& batch);
  Status process(const Claim& c);
  bool should_pause() const;

  Store& store_;
  RecompressOptions opts_;
  RecompressCounters c_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::set<int64_t> claimed_;
  std::vector<std::thread> threads_;
};

}  // namespace dzfs
