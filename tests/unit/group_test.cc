// Solid groups in the store: the recompressor codes settled chunks into group records; every
// chunk of a group reads back (in any order, from any thread), damage costs exactly the chunks at
// and after it, gc regroups mostly dead groups and reclaims their records, and old (schema 1)
// indexes are upgraded or, read-only, read as they are.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <thread>

#include "daemon/recompressor.h"
#include "codec/frame.h"
#include "index/gc.h"
#include "index/stats.h"
#include "index/model_registry.h"
#include "index/group_record.h"
#include "index/schema.h"
#include "test_util.h"

namespace dzfs {
namespace {

using test::sql_exec;
using test::sql_i64;
using test::sql_rows;

struct Put {
  int64_t id;
  std::string bytes;
};

// Chunks of mixed kinds and sizes (one byte, max size, text, code-like, incompressible), each
// given a reference so that the recompressor takes it.
std::vector<Put> put_chunks(Store& st, int n, uint64_t seed) {
  std::vector<Put> out;
  std::mt19937_64 rng(seed);
  for (int i = 0; i < n; ++i) {
    std::string b;
    switch (i % 5) {
      case 0: b = test::text_bytes(20000 + rng() % 50000, rng()); break;
      case 1: b = test::text_bytes(1, rng()) + "x"; b.resize(1); break;
      case 2: b = test::text_bytes(256 * 1024, rng()); break;
      case 3: b = test::text_bytes(3000, rng()) + test::random_bytes(500, rng()) + test::text_bytes(7000, rng()); break;
      case 4: b = test::text_bytes(65536, rng()); break;
    }
    auto id = st.chunks.put(reinterpret_cast<const uint8_t*>(b.data()), b.size());
    EXPECT_TRUE(id.ok()) << id.status().message();
    if (!id.ok()) continue;
    st.chunks.unpin(*id);
    out.push_back({*id, std::move(b)});
  }
  sql_exec(st, "UPDATE chunks SET refcount = 1");
  EXPECT_TRUE(st.commit().ok());
  return out;
}

// Every chunk reads back as the bytes it was stored with.
void expect_read_back(Store& st, const std::vector<Put>& chunks) {
  for (auto& c : chunks) {
    auto b = st.chunks.get(c.id);
    ASSERT_TRUE(b.ok()) << "chunk " << c.id << ": " << b.status().message();
    EXPECT_EQ(**b, c.bytes) << "chunk " << c.id;
  }
}

void drain(Store& st, uint64_t group_bytes) {
  RecompressOptions ro;
  ro.settle_secs = 0;
  ro.group_bytes = group_bytes;
  Recompressor r(st, ro);
  Status s = r.drain(nullptr);
  ASSERT_TRUE(s.ok()) << s.message();
}

std::unique_ptr<Store> reopen(std::unique_ptr<Store>& st, const std::string& dir, StoreOptions so = {}) {
  st.reset();
  return test::open_store(dir, so);
}

class GroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path() + "/v";
    st_ = test::make_store(dir_);
    ASSERT_TRUE(st_);
  }
  test::TempDir tmp_;
  std::string dir_;
  std::unique_ptr<Store> st_;
};

