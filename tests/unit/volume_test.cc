// Volume: POSIX name semantics and errors, link counts, inode lifetime, attributes, xattrs,
// readdir paging, and the tools that read a volume (fsck, stats, gc). No mounts.
#define FUSE_USE_VERSION 314
#include "fs/volume.h"

#include <fcntl.h>
#include <fuse3/fuse_lowlevel.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "index/fsck.h"
#include "index/gc.h"
#include "index/schema.h"
#include "index/stats.h"
#include "tests/unit/test_util.h"

namespace dzfs {
namespace {

constexpr uint64_t kRoot = kRootIno;

class VolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path() + "/store";
    store_ = test::make_store(dir_);
    ASSERT_TRUE(store_);
    vol_ = std::make_unique<Volume>(*store_, VolumeOptions{});
  }
  // Closes the volume and store (the store commits) and opens them again: a remount.
  void remount() {
    vol_.reset();
    store_.reset();
    store_ = test::open_store(dir_);
    ASSERT_TRUE(store_);
    vol_ = std::make_unique<Volume>(*store_, VolumeOptions{});
  }

  uint64_t mkfile(uint64_t parent, const std::string& name, uint32_t mode = 0644) {
    struct stat st {};
    Status s = vol_->mknod(parent, name, S_IFREG | mode, 0, caller_, st);
    EXPECT_TRUE(s.ok()) << name << ": " << s.message();
    return st.st_ino;
  }
  uint64_t mkdir(uint64_t parent, const std::string& name, uint32_t mode = 0755) {
    struct stat st {};
    Status s = vol_->mkdir(parent, name, mode, caller_, st);
    EXPECT_TRUE(s.ok()) << name << ": " << s.message();
    return st.st_ino;
  }
  void put_content(uint64_t ino, const std::string& data, size_t piece = 128 * 1024) {
    ASSERT_TRUE(vol_->open(ino, O_WRONLY).ok());
    for (size_t off = 0; off < data.size(); off += piece) {
      size_t n = std::min(piece, data.size() - off);
      Status s = vol_->write(ino, off, data.data() + off, n);
      ASSERT_TRUE(s.ok()) << s.message();
    }
    ASSERT_TRUE(vol_->release(ino, O_WRONLY).ok());
  }
  std::string content(uint64_t ino, size_t max = 1u << 30) {
    std::string out;
    Status s = vol_->read(ino, 0, max, out);
    EXPECT_TRUE(s.ok()) << s.message();
    return out;
  }
  struct stat attr(uint64_t ino) {
    struct stat st {};
    Status s = vol_->getattr(ino, st);
    EXPECT_TRUE(s.ok()) << "getattr " << ino << ": " << s.message();
    return st;
  }
  int err_lookup(uint64_t parent, const std::string& name) {
    struct stat st {};
    return vol_->lookup(parent, name, st).code();
  }
  uint64_t ino_of(uint64_t parent, const std::string& name) {
    struct stat st {};
    Status s = vol_->lookup(parent, name, st);
    EXPECT_TRUE(s.ok()) << name << ": " << s.message();
    if (s.ok()) vol_->forget(st.st_ino, 1);  // this lookup is the test's, not the kernel's
    return st.st_ino;
  }
  bool inode_row(uint64_t ino) {
    return test::sql_i64(*store_, "SELECT COUNT(*) FROM inodes WHERE ino = " + std::to_string(ino)) == 1;
  }
  void expect_fsck_clean(const char* where) {
    auto r = check_volume(*store_);
    ASSERT_TRUE(r.ok()) << r.status().message();
    for (auto& p : r->problems) ADD_FAILURE() << where << ": fsck: " << p;
  }

  test::TempDir tmp_;
  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Volume> vol_;
  Caller caller_{1000, 1000};
};

// ---- creating names ------------------------------------------------------------------------

TEST_F(VolumeTest, CreateNodesAndErrors) {
  struct stat st {};
  ASSERT_EQ(attr(kRoot).st_nlink, 2u);
  ASSERT_TRUE(S_ISDIR(attr(kRoot).st_mode));
  uint64_t d = mkdir(kRoot, "d", 0750);
  struct stat ds = attr(d);
  EXPECT_TRUE(S_ISDIR(ds.st_mode));
  EXPECT_EQ(ds.st_mode & 07777, 0750u);
  EXPECT_EQ(ds.st_nlink, 2u);
  EXPECT_EQ(ds.st_uid, 1000u);
  EXPECT_EQ(ds.st_gid, 1000u);
  EXPECT_EQ(attr(kRoot).st_nlink, 3u) << "a subdirectory's .. links its parent";

  uint64_t f = mkfile(d, "f", 0600);
  struct stat fs = attr(f);
  EXPECT_TRUE(S_ISREG(fs.st_mode));
  EXPECT_EQ(fs.st_mode & 07777, 0600u);
  EXPECT_EQ(fs.st_nlink, 1u);
  EXPECT_EQ(fs.st_size, 0);
  EXPECT_EQ(attr(d).st_nlink, 2u) << "a file does not link its directory";

  // mknod with no type is a regular file; fifos and devices keep type and rdev.
  ASSERT_TRUE(vol_->mknod(d, "plain", 0644, 0, caller_, st).ok());
  EXPECT_TRUE(S_ISREG(st.st_mode));
  ASSERT_TRUE(vol_->mknod(d, "fifo", S_IFIFO | 0644, 0, caller_, st).ok());
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  ASSERT_TRUE(vol_->mknod(d, "chr", S_IFCHR | 0644, makedev(1, 3), caller_, st).ok());
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  EXPECT_EQ(vol_->mknod(d, "dir", S_IFDIR | 0755, 0, caller_, st).code(), EINVAL);
  EXPECT_EQ(vol_->mknod(d, "lnk", S_IFLNK | 0777, 0, caller_, st).code(), EINVAL);

  // Symlinks.
  ASSERT_TRUE(vol_->symlink(d, "l", "../some/target", caller_, st).ok());
  uint64_t l = st.st_ino;
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(st.st_size, 14);
  std::string target;
  ASSERT_TRUE(vol_->readlink(l, target).ok());
  EXPECT_EQ(target, "../some/target");
  EXPECT_EQ(vol_->readlink(f, target).code(), EINVAL);
  EXPECT_EQ(vol_->symlink(d, "long", std::string(4096, 'x'), caller_, st).code(), ENAMETOOLONG);

  // EEXIST for every kind of creation over an existing name.
  EXPECT_EQ(vol_->mknod(d, "f", S_IFREG | 0644, 0, caller_, st).code(), EEXIST);
  EXPECT_EQ(vol_->mkdir(d, "f", 0755, caller_, st).code(), EEXIST);
  EXPECT_EQ(vol_->mkdir(kRoot, "d", 0755, caller_, st).code(), EEXIST);
  EXPECT_EQ(vol_->symlink(d, "f", "x", caller_, st).code(), EEXIST);
  EXPECT_EQ(vol_->link(f, d, "l", st).code(), EEXIST);
  // Parent problems.
  EXPECT_EQ(vol_->mknod(f, "x", S_IFREG | 0644, 0, caller_, st).code(), ENOTDIR);
  EXPECT_EQ(vol_->mkdir(f, "x", 0755, caller_, st).code(), ENOTDIR);
  EXPECT_EQ(vol_->mknod(99999, "x", S_IFREG | 0644, 0, caller_, st).code(), ENOENT);
  EXPECT_EQ(vol_->mknod(d, std::string(256, 'n'), S_IFREG | 0644, 0, caller_, st).code(), ENAMETOOLONG);
  EXPECT_TRUE(vol_->mknod(d, std::string(255, 'n'), S_IFREG | 0644, 0, caller_, st).ok());
  // Lookup.
  EXPECT_EQ(err_lookup(d, "missing"), ENOENT);
  EXPECT_EQ(ino_of(d, "f"), f);
  EXPECT_EQ(ino_of(kRoot, "d"), d);
  EXPECT_EQ(attr(d).st_nlink, 2u);
  struct stat none {};
  EXPECT_EQ(vol_->getattr(99999, none).code(), ENOENT);
  expect_fsck_clean("after creates");
}

