// FileState: see file_state.h for the re-chunking rule.
#include "fs/file_state.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

namespace dzfs {

static constexpr uint64_t kNoEnd = uint64_t(INT64_MAX);

Status load_extents(SqliteDb& db, uint64_t ino, uint64_t off, uint64_t len, uint64_t max_extent, ExtentMap& out) {
  uint64_t hi = len >= kNoEnd - off ? kNoEnd : off + len;
  uint64_t lo = off > max_extent ? off - max_extent : 0;
  Stmt s = db.prepare(
      "SELECT off, len, chunk, chunk_off FROM extents WHERE ino = ? AND off >= ? AND off < ? ORDER BY off");
  s.bind(1, ino).bind(2, lo).bind(3, hi);
  while (s.step()) {
    // Index rows are untrusted: a damaged one (negative, or past the end of any file or chunk)
    // makes the file unreadable (EIO), never a read outside a chunk's bytes.
    const int64_t o = s.i64(0), l = s.i64(1), co = s.i64(3);
    if (o < 0 || l <= 0 || l > int64_t(kNoEnd) - o || co < 0 || co > int64_t(UINT32_MAX))
      return Status::Error(EIO, "inode " + std::to_string(ino) + ": damaged extent row at offset " + std::to_string(o) +
                                    " (length " + std::to_string(l) + ", chunk offset " + std::to_string(co) +
                                    "); run dzfs fsck");
    if (uint64_t(o + l) > off) out[uint64_t(o)] = Extent{uint64_t(l), s.i64(2), uint32_t(co)};
  }
  return s.done_status();
}

Status read_extents(ChunkStore& chunks, const ExtentMap& extents, uint64_t off, uint64_t len, char* out) {
  memset(out, 0, len);
  uint64_t end = off + len;
  auto it = extents.upper_bound(off);
  if (it != extents.begin()) --it;
  for (; it != extents.end() && it->first < end; ++it) {
    uint64_t e_end = it->first + it->second.len;
    if (e_end <= off) continue;
    auto bytes = chunks.get(it->second.chunk);
    if (!bytes.ok()) return bytes.status();
    if (it->second.chunk_off > (*bytes)->size() || it->second.len > (*bytes)->size() - it->second.chunk_off)
      return Status::Error(EIO, "extent at " + std::to_string(it->first) + " lies outside its chunk " +
                                    std::to_string(it->second.chunk));
    uint64_t from = std::max(off, it->first), to = std::min(end, e_end);
    memcpy(out + (from - off), (*bytes)->data() + it->second.chunk_off + (from - it->first), to - from);
  }
  return Status::Ok();
}

FileState::~FileState() {
  for (int64_t id : pins_) chunks_.unpin(id);
}

Status FileState::load(IndexDb& index) {
  std::lock_guard<std::mutex> g(index.mu);
  Stmt s = index.db->prepare("SELECT size FROM inodes WHERE ino = ?");
  s.bind(1, ino_);
  if (!s.step()) return Status::Error(ENOENT, "inode vanished");
  size_ = uint64_t(s.i64(0));
  s.reset();
  return load_extents(*index.db, ino_, 0, kNoEnd, 0, extents_);
}

Status FileState::compose(uint64_t off, uint64_t len, char* out) {
  DZ_RETURN_IF_ERROR(read_extents(chunks_, extents_, off, len, out));
  uint64_t end = off + len;
  auto it = dirty_.upper_bound(off);
  if (it != dirty_.begin()) --it;
  for (; it != dirty_.end() && it->first < end; ++it) {
    uint64_t r_end = it->first + it->second.size();
    if (r_end <= off) continue;
    uint64_t from = std::max(off, it->first), to = std::min(end, r_end);
    memcpy(out + (from - off), it->second.data() + (from - it->first), to - from);
  }
  return Status::Ok();
}

Status FileState::read(uint64_t off, size_t n, std::string& out) {
  if (off >= size_) { out.clear(); return Status::Ok(); }
  n = size_t(std::min<uint64_t>(n, size_ - off));
  out.resize(n);
  return compose(off, n, out.data());
}

// Removes dirty bytes in [lo, hi), splitting runs that straddle the bounds.
static void erase_dirty(std::map<uint64_t, std::string>& dirty, uint64_t& dirty_bytes, uint64_t lo, uint64_t hi) {
  auto it = dirty.upper_bound(lo);
  if (it != dirty.begin()) --it;
  while (it != dirty.end() && it->first < hi) {
    uint64_t start = it->first, end = start + it->second.size();
    if (end <= lo) { ++it; continue; }
    if (start >= lo && end > hi) {
      // The front of a run goes (a streaming writer's chunks were stored): its buffer moves,
      // capacity and all, to the new key, so the next writes append without a reallocation
      // (a fresh large block is a fresh mmap here, and page faults cost more than the copy).
      auto node = dirty.extract(it);
      node.mapped().erase(0, hi - start);
      node.key() = hi;
      dirty_bytes -= hi - start;
      dirty.insert(std::move(node));
      break;
    }
    std::string run = std::move(it->second);
    it = dirty.erase(it);
    dirty_bytes -= run.size();
    if (start < lo) {
      dirty[start] = run.substr(0, lo - start);
      dirty_bytes += lo - start;
    }
    if (end > hi) {
      dirty[hi] = run.substr(hi - start);
      dirty_bytes += end - hi;
      break;
    }
  }
}

// Run buffers are reused, not reallocated: a fresh large buffer is a fresh mmap (main sets the
// mmap threshold), and its page faults cost more than copying the bytes into it. With the
// writeback cache a file's writes arrive out of order (many in flight, served by several
// threads), each starting a run that a run before it absorbs later; the absorbed buffers are
// kept for new runs, up to half the dirty limit, while the FileState lives. A large write gets
// room for the streaming cycle (a run grows to 4 chunk_max, then its front is cut).
size_t FileState::run_room(size_t n) const { return n + 4 * size_t(chunker_.max_size()); }

std::string FileState::take_spare(size_t n) {
  std::string s;
  if (!spare_.empty()) {
    s = std::move(spare_.back());
    spare_.pop_back();
    spare_bytes_ -= s.capacity();
    s.clear();
  } else if (n >= (64u << 10)) {
    s.reserve(run_room(n));
  }
  return s;
}

void FileState::keep_spare(std::string&& s) {
  if (s.capacity() < (64u << 10) || spare_bytes_ + s.capacity() > dirty_limit_ / 2) return;
  spare_bytes_ += s.capacity();
  spare_.push_back(std::move(s));
}

Status FileState::write(uint64_t off, const char* data, size_t n) {
  if (n == 0) return Status::Ok();
  uint64_t end = off + n;
  // Find a run that starts at or before `off` and reaches it: extend it in place (the common,
  // sequential case costs an append, not a copy).
  auto it = dirty_.upper_bound(off);
  std::map<uint64_t, std::string>::iterator run;
  if (it != dirty_.begin() && std::prev(it)->first + std::prev(it)->second.size() >= off) {
    run = std::prev(it);
  } else {
    run = dirty_.emplace(off, take_spare(n)).first;
  }
  std::string& r = run->second;
  uint64_t old_len = r.size();
  uint64_t rel = off - run->first;
  if (rel == r.size()) {
    // Room for the streaming cycle only for a large writer: a small file's run stays small.
    if (r.capacity() < r.size() + n && r.size() + n >= (64u << 10)) r.reserve(run_room(r.size() + n));
    r.append(data, n);  // the streaming case: no zero fill before the copy
  } else {
    if (rel + n > r.size()) r.resize(rel + n);
    memcpy(r.data() + rel, data, n);
  }
  dirty_bytes_ += r.size() - old_len;
  // Absorb later runs that the new bytes now reach.
  for (auto nx = std::next(run); nx != dirty_.end() && nx->first <= end;) {
    uint64_t nx_end = nx->first + nx->second.size();
    if (nx_end > run->first + r.size()) {
      uint64_t keep_from = run->first + r.size() - nx->first;
      r.append(nx->second, keep_from, std::string::npos);
      dirty_bytes_ += nx->second.size() - keep_from;
    }
    dirty_bytes_ -= nx->second.size();
    keep_spare(std::move(nx->second));
    nx = dirty_.erase(nx);
  }
  size_ = std::max(size_, end);
  // A streaming run is cut as it grows; too many scattered runs are materialized whole.
  if (r.size() >= 4 * uint64_t(chunker_.max_size())) DZ_RETURN_IF_ERROR(materialize(run->first, false));
  if (dirty_bytes_ > dirty_limit_) DZ_RETURN_IF_ERROR(flush_dirty());
  return Status::Ok();
}

void FileState::cut_extents(uint64_t lo, uint64_t hi) {
  auto it = extents_.lower_bound(lo);
  uint64_t changed = lo;
  if (it != extents_.begin()) {
    auto p = std::prev(it);
    uint64_t p_end = p->first + p->second.len;
    if (p_end > lo) {
      if (p_end > hi) {
        Extent tail = p->second;
        tail.chunk_off += uint32_t(hi - p->first);
        tail.len = p_end - hi;
        extents_[hi] = tail;
      }
      p->second.len = lo - p->first;
      changed = p->first;
    }
  }
  it = extents_.lower_bound(lo);
  while (it != extents_.end() && it->first < hi) {
    uint64_t e_end = it->first + it->second.len;
    if (e_end > hi) {
      Extent tail = it->second;
      tail.chunk_off += uint32_t(hi - it->first);
      tail.len = e_end - hi;
      extents_.erase(it);
      extents_[hi] = tail;
      break;
    }
    it = extents_.erase(it);
  }
  mark_changed(changed);
}

// True if all n bytes are 0: the first byte, then each byte equals the one before (memcmp runs
// at memory speed; a byte loop ran at a quarter of the chunker's).
static bool all_zero(const uint8_t* p, size_t n) { return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0); }

