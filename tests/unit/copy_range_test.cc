// Volume::copy_range (copy_file_range inside the volume): round trips at odd offsets and lengths
// against a std::string model, chunk sharing (a copy stores no chunk), independence of the copies,
// same-file copies, dirty sources, truncation after a copy, errors, and chunks.refcount equal to
// the number of extents rows naming each chunk after every step (what dzfs fsck checks). No mounts.
#define FUSE_USE_VERSION 314
#include <fcntl.h>
#include <fuse3/fuse_lowlevel.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <thread>
#include <tuple>
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

constexpr uint64_t kRoot = kRootIno;

class CopyRangeTest : public ::testing::Test {
 protected:
  // Small chunks (1/4/16 KiB), so that files of a few hundred KiB cross many chunk boundaries.
  void SetUp() override {
    dir_ = tmp_.path() + "/store";
    StoreConfig cfg;
    cfg.chunk_min = 1024;
    cfg.chunk_avg = 4096;
    cfg.chunk_max = 16384;
    store_ = test::make_store(dir_, cfg);
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
  uint64_t mkfile(const std::string& name) {
    struct stat st {};
    Status s = vol_->mknod(kRoot, name, S_IFREG | 0644, 0, Caller{}, st);
    EXPECT_TRUE(s.ok()) << name << ": " << s.message();
    return st.st_ino;
  }
  void write(uint64_t ino, uint64_t off, const std::string& d) {
    Status s = vol_->write(ino, off, d.data(), d.size());
    ASSERT_TRUE(s.ok()) << "write at " << off << ": " << s.message();
  }
  // A whole file written and closed (applied), 64 KiB per write as the kernel would.
  void put_content(uint64_t ino, const std::string& data) {
    ASSERT_TRUE(vol_->open(ino, O_WRONLY).ok());
    for (size_t off = 0; off < data.size(); off += 65536) write(ino, off, data.substr(off, 65536));
    ASSERT_TRUE(vol_->release(ino, O_WRONLY).ok());
  }
  std::string content(uint64_t ino) {
    std::string out;
    Status s = vol_->read(ino, 0, 1u << 30, out);
    EXPECT_TRUE(s.ok()) << s.message();
    return out;
  }
  // What copy_file_range must do to the destination's bytes; returns the count it must report.
  static uint64_t model_copy(const std::string& src, uint64_t off_in, std::string& dst, uint64_t off_out,
                             uint64_t len) {
    if (off_in >= src.size()) return 0;
    uint64_t n = std::min<uint64_t>(len, src.size() - off_in);
    std::string piece = src.substr(off_in, n);  // a copy first: src may be dst
    if (dst.size() < off_out + n) dst.resize(off_out + n, '\0');
    dst.replace(off_out, n, piece);
    return n;
  }
  // Copies through the Volume as the FUSE op does (source open for reading, destination for
  // writing), checks the count, and applies the same copy to the model.
  void copy(uint64_t in, const std::string& src_model, uint64_t off_in, uint64_t out, std::string& dst_model,
            uint64_t off_out, uint64_t len) {
    std::string src_before = src_model;  // src_model may be dst_model
    ASSERT_TRUE(vol_->open(in, O_RDONLY).ok());
    ASSERT_TRUE(vol_->open(out, O_WRONLY).ok());
    uint64_t copied = 12345;
    Status s = vol_->copy_range(in, off_in, out, off_out, len, copied);
    ASSERT_TRUE(s.ok()) << "copy " << off_in << "+" << len << " -> " << off_out << ": " << s.message();
    ASSERT_TRUE(vol_->release(out, O_WRONLY).ok());
    ASSERT_TRUE(vol_->release(in, O_RDONLY).ok());
    EXPECT_EQ(copied, model_copy(src_before, off_in, dst_model, off_out, len))
        << "copy " << off_in << "+" << len << " -> " << off_out;
  }
  void expect_content(uint64_t ino, const std::string& model, const std::string& what) {
    std::string got = content(ino);
    ASSERT_EQ(got.size(), model.size()) << what;
    if (got != model) {
      size_t i = 0;
      while (got[i] == model[i]) ++i;
      FAIL() << what << ": first difference at byte " << i;
    }
  }
  // chunks.refcount is exactly the number of extents rows naming the chunk; no row names a
  // missing chunk; and fsck (which also reads every chunk) is clean.
  void expect_consistent(const std::string& where) {
    EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks c WHERE refcount != "
                                     "(SELECT COUNT(*) FROM extents e WHERE e.chunk = c.id)"),
              0)
        << where << ": a refcount differs from its extents rows";
    EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM extents e WHERE NOT EXISTS "
                                     "(SELECT 1 FROM chunks c WHERE c.id = e.chunk)"),
              0)
        << where << ": an extent names a missing chunk";
    auto r = check_volume(*store_);
    ASSERT_TRUE(r.ok()) << r.status().message();
    for (auto& p : r->problems) ADD_FAILURE() << where << ": fsck: " << p;
  }
  int64_t chunk_count() { return test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks"); }
  // File offsets where the source's extents start (its chunk boundaries).
  std::vector<uint64_t> extent_starts(uint64_t ino) {
    std::vector<uint64_t> out;
    for (auto& r : test::sql_rows(*store_, "SELECT off FROM extents WHERE ino = " + std::to_string(ino) + " ORDER BY off"))
      out.push_back(uint64_t(r[0]));
    return out;
  }

  test::TempDir tmp_;
  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Volume> vol_;
};

