// FileState: a randomized model test of writes/truncates/reads/flush/apply against a std::string,
// with the index invariants checked after every apply; and the re-chunking rule (sequential writes
// chunk like a one-shot CDC pass, an in-place write re-chunks only the chunks it touches).
#include "fs/file_state.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "fs/volume.h"
#include "index/fsck.h"
#include "index/gc.h"
#include "index/schema.h"
#include "tests/unit/test_util.h"

namespace dzfs {
namespace {

struct ExtentRow {
  int64_t off, len, chunk, chunk_off;
  bool operator==(const ExtentRow&) const = default;
};

std::vector<ExtentRow> extent_rows(Store& st, uint64_t ino) {
  std::vector<ExtentRow> out;
  for (auto& r : test::sql_rows(st, "SELECT off, len, chunk, chunk_off FROM extents WHERE ino = " + std::to_string(ino) +
                                        " ORDER BY off"))
    out.push_back({r[0], r[1], r[2], r[3]});
  return out;
}

std::vector<size_t> cdc_cuts(const Chunker& c, const std::string& data) {
  std::vector<size_t> out;
  const uint8_t* p = reinterpret_cast<const uint8_t*>(data.data());
  for (size_t pos = 0; pos < data.size();) {
    size_t n = c.cut(p + pos, data.size() - pos);
    out.push_back(n);
    pos += n;
  }
  return out;
}

bool all_zero(const std::string& s, size_t off, size_t len) {
  return std::all_of(s.begin() + off, s.begin() + off + len, [](char c) { return c == 0; });
}

std::string gen_data(std::mt19937_64& rng, size_t n, const std::string& model) {
  switch (rng() % 6) {
    case 0: return std::string(n, '\0');
    case 1: return test::text_bytes(n, rng());
    case 2:  // a copy of existing content (dedup against the file's own chunks)
      if (model.size() > n) {
        size_t from = rng() % (model.size() - n);
        return model.substr(from, n);
      }
      [[fallthrough]];
    case 3: {  // random with zero gaps
      std::string s = test::random_bytes(n, rng());
      for (size_t i = 0; i < n; i += 20000) {
        size_t z = std::min<size_t>(n - i, rng() % 20000);
        std::fill(s.begin() + i, s.begin() + i + z, '\0');
      }
      return s;
    }
    default: return test::random_bytes(n, rng());
  }
}

class FileStateTest : public ::testing::Test {
 protected:
  // Small chunks make a ~1 MiB file hold hundreds of them, so the random test crosses many
  // boundaries; the 20 MB tests use the format defaults.
  void open(bool small_chunks) {
    StoreConfig cfg;
    if (small_chunks) {
      cfg.chunk_min = 1024;
      cfg.chunk_avg = 4096;
      cfg.chunk_max = 16384;
    }
    store_ = test::make_store(tmp_.path() + "/store", cfg);
    ASSERT_TRUE(store_);
    chunker_ = std::make_unique<Chunker>(cfg.chunk_min, cfg.chunk_avg, cfg.chunk_max);
    vol_ = std::make_unique<Volume>(*store_, VolumeOptions{});
  }
  uint64_t new_file(const std::string& name) {
    struct stat st {};
    Status s = vol_->mknod(kRootIno, name, S_IFREG | 0644, 0, Caller{}, st);
    EXPECT_TRUE(s.ok()) << s.message();
    return st.st_ino;
  }
  std::unique_ptr<FileState> state(uint64_t ino, size_t dirty_limit = 64u << 20) {
    auto fs = std::make_unique<FileState>(ino, store_->chunks, *chunker_, dirty_limit);
    Status s = fs->load(store_->index);
    EXPECT_TRUE(s.ok()) << s.message();
    return fs;
  }
  static void write(FileState& fs, uint64_t off, const std::string& d) {
    Status s = fs.write(off, d.data(), d.size());
    ASSERT_TRUE(s.ok()) << "write at " << off << ": " << s.message();
  }
  static void flush_apply(FileState& fs, Store& st) {
    Status s = fs.flush_dirty();
    ASSERT_TRUE(s.ok()) << s.message();
    s = fs.apply(st.index);
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_FALSE(fs.changed());
    EXPECT_EQ(fs.dirty_bytes(), 0u);
  }

