// Snapshots (index/snapshots.h) through Volume, without mounts: a snapshot equals its source as
// it was (every entry kind, hard links, xattrs, times), stays so while the live tree changes and
// across a reopen, refuses every change with EROFS, keeps refcounts exact, announces what its
// deletion frees and frees exactly that, and lets the kernel keep inodes it still holds.
#define FUSE_USE_VERSION 314
#include "index/snapshots.h"

#include <fcntl.h>
#include <fuse3/fuse_lowlevel.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <map>
#include <string>
#include <vector>

#include "fs/volume.h"
#include "index/fsck.h"
#include "index/gc.h"
#include "index/schema.h"
#include "index/stats.h"
#include "tests/unit/test_util.h"

namespace dzfs {
namespace {

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path() + "/store";
    store_ = test::make_store(dir_);
    ASSERT_TRUE(store_);
    vol_ = std::make_unique<Volume>(*store_, VolumeOptions{});
  }
  void remount() {
    vol_.reset();
    store_.reset();
    store_ = test::open_store(dir_);
    ASSERT_TRUE(store_);
    vol_ = std::make_unique<Volume>(*store_, VolumeOptions{});
  }
  uint64_t node(uint64_t parent, const std::string& name, uint32_t mode, uint64_t rdev = 0) {
    struct stat st {};
    Status s = S_ISDIR(mode) ? vol_->mkdir(parent, name, mode & 07777, {}, st) : vol_->mknod(parent, name, mode, rdev, {}, st);
    EXPECT_TRUE(s.ok()) << name << ": " << s.message();
    return st.st_ino;
  }
  uint64_t file(uint64_t parent, const std::string& name, const std::string& data) {
    uint64_t ino = node(parent, name, S_IFREG | 0644);
    EXPECT_TRUE(vol_->open(ino, O_WRONLY).ok());
    EXPECT_TRUE(vol_->write(ino, 0, data.data(), data.size()).ok());
    EXPECT_TRUE(vol_->release(ino, O_WRONLY).ok());
    return ino;
  }
  uint64_t lookup(uint64_t parent, const std::string& name) {
    struct stat st {};
    Status s = vol_->lookup(parent, name, st);
    EXPECT_TRUE(s.ok()) << name << ": " << s.message();
    return st.st_ino;
  }
  uint64_t path(const std::string& p) {
    std::lock_guard<std::mutex> g(store_->index.mu);
    auto r = resolve_path_locked(*store_->index.db, p);
    EXPECT_TRUE(r.ok()) << p << ": " << r.status().message();
    return r.ok() ? *r : 0;
  }
  SnapshotInfo snap(const std::string& source, const std::string& name) {
    auto r = vol_->snapshot(source, name);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : SnapshotInfo{};
  }
  // Everything rsync -aHAX compares, per path under `root`, with hard links as groups of paths.
  std::map<std::string, std::string> tree(uint64_t root) {
    std::map<std::string, std::string> out;
    std::map<uint64_t, std::string> first_name;
    std::vector<std::pair<uint64_t, std::string>> todo = {{root, ""}};
    while (!todo.empty()) {
      auto [dir, prefix] = todo.back();
      todo.pop_back();
      std::vector<DirEntry> ents;
      EXPECT_TRUE(vol_->readdir(dir, 0, 100000, true, ents).ok());
      for (auto& e : ents) {
        if (e.name == "." || e.name == ".." || (dir == kRootIno && e.name == kSnapshotsDirName)) continue;
        const std::string p = prefix + "/" + e.name;
        struct stat st {};
        EXPECT_TRUE(vol_->getattr(e.ino, st).ok());
        std::string d = std::to_string(st.st_mode) + " " + std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid) +
                        " n" + std::to_string(st.st_nlink) + " s" + std::to_string(st.st_size) + " r" +
                        std::to_string(st.st_rdev) + " m" + std::to_string(st.st_mtim.tv_sec) + "." +
                        std::to_string(st.st_mtim.tv_nsec);
        std::string xl;
        EXPECT_TRUE(vol_->listxattr(e.ino, xl).ok());
        for (size_t i = 0; i < xl.size();) {
          std::string n = xl.c_str() + i, v;
          EXPECT_TRUE(vol_->getxattr(e.ino, n, v).ok());
          d += " x[" + n + "=" + v + "]";
          i += n.size() + 1;
        }
        if (S_ISREG(st.st_mode)) {
          std::string data;
          EXPECT_TRUE(vol_->read(e.ino, 0, size_t(st.st_size), data).ok());
          d += " h" + std::to_string(std::hash<std::string>{}(data));
        }
        if (S_ISLNK(st.st_mode)) {
          std::string t;
          EXPECT_TRUE(vol_->readlink(e.ino, t).ok());
          d += " ->" + t;
        }
        if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
          auto [it, fresh] = first_name.emplace(e.ino, p);
          if (!fresh) d += " link-of " + it->second;
        }
        out[p] = d;
        if (S_ISDIR(st.st_mode)) todo.push_back({e.ino, p});
      }
    }
    return out;
  }
  void expect_refcounts_exact() {
    EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks c WHERE c.refcount != "
                                     "(SELECT COUNT(*) FROM extents e WHERE e.chunk = c.id)"), 0);
  }
  void expect_fsck_clean() {
    ASSERT_TRUE(vol_->commit().ok());
    auto r = check_volume(*store_);
    ASSERT_TRUE(r.ok()) << r.status().message();
    for (auto& p : r->problems) ADD_FAILURE() << p;
  }
  // A tree with every entry kind: files with data, an empty file, a hole, a directory tree, a
  // symlink, a fifo, a device, xattrs, hard links inside the tree and one from outside it.
  uint64_t build_tree() {
    uint64_t src = node(kRootIno, "src", S_IFDIR | 0750);
    uint64_t sub = node(src, "sub", S_IFDIR | 0700);
    node(sub, "deeper", S_IFDIR | 0755);
    a_ = file(src, "a.txt", test::text_bytes(300000, 1));
    file(sub, "b.bin", test::random_bytes(150000, 2));
    file(src, "empty", "");
    uint64_t holey = node(src, "holey", S_IFREG | 0600);
    EXPECT_TRUE(vol_->open(holey, O_WRONLY).ok());
    EXPECT_TRUE(vol_->write(holey, 5u << 20, "end", 3).ok());
    EXPECT_TRUE(vol_->release(holey, O_WRONLY).ok());
    struct stat st {};
    EXPECT_TRUE(vol_->symlink(src, "link", "sub/b.bin", {}, st).ok());
    node(src, "fifo", S_IFIFO | 0644);
    node(sub, "dev", S_IFCHR | 0600, makedev(1, 3));
    EXPECT_TRUE(vol_->setxattr(a_, "user.comment", "hello", 0).ok());
    EXPECT_TRUE(vol_->setxattr(src, "user.dir", std::string("\0\1\2", 3), 0).ok());
    EXPECT_TRUE(vol_->link(a_, sub, "a-again", st).ok());
    EXPECT_TRUE(vol_->link(a_, kRootIno, "a-outside", st).ok());  // a link the snapshot does not see
    struct stat in {}, out {};
    in.st_uid = 1234;
    in.st_gid = 99;
    EXPECT_TRUE(vol_->setattr(a_, in, FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID, out).ok());
    return src;
  }

  test::TempDir tmp_;
  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Volume> vol_;
  uint64_t a_ = 0;
};

