// Snapshots: see snapshots.h. The copy and the deletion are a handful of set-wise SQL statements
// over the whole tree (no per-file round trips), so a tree of a million files is copied in
// seconds: the tree's inodes are listed once into a temporary map (old inode -> sequence number),
// and every table is copied with one INSERT ... SELECT through that map.
#include "index/snapshots.h"

#include "index/chunk_store.h"
#include "index/pack_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace dzfs {
namespace {

Status run(SqliteDb& db, const char* sql, std::initializer_list<int64_t> args) {
  Stmt s = db.prepare(sql);
  int i = 1;
  for (int64_t a : args) s.bind(i++, a);
  return s.run();
}

// A larger page cache for one operation over a whole tree (a million-file tree's index is ~165
// MB; with the connection's 64 MiB the random inserts into extents_by_chunk miss it), given back
// after: SQLite frees the pages above the limit when it is lowered.
class LargeCache {
 public:
  explicit LargeCache(SqliteDb& db) : db_(db) {
    Stmt s = db_.prepare("PRAGMA cache_size");
    if (s.step()) old_ = s.i64(0);
    s.reset();
    if (old_) (void)db_.exec("PRAGMA cache_size = -262144");
  }
  ~LargeCache() {
    if (old_) (void)db_.exec(("PRAGMA cache_size = " + std::to_string(old_)).c_str());
  }

