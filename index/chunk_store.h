// Chunks by content: put() fingerprints (XXH3-128), dedups against the index, compresses new
// chunks (zstd, or raw when that does not help) into a pack, and records them; get() reads,
// decodes and verifies a chunk's raw bytes against its fingerprint (mismatch: EIO and a log line).
//
// Pins: a chunk that a not-yet-applied extent refers to is pinned in memory so gc keeps it even
// while its committed refcount is 0. A pin is taken under IndexDb::mu together with the lookup
// that found the chunk, and gc tests pins under IndexDb::mu before deleting, so no chunk is
// deleted between being found and being pinned. pins_mu_ nests inside IndexDb::mu.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

#include "index/chunk_cache.h"
#include "index/index_db.h"
#include "index/pack_store.h"
#include "index/status.h"
#include "index/store_config.h"

namespace dzfs {

// kCodecGroup: the chunk is a member of a solid group record (group_record.h).
enum ChunkCodec : uint8_t { kCodecRaw = 0, kCodecZstd = 1, kCodecNeural = 2, kCodecGroup = 3 };
const char* codec_name(uint8_t codec);

struct ChunkHash {
  uint8_t b[16];
};
ChunkHash hash_chunk(const void* data, size_t n);

class GroupReader;

// Where a chunk's bytes are now: its own record (grp = 0), or member of group `grp` whose record
// lies at `loc` (chunks.pack/off are 0 for a grouped chunk: the groups row has the place).
struct ChunkPlace {
  PackLocation loc;
  int64_t grp = 0;
  bool operator==(const ChunkPlace& o) const {
    return loc.pack == o.loc.pack && loc.off == o.loc.off && grp == o.grp;
  }
};

// One chunk of a new group: its id, where it was when it was read, its length.
struct GroupedChunk {
  int64_t id;
  ChunkPlace was;
  uint32_t raw_len;
};

class ChunkStore {
 public:
  ChunkStore(IndexDb& index, PackStore& packs, const StoreConfig& cfg, size_t cache_bytes);

  // Stores (or finds) the chunk and pins it; the caller unpins once an extent row holds it.
  Result<int64_t> put(const uint8_t* data, size_t n);
  Result<ChunkBytes> get(int64_t id);
  void unpin(int64_t id);
  bool pinned(int64_t id) const;
  void forget_cached(int64_t id) { cache_.erase(id); }
  bool cached(int64_t id) { return cache_.get(id) != nullptr; }
  // Stores a group record (payload from encode_group_payload) and makes each chunk that still
  // lies where it was read a member of it, in one index update under IndexDb::mu. Returns how
  // many chunks moved into the group (0: the record is garbage for gc, and no group row stays).
  // The caller has verified that the frame decodes to the members' exact bytes.
  Result<size_t> store_group(const std::vector<GroupedChunk>& members, uint64_t raw_len, const ChunkHash& table_hash,
                             std::string payload, const std::string& model_id);
  // Moves the records of fast-tier chunks that stay as they are (recompression did not pay) to
  // the settled stream, so that their fast packs hold nothing live once drained, and marks them
  // tried. A chunk that no longer lies where it was read is left alone. Returns how many moved.
  Result<size_t> settle(const std::vector<GroupedChunk>& chunks);
  Status locate(int64_t id, ChunkPlace& place);
  void set_group_reader(GroupReader* g) { groups_ = g; }
  // Records appended to a pack whose index row is not inserted yet. gc reads it under
  // IndexDb::mu and removes no pack while it is non-zero: such a record looks like garbage.
  int appends_in_flight() const { return in_flight_.load(); }

  // Decoder for codecs this layer does not implement itself (the neural tier).
  using ExternalDecoder = std::function<Result<std::string>(const ChunkRecord&)>;
  void set_external_decoder(ExternalDecoder d) { external_ = std::move(d); }

 private:
  Result<std::string> decode(const ChunkRecord& rec);
  Result<ChunkBytes> get_once(int64_t id, ChunkPlace& place);
  // Runs `append` (a pack append), then `update` with its location under IndexDb::mu; the
  // record counts as in flight (appends_in_flight) until the update has run.
  Status append_then_index(const std::function<Result<PackLocation>()>& append,
                           const std::function<Status(const PackLocation&)>& update);
  void pin(int64_t id);

  IndexDb& index_;
  PackStore& packs_;
  StoreConfig cfg_;
  ChunkCache cache_;
  mutable std::mutex pins_mu_;
  std::unordered_map<int64_t, int> pins_;
  ExternalDecoder external_;
  GroupReader* groups_ = nullptr;
  std::atomic<int> in_flight_{0};
};

}  // namespace dzfs