Status FileState::materialize(uint64_t a, bool final) {
  auto run = dirty_.find(a);
  if (run == dirty_.end()) return Status::Ok();
  uint64_t b = a + run->second.size();
  // Widen [a, b) to extent boundaries (see the rule in file_state.h).
  uint64_t a2 = a, b2 = b;
  bool aligned = a == 0;  // does the region start where a content-defined cut lies?
  auto it = extents_.upper_bound(a);
  if (it != extents_.begin()) {
    auto p = std::prev(it);
    uint64_t p_end = p->first + p->second.len;
    if (p_end > a || (p_end == a && p->second.len < chunker_.min_size())) a2 = p->first;
    aligned = aligned || p_end >= a;  // a2 is then an extent's start or end: a cut point
  }
  // A streaming cut from an arbitrary offset would make chunk boundaries depend on the order in
  // which the kernel delivered pages (and so defeat dedup): such a run waits until the bytes
  // before it arrive and join it, or until the file is flushed.
  if (!final && !aligned) return Status::Ok();
  it = extents_.upper_bound(b - 1);
  if (it != extents_.begin()) {
    auto p = std::prev(it);
    b2 = std::max(b2, p->first + p->second.len);
  }
  b2 = std::min(b2, std::max(size_, b));
  bool streaming = !final && b2 == b;

  // A region that is exactly the dirty run (a streaming writer's, or a new file's) is cut from
  // the run's own bytes; anything else is composed from extents and dirty bytes first.
  std::string buf;
  const char* region = run->second.data();
  if (a2 != a || b2 != b) {
    buf.resize(b2 - a2);
    DZ_RETURN_IF_ERROR(compose(a2, b2 - a2, buf.data()));
    region = buf.data();
  }
  const uint8_t* p = reinterpret_cast<const uint8_t*>(region);
  size_t pos = 0, len = b2 - a2;
  std::vector<std::pair<uint64_t, Extent>> made;
  Status err;
  while (pos < len) {
    size_t c = chunker_.cut(p + pos, len - pos);
    if (streaming && pos + c == len && c < chunker_.max_size()) break;  // incomplete: wait for more
    bool zero = all_zero(p + pos, c);
    if (!zero) {
      auto id = chunks_.put(p + pos, c);
      if (!id.ok()) { err = id.status(); break; }
      pins_.push_back(*id);
      made.push_back({a2 + pos, Extent{c, *id, 0}});
    }
    pos += c;
  }
  if (pos == 0) return err;
  // Whatever was stored replaces [a2, a2 + pos) atomically in memory; on error the rest stays dirty.
  cut_extents(a2, a2 + pos);
  for (auto& [o, e] : made) extents_[o] = e;
  erase_dirty(dirty_, dirty_bytes_, a2, a2 + pos);
  mark_changed(a2);
  return err;
}