 private:
  SqliteDb& db_;
  int64_t old_ = 0;
};

Result<int64_t> one_i64(SqliteDb& db, const char* sql, std::initializer_list<int64_t> args) {
  Stmt s = db.prepare(sql);
  int i = 1;
  for (int64_t a : args) s.bind(i++, a);
  if (s.step()) return s.i64(0);
  Status e = s.done_status();
  return e.ok() ? Status::Error(ENOENT, "no row") : e;
}

Result<uint64_t> folder_ino(SqliteDb& db) {
  Stmt s = db.prepare("SELECT value FROM meta WHERE key = 'snapshots_dir'");
  if (!s.step()) return s.done_status().ok() ? Result<uint64_t>(uint64_t(0)) : Result<uint64_t>(s.done_status());
  return uint64_t(std::strtoull(s.blob(0).c_str(), nullptr, 10));
}

// The snapshots folder, made in the root on first use. A /.snapshots the user made is not
// taken over: snapshots would then be mixed with what is in it.
Result<uint64_t> ensure_folder(SqliteDb& db, int64_t now_ns) {
  auto f = folder_ino(db);
  if (!f.ok() || *f) return f;
  Stmt q = db.prepare("SELECT 1 FROM dirents WHERE parent = 1 AND name = ?");
  q.bind_blob(1, kSnapshotsDirName);
  if (q.step())
    return Status::Error(EEXIST, std::string("/") + kSnapshotsDirName +
                                     " exists and is not dzfs's snapshots folder: rename it first");
  q.reset();
  Stmt ins = db.prepare(
      "INSERT INTO inodes(mode, uid, gid, nlink, size, atime_ns, mtime_ns, ctime_ns) VALUES (?, 0, 0, 2, 0, ?2, ?2, ?2)");
  ins.bind(1, int64_t(S_IFDIR | 0755)).bind(2, now_ns);
  DZ_RETURN_IF_ERROR(ins.run());
  const uint64_t ino = uint64_t(db.last_rowid());
  Stmt de = db.prepare("INSERT INTO dirents(parent, name, ino) VALUES (1, ?, ?)");
  de.bind_blob(1, kSnapshotsDirName).bind(2, ino);
  DZ_RETURN_IF_ERROR(de.run());
  DZ_RETURN_IF_ERROR(run(db, "UPDATE inodes SET nlink = nlink + 1, mtime_ns = ?1, ctime_ns = ?1 WHERE ino = 1", {now_ns}));
  Stmt m = db.prepare("INSERT INTO meta(key, value) VALUES ('snapshots_dir', ?)");
  m.bind_text(1, std::to_string(ino));
  DZ_RETURN_IF_ERROR(m.run());
  return ino;
}

// Crash tests stop here, inside an operation's savepoint, to kill the process in the middle of it:
// DZFS_TEST_PAUSE=POINT:MS (points "snapshot", "delete"). Nothing else reads it.
void test_pause(const char* point) {
  const char* v = getenv("DZFS_TEST_PAUSE");
  const size_t n = strlen(point);
  if (!v || strncmp(v, point, n) != 0 || v[n] != ':') return;
  // The whole pause, even if a signal interrupts the sleep: a pause cut short lets the operation
  // commit before the test's kill lands, and the test then sees the wrong outcome.
  const long ms = atol(v + n + 1);
  timespec left{ms / 1000, (ms % 1000) * 1000000};
  while (nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
}

SnapshotInfo info_from(Stmt& s) {
  SnapshotInfo i;
  i.id = s.i64(0);
  i.name = s.blob(1);
  i.root = uint64_t(s.i64(2));
  i.lo = uint64_t(s.i64(3));
  i.hi = uint64_t(s.i64(4));
  i.created_ns = s.i64(5);
  i.source = s.blob(6);
  return i;
}

// Lists the tree under `source` into temp.snap_map(seq, old): the source is seq 0, every inode
// once (hard links by their first name), frozen subtrees left out.
Status map_tree(SqliteDb& db, uint64_t source, uint64_t folder) {
  DZ_RETURN_IF_ERROR(db.exec("DROP TABLE IF EXISTS temp.snap_map;"
                             "CREATE TEMP TABLE snap_map(seq INTEGER PRIMARY KEY, old INTEGER NOT NULL UNIQUE)"));
  DZ_RETURN_IF_ERROR(run(db, "INSERT INTO temp.snap_map(seq, old) VALUES (0, ?)", {int64_t(source)}));
  return run(db,
      "INSERT OR IGNORE INTO temp.snap_map(old) "
      "WITH RECURSIVE t(ino) AS (SELECT ?1 UNION "
      "  SELECT d.ino FROM dirents d JOIN t ON d.parent = t.ino WHERE d.ino != ?2 AND NOT EXISTS "
      "    (SELECT 1 FROM (SELECT hi FROM snapshots WHERE lo <= d.ino ORDER BY lo DESC LIMIT 1) WHERE hi >= d.ino)) "
      "SELECT ino FROM t WHERE ino != ?1",
      {int64_t(source), int64_t(folder)});
}

// Copies every row of the mapped tree to inodes base + seq; the new root is named `name` in
// the snapshots folder. Link counts are counted afresh: names outside the tree do not come along.
// Every copy is driven by the map (CROSS JOIN fixes SQLite's join order): the temporary table has
// no statistics, and the planner otherwise scans the whole dirents, xattrs or extents table and
// probes the map, so that a snapshot of a small directory cost time in the volume's size.
Status copy_rows(SqliteDb& db, int64_t base, int64_t hi, uint64_t folder, std::string_view name, int64_t now_ns) {
  // Link counts: a directory keeps its own (its subdirectories all come along), except the copy's
  // root, which loses the subdirectories left out (the snapshots folder of the volume's root); a
  // file with several names keeps those inside the tree.
  DZ_RETURN_IF_ERROR(run(db,
      "INSERT INTO inodes(ino, mode, uid, gid, nlink, size, rdev, data_bytes, atime_ns, mtime_ns, ctime_ns, target) "
      "SELECT ?1 + m.seq, i.mode, i.uid, i.gid, CASE "
      "  WHEN m.seq = 0 THEN i.nlink - (SELECT COUNT(*) FROM dirents d JOIN inodes c ON c.ino = d.ino "
      "    WHERE d.parent = i.ino AND (c.mode & 61440) = 16384 AND d.ino NOT IN (SELECT old FROM temp.snap_map)) "
      "  WHEN (i.mode & 61440) = 16384 OR i.nlink = 1 THEN i.nlink "
      "  ELSE (SELECT COUNT(*) FROM dirents d JOIN temp.snap_map p ON p.old = d.parent WHERE d.ino = i.ino) END, "
      "i.size, i.rdev, i.data_bytes, i.atime_ns, i.mtime_ns, i.ctime_ns, i.target "
      "FROM temp.snap_map m CROSS JOIN inodes i ON i.ino = m.old ORDER BY m.seq",
      {base}));
  DZ_RETURN_IF_ERROR(run(db,
      "INSERT INTO dirents(parent, name, ino) SELECT ?1 + p.seq, d.name, ?1 + c.seq FROM temp.snap_map p "
      "CROSS JOIN dirents d ON d.parent = p.old CROSS JOIN temp.snap_map c ON c.old = d.ino ORDER BY p.seq, d.id",
      {base}));
  Stmt root = db.prepare("INSERT INTO dirents(parent, name, ino) VALUES (?, ?, ?)");
  root.bind(1, folder).bind_blob(2, name).bind(3, base);
  DZ_RETURN_IF_ERROR(root.run());
  DZ_RETURN_IF_ERROR(run(db,
      "INSERT INTO xattrs(ino, name, value) SELECT ?1 + m.seq, x.name, x.value FROM temp.snap_map m "
      "CROSS JOIN xattrs x ON x.ino = m.old",
      {base}));
  DZ_RETURN_IF_ERROR(run(db,
      "INSERT INTO extents(ino, off, len, chunk, chunk_off) SELECT ?1 + m.seq, e.off, e.len, e.chunk, e.chunk_off "
      "FROM temp.snap_map m CROSS JOIN extents e ON e.ino = m.old",
      {base}));
  // chunks.refcount = number of extents naming the chunk: add the copies.
  DZ_RETURN_IF_ERROR(run(db,
      "UPDATE chunks SET refcount = refcount + d.n FROM (SELECT chunk, COUNT(*) AS n FROM extents "
      "WHERE ino BETWEEN ?1 AND ?2 GROUP BY chunk) AS d WHERE chunks.id = d.chunk",
      {base, hi}));
  return run(db, "UPDATE inodes SET nlink = nlink + 1, mtime_ns = ?1, ctime_ns = ?1 WHERE ino = ?2",
             {now_ns, int64_t(folder)});
}

}  // namespace

bool FrozenSet::contains(uint64_t ino) const {
  if (ino == folder_ && folder_) return true;
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), ino,
                             [](uint64_t v, const std::pair<uint64_t, uint64_t>& r) { return v < r.first; });
  return it != ranges_.begin() && ino <= std::prev(it)->second;
}