TEST_F(VolumeTest, SetgidDirectoryInheritsGroup) {
  struct stat st {};
  uint64_t d = mkdir(kRoot, "shared", 02775);
  struct stat in {};
  in.st_gid = 4242;
  ASSERT_TRUE(vol_->setattr(d, in, FUSE_SET_ATTR_GID, st).ok());
  ASSERT_TRUE(vol_->mknod(d, "f", S_IFREG | 0644, 0, caller_, st).ok());
  EXPECT_EQ(st.st_gid, 4242u);
  ASSERT_TRUE(vol_->mkdir(d, "sub", 0755, caller_, st).ok());
  EXPECT_EQ(st.st_gid, 4242u);
  EXPECT_TRUE(st.st_mode & S_ISGID) << "subdirectories of a setgid directory are setgid";
}

// ---- links and removal ---------------------------------------------------------------------

TEST_F(VolumeTest, HardLinksAndNlink) {
  struct stat st {};
  uint64_t a = mkdir(kRoot, "a"), b = mkdir(kRoot, "b");
  uint64_t f = mkfile(a, "f");
  put_content(f, "hello");
  ASSERT_TRUE(vol_->link(f, b, "g", st).ok());
  EXPECT_EQ(st.st_ino, f);
  EXPECT_EQ(st.st_nlink, 2u);
  ASSERT_TRUE(vol_->link(f, a, "h", st).ok());
  EXPECT_EQ(attr(f).st_nlink, 3u);
  EXPECT_EQ(ino_of(b, "g"), f);
  EXPECT_EQ(vol_->link(a, b, "dirlink", st).code(), EPERM) << "hard links to directories";
  expect_fsck_clean("linked");
  ASSERT_TRUE(vol_->unlink(a, "f").ok());
  EXPECT_EQ(attr(f).st_nlink, 2u);
  EXPECT_EQ(content(f), "hello");
  EXPECT_EQ(err_lookup(a, "f"), ENOENT);
  ASSERT_TRUE(vol_->unlink(b, "g").ok());
  EXPECT_EQ(attr(f).st_nlink, 1u);
  EXPECT_EQ(content(f), "hello");
  expect_fsck_clean("unlinked two");
}

TEST_F(VolumeTest, UnlinkRmdirErrors) {
  uint64_t d = mkdir(kRoot, "d");
  uint64_t sub = mkdir(d, "sub");
  mkfile(d, "f");
  EXPECT_EQ(attr(d).st_nlink, 3u);
  EXPECT_EQ(vol_->unlink(d, "sub").code(), EISDIR);
  EXPECT_EQ(vol_->rmdir(d, "f").code(), ENOTDIR);
  EXPECT_EQ(vol_->rmdir(kRoot, "d").code(), ENOTEMPTY);
  EXPECT_EQ(vol_->unlink(d, "missing").code(), ENOENT);
  EXPECT_EQ(vol_->rmdir(d, "missing").code(), ENOENT);
  ASSERT_TRUE(vol_->rmdir(d, "sub").ok());
  EXPECT_EQ(attr(d).st_nlink, 2u) << "rmdir drops the parent's link from ..";
  EXPECT_EQ(err_lookup(d, "sub"), ENOENT);
  // The removed directory lives on while the kernel holds a lookup, but takes no new entries.
  ASSERT_TRUE(inode_row(sub));
  EXPECT_EQ(attr(sub).st_nlink, 0u);
  struct stat st {};
  EXPECT_EQ(vol_->mknod(sub, "x", S_IFREG | 0644, 0, caller_, st).code(), ENOENT);
  vol_->forget(sub, 1);
  EXPECT_FALSE(inode_row(sub)) << "forgotten removed directory still has its inode row";
  ASSERT_TRUE(vol_->unlink(d, "f").ok());
  ASSERT_TRUE(vol_->rmdir(kRoot, "d").ok());
  EXPECT_EQ(attr(kRoot).st_nlink, 2u);
  expect_fsck_clean("after removals");
}

// ---- rename --------------------------------------------------------------------------------

TEST_F(VolumeTest, RenameBasicsAndReplace) {
  uint64_t a = mkdir(kRoot, "a"), b = mkdir(kRoot, "b");
  uint64_t f = mkfile(a, "f");
  put_content(f, "F");
  ASSERT_TRUE(vol_->rename(a, "f", a, "f2", 0).ok());
  EXPECT_EQ(err_lookup(a, "f"), ENOENT);
  EXPECT_EQ(ino_of(a, "f2"), f);
  ASSERT_TRUE(vol_->rename(a, "f2", b, "f3", 0).ok());
  EXPECT_EQ(ino_of(b, "f3"), f);
  EXPECT_EQ(vol_->rename(a, "f2", b, "x", 0).code(), ENOENT);
  EXPECT_EQ(vol_->rename(b, "f3", b, "x", 0x80).code(), EINVAL) << "unknown rename flags";
  EXPECT_EQ(vol_->rename(b, "f3", b, std::string(256, 'x'), 0).code(), ENAMETOOLONG);
  // Rename onto itself: nothing happens.
  ASSERT_TRUE(vol_->rename(b, "f3", b, "f3", 0).ok());
  EXPECT_EQ(ino_of(b, "f3"), f);
  // Replace a file: the victim loses its name and, once forgotten, its inode and data.
  uint64_t v = mkfile(b, "victim");
  put_content(v, test::random_bytes(100000, 1));
  ASSERT_TRUE(vol_->rename(b, "f3", b, "victim", 0).ok());
  EXPECT_EQ(ino_of(b, "victim"), f);
  EXPECT_EQ(err_lookup(b, "f3"), ENOENT);
  EXPECT_EQ(content(f), "F");
  EXPECT_EQ(attr(v).st_nlink, 0u);
  vol_->forget(v, 1);
  EXPECT_FALSE(inode_row(v));
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM extents WHERE ino = " + std::to_string(v)), 0);
  expect_fsck_clean("after renames");
}

TEST_F(VolumeTest, RenameTypeErrors) {
  uint64_t d1 = mkdir(kRoot, "d1");
  mkdir(kRoot, "d2");
  mkdir(d1, "inner");
  uint64_t empty = mkdir(kRoot, "empty");
  mkfile(kRoot, "f");
  EXPECT_EQ(vol_->rename(kRoot, "f", kRoot, "d2", 0).code(), EISDIR);
  EXPECT_EQ(vol_->rename(kRoot, "d2", kRoot, "f", 0).code(), ENOTDIR);
  EXPECT_EQ(vol_->rename(kRoot, "d2", kRoot, "d1", 0).code(), ENOTEMPTY);
  // Nothing changed by the failures.
  EXPECT_EQ(ino_of(kRoot, "d1"), d1);
  EXPECT_TRUE(S_ISREG(attr(ino_of(kRoot, "f")).st_mode));
  expect_fsck_clean("after failed renames");
  // A directory over an empty directory.
  uint64_t d2 = ino_of(kRoot, "d2");
  EXPECT_EQ(attr(kRoot).st_nlink, 5u);
  ASSERT_TRUE(vol_->rename(kRoot, "d2", kRoot, "empty", 0).ok());
  EXPECT_EQ(ino_of(kRoot, "empty"), d2);
  EXPECT_EQ(attr(kRoot).st_nlink, 4u);
  EXPECT_EQ(attr(empty).st_nlink, 0u);
  vol_->forget(empty, 1);
  EXPECT_FALSE(inode_row(empty));
  expect_fsck_clean("after dir replace");
}