Status FileState::flush_dirty() {
  while (!dirty_.empty()) DZ_RETURN_IF_ERROR(materialize(dirty_.begin()->first, true));
  return Status::Ok();
}

Status FileState::truncate(uint64_t size) {
  if (size < size_) {
    cut_extents(size, kNoEnd);
    erase_dirty(dirty_, dirty_bytes_, size, kNoEnd);
  }
  size_ = size;
  size_changed_ = true;
  return Status::Ok();
}

Status FileState::apply(IndexDb& index) {
  if (!dirty_.empty()) return Status::Error(EIO, "internal: apply with dirty bytes");
  if (changed_from_ == UINT64_MAX && !size_changed_ && !touch_ns_) return Status::Ok();
  std::lock_guard<std::mutex> g(index.mu);
  SqliteDb& db = *index.db;
  DZ_RETURN_IF_ERROR(db.run_cached("SAVEPOINT apply_file"));
  auto body = [&]() -> Status {
    if (changed_from_ != UINT64_MAX) {
      std::unordered_map<int64_t, int64_t> delta;
      {
        Stmt s = db.prepare("SELECT chunk FROM extents WHERE ino = ? AND off >= ?");
        s.bind(1, ino_).bind(2, changed_from_);
        while (s.step()) --delta[s.i64(0)];
        DZ_RETURN_IF_ERROR(s.done_status());
      }
      Stmt d = db.prepare("DELETE FROM extents WHERE ino = ? AND off >= ?");
      d.bind(1, ino_).bind(2, changed_from_);
      DZ_RETURN_IF_ERROR(d.run());
      for (auto it = extents_.lower_bound(changed_from_); it != extents_.end(); ++it) {
        Stmt ins = db.prepare("INSERT INTO extents(ino, off, len, chunk, chunk_off) VALUES (?, ?, ?, ?, ?)");
        ins.bind(1, ino_).bind(2, it->first).bind(3, it->second.len).bind(4, it->second.chunk).bind(5, it->second.chunk_off);
        DZ_RETURN_IF_ERROR(ins.run());
        ++delta[it->second.chunk];
      }
      for (auto& [id, dv] : delta) {
        if (!dv) continue;
        Stmt u = db.prepare("UPDATE chunks SET refcount = refcount + ? WHERE id = ?");
        u.bind(1, dv).bind(2, id);
        DZ_RETURN_IF_ERROR(u.run());
      }
    }
    if (touch_ns_) {  // a copy's times, in the same savepoint as its extents
      Stmt t = db.prepare("UPDATE inodes SET mtime_ns = ?1, ctime_ns = ?1 WHERE ino = ?2");
      t.bind(1, touch_ns_).bind(2, ino_);
      DZ_RETURN_IF_ERROR(t.run());
    }
    Stmt u = db.prepare(
        "UPDATE inodes SET size = ?1, data_bytes = (SELECT COALESCE(SUM(len), 0) FROM extents WHERE ino = ?2) "
        "WHERE ino = ?2");
    u.bind(1, size_).bind(2, ino_);
    return u.run();
  };
  Status s = body();
  if (!s.ok()) {
    db.run_cached("ROLLBACK TO apply_file");
    db.run_cached("RELEASE apply_file");
    return s;
  }
  DZ_RETURN_IF_ERROR(db.run_cached("RELEASE apply_file"));
  for (int64_t id : pins_) chunks_.unpin(id);
  pins_.clear();
  changed_from_ = UINT64_MAX;
  size_changed_ = false;
  touch_ns_ = 0;
  return Status::Ok();
}

