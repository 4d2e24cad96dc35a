// Garbage collection: see gc.h.
#include "index/gc.h"

#include <map>
#include <vector>

#include "index/log.h"

namespace dzfs {

static Status delete_unreferenced(Store& st, std::set<int64_t>* previous, GcStats& out) {
  std::lock_guard<std::mutex> g(st.index.mu);
  std::vector<int64_t> ids;
  std::set<int64_t> now;
  {
    Stmt s = st.index.db->prepare("SELECT id FROM chunks WHERE refcount = 0");
    while (s.step()) {
      int64_t id = s.i64(0);
      if (st.chunks.pinned(id)) continue;
      now.insert(id);
      if (!previous || previous->count(id)) ids.push_back(id);
    }
    DZ_RETURN_IF_ERROR(s.done_status());
  }
  if (previous) {
    for (int64_t id : ids) now.erase(id);
    *previous = std::move(now);
  }
  for (int64_t id : ids) {
    Stmt d = st.index.db->prepare("DELETE FROM chunks WHERE id = ? AND refcount = 0");
    d.bind(1, id);
    DZ_RETURN_IF_ERROR(d.run());
    st.chunks.forget_cached(id);
  }
  out.chunks_deleted = ids.size();
  // A group lives while a chunk row names it (deleted chunks above, and chunks regrouped since).
  std::vector<int64_t> dead;
  {
    Stmt s = st.index.db->prepare("SELECT id FROM groups g WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.grp = g.id)");
    while (s.step()) dead.push_back(s.i64(0));
    DZ_RETURN_IF_ERROR(s.done_status());
  }
  for (int64_t gid : dead) {
    Stmt d = st.index.db->prepare("DELETE FROM groups WHERE id = ?");
    d.bind(1, gid);
    DZ_RETURN_IF_ERROR(d.run());
    st.groups.forget(gid);
  }
  out.groups_deleted = dead.size();
  return Status::Ok();
}

// Groups whose live share of raw bytes fell below `below`: their live chunks go back to the
// recompression backlog, which codes them into new groups; the old group then loses its last
// member and is deleted by a later pass (its record is garbage from then on).
static Status queue_regroups(Store& st, double below, GcStats& out) {
  std::lock_guard<std::mutex> g(st.index.mu);
  Stmt s = st.index.db->prepare(
      "UPDATE chunks SET tier_done = 0 WHERE tier_done = 1 AND refcount > 0 AND grp IN ("
      "SELECT g.id FROM groups g WHERE (SELECT COALESCE(SUM(c.raw_len), 0) FROM chunks c "
      "WHERE c.grp = g.id AND c.refcount > 0) < ? * g.raw_len)");
  s.bind_double(1, below);
  DZ_RETURN_IF_ERROR(s.run());
  out.chunks_regrouped = uint64_t(st.index.db->changes());
  return Status::Ok();
}

// The packs gc may act on and their live bytes. Taken under IndexDb::mu, listing the packs
// before asking which are current, then finding no record between its append and its row: every
// record of a listed pack that was not current then is counted, and from then on a pack's live
// bytes can only fall (new records and moves go to current packs). Fails with EAGAIN while a
// record is in flight.
struct PackSnapshot {
  std::vector<std::pair<uint32_t, uint64_t>> packs;  // (id, size) of every listed pack
  std::set<uint32_t> current;                        // listed packs still open for appends
  std::map<uint32_t, uint64_t> live;
  uint64_t live_of(uint32_t pack) const { return live.count(pack) ? live.at(pack) : 0; }
};

static Result<PackSnapshot> snapshot_packs(Store& st) {
  std::lock_guard<std::mutex> g(st.index.mu);
  PackSnapshot snap;
  snap.packs = st.packs.list();
  for (uint32_t p : st.packs.current_packs()) snap.current.insert(p);
  if (st.chunks.appends_in_flight() > 0) return Status::Error(EAGAIN, "chunk writes in flight");
  std::map<uint32_t, uint64_t>& live = snap.live;
  // A grouped chunk has pack 0: its group's record is counted once, from the groups row.
  Stmt s = st.index.db->prepare(
      "SELECT pack, SUM(stored_len) + COUNT(*) * ? FROM chunks WHERE grp IS NULL GROUP BY pack "
      "UNION ALL SELECT pack, SUM(stored_len) + COUNT(*) * ? FROM groups GROUP BY pack");
  s.bind(1, kRecordHeaderSize).bind(2, kRecordHeaderSize);
  while (s.step()) live[uint32_t(s.i64(0))] += uint64_t(s.i64(1));
  DZ_RETURN_IF_ERROR(s.done_status());
  return snap;
}

// A current pack that is mostly garbage (a drained fast pack, overwritten data) is sealed, so
// that this pass can reclaim it; a little garbage is not worth starting a new pack for.
static bool worth_sealing(uint64_t live, uint64_t size, double compact_below) {
  if (size <= kPackHeaderSize) return false;
  return live == 0 || (size - std::min(live, size) >= (1u << 20) && double(live) < compact_below * double(size));
}

static Result<PackSnapshot> snapshot_sealing_dead_current_packs(Store& st, double compact_below) {
  auto snap = snapshot_packs(st);
  if (!snap.ok()) return snap;
  bool sealed = false;
  for (auto& [pack, size] : snap->packs)
    if (snap->current.count(pack) && worth_sealing(snap->live_of(pack), size, compact_below))
      sealed |= st.packs.seal(pack);
  return sealed ? snapshot_packs(st) : snap;
}

// Copies every live record of `pack` to the current pack. Returns false (and logs) if a record
// could not be read: the pack then stays, since removing it would lose that chunk for good.
static Result<bool> compact_pack(Store& st, uint32_t pack, GcStats& out) {
  struct Row { int64_t id; uint64_t off; uint32_t len; bool group; bool waits; };
  std::vector<Row> rows;
  {
    std::lock_guard<std::mutex> g(st.index.mu);
    // waits: a zstd record still to be recompressed, which stays in the fast stream.
    Stmt s = st.index.db->prepare(
        "SELECT id, off, stored_len, 0, codec = ? AND tier_done = 0 FROM chunks WHERE pack = ? AND grp IS NULL "
        "UNION ALL SELECT id, off, stored_len, 1, 0 FROM groups WHERE pack = ?");
    s.bind(1, int(kCodecZstd)).bind(2, pack).bind(3, pack);
    while (s.step())
      rows.push_back({s.i64(0), uint64_t(s.i64(1)), uint32_t(s.i64(2)), s.i64(3) != 0, s.i64(4) != 0});
    DZ_RETURN_IF_ERROR(s.done_status());
  }
  bool all_moved = true;
  for (const Row& r : rows) {
    auto bytes = st.packs.read_raw({pack, r.off, r.len});
    if (!bytes.ok()) {
      log_error("gc: keeping pack " + std::to_string(pack) + ": chunk " + std::to_string(r.id) +
                " is unreadable: " + bytes.status().message());
      all_moved = false;
      continue;
    }
    auto loc = st.packs.append_raw(*bytes, r.waits ? PackStream::kFast : PackStream::kSettled);
    if (!loc.ok()) return loc.status();
    std::lock_guard<std::mutex> g(st.index.mu);
    Stmt u = st.index.db->prepare(r.group ? "UPDATE groups SET pack = ?, off = ? WHERE id = ? AND pack = ? AND off = ?"
                                          : "UPDATE chunks SET pack = ?, off = ? WHERE id = ? AND pack = ? AND off = ?");
    u.bind(1, loc->pack).bind(2, loc->off).bind(3, r.id).bind(4, pack).bind(5, r.off);
    DZ_RETURN_IF_ERROR(u.run());
    ++out.records_moved;
  }
  return all_moved;
}

Result<GcStats> collect_garbage(Store& st, const GcOptions& opts) {
  GcStats out;
  for (auto& [id, size] : st.packs.list()) out.pack_bytes_before += size;
  DZ_RETURN_IF_ERROR(delete_unreferenced(st, opts.previous_garbage, out));
  DZ_RETURN_IF_ERROR(queue_regroups(st, opts.regroup_below_live, out));
  DZ_RETURN_IF_ERROR(st.commit());

  auto snap = snapshot_sealing_dead_current_packs(st, opts.compact_below_live);
  if (!snap.ok() && snap.status().code() == EAGAIN) return out;  // busy: the next pass does it
  if (!snap.ok()) return snap.status();
  const auto& packs = snap->packs;
  std::vector<uint32_t> to_remove;
  uint64_t done = 0;
  for (auto& [pack, size] : packs) {
    if (opts.progress) opts.progress(done++, packs.size());
    if (snap->current.count(pack)) continue;
    const uint64_t l = snap->live_of(pack);
    if (l == 0) {
      to_remove.push_back(pack);
    } else if (double(l) < opts.compact_below_live * double(size)) {
      auto moved = compact_pack(st, pack, out);
      if (!moved.ok()) return moved.status();
      if (*moved) {
        to_remove.push_back(pack);
        ++out.packs_compacted;
      }
    }
  }
  // The moves must be durable before any old pack disappears.
  DZ_RETURN_IF_ERROR(st.commit());
  for (uint32_t pack : to_remove) {
    Status s = st.packs.remove(pack);
    if (!s.ok()) log_warn("gc: " + s.message());
    else ++out.packs_removed;
  }
  DZ_RETURN_IF_ERROR(st.packs.sync());
  for (auto& [id, size] : st.packs.list()) out.pack_bytes_after += size;
  if (opts.progress) opts.progress(packs.size(), packs.size());
  return out;
}

Result<uint64_t> garbage_bytes(Store& st) {
  std::lock_guard<std::mutex> g(st.index.mu);
  Stmt s = st.index.db->prepare("SELECT COALESCE(SUM(stored_len), 0) FROM chunks WHERE refcount = 0");
  if (!s.step()) return s.done_status().ok() ? Status::Error(EIO, "no garbage sum") : s.done_status();
  return uint64_t(s.i64(0));
}

}  // namespace dzfs