TEST_F(VolumeTest, RenameDirectoryAcrossParents) {
  uint64_t a = mkdir(kRoot, "a"), b = mkdir(kRoot, "b");
  uint64_t d = mkdir(a, "d");
  mkfile(d, "inside");
  EXPECT_EQ(attr(a).st_nlink, 3u);
  EXPECT_EQ(attr(b).st_nlink, 2u);
  ASSERT_TRUE(vol_->rename(a, "d", b, "d", 0).ok());
  EXPECT_EQ(attr(a).st_nlink, 2u);
  EXPECT_EQ(attr(b).st_nlink, 3u);
  EXPECT_EQ(ino_of(b, "d"), d);
  EXPECT_TRUE(ino_of(d, "inside") != 0);
  std::vector<DirEntry> ents;
  ASSERT_TRUE(vol_->readdir(d, 0, 100, false, ents).ok());
  ASSERT_GE(ents.size(), 2u);
  EXPECT_EQ(ents[1].name, "..");
  EXPECT_EQ(ents[1].ino, b) << ".. of a moved directory";
  // Directory over an empty directory in another parent.
  uint64_t e = mkdir(a, "e");
  ASSERT_TRUE(vol_->rename(b, "d", a, "e", 0).ok());
  EXPECT_EQ(attr(a).st_nlink, 3u);
  EXPECT_EQ(attr(b).st_nlink, 2u);
  EXPECT_EQ(attr(e).st_nlink, 0u);
  expect_fsck_clean("after moving directories");
}

TEST_F(VolumeTest, RenameNoreplace) {
  uint64_t f = mkfile(kRoot, "f"), g = mkfile(kRoot, "g");
  EXPECT_EQ(vol_->rename(kRoot, "f", kRoot, "g", RENAME_NOREPLACE).code(), EEXIST);
  EXPECT_EQ(ino_of(kRoot, "f"), f);
  EXPECT_EQ(ino_of(kRoot, "g"), g);
  EXPECT_EQ(attr(g).st_nlink, 1u);
  ASSERT_TRUE(vol_->rename(kRoot, "f", kRoot, "h", RENAME_NOREPLACE).ok());
  EXPECT_EQ(ino_of(kRoot, "h"), f);
  EXPECT_EQ(err_lookup(kRoot, "f"), ENOENT);
  expect_fsck_clean("noreplace");
}

TEST_F(VolumeTest, RenameExchange) {
  uint64_t a = mkdir(kRoot, "a"), b = mkdir(kRoot, "b");
  uint64_t f = mkfile(a, "f");
  uint64_t d = mkdir(b, "d");
  EXPECT_EQ(attr(a).st_nlink, 2u);
  EXPECT_EQ(attr(b).st_nlink, 3u);
  ASSERT_TRUE(vol_->rename(a, "f", b, "d", RENAME_EXCHANGE).ok());
  EXPECT_EQ(ino_of(a, "f"), d);
  EXPECT_EQ(ino_of(b, "d"), f);
  EXPECT_EQ(attr(a).st_nlink, 3u) << "the directory moved into a";
  EXPECT_EQ(attr(b).st_nlink, 2u);
  EXPECT_EQ(attr(f).st_nlink, 1u);
  EXPECT_EQ(attr(d).st_nlink, 2u);
  std::vector<DirEntry> ents;
  ASSERT_TRUE(vol_->readdir(d, 0, 10, false, ents).ok());
  EXPECT_EQ(ents[1].ino, a);
  expect_fsck_clean("after exchange");
  // Exchange within one directory; exchange with a missing target.
  uint64_t x = mkfile(a, "x");
  ASSERT_TRUE(vol_->rename(a, "x", a, "f", RENAME_EXCHANGE).ok());
  EXPECT_EQ(ino_of(a, "x"), d);
  EXPECT_EQ(ino_of(a, "f"), x);
  EXPECT_EQ(attr(a).st_nlink, 3u);
  EXPECT_EQ(vol_->rename(a, "x", a, "nope", RENAME_EXCHANGE).code(), ENOENT);
  EXPECT_EQ(ino_of(a, "x"), d);
  EXPECT_EQ(err_lookup(a, "nope"), ENOENT);
  expect_fsck_clean("after second exchange");
}

TEST_F(VolumeTest, RenameOntoHardLinkOfItselfIsNoop) {
  uint64_t d = mkdir(kRoot, "d");
  uint64_t f = mkfile(kRoot, "a");
  put_content(f, "same file");
  struct stat st {};
  ASSERT_TRUE(vol_->link(f, d, "b", st).ok());
  ASSERT_TRUE(vol_->rename(kRoot, "a", d, "b", 0).ok());
  // POSIX: both names remain, nothing is unlinked.
  EXPECT_EQ(ino_of(kRoot, "a"), f);
  EXPECT_EQ(ino_of(d, "b"), f);
  EXPECT_EQ(attr(f).st_nlink, 2u);
  EXPECT_EQ(content(f), "same file");
  EXPECT_EQ(vol_->rename(kRoot, "a", d, "b", RENAME_NOREPLACE).code(), EEXIST);
  expect_fsck_clean("after rename onto own link");
}

// ---- inode lifetime ------------------------------------------------------------------------

TEST_F(VolumeTest, UnlinkedFileLivesUntilForgetAndRelease) {
  uint64_t f = mkfile(kRoot, "f");  // the kernel holds one lookup from the create
  std::string data = test::random_bytes(600000, 4);
  put_content(f, data);
  auto chunk_ids = test::sql_rows(*store_, "SELECT DISTINCT chunk FROM extents WHERE ino = " + std::to_string(f));
  ASSERT_GT(chunk_ids.size(), 2u);
  ASSERT_TRUE(vol_->open(f, O_RDONLY).ok());
  ASSERT_TRUE(vol_->unlink(kRoot, "f").ok());
  EXPECT_EQ(err_lookup(kRoot, "f"), ENOENT);
  EXPECT_EQ(attr(f).st_nlink, 0u);
  EXPECT_TRUE(content(f) == data) << "open unlinked file unreadable";
  vol_->forget(f, 1);
  ASSERT_TRUE(inode_row(f)) << "deleted while still open";
  EXPECT_TRUE(content(f) == data);
  EXPECT_GT(test::sql_i64(*store_, "SELECT MIN(refcount) FROM chunks"), 0);
  ASSERT_TRUE(vol_->release(f, O_RDONLY).ok());
  EXPECT_FALSE(inode_row(f)) << "unlinked, forgotten and closed: the inode must go";
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM extents WHERE ino = " + std::to_string(f)), 0);
  for (auto& r : chunk_ids)
    EXPECT_EQ(test::sql_i64(*store_, "SELECT refcount FROM chunks WHERE id = " + std::to_string(r[0])), 0);
  struct stat st {};
  EXPECT_EQ(vol_->getattr(f, st).code(), ENOENT);
  expect_fsck_clean("after deletion");
}

