// A dzfs volume on disk (STORE/): config, index, packs, models; opened for a mount or a tool.
//
// Durability invariant, kept by commit(): pack data is fsynced before the index transaction
// that points at it commits. Commits are batched: the index always has a write transaction open.
#pragma once
#include <memory>
#include <mutex>
#include <string>

#include "index/chunk_store.h"
#include "index/group_reader.h"
#include "index/index_db.h"
#include "index/pack_store.h"
#include "index/store_config.h"

namespace dzfs {

class ModelRegistry;

struct StoreOptions {
  bool readonly = false;   // tools that only read (stats) and may run beside a mount
  size_t cache_bytes = 256u << 20;
  size_t group_cache_bytes = 448u << 20;  // decoders and decoded bytes of solid groups
  // A clean close packs the index (index_at_rest.h); fsck without --repair changes nothing.
  bool pack_index = true;
};

class Store {
 public:
  static Status mkfs(const std::string& dir, StoreConfig cfg);
  static Result<std::unique_ptr<Store>> open(const std::string& dir, const StoreOptions& opts);
  ~Store();

  Status commit();  // durable point: packs synced, index committed, next batch begun
  // Commits, then rebuilds index.db with full pages (SQLite VACUUM: crash-safe, but it rewrites
  // the whole file, so only offline maintenance runs it). Returns the index bytes before, after.
  Result<std::pair<uint64_t, uint64_t>> vacuum();
  // The pid of the process holding the store's lock, or 0 if nobody holds it.
  static int lock_holder(const std::string& dir);
  void note_pid();  // records this process as the lock holder (after daemonizing)

  const std::string dir;
  const bool readonly;
  StoreConfig cfg;
  IndexDb index;
  PackStore packs;
  GroupReader groups;  // before chunks, which reads grouped chunks through it
  ChunkStore chunks;
  std::unique_ptr<ModelRegistry> models;  // decodes neural chunks; see model_registry.h

 private:
  Store(std::string dir, const StoreConfig& cfg, const StoreOptions& opts);
  int lock_fd_ = -1;
  bool clean_close_ = false;  // the final commit succeeded: the index may be packed (index_at_rest.h)
  bool pack_index_ = false;  // set when open completed
  std::mutex commit_mu_;
};

}  // namespace dzfs