  // Everything the index must say about `ino` once the model content is applied.
  void check_index(uint64_t ino, const std::string& model, const std::string& where) {
    SCOPED_TRACE(where);
    Store& st = *store_;
    EXPECT_EQ(test::sql_i64(st, "SELECT COUNT(*) FROM chunks c WHERE refcount != "
                                "(SELECT COUNT(*) FROM extents e WHERE e.chunk = c.id)"),
              0)
        << "chunks.refcount differs from the number of extents naming the chunk";
    EXPECT_EQ(test::sql_i64(st, "SELECT size FROM inodes WHERE ino = " + std::to_string(ino)), int64_t(model.size()));
    EXPECT_EQ(test::sql_i64(st, "SELECT data_bytes FROM inodes WHERE ino = " + std::to_string(ino)),
              test::sql_i64(st, "SELECT COALESCE(SUM(len), 0) FROM extents WHERE ino = " + std::to_string(ino)));
    auto rows = extent_rows(st, ino);
    int64_t prev_end = 0;
    std::set<int64_t> chunks;
    for (auto& e : rows) {
      EXPECT_GT(e.len, 0) << "empty extent at " << e.off;
      EXPECT_GE(e.off, prev_end) << "overlapping extents at " << e.off;
      EXPECT_LE(e.off + e.len, int64_t(model.size())) << "extent beyond EOF at " << e.off;
      prev_end = e.off + e.len;
      auto bytes = st.chunks.get(e.chunk);
      ASSERT_TRUE(bytes.ok()) << bytes.status().message();
      ASSERT_LE(uint64_t(e.chunk_off + e.len), (*bytes)->size()) << "extent outside its chunk at " << e.off;
      if (e.off + e.len <= int64_t(model.size())) {
        EXPECT_TRUE((*bytes)->compare(size_t(e.chunk_off), size_t(e.len), model, size_t(e.off), size_t(e.len)) == 0)
            << "extent at " << e.off << " holds bytes other than the file's";
      }
      chunks.insert(e.chunk);
    }
    for (int64_t id : chunks) {
      auto bytes = st.chunks.get(id);
      ASSERT_TRUE(bytes.ok());
      EXPECT_FALSE(all_zero(**bytes, 0, (*bytes)->size())) << "chunk " << id << " is all zeros: should be a hole";
    }
    FsckOptions fo;
    fo.verify_data = false;
    auto r = check_volume(st, fo);
    ASSERT_TRUE(r.ok()) << r.status().message();
    for (auto& p : r->problems) ADD_FAILURE() << "fsck: " << p;
    // A fresh FileState sees exactly the model.
    auto fresh = state(ino);
    EXPECT_EQ(fresh->size(), model.size());
    std::string got;
    ASSERT_TRUE(fresh->read(0, model.size() + 10, got).ok());
    EXPECT_TRUE(got == model) << "reloaded content differs (size " << got.size() << " vs " << model.size() << ")";
  }

  void run_model(uint64_t seed, int steps);