TEST_F(VolumeTest, UnlinkedWhileWritingKeepsWrittenData) {
  uint64_t f = mkfile(kRoot, "f");
  ASSERT_TRUE(vol_->open(f, O_RDWR).ok());
  std::string data = test::random_bytes(300000, 5);
  ASSERT_TRUE(vol_->write(f, 0, data.data(), data.size()).ok());
  ASSERT_TRUE(vol_->unlink(kRoot, "f").ok());
  vol_->forget(f, 1);
  std::string more = "tail";
  ASSERT_TRUE(vol_->write(f, data.size(), more.data(), more.size()).ok());
  data += more;
  EXPECT_TRUE(content(f) == data);
  EXPECT_EQ(attr(f).st_size, off_t(data.size()));
  ASSERT_TRUE(vol_->flush(f).ok());
  EXPECT_TRUE(content(f) == data);
  ASSERT_TRUE(vol_->release(f, O_RDWR).ok());
  EXPECT_FALSE(inode_row(f));
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks WHERE refcount != 0"), 0);
  expect_fsck_clean("after deleting a written-while-unlinked file");
}

TEST_F(VolumeTest, ForgetOfLinkedFileKeepsIt) {
  uint64_t f = mkfile(kRoot, "f");
  put_content(f, "keep me");
  vol_->forget(f, 1);
  vol_->forget(f, 5);  // more than it has: clamps
  ASSERT_TRUE(inode_row(f));
  EXPECT_EQ(content(f), "keep me");
  // Unlink with no lookups and no opens deletes at once.
  ASSERT_TRUE(vol_->unlink(kRoot, "f").ok());
  EXPECT_FALSE(inode_row(f));
}

TEST_F(VolumeTest, RecoverDeletesOrphans) {
  uint64_t f = mkfile(kRoot, "f"), keep = mkfile(kRoot, "keep");
  std::string data = test::random_bytes(400000, 6);
  put_content(f, data);
  put_content(keep, "kept");
  ASSERT_TRUE(vol_->setxattr(f, "user.a", "1", 0).ok());
  ASSERT_TRUE(vol_->open(f, O_RDONLY).ok());
  ASSERT_TRUE(vol_->unlink(kRoot, "f").ok());
  ASSERT_TRUE(inode_row(f));
  // The process dies with the file open: the orphan is committed with nlink = 0.
  ASSERT_TRUE(store_->commit().ok());
  remount();
  ASSERT_TRUE(inode_row(f));
  EXPECT_GT(test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks WHERE refcount > 0"), 1);
  ASSERT_TRUE(vol_->recover().ok());
  EXPECT_FALSE(inode_row(f));
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM extents WHERE ino = " + std::to_string(f)), 0);
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM xattrs WHERE ino = " + std::to_string(f)), 0);
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks WHERE refcount > 0"), 1) << "only keep's chunk";
  EXPECT_EQ(content(keep), "kept");
  expect_fsck_clean("after recover");
  ASSERT_TRUE(vol_->recover().ok()) << "recover twice is harmless";
}

// ---- attributes ----------------------------------------------------------------------------

TEST_F(VolumeTest, SetattrModeOwnerTimes) {
  uint64_t f = mkfile(kRoot, "f");
  struct stat in {}, out {};
  in.st_mode = S_IFDIR | 04711;  // the type bits must be ignored
  ASSERT_TRUE(vol_->setattr(f, in, FUSE_SET_ATTR_MODE, out).ok());
  EXPECT_TRUE(S_ISREG(out.st_mode)) << "setattr changed the file type";
  EXPECT_EQ(out.st_mode & 07777, 04711u);
  EXPECT_TRUE(S_ISREG(attr(f).st_mode));
  in = {};
  in.st_uid = 123;
  in.st_gid = 456;
  ASSERT_TRUE(vol_->setattr(f, in, FUSE_SET_ATTR_UID, out).ok());
  EXPECT_EQ(out.st_uid, 123u);
  EXPECT_EQ(out.st_gid, 1000u) << "gid changed without FUSE_SET_ATTR_GID";
  ASSERT_TRUE(vol_->setattr(f, in, FUSE_SET_ATTR_GID, out).ok());
  EXPECT_EQ(out.st_gid, 456u);
  // Nanosecond times, including before 1970.
  in = {};
  in.st_mtim = {1234567890, 123456789};
  in.st_atim = {-100, 999999999};
  ASSERT_TRUE(vol_->setattr(f, in, FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME, out).ok());
  struct stat now = attr(f);
  EXPECT_EQ(now.st_mtim.tv_sec, 1234567890);
  EXPECT_EQ(now.st_mtim.tv_nsec, 123456789);
  EXPECT_EQ(now.st_atim.tv_sec, -100);
  EXPECT_EQ(now.st_atim.tv_nsec, 999999999);
  // ctime moves on any change; *_NOW sets the time to now.
  int64_t before = now_ns();
  ASSERT_TRUE(vol_->setattr(f, in, FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW, out).ok());
  int64_t mt = int64_t(out.st_mtim.tv_sec) * 1000000000 + out.st_mtim.tv_nsec;
  int64_t ct = int64_t(out.st_ctim.tv_sec) * 1000000000 + out.st_ctim.tv_nsec;
  EXPECT_GE(mt, before);
  EXPECT_GE(ct, before);
  EXPECT_EQ(vol_->setattr(99999, in, FUSE_SET_ATTR_MODE, out).code(), ENOENT);
}

TEST_F(VolumeTest, SetattrSizeTruncates) {
  uint64_t f = mkfile(kRoot, "f");
  std::string data = test::random_bytes(500000, 7);
  put_content(f, data);
  struct stat before = attr(f);
  EXPECT_EQ(before.st_size, 500000);
  EXPECT_GE(before.st_blocks * 512, 500000);
  struct stat in {}, out {};
  in.st_mtim = {1000, 5};
  in.st_size = 123457;
  ASSERT_TRUE(vol_->setattr(f, in, FUSE_SET_ATTR_SIZE, out).ok());
  EXPECT_EQ(out.st_size, 123457);
  EXPECT_NE(out.st_mtim.tv_sec, 1000) << "size change without MTIME sets mtime to now";
  EXPECT_LT(out.st_blocks * 512, 200000) << "st_blocks still counts truncated data";
  EXPECT_TRUE(content(f) == data.substr(0, 123457));
  in.st_size = 700000;  // extend: zeros
  ASSERT_TRUE(vol_->setattr(f, in, FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MTIME, out).ok());
  EXPECT_EQ(out.st_size, 700000);
  EXPECT_EQ(out.st_mtim.tv_sec, 1000);
  EXPECT_EQ(out.st_mtim.tv_nsec, 5);
  std::string want = data.substr(0, 123457) + std::string(700000 - 123457, '\0');
  EXPECT_TRUE(content(f) == want);
  EXPECT_EQ(test::sql_i64(*store_, "SELECT size FROM inodes WHERE ino = " + std::to_string(f)), 700000);
  uint64_t d = mkdir(kRoot, "d");
  in.st_size = 10;
  EXPECT_EQ(vol_->setattr(d, in, FUSE_SET_ATTR_SIZE, out).code(), EISDIR);
  EXPECT_EQ(attr(d).st_size, 0);
  expect_fsck_clean("after truncates");
  remount();
  EXPECT_TRUE(content(f) == want);
}

TEST_F(VolumeTest, WritesVisibleBeforeCloseAndAfterRemount) {
  uint64_t f = mkfile(kRoot, "f");
  std::string data = test::text_bytes(1'500'000, 8);
  ASSERT_TRUE(vol_->open(f, O_RDWR).ok());
  ASSERT_TRUE(vol_->write(f, 0, data.data(), data.size()).ok());
  EXPECT_EQ(attr(f).st_size, off_t(data.size())) << "getattr while writing shows the new size";
  EXPECT_TRUE(content(f) == data);
  ASSERT_TRUE(vol_->fsync(f).ok());
  ASSERT_TRUE(vol_->release(f, O_RDWR).ok());
  // Reads through the index (no FileState) at unaligned offsets.
  for (uint64_t off : {0ull, 1ull, 65535ull, 300001ull, 1'499'999ull}) {
    std::string got;
    ASSERT_TRUE(vol_->read(f, off, 70000, got).ok());
    EXPECT_TRUE(got == data.substr(off, 70000)) << off;
  }
  std::string past;
  ASSERT_TRUE(vol_->read(f, 2'000'000, 10, past).ok());
  EXPECT_TRUE(past.empty());
  remount();
  EXPECT_TRUE(content(f) == data);
}

TEST_F(VolumeTest, Fallocate) {
  uint64_t f = mkfile(kRoot, "f");
  put_content(f, "abc");
  ASSERT_TRUE(vol_->fallocate(f, 0, 0, 10000).ok());
  EXPECT_EQ(attr(f).st_size, 10000);
  ASSERT_TRUE(vol_->fallocate(f, FALLOC_FL_KEEP_SIZE, 0, 50000).ok());
  EXPECT_EQ(attr(f).st_size, 10000);
  EXPECT_EQ(vol_->fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 2).code(), EOPNOTSUPP);
  ASSERT_TRUE(vol_->release(f, O_RDONLY).ok());
  EXPECT_EQ(content(f), std::string("abc") + std::string(10000 - 3, '\0'));
}