TEST_F(SnapshotTest, EqualsTheSourceAsItWasAndStaysSo) {
  uint64_t src = build_tree();
  auto before = tree(src);
  SnapshotInfo s = snap("/src", "monday");
  EXPECT_EQ(s.source, "/src");
  EXPECT_EQ(path("/.snapshots/monday"), s.root);
  auto copy = tree(s.root);
  // Hard links: a.txt has three names, two inside the tree; the snapshot's copy has two.
  for (auto& [p, d] : before) {
    std::string want = d;
    if (p == "/a.txt" || p == "/sub/a-again") want.replace(want.find(" n3 "), 4, " n2 ");
    EXPECT_EQ(copy[p], want) << p;
  }
  EXPECT_EQ(copy.size(), before.size());
  EXPECT_NE(copy["/sub/a-again"].find("link-of /a.txt"), std::string::npos) << copy["/sub/a-again"];
  expect_refcounts_exact();
  expect_fsck_clean();

  // Change the live tree every way; the snapshot does not move.
  const std::string changed = test::text_bytes(200000, 7);
  ASSERT_TRUE(vol_->open(a_, O_WRONLY | O_TRUNC).ok());
  ASSERT_TRUE(vol_->write(a_, 0, changed.data(), changed.size()).ok());
  ASSERT_TRUE(vol_->release(a_, O_WRONLY).ok());
  ASSERT_TRUE(vol_->unlink(lookup(src, "sub"), "b.bin").ok());
  ASSERT_TRUE(vol_->setxattr(src, "user.dir", "new", 0).ok());
  ASSERT_TRUE(vol_->rename(src, "empty", kRootIno, "moved-out", 0).ok());
  file(src, "new-file", "new");
  EXPECT_EQ(tree(s.root), copy);
  remount();
  EXPECT_EQ(tree(path("/.snapshots/monday")), copy);
  expect_refcounts_exact();
  expect_fsck_clean();
}

