// Snapshot scale benchmark (issue 16): files per second of snapshot, usage count, delete and
// prune, and what a snapshot adds to the index, for a tree of N files (default 1,000,000).
//
//   snapshot_bench [--files N] [--per-dir K] [--dir PATH] [--snapshots S]
//
// The tree is written straight into a new volume's index (inodes, names, one extent per file
// over a pool of chunk rows), so the figures are those of the index work a snapshot is; nothing
// here is a mount. Built by CMake, not run by the test command.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "index/prune.h"
#include "index/schema.h"
#include "index/snapshots.h"
#include "index/store.h"

using namespace dzfs;
using Clock = std::chrono::steady_clock;

namespace {

double secs_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void die(const Status& s, const char* what) {
  if (s.ok()) return;
  fprintf(stderr, "snapshot_bench: %s: %s\n", what, s.message().c_str());
  exit(1);
}

// N files in directories of K under /tree, each with one extent naming one of 4096 chunks.
void populate(Store& st, uint64_t files, uint64_t per_dir) {
  SqliteDb& db = *st.index.db;
  std::lock_guard<std::mutex> g(st.index.mu);
  die(db.exec("INSERT INTO chunks(id, hash, raw_len, refcount, pack, off, stored_len, codec, created) "
              "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 4096) "
              "SELECT i, randomblob(16), 65536, 0, 1, i * 70000, 20000, 1, 0 FROM c"), "chunks");
  die(db.exec("INSERT INTO inodes(ino, mode, uid, gid, nlink, size, atime_ns, mtime_ns, ctime_ns) "
              "VALUES (2, 16877, 0, 0, 2, 0, 0, 0, 0); INSERT INTO dirents(parent, name, ino) VALUES (1, 'tree', 2)"),
      "tree");
  const uint64_t dirs = (files + per_dir - 1) / per_dir;
  Stmt d = db.prepare("INSERT INTO inodes(ino, mode, uid, gid, nlink, size, atime_ns, mtime_ns, ctime_ns) "
                      "VALUES (?, 16877, 0, 0, 2, 0, 1, 1, 1)");
  Stmt n = db.prepare("INSERT INTO dirents(parent, name, ino) VALUES (?, ?, ?)");
  Stmt f = db.prepare("INSERT INTO inodes(ino, mode, uid, gid, nlink, size, data_bytes, atime_ns, mtime_ns, ctime_ns) "
                      "VALUES (?, 33188, 1000, 1000, 1, 65536, 65536, 1, 1, 1)");
  Stmt e = db.prepare("INSERT INTO extents(ino, off, len, chunk, chunk_off) VALUES (?, 0, 65536, ?, 0)");
  uint64_t ino = 3;
  for (uint64_t i = 0; i < dirs; ++i) {
    const uint64_t dir = ino++;
    d.bind(1, dir);
    die(d.run(), "dir");
    d.reset();
    char name[32];
    snprintf(name, sizeof name, "d%06llu", (unsigned long long)i);
    n.bind(1, uint64_t(2)).bind_blob(2, name).bind(3, dir);
    die(n.run(), "dirent");
    n.reset();
    for (uint64_t j = 0; j < per_dir && i * per_dir + j < files; ++j) {
      const uint64_t fi = ino++;
      f.bind(1, fi);
      die(f.run(), "file");
      f.reset();
      snprintf(name, sizeof name, "file-%06llu.dat", (unsigned long long)j);
      n.bind(1, dir).bind_blob(2, name).bind(3, fi);
      die(n.run(), "dirent");
      n.reset();
      e.bind(1, fi).bind(2, int64_t(1 + fi % 4096));
      die(e.run(), "extent");
      e.reset();
    }
  }
  die(db.exec("UPDATE inodes SET nlink = 2 + (SELECT COUNT(*) FROM dirents d JOIN inodes c ON c.ino = d.ino "
              "WHERE d.parent = inodes.ino AND (c.mode & 61440) = 16384) WHERE (mode & 61440) = 16384"), "nlink");
  die(db.exec("UPDATE chunks SET refcount = (SELECT COUNT(*) FROM extents e WHERE e.chunk = chunks.id)"), "refcount");
}

uint64_t index_bytes(Store& st) {
  std::lock_guard<std::mutex> g(st.index.mu);
  Stmt s = st.index.db->prepare("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()");
  return s.step() ? uint64_t(s.i64(0)) : 0;
}

uint64_t file_bytes(const std::string& p) {
  std::error_code ec;
  auto n = std::filesystem::file_size(p, ec);
  return ec ? 0 : uint64_t(n);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t files = 1000000, per_dir = 1000, snaps = 3;
  std::string base = "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--files") files = strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--per-dir") per_dir = strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--dir") base = argv[i + 1];
    else if (a == "--snapshots") snaps = strtoull(argv[i + 1], nullptr, 10);
    else return fprintf(stderr, "usage: snapshot_bench [--files N] [--per-dir K] [--dir PATH] [--snapshots S]\n"), 2;
  }
  if (files == 0 || per_dir == 0 || snaps == 0) return fprintf(stderr, "snapshot_bench: counts must be positive\n"), 2;
  const std::string dir = base + "/snapshot_bench." + std::to_string(getpid());
  die(Store::mkfs(dir, StoreConfig{}), "mkfs");
  auto opened = Store::open(dir, StoreOptions{});
  die(opened.status(), "open");
  Store& st = **opened;
  auto t = Clock::now();
  populate(st, files, per_dir);
  die(st.commit(), "commit");
  printf("tree: %llu files in %llu directories, written in %.1f s; index %.1f MB\n", (unsigned long long)files,
         (unsigned long long)((files + per_dir - 1) / per_dir), secs_since(t), index_bytes(st) / 1e6);

  std::vector<std::string> names;
  for (uint64_t k = 0; k < snaps; ++k) {
    const uint64_t before = index_bytes(st);
    t = Clock::now();
    Result<SnapshotInfo> info = Status::Error(EIO, "not run");
    {
      std::lock_guard<std::mutex> g(st.index.mu);
      info = create_snapshot_locked(*st.index.db, 2, "s" + std::to_string(k), int64_t(k + 1) * 3600 * 1000000000LL);
    }
    die(info.status(), "snapshot");
    const double made = secs_since(t);
    die(st.commit(), "commit");
    const double total = secs_since(t);
    names.push_back(info->name);
    printf("snapshot %llu: %.2f s (%.2f s with the commit), %.0f files/s; index +%.1f MB (%.1f MB per million files)\n",
           (unsigned long long)k + 1, made, total, files / total, (index_bytes(st) - before) / 1e6,
           (index_bytes(st) - before) / 1e6 * 1e6 / double(files));
  }
  t = Clock::now();
  {
    std::lock_guard<std::mutex> g(st.index.mu);
    auto u = snapshot_usage_locked(*st.index.db, *find_snapshot_locked(*st.index.db, names[0]));
    die(u.status(), "usage");
    printf("dzfs snapshots (usage of one): %.2f s, %llu files, %llu bytes only there\n", secs_since(t),
           (unsigned long long)u->files, (unsigned long long)u->exclusive_stored);
  }
  // Prune: keep the newest, delete the others in one change (what dzfs prune --keep-last 1 does).
  std::vector<PruneItem> items;
  for (uint64_t k = 0; k < names.size(); ++k) items.push_back({names[k], int64_t(k + 1) * 3600 * 1000000000LL});
  PruneRules rules;
  rules.last = 1;
  auto plan = plan_prune(items, rules, int64_t(names.size() + 1) * 3600 * 1000000000LL);
  die(plan.status(), "plan");
  std::vector<std::string> doomed;
  for (auto& v : *plan)
    if (!v.keep) doomed.push_back(v.name);
  t = Clock::now();
  if (!doomed.empty()) {
    {
      std::lock_guard<std::mutex> g(st.index.mu);
      die(delete_snapshots_locked(*st.index.db, doomed, nullptr), "prune");
    }
    die(st.commit(), "commit");
    const double s = secs_since(t);
    printf("prune --keep-last 1: %zu snapshots deleted in %.2f s, %.0f files/s\n", doomed.size(), s,
           double(files) * double(doomed.size()) / s);
  }
  t = Clock::now();
  {
    std::lock_guard<std::mutex> g(st.index.mu);
    die(delete_snapshots_locked(*st.index.db, {names.back()}, nullptr), "delete");
  }
  die(st.commit(), "commit");
  printf("delete of the last: %.2f s, %.0f files/s\n", secs_since(t), files / secs_since(t));
  opened->reset();  // a clean close packs the index at rest
  const double bare = file_bytes(dir + "/index.db.zst") / 1e6;
  opened = Store::open(dir, StoreOptions{});
  die(opened.status(), "reopen");
  {
    std::lock_guard<std::mutex> g((*opened)->index.mu);
    die(create_snapshot_locked(*(*opened)->index.db, 2, "kept", 1).status(), "snapshot");
  }
  die((*opened)->commit(), "commit");
  opened->reset();
  const double one = file_bytes(dir + "/index.db.zst") / 1e6;
  printf("index at rest: %.1f MB without a snapshot, %.1f MB with one (+%.1f MB per million files)\n", bare, one,
         (one - bare) * 1e6 / double(files));
  std::filesystem::remove_all(dir);
  return 0;
}
