// GroupReader: see group_reader.h.
#include "index/group_reader.h"

#include <algorithm>
#include <cstring>

namespace dzfs {

static int decoders_for(size_t budget) { return int(std::max<size_t>(2, budget / (112u << 20))); }

GroupReader::GroupReader(PackStore& packs, size_t budget_bytes)
    : packs_(packs),
      budget_(budget_bytes),
      finish_threads_(std::min(decoders_for(budget_bytes), int(std::max(1u, std::thread::hardware_concurrency())))),
      max_decoders_(decoders_for(budget_bytes)) {}

std::shared_ptr<GroupReader::Entry> GroupReader::entry_for(int64_t gid) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = map_.find(gid);
  if (it != map_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.at);
    return it->second.e;
  }
  lru_.push_front(gid);
  auto e = std::make_shared<Entry>();
  map_[gid] = {e, lru_.begin()};
  return e;
}

Status GroupReader::open_entry(Entry& e, const PackLocation& loc) {
  auto rec = packs_.read(loc, /*check_payload=*/false);  // damage is confined by per-chunk hashes
  if (!rec.ok()) return rec.status();
  if (rec->codec != kCodecGroup) return Status::Error(EIO, "pack record is not a group record");
  auto table = parse_group_payload(rec->payload);
  if (!table.ok()) return table.status();
  const ChunkHash h = group_table_hash(table->table);
  if (memcmp(h.b, rec->hash, 16) != 0 || table->raw_len != rec->raw_len)
    return Status::Error(EIO, "group record header does not match its table");
  if (!models_) return Status::Error(EIO, "no decoder for group records");
  std::vector<uint8_t> frame(table->frame.begin(), table->frame.end());
  auto fr = codec::FrameReader::open(std::move(frame), models_());
  if (!fr.ok()) return Status::Error(EIO, fr.status().message());
  if ((*fr)->header().raw_len != table->raw_len) return Status::Error(EIO, "group frame length disagrees with its table");
  e.members = std::move(table->members);
  e.offsets = std::move(table->offsets);
  e.frame = std::move(*fr);
  return Status::Ok();
}

Result<std::string> GroupReader::read(int64_t gid, const PackLocation& loc, uint64_t off, uint32_t len,
                                      const ChunkHash& want) {
  std::shared_ptr<Entry> e = entry_for(gid);
  std::string out;
  bool first_read = false, more = false;
  {
    std::lock_guard<std::mutex> g(e->mu);
    // The next group is read ahead when a reader first reads this one, whoever opened it (a
    // group opened by read-ahead passes the read-ahead on, so a sequential restore keeps one
    // group decoding ahead of the reader).
    first_read = !e->read;
    e->read = true;
    if (!e->frame) {
      Status s = open_entry(*e, loc);
      if (!s.ok()) {
        forget(gid);
        return s;
      }
    }
    auto at = std::lower_bound(e->offsets.begin(), e->offsets.end(), off);
    const size_t i = size_t(at - e->offsets.begin());
    if (at == e->offsets.end() || *at != off || e->members[i].raw_len != len ||
        memcmp(e->members[i].hash.b, want.b, 16) != 0)
      return Status::Error(EIO, "group " + std::to_string(gid) + " does not hold this chunk at offset " +
                                    std::to_string(off));
    codec::Status s = e->frame->read_to(uint32_t(off + len));
    // A failure past this chunk's end (the whole-stream checksum) does not make it unreadable:
    // the caller checks the chunk's own hash.
    if (!s.ok() && e->frame->decoded() < off + len) return Status::Error(EIO, s.message());
    if (e->frame->raw().size() < off + len) return Status::Error(EIO, "group stream ended early");
    out.assign(reinterpret_cast<const char*>(e->frame->raw().data() + off), len);
    e->mem = e->frame->memory();
    e->decoding = !e->frame->done() && s.ok();
    more = e->decoding;
  }
  if (more) finish_later(gid, false);
  if (first_read) finish_later(gid + 1, true);
  account(gid);
  return out;
}

void GroupReader::stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> g(fmu_);
    fstop_ = true;
    threads.swap(fthreads_);
  }
  fcv_.notify_all();
  for (auto& t : threads) t.join();
}