  test::TempDir tmp_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Chunker> chunker_;
  std::unique_ptr<Volume> vol_;
};

// ---- the randomized model test -----------------------------------------------------------

TEST_F(FileStateTest, RandomizedOperationsMatchModel) {
  open(true);
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    run_model(seed, 400);
    if (HasFatalFailure()) return;
  }
}

void FileStateTest::run_model(uint64_t seed, int steps) {
  std::mt19937_64 rng(seed);
  uint64_t ino = new_file("model" + std::to_string(seed));
  size_t dirty_limit = 16384 + rng() % 200000;
  auto fs = state(ino, dirty_limit);
  std::string model;
  std::string log;  // the operations so far, for the failure message
  for (int step = 0; step < steps; ++step) {
    int r = int(rng() % 100);
    char buf[160];
    if (model.size() > (1500u << 10)) r = 52;  // keep it small: truncate down
    if (r < 30 || (r >= 40 && r < 48)) {
      uint64_t off, n;
      std::string d;
      if (r < 30) {
        off = rng() % (model.size() + 4096);
        n = 1 + rng() % 40000;
        d = gen_data(rng, n, model);
      } else if (r < 44) {
        off = model.size() + 50000 + rng() % 400000;  // sparse, far past EOF
        n = 1 + rng() % 20000;
        d = gen_data(rng, n, model);
      } else {
        off = model.size() ? rng() % model.size() : 0;
        n = 1 + rng() % 120000;
        d.assign(n, '\0');  // zero-fill over existing data
      }
      snprintf(buf, sizeof buf, "write(%llu, %llu)\n", (unsigned long long)off, (unsigned long long)n);
      log += buf;
      Status s = fs->write(off, d.data(), d.size());
      ASSERT_TRUE(s.ok()) << s.message() << "\n" << log;
      if (model.size() < off + n) model.resize(off + n, '\0');
      model.replace(off, n, d);
    } else if (r < 40) {
      uint64_t n = 1 + rng() % 70000;
      std::string d = gen_data(rng, n, model);
      snprintf(buf, sizeof buf, "append(%llu) at %zu\n", (unsigned long long)n, model.size());
      log += buf;
      uint64_t off = model.size();
      Status s = fs->write(off, d.data(), d.size());
      ASSERT_TRUE(s.ok()) << s.message() << "\n" << log;
      model += d;
    } else if (r < 55) {
      uint64_t n = rng() % (model.size() + 1);
      snprintf(buf, sizeof buf, "truncate(%llu) from %zu\n", (unsigned long long)n, model.size());
      log += buf;
      ASSERT_TRUE(fs->truncate(n).ok());
      model.resize(n);
    } else if (r < 59) {
      uint64_t n = model.size() + rng() % 200000;
      snprintf(buf, sizeof buf, "truncate(%llu) up from %zu\n", (unsigned long long)n, model.size());
      log += buf;
      ASSERT_TRUE(fs->truncate(n).ok());
      model.resize(n, '\0');
    } else if (r < 70) {
      uint64_t off = rng() % (model.size() + 100);
      size_t n = rng() % 100000;
      std::string got;
      ASSERT_TRUE(fs->read(off, n, got).ok());
      std::string want = off < model.size() ? model.substr(off, n) : std::string();
      ASSERT_TRUE(got == want) << "read(" << off << ", " << n << ") differs\n" << log;
      continue;
    } else if (r < 80) {
      log += "flush_dirty\n";
      Status s = fs->flush_dirty();
      ASSERT_TRUE(s.ok()) << s.message();
      EXPECT_EQ(fs->dirty_bytes(), 0u);
    } else {
      log += "flush_dirty + apply\n";
      flush_apply(*fs, *store_);
      if (HasFatalFailure()) return;
      check_index(ino, model, log.substr(log.size() > 3000 ? log.size() - 3000 : 0));
      if (HasFatalFailure() || HasFailure()) { ADD_FAILURE() << log; return; }
      if (r >= 92) {  // continue from a freshly loaded state, as after a close and reopen
        log += "reload\n";
        fs = state(ino, dirty_limit);
      }
    }
    ASSERT_EQ(fs->size(), model.size()) << log;
    std::string all;
    ASSERT_TRUE(fs->read(0, model.size() + 1, all).ok());
    ASSERT_TRUE(all == model) << "content differs after step " << step << "\n" << log;
  }
  flush_apply(*fs, *store_);
  check_index(ino, model, "final\n" + log.substr(log.size() > 3000 ? log.size() - 3000 : 0));
  // The plain index read path (no FileState: range scan from off - chunk_max) agrees too.
  fs.reset();
  std::mt19937_64 r2(seed * 7);
  for (int i = 0; i < 50 && !model.empty(); ++i) {
    uint64_t off = r2() % model.size();
    size_t n = 1 + r2() % 100000;
    std::string got;
    ASSERT_TRUE(vol_->read(ino, off, n, got).ok());
    ASSERT_TRUE(got == model.substr(off, n)) << "Volume::read(" << off << ", " << n << ")";
  }
}

// ---- zeros, the re-chunking rule, pins ------------------------------------------------------

TEST_F(FileStateTest, ZeroRegionsCreateNoExtents) {
  open(false);
  const uint32_t kMax = store_->cfg.chunk_max;
  // All zeros: a file of holes.
  uint64_t z = new_file("zeros");
  {
    auto fs = state(z);
    std::string zeros(3u << 20, '\0');
    write(*fs, 0, zeros);
    flush_apply(*fs, *store_);
    check_index(z, zeros, "zeros");
  }
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM extents"), 0);
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks"), 0) << "zero chunks must not be stored";
  // Data | 2 MiB of zeros | data, written in 64 KiB pieces: the zero run is a hole except where
  // the neighbouring data chunks reach into it.
  uint64_t f = new_file("mixed");
  std::string model = test::random_bytes(300000, 1) + std::string(2u << 20, '\0') + test::random_bytes(300000, 2);
  {
    auto fs = state(f);
    for (size_t off = 0; off < model.size(); off += 65536) write(*fs, off, model.substr(off, 65536));
    flush_apply(*fs, *store_);
    check_index(f, model, "mixed");
  }
  uint64_t zs = 300000, ze = zs + (2u << 20), in_zeros = 0;
  for (auto& e : extent_rows(*store_, f)) {
    uint64_t lo = std::max<uint64_t>(zs, uint64_t(e.off)), hi = std::min<uint64_t>(ze, uint64_t(e.off + e.len));
    if (hi > lo) in_zeros += hi - lo;
  }
  EXPECT_LE(in_zeros, 2ull * kMax) << "zero region stored as data";
  EXPECT_LE(test::sql_i64(*store_, "SELECT data_bytes FROM inodes WHERE ino = " + std::to_string(f)),
            int64_t(600000 + 2 * kMax));
  // Zero-filling over stored data punches holes too.
  {
    auto fs = state(f);
    std::string zeros(1u << 20, '\0');
    write(*fs, 0, zeros);
    model.replace(0, zeros.size(), zeros);
    flush_apply(*fs, *store_);
    check_index(f, model, "zero-filled");
  }
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM extents WHERE ino = " + std::to_string(f) + " AND off < " +
                                       std::to_string((1u << 20) - kMax)),
            0);
  struct stat st {};
  ASSERT_TRUE(vol_->getattr(f, st).ok());
  EXPECT_LT(uint64_t(st.st_blocks) * 512, 300000 + 2ull * kMax) << "st_blocks counts holes";
}