Result<FrozenSet> load_frozen_locked(SqliteDb& db) {
  FrozenSet f;
  auto folder = folder_ino(db);
  if (!folder.ok()) return folder.status();
  f.folder_ = *folder;
  Stmt s = db.prepare("SELECT lo, hi FROM snapshots ORDER BY lo");
  while (s.step()) f.ranges_.emplace_back(uint64_t(s.i64(0)), uint64_t(s.i64(1)));
  DZ_RETURN_IF_ERROR(s.done_status());
  return f;
}

Status check_snapshot_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return Status::Error(EINVAL, "a snapshot name has 1 to 255 bytes");
  if (name == "." || name == ".." || name.find('/') != name.npos || name.find('\0') != name.npos)
    return Status::Error(EINVAL, "a snapshot name cannot be '.' or '..' or contain '/'");
  return Status::Ok();
}

std::string default_snapshot_name(int64_t now_ns) {
  time_t t = time_t(now_ns / 1000000000);
  tm u{};
  gmtime_r(&t, &u);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &u);
  return buf;
}

Result<uint64_t> resolve_path_locked(SqliteDb& db, std::string_view path) {
  uint64_t ino = 1;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == path.npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    i = j + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return Status::Error(EINVAL, "a volume path cannot contain '..'");
    Stmt s = db.prepare("SELECT ino FROM dirents WHERE parent = ? AND name = ?");
    s.bind(1, ino).bind_blob(2, part);
    if (!s.step()) {
      Status e = s.done_status();
      return e.ok() ? Status::Error(ENOENT, "no such file or directory in the volume: " + std::string(path)) : e;
    }
    ino = uint64_t(s.i64(0));
  }
  return ino;
}