TEST_F(VolumeTest, FullDiskFailsWritesButIndexStillCommits) {
  uint64_t f = mkfile(kRoot, "f");
  put_content(f, "old content");
  remount();
  struct stat looked {};
  ASSERT_TRUE(vol_->lookup(kRoot, "f", looked).ok());  // the kernel holds the inode while it is open
  store_->packs.set_reserve_bytes(uint64_t(1) << 62);  // the backing disk is "full"
  std::string data = test::random_bytes(200000, 3);
  ASSERT_TRUE(vol_->open(f, O_RDWR).ok());
  ASSERT_TRUE(vol_->write(f, 0, data.data(), data.size()).ok());  // buffered
  Status s = vol_->release(f, O_RDWR);
  ASSERT_FALSE(s.ok()) << "data written to a full disk reported as saved";
  EXPECT_EQ(s.code(), ENOSPC);
  // Metadata still works and commits; the index still has the old content.
  struct stat st {};
  EXPECT_TRUE(vol_->mkdir(kRoot, "d", 0755, caller_, st).ok());
  EXPECT_TRUE(store_->commit().ok());
  EXPECT_EQ(test::sql_i64(*store_, "SELECT size FROM inodes WHERE ino = " + std::to_string(f)), 11);
  // Space comes back: the buffered data can still be saved.
  store_->packs.set_reserve_bytes(0);
  ASSERT_TRUE(vol_->flush(f).ok());
  EXPECT_TRUE(content(f) == data);
  remount();
  EXPECT_TRUE(content(f) == data);
  expect_fsck_clean("after ENOSPC");
}

// ---- xattrs --------------------------------------------------------------------------------

TEST_F(VolumeTest, Xattrs) {
  uint64_t f = mkfile(kRoot, "f");
  std::string v, list;
  EXPECT_EQ(vol_->getxattr(f, "user.x", v).code(), ENODATA);
  ASSERT_TRUE(vol_->listxattr(f, list).ok());
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(vol_->setxattr(f, "user.x", "new", XATTR_REPLACE).code(), ENODATA);
  EXPECT_EQ(vol_->getxattr(f, "user.x", v).code(), ENODATA) << "a refused XATTR_REPLACE created the xattr";
  ASSERT_TRUE(vol_->setxattr(f, "user.x", "one", XATTR_CREATE).ok());
  EXPECT_EQ(vol_->setxattr(f, "user.x", "two", XATTR_CREATE).code(), EEXIST);
  ASSERT_TRUE(vol_->getxattr(f, "user.x", v).ok());
  EXPECT_EQ(v, "one");
  ASSERT_TRUE(vol_->setxattr(f, "user.x", "three", XATTR_REPLACE).ok());
  ASSERT_TRUE(vol_->getxattr(f, "user.x", v).ok());
  EXPECT_EQ(v, "three");
  std::string binary("a\0b\xff", 4);
  ASSERT_TRUE(vol_->setxattr(f, "security.selinux", binary, 0).ok());
  ASSERT_TRUE(vol_->setxattr(f, "user.empty", "", 0).ok());
  ASSERT_TRUE(vol_->getxattr(f, "security.selinux", v).ok());
  EXPECT_EQ(v, binary);
  ASSERT_TRUE(vol_->getxattr(f, "user.empty", v).ok());
  EXPECT_EQ(v, "");
  ASSERT_TRUE(vol_->listxattr(f, list).ok());
  EXPECT_EQ(list, std::string("security.selinux\0user.empty\0user.x\0", 35));
  ASSERT_TRUE(vol_->removexattr(f, "user.x").ok());
  EXPECT_EQ(vol_->removexattr(f, "user.x").code(), ENODATA);
  EXPECT_EQ(vol_->getxattr(f, "user.x", v).code(), ENODATA);
  ASSERT_TRUE(vol_->listxattr(f, list).ok());
  EXPECT_EQ(list, std::string("security.selinux\0user.empty\0", 28));
  // Per inode.
  uint64_t g = mkfile(kRoot, "g");
  EXPECT_EQ(vol_->getxattr(g, "user.empty", v).code(), ENODATA);
  EXPECT_EQ(vol_->setxattr(99999, "user.x", "v", 0).code(), ENOENT);
  remount();
  ASSERT_TRUE(vol_->getxattr(f, "security.selinux", v).ok());
  EXPECT_EQ(v, binary);
}