// ---- copies (copy_file_range) -----------------------------------------------------------------

std::vector<std::pair<uint64_t, Extent>> FileState::extents_moved(uint64_t off, uint64_t n, uint64_t to) const {
  std::vector<std::pair<uint64_t, Extent>> out;
  const uint64_t end = off + n;
  auto it = extents_.upper_bound(off);
  if (it != extents_.begin()) --it;
  for (; it != extents_.end() && it->first < end; ++it) {
    const uint64_t e_end = it->first + it->second.len;
    if (e_end <= off) continue;
    const uint64_t from = std::max(off, it->first), till = std::min(end, e_end);
    Extent e = it->second;
    e.chunk_off += uint32_t(from - it->first);  // the part of the chunk this piece covers
    e.len = till - from;
    out.push_back({to + (from - off), e});
  }
  return out;
}

FileState::RangeBackup FileState::backup_range(uint64_t lo, uint64_t hi) const {
  RangeBackup b{lo, hi, {}, size_, changed_from_, size_changed_, touch_ns_};
  auto it = extents_.upper_bound(lo);
  if (it != extents_.begin()) --it;
  for (; it != extents_.end() && it->first < hi; ++it) {
    const uint64_t e_end = it->first + it->second.len;
    if (e_end <= lo) continue;
    b.lo = std::min(b.lo, it->first);
    b.hi = std::max(b.hi, e_end);
    b.extents.push_back(*it);
  }
  return b;
}