Result<std::string> directory_path_locked(SqliteDb& db, uint64_t ino) {
  std::string path;
  for (int depth = 0; ino != 1; ++depth) {
    if (depth > 4096) return Status::Error(ELOOP, "directory path too deep (damaged index?)");
    Stmt s = db.prepare("SELECT parent, name FROM dirents WHERE ino = ? LIMIT 1");
    s.bind(1, ino);
    if (!s.step()) return Status::Error(ENOENT, "directory " + std::to_string(ino) + " has no name");
    path = "/" + s.blob(1) + path;
    ino = uint64_t(s.i64(0));
  }
  return path.empty() ? "/" : path;
}

Result<SnapshotInfo> create_snapshot_locked(SqliteDb& db, uint64_t source, std::string_view name, int64_t now_ns) {
  DZ_RETURN_IF_ERROR(check_snapshot_name(name));
  auto frozen = load_frozen_locked(db);
  if (!frozen.ok()) return frozen.status();
  if (frozen->contains(source)) return Status::Error(EROFS, "cannot snapshot a snapshot or the snapshots folder");
  auto mode = one_i64(db, "SELECT mode FROM inodes WHERE ino = ? AND nlink > 0", {int64_t(source)});
  if (!mode.ok()) return Status::Error(ENOENT, "the source directory does not exist");
  if (!S_ISDIR(mode_t(*mode))) return Status::Error(ENOTDIR, "only a directory can be snapshotted");
  if (find_snapshot_locked(db, name).ok()) return Status::Error(EEXIST, "a snapshot named " + std::string(name) + " exists");
  auto path = directory_path_locked(db, source);
  if (!path.ok()) return path.status();

  LargeCache cache(db);
  Savepoint sp(db);
  DZ_RETURN_IF_ERROR(sp.begun());
  auto folder = ensure_folder(db, now_ns);
  if (!folder.ok()) return folder.status();
  {
    Stmt q = db.prepare("SELECT 1 FROM dirents WHERE parent = ? AND name = ?");
    q.bind(1, *folder).bind_blob(2, name);
    if (q.step()) return Status::Error(EEXIST, "the snapshots folder has an entry named " + std::string(name));
  }
  DZ_RETURN_IF_ERROR(map_tree(db, source, *folder));
  // New inode numbers above every number ever used (AUTOINCREMENT's sequence), so no inode of
  // the live tree, now or later, falls inside the snapshot's range.
  auto top = one_i64(db,
      "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'inodes'), 0), "
      "COALESCE((SELECT MAX(ino) FROM inodes), 0))", {});
  auto count = one_i64(db, "SELECT COUNT(*) FROM temp.snap_map", {});
  if (!top.ok() || !count.ok()) return Status::Error(EIO, "index: cannot size the snapshot");
  const int64_t base = *top + 1, hi = base + *count - 1;
  DZ_RETURN_IF_ERROR(copy_rows(db, base, hi, *folder, name, now_ns));
  test_pause("snapshot");
  Stmt ins = db.prepare("INSERT INTO snapshots(name, root, lo, hi, created_ns, source) VALUES (?, ?3, ?3, ?4, ?5, ?6)");
  ins.bind_blob(1, name).bind(3, base).bind(4, hi).bind(5, now_ns).bind_blob(6, *path);
  DZ_RETURN_IF_ERROR(ins.run());
  SnapshotInfo info{db.last_rowid(), std::string(name), uint64_t(base), uint64_t(base), uint64_t(hi), now_ns, *path};
  DZ_RETURN_IF_ERROR(db.exec("DROP TABLE temp.snap_map"));
  sp.done();
  return info;
}