TEST_F(SnapshotTest, EveryChangeInsideIsReadOnly) {
  build_tree();
  SnapshotInfo s = snap("/src", "ro");
  const uint64_t folder = path("/.snapshots"), root = s.root;
  const uint64_t f = lookup(root, "a.txt"), sub = lookup(root, "sub");
  struct stat st {}, in {};
  auto erofs = [](const Status& x) { return x.code() == EROFS; };
  EXPECT_TRUE(erofs(vol_->open(f, O_WRONLY)));
  EXPECT_TRUE(erofs(vol_->open(f, O_RDWR)));
  EXPECT_TRUE(erofs(vol_->open(f, O_RDONLY | O_TRUNC)));
  EXPECT_TRUE(vol_->open(f, O_RDONLY).ok());
  EXPECT_TRUE(vol_->release(f, O_RDONLY).ok());
  EXPECT_TRUE(erofs(vol_->write(f, 0, "x", 1)));
  in.st_size = 0;
  EXPECT_TRUE(erofs(vol_->setattr(f, in, FUSE_SET_ATTR_SIZE, st)));
  in.st_mode = 0777;
  EXPECT_TRUE(erofs(vol_->setattr(f, in, FUSE_SET_ATTR_MODE, st)));
  EXPECT_TRUE(erofs(vol_->setattr(root, in, FUSE_SET_ATTR_MTIME_NOW, st)));
  EXPECT_TRUE(erofs(vol_->fallocate(f, 0, 0, 1 << 20)));
  EXPECT_TRUE(erofs(vol_->setxattr(f, "user.x", "y", 0)));
  EXPECT_TRUE(erofs(vol_->removexattr(f, "user.comment")));
  EXPECT_TRUE(erofs(vol_->mknod(sub, "n", S_IFREG | 0644, 0, {}, st)));
  EXPECT_TRUE(erofs(vol_->mkdir(root, "d", 0755, {}, st)));
  EXPECT_TRUE(erofs(vol_->symlink(root, "l", "x", {}, st)));
  EXPECT_TRUE(erofs(vol_->link(f, root, "l2", st)));
  EXPECT_TRUE(erofs(vol_->link(f, kRootIno, "steal", st)));  // would change the snapshot's link count
  EXPECT_TRUE(erofs(vol_->unlink(root, "a.txt")));
  EXPECT_TRUE(erofs(vol_->rmdir(sub, "deeper")));
  EXPECT_TRUE(erofs(vol_->rename(root, "a.txt", root, "b", 0)));
  EXPECT_TRUE(erofs(vol_->rename(root, "a.txt", kRootIno, "out", 0)));
  EXPECT_TRUE(erofs(vol_->rename(kRootIno, "a-outside", root, "in", 0)));
  // The snapshots folder: no entry made, removed or renamed by hand; it cannot go either.
  EXPECT_TRUE(erofs(vol_->mkdir(folder, "fake", 0755, {}, st)));
  EXPECT_TRUE(erofs(vol_->rmdir(folder, "ro")));
  EXPECT_TRUE(erofs(vol_->rename(folder, "ro", folder, "renamed", 0)));
  EXPECT_TRUE(erofs(vol_->rmdir(kRootIno, kSnapshotsDirName)));
  EXPECT_TRUE(erofs(vol_->rename(kRootIno, kSnapshotsDirName, kRootIno, "x", 0)));
  EXPECT_TRUE(erofs(vol_->rename(kRootIno, "src", kRootIno, kSnapshotsDirName, 0)));
  EXPECT_TRUE(erofs(vol_->setxattr(folder, "user.x", "y", 0)));
  remount();  // the frozen set comes back from the index
  EXPECT_TRUE(erofs(vol_->open(path("/.snapshots/ro/a.txt"), O_WRONLY)));
  EXPECT_TRUE(erofs(vol_->unlink(path("/.snapshots/ro"), "a.txt")));
}