// 20 MB written sequentially in pieces of various sizes chunks exactly as one CDC pass.
TEST_F(FileStateTest, SequentialWritesMatchOneShotCdc) {
  open(false);
  const std::string data = test::random_bytes(20'000'000, 2020);
  std::vector<size_t> cuts = cdc_cuts(*chunker_, data);
  auto check = [&](uint64_t ino, const char* what) {
    SCOPED_TRACE(what);
    auto rows = extent_rows(*store_, ino);
    ASSERT_EQ(rows.size(), cuts.size()) << "extent count differs from a one-shot CDC pass";
    int64_t off = 0;
    for (size_t i = 0; i < cuts.size(); ++i) {
      EXPECT_EQ(rows[i].off, off) << "extent " << i;
      EXPECT_EQ(rows[i].len, int64_t(cuts[i])) << "extent " << i << " at " << off;
      EXPECT_EQ(rows[i].chunk_off, 0) << "extent " << i;
      if (HasFailure()) return;
      off += int64_t(cuts[i]);
    }
  };
  uint64_t a = new_file("a");
  {
    auto fs = state(a);
    for (size_t off = 0; off < data.size(); off += 131072) write(*fs, off, data.substr(off, 131072));
    flush_apply(*fs, *store_);
  }
  check(a, "128 KiB writes");
  // Streaming must not store chunks it later throws away: one row per distinct chunk.
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks"), int64_t(cuts.size()));
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks WHERE refcount != 1"), 0);
  // Same bytes in irregular pieces (1 byte .. 300 KB) into another file: same chunks, all dedup.
  uint64_t b = new_file("b");
  int64_t max_id = test::sql_i64(*store_, "SELECT MAX(id) FROM chunks");
  {
    auto fs = state(b);
    std::mt19937_64 rng(5);
    for (size_t off = 0; off < data.size();) {
      size_t n = std::min<size_t>(data.size() - off, rng() % 4 == 0 ? 1 + rng() % 100 : 1 + rng() % 300000);
      write(*fs, off, data.substr(off, n));
      off += n;
    }
    flush_apply(*fs, *store_);
  }
  check(b, "irregular writes");
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks WHERE id > " + std::to_string(max_id)), 0)
      << "identical content written again created new chunks";
  auto ra = extent_rows(*store_, a), rb = extent_rows(*store_, b);
  EXPECT_TRUE(ra == rb) << "the two files should name the same chunks";
  // FUSE worker threads may deliver neighbouring writeback requests out of order: pieces
  // shuffled within windows of four still chunk like the one-shot pass.
  uint64_t c = new_file("c");
  {
    auto fs = state(c);
    std::mt19937_64 rng(6);
    const size_t piece = 131072, window = 4 * piece;
    for (size_t base = 0; base < data.size(); base += window) {
      std::vector<size_t> offs;
      for (size_t o = base; o < std::min(base + window, data.size()); o += piece) offs.push_back(o);
      std::shuffle(offs.begin(), offs.end(), rng);
      for (size_t o : offs) write(*fs, o, data.substr(o, piece));
    }
    flush_apply(*fs, *store_);
  }
  check(c, "locally reordered writes");
  EXPECT_TRUE(extent_rows(*store_, c) == ra);
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks WHERE id > " + std::to_string(max_id)), 0);
}