// Deletes one snapshot's rows; inodes in temp.snap_held keep theirs, unlinked.
static Status delete_one(SqliteDb& db, const SnapshotInfo& s, uint64_t folder, int64_t now_ns) {
  const int64_t lo = int64_t(s.lo), hi = int64_t(s.hi);
  DZ_RETURN_IF_ERROR(run(db,
      "UPDATE chunks SET refcount = refcount - d.n FROM (SELECT chunk, COUNT(*) AS n FROM extents "
      "WHERE ino BETWEEN ?1 AND ?2 AND ino NOT IN (SELECT ino FROM temp.snap_held) GROUP BY chunk) AS d "
      "WHERE chunks.id = d.chunk",
      {lo, hi}));
  DZ_RETURN_IF_ERROR(run(db,
      "DELETE FROM extents WHERE ino BETWEEN ?1 AND ?2 AND ino NOT IN (SELECT ino FROM temp.snap_held)", {lo, hi}));
  DZ_RETURN_IF_ERROR(run(db,
      "DELETE FROM xattrs WHERE ino BETWEEN ?1 AND ?2 AND ino NOT IN (SELECT ino FROM temp.snap_held)", {lo, hi}));
  DZ_RETURN_IF_ERROR(run(db, "DELETE FROM dirents WHERE parent BETWEEN ?1 AND ?2", {lo, hi}));
  DZ_RETURN_IF_ERROR(run(db, "DELETE FROM dirents WHERE parent = ?1 AND ino = ?2", {int64_t(folder), lo}));
  DZ_RETURN_IF_ERROR(run(db,
      "DELETE FROM inodes WHERE ino BETWEEN ?1 AND ?2 AND ino NOT IN (SELECT ino FROM temp.snap_held)", {lo, hi}));
  DZ_RETURN_IF_ERROR(run(db, "UPDATE inodes SET nlink = 0, ctime_ns = ?3 WHERE ino BETWEEN ?1 AND ?2", {lo, hi, now_ns}));
  DZ_RETURN_IF_ERROR(run(db, "UPDATE inodes SET nlink = nlink - 1, mtime_ns = ?1, ctime_ns = ?1 WHERE ino = ?2",
                         {now_ns, int64_t(folder)}));
  return run(db, "DELETE FROM snapshots WHERE id = ?", {s.id});
}

Status delete_snapshots_locked(SqliteDb& db, const std::vector<std::string>& names,
                               const std::function<bool(uint64_t)>& held) {
  std::vector<SnapshotInfo> doomed;
  for (const std::string& n : names) {
    auto s = find_snapshot_locked(db, n);
    if (!s.ok()) return s.status();
    // A name given twice is deleted once: a second pass would find no rows to delete but would
    // still lower the snapshots folder's link count.
    if (std::none_of(doomed.begin(), doomed.end(), [&](const SnapshotInfo& d) { return d.id == s->id; }))
      doomed.push_back(*s);
  }
  auto folder = folder_ino(db);
  if (!folder.ok()) return folder.status();
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  const int64_t now = int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  LargeCache cache(db);
  Savepoint sp(db);
  DZ_RETURN_IF_ERROR(sp.begun());
  DZ_RETURN_IF_ERROR(db.exec("DROP TABLE IF EXISTS temp.snap_held;"
                             "CREATE TEMP TABLE snap_held(ino INTEGER PRIMARY KEY)"));
  for (const SnapshotInfo& s : doomed) {
    // Only inodes the kernel knows can be held; they are few (its dentry cache), so asking for
    // each inode of the range is avoided: the caller's table is asked per inode of the range
    // only when it says it holds any at all (held(0) answers "maybe some").
    if (held && held(0)) {
      std::vector<int64_t> keep;
      Stmt q = db.prepare("SELECT ino FROM inodes WHERE ino BETWEEN ? AND ?");
      q.bind(1, s.lo).bind(2, s.hi);
      while (q.step())
        if (held(uint64_t(q.i64(0)))) keep.push_back(q.i64(0));
      DZ_RETURN_IF_ERROR(q.done_status());
      q.reset();
      for (int64_t ino : keep) DZ_RETURN_IF_ERROR(run(db, "INSERT OR IGNORE INTO temp.snap_held(ino) VALUES (?)", {ino}));
    }
    DZ_RETURN_IF_ERROR(delete_one(db, s, *folder, now));
    test_pause("delete");
    DZ_RETURN_IF_ERROR(db.exec("DELETE FROM temp.snap_held"));
  }
  DZ_RETURN_IF_ERROR(db.exec("DROP TABLE temp.snap_held"));
  sp.done();
  return Status::Ok();
}