TEST_F(GroupTest, DrainCodesChunksIntoGroupsThatReadBackInAnyOrder) {
  auto chunks = put_chunks(*st_, 23, 1);
  drain(*st_, 400 << 10);
  const int64_t groups = sql_i64(*st_, "SELECT COUNT(*) FROM groups");
  EXPECT_GE(groups, 3);  // 23 chunks of ~2 MiB in groups of at most 400 KiB
  // All but the one-byte chunks, which zstd cannot shrink (raw tier: never grouped).
  EXPECT_EQ(sql_i64(*st_, "SELECT COUNT(*) FROM chunks WHERE codec = 3 AND pack = 0 AND grp IS NOT NULL"),
            sql_i64(*st_, "SELECT COUNT(*) FROM chunks WHERE raw_len > 1"));
  EXPECT_EQ(sql_i64(*st_, "SELECT COUNT(*) FROM groups WHERE raw_len > 409600"), 0);
  EXPECT_EQ(sql_i64(*st_, "SELECT COUNT(*) FROM chunks c JOIN groups g ON g.id = c.grp "
                          "WHERE c.grp_off + c.raw_len > g.raw_len"), 0);
  // Members' shares add up to their group's record.
  EXPECT_EQ(sql_i64(*st_, "SELECT COUNT(*) FROM groups g WHERE stored_len != "
                          "(SELECT SUM(stored_len) FROM chunks c WHERE c.grp = g.id)"), 0);
  // And stats' stored bytes are what the live records take in the packs: the group records
  // (headers included) and the other chunks' records; a grouped chunk has no header of its own.
  auto stats = compute_stats(*st_);
  ASSERT_TRUE(stats.ok());
  const int64_t records = sql_i64(*st_, "SELECT SUM(stored_len) FROM groups") +
                          sql_i64(*st_, "SELECT COALESCE(SUM(stored_len), 0) FROM chunks WHERE codec <> 3") +
                          sql_i64(*st_, "SELECT COUNT(*) FROM chunks WHERE codec <> 3") * int64_t(kRecordHeaderSize);
  EXPECT_EQ(int64_t(stats->stored_bytes), records);
  EXPECT_LE(stats->stored_bytes, stats->pack_bytes);
  for (int order = 0; order < 3; ++order) {
    st_ = reopen(st_, dir_);
    ASSERT_TRUE(st_);
    std::vector<size_t> idx(chunks.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    if (order == 1) std::reverse(idx.begin(), idx.end());
    if (order == 2) std::shuffle(idx.begin(), idx.end(), std::mt19937_64(7));
    for (size_t i : idx) {
      auto b = st_->chunks.get(chunks[i].id);
      ASSERT_TRUE(b.ok()) << b.status().message();
      EXPECT_EQ(**b, chunks[i].bytes) << "chunk " << chunks[i].id << ", order " << order;
    }
  }
}

TEST_F(GroupTest, GroupOfOneChunkAndOneByteChunk) {
  std::string one = "Q";
  auto id = st_->chunks.put(reinterpret_cast<const uint8_t*>(one.data()), 1);
  ASSERT_TRUE(id.ok());
  st_->chunks.unpin(*id);
  std::string text = test::text_bytes(100000, 3);
  auto id2 = st_->chunks.put(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  ASSERT_TRUE(id2.ok());
  st_->chunks.unpin(*id2);
  sql_exec(*st_, "UPDATE chunks SET refcount = 1");
  drain(*st_, 64 << 10);  // the 100 KB chunk does not fit with another: a group of its own
  EXPECT_EQ(sql_i64(*st_, "SELECT nchunks FROM groups g JOIN chunks c ON c.grp = g.id WHERE c.id = " + std::to_string(*id2)), 1);
  st_ = reopen(st_, dir_);
  auto a = st_->chunks.get(*id);
  auto b = st_->chunks.get(*id2);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(**a, one);
  EXPECT_EQ(**b, text);
}

// The path and offset of the group record holding `chunk`, and its payload length.
struct RecordAt {
  std::string path;
  uint64_t payload_off;
  uint64_t payload_len;
  uint64_t nchunks;
};
RecordAt record_of(Store& st, const std::string& dir, int64_t chunk) {
  auto row = sql_rows(st, "SELECT g.pack, g.off, g.stored_len, g.nchunks FROM groups g JOIN chunks c ON c.grp = g.id "
                          "WHERE c.id = " + std::to_string(chunk));
  EXPECT_EQ(row.size(), 1u);
  char name[32];
  snprintf(name, sizeof name, "%08lld.pack", (long long)row[0][0]);
  return {dir + "/packs/" + name, uint64_t(row[0][1]) + kRecordHeaderSize, uint64_t(row[0][2]), uint64_t(row[0][3])};
}

std::vector<int64_t> members_in_order(Store& st, int64_t gid) {
  std::vector<int64_t> out;
  for (auto& r : sql_rows(st, "SELECT id FROM chunks WHERE grp = " + std::to_string(gid) + " ORDER BY grp_off"))
    out.push_back(r[0]);
  return out;
}

TEST_F(GroupTest, FlippedByteInAFrameCostsTheChunksAtAndAfterItOnly) {
  auto chunks = put_chunks(*st_, 20, 2);
  drain(*st_, 2 << 20);
  const int64_t gid = sql_i64(*st_, "SELECT grp FROM chunks c JOIN groups g ON g.id = c.grp ORDER BY g.nchunks DESC LIMIT 1");
  const auto members = members_in_order(*st_, gid);
  ASSERT_GE(members.size(), 8u);
  const RecordAt at = record_of(*st_, dir_, members[0]);
  const uint64_t table = group_table_len(at.nchunks) + 4;
  const uint64_t frame_header = 44;
  // Damage 60 % into the coded payload.
  const uint64_t flip = at.payload_off + table + frame_header + (at.payload_len - table - frame_header) * 6 / 10;
  st_ = reopen(st_, dir_);
  test::flip_byte(at.path, flip, 0x10);
  std::map<int64_t, std::string> want;
  for (auto& c : chunks) want[c.id] = c.bytes;
  // Whatever the order of the reads, a member reads iff it lies before the damage.
  for (int order = 0; order < 2; ++order) {
    st_ = reopen(st_, dir_);
    std::vector<int64_t> ids = members;
    if (order) std::reverse(ids.begin(), ids.end());
    std::map<int64_t, bool> ok;
    for (int64_t id : ids) {
      auto b = st_->chunks.get(id);
      ok[id] = b.ok();
      if (b.ok()) EXPECT_EQ(**b, want[id]);
      else EXPECT_EQ(b.status().code(), EIO);
    }
    size_t first_bad = members.size();
    for (size_t i = 0; i < members.size(); ++i)
      if (!ok[members[i]]) { first_bad = i; break; }
    EXPECT_GT(first_bad, 0u) << "the chunks before the damage must read";
    EXPECT_LT(first_bad, members.size()) << "the damage must be found";
    for (size_t i = first_bad; i < members.size(); ++i) EXPECT_FALSE(ok[members[i]]) << "member " << i;
  }
  // Chunks of other groups are untouched.
  for (auto& c : chunks) {
    if (std::find(members.begin(), members.end(), c.id) != members.end()) continue;
    auto b = st_->chunks.get(c.id);
    ASSERT_TRUE(b.ok()) << b.status().message();
    EXPECT_EQ(**b, c.bytes);
  }
}

TEST_F(GroupTest, DamagedTableCostsTheWholeGroupAndNothingElse) {
  auto chunks = put_chunks(*st_, 12, 3);
  drain(*st_, 700 << 10);
  const RecordAt at = record_of(*st_, dir_, chunks[0].id);
  const int64_t gid = sql_i64(*st_, "SELECT grp FROM chunks WHERE id = " + std::to_string(chunks[0].id));
  const auto members = members_in_order(*st_, gid);
  st_ = reopen(st_, dir_);
  test::flip_byte(at.path, at.payload_off + 9);  // inside the first member's hash
  st_ = reopen(st_, dir_);
  for (auto& c : chunks) {
    auto b = st_->chunks.get(c.id);
    const bool member = std::find(members.begin(), members.end(), c.id) != members.end();
    EXPECT_EQ(b.ok(), !member) << "chunk " << c.id;
    if (b.ok()) {
      EXPECT_EQ(**b, c.bytes);
    }
  }
}

TEST_F(GroupTest, ConcurrentReadersOfOneGroupGetExactBytes) {
  auto chunks = put_chunks(*st_, 15, 4);
  drain(*st_, 4 << 20);
  st_ = reopen(st_, dir_);
  std::atomic<int> wrong{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      std::vector<size_t> idx(chunks.size());
      for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
      std::shuffle(idx.begin(), idx.end(), std::mt19937_64(t));
      for (size_t i : idx) {
        st_->chunks.forget_cached(chunks[i].id);
        auto b = st_->chunks.get(chunks[i].id);
        if (!b.ok() || **b != chunks[i].bytes) ++wrong;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(GroupTest, GroupMemoryStaysWithinItsBudget) {
  auto chunks = put_chunks(*st_, 30, 5);
  drain(*st_, 512 << 10);
  ASSERT_GE(sql_i64(*st_, "SELECT COUNT(*) FROM groups"), 4);
  StoreOptions so;
  so.group_cache_bytes = 16u << 20;
  st_ = reopen(st_, dir_, so);
  size_t most = 0;
  for (auto& c : chunks) {
    auto b = st_->chunks.get(c.id);
    ASSERT_TRUE(b.ok());
    most = std::max(most, st_->groups.memory());
  }
  // The budget for decoded groups, plus at most two live decoders (16 MiB / 112 MiB, at least 2)
  // of 512 KiB groups (up to 32 MiB of tables each).
  EXPECT_LE(most, so.group_cache_bytes + (64u << 20));
  EXPECT_LE(st_->groups.memory(), so.group_cache_bytes + (64u << 20));
}

// A sequential reader keeps one group decoding ahead of it: the first read of every group, also
// of one that read-ahead opened, reads the next group ahead (before, only every other group).
TEST_F(GroupTest, SequentialReadsKeepAGroupDecodingAhead) {
  auto chunks = put_chunks(*st_, 30, 9);
  drain(*st_, 512 << 10);
  const auto firsts = sql_rows(*st_, "SELECT id FROM chunks WHERE grp IS NOT NULL AND grp_off = 0 ORDER BY grp");
  ASSERT_GE(firsts.size(), 5u);
  st_ = reopen(st_, dir_);
  auto bytes_of = [&](int64_t id) {
    for (auto& c : chunks)
      if (c.id == id) return c.bytes;
    return std::string();
  };
  for (size_t g = 0; g + 1 < firsts.size(); ++g) {
    const int64_t id = firsts[g][0];
    auto b = st_->chunks.get(id);
    ASSERT_TRUE(b.ok()) << b.status().message();
    EXPECT_TRUE(**b == bytes_of(id));
    // Group g + 1 is opened by read-ahead before the reader gets to it.
    bool ahead = false;
    for (int i = 0; i < 2000 && !ahead; ++i) {
      ahead = st_->groups.read_ahead_opens() >= g + 1;
      if (!ahead) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_TRUE(ahead) << "group " << g + 2 << " was not read ahead after the first read of group " << g + 1;
  }
}

TEST_F(GroupTest, GcRegroupsMostlyDeadGroupsAndReclaimsTheirRecords) {
  auto chunks = put_chunks(*st_, 20, 6);
  drain(*st_, 8 << 20);
  ASSERT_EQ(sql_i64(*st_, "SELECT COUNT(*) FROM groups"), 1);
  const int64_t old_gid = sql_i64(*st_, "SELECT id FROM groups");
  // Three quarters of the raw bytes die.
  std::vector<Put> live;
  uint64_t total = 0, dead = 0;
  for (auto& c : chunks) total += c.bytes.size();
  for (auto& c : chunks) {
    if (dead < total * 3 / 4 && c.bytes.size() > 1) {
      dead += c.bytes.size();
      sql_exec(*st_, "UPDATE chunks SET refcount = 0 WHERE id = " + std::to_string(c.id));
    } else {
      live.push_back(c);
    }
  }
  const int64_t live_grouped = sql_i64(*st_, "SELECT COUNT(*) FROM chunks WHERE refcount > 0 AND codec = 3");
  st_ = reopen(st_, dir_);  // gc leaves the pack of the running session alone
  auto g1 = collect_garbage(*st_);
  ASSERT_TRUE(g1.ok()) << g1.status().message();
  EXPECT_EQ(g1->chunks_regrouped, uint64_t(live_grouped));
  drain(*st_, 8 << 20);  // the live chunks form a new group
  st_ = reopen(st_, dir_);
  auto g2 = collect_garbage(*st_);
  ASSERT_TRUE(g2.ok());
  EXPECT_EQ(g2->groups_deleted, 1u);
  EXPECT_EQ(sql_i64(*st_, "SELECT COUNT(*) FROM groups WHERE id = " + std::to_string(old_gid)), 0);
  EXPECT_EQ(sql_i64(*st_, "SELECT COUNT(*) FROM groups"), 1);
  // What the packs hold is the live group record (and pack headers), nothing superseded.
  const int64_t live_bytes = sql_i64(*st_, "SELECT SUM(stored_len) + 48 * COUNT(*) FROM groups") +
                             sql_i64(*st_, "SELECT COALESCE(SUM(stored_len + 48), 0) FROM chunks WHERE grp IS NULL");
  uint64_t pack_bytes = 0;
  for (auto& [id, size] : st_->packs.list()) pack_bytes += size;
  EXPECT_LE(pack_bytes, uint64_t(live_bytes) + 16 * st_->packs.list().size());
  st_ = reopen(st_, dir_);
  expect_read_back(*st_, live);
}

// Bytes of the live records (headers included) and of the pack files.
int64_t live_record_bytes(Store& st) {
  return sql_i64(st, "SELECT COALESCE(SUM(stored_len + 48), 0) FROM groups") +
         sql_i64(st, "SELECT COALESCE(SUM(stored_len + 48), 0) FROM chunks WHERE grp IS NULL");
}
int64_t pack_file_bytes(Store& st) {
  int64_t n = 0;
  for (auto& [id, size] : st.packs.list()) n += int64_t(size);
  return n;
}

// Chunks stored while the recompressor drains now and then (as the background tier does during
// a backup), incompressible ones among them: after a gc in the same session, and again after
// another session's gc, the packs hold the live records and nothing the groups superseded.
TEST_F(GroupTest, DrainedVolumeHoldsNoSupersededRecords) {
  std::vector<Put> all;
  for (int round = 0; round < 4; ++round) {
    auto more = put_chunks(*st_, 10, 100 + round);
    std::string noise = test::random_bytes(200000, 200 + round);  // raw tier: final as it is
    auto id = st_->chunks.put(reinterpret_cast<const uint8_t*>(noise.data()), noise.size());
    ASSERT_TRUE(id.ok());
    st_->chunks.unpin(*id);
    more.push_back({*id, noise});
    sql_exec(*st_, "UPDATE chunks SET refcount = 1");
    ASSERT_TRUE(st_->commit().ok());
    drain(*st_, 1 << 20);
    all.insert(all.end(), more.begin(), more.end());
  }
  ASSERT_GE(sql_i64(*st_, "SELECT COUNT(*) FROM groups"), 4);
  const int64_t before = pack_file_bytes(*st_);
  auto g = collect_garbage(*st_);  // the same session: its current packs are sealed and reclaimed
  ASSERT_TRUE(g.ok()) << g.status().message();
  const int64_t live = live_record_bytes(*st_);
  EXPECT_LT(pack_file_bytes(*st_), before);
  EXPECT_LE(pack_file_bytes(*st_), live + 16 * int64_t(st_->packs.list().size()))
      << "live records " << live << ", packs before gc " << before;
  EXPECT_EQ(g->records_moved, 0u) << "drained fast packs are removed whole, without copying";
  st_ = reopen(st_, dir_);
  ASSERT_TRUE(collect_garbage(*st_).ok());
  EXPECT_LE(pack_file_bytes(*st_), live_record_bytes(*st_) + 16 * int64_t(st_->packs.list().size()));
  expect_read_back(*st_, all);
}

// Chunks that recompression does not shrink enough stay zstd records, but leave the fast stream:
// a gc then removes the fast packs without copying anything.
TEST_F(GroupTest, ChunksKeptAsTheyAreLeaveTheFastTier) {
  auto chunks = put_chunks(*st_, 12, 11);
  RecompressOptions ro;
  ro.settle_secs = 0;
  ro.group_bytes = 1 << 20;
  ro.margin = 0.99;  // no group can save 99 %: every chunk is kept as it is
  {
    Recompressor r(*st_, ro);
    ASSERT_TRUE(r.drain(nullptr).ok());
  }
  EXPECT_EQ(sql_i64(*st_, "SELECT COUNT(*) FROM groups"), 0);
  EXPECT_EQ(sql_i64(*st_, "SELECT COUNT(*) FROM chunks WHERE tier_done = 0"), 0);
  const int64_t fast_packs = sql_i64(*st_, "SELECT COUNT(DISTINCT pack) FROM chunks");
  EXPECT_EQ(fast_packs, 1) << "the settled copies share one pack";
  st_ = reopen(st_, dir_);
  auto g = collect_garbage(*st_);
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->packs_removed, 1u);
  EXPECT_EQ(g->records_moved, 0u);
  EXPECT_EQ(pack_file_bytes(*st_), live_record_bytes(*st_) + 16);
  expect_read_back(*st_, chunks);
}

// A chunk that gc moved while the recompressor was coding it is not written off as tried: neither
// a group nor a settle applies to it (it no longer lies where it was read), and it stays in the
// backlog to be claimed again from where it is now. (Before, every member was marked tried, so
// chunks moved by a gc pass during a drain stayed zstd records in the fast tier for good.)
TEST_F(GroupTest, ChunksMovedWhileBeingCodedStayInTheBacklog) {
  auto chunks = put_chunks(*st_, 5, 21);
  std::vector<GroupedChunk> was;
  for (auto& c : chunks) {
    ChunkPlace p;
    ASSERT_TRUE(st_->chunks.locate(c.id, p).ok());
    was.push_back({c.id, p, uint32_t(c.bytes.size())});
  }
  auto moved = st_->chunks.settle(was);  // stands in for gc moving them
  ASSERT_TRUE(moved.ok()) << moved.status().message();
  EXPECT_EQ(*moved, chunks.size());
  EXPECT_EQ(sql_i64(*st_, "SELECT COUNT(*) FROM chunks WHERE tier_done = 0"), 0) << "a settled chunk is tried";
  sql_exec(*st_, "UPDATE chunks SET tier_done = 0");

  auto again = st_->chunks.settle(was);  // stale places: nothing applies
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u);
  auto grouped = st_->chunks.store_group(was, 1000, ChunkHash{}, "payload", "model");
  ASSERT_TRUE(grouped.ok());
  EXPECT_EQ(*grouped, 0u);
  EXPECT_EQ(sql_i64(*st_, "SELECT COUNT(*) FROM groups"), 0);
  EXPECT_EQ(sql_i64(*st_, "SELECT COUNT(*) FROM chunks WHERE tier_done = 0"), int64_t(chunks.size()));

  drain(*st_, 1 << 20);  // claimed again from where they are now
  EXPECT_EQ(sql_i64(*st_, "SELECT COUNT(*) FROM chunks WHERE tier_done = 0"), 0);
  EXPECT_EQ(sql_i64(*st_, "SELECT COUNT(*) FROM chunks WHERE codec = 3"),
            sql_i64(*st_, "SELECT COUNT(*) FROM chunks WHERE raw_len > 1"));
  expect_read_back(*st_, chunks);
}

TEST_F(GroupTest, IncompressibleChunksAreNotGrouped) {
  std::string noise = test::random_bytes(100000, 9);
  auto id = st_->chunks.put(reinterpret_cast<const uint8_t*>(noise.data()), noise.size());
  ASSERT_TRUE(id.ok());
  st_->chunks.unpin(*id);
  sql_exec(*st_, "UPDATE chunks SET refcount = 1");
  drain(*st_, 1 << 20);
  EXPECT_EQ(sql_i64(*st_, "SELECT codec FROM chunks WHERE id = " + std::to_string(*id)), int64_t(kCodecRaw));
  EXPECT_EQ(sql_i64(*st_, "SELECT tier_done FROM chunks WHERE id = " + std::to_string(*id)), 1);
  EXPECT_EQ(sql_i64(*st_, "SELECT COUNT(*) FROM groups"), 0);
}

// Chunks a volume holds from before groups, as per-chunk neural frames (version 4), keep reading
// beside new groups, and a drain leaves them as they are.
TEST_F(GroupTest, PerChunkNeuralFramesReadBesideGroups) {
  auto old = put_chunks(*st_, 4, 11);
  auto model = st_->models->current();
  ASSERT_TRUE(model);
  for (auto& c : old) {
    if (c.bytes.size() < 2) continue;
    std::span<const uint8_t> raw(reinterpret_cast<const uint8_t*>(c.bytes.data()), c.bytes.size());
    codec::EncodeOptions eo;
    eo.frame_version = 4;
    auto f = codec::encode_frame(codec::CodecId::kNeural, raw, model.get(), eo);
    ASSERT_TRUE(f.ok());
    ChunkRecord rec;
    rec.codec = kCodecNeural;
    rec.raw_len = uint32_t(c.bytes.size());
    ChunkHash h = hash_chunk(c.bytes.data(), c.bytes.size());
    memcpy(rec.hash, h.b, 16);
    rec.payload.assign(f->begin(), f->end());
    auto loc = st_->packs.append(rec, PackStream::kSettled);
    ASSERT_TRUE(loc.ok());
    sql_exec(*st_, "UPDATE chunks SET codec = 2, tier_done = 1, model = '" + model->id().hex() + "', pack = " +
                       std::to_string(loc->pack) + ", off = " + std::to_string(loc->off) +
                       ", stored_len = " + std::to_string(loc->stored_len) + " WHERE id = " + std::to_string(c.id));
  }
  ASSERT_TRUE(st_->commit().ok());
  const int64_t neural = sql_i64(*st_, "SELECT COUNT(*) FROM chunks WHERE codec = 2");
  ASSERT_GE(neural, 3);
  auto fresh = put_chunks(*st_, 6, 12);
  drain(*st_, 1 << 20);
  EXPECT_EQ(sql_i64(*st_, "SELECT COUNT(*) FROM chunks WHERE codec = 2"), neural);
  EXPECT_GE(sql_i64(*st_, "SELECT COUNT(*) FROM groups"), 1);
  st_ = reopen(st_, dir_);
  for (auto* set : {&old, &fresh})
    for (auto& c : *set) {
      auto b = st_->chunks.get(c.id);
      ASSERT_TRUE(b.ok()) << b.status().message();
      EXPECT_EQ(**b, c.bytes);
    }
}

// A volume made before groups (index schema 1): upgraded in place when opened for writing, and
// read unchanged (through stand-ins) when opened read-only.
TEST_F(GroupTest, SchemaOneIndexesAreReadAndUpgraded) {
  auto chunks = put_chunks(*st_, 6, 10);
  sql_exec(*st_, "DROP TABLE snapshots; DROP INDEX chunks_by_grp; DROP INDEX groups_by_pack; DROP TABLE groups; "
                 "ALTER TABLE chunks DROP COLUMN grp; ALTER TABLE chunks DROP COLUMN grp_off; "
                 "UPDATE meta SET value = '1' WHERE key = 'schema_version'");
  st_.reset();
  {
    StoreOptions ro;
    ro.readonly = true;
    auto r = test::open_store(dir_, ro);
    ASSERT_TRUE(r);
    for (auto& c : chunks) {
      auto b = r->chunks.get(c.id);
      ASSERT_TRUE(b.ok()) << b.status().message();
      EXPECT_EQ(**b, c.bytes);
    }
    EXPECT_EQ(sql_i64(*r, "SELECT value FROM main.meta WHERE key = 'schema_version'"), 1);
  }
  st_ = test::open_store(dir_);
  ASSERT_TRUE(st_);
  EXPECT_EQ(sql_i64(*st_, "SELECT value FROM meta WHERE key = 'schema_version'"), kIndexSchemaVersion);
  drain(*st_, 1 << 20);
  EXPECT_GE(sql_i64(*st_, "SELECT COUNT(*) FROM groups"), 1);
  st_ = reopen(st_, dir_);
  expect_read_back(*st_, chunks);
}

}  // namespace
}  // namespace dzfs