TEST_F(SnapshotTest, RootSnapshotsLeaveOutSnapshotsAndNamesAreChecked) {
  build_tree();
  snap("/", "first");
  SnapshotInfo second = snap("", "second");
  // The second snapshot of the root does not hold the first (nor the snapshots folder).
  struct stat st {};
  EXPECT_EQ(vol_->lookup(second.root, kSnapshotsDirName, st).code(), ENOENT);
  EXPECT_EQ(tree(second.root), tree(kRootIno));
  EXPECT_EQ(vol_->snapshot("/", "second").status().code(), EEXIST);
  EXPECT_EQ(vol_->snapshot("/.snapshots/first", "x").status().code(), EROFS);
  EXPECT_EQ(vol_->snapshot("/src/a.txt", "x").status().code(), ENOTDIR);
  EXPECT_EQ(vol_->snapshot("/nope", "x").status().code(), ENOENT);
  for (const char* bad : {"", ".", "..", "a/b"}) EXPECT_EQ(vol_->snapshot("/", bad).status().code(), EINVAL) << bad;
  EXPECT_EQ(vol_->snapshot("/", std::string(256, 'n')).status().code(), EINVAL);
  EXPECT_TRUE(vol_->snapshot("/", std::string(255, 'n')).ok());
  expect_fsck_clean();
}

TEST_F(SnapshotTest, AFolderTheUserMadeIsNotTakenOver) {
  node(kRootIno, kSnapshotsDirName, S_IFDIR | 0755);
  auto r = vol_->snapshot("/", "x");
  EXPECT_EQ(r.status().code(), EEXIST);
  EXPECT_NE(r.status().message().find("rename it"), std::string::npos) << r.status().message();
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM snapshots"), 0);
}

