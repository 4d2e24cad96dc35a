// Background neural recompression into solid groups. Chunks land in the zstd (or raw) tier; after
// a settle delay a worker claims a window of the backlog, orders it so that related bytes sit
// together (by file name extension, then directory, then file, then offset in the file), cuts it
// into groups of up to `group_bytes` raw bytes and codes each group as one neural stream (frame
// version 6, codec/FORMAT.md 2.9: the predictor's state carries across the chunks). The frame is decoded and compared
// with the chunks before it counts; the group record is written to a pack and every member is
// switched over in one index update (ChunkStore::store_group). A group is kept only when it is
// smaller than its members' records by `margin` (always, when its members were neural or grouped:
// migration to a new model, regrouping of a mostly dead group); either way the chunks are marked
// tried (chunks.tier_done). Chunks that zstd could not shrink (raw tier) are not grouped.
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
  uint64_t group_bytes = 0;         // raw bytes of a group at most; 0 = the volume's group_kb
  int window_groups = 4;            // a worker claims (and orders) this many groups' worth at once
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
    ChunkPlace was;  // where it lies now (its stored_len: its record's, or its share of its group's)
    uint32_t raw_len;
    uint8_t codec;
    std::string order;  // sort key: extension, directory, name, offset in the file
  };
  void worker();
  // A window of settled backlog, in group order, cut into groups.
  Result<std::vector<std::vector<Claim>>> claim(int settle_secs);
  void release(const std::vector<std::vector<Claim>>& groups);
  Status process(const std::vector<Claim>& group);
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
