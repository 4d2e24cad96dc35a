// Volume check: see fsck.h. Each query below tests one invariant written in schema.cc.
#include "index/fsck.h"

#include <set>

#include "index/schema.h"

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

Result<FsckReport> check_volume(Store& st, const FsckOptions& opts) {
  FsckReport r;
  std::set<int64_t> bad_chunks;
  std::vector<int64_t> live;
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
        "SELECT i.ino, i.nlink, (SELECT COUNT(*) FROM dirents d WHERE d.ino = i.ino) + "
        "CASE WHEN (i.mode & 61440) = 16384 THEN 1 + (SELECT COUNT(*) FROM dirents d JOIN inodes c ON c.ino = d.ino "
        "WHERE d.parent = i.ino AND (c.mode & 61440) = 16384) ELSE 0 END + (i.ino = 1) AS want "
        "FROM inodes i WHERE i.nlink != want AND i.nlink > 0",
        [&](Stmt& s) {
          return path_of_inode(db, uint64_t(s.i64(0))) + ": link count " + n(s, 1) + ", expected " + n(s, 2);
        },
        r.problems));
    DZ_RETURN_IF_ERROR(collect(db,
        "SELECT d.parent, d.name, d.ino FROM dirents d LEFT JOIN inodes i ON i.ino = d.ino WHERE i.ino IS NULL",
        [&](Stmt& s) { return "entry " + s.blob(1) + " in directory inode " + n(s, 0) + " names missing inode " + n(s, 2); },
        r.problems));
    Stmt c = db.prepare("SELECT COUNT(*) FROM inodes");
    if (c.step()) r.inodes_checked = uint64_t(c.i64(0));
    c.reset();
    Stmt l = db.prepare("SELECT id FROM chunks WHERE refcount > 0 ORDER BY pack, off");
    while (l.step()) live.push_back(l.i64(0));
    DZ_RETURN_IF_ERROR(l.done_status());
  }
  if (opts.verify_data) {
    for (size_t i = 0; i < live.size(); ++i) {
      if (opts.progress && i % 256 == 0) opts.progress(i, live.size());
      auto b = st.chunks.get(live[i]);
      st.chunks.forget_cached(live[i]);
      ++r.chunks_checked;
      if (!b.ok()) {
        bad_chunks.insert(live[i]);
        r.problems.push_back(b.status().message());
      }
    }
    if (opts.progress) opts.progress(live.size(), live.size());
  }
  if (!bad_chunks.empty()) {
    std::lock_guard<std::mutex> g(st.index.mu);
    std::set<std::string> files;
    for (int64_t id : bad_chunks) {
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

}  // namespace dzfs
