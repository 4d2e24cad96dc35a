// Decoded solid groups, shared by every reader of a store. Each group in use has one progressive
// decoder (codec::FrameReader) that is resumed where it stopped: reading a chunk decodes its
// group only up to that chunk's end, and a sequential reader decodes each group once. Memory
// (frames, decoded bytes and the decoders' tables) is bounded by `budget_bytes` for decoded
// groups (least recently used dropped first) plus at most budget / 112 MiB live decoders (90 to
// 115 MiB each for a 4 MiB group, codec frame version 6): about twice the budget in all.
//
// A group once touched is decoded to its end by background threads (`finish_threads`), a step at
// a time, so that a restore that reads its members in another order than the stream's finds them
// decoded, the decoder's tables are freed early (a decoded group holds only its bytes), and the
// next groups decode in parallel on other cores while a reader consumes one.
//
// Nothing here trusts the bytes it returns: ChunkStore verifies each chunk against its XXH3-128.
// A damaged frame therefore costs the chunks at and after the damage, never the ones before it.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <set>
#include <thread>
#include <vector>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "codec/frame.h"
#include "index/group_record.h"
#include "index/pack_store.h"

namespace dzfs {

class GroupReader {
 public:
  // Live decoders: as many as 112 MiB each fit in the budget (at least 2); finishing threads: one
  // per CPU, at most that many.
  GroupReader(PackStore& packs, size_t budget_bytes);
  ~GroupReader() { stop(); }
  void stop();  // ends the background decoding (before what the locator and models need goes)
  // Where the models for decoding come from (the store's ModelRegistry).
  void set_models(std::function<codec::ModelSet()> models) { models_ = std::move(models); }
  // Where a group's record lies (the index's groups row), for read-ahead: a group a reader
  // first reads (whoever opened it) has the next group by id (made just after it, so usually what a restore reads next)
  // decoded in the background too. Called with no lock of this class held.
  void set_locator(std::function<Result<PackLocation>(int64_t gid)> locate) { locate_ = std::move(locate); }

  // The raw bytes of the member at stream offset `off` (length `len`, hash `want`) of group `gid`,
  // whose record lies at `loc`.
  Result<std::string> read(int64_t gid, const PackLocation& loc, uint64_t off, uint32_t len, const ChunkHash& want);
  void forget(int64_t gid);
  size_t memory() const;
  uint64_t read_ahead_opens() const { return ahead_opens_.load(); }  // groups read-ahead opened

 private:
  std::atomic<uint64_t> ahead_opens_{0};
  struct Entry {
    std::mutex mu;  // one decoder, one thread at a time
    std::unique_ptr<codec::FrameReader> frame;
    std::vector<GroupMember> members;
    std::vector<uint64_t> offsets;
    std::atomic<size_t> mem{0};  // what it holds (frame, decoded bytes, decoder tables)
    std::atomic<bool> decoding{false};  // a decoder with its tables is live (not yet at the end)
    bool read = false;  // a reader has read from it (under mu): its successor is then read ahead
  };
  Status open_entry(Entry& e, const PackLocation& loc);
  std::shared_ptr<Entry> entry_for(int64_t gid);
  // Drops least recently used decoded groups while over budget, and the least recently used
  // decoders beyond max_decoders_ (their work is lost: only a reader hopping between more
  // groups than that pays it). A decoder below that count is never dropped half-way, so a
  // restore never decodes a group twice.
  void account(int64_t gid);
  void finish_later(int64_t gid, bool open);  // open: read ahead (the group is not open yet)
  bool open_ahead(int64_t gid);
  int live_decoders_locked() const;  // caller holds mu_
  void finisher();

  std::mutex fmu_;  // the finish queue; taken last (a reader holds its entry's mutex then)
  std::condition_variable fcv_;
  std::deque<std::pair<int64_t, bool>> fqueue_;  // (group, open it first)
  std::set<int64_t> fqueued_;
  bool fstop_ = false;
  std::vector<std::thread> fthreads_;

  PackStore& packs_;
  const size_t budget_;
  const int finish_threads_;
  const int max_decoders_;
  std::function<codec::ModelSet()> models_;
  std::function<Result<PackLocation>(int64_t)> locate_;
  mutable std::mutex mu_;
  std::list<int64_t> lru_;  // front = most recent
  struct Slot {
    std::shared_ptr<Entry> e;
    std::list<int64_t>::iterator at;
  };
  std::unordered_map<int64_t, Slot> map_;
};

}  // namespace dzfs