// An access ACL with only the owner, group and other entries (what cp -a and rsync -A write on
// every file) is the mode: it sets the mode and, as on ext4, leaves no xattr behind. One with a
// named user is kept, and chmod rewrites its entries.
TEST_F(VolumeTest, MinimalAccessAclIsTheModeOnly) {
  auto acl = [](std::vector<std::pair<uint16_t, uint16_t>> entries) {
    std::string a("\x02\0\0\0", 4);
    for (auto [tag, perm] : entries) {
      a += char(tag & 255); a += char(tag >> 8); a += char(perm); a += '\0';
      a += std::string("\xff\xff\xff\xff", 4);
    }
    return a;
  };
  uint64_t f = mkfile(kRoot, "f");
  std::string v;
  ASSERT_TRUE(vol_->setxattr(f, "system.posix_acl_access", acl({{0x01, 6}, {0x04, 4}, {0x20, 0}}), 0).ok());
  struct stat st {};
  ASSERT_TRUE(vol_->getattr(f, st).ok());
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(vol_->getxattr(f, "system.posix_acl_access", v).code(), ENODATA);
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM xattrs"), 0);
  std::string named = acl({{0x01, 7}, {0x02, 5}, {0x04, 4}, {0x10, 5}, {0x20, 1}});
  ASSERT_TRUE(vol_->setxattr(f, "system.posix_acl_access", named, 0).ok());
  ASSERT_TRUE(vol_->getattr(f, st).ok());
  EXPECT_EQ(st.st_mode & 0777, 0751u);
  ASSERT_TRUE(vol_->getxattr(f, "system.posix_acl_access", v).ok());
  EXPECT_EQ(v, named);
  // Back to a minimal one: the extended ACL goes.
  ASSERT_TRUE(vol_->setxattr(f, "system.posix_acl_access", acl({{0x01, 7}, {0x04, 0}, {0x20, 0}}), 0).ok());
  EXPECT_EQ(vol_->getxattr(f, "system.posix_acl_access", v).code(), ENODATA);
  ASSERT_TRUE(vol_->getattr(f, st).ok());
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

// ---- readdir -------------------------------------------------------------------------------

TEST_F(VolumeTest, ReaddirPaging) {
  uint64_t d = mkdir(kRoot, "big");
  std::map<std::string, uint64_t> want;
  for (int i = 0; i < 1000; ++i) {
    std::string name = "entry-" + std::to_string(i * 7919 % 1000);
    want[name] = (i % 100 == 0) ? mkdir(d, name) : mkfile(d, name);
  }
  uint64_t sized = want["entry-7"];
  struct stat in {}, out {};
  in.st_size = 4242;
  ASSERT_TRUE(vol_->setattr(sized, in, FUSE_SET_ATTR_SIZE, out).ok());
  for (bool plus : {false, true}) {
    for (size_t max : {size_t(1), size_t(7), size_t(64), size_t(5000)}) {
      SCOPED_TRACE(std::string(plus ? "plus" : "plain") + " max " + std::to_string(max));
      std::map<std::string, int> seen;
      uint64_t off = 0;
      int calls = 0, got_dot = 0, got_dotdot = 0;
      std::mt19937 rng{static_cast<unsigned>(max)};
      for (;;) {
        std::vector<DirEntry> ents;
        ASSERT_TRUE(vol_->readdir(d, off, max, plus, ents).ok());
        ASSERT_LT(++calls, 3000) << "readdir does not finish";
        if (ents.empty()) break;
        // The kernel's buffer may take only some of the entries; it resumes at the last one taken.
        size_t take = ents.size() == 1 ? 1 : 1 + rng() % ents.size();
        for (size_t i = 0; i < take; ++i) {
          const DirEntry& e = ents[i];
          EXPECT_GT(e.next_off, off) << "offsets must grow";
          if (e.name == ".") {
            ++got_dot;
            EXPECT_EQ(e.ino, d);
          } else if (e.name == "..") {
            ++got_dotdot;
            EXPECT_EQ(e.ino, kRoot);
          } else {
            ++seen[e.name];
            EXPECT_EQ(e.ino, want[e.name]) << e.name;
            EXPECT_EQ(e.attr.st_ino, e.ino);
            bool dir = want[e.name] && S_ISDIR(attr(e.ino).st_mode);
            EXPECT_EQ(S_ISDIR(e.attr.st_mode), dir) << e.name;
            if (plus) {
              EXPECT_EQ(e.attr.st_nlink, dir ? 2u : 1u) << e.name;
              EXPECT_EQ(e.attr.st_uid, 1000u);
              if (e.ino == sized) { EXPECT_EQ(e.attr.st_size, 4242); }
            }
          }
          off = e.next_off;
        }
      }
      EXPECT_EQ(got_dot, 1);
      EXPECT_EQ(got_dotdot, 1);
      EXPECT_EQ(seen.size(), want.size());
      for (auto& [name, n] : seen) EXPECT_EQ(n, 1) << name << " returned " << n << " times";
    }
  }
  // Entries removed and added while a listing is in progress: no duplicates, no removed names.
  std::vector<DirEntry> first;
  ASSERT_TRUE(vol_->readdir(d, 0, 300, false, first).ok());
  uint64_t off = first.back().next_off;
  std::set<std::string> listed;
  for (auto& e : first) listed.insert(e.name);
  int removed = 0;
  for (auto& [name, ino] : want) {
    if (listed.count(name) || (++removed % 2)) continue;
    if (S_ISDIR(attr(ino).st_mode)) ASSERT_TRUE(vol_->rmdir(d, name).ok());
    else ASSERT_TRUE(vol_->unlink(d, name).ok());
    listed.insert("removed:" + name);
  }
  mkfile(d, "added-late");
  std::map<std::string, int> rest;
  for (;;) {
    std::vector<DirEntry> ents;
    ASSERT_TRUE(vol_->readdir(d, off, 50, false, ents).ok());
    if (ents.empty()) break;
    for (auto& e : ents) ++rest[e.name];
    off = ents.back().next_off;
  }
  for (auto& [name, n] : rest) {
    EXPECT_EQ(n, 1) << name;
    EXPECT_FALSE(listed.count(name)) << name << " listed twice";
    EXPECT_FALSE(listed.count("removed:" + name)) << name << " was removed but listed";
  }
  EXPECT_EQ(rest.count("added-late"), 1u);
  std::vector<DirEntry> ents;
  EXPECT_EQ(vol_->readdir(want["entry-1"], 0, 10, false, ents).code(), ENOTDIR);
}

TEST_F(VolumeTest, ReaddirOfRootAndEmptyDir) {
  uint64_t e = mkdir(kRoot, "empty");
  std::vector<DirEntry> ents;
  ASSERT_TRUE(vol_->readdir(e, 0, 10, true, ents).ok());
  ASSERT_EQ(ents.size(), 2u);
  EXPECT_EQ(ents[0].name, ".");
  EXPECT_EQ(ents[1].name, "..");
  EXPECT_EQ(ents[1].ino, kRoot);
  ents.clear();
  ASSERT_TRUE(vol_->readdir(e, 2, 10, true, ents).ok());
  EXPECT_TRUE(ents.empty());
  ents.clear();
  ASSERT_TRUE(vol_->readdir(kRoot, 0, 10, false, ents).ok());
  ASSERT_EQ(ents.size(), 3u);
  EXPECT_EQ(ents[1].ino, kRoot) << "the root is its own parent";
  EXPECT_EQ(ents[2].name, "empty");
}

// ---- fsck, stats, gc ---------------------------------------------------------------------

TEST_F(VolumeTest, FsckCleanThenReportsCorruption) {
  uint64_t d = mkdir(kRoot, "d");
  uint64_t f = mkfile(d, "f"), g = mkfile(kRoot, "g");
  put_content(f, test::random_bytes(300000, 1));
  put_content(g, test::random_bytes(200000, 2));
  struct stat st {};
  ASSERT_TRUE(vol_->link(g, d, "g2", st).ok());
  auto r = check_volume(*store_);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->clean());
  EXPECT_GT(r->chunks_checked, 3u);
  EXPECT_EQ(r->inodes_checked, 4u);
  // A refcount off by one.
  int64_t chunk = test::sql_i64(*store_, "SELECT MIN(chunk) FROM extents WHERE ino = " + std::to_string(f));
  test::sql_exec(*store_, "UPDATE chunks SET refcount = refcount + 1 WHERE id = " + std::to_string(chunk));
  r = check_volume(*store_);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->clean());
  bool named = false;
  for (auto& p : r->problems) named |= p.find("chunk " + std::to_string(chunk)) != std::string::npos;
  EXPECT_TRUE(named) << "the problem should name chunk " << chunk;
  test::sql_exec(*store_, "UPDATE chunks SET refcount = refcount - 1 WHERE id = " + std::to_string(chunk));
  EXPECT_TRUE(check_volume(*store_)->clean());
  // A wrong link count.
  test::sql_exec(*store_, "UPDATE inodes SET nlink = 5 WHERE ino = " + std::to_string(g));
  r = check_volume(*store_);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->problems.size(), 1u);
  EXPECT_NE(r->problems[0].find("link count 5, expected 2"), std::string::npos) << r->problems[0];
  test::sql_exec(*store_, "UPDATE inodes SET nlink = 2 WHERE ino = " + std::to_string(g));
  // Damaged chunk bytes on disk: found by the data check, naming the file.
  int64_t pack = test::sql_i64(*store_, "SELECT pack FROM chunks WHERE id = " + std::to_string(chunk));
  int64_t off = test::sql_i64(*store_, "SELECT off FROM chunks WHERE id = " + std::to_string(chunk));
  remount();
  test::flip_byte(store_->packs.path_of(uint32_t(pack)), uint64_t(off + kRecordHeaderSize + 100));
  r = check_volume(*store_);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->clean());
  EXPECT_EQ(r->damaged_files, std::vector<std::string>{"/d/f"});
  FsckOptions meta_only;
  meta_only.verify_data = false;
  EXPECT_TRUE(check_volume(*store_, meta_only)->clean());
  // A chunk row gone.
  test::sql_exec(*store_, "DELETE FROM chunks WHERE id = " + std::to_string(chunk));
  r = check_volume(*store_, meta_only);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->clean());
  EXPECT_EQ(r->damaged_files, std::vector<std::string>{"/d/f"});
}