void GroupReader::finish_later(int64_t gid, bool open) {
  if (finish_threads_ <= 0 || (open && !locate_)) return;
  {
    std::lock_guard<std::mutex> g(fmu_);
    if (fstop_ || fqueued_.count(gid)) return;
    if (fthreads_.empty())  // started at the first use: tools that never read a group start none
      for (int i = 0; i < finish_threads_; ++i) fthreads_.emplace_back([this] { finisher(); });
    fqueue_.emplace_back(gid, open);
    fqueued_.insert(gid);
  }
  fcv_.notify_one();
}

// Decodes queued groups to their end, 1 MiB at a time so that a reader waiting for an early
// member of the same group gets in between steps. A group dropped from the map meanwhile (over
// budget, or forgotten by gc) is not decoded further.
void GroupReader::finisher() {
  constexpr uint32_t kStep = 1u << 20;
  std::unique_lock<std::mutex> lk(fmu_);
  for (;;) {
    fcv_.wait(lk, [this] { return fstop_ || !fqueue_.empty(); });
    if (fstop_) return;
    const auto [gid, open] = fqueue_.front();
    fqueue_.pop_front();
    lk.unlock();
    for (bool more = !open || open_ahead(gid); more;) {
      std::shared_ptr<Entry> e;
      {
        std::lock_guard<std::mutex> g(mu_);
        auto it = map_.find(gid);
        if (it != map_.end()) e = it->second.e;
      }
      if (!e) break;
      {
        std::lock_guard<std::mutex> g(e->mu);
        more = e->frame && !e->frame->done() &&
               e->frame->read_to(e->frame->decoded() + std::min(kStep, e->frame->header().raw_len - e->frame->decoded())).ok();
        if (e->frame) {
          e->mem = e->frame->memory();
          e->decoding = more && !e->frame->done();
        }
      }
      account(gid);
      {
        std::lock_guard<std::mutex> g(fmu_);
        if (fstop_) return;
      }
    }
    lk.lock();
    fqueued_.erase(gid);
  }
}

// Opens a group nobody reads yet, if a decoder is free for it (read-ahead never pushes out a
// reader's decoder) and the group exists.
bool GroupReader::open_ahead(int64_t gid) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (map_.count(gid)) return true;  // a reader opened it meanwhile
    if (live_decoders_locked() + 1 >= max_decoders_) return false;
  }
  auto loc = locate_(gid);
  if (!loc.ok()) return false;
  std::shared_ptr<Entry> e = entry_for(gid);
  std::lock_guard<std::mutex> g(e->mu);
  if (e->frame) return true;
  if (!open_entry(*e, *loc).ok()) {
    forget(gid);  // a reader meets (and reports) the damage itself
    return false;
  }
  e->mem = e->frame->memory();
  e->decoding = true;
  ++ahead_opens_;
  return true;
}

void GroupReader::account(int64_t gid) {
  std::vector<std::shared_ptr<Entry>> dropped;  // freed outside mu_
  std::lock_guard<std::mutex> g(mu_);
  int decoders = live_decoders_locked();
  size_t decoded_bytes = 0;
  for (auto& [id, slot] : map_)
    if (!slot.e->decoding) decoded_bytes += slot.e->mem;
  // From the least recently used end; the group just read stays whatever it costs.
  for (auto at = lru_.end(); at != lru_.begin() && (decoded_bytes > budget_ || decoders > max_decoders_);) {
    --at;
    if (*at == gid) continue;
    auto it = map_.find(*at);
    const bool decoding = it->second.e->decoding;
    if (decoding ? decoders <= max_decoders_ : decoded_bytes <= budget_) continue;
    if (decoding) --decoders;
    else decoded_bytes -= std::min<size_t>(decoded_bytes, it->second.e->mem);
    dropped.push_back(std::move(it->second.e));
    map_.erase(it);
    at = lru_.erase(at);
  }
}

int GroupReader::live_decoders_locked() const {
  int n = 0;
  for (auto& [id, slot] : map_) n += slot.e->decoding ? 1 : 0;
  return n;
}

void GroupReader::forget(int64_t gid) {
  std::shared_ptr<Entry> dropped;
  std::lock_guard<std::mutex> g(mu_);
  auto it = map_.find(gid);
  if (it == map_.end()) return;
  dropped = std::move(it->second.e);
  lru_.erase(it->second.at);
  map_.erase(it);
}

size_t GroupReader::memory() const {
  std::lock_guard<std::mutex> g(mu_);
  size_t n = 0;
  for (auto& [id, slot] : map_) n += slot.e->mem;
  return n;
}

}  // namespace dzfs