TEST_F(FileStateTest, InPlaceOneByteOverwriteRechunksFewChunks) {
  open(false);
  std::string model = test::random_bytes(20'000'000, 77);
  uint64_t ino = new_file("big");
  {
    auto fs = state(ino);
    for (size_t off = 0; off < model.size(); off += 1u << 20) write(*fs, off, model.substr(off, 1u << 20));
    flush_apply(*fs, *store_);
  }
  auto before = extent_rows(*store_, ino);
  for (uint64_t pos : {10'000'000ull, 3'333'333ull, 19'999'999ull, 0ull}) {
    SCOPED_TRACE("overwrite at " + std::to_string(pos));
    int64_t max_id = test::sql_i64(*store_, "SELECT MAX(id) FROM chunks");
    auto fs = state(ino);
    std::string one(1, char(model[pos] ^ 0x5a));
    write(*fs, pos, one);
    model[pos] = one[0];
    flush_apply(*fs, *store_);
    int64_t made = test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks WHERE id > " + std::to_string(max_id));
    EXPECT_GE(made, 1);
    EXPECT_LE(made, 3) << "a 1-byte write re-chunked " << made << " chunks";
    auto after = extent_rows(*store_, ino);
    std::set<std::pair<int64_t, int64_t>> old_set, new_set;
    for (auto& e : before) old_set.insert({e.off, e.chunk});
    size_t changed = 0;
    for (auto& e : after) changed += !old_set.count({e.off, e.chunk});
    EXPECT_LE(changed, 3u) << "extents changed by a 1-byte write";
    // The old chunk of the overwritten extent is garbage now.
    std::set<int64_t> live;
    for (auto& e : after) live.insert(e.chunk);
    for (auto& e : before)
      if (!live.count(e.chunk)) {
        EXPECT_EQ(test::sql_i64(*store_, "SELECT refcount FROM chunks WHERE id = " + std::to_string(e.chunk)), 0);
      }
    before = after;
  }
  check_index(ino, model, "after overwrites");
}

TEST_F(FileStateTest, AppendRechunksOnlyTheShortTail) {
  open(false);
  std::string model = test::random_bytes(5'000'000, 9);
  uint64_t ino = new_file("log");
  {
    auto fs = state(ino);
    write(*fs, 0, model);
    flush_apply(*fs, *store_);
  }
  for (int i = 0; i < 20; ++i) {
    int64_t max_id = test::sql_i64(*store_, "SELECT MAX(id) FROM chunks");
    auto fs = state(ino);
    std::string more = test::random_bytes(1000 + i, 100 + i);
    write(*fs, model.size(), more);
    model += more;
    flush_apply(*fs, *store_);
    EXPECT_LE(test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks WHERE id > " + std::to_string(max_id)), 2)
        << "append " << i;
  }
  check_index(ino, model, "appends");
  // Small appends re-chunk the short tail, so the result matches a one-shot pass of the whole file
  // as long as the original tail was short.
}

// The rule's other half: an append re-chunks the file's short tail, so a file grown by small
// appends onto a tail shorter than chunk_min ends up chunked like a one-shot pass.
TEST_F(FileStateTest, AppendsToShortTailChunkLikeOneShotCdc) {
  open(false);
  std::string base = test::random_bytes(3'000'000, 10);
  std::vector<size_t> cuts = cdc_cuts(*chunker_, base);
  ASSERT_GT(cuts.size(), 3u);
  size_t prefix = 0;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) prefix += cuts[i];
  std::string model = base.substr(0, prefix + 100);  // the last chunk: 100 bytes, far below min
  uint64_t ino = new_file("grow");
  {
    auto fs = state(ino);
    write(*fs, 0, model);
    flush_apply(*fs, *store_);
  }
  for (int i = 0; i < 12; ++i) {  // the tail grows to 100 + 12 * 1000 bytes, still below min
    auto fs = state(ino);
    std::string more = test::random_bytes(1000, 200 + i);
    write(*fs, model.size(), more);
    model += more;
    flush_apply(*fs, *store_);
    std::vector<size_t> want = cdc_cuts(*chunker_, model);
    auto rows = extent_rows(*store_, ino);
    ASSERT_EQ(rows.size(), want.size()) << "after append " << i << ": the short tail was not re-chunked";
    int64_t off = 0;
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_EQ(rows[k].off, off);
      EXPECT_EQ(rows[k].len, int64_t(want[k]));
      off += int64_t(want[k]);
    }
  }
  check_index(ino, model, "grown by appends");
  // Only the final tail chunk is referenced; the intermediate tails are garbage.
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks WHERE refcount > 0"), int64_t(cuts.size()));
}