// Only the saved extents (whole) and what a copy put in their place start inside [b.lo, b.hi):
// an extent starting there otherwise would overlap a saved one.
void FileState::restore_range(const RangeBackup& b) {
  extents_.erase(extents_.lower_bound(b.lo), extents_.lower_bound(b.hi));
  for (auto& [o, e] : b.extents) extents_[o] = e;
  size_ = b.size;
  changed_from_ = b.changed_from;
  size_changed_ = b.size_changed;
  touch_ns_ = b.touch_ns;
}

Status FileState::copy_from(FileState& src, uint64_t off_in, uint64_t off_out, uint64_t len, int64_t now_ns,
                            IndexDb& index, uint64_t& copied) {
  copied = 0;
  if (off_in >= src.size_ || len == 0) return Status::Ok();  // at or past the source's end
  const uint64_t n = std::min(len, src.size_ - off_in);
  if (off_out > kNoEnd || n > kNoEnd - off_out)
    return Status::Error(EFBIG, "copy would end past the largest file offset");
  if (&src == this && off_in < off_out + n && off_out < off_in + n)
    return Status::Error(EINVAL, "source and destination ranges of one file overlap");
  // The source's extents must describe all its bytes, and apply() takes no dirty bytes.
  DZ_RETURN_IF_ERROR(src.flush_dirty());
  DZ_RETURN_IF_ERROR(flush_dirty());
  auto pieces = src.extents_moved(off_in, n, off_out);  // before the cut: src may be *this
  RangeBackup undo = backup_range(off_out, off_out + n);
  cut_extents(off_out, off_out + n);
  for (auto& [o, e] : pieces) extents_[o] = e;
  mark_changed(off_out);
  size_ = std::max(size_, off_out + n);
  size_changed_ = true;
  touch_ns_ = now_ns;
  // Applied now, under src's lock: see "Copies" in file_state.h. On failure memory goes back to
  // what the index holds plus the pending changes from before, so nothing names an unprotected chunk.
  Status s = apply(index);
  if (!s.ok()) {
    restore_range(undo);
    return s;
  }
  copied = n;
  return Status::Ok();
}

}  // namespace dzfs