// A source of random bytes with a hole in the middle (a run of zeros is stored as no chunk).
std::string holey_source() {
  std::string s = test::random_bytes(300'000, 7);
  std::fill(s.begin() + 120'000, s.begin() + 150'000, '\0');
  return s;
}

TEST_F(CopyRangeTest, RoundTripsAtOddOffsetsAndLengths) {
  const std::string src = holey_source();
  uint64_t in = mkfile("src");
  put_content(in, src);
  std::vector<uint64_t> starts = extent_starts(in);
  ASSERT_GT(starts.size(), 20u);
  const uint64_t b1 = starts[3], b2 = starts[10];  // chunk boundaries
  struct Case {
    uint64_t off_in, off_out, len;
  };
  const Case cases[] = {
      {0, 0, src.size()},               // whole file
      {1, 1, 77'777},                   // odd everything
      {b1 - 1, 0, b2 - b1 + 2},         // boundaries -1 .. +1
      {b1, 5, b2 - b1},                 // exactly the chunks between two boundaries, moved
      {b1 + 1, b2 - 1, 3},              // a few bytes mid-chunk
      {b1 + 1000, 65'537, 1},           // one byte
      {100'000, 0, 80'000},             // across the hole
      {125'000, 3, 10'000},             // inside the hole only
      {250'001, 40'000, 1u << 30},      // len past the source's end: clipped
      {7, 400'000, 50'000},             // past the destination's end: a hole before it
      {299'999, 299'999, 10},           // the last byte
  };
  std::vector<std::pair<uint64_t, std::string>> dsts;  // inode, model
  for (const Case& c : cases) {
    const std::string what = "case " + std::to_string(dsts.size());
    uint64_t out = mkfile("dst" + std::to_string(dsts.size()));
    std::string model = test::random_bytes(200'000 + 1000 * dsts.size(), 100 + dsts.size());
    put_content(out, model);
    const int64_t chunks_before = chunk_count();
    copy(in, src, c.off_in, out, model, c.off_out, c.len);
    EXPECT_EQ(chunk_count(), chunks_before) << what << ": the copy stored a chunk";
    expect_content(out, model, what);
    expect_content(in, src, what + " (source)");
    struct stat st {};
    ASSERT_TRUE(vol_->getattr(out, st).ok());
    EXPECT_EQ(uint64_t(st.st_size), model.size()) << what;
    dsts.emplace_back(out, model);
  }
  expect_consistent("after the copies");
  remount();
  for (auto& [out, model] : dsts) expect_content(out, model, "after remount");
  expect_content(in, src, "source after remount");
  expect_consistent("after remount");
}

// Copies into an empty file, into the middle of one, and of a copy; read back after a remount.
TEST_F(CopyRangeTest, CopiesSurviveRemount) {
  const std::string src = holey_source();
  uint64_t in = mkfile("src"), a = mkfile("a"), b = mkfile("b");
  put_content(in, src);
  std::string ma, mb = test::text_bytes(90'000, 3);
  put_content(b, mb);
  copy(in, src, 3, a, ma, 11, 250'000);       // into an empty file at an odd offset
  copy(in, src, 140'001, b, mb, 45'000, 99'999);
  copy(a, ma, 17, b, mb, 200'000, 12'345);    // a copy of a copy, past b's end
  remount();
  expect_content(a, ma, "a after remount");
  expect_content(b, mb, "b after remount");
  expect_content(in, src, "src after remount");
  expect_consistent("after remount");
}

TEST_F(CopyRangeTest, WholeChunksAreSharedNotStored) {
  const std::string src = test::random_bytes(2'000'000, 21);
  uint64_t in = mkfile("src"), out = mkfile("dst");
  put_content(in, src);
  auto s0 = compute_stats(*store_);
  ASSERT_TRUE(s0.ok());
  const uint64_t packs0 = s0->pack_bytes;
  std::string model;
  copy(in, src, 0, out, model, 0, src.size());
  expect_content(out, model, "copy");
  auto s1 = compute_stats(*store_);
  ASSERT_TRUE(s1.ok());
  EXPECT_EQ(s1->unique_chunk_bytes, s0->unique_chunk_bytes) << "the copy stored new chunk bytes";
  EXPECT_EQ(s1->chunks, s0->chunks);
  EXPECT_EQ(s1->pack_bytes, packs0) << "the copy appended to a pack";
  EXPECT_EQ(s1->referenced_bytes, 2 * s0->referenced_bytes);
  // Extent for extent, the destination names the source's chunks.
  const std::string q = "SELECT off, len, chunk, chunk_off FROM extents WHERE ino = ";
  EXPECT_EQ(test::sql_rows(*store_, q + std::to_string(in) + " ORDER BY off"),
            test::sql_rows(*store_, q + std::to_string(out) + " ORDER BY off"));
  EXPECT_EQ(test::sql_i64(*store_, "SELECT MIN(refcount) FROM chunks"), 2);
  expect_consistent("after a whole-file copy");
}

// The partial chunks at the ends of an odd copy are shared as parts (chunk_off, len), not re-cut.
TEST_F(CopyRangeTest, PartialEndsNameParts) {
  const std::string src = test::random_bytes(200'000, 5);
  uint64_t in = mkfile("src"), out = mkfile("dst");
  put_content(in, src);
  std::string model;
  copy(in, src, 1001, out, model, 0, 150'000);
  auto first = test::sql_rows(*store_, "SELECT off, chunk_off FROM extents WHERE ino = " + std::to_string(out) +
                                           " ORDER BY off LIMIT 1");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0][0], 0);
  EXPECT_EQ(first[0][1], 1001) << "the first piece names the source's first chunk from byte 1001";
  EXPECT_EQ(test::sql_i64(*store_, "SELECT SUM(len) FROM extents WHERE ino = " + std::to_string(out)), 150'000);
  expect_content(out, model, "copy");
  expect_consistent("after a partial copy");
}

TEST_F(CopyRangeTest, HolesStayHoles) {
  std::string src(500'000, '\0');
  std::string data = test::random_bytes(20'000, 9);
  src.replace(300'000, data.size(), data);
  uint64_t in = mkfile("src"), out = mkfile("dst");
  ASSERT_TRUE(vol_->open(in, O_WRONLY).ok());
  write(in, 300'000, data);
  struct stat a {}, o {};
  a.st_size = 500'000;
  ASSERT_TRUE(vol_->setattr(in, a, FUSE_SET_ATTR_SIZE, o).ok());
  ASSERT_TRUE(vol_->release(in, O_WRONLY).ok());
  std::string model = test::random_bytes(400'000, 10);
  put_content(out, model);
  copy(in, src, 0, out, model, 1, 500'000);
  expect_content(out, model, "copy");
  // The destination keeps its own byte 0; of the source's 500'000 bytes only the 20'000 of data
  // may become extents: its holes must be holes in the destination too.
  EXPECT_EQ(test::sql_i64(*store_, "SELECT SUM(len) FROM extents WHERE ino = " + std::to_string(out)), 1 + 20'000);
  expect_consistent("after copying a sparse file");
}

TEST_F(CopyRangeTest, CopiesAreIndependent) {
  const std::string src0 = test::random_bytes(400'000, 31);
  std::string src = src0, dst;
  uint64_t in = mkfile("src"), out = mkfile("dst");
  put_content(in, src);
  copy(in, src, 0, out, dst, 0, src.size());
  // Writing the source (in place, at a shared chunk, and an append) leaves the copy as it was.
  std::string w = test::random_bytes(5000, 32);
  ASSERT_TRUE(vol_->open(in, O_WRONLY).ok());
  write(in, 100'003, w);
  write(in, src.size(), w);
  ASSERT_TRUE(vol_->release(in, O_WRONLY).ok());
  src.replace(100'003, w.size(), w);
  src += w;
  expect_content(in, src, "source after its write");
  expect_content(out, src0, "copy after the source's write");
  // And writing the copy leaves the source as it is.
  ASSERT_TRUE(vol_->open(out, O_WRONLY).ok());
  write(out, 3, w);
  ASSERT_TRUE(vol_->release(out, O_WRONLY).ok());
  dst.replace(3, w.size(), w);
  expect_content(out, dst, "copy after its write");
  expect_content(in, src, "source after the copy's write");
  expect_consistent("after writes to both");
  // Removing the source keeps the copy whole.
  ASSERT_TRUE(vol_->unlink(kRoot, "src").ok());
  vol_->forget(in, 1);
  expect_content(out, dst, "copy after the source is gone");
  expect_consistent("after unlinking the source");
  remount();
  expect_content(out, dst, "copy after remount");
}

TEST_F(CopyRangeTest, SameFileNonOverlappingAndOverlapping) {
  std::string model = test::random_bytes(100'000, 41);
  uint64_t f = mkfile("f");
  put_content(f, model);
  copy(f, model, 0, f, model, 60'000, 40'000);      // ranges touch, do not overlap
  copy(f, model, 90'000, f, model, 100'000, 1u << 30);  // clipped to 10'000 first: no overlap
  copy(f, model, 5, f, model, 150'001, 30'000);     // past the end: a hole before it
  expect_content(f, model, "after same-file copies");
  for (auto [off_in, off_out, len] : {std::tuple<uint64_t, uint64_t, uint64_t>{0, 1, 2},
                                      {1000, 0, 1001}, {50'000, 50'000, 1}, {0, 39'999, 40'000}}) {
    uint64_t copied = 7;
    Status s = vol_->copy_range(f, off_in, f, off_out, len, copied);
    EXPECT_EQ(s.code(), EINVAL) << off_in << " -> " << off_out << " len " << len;
    EXPECT_EQ(copied, 0u);
  }
  expect_content(f, model, "after refused overlapping copies");
  expect_consistent("after same-file copies");
  remount();
  expect_content(f, model, "after remount");
}

// A source being written (dirty bytes not yet chunked, not applied) is copied as it reads now.
TEST_F(CopyRangeTest, CopyFromSourceWithDirtyWrites) {
  std::string src = test::random_bytes(300'000, 51), dst = test::random_bytes(100'000, 52);
  uint64_t in = mkfile("src"), out = mkfile("dst");
  put_content(in, src);
  put_content(out, dst);
  ASSERT_TRUE(vol_->open(in, O_WRONLY).ok());
  std::string w = test::random_bytes(7'000, 53);
  write(in, 50'001, w);
  write(in, 310'000, w);  // past the end: a hole, then new bytes
  src.replace(50'001, w.size(), w);
  src.resize(310'000, '\0');
  src += w;
  // The destination has its own unflushed bytes, outside and inside the copy's range.
  ASSERT_TRUE(vol_->open(out, O_WRONLY).ok());
  write(out, 10, w);
  write(out, 90'000, w);
  dst.replace(10, w.size(), w);
  dst.replace(90'000, w.size(), w);
  copy(in, src, 45'000, out, dst, 80'000, 300'000);
  expect_content(out, dst, "destination while both are open");
  ASSERT_TRUE(vol_->release(out, O_WRONLY).ok());
  ASSERT_TRUE(vol_->release(in, O_WRONLY).ok());
  expect_content(in, src, "source after close");
  expect_content(out, dst, "destination after close");
  expect_consistent("after copying from a dirty source");
  remount();
  expect_content(in, src, "source after remount");
  expect_content(out, dst, "destination after remount");
}

TEST_F(CopyRangeTest, CopyThenTruncate) {
  const std::string src = test::random_bytes(200'000, 61);
  uint64_t in = mkfile("src"), out = mkfile("dst");
  put_content(in, src);
  std::string dst = test::text_bytes(30'000, 62);
  put_content(out, dst);
  copy(in, src, 999, out, dst, 20'001, 150'000);
  struct stat a {}, o {};
  for (uint64_t size : {100'003u, 20'500u, 250'000u, 0u}) {
    a.st_size = off_t(size);
    ASSERT_TRUE(vol_->setattr(out, a, FUSE_SET_ATTR_SIZE, o).ok());
    dst.resize(size, '\0');
    expect_content(out, dst, "truncated to " + std::to_string(size));
    expect_consistent("truncated to " + std::to_string(size));
    if (size == 20'500u) {
      remount();
      expect_content(out, dst, "after remount");
    }
  }
  expect_content(in, src, "source");
}

TEST_F(CopyRangeTest, SizeAndTimesAsAWrite) {
  const std::string src = test::random_bytes(50'000, 71);
  uint64_t in = mkfile("src"), out = mkfile("dst");
  put_content(in, src);
  struct stat a {}, o {};
  a.st_mtim.tv_sec = a.st_ctim.tv_sec = 1000;
  ASSERT_TRUE(vol_->setattr(out, a, FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_CTIME, o).ok());
  ASSERT_TRUE(vol_->setattr(in, a, FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_CTIME, o).ok());
  std::string dst;
  copy(in, src, 0, out, dst, 70'000, 50'000);
  ASSERT_TRUE(vol_->getattr(out, o).ok());
  EXPECT_EQ(o.st_size, 120'000);
  EXPECT_GT(o.st_mtim.tv_sec, 1000);
  EXPECT_GT(o.st_ctim.tv_sec, 1000);
  EXPECT_EQ(o.st_blocks, 50'000 / 512 + 1) << "blocks count the data, not the hole before it";
  ASSERT_TRUE(vol_->getattr(in, o).ok());
  EXPECT_EQ(o.st_mtim.tv_sec, 1000) << "the source is not modified";
}

TEST_F(CopyRangeTest, ErrorsAndNothingToCopy) {
  const std::string src = test::random_bytes(10'000, 81);
  uint64_t in = mkfile("src"), out = mkfile("dst");
  put_content(in, src);
  struct stat st {};
  ASSERT_TRUE(vol_->mkdir(kRoot, "d", 0755, Caller{}, st).ok());
  const uint64_t dir = st.st_ino;
  ASSERT_TRUE(vol_->mknod(kRoot, "fifo", S_IFIFO | 0644, 0, Caller{}, st).ok());
  const uint64_t fifo = st.st_ino;
  ASSERT_TRUE(vol_->symlink(kRoot, "l", "src", Caller{}, st).ok());
  const uint64_t link = st.st_ino;
  uint64_t copied = 1;
  EXPECT_EQ(vol_->copy_range(dir, 0, out, 0, 10, copied).code(), EISDIR);
  EXPECT_EQ(vol_->copy_range(in, 0, dir, 0, 10, copied).code(), EISDIR);
  EXPECT_EQ(vol_->copy_range(fifo, 0, out, 0, 10, copied).code(), EINVAL);
  EXPECT_EQ(vol_->copy_range(in, 0, link, 0, 10, copied).code(), EINVAL);
  EXPECT_EQ(vol_->copy_range(in, 0, 999'999, 0, 10, copied).code(), ENOENT);
  EXPECT_EQ(vol_->copy_range(in, 0, out, uint64_t(INT64_MAX) - 5, 10, copied).code(), EFBIG);
  EXPECT_EQ(copied, 0u);
  // At or past the source's end, or of length 0: nothing copied, the destination untouched.
  for (auto [off_in, len] : {std::pair<uint64_t, uint64_t>{10'000, 5}, {20'000, 5}, {0, 0}}) {
    copied = 1;
    ASSERT_TRUE(vol_->copy_range(in, off_in, out, 100, len, copied).ok());
    EXPECT_EQ(copied, 0u);
    ASSERT_TRUE(vol_->getattr(out, st).ok());
    EXPECT_EQ(st.st_size, 0) << "an empty copy grew the destination";
  }
  expect_consistent("after refused copies");
}

// The copy holds its chunks by itself: the source's chunks were only pinned by the source (never
// applied) when copied, then the source is rewritten and removed and gc runs; the copy stays whole.
TEST_F(CopyRangeTest, SharedChunksOutliveTheSourceThroughGc) {
  const std::string data = test::random_bytes(300'000, 91);
  uint64_t in = mkfile("src"), out = mkfile("dst");
  ASSERT_TRUE(vol_->open(in, O_WRONLY).ok());
  write(in, 0, data);  // dirty, not applied: the index knows none of these chunks for src
  // The destination stays open (not released) until after gc: nothing but the copy itself may
  // be what keeps its chunks.
  ASSERT_TRUE(vol_->open(out, O_WRONLY).ok());
  uint64_t copied = 0;
  ASSERT_TRUE(vol_->copy_range(in, 5, out, 0, data.size(), copied).ok());
  ASSERT_EQ(copied, data.size() - 5);
  const std::string dst = data.substr(5);
  write(in, 0, test::random_bytes(300'000, 92));
  ASSERT_TRUE(vol_->release(in, O_WRONLY).ok());
  ASSERT_TRUE(vol_->unlink(kRoot, "src").ok());
  vol_->forget(in, 1);
  for (int pass = 0; pass < 2; ++pass) {
    ASSERT_TRUE(store_->commit().ok());
    auto g = collect_garbage(*store_);
    ASSERT_TRUE(g.ok()) << g.status().message();
  }
  expect_content(out, dst, "copy after the source's chunks were rewritten, removed and collected");
  ASSERT_TRUE(vol_->release(out, O_WRONLY).ok());
  expect_content(out, dst, "copy after its close");
  expect_consistent("after gc");
  remount();
  expect_content(out, dst, "copy after remount");
}

// Copies in both directions between two files, writes to both and commits at once: the two
// FileState locks are taken in inode order, so this ends; refcounts stay exact, fsck is clean,
// and the files read the same after a remount.
TEST_F(CopyRangeTest, ConcurrentCrossCopiesWritesAndCommits) {
  uint64_t a = mkfile("a"), b = mkfile("b");
  put_content(a, test::random_bytes(200'000, 101));
  put_content(b, test::random_bytes(200'000, 102));
  std::atomic<bool> failed{false};
  auto copier = [&](uint64_t from, uint64_t to, uint64_t seed) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < 150 && !failed; ++i) {
      uint64_t copied = 0;
      Status s = vol_->copy_range(from, rng() % 200'000, to, rng() % 200'000, 1 + rng() % 60'000, copied);
      if (!s.ok() && !(from == to && s.code() == EINVAL)) failed = true;  // overlap: EINVAL is right
    }
  };
  auto writer = [&](uint64_t ino, uint64_t seed) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < 60 && !failed; ++i) {
      std::string w = test::random_bytes(1 + rng() % 10'000, rng());
      if (!vol_->open(ino, O_WRONLY).ok() || !vol_->write(ino, rng() % 200'000, w.data(), w.size()).ok() ||
          !vol_->release(ino, O_WRONLY).ok() || !store_->commit().ok())
        failed = true;
    }
  };
  std::vector<std::thread> ts;
  ts.emplace_back(copier, a, b, 1);
  ts.emplace_back(copier, b, a, 2);
  ts.emplace_back(copier, a, a, 3);  // same-file copies (EINVAL when they overlap: not a failure here)
  ts.emplace_back(writer, a, 4);
  ts.emplace_back(writer, b, 5);
  for (auto& t : ts) t.join();
  EXPECT_FALSE(failed) << "an operation failed";
  uint64_t copied = 0;
  EXPECT_TRUE(vol_->copy_range(a, 0, b, 0, 1000, copied).ok());
  EXPECT_EQ(copied, 1000u);
  expect_consistent("after concurrent copies and writes");
  std::string ca = content(a), cb = content(b);
  remount();
  expect_content(a, ca, "a after remount");
  expect_content(b, cb, "b after remount");
}

// Random copies (across files and within one), writes and truncates, each checked against a
// model; refcounts exact and fsck clean at the end, and again after a remount.
TEST_F(CopyRangeTest, RandomCopiesWritesAndTruncates) {
  std::mt19937_64 rng(2026);
  constexpr int kFiles = 3;
  uint64_t ino[kFiles];
  std::string model[kFiles];
  for (int f = 0; f < kFiles; ++f) {
    ino[f] = mkfile("f" + std::to_string(f));
    model[f] = test::random_bytes(100'000 + 50'000 * f, 90 + f);
    put_content(ino[f], model[f]);
  }
  auto pick = [&](uint64_t bound) { return bound ? rng() % bound : 0; };
  for (int step = 0; step < 120; ++step) {
    int a = int(rng() % kFiles), b = int(rng() % kFiles);
    switch (rng() % 5) {
      case 0: {  // write
        std::string w = test::random_bytes(1 + pick(20'000), rng());
        uint64_t off = pick(model[a].size() + 10'000);
        ASSERT_TRUE(vol_->open(ino[a], O_WRONLY).ok());
        write(ino[a], off, w);
        ASSERT_TRUE(vol_->release(ino[a], O_WRONLY).ok());
        if (model[a].size() < off + w.size()) model[a].resize(off + w.size(), '\0');
        model[a].replace(off, w.size(), w);
        break;
      }
      case 1: {  // truncate
        struct stat in {}, out {};
        uint64_t size = pick(model[a].size() + 20'000);
        in.st_size = off_t(size);
        ASSERT_TRUE(vol_->setattr(ino[a], in, FUSE_SET_ATTR_SIZE, out).ok());
        model[a].resize(size, '\0');
        break;
      }
      default: {  // copy
        uint64_t off_in = pick(model[a].size() + 1000), len = 1 + pick(120'000);
        uint64_t off_out = pick(model[b].size() + 20'000);
        uint64_t n = off_in < model[a].size() ? std::min<uint64_t>(len, model[a].size() - off_in) : 0;
        if (a == b && n && off_in < off_out + n && off_out < off_in + n) {
          uint64_t copied = 1;
          ASSERT_EQ(vol_->copy_range(ino[a], off_in, ino[b], off_out, len, copied).code(), EINVAL);
          break;
        }
        copy(ino[a], model[a], off_in, ino[b], model[b], off_out, len);
      }
    }
    for (int f = 0; f < kFiles; ++f) expect_content(ino[f], model[f], "step " + std::to_string(step));
    if (HasFatalFailure() || HasFailure()) return;
  }
  expect_consistent("after the random run");
  remount();
  for (int f = 0; f < kFiles; ++f) expect_content(ino[f], model[f], "after remount");
  expect_consistent("after remount");
}

}  // namespace
}  // namespace dzfs
