// ChunkStore: see chunk_store.h.
#include "index/chunk_store.h"

#include <xxhash.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <memory>

#include "index/group_reader.h"
#include "index/log.h"

namespace dzfs {

const char* codec_name(uint8_t codec) {
  switch (codec) {
    case kCodecRaw: return "raw";
    case kCodecZstd: return "zstd";
    case kCodecNeural: return "neural";
    case kCodecGroup: return "group";
    default: return "unknown";
  }
}

ChunkHash hash_chunk(const void* data, size_t n) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits(data, n));
  ChunkHash h;
  memcpy(h.b, c.digest, 16);
  return h;
}

static std::string hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += {d[p[i] >> 4], d[p[i] & 15]};
  return s;
}

ChunkStore::ChunkStore(IndexDb& index, PackStore& packs, const StoreConfig& cfg, size_t cache_bytes)
    : index_(index), packs_(packs), cfg_(cfg), cache_(cache_bytes) {}

Result<int64_t> ChunkStore::put(const uint8_t* data, size_t n) {
  ChunkHash h = hash_chunk(data, n);
  int64_t found = 0;
  {
    std::lock_guard<std::mutex> g(index_.mu);
    Stmt s = index_.db->prepare("SELECT id FROM chunks WHERE hash = ?");
    s.bind_blob(1, h.b, 16);
    if (s.step()) found = s.i64(0);
    DZ_RETURN_IF_ERROR(s.done_status());
    if (found) pin(found);
  }
  if (found) {
    if (!cfg_.verify_dedup) return found;
    auto have = get(found);
    if (have.ok() && (*have)->size() == n && memcmp((*have)->data(), data, n) == 0) return found;
    unpin(found);
    log_error("dedup verify: stored chunk " + std::to_string(found) + " differs from new data with the same XXH3-128 " +
              hex(h.b, 16) + (have.ok() ? "" : " (" + have.status().message() + ")"));
    return Status::Error(EIO, "dedup verify failed for chunk " + std::to_string(found));
  }

  // One context, output buffer and record per thread, kept: creating a context per chunk costs
  // more than compressing a small one, and a fresh buffer of a large chunk is a fresh mmap
  // whose page faults cost more than compressing it.
  thread_local std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  thread_local std::unique_ptr<char[]> zbuf;
  thread_local size_t zcap = 0;
  thread_local ChunkRecord rec;
  if (zcap < ZSTD_compressBound(n)) {
    zcap = ZSTD_compressBound(std::max<size_t>(n, cfg_.chunk_max));
    zbuf.reset(new char[zcap]);
  }
  rec.raw_len = uint32_t(n);
  memcpy(rec.hash, h.b, 16);
  size_t z = ZSTD_compressCCtx(cctx.get(), zbuf.get(), zcap, data, n, cfg_.zstd_level);
  if (!ZSTD_isError(z) && z + n / 64 + 16 < n) {  // worth it: saves more than ~1.5%
    rec.codec = kCodecZstd;
    rec.payload.assign(zbuf.get(), z);
  } else {
    rec.codec = kCodecRaw;
    rec.payload.assign(reinterpret_cast<const char*>(data), n);
  }
  int64_t id = 0;
  // A zstd record waits in the fast stream for recompression; a raw one is final.
  const PackStream stream = rec.codec == kCodecZstd ? PackStream::kFast : PackStream::kSettled;
  DZ_RETURN_IF_ERROR(append_then_index([&] { return packs_.append(rec, stream); }, [&](const PackLocation& loc) -> Status {
    Stmt ins = index_.db->prepare(
        "INSERT INTO chunks(hash, raw_len, refcount, pack, off, stored_len, codec, created) "
        "VALUES (?, ?, 0, ?, ?, ?, ?, ?) ON CONFLICT(hash) DO NOTHING");
    ins.bind_blob(1, h.b, 16).bind(2, uint64_t(n)).bind(3, loc.pack).bind(4, loc.off);
    ins.bind(5, loc.stored_len).bind(6, int(rec.codec)).bind(7, int64_t(time(nullptr)));
    DZ_RETURN_IF_ERROR(ins.run());
    if (index_.db->changes() == 1) {
      id = index_.db->last_rowid();
    } else {  // another thread stored the same chunk meanwhile; our record is garbage for gc
      Stmt s = index_.db->prepare("SELECT id FROM chunks WHERE hash = ?");
      s.bind_blob(1, h.b, 16);
      if (s.step()) id = s.i64(0);
      DZ_RETURN_IF_ERROR(s.done_status());
      if (!id) return Status::Error(EIO, "chunk vanished from the index during insert");
    }
    pin(id);
    return Status::Ok();
  }));
  return id;
}

Status ChunkStore::append_then_index(const std::function<Result<PackLocation>()>& append,
                                     const std::function<Status(const PackLocation&)>& update) {
  ++in_flight_;
  auto loc = append();
  if (!loc.ok()) {
    --in_flight_;
    return loc.status();
  }
  std::lock_guard<std::mutex> g(index_.mu);
  Status s = update(*loc);
  --in_flight_;  // still under IndexDb::mu, after the row names the record
  return s;
}