TEST_F(VolumeTest, StatsOfKnownData) {
  uint64_t d = mkdir(kRoot, "d");
  uint64_t a = mkfile(d, "a"), b = mkfile(d, "b"), t = mkfile(kRoot, "t"), h = mkfile(kRoot, "holey");
  struct stat st {};
  ASSERT_TRUE(vol_->symlink(kRoot, "l", "d/a", caller_, st).ok());
  ASSERT_TRUE(vol_->mknod(kRoot, "p", S_IFIFO | 0644, 0, caller_, st).ok());
  std::string rnd = test::random_bytes(1'000'000, 11), txt = test::text_bytes(1'000'000, 12);
  put_content(a, rnd);
  put_content(b, rnd);  // a duplicate
  put_content(t, txt);
  struct stat in {}, out {};
  in.st_size = 5'000'000;  // all hole
  ASSERT_TRUE(vol_->setattr(h, in, FUSE_SET_ATTR_SIZE, out).ok());
  auto s = compute_stats(*store_);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->files, 4u);
  EXPECT_EQ(s->dirs, 2u);
  EXPECT_EQ(s->symlinks, 1u);
  EXPECT_EQ(s->others, 1u);
  EXPECT_EQ(s->logical_bytes, 8'000'000u);
  EXPECT_EQ(s->referenced_bytes, 3'000'000u) << "holes are not referenced bytes";
  EXPECT_EQ(s->unique_chunk_bytes, 2'000'000u) << "the duplicate counts once";
  EXPECT_NEAR(s->dedup_ratio(), 1.5, 1e-9);
  EXPECT_EQ(s->garbage_chunks, 0u);
  // Random data is stored raw, text with zstd (a tiny tail chunk of the text may be raw).
  EXPECT_GE(s->raw_by_codec["raw"], 1'000'000u);
  EXPECT_LT(s->raw_by_codec["raw"], 1'000'000u + 20'000u);
  EXPECT_EQ(s->raw_by_codec["raw"] + s->raw_by_codec["zstd"], 2'000'000u);
  EXPECT_LT(s->stored_by_codec["zstd"], 500'000u);
  EXPECT_EQ(s->chunks, s->chunks_by_codec["raw"] + s->chunks_by_codec["zstd"]);
  EXPECT_EQ(s->stored_bytes, s->stored_by_codec["raw"] + s->stored_by_codec["zstd"]);
  EXPECT_EQ(s->stored_by_codec["raw"], s->raw_by_codec["raw"] + kRecordHeaderSize * s->chunks_by_codec["raw"])
      << "raw records cost their payload and header";
  EXPECT_GT(s->compression_ratio(), 1.0);
  EXPECT_GE(s->pack_bytes, s->stored_bytes);
  EXPECT_GT(s->index_bytes, 0u);
  std::string text = stats_text(*s), json = stats_json(*s);
  EXPECT_NE(text.find("dedup ratio:        1.500"), std::string::npos) << text;
  EXPECT_NE(json.find("\"referenced_bytes\": 3000000"), std::string::npos) << json;
  // Deleting the text file turns its chunks into garbage.
  ASSERT_TRUE(vol_->unlink(kRoot, "t").ok());
  vol_->forget(t, 1);
  s = compute_stats(*store_);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->files, 3u);
  EXPECT_EQ(s->unique_chunk_bytes, 1'000'000u);
  EXPECT_GT(s->garbage_chunks, 0u);
  EXPECT_EQ(s->chunks_by_codec.count("zstd"), 0u);
}