TEST_F(SnapshotTest, DeleteFreesExactlyWhatWasAnnounced) {
  uint64_t src = build_tree();
  SnapshotInfo s = snap("/src", "old");
  SnapshotUsage u0;
  {
    std::lock_guard<std::mutex> g(store_->index.mu);
    u0 = *snapshot_usage_locked(*store_->index.db, s);
  }
  EXPECT_EQ(u0.exclusive_chunks, 0u);  // everything is shared with the live tree
  EXPECT_EQ(u0.files, 4u);             // a.txt (a-again is a.txt), b.bin, empty, holey
  EXPECT_EQ(u0.dirs, 3u);
  // Overwrite and delete live files: their old chunks are now the snapshot's alone.
  const std::string fresh = test::random_bytes(100000, 9);
  ASSERT_TRUE(vol_->open(a_, O_WRONLY | O_TRUNC).ok());
  ASSERT_TRUE(vol_->write(a_, 0, fresh.data(), fresh.size()).ok());
  ASSERT_TRUE(vol_->release(a_, O_WRONLY).ok());
  const uint64_t b = lookup(lookup(src, "sub"), "b.bin");
  ASSERT_TRUE(vol_->unlink(lookup(src, "sub"), "b.bin").ok());
  vol_->forget(b, 3);  // the lookups of its creation and of this test: the inode goes
  ASSERT_TRUE(vol_->commit().ok());
  SnapshotUsage u;
  {
    std::lock_guard<std::mutex> g(store_->index.mu);
    u = *snapshot_usage_locked(*store_->index.db, s);
  }
  EXPECT_GT(u.exclusive_chunks, 2u);
  EXPECT_GE(u.exclusive_raw, 300000u + 150000u);
  auto before = compute_stats(*store_);
  ASSERT_TRUE(before.ok());
  std::vector<SnapshotInfo> gone;
  ASSERT_TRUE(vol_->delete_snapshots({"old"}, gone).ok());
  ASSERT_EQ(gone.size(), 1u);
  auto after = compute_stats(*store_);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(before->stored_bytes - after->stored_bytes, u.exclusive_stored);
  EXPECT_EQ(before->unique_chunk_bytes - after->unique_chunk_bytes, u.exclusive_raw);
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM inodes WHERE ino BETWEEN " + std::to_string(s.lo) +
                                       " AND " + std::to_string(s.hi)), 0);
  expect_refcounts_exact();
  expect_fsck_clean();
  // gc reclaims the chunks (two passes: a chunk must be garbage at two of them).
  std::set<int64_t> seen;
  GcOptions go;
  go.previous_garbage = &seen;
  ASSERT_TRUE(collect_garbage(*store_, go).ok());
  auto r = collect_garbage(*store_, go);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->chunks_deleted, u.exclusive_chunks);
  EXPECT_EQ(tree(src).count("/a.txt"), 1u);
}

TEST_F(SnapshotTest, InodesTheKernelHoldsOutliveTheirSnapshot) {
  build_tree();
  SnapshotInfo s = snap("/src", "held");
  const uint64_t f = lookup(s.root, "a.txt");  // the kernel looked it up: nlookup 1
  ASSERT_TRUE(vol_->open(f, O_RDONLY).ok());
  std::vector<SnapshotInfo> gone;
  ASSERT_TRUE(vol_->delete_snapshots({"held"}, gone).ok());
  std::string data;
  ASSERT_TRUE(vol_->read(f, 0, 1 << 20, data).ok());  // still readable through its handle
  EXPECT_EQ(data, test::text_bytes(300000, 1));
  struct stat st {};
  EXPECT_EQ(vol_->lookup(kRootIno, "src", st).code(), 0);
  EXPECT_EQ(test::sql_i64(*store_, "SELECT nlink FROM inodes WHERE ino = " + std::to_string(f)), 0);
  expect_refcounts_exact();
  ASSERT_TRUE(vol_->release(f, O_RDONLY).ok());
  vol_->forget(f, 1);
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM inodes WHERE ino = " + std::to_string(f)), 0);
  expect_refcounts_exact();
  expect_fsck_clean();
}