Result<std::vector<SnapshotInfo>> list_snapshots_locked(SqliteDb& db) {
  std::vector<SnapshotInfo> out;
  Stmt s = db.prepare("SELECT id, name, root, lo, hi, created_ns, source FROM snapshots ORDER BY created_ns, id");
  while (s.step()) out.push_back(info_from(s));
  DZ_RETURN_IF_ERROR(s.done_status());
  return out;
}

Result<SnapshotInfo> find_snapshot_locked(SqliteDb& db, std::string_view name) {
  Stmt s = db.prepare("SELECT id, name, root, lo, hi, created_ns, source FROM snapshots WHERE name = ?");
  s.bind_blob(1, name);
  if (s.step()) return info_from(s);
  Status e = s.done_status();
  return e.ok() ? Status::Error(ENOENT, "no snapshot named " + std::string(name)) : e;
}

Result<SnapshotUsage> snapshot_usage_locked(SqliteDb& db, const SnapshotInfo& s) {
  SnapshotUsage u;
  Stmt k = db.prepare(
      "SELECT SUM((mode & 61440) = 32768), SUM((mode & 61440) = 16384), SUM((mode & 61440) NOT IN (32768, 16384)), "
      "SUM(CASE WHEN (mode & 61440) = 32768 THEN size ELSE 0 END) FROM inodes WHERE ino BETWEEN ? AND ? AND nlink > 0");
  k.bind(1, s.lo).bind(2, s.hi);
  if (k.step()) {
    u.files = uint64_t(k.i64(0));
    u.dirs = uint64_t(k.i64(1));
    u.others = uint64_t(k.i64(2));
    u.logical_bytes = uint64_t(k.i64(3));
  }
  DZ_RETURN_IF_ERROR(k.done_status());
  k.reset();
  // A chunk only this snapshot names: every extent naming it (its refcount) lies in the range.
  Stmt x = db.prepare(
      "SELECT COUNT(*), COALESCE(SUM(c.raw_len), 0), COALESCE(SUM(c.stored_len + (c.codec <> ?4) * ?3), 0) FROM "
      "(SELECT chunk, COUNT(*) AS n FROM extents WHERE ino BETWEEN ?1 AND ?2 GROUP BY chunk) AS d JOIN chunks c ON "
      "c.id = d.chunk WHERE c.refcount = d.n");
  // Stored bytes as dzfs stats counts them: a record's header too, except a group member's share.
  x.bind(1, s.lo).bind(2, s.hi).bind(3, kRecordHeaderSize).bind(4, int(kCodecGroup));
  if (x.step()) {
    u.exclusive_chunks = uint64_t(x.i64(0));
    u.exclusive_raw = uint64_t(x.i64(1));
    u.exclusive_stored = uint64_t(x.i64(2));
  }
  DZ_RETURN_IF_ERROR(x.done_status());
  return u;
}

}  // namespace dzfs