TEST_F(FileStateTest, TruncateReleasesChunksAndExtends) {
  open(true);
  uint64_t ino = new_file("t");
  std::string model = test::random_bytes(400000, 3);
  auto fs = state(ino);
  write(*fs, 0, model);
  flush_apply(*fs, *store_);
  check_index(ino, model, "written");
  int64_t live = test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks WHERE refcount > 0");
  ASSERT_TRUE(fs->truncate(100000).ok());
  model.resize(100000);
  flush_apply(*fs, *store_);
  check_index(ino, model, "truncated down");
  EXPECT_LT(test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks WHERE refcount > 0"), live / 2);
  ASSERT_TRUE(fs->truncate(300000).ok());  // up: a hole
  model.resize(300000, '\0');
  flush_apply(*fs, *store_);
  check_index(ino, model, "extended");
  EXPECT_LE(test::sql_i64(*store_, "SELECT MAX(off + len) FROM extents WHERE ino = " + std::to_string(ino)), 100000);
  ASSERT_TRUE(fs->truncate(0).ok());
  model.clear();
  flush_apply(*fs, *store_);
  check_index(ino, model, "emptied");
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks WHERE refcount > 0"), 0);
}

TEST_F(FileStateTest, IndexUnchangedUntilApply) {
  open(true);
  uint64_t ino = new_file("f");
  std::string v1 = test::random_bytes(100000, 1);
  auto fs = state(ino);
  write(*fs, 0, v1);
  flush_apply(*fs, *store_);
  auto rows = extent_rows(*store_, ino);
  std::string v2 = v1;
  std::string patch = test::random_bytes(30000, 2);
  v2.replace(20000, patch.size(), patch);
  write(*fs, 20000, patch);
  ASSERT_TRUE(fs->truncate(90000).ok());
  v2.resize(90000);
  ASSERT_TRUE(fs->flush_dirty().ok());
  EXPECT_TRUE(fs->changed());
  // Materialized but not applied: the index still describes v1.
  EXPECT_TRUE(extent_rows(*store_, ino) == rows);
  EXPECT_EQ(test::sql_i64(*store_, "SELECT size FROM inodes WHERE ino = " + std::to_string(ino)), 100000);
  {
    auto other = state(ino);
    std::string got;
    ASSERT_TRUE(other->read(0, 200000, got).ok());
    EXPECT_TRUE(got == v1);
  }
  // apply with bytes still dirty is refused.
  write(*fs, 0, "x");
  v2[0] = 'x';
  EXPECT_FALSE(fs->apply(store_->index).ok());
  flush_apply(*fs, *store_);
  check_index(ino, v2, "applied");
}

TEST_F(FileStateTest, UnappliedChunksArePinnedAgainstGc) {
  open(true);
  uint64_t ino = new_file("p");
  std::string d = test::random_bytes(200000, 8);
  auto fs = state(ino);
  write(*fs, 0, d);
  ASSERT_TRUE(fs->flush_dirty().ok());
  int64_t made = test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks");
  ASSERT_GT(made, 5);
  EXPECT_EQ(test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks WHERE refcount != 0"), 0);
  auto gc = collect_garbage(*store_);
  ASSERT_TRUE(gc.ok()) << gc.status().message();
  EXPECT_EQ(gc->chunks_deleted, 0u) << "gc deleted chunks of a file being written";
  ASSERT_TRUE(fs->apply(store_->index).ok());
  check_index(ino, d, "applied after gc");
  // Materialized then abandoned (the FileState dies without apply): pins go, gc collects.
  {
    auto fs2 = state(ino);
    write(*fs2, 0, test::random_bytes(100000, 9));
    ASSERT_TRUE(fs2->flush_dirty().ok());
  }
  fs.reset();
  int64_t garbage = test::sql_i64(*store_, "SELECT COUNT(*) FROM chunks WHERE refcount = 0");
  EXPECT_GT(garbage, 0);
  gc = collect_garbage(*store_);
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(int64_t(gc->chunks_deleted), garbage);
  check_index(ino, d, "after collecting the abandoned chunks");
}

}  // namespace
}  // namespace dzfs