TEST_F(SnapshotTest, DeletingSeveralIsAllOrNothing) {
  build_tree();
  snap("/src", "a");
  snap("/src", "b");
  std::vector<SnapshotInfo> gone;
  EXPECT_EQ(vol_->delete_snapshots({"a", "missing", "b"}, gone).code(), ENOENT);
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM snapshots"), 2);
  ASSERT_TRUE(vol_->delete_snapshots({"a", "b"}, gone).ok());
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM snapshots"), 0);
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM dirents WHERE parent = " + std::to_string(path("/.snapshots"))), 0);
  EXPECT_EQ(test::sql_i64(*store_, "SELECT nlink FROM inodes WHERE ino = " + std::to_string(path("/.snapshots"))), 2);
  expect_refcounts_exact();
  expect_fsck_clean();
  // Inode numbers are never reused: a new snapshot lies above every number handed out before.
  SnapshotInfo c = snap("/src", "c");
  EXPECT_GT(c.lo, test::sql_i64(*store_, "SELECT MAX(ino) FROM inodes WHERE ino < " + std::to_string(c.lo)));
  uint64_t later = file(kRootIno, "later", "x");
  EXPECT_GT(later, c.hi);
  EXPECT_FALSE(vol_->frozen(later));
}

// A name given twice (dzfs snapshot --delete STORE a a) deletes the snapshot once: the second
// pass must not lower the snapshots folder's link count again.
TEST_F(SnapshotTest, ANameGivenTwiceIsDeletedOnce) {
  build_tree();
  snap("/src", "a");
  snap("/src", "b");
  std::vector<SnapshotInfo> gone;
  ASSERT_TRUE(vol_->delete_snapshots({"a", "a"}, gone).ok());
  EXPECT_EQ(gone.size(), 1u);
  EXPECT_EQ(test::sql_i64(*store_, "SELECT nlink FROM inodes WHERE ino = " + std::to_string(path("/.snapshots"))), 3);
  {
    std::lock_guard<std::mutex> g(store_->index.mu);
    ASSERT_TRUE(delete_snapshots_locked(*store_->index.db, {"b", "b"}, nullptr).ok());  // the offline path
  }
  EXPECT_EQ(test::sql_i64(*store_, "SELECT nlink FROM inodes WHERE ino = " + std::to_string(path("/.snapshots"))), 2);
  expect_refcounts_exact();
  expect_fsck_clean();
}

// A snapshot of a small directory costs work in the size of that directory, not of the volume:
// counted in SQLite virtual-machine steps (a progress handler), which do not depend on the
// machine's load. The volume gets 50k rows each of dirents, xattrs and extents elsewhere.
TEST_F(SnapshotTest, ASmallTreeIsCopiedInTimeOfItsOwnSize) {
  uint64_t small = node(kRootIno, "small", S_IFDIR | 0755);
  file(small, "f", "data");
  uint64_t big = node(kRootIno, "big", S_IFDIR | 0755);
  ASSERT_TRUE(vol_->commit().ok());
  const uint64_t chunk = uint64_t(test::sql_i64(*store_, "SELECT MIN(id) FROM chunks"));
  test::sql_exec(*store_,
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000) "
      "INSERT INTO inodes(ino, mode, uid, gid, nlink, size, atime_ns, mtime_ns, ctime_ns) "
      "SELECT 1000000 + i, 33188, 0, 0, 1, 4, 0, 0, 0 FROM n;"
      "INSERT INTO dirents(parent, name, ino) SELECT " + std::to_string(big) +
      ", CAST('f' || ino AS BLOB), ino FROM inodes WHERE ino > 1000000;"
      "INSERT INTO xattrs(ino, name, value) SELECT ino, CAST('user.x' AS BLOB), CAST('v' AS BLOB) FROM inodes WHERE ino > 1000000;"
      "INSERT INTO extents(ino, off, len, chunk, chunk_off) SELECT ino, 0, 4, " + std::to_string(chunk) +
      ", 0 FROM inodes WHERE ino > 1000000;"
      "UPDATE chunks SET refcount = refcount + 50000 WHERE id = " + std::to_string(chunk));
  int64_t steps = 0;
  sqlite3_progress_handler(store_->index.db->raw(), 100, [](void* p) { ++*static_cast<int64_t*>(p); return 0; }, &steps);
  snap("/small", "small");
  sqlite3_progress_handler(store_->index.db->raw(), 0, nullptr, nullptr);
  // A scan of one of the big tables alone is 50k rows, several steps each (over 1000 callbacks;
  // 8000 in all before the copies were driven by the map).
  EXPECT_LT(steps, 300) << "the snapshot of a two-inode tree ran " << steps * 100 << " SQLite steps";
  expect_refcounts_exact();
}

