// Index schema v3. Invariants kept by the code that writes these tables:
//  - chunks.refcount = number of extents rows naming the chunk (fsck recomputes and compares).
//  - inodes.data_bytes = sum of the inode's extents' len (st_blocks is derived from it).
//  - inodes.nlink = number of dirents rows naming the inode (+ subdirectories' ".." for dirs).
//  - extents of one inode never overlap; each lies inside its chunk: chunk_off + len <= raw_len.
//  - chunks.tier_done = 1 once background recompression has tried the chunk with the current
//    model (it is then neural, or stays zstd/raw because neural was not smaller by the margin).
//  - chunks.model names a models row (and STORE/models/<id>.dzm) for every neural chunk; a model
//    file is never deleted while a chunk names it.
//  - every chunks row points at a pack record that was fsynced before the row was committed.
//  - a grouped chunk (codec 3) has grp = a groups row, grp_off = its offset in the group's raw
//    stream (grp_off + raw_len <= groups.raw_len), pack = off = 0 (the groups row has the place)
//    and stored_len = its share of the record; a groups row lives while a chunk names it.
//  - a snapshot (index/snapshots.h) owns the inodes lo..hi (contiguous, allocated at once, never
//    overlapping another snapshot's); its root is lo, named in the snapshots folder
//    (meta.snapshots_dir); every change to those inodes is refused (EROFS) but its deletion.
#include "index/schema.h"

#include <charconv>
#include <ctime>
#include <string>

namespace dzfs {

// The groups table and its indexes: part of a new index, and what the upgrade from 1 adds.
static const char* kGroupsSql = R"SQL(
CREATE TABLE groups(
  id INTEGER PRIMARY KEY AUTOINCREMENT, pack INTEGER NOT NULL, off INTEGER NOT NULL,
  stored_len INTEGER NOT NULL, raw_len INTEGER NOT NULL, nchunks INTEGER NOT NULL, model TEXT,
  created INTEGER NOT NULL);
CREATE INDEX groups_by_pack ON groups(pack);
CREATE INDEX chunks_by_grp ON chunks(grp, grp_off) WHERE grp IS NOT NULL;
)SQL";

// Snapshots (schema 3): part of a new index, and what the upgrade from 2 adds.
static const char* kSnapshotsSql = R"SQL(
CREATE TABLE snapshots(
  id INTEGER PRIMARY KEY AUTOINCREMENT, name BLOB NOT NULL UNIQUE, root INTEGER NOT NULL,
  lo INTEGER NOT NULL, hi INTEGER NOT NULL, created_ns INTEGER NOT NULL, source BLOB NOT NULL);
CREATE UNIQUE INDEX snapshots_by_lo ON snapshots(lo);
)SQL";

static const std::string kSchemaSql = R"SQL(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE inodes(
  ino INTEGER PRIMARY KEY AUTOINCREMENT,
  mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,
  nlink INTEGER NOT NULL, size INTEGER NOT NULL DEFAULT 0, rdev INTEGER NOT NULL DEFAULT 0,
  data_bytes INTEGER NOT NULL DEFAULT 0,
  atime_ns INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
  target BLOB);
CREATE TABLE dirents(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  parent INTEGER NOT NULL, name BLOB NOT NULL, ino INTEGER NOT NULL,
  UNIQUE(parent, name));
CREATE INDEX dirents_by_parent ON dirents(parent, id);
CREATE INDEX dirents_by_ino ON dirents(ino);
CREATE TABLE xattrs(ino INTEGER NOT NULL, name BLOB NOT NULL, value BLOB NOT NULL,
  PRIMARY KEY(ino, name)) WITHOUT ROWID;
CREATE TABLE extents(ino INTEGER NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL,
  chunk INTEGER NOT NULL, chunk_off INTEGER NOT NULL, PRIMARY KEY(ino, off)) WITHOUT ROWID;
CREATE INDEX extents_by_chunk ON extents(chunk);
CREATE TABLE chunks(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  hash BLOB NOT NULL UNIQUE, raw_len INTEGER NOT NULL, refcount INTEGER NOT NULL,
  pack INTEGER NOT NULL, off INTEGER NOT NULL, stored_len INTEGER NOT NULL,
  codec INTEGER NOT NULL, model TEXT, created INTEGER NOT NULL,
  tier_done INTEGER NOT NULL DEFAULT 0, grp INTEGER, grp_off INTEGER);