void ChunkStore::pin(int64_t id) {
  std::lock_guard<std::mutex> g(pins_mu_);
  ++pins_[id];
}

void ChunkStore::unpin(int64_t id) {
  std::lock_guard<std::mutex> g(pins_mu_);
  auto it = pins_.find(id);
  if (it != pins_.end() && --it->second <= 0) pins_.erase(it);
}

bool ChunkStore::pinned(int64_t id) const {
  std::lock_guard<std::mutex> g(pins_mu_);
  return pins_.count(id) != 0;
}

Result<std::string> ChunkStore::decode(const ChunkRecord& rec) {
  switch (rec.codec) {
    case kCodecRaw:
      return rec.payload;
    case kCodecZstd: {
      std::string out(rec.raw_len, '\0');
      thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
      size_t r = ZSTD_decompressDCtx(dctx.get(), out.data(), out.size(), rec.payload.data(), rec.payload.size());
      if (ZSTD_isError(r)) return Status::Error(EIO, std::string("zstd: ") + ZSTD_getErrorName(r));
      if (r != rec.raw_len) return Status::Error(EIO, "zstd frame decodes to the wrong length");
      return out;
    }
    default:
      if (external_) return external_(rec);
      return Status::Error(EIO, std::string("no decoder for codec ") + codec_name(rec.codec));
  }
}

Result<ChunkBytes> ChunkStore::get(int64_t id) {
  if (ChunkBytes c = cache_.get(id)) return c;
  // gc may move the chunk to another pack between our index lookup and the read: if the read
  // fails and the index now names another place, read again from there.
  ChunkPlace tried;
  for (int attempt = 0;; ++attempt) {
    auto r = get_once(id, tried);
    if (r.ok()) return r;
    ChunkPlace now;
    if (attempt == 1 || !locate(id, now).ok() || now == tried) {
      log_error(r.status().message());
      return r;
    }
  }
}

// A grouped chunk's place is its group's record (chunks.pack/off are 0 then).
static constexpr const char* kPlaceSql =
    "SELECT c.hash, c.raw_len, COALESCE(g.pack, c.pack), COALESCE(g.off, c.off), COALESCE(g.stored_len, c.stored_len), "
    "c.codec, COALESCE(c.grp, 0), COALESCE(c.grp_off, 0) FROM chunks c LEFT JOIN groups g ON g.id = c.grp WHERE c.id = ?";

Status ChunkStore::locate(int64_t id, ChunkPlace& place) {
  std::lock_guard<std::mutex> g(index_.mu);
  Stmt s = index_.db->prepare(kPlaceSql);
  s.bind(1, id);
  if (!s.step()) return Status::Error(EIO, "chunk " + std::to_string(id) + " is missing from the index");
  place = {{uint32_t(s.i64(2)), uint64_t(s.i64(3)), uint32_t(s.i64(4))}, s.i64(6)};
  return Status::Ok();
}

Result<ChunkBytes> ChunkStore::get_once(int64_t id, ChunkPlace& place) {
  std::string want_hash;
  uint32_t raw_len = 0;
  uint8_t codec = 0;
  uint64_t grp_off = 0;
  {
    std::lock_guard<std::mutex> g(index_.mu);
    Stmt s = index_.db->prepare(kPlaceSql);
    s.bind(1, id);
    if (!s.step()) {
      Status e = s.done_status();
      return Status::Error(EIO, "chunk " + std::to_string(id) + " is missing from the index" +
                                    (e.ok() ? "" : ": " + e.message()));
    }
    want_hash = s.blob(0);
    raw_len = uint32_t(s.i64(1));
    place = {{uint32_t(s.i64(2)), uint64_t(s.i64(3)), uint32_t(s.i64(4))}, s.i64(6)};
    codec = uint8_t(s.i64(5));
    grp_off = uint64_t(s.i64(7));
  }
  const PackLocation& loc = place.loc;
  auto fail = [&](const std::string& why) {
    std::string msg = "chunk " + std::to_string(id) + " (pack " + std::to_string(loc.pack) + " @" +
                      std::to_string(loc.off) + (place.grp ? ", group " + std::to_string(place.grp) : "") + "): " + why;
    return Status::Error(EIO, msg);
  };
  if (want_hash.size() != 16) return fail("the index holds a bad hash");
  ChunkHash want;
  memcpy(want.b, want_hash.data(), 16);
  Result<std::string> raw = std::string();
  if (codec == kCodecGroup) {
    if (!groups_ || !place.grp) return fail("grouped chunk without a group");
    raw = groups_->read(place.grp, loc, grp_off, raw_len, want);
  } else {
    auto rec = packs_.read(loc);
    if (!rec.ok()) return fail(rec.status().message());
    if (memcmp(rec->hash, want.b, 16) != 0 || rec->raw_len != raw_len) return fail("pack record belongs to another chunk");
    raw = decode(*rec);
  }
  if (!raw.ok()) return fail(raw.status().message());
  if (raw->size() != raw_len) return fail("decoded length is wrong");
  ChunkHash h = hash_chunk(raw->data(), raw->size());
  if (memcmp(h.b, want.b, 16) != 0) return fail("checksum mismatch: stored bytes are damaged");
  auto bytes = std::make_shared<const std::string>(std::move(*raw));
  cache_.put(id, bytes);
  return ChunkBytes(bytes);
}