TEST_F(SnapshotTest, FilesBeingWrittenAreSnapshottedAsTheyAreNow) {
  uint64_t src = node(kRootIno, "src", S_IFDIR | 0755);
  uint64_t f = node(src, "open", S_IFREG | 0644);
  ASSERT_TRUE(vol_->open(f, O_WRONLY).ok());
  const std::string data = test::text_bytes(200000, 3);
  ASSERT_TRUE(vol_->write(f, 0, data.data(), data.size()).ok());
  SnapshotInfo s = snap("/src", "mid-write");  // the writer has not closed the file
  ASSERT_TRUE(vol_->write(f, data.size(), "tail", 4).ok());
  ASSERT_TRUE(vol_->release(f, O_WRONLY).ok());
  std::string copy;
  ASSERT_TRUE(vol_->read(lookup(s.root, "open"), 0, 1 << 20, copy).ok());
  EXPECT_EQ(copy, data);
  expect_refcounts_exact();
}

TEST_F(SnapshotTest, OlderIndexesAreUpgradedAndReadOnlyOpensSeeNoSnapshots) {
  build_tree();
  vol_.reset();
  test::sql_exec(*store_, "DROP INDEX snapshots_by_lo; DROP TABLE snapshots; "
                          "UPDATE meta SET value = '2' WHERE key = 'schema_version'");
  store_.reset();
  {
    StoreOptions ro;
    ro.readonly = true;
    auto r = test::open_store(dir_, ro);
    ASSERT_TRUE(r);
    std::lock_guard<std::mutex> g(r->index.mu);
    auto l = list_snapshots_locked(*r->index.db);
    ASSERT_TRUE(l.ok()) << l.status().message();
    EXPECT_TRUE(l->empty());
  }
  store_ = test::open_store(dir_);
  ASSERT_TRUE(store_);
  EXPECT_EQ(test::sql_i64(*store_, "SELECT value FROM meta WHERE key = 'schema_version'"), kIndexSchemaVersion);
  vol_ = std::make_unique<Volume>(*store_, VolumeOptions{});
  snap("/src", "after-upgrade");
  expect_fsck_clean();
}

}  // namespace
}  // namespace dzfs

namespace dzfs {
namespace {

// fsck finds the ways a damaged index could let a change reach a snapshot.
TEST_F(SnapshotTest, FsckFindsNamesCrossingASnapshotsEdge) {
  build_tree();
  SnapshotInfo s = snap("/src", "checked");
  expect_fsck_clean();
  const std::string lo = std::to_string(s.lo), hi = std::to_string(s.hi);
  auto problems = [&] {
    EXPECT_TRUE(vol_->commit().ok());
    auto r = check_volume(*store_);
    EXPECT_TRUE(r.ok());
    std::string all;
    for (auto& p : r->problems) all += p + "\n";
    return all;
  };
  test::sql_exec(*store_, "INSERT INTO dirents(parent, name, ino) VALUES (1, 'sneaky', " + std::to_string(s.lo + 1) + ")");
  EXPECT_NE(problems().find("is named from outside it"), std::string::npos);
  test::sql_exec(*store_, "DELETE FROM dirents WHERE name = 'sneaky'");
  test::sql_exec(*store_, "UPDATE snapshots SET hi = hi + 1000 WHERE id = " + std::to_string(s.id));
  test::sql_exec(*store_, "INSERT INTO snapshots(name, root, lo, hi, created_ns, source) VALUES ('x', " + hi + ", " +
                              hi + ", " + hi + ", 0, '/')");
  std::string p = problems();
  EXPECT_NE(p.find("overlaps snapshot"), std::string::npos) << p;
  EXPECT_NE(p.find("snapshot x: its root is not named"), std::string::npos) << p;
}

}  // namespace
}  // namespace dzfs