CREATE INDEX chunks_by_pack ON chunks(pack);
CREATE INDEX chunks_backlog ON chunks(created) WHERE tier_done = 0;
CREATE TABLE models(
  id TEXT PRIMARY KEY, created INTEGER NOT NULL, parent TEXT, arch INTEGER NOT NULL,
  summary TEXT NOT NULL, size INTEGER NOT NULL);
CREATE INDEX chunks_garbage ON chunks(refcount) WHERE refcount = 0;
)SQL" + std::string(kGroupsSql) + kSnapshotsSql;

static const std::string kUpgrade1To2Sql = R"SQL(
ALTER TABLE chunks ADD COLUMN grp INTEGER;
ALTER TABLE chunks ADD COLUMN grp_off INTEGER;
)SQL" + std::string(kGroupsSql) + "UPDATE meta SET value = '2' WHERE key = 'schema_version';";

static const std::string kUpgrade2To3Sql =
    std::string(kSnapshotsSql) + "UPDATE meta SET value = '3' WHERE key = 'schema_version';";

static const char* kReadonlyV1Sql = R"SQL(
PRAGMA query_only=0;
CREATE TEMP TABLE groups(
  id INTEGER PRIMARY KEY, pack INTEGER NOT NULL, off INTEGER NOT NULL, stored_len INTEGER NOT NULL,
  raw_len INTEGER NOT NULL, nchunks INTEGER NOT NULL, model TEXT, created INTEGER NOT NULL);
CREATE TEMP VIEW chunks AS SELECT id, hash, raw_len, refcount, pack, off, stored_len, codec, model, created,
  tier_done, NULL AS grp, NULL AS grp_off FROM main.chunks;
PRAGMA query_only=1;
)SQL";

static const char* kReadonlyV2Sql = R"SQL(
PRAGMA query_only=0;
CREATE TEMP TABLE snapshots(
  id INTEGER PRIMARY KEY, name BLOB NOT NULL UNIQUE, root INTEGER NOT NULL,
  lo INTEGER NOT NULL, hi INTEGER NOT NULL, created_ns INTEGER NOT NULL, source BLOB NOT NULL);
PRAGMA query_only=1;
)SQL";

Status create_schema(SqliteDb& db, uint32_t root_mode, uint32_t uid, uint32_t gid) {
  DZ_RETURN_IF_ERROR(db.exec("BEGIN"));
  DZ_RETURN_IF_ERROR(db.exec(kSchemaSql.c_str()));
  {
    Stmt s = db.prepare("INSERT INTO meta(key, value) VALUES ('schema_version', ?)");
    s.bind_text(1, std::to_string(kIndexSchemaVersion));
    DZ_RETURN_IF_ERROR(s.run());
  }
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t now = int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  Stmt s = db.prepare(
      "INSERT INTO inodes(ino, mode, uid, gid, nlink, size, atime_ns, mtime_ns, ctime_ns) "
      "VALUES (?, ?, ?, ?, 2, 0, ?, ?, ?)");
  s.bind(1, kRootIno).bind(2, root_mode).bind(3, uid).bind(4, gid).bind(5, now).bind(6, now).bind(7, now);
  DZ_RETURN_IF_ERROR(s.run());
  return db.exec("COMMIT");
}

Status upgrade_schema(SqliteDb& db, int from_version, bool readonly) {
  if (from_version < 2) DZ_RETURN_IF_ERROR(db.exec(readonly ? kReadonlyV1Sql : kUpgrade1To2Sql.c_str()));
  if (from_version < 3) DZ_RETURN_IF_ERROR(db.exec(readonly ? kReadonlyV2Sql : kUpgrade2To3Sql.c_str()));
  return Status::Ok();
}

Result<int> check_schema(SqliteDb& db) {
  Stmt s = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'");
  if (!s.step()) {
    Status e = s.done_status();
    return Status::Error(EIO, e.ok() ? "index has no schema version (not a dzfs index?)" : e.message());
  }
  const std::string text = s.blob(0);
  int v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size())
    return Status::Error(EIO, "index schema version '" + text.substr(0, 20) + "' is not a number (damaged index?)");
  if (v > kIndexSchemaVersion)
    return Status::Error(EPROTO, "index schema version " + std::to_string(v) +
                                     " is newer than this dzfs supports (" +
                                     std::to_string(kIndexSchemaVersion) + "); upgrade dzfs");
  if (v < 1) return Status::Error(EIO, "index schema version is invalid");
  return v;
}

}  // namespace dzfs