Result<size_t> ChunkStore::store_group(const std::vector<GroupedChunk>& members, uint64_t raw_len,
                                       const ChunkHash& table_hash, std::string payload, const std::string& model_id) {
  ChunkRecord rec;
  rec.codec = kCodecGroup;
  rec.raw_len = uint32_t(raw_len);
  memcpy(rec.hash, table_hash.b, 16);
  rec.payload = std::move(payload);
  const uint64_t stored = rec.payload.size();
  size_t moved = 0;
  auto append = [&] { return packs_.append(rec, PackStream::kSettled); };
  DZ_RETURN_IF_ERROR(append_then_index(append, [&](const PackLocation& loc) -> Status {
    DZ_RETURN_IF_ERROR(index_.db->exec("SAVEPOINT grp"));
    auto undo = [&](Status s) {
      index_.db->exec("ROLLBACK TO grp; RELEASE grp");
      return s;
    };
    Stmt ins = index_.db->prepare(
        "INSERT INTO groups(pack, off, stored_len, raw_len, nchunks, model, created) VALUES (?, ?, ?, ?, ?, ?, ?)");
    ins.bind(1, loc.pack).bind(2, loc.off).bind(3, loc.stored_len).bind(4, raw_len).bind(5, int64_t(members.size()));
    ins.bind_text(6, model_id).bind(7, int64_t(time(nullptr)));
    if (Status s = ins.run(); !s.ok()) return undo(s);
    const int64_t gid = index_.db->last_rowid();
    // Each member's share of the record (the last one takes the rounding), so that stored bytes
    // add up per codec in stats.
    uint64_t off = 0, given = 0;
    for (size_t i = 0; i < members.size(); ++i) {
      const GroupedChunk& m = members[i];
      const uint64_t share = i + 1 == members.size() ? stored - given : stored * m.raw_len / raw_len;
      given += share;
      Stmt u = index_.db->prepare(
          "UPDATE chunks SET pack = 0, off = 0, stored_len = ?, codec = ?, model = ?, grp = ?, grp_off = ?, tier_done = 1 "
          "WHERE id = ? AND pack = ? AND off = ? AND COALESCE(grp, 0) = ?");
      u.bind(1, share).bind(2, int(kCodecGroup)).bind_text(3, model_id).bind(4, gid).bind(5, off);
      u.bind(6, m.id).bind(7, m.was.grp ? 0 : m.was.loc.pack).bind(8, m.was.grp ? 0 : m.was.loc.off).bind(9, m.was.grp);
      if (Status s = u.run(); !s.ok()) return undo(s);
      moved += size_t(index_.db->changes());
      off += m.raw_len;
    }
    if (moved == 0) return undo(Status::Ok());  // the record stays unnamed: garbage for gc
    return index_.db->exec("RELEASE grp");
  }));
  return moved;
}

Result<size_t> ChunkStore::settle(const std::vector<GroupedChunk>& chunks) {
  size_t moved = 0;
  for (const GroupedChunk& c : chunks) {
    if (c.was.grp) continue;  // a group's record is settled already
    auto bytes = packs_.read_raw(c.was.loc);
    if (!bytes.ok()) {  // moved or deleted meanwhile; or damaged, and then it stays (fsck names it)
      std::lock_guard<std::mutex> g(index_.mu);
      Stmt u = index_.db->prepare("UPDATE chunks SET tier_done = 1 WHERE id = ? AND pack = ? AND off = ? AND grp IS NULL");
      u.bind(1, c.id).bind(2, c.was.loc.pack).bind(3, c.was.loc.off);
      DZ_RETURN_IF_ERROR(u.run());
      continue;
    }
    auto append = [&] { return packs_.append_raw(*bytes, PackStream::kSettled); };
    DZ_RETURN_IF_ERROR(append_then_index(append, [&](const PackLocation& loc) -> Status {
      Stmt u = index_.db->prepare(
          "UPDATE chunks SET pack = ?, off = ?, tier_done = 1 WHERE id = ? AND pack = ? AND off = ? AND grp IS NULL");
      u.bind(1, loc.pack).bind(2, loc.off).bind(3, c.id).bind(4, c.was.loc.pack).bind(5, c.was.loc.off);
      DZ_RETURN_IF_ERROR(u.run());
      moved += size_t(index_.db->changes());  // 0: it moved meanwhile, and the copy is garbage
      return Status::Ok();
    }));
  }
  return moved;
}

}  // namespace dzfs