TEST_F(VolumeTest, GcReclaimsDeletedFilesPacks) {
  uint64_t big = mkfile(kRoot, "big"), small = mkfile(kRoot, "small");
  std::string bdata = test::random_bytes(3'000'000, 21), sdata = test::random_bytes(600'000, 22);
  put_content(big, bdata);
  put_content(small, sdata);
  remount();  // a finished session: its pack is no longer the one being written
  auto s0 = compute_stats(*store_);
  ASSERT_TRUE(s0.ok());
  ASSERT_TRUE(vol_->unlink(kRoot, "big").ok());
  ASSERT_TRUE(store_->commit().ok());
  auto g = collect_garbage(*store_);
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_GT(g->chunks_deleted, 0u);
  EXPECT_EQ(g->packs_compacted, 1u) << "the pack is mostly garbage: compacted";
  EXPECT_GT(g->records_moved, 0u);
  EXPECT_LT(g->pack_bytes_after, g->pack_bytes_before / 2);
  auto s1 = compute_stats(*store_);
  ASSERT_TRUE(s1.ok());
  EXPECT_LT(s1->pack_bytes, s0->pack_bytes / 2) << "pack bytes did not shrink";
  EXPECT_GE(s1->pack_bytes, 600'000u);
  EXPECT_EQ(s1->garbage_chunks, 0u);
  EXPECT_TRUE(content(small) == sdata);
  expect_fsck_clean("after gc");
  remount();  // cold cache: the moved records are read from their new pack
  EXPECT_TRUE(content(small) == sdata);
  expect_fsck_clean("after gc and remount");
  // Delete the rest: every pack of the earlier sessions goes.
  ASSERT_TRUE(vol_->unlink(kRoot, "small").ok());
  remount();
  g = collect_garbage(*store_);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->pack_bytes_after, 0u);
  EXPECT_TRUE(store_->packs.list().empty());
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks"), 0);
}

// gc compaction must not remove a pack whose live record it could not read: that would turn a
// damaged chunk into a missing one and throw away the evidence.
TEST_F(VolumeTest, GcKeepsPackWithUnreadableLiveRecord) {
  uint64_t big = mkfile(kRoot, "big"), small = mkfile(kRoot, "small");
  put_content(big, test::random_bytes(3'000'000, 41));
  std::string sdata = test::random_bytes(400'000, 42);
  put_content(small, sdata);
  int64_t bad = test::sql_i64(*store_, "SELECT MIN(chunk) FROM extents WHERE ino = " + std::to_string(small));
  int64_t pack = test::sql_i64(*store_, "SELECT pack FROM chunks WHERE id = " + std::to_string(bad));
  int64_t off = test::sql_i64(*store_, "SELECT off FROM chunks WHERE id = " + std::to_string(bad));
  remount();
  test::flip_byte(store_->packs.path_of(uint32_t(pack)), uint64_t(off + kRecordHeaderSize + 10));
  ASSERT_TRUE(vol_->unlink(kRoot, "big").ok());
  auto g = collect_garbage(*store_);
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_GT(g->records_moved, 0u) << "the readable live records are still moved";
  EXPECT_EQ(g->packs_compacted, 0u);
  EXPECT_TRUE(std::filesystem::exists(store_->packs.path_of(uint32_t(pack)))) << "pack with an unreadable live record removed";
  EXPECT_EQ(test::sql_i64(*store_, "SELECT pack FROM chunks WHERE id = " + std::to_string(bad)), pack);
  auto r = check_volume(*store_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->damaged_files, std::vector<std::string>{"/small"});
  for (auto& p : r->problems) EXPECT_EQ(p.find("missing"), std::string::npos) << p;
}

TEST_F(VolumeTest, GcInTheSameSessionCollectsChunks) {
  uint64_t f = mkfile(kRoot, "f");
  put_content(f, test::random_bytes(1'000'000, 31));
  ASSERT_TRUE(vol_->unlink(kRoot, "f").ok());
  vol_->forget(f, 1);
  ASSERT_TRUE(store_->commit().ok());
  auto g = collect_garbage(*store_);
  ASSERT_TRUE(g.ok());
  EXPECT_GT(g->chunks_deleted, 0u);
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks"), 0);
  auto s = compute_stats(*store_);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->chunks, 0u);
  EXPECT_EQ(s->garbage_chunks, 0u);
}

// Writers, readers, commits and background gc passes at once, as in a mount: every read returns
// the right bytes, and the volume is consistent afterwards.
TEST_F(VolumeTest, ConcurrentWritersReadersCommitsAndGc) {
  // A previous session leaves a static file and garbage beside it in one pack, so gc compacts
  // (moves) the static file's records while readers read it.
  uint64_t stat_ino = mkfile(kRoot, "static"), junk = mkfile(kRoot, "junk");
  const std::string stat_data = test::random_bytes(1'500'000, 1);
  put_content(stat_ino, stat_data);
  put_content(junk, test::random_bytes(3'000'000, 2));
  remount();
  ASSERT_TRUE(vol_->unlink(kRoot, "junk").ok());

  constexpr int kWriters = 4;
  std::vector<uint64_t> inos;
  for (int i = 0; i < kWriters; ++i) {
    std::string name = std::to_string(i);
    name.insert(name.begin(), 'w');  // not "w" + ...: GCC 12 warns falsely (-Wrestrict) on that
    inos.push_back(mkfile(kRoot, name));
  }
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0}, gc_passes{0}, moved{0};
  std::vector<std::string> models(kWriters);
  std::mutex fail_mu;
  std::string first_failure;
  auto fail = [&](const std::string& why) {
    std::lock_guard<std::mutex> g(fail_mu);
    if (first_failure.empty()) first_failure = why;
    ++errors;
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937_64 rng(100 + w);
      std::string& model = models[w];
      uint64_t ino = inos[w];
      for (int it = 0; it < 40 && !errors; ++it) {
        if (!vol_->open(ino, O_RDWR).ok()) return fail("open");
        for (int k = 0; k < 4; ++k) {
          uint64_t off = rng() % (model.size() + 100000);
          size_t n = 1 + rng() % 300000;
          std::string d = (rng() % 3) ? test::random_bytes(n, rng()) : test::text_bytes(n, rng());
          if (!vol_->write(ino, off, d.data(), n).ok()) return fail("write");
          if (model.size() < off + n) model.resize(off + n, '\0');
          model.replace(off, n, d);
        }
        if (rng() % 4 == 0) {
          struct stat in {}, out {};
          in.st_size = off_t(rng() % (model.size() + 1));
          if (!vol_->setattr(ino, in, FUSE_SET_ATTR_SIZE, out).ok()) return fail("truncate");
          model.resize(size_t(in.st_size));
        }
        if (model.size() > 3'000'000) {
          struct stat in {}, out {};
          in.st_size = 1'000'000;
          if (!vol_->setattr(ino, in, FUSE_SET_ATTR_SIZE, out).ok()) return fail("truncate");
          model.resize(1'000'000);
        }
        std::string got;
        if (!vol_->read(ino, 0, model.size() + 10, got).ok() || got != model) return fail("read while open");
        if (!vol_->release(ino, O_RDWR).ok()) return fail("release");
        got.clear();
        if (!vol_->read(ino, 0, model.size() + 10, got).ok() || got != model)
          return fail("read after release, writer " + std::to_string(w) + " iteration " + std::to_string(it));
      }
    });
  }
  threads.emplace_back([&] {  // reader of the static file
    std::mt19937_64 rng(7);
    while (!stop) {
      uint64_t off = rng() % stat_data.size();
      std::string got;
      if (!vol_->read(stat_ino, off, 200000, got).ok() || got != stat_data.substr(off, 200000))
        return fail("static read at " + std::to_string(off));
    }
  });
  threads.emplace_back([&] {  // background gc, two-phase as in a mount
    std::set<int64_t> seen;
    while (!stop) {
      GcOptions o;
      o.previous_garbage = &seen;
      o.compact_below_live = 0.5;
      auto r = collect_garbage(*store_, o);
      if (!r.ok()) return fail("gc: " + r.status().message());
      moved += int(r->records_moved);
      ++gc_passes;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  threads.emplace_back([&] {  // the commit timer
    while (!stop) {
      if (!store_->commit().ok()) return fail("commit");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  for (int w = 0; w < kWriters; ++w) threads[size_t(w)].join();
  // gc skips compaction while chunk appends are in flight; with the writers done it gets to it,
  // still beside the reader.
  for (int i = 0; i < 2000 && moved.load() == 0 && !errors; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  stop = true;
  for (size_t i = kWriters; i < threads.size(); ++i) threads[i].join();
  ASSERT_EQ(errors.load(), 0) << first_failure;
  EXPECT_GT(gc_passes.load(), 2);
  EXPECT_GT(moved.load(), 0) << "gc never compacted the old pack";
  for (int w = 0; w < kWriters; ++w) EXPECT_TRUE(content(inos[size_t(w)]) == models[size_t(w)]) << w;
  EXPECT_TRUE(content(stat_ino) == stat_data);
  ASSERT_TRUE(store_->commit().ok());
  expect_fsck_clean("after the concurrent run");
  remount();
  for (int w = 0; w < kWriters; ++w) EXPECT_TRUE(content(inos[size_t(w)]) == models[size_t(w)]) << w;
  EXPECT_TRUE(content(stat_ino) == stat_data);
  expect_fsck_clean("after remount");
}

}  // namespace
}  // namespace dzfs
