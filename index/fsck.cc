// Volume check: see fsck.h. Each query below tests one invariant written in schema.cc.
#include "index/fsck.h"

#include <cstdio>
#include <set>

#include "codec/model.h"
#include "index/model_registry.h"
#include "index/schema.h"

// The link count an inode must have: its names, plus for a directory its own "." and each
// subdirectory's "..", plus the root's entry in its own parent. A macro, so that every query
// stays one string literal (SqliteDb caches statements by the literal's address).
#define DZ_EXPECTED_NLINK(i)                                                                          \
  "((SELECT COUNT(*) FROM dirents d WHERE d.ino = " i ".ino) + CASE WHEN (" i ".mode & 61440) = 16384 " \
  "THEN 1 + (SELECT COUNT(*) FROM dirents d JOIN inodes c ON c.ino = d.ino WHERE d.parent = " i         \
  ".ino AND (c.mode & 61440) = 16384) ELSE 0 END + (" i ".ino = 1))"

namespace dzfs {

std::string path_of_inode(SqliteDb& db, uint64_t ino) {
  std::string path;
  for (int depth = 0; ino != kRootIno && depth < 4096; ++depth) {
    Stmt s = db.prepare("SELECT parent, name FROM dirents WHERE ino = ? LIMIT 1");
    s.bind(1, ino);
    if (!s.step()) return "<inode " + std::to_string(ino) + ", unlinked>" + path;
    std::string name = s.blob(1);
    name.insert(name.begin(), '/');
    path.insert(0, name);
    ino = uint64_t(s.i64(0));
  }
  return path.empty() ? "/" : path;
}

static Status collect(SqliteDb& db, const char* sql, const std::function<std::string(Stmt&)>& describe,
                      std::vector<std::string>& out) {
  Stmt s = db.prepare(sql);
  while (s.step()) out.push_back(describe(s));
  return s.done_status();
}

// Snapshots (index/snapshots.h): each owns the disjoint inode range lo..hi, its root (lo) is named
// in the snapshots folder, and no name crosses a snapshot's edge but that one (a crossing name
// would let a change reach a snapshot, or a snapshot's deletion cut a live file).
static Status check_snapshots(SqliteDb& db, std::vector<std::string>& problems) {
  auto name = [](Stmt& s) { return "snapshot " + s.blob(0) + ": "; };
  DZ_RETURN_IF_ERROR(collect(db, "SELECT name FROM snapshots WHERE lo > hi OR root != lo",
      [&](Stmt& s) { return name(s) + "bad inode range"; }, problems));
  DZ_RETURN_IF_ERROR(collect(db,
      "SELECT a.name, b.name FROM snapshots a JOIN snapshots b ON a.id < b.id AND a.lo <= b.hi AND b.lo <= a.hi",
      [&](Stmt& s) { return name(s) + "inode range overlaps snapshot " + s.blob(1); }, problems));
  DZ_RETURN_IF_ERROR(collect(db,
      "SELECT s.name FROM snapshots s WHERE NOT EXISTS (SELECT 1 FROM dirents d WHERE d.ino = s.root AND "
      "d.parent = (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'snapshots_dir'))",
      [&](Stmt& s) { return name(s) + "its root is not named in the snapshots folder"; }, problems));
  DZ_RETURN_IF_ERROR(collect(db,
      "SELECT s.name, d.parent, d.ino FROM snapshots s JOIN dirents d ON d.ino BETWEEN s.lo AND s.hi "
      "WHERE d.parent NOT BETWEEN s.lo AND s.hi AND d.ino != s.root",
      [&](Stmt& s) {
        return name(s) + "inode " + std::to_string(s.i64(2)) + " is named from outside it (directory " +
               std::to_string(s.i64(1)) + ")";
      }, problems));
  return collect(db,
      "SELECT s.name, d.parent, d.ino FROM snapshots s JOIN dirents d ON d.parent BETWEEN s.lo AND s.hi "
      "WHERE d.ino NOT BETWEEN s.lo AND s.hi",
      [&](Stmt& s) {
        return name(s) + "directory " + std::to_string(s.i64(1)) + " names inode " + std::to_string(s.i64(2)) +
               " outside it";
      }, problems);
}

static bool is_model_id(const std::string& id) {
  if (id.size() != 32) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// A damaged id is shown escaped: index bytes never reach a terminal as they are.
static std::string printable(const std::string& id) {
  std::string out;
  for (unsigned char c : id) {
    if (c >= 0x21 && c < 0x7f && c != '\\') out += char(c);
    else {
      char b[8];
      snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  return out.empty() ? "(empty)" : out;
}

// Every model the index names (models rows, chunks.model) must load from its file.
static Status check_models(Store& st, FsckReport& r, std::set<std::string>& damaged) {
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> g(st.index.mu);
    Stmt s = st.index.db->prepare(
        "SELECT CAST(id AS TEXT) FROM models UNION SELECT CAST(model AS TEXT) FROM chunks "
        "WHERE model IS NOT NULL AND codec IN (2, 3) AND "
        "(refcount > 0 OR EXISTS (SELECT 1 FROM extents e WHERE e.chunk = chunks.id))");
    while (s.step()) ids.push_back(s.blob(0));
    DZ_RETURN_IF_ERROR(s.done_status());
  }
  for (const std::string& id : ids) {
    std::string why;
    if (!is_model_id(id)) {
      why = "not a model id";  // never used in a path
    } else {
      auto m = codec::Model::load_file(st.dir + "/models/" + id + ".dzm");
      if (!m.ok()) why = m.status().message();
      else if ((*m)->id().hex() != id) why = "the file holds model " + (*m)->id().hex();
    }
    if (why.empty()) continue;
    int64_t n = 0;
    {
      std::lock_guard<std::mutex> g(st.index.mu);
      Stmt c = st.index.db->prepare(
          "SELECT COUNT(*) FROM chunks WHERE CAST(model AS TEXT) = ? AND codec IN (2, 3) AND "
          "(refcount > 0 OR EXISTS (SELECT 1 FROM extents e WHERE e.chunk = chunks.id))");
      c.bind_text(1, id);
      if (c.step()) n = c.i64(0);
    }
    // Not a model id and no live chunk names it: nothing is unreadable because of it (a garbage
    // value the fuzzer can plant in ways a DELETE by value cannot match).
    if (n == 0 && !is_model_id(id)) continue;
    damaged.insert(id);
    const std::string shown = printable(id);
    r.problems.push_back("model " + shown + ": file models/" + shown + ".dzm is damaged or missing (" + why + "); " +
                         std::to_string(n) + " chunks compressed with it cannot be read until it is restored");
  }
  r.damaged_models.assign(damaged.begin(), damaged.end());
  return Status::Ok();
}

// Page-level damage of index.db that no row query sees (a wrong free-list count, orphaned or
// doubly used pages, broken b-tree pages): SQLite's own structural check. The problems are
// prefixed "index file:" (repair_volume rebuilds the file when they remain).
static constexpr const char* kPageProblem = "index file: ";
static Status check_pages(SqliteDb& db, std::vector<std::string>& problems) {
  Stmt q = db.prepare("PRAGMA quick_check(20)");
  while (q.step()) {
    std::string line = q.blob(0);
    if (line == "ok") continue;
    const std::string banner = "*** in database main ***\n";
    if (line.rfind(banner, 0) == 0) line.erase(0, banner.size());
    for (char& ch : line)
      if (ch == '\n') ch = ' ';
    problems.push_back(kPageProblem + line);
  }
  return q.done_status();
}

// Rebuilds index.db (VACUUM copies every row into fresh pages, which drops free-list and
// unused-page damage). VACUUM cannot run inside a transaction: the repair so far is committed
// first (Store::commit makes pack data durable before the index, as always).
static Status rebuild_index_file(Store& st, RepairReport& out) {
  DZ_RETURN_IF_ERROR(st.commit());
  std::lock_guard<std::mutex> g(st.index.mu);
  SqliteDb& db = *st.index.db;
  if (db.in_batch()) DZ_RETURN_IF_ERROR(db.commit_batch());
  Status v = db.exec("VACUUM");
  DZ_RETURN_IF_ERROR(db.begin_batch());
  std::vector<std::string> left;
  if (v.ok()) DZ_RETURN_IF_ERROR(check_pages(db, left));
  if (!v.ok() || !left.empty())
    return Status::Error(EIO, "index.db has page-level damage that rebuilding it does not remove (" +
                                  (v.ok() ? left.front() : v.message()) + "): restore index.db from a backup");
  out.actions.push_back("index.db rebuilt (VACUUM): its page-level damage is gone");
  return Status::Ok();
}

Result<FsckReport> check_volume(Store& st, const FsckOptions& opts) {
  FsckReport r;
  std::set<int64_t> bad_chunks, model_chunks;
  std::set<std::string> damaged_models;
  DZ_RETURN_IF_ERROR(check_models(st, r, damaged_models));
  // Live = a positive refcount or named by an extent: a damaged refcount must not hide a chunk
  // from verification (repair recomputes refcounts, and the chunk must then read).
  std::vector<int64_t> live;
  std::vector<std::string> live_model;
  {
    std::lock_guard<std::mutex> g(st.index.mu);
    SqliteDb& db = *st.index.db;
    auto n = [](Stmt& s, int c) { return std::to_string(s.i64(c)); };
    DZ_RETURN_IF_ERROR(collect(db,
        "SELECT c.id, c.refcount, (SELECT COUNT(*) FROM extents e WHERE e.chunk = c.id) AS n FROM chunks c "
        "WHERE c.refcount != n",
        [&](Stmt& s) { return "chunk " + n(s, 0) + ": refcount " + n(s, 1) + " but " + n(s, 2) + " extents use it"; },
        r.problems));
    DZ_RETURN_IF_ERROR(collect(db,
        "SELECT e.ino, e.off, e.chunk FROM extents e LEFT JOIN chunks c ON c.id = e.chunk WHERE c.id IS NULL",
        [&](Stmt& s) {
          bad_chunks.insert(s.i64(2));
          return path_of_inode(db, uint64_t(s.i64(0))) + ": extent at " + n(s, 1) + " names missing chunk " + n(s, 2);
        },
        r.problems));
    DZ_RETURN_IF_ERROR(collect(db,
        "SELECT e.ino, e.off FROM extents e JOIN chunks c ON c.id = e.chunk WHERE e.chunk_off + e.len > c.raw_len "
        "OR e.len <= 0",
        [&](Stmt& s) { return path_of_inode(db, uint64_t(s.i64(0))) + ": extent at " + n(s, 1) + " lies outside its chunk"; },
        r.problems));
    DZ_RETURN_IF_ERROR(collect(db,
        "SELECT a.ino, a.off FROM extents a JOIN extents b ON a.ino = b.ino AND b.off > a.off AND b.off < a.off + a.len",
        [&](Stmt& s) { return path_of_inode(db, uint64_t(s.i64(0))) + ": overlapping extents at " + n(s, 1); },
        r.problems));
    DZ_RETURN_IF_ERROR(collect(db,
        "SELECT i.ino, i.nlink, " DZ_EXPECTED_NLINK("i") " AS want FROM inodes i WHERE i.nlink != want AND i.nlink > 0",
        [&](Stmt& s) {
          return path_of_inode(db, uint64_t(s.i64(0))) + ": link count " + n(s, 1) + ", expected " + n(s, 2);
        },
        r.problems));
    DZ_RETURN_IF_ERROR(collect(db,
        "SELECT d.parent, d.name, d.ino FROM dirents d LEFT JOIN inodes i ON i.ino = d.ino WHERE i.ino IS NULL",
        [&](Stmt& s) { return "entry " + s.blob(1) + " in directory inode " + n(s, 0) + " names missing inode " + n(s, 2); },
        r.problems));
    DZ_RETURN_IF_ERROR(collect(db,
        "SELECT c.id, COALESCE(c.grp, 0) FROM chunks c LEFT JOIN groups g ON g.id = c.grp WHERE (c.codec = 3 OR c.grp IS NOT NULL) "
        "AND (c.codec != 3 OR g.id IS NULL OR c.grp_off IS NULL OR c.grp_off < 0 OR c.grp_off + c.raw_len > g.raw_len)",
        [&](Stmt& s) {
          bad_chunks.insert(s.i64(0));
          return "chunk " + n(s, 0) + ": not inside its group " + n(s, 1);
        },
        r.problems));
    DZ_RETURN_IF_ERROR(check_snapshots(db, r.problems));
    const size_t before = r.problems.size();
    DZ_RETURN_IF_ERROR(check_pages(db, r.problems));
    r.index_file_damaged = r.problems.size() > before;
    Stmt c = db.prepare("SELECT COUNT(*) FROM inodes");
    if (c.step()) r.inodes_checked = uint64_t(c.i64(0));
    c.reset();
    Stmt l = db.prepare(
        "SELECT id, CASE WHEN codec IN (2, 3) THEN COALESCE(CAST(model AS TEXT), '') ELSE '' END FROM chunks "
        "WHERE refcount > 0 OR EXISTS (SELECT 1 FROM extents e WHERE e.chunk = chunks.id) "
        "ORDER BY COALESCE(grp, 0), grp_off, pack, off");  // a group's members in stream order: decoded once
    while (l.step()) {
      live.push_back(l.i64(0));
      live_model.push_back(l.blob(1));
    }
    DZ_RETURN_IF_ERROR(l.done_status());
  }
  if (opts.verify_data) {
    for (size_t i = 0; i < live.size(); ++i) {
      if (opts.progress && i % 256 == 0) opts.progress(i, live.size());
      auto b = st.chunks.get(live[i]);
      st.chunks.forget_cached(live[i]);
      ++r.chunks_checked;
      if (!b.ok()) {
        // A chunk of a damaged model file is not itself damaged: repair must not drop it. (A
        // chunk naming something that is not a model id has a damaged row: it is a bad chunk.)
        if (damaged_models.count(live_model[i]) && is_model_id(live_model[i])) model_chunks.insert(live[i]);
        else bad_chunks.insert(live[i]);
        r.problems.push_back(b.status().message());
      }
    }
    if (opts.progress) opts.progress(live.size(), live.size());
  }
  r.bad_chunks.assign(bad_chunks.begin(), bad_chunks.end());
  r.model_chunks.assign(model_chunks.begin(), model_chunks.end());
  if (!bad_chunks.empty() || !model_chunks.empty()) {
    std::lock_guard<std::mutex> g(st.index.mu);
    std::set<std::string> files;
    std::set<int64_t> unreadable = bad_chunks;
    unreadable.insert(model_chunks.begin(), model_chunks.end());
    for (int64_t id : unreadable) {
      Stmt s = st.index.db->prepare("SELECT DISTINCT ino FROM extents WHERE chunk = ?");
      s.bind(1, id);
      std::vector<uint64_t> inos;
      while (s.step()) inos.push_back(uint64_t(s.i64(0)));
      s.reset();
      for (uint64_t ino : inos) files.insert(path_of_inode(*st.index.db, ino));
    }
    r.damaged_files.assign(files.begin(), files.end());
  }
  return r;
}


namespace {

Status run_sql(SqliteDb& db, const char* sql, uint64_t* changed) {
  Stmt s = db.prepare(sql);
  DZ_RETURN_IF_ERROR(s.run());
  if (changed) *changed += uint64_t(db.changes());
  return Status::Ok();
}

// Moves every name of `ino` into /lost+found, as <ino>-<name>.
Status move_aside(SqliteDb& db, uint64_t ino, RepairReport& out) {
  uint64_t lf = 0;
  {
    // Names are BLOBs (bytes, not text): bind them as such, or they never compare equal.
    Stmt q = db.prepare("SELECT ino FROM dirents WHERE parent = ? AND name = ?");
    q.bind(1, kRootIno).bind_blob(2, "lost+found");
    if (q.step()) lf = uint64_t(q.i64(0));
  }
  if (!lf) {
    Stmt ins = db.prepare(
        "INSERT INTO inodes(mode, uid, gid, nlink, size, atime_ns, mtime_ns, ctime_ns) "
        "VALUES (16832, 0, 0, 2, 0, 0, 0, 0)");  // 040700
    DZ_RETURN_IF_ERROR(ins.run());
    lf = uint64_t(db.last_rowid());
    Stmt de = db.prepare("INSERT INTO dirents(parent, name, ino) VALUES (?, ?, ?)");
    de.bind(1, kRootIno).bind_blob(2, "lost+found").bind(3, lf);
    DZ_RETURN_IF_ERROR(de.run());
  }
  std::vector<std::pair<int64_t, std::string>> names;
  {
    Stmt q = db.prepare("SELECT id, name FROM dirents WHERE ino = ? AND parent != ?");
    q.bind(1, ino).bind(2, lf);
    while (q.step()) names.emplace_back(q.i64(0), q.blob(1));
    DZ_RETURN_IF_ERROR(q.done_status());
  }
  for (auto& [id, name] : names) {
    std::string aside = std::to_string(ino) + "-" + name.substr(0, 200);
    Stmt u = db.prepare("UPDATE OR REPLACE dirents SET parent = ?, name = ? WHERE id = ?");
    u.bind(1, lf).bind_blob(2, aside).bind(3, id);
    DZ_RETURN_IF_ERROR(u.run());
    out.actions.push_back("moved damaged file " + name + " to /lost+found/" + aside);
  }
  out.files_moved += names.empty() ? 0 : 1;
  return Status::Ok();
}

}  // namespace

// Writes a damaged model file again from the copy built into this dzfs, when it has one.
static Status restore_models(Store& st, const FsckReport& found, RepairReport& out) {
  for (const std::string& id : found.damaged_models) {
    bool restored = false;
    for (auto bytes : embedded_default_models()) {
      auto m = codec::Model::load(bytes);
      if (!m.ok() || (*m)->id().hex() != id) continue;
      auto done = st.models->install(bytes, "", "", ModelRegistry::Activate::kNo);
      if (done.ok()) {
        out.actions.push_back("restored model file models/" + id + ".dzm from the copy built into dzfs");
        ++out.models_restored;
        restored = true;
      } else {
        out.actions.push_back("could not restore model " + id + ": " + done.status().message());
      }
      break;
    }
    if (restored) continue;
    // No live chunk needs it: the row goes (as `dzfs models --retire` would drop it).
    std::lock_guard<std::mutex> g(st.index.mu);
    Stmt d = st.index.db->prepare(
        "DELETE FROM models WHERE COALESCE(CAST(id AS TEXT), '') = ?1 AND NOT EXISTS (SELECT 1 FROM chunks "
        "WHERE CAST(model AS TEXT) = ?1 AND codec IN (2, 3) AND "
        "(refcount > 0 OR EXISTS (SELECT 1 FROM extents e WHERE e.chunk = chunks.id)))");
    d.bind_text(1, id);
    if (Status del = d.run(); !del.ok())
      return Status::Error(EIO, "cannot drop the row of model " + printable(id) + ": " + del.message() +
                                    " (the index is damaged beyond what repair can fix; restore it from a backup)");
    if (st.index.db->changes() > 0) {
      out.actions.push_back("dropped the row of model " + id + ", which no chunk uses and whose file is damaged or missing");
      continue;
    }
    out.actions.push_back("model " + printable(id) + " is not built into this dzfs: its chunks are kept; restore models/" +
                          printable(id) + ".dzm from a backup");
  }
  return Status::Ok();
}

// The row-level repairs, in one savepoint.
static Status repair_rows(Store& st, const FsckReport& found, RepairReport& out) {
  std::lock_guard<std::mutex> g(st.index.mu);
  SqliteDb& db = *st.index.db;
  DZ_RETURN_IF_ERROR(db.exec("SAVEPOINT repair"));
  auto body = [&]() -> Status {
    // 0. Damaged index b-trees answer differently by access path: rebuild them from the tables
    // first, so that every repair statement below sees what the checks saw.
    DZ_RETURN_IF_ERROR(db.exec("REINDEX"));
    // 1. Damaged data: files with extents on unreadable, missing or too-short chunks.
    DZ_RETURN_IF_ERROR(db.exec("CREATE TEMP TABLE IF NOT EXISTS bad_chunk(id INTEGER PRIMARY KEY)"));
    DZ_RETURN_IF_ERROR(db.exec("DELETE FROM bad_chunk"));
    for (int64_t id : found.bad_chunks) {
      Stmt i = db.prepare("INSERT OR IGNORE INTO bad_chunk(id) VALUES (?)");
      i.bind(1, id);
      DZ_RETURN_IF_ERROR(i.run());
    }
    DZ_RETURN_IF_ERROR(db.exec(
        "INSERT OR IGNORE INTO bad_chunk(id) SELECT e.chunk FROM extents e LEFT JOIN chunks c ON c.id = e.chunk "
        "WHERE c.id IS NULL OR e.chunk_off + e.len > c.raw_len OR e.len <= 0"));
    std::vector<uint64_t> damaged;
    {
      Stmt q = db.prepare("SELECT DISTINCT ino FROM extents WHERE chunk IN (SELECT id FROM bad_chunk)");
      while (q.step()) damaged.push_back(uint64_t(q.i64(0)));
      DZ_RETURN_IF_ERROR(q.done_status());
    }
    for (uint64_t ino : damaged) DZ_RETURN_IF_ERROR(move_aside(db, ino, out));
    DZ_RETURN_IF_ERROR(run_sql(db, "DELETE FROM extents WHERE chunk IN (SELECT id FROM bad_chunk)", &out.extents_dropped));
    DZ_RETURN_IF_ERROR(run_sql(db, "DELETE FROM extents WHERE len <= 0", &out.extents_dropped));
    // 2. Overlapping extents: keep the earlier one, drop the later one.
    DZ_RETURN_IF_ERROR(run_sql(db,
        "DELETE FROM extents WHERE (ino, off) IN (SELECT b.ino, b.off FROM extents a JOIN extents b "
        "ON a.ino = b.ino AND b.off > a.off AND b.off < a.off + a.len)", &out.extents_dropped));
    // 3. Names of missing inodes, then link counts (dirs: entries + "." + subdirectories' "..").
    DZ_RETURN_IF_ERROR(run_sql(db,
        // The same join as the check: a damaged ino of another type must match it too.
        "DELETE FROM dirents WHERE id IN (SELECT d.id FROM dirents d LEFT JOIN inodes i ON i.ino = d.ino "
        "WHERE i.ino IS NULL)", &out.names_dropped));
    DZ_RETURN_IF_ERROR(run_sql(db,
        "UPDATE inodes SET nlink = " DZ_EXPECTED_NLINK("inodes") " WHERE nlink != " DZ_EXPECTED_NLINK("inodes"), &out.nlinks_fixed));
    // 4. Reference counts, data_bytes; unreadable chunks are gone for good.
    DZ_RETURN_IF_ERROR(run_sql(db,
        "UPDATE chunks SET refcount = (SELECT COUNT(*) FROM extents e WHERE e.chunk = chunks.id) "
        "WHERE refcount != (SELECT COUNT(*) FROM extents e WHERE e.chunk = chunks.id)", &out.refcounts_fixed));
    DZ_RETURN_IF_ERROR(run_sql(db, "DELETE FROM chunks WHERE id IN (SELECT id FROM bad_chunk)", nullptr));
    DZ_RETURN_IF_ERROR(run_sql(db,
        "UPDATE inodes SET data_bytes = (SELECT COALESCE(SUM(len), 0) FROM extents e WHERE e.ino = inodes.ino)", nullptr));
    return Status::Ok();
  };
  Status s = body();
  if (!s.ok()) {
    db.exec("ROLLBACK TO repair");
    db.exec("RELEASE repair");
    return s;
  }
  DZ_RETURN_IF_ERROR(db.exec("RELEASE repair"));
  if (out.extents_dropped) out.actions.push_back(std::to_string(out.extents_dropped) + " damaged extents became holes");
  if (out.refcounts_fixed) out.actions.push_back(std::to_string(out.refcounts_fixed) + " chunk reference counts fixed");
  if (out.nlinks_fixed) out.actions.push_back(std::to_string(out.nlinks_fixed) + " link counts fixed");
  if (out.names_dropped) out.actions.push_back(std::to_string(out.names_dropped) + " names of missing inodes removed");
  return Status::Ok();
}

Result<RepairReport> repair_volume(Store& st, const FsckReport& found) {
  RepairReport out;
  DZ_RETURN_IF_ERROR(restore_models(st, found, out));  // before IndexDb::mu: install takes it
  DZ_RETURN_IF_ERROR(repair_rows(st, found, out));
  if (found.index_file_damaged) {
    std::vector<std::string> left;
    {
      std::lock_guard<std::mutex> g(st.index.mu);
      DZ_RETURN_IF_ERROR(check_pages(*st.index.db, left));  // REINDEX may have fixed them
    }
    if (!left.empty()) DZ_RETURN_IF_ERROR(rebuild_index_file(st, out));
  }
  return out;
}

}  // namespace dzfs
