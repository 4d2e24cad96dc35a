// Garbage collection: chunks nobody references are deleted from the index, and groups no chunk
// names; groups that are mostly dead are queued for regrouping; packs with no live
// record are removed, and packs that are mostly garbage are compacted (live records copied to
// the current pack, rows repointed, old pack removed after the commit that stops naming it).
// Crash-safe at every step: a pack is removed only after a commit in which no row names it.
#pragma once
#include <cstdint>
#include <functional>
#include <set>

#include "index/store.h"

namespace dzfs {

struct GcStats {
  uint64_t chunks_deleted = 0;
  uint64_t groups_deleted = 0;    // groups no chunk names any more
  uint64_t chunks_regrouped = 0;  // live chunks of mostly dead groups, queued for new groups
  uint64_t packs_removed = 0;
  uint64_t packs_compacted = 0;
  uint64_t records_moved = 0;
  uint64_t pack_bytes_before = 0;
  uint64_t pack_bytes_after = 0;
};

struct GcOptions {
  double compact_below_live = 0.75;  // compact a pack whose live bytes are below this share
  double regroup_below_live = 0.5;   // regroup a group whose live raw bytes are below this share
  // Background passes in a mounted volume: a chunk is deleted only if it was already garbage at
  // the previous pass (the set is kept here between passes), so a reader that looked up a chunk
  // just before its last reference went away still finds it.
  std::set<int64_t>* previous_garbage = nullptr;
  std::function<void(uint64_t done, uint64_t total)> progress;
};

Result<GcStats> collect_garbage(Store& store, const GcOptions& opts = {});

// Stored bytes of the chunks no file references (what the next passes can reclaim; cheap: the
// chunks_garbage partial index holds just those rows).
Result<uint64_t> garbage_bytes(Store& store);

}  // namespace dzfs
