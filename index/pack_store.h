// Append-only pack files holding chunk records (format in docs/ARCHITECTURE.md, "Pack format v1").
//
// Two streams of packs, so that superseded records do not sit beside live ones: kFast holds the
// zstd records that wait for recompression (each leaves it when it is grouped or settled as it
// is, so a drained volume's fast packs hold nothing live and gc removes them without copying);
// kSettled holds records that stay (groups, incompressible chunks, chunks kept as they are, and
// records gc moved). Each stream has its own current pack.
//
// Invariants:
//  - A pack is only ever appended to while it is the current pack of its stream in the mount
//    session that created it; once sealed (by rotation, seal() or close) it is immutable until
//    gc deletes it whole.
//  - sync() makes every record appended so far durable; the index commits a row pointing at a
//    record only after sync() (Store::commit enforces the order).
//  - Every read checks the record header (magic, header checksum, lengths, file bounds) before
//    trusting any field; the payload is verified against its checksum too.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "index/status.h"

namespace dzfs {

constexpr uint32_t kPackHeaderSize = 16;
constexpr uint32_t kRecordHeaderSize = 48;
constexpr uint64_t kPackTargetSize = 64ull << 20;

enum class PackStream : uint8_t { kFast = 0, kSettled = 1 };
constexpr int kPackStreams = 2;

struct PackLocation {
  uint32_t pack = 0;
  uint64_t off = 0;       // offset of the record header in the pack file
  uint32_t stored_len = 0;  // payload bytes
};

struct ChunkRecord {
  uint8_t codec = 0;
  uint32_t raw_len = 0;
  uint8_t hash[16] = {};  // XXH3-128 of the raw bytes, big-endian high64 then low64
  std::string payload;
};

// An open file descriptor shared by readers, so gc can drop a pack while a read is in flight.
struct PackFd {
  int fd = -1;
  ~PackFd();
};

class PackStore {
 public:
  PackStore(std::string dir, bool readonly);
  ~PackStore();
  Status open();

  Result<PackLocation> append(const ChunkRecord& rec, PackStream stream);
  // Appends an already-encoded record (header + payload) as read by read_raw; for gc compaction.
  Result<PackLocation> append_raw(const std::string& record_bytes, PackStream stream);
  // check_payload=false skips the payload checksum: a group record's chunks are each verified
  // by their own hash, so damage in one part of it must not make the whole group unreadable.
  Result<ChunkRecord> read(const PackLocation& loc, bool check_payload = true);
  Result<std::string> read_raw(const PackLocation& loc, bool check_payload = true);  // header + payload, header verified
  Status sync();
  Status remove(uint32_t pack);

  std::vector<std::pair<uint32_t, uint64_t>> list() const;  // (pack id, file size)
  // The packs that appends may still go to (0: none in that stream this session).
  std::vector<uint32_t> current_packs() const;
  // Ends appends to `pack` if it is a current pack (the stream's next append starts a new one),
  // so that gc may remove a current pack that is mostly garbage. Returns whether it was current.
  bool seal(uint32_t pack);
  std::string path_of(uint32_t pack) const;
  // Free-space floor: appends fail with ENOSPC below it so the index can still commit.
  void set_reserve_bytes(uint64_t b) { reserve_ = b; }

 private:
  Result<std::shared_ptr<PackFd>> fd_for(uint32_t pack);
  struct Current {
    uint32_t id = 0;  // 0: none yet
    int fd = -1;
    uint64_t size = 0;
  };
  Current* current_locked(uint32_t pack);  // the stream whose current pack it is, or null
  Status start_new_pack(Current& c);
  void seal_locked(Current& c);
  Status check_space(int fd, size_t need);
  Result<PackLocation> write_record(const std::string& header, const std::string& payload,
                                    uint32_t stored_len, PackStream stream);

  std::string dir_;
  bool readonly_;
  mutable std::mutex mu_;
  std::map<uint32_t, std::shared_ptr<PackFd>> fds_;
  uint32_t next_id_ = 1;
  Current cur_[kPackStreams];
  std::vector<int> unsynced_;  // fds of sealed packs written since the last sync (closed by it)
  bool dir_dirty_ = false;
  uint64_t reserve_ = 0;
  uint64_t bytes_since_space_check_ = 0;
  bool space_low_ = true;  // check on the first append
  std::string record_buf_;  // header + payload of the record being written (under mu_)
  std::mutex sync_mu_;
};

std::string encode_record_header(const ChunkRecord& rec, uint32_t stored_len);

}  // namespace dzfs
