// ChunkStore through a real Store: dedup, codec choice, verified reads, verify_dedup, pins vs gc.
#include "index/chunk_store.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "index/chunk_cache.h"
#include "index/gc.h"
#include "index/store.h"
#include "tests/unit/test_util.h"

namespace dzfs {
namespace {

struct Row {
  int64_t raw_len, refcount, pack, off, stored_len, codec;
};

Row chunk_row(Store& st, int64_t id) {
  auto rows = test::sql_rows(st, "SELECT raw_len, refcount, pack, off, stored_len, codec FROM chunks WHERE id = " +
                                     std::to_string(id));
  if (rows.size() != 1) {
    ADD_FAILURE() << "chunk " << id << " has " << rows.size() << " rows";
    return {};
  }
  auto& r = rows[0];
  return {r[0], r[1], r[2], r[3], r[4], r[5]};
}

int64_t put(Store& st, const std::string& d) {
  auto id = st.chunks.put(reinterpret_cast<const uint8_t*>(d.data()), d.size());
  EXPECT_TRUE(id.ok()) << id.status().message();
  return id.ok() ? *id : 0;
}

std::string hex(const void* p, size_t n) {
  std::string s;
  char b[3];
  for (size_t i = 0; i < n; ++i) {
    snprintf(b, sizeof b, "%02x", static_cast<const uint8_t*>(p)[i]);
    s += b;
  }
  return s;
}

class ChunkStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = tmp_.path() + "/store"; }
  std::unique_ptr<Store> mk(StoreConfig cfg = {}) { return test::make_store(dir_, cfg); }
  std::string pack_path(Store& st, int64_t pack) { return st.packs.path_of(uint32_t(pack)); }
  test::TempDir tmp_;
  std::string dir_;
};

TEST_F(ChunkStoreTest, HashIsXxh3_128Canonical) {
  std::string d = "hello, dzfs";
  ChunkHash h = hash_chunk(d.data(), d.size());
  XXH128_hash_t x = XXH3_128bits(d.data(), d.size());
  uint8_t want[16];
  for (int i = 0; i < 8; ++i) want[i] = uint8_t(x.high64 >> (56 - 8 * i));
  for (int i = 0; i < 8; ++i) want[8 + i] = uint8_t(x.low64 >> (56 - 8 * i));
  EXPECT_EQ(hex(h.b, 16), hex(want, 16));
  EXPECT_STREQ(codec_name(kCodecRaw), "raw");
  EXPECT_STREQ(codec_name(kCodecZstd), "zstd");
  EXPECT_STREQ(codec_name(kCodecNeural), "neural");
  EXPECT_STREQ(codec_name(77), "unknown");
}

TEST_F(ChunkStoreTest, PutDedupsIdenticalData) {
  std::string a = test::random_bytes(50000, 1), b = test::random_bytes(50000, 2);
  int64_t ida = 0, idb = 0;
  {
    auto st = mk();
    ida = put(*st, a);
    EXPECT_EQ(put(*st, a), ida);
    EXPECT_EQ(put(*st, std::string(a)), ida);
    idb = put(*st, b);
    EXPECT_NE(idb, ida);
    std::string a2 = a;
    a2[49999] ^= 1;
    EXPECT_NE(put(*st, a2), ida) << "one differing byte must not dedup";
    EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM chunks"), 3);
    // One pack record per distinct chunk.
    uint64_t packs = 0;
    for (auto& [id, size] : st->packs.list()) packs += size;
    EXPECT_EQ(packs, kPackHeaderSize + 3 * (kRecordHeaderSize + 50000));
    ASSERT_TRUE(st->commit().ok());
  }
  auto st = test::open_store(dir_);
  EXPECT_EQ(put(*st, a), ida) << "dedup against chunks of an earlier session";
  EXPECT_EQ(put(*st, b), idb);
  EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM chunks"), 3);
}

TEST_F(ChunkStoreTest, RandomDataStoredRawTextStoredZstd) {
  auto st = mk();
  std::string rnd = test::random_bytes(65536, 3), txt = test::text_bytes(65536, 4), zeros(70000, '\0');
  int64_t r = put(*st, rnd), t = put(*st, txt), z = put(*st, zeros);
  Row rr = chunk_row(*st, r), tr = chunk_row(*st, t), zr = chunk_row(*st, z);
  EXPECT_EQ(rr.codec, kCodecRaw);
  EXPECT_EQ(rr.stored_len, 65536);
  EXPECT_EQ(rr.raw_len, 65536);
  EXPECT_EQ(tr.codec, kCodecZstd);
  EXPECT_LT(tr.stored_len, 65536 / 2);
  EXPECT_EQ(tr.raw_len, 65536);
  EXPECT_EQ(zr.codec, kCodecZstd);
  EXPECT_LT(zr.stored_len, 1000);
  EXPECT_EQ(rr.refcount, 0) << "refcount counts extents, not puts";
  // Barely compressible data (zstd saves < ~1.5%) stays raw; a few percent is worth zstd.
  std::string mostly = test::random_bytes(65536, 6) + std::string(600, '\0');
  EXPECT_EQ(chunk_row(*st, put(*st, mostly)).codec, kCodecRaw) << "a <1% saving should not be stored as zstd";
  std::string some = test::random_bytes(65536, 7) + std::string(4000, '\0');
  Row sr = chunk_row(*st, put(*st, some));
  EXPECT_EQ(sr.codec, kCodecZstd);
  EXPECT_LT(sr.stored_len, sr.raw_len);
  // And the record in the pack says the same codec.
  auto rec = st->packs.read({uint32_t(tr.pack), uint64_t(tr.off), uint32_t(tr.stored_len)});
  ASSERT_TRUE(rec.ok()) << rec.status().message();
  EXPECT_EQ(rec->codec, kCodecZstd);
  EXPECT_EQ(rec->raw_len, 65536u);
}

TEST_F(ChunkStoreTest, GetRoundTrip) {
  std::vector<std::pair<int64_t, std::string>> all;
  {
    auto st = mk();
    for (size_t n : {1ul, 100ul, 4096ul, 65536ul, 262144ul, 1000003ul}) {
      for (int kind = 0; kind < 2; ++kind) {
        std::string d = kind ? test::text_bytes(n, n) : test::random_bytes(n, n);
        int64_t id = put(*st, d);
        auto got = st->chunks.get(id);
        ASSERT_TRUE(got.ok()) << got.status().message();
        EXPECT_TRUE(**got == d) << n;
        all.emplace_back(id, d);
      }
    }
    EXPECT_EQ(st->chunks.get(999999).status().code(), EIO) << "unknown chunk id";
  }
  auto st = test::open_store(dir_);  // cold cache: every get reads, decodes and verifies
  for (auto& [id, d] : all) {
    auto got = st->chunks.get(id);
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_TRUE(**got == d);
  }
}

TEST_F(ChunkStoreTest, FlippedPackByteIsEio) {
  std::string rnd = test::random_bytes(30000, 10), txt = test::text_bytes(30000, 11), other = test::random_bytes(9000, 12);
  int64_t r = 0, t = 0, o = 0;
  Row rr, tr;
  {
    auto st = mk();
    r = put(*st, rnd);
    t = put(*st, txt);
    o = put(*st, other);
    rr = chunk_row(*st, r);
    tr = chunk_row(*st, t);
    ASSERT_TRUE(st->commit().ok());
    test::flip_byte(pack_path(*st, rr.pack), uint64_t(rr.off + kRecordHeaderSize + 12345));
    test::flip_byte(pack_path(*st, tr.pack), uint64_t(tr.off + kRecordHeaderSize + tr.stored_len / 2));
  }
  auto st = test::open_store(dir_);
  auto gr = st->chunks.get(r), gt = st->chunks.get(t), go = st->chunks.get(o);
  ASSERT_FALSE(gr.ok()) << "damaged raw chunk returned data";
  EXPECT_EQ(gr.status().code(), EIO);
  ASSERT_FALSE(gt.ok()) << "damaged zstd chunk returned data";
  EXPECT_EQ(gt.status().code(), EIO);
  ASSERT_TRUE(go.ok()) << go.status().message();
  EXPECT_TRUE(**go == other);
  // Still EIO on a second try (nothing bad was cached).
  EXPECT_EQ(st->chunks.get(r).status().code(), EIO);
}

TEST_F(ChunkStoreTest, ForgedRecordWithValidPackChecksumsIsEio) {
  // A record whose pack checksums are consistent but whose bytes are not the chunk's: only the
  // end-to-end XXH3-128 check catches it.
  std::string d = test::random_bytes(20000, 13);
  int64_t id = 0;
  Row row;
  std::string path;
  {
    auto st = mk();
    id = put(*st, d);
    row = chunk_row(*st, id);
    path = pack_path(*st, row.pack);
    ASSERT_EQ(row.codec, kCodecRaw);
  }
  ChunkRecord forged;
  forged.codec = kCodecRaw;
  forged.raw_len = uint32_t(d.size());
  ChunkHash h = hash_chunk(d.data(), d.size());
  memcpy(forged.hash, h.b, 16);
  forged.payload = d;
  forged.payload[777] ^= 0x40;
  std::string bytes = encode_record_header(forged, uint32_t(forged.payload.size())) + forged.payload;
  {
    FILE* f = fopen(path.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(fseeko(f, off_t(row.off), SEEK_SET), 0);
    ASSERT_EQ(fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    fclose(f);
  }
  auto st = test::open_store(dir_);
  ASSERT_TRUE(st->packs.read({uint32_t(row.pack), uint64_t(row.off), uint32_t(row.stored_len)}).ok())
      << "the forged record should pass the pack-level checks";
  auto got = st->chunks.get(id);
  ASSERT_FALSE(got.ok()) << "forged bytes returned as chunk data";
  EXPECT_EQ(got.status().code(), EIO);
}

TEST_F(ChunkStoreTest, IndexNamingAnotherRecordIsEio) {
  auto st = mk();
  std::string a = test::random_bytes(5000, 20), b = test::random_bytes(5000, 21);
  int64_t ia = put(*st, a), ib = put(*st, b);
  Row rb = chunk_row(*st, ib);
  test::sql_exec(*st, "UPDATE chunks SET off = " + std::to_string(rb.off) + " WHERE id = " + std::to_string(ia));
  auto got = st->chunks.get(ia);
  ASSERT_FALSE(got.ok()) << "index row pointing at another chunk's record returned data";
  EXPECT_EQ(got.status().code(), EIO);
  EXPECT_TRUE(st->chunks.get(ib).ok());
}

TEST_F(ChunkStoreTest, VerifyDedupCatchesHashCollision) {
  // A collision cannot be made on purpose; fake one by giving chunk A the hash of data B.
  for (bool verify : {true, false}) {
    SCOPED_TRACE(verify ? "verify_dedup=1" : "verify_dedup=0");
    test::TempDir tmp;
    StoreConfig cfg;
    cfg.verify_dedup = verify;
    auto st = test::make_store(tmp.path() + "/s", cfg);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->cfg.verify_dedup, verify) << "verify_dedup must survive mkfs + open";
    std::string a = test::random_bytes(40000, 30), b = test::random_bytes(40000, 31);
    int64_t ia = put(*st, a);
    EXPECT_EQ(put(*st, a), ia) << "a true duplicate dedups in either mode";
    ASSERT_TRUE(st->chunks.get(ia).ok());  // cached now
    ChunkHash hb = hash_chunk(b.data(), b.size());
    test::sql_exec(*st, "UPDATE chunks SET hash = X'" + hex(hb.b, 16) + "' WHERE id = " + std::to_string(ia));
    auto r = st->chunks.put(reinterpret_cast<const uint8_t*>(b.data()), b.size());
    if (verify) {
      ASSERT_FALSE(r.ok()) << "verify_dedup accepted different bytes with the same hash";
      EXPECT_EQ(r.status().code(), EIO);
    } else {
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(*r, ia) << "without verify_dedup the hash is trusted";
    }
    // Cold cache: the stored record no longer matches the index hash either; still refused.
    if (verify) {
      ASSERT_TRUE(st->commit().ok());
      std::string dir = st->dir;
      st.reset();
      st = test::open_store(dir);
      auto r2 = st->chunks.put(reinterpret_cast<const uint8_t*>(b.data()), b.size());
      EXPECT_FALSE(r2.ok());
      if (!r2.ok()) { EXPECT_EQ(r2.status().code(), EIO); }
    }
  }
}

TEST_F(ChunkStoreTest, PinsKeepChunksThroughGc) {
  auto st = mk();
  std::string a = test::random_bytes(20000, 40), b = test::random_bytes(20000, 41), c = test::random_bytes(20000, 42);
  int64_t ia = put(*st, a), ib = put(*st, b), ic = put(*st, c);
  EXPECT_EQ(put(*st, c), ic);  // pinned twice
  EXPECT_TRUE(st->chunks.pinned(ia));
  EXPECT_TRUE(st->chunks.pinned(ib));
  st->chunks.unpin(ib);
  EXPECT_FALSE(st->chunks.pinned(ib));
  st->chunks.unpin(ic);
  EXPECT_TRUE(st->chunks.pinned(ic)) << "two puts, one unpin: still pinned";
  ASSERT_TRUE(st->chunks.get(ib).ok());  // cached: gc must drop it from the cache too

  auto gc = collect_garbage(*st);
  ASSERT_TRUE(gc.ok()) << gc.status().message();
  EXPECT_EQ(gc->chunks_deleted, 1u);
  EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM chunks WHERE id = " + std::to_string(ia)), 1) << "pinned chunk deleted";
  EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM chunks WHERE id = " + std::to_string(ic)), 1) << "pinned chunk deleted";
  EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM chunks WHERE id = " + std::to_string(ib)), 0) << "unpinned garbage kept";
  auto ga = st->chunks.get(ia);
  ASSERT_TRUE(ga.ok()) << ga.status().message();
  EXPECT_TRUE(**ga == a);
  EXPECT_FALSE(st->chunks.get(ib).ok()) << "a deleted chunk is still served (from the cache?)";

  // A chunk with refcount > 0 survives without a pin.
  test::sql_exec(*st, "UPDATE chunks SET refcount = 1 WHERE id = " + std::to_string(ic));
  st->chunks.unpin(ic);
  st->chunks.unpin(ia);
  EXPECT_FALSE(st->chunks.pinned(ia));
  gc = collect_garbage(*st);
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->chunks_deleted, 1u);
  EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM chunks WHERE id = " + std::to_string(ia)), 0);
  EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM chunks WHERE id = " + std::to_string(ic)), 1);
  // Storing the deleted data again works and gives a readable chunk.
  int64_t ia2 = put(*st, a);
  auto again = st->chunks.get(ia2);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(**again == a);
}

TEST_F(ChunkStoreTest, BackgroundGcKeepsChunksUntilSecondPass) {
  auto st = mk();
  int64_t id = put(*st, test::random_bytes(1000, 50));
  st->chunks.unpin(id);
  std::set<int64_t> prev;
  GcOptions o;
  o.previous_garbage = &prev;
  auto g1 = collect_garbage(*st, o);
  ASSERT_TRUE(g1.ok());
  EXPECT_EQ(g1->chunks_deleted, 0u);
  EXPECT_EQ(prev.count(id), 1u);
  auto g2 = collect_garbage(*st, o);
  ASSERT_TRUE(g2.ok());
  EXPECT_EQ(g2->chunks_deleted, 1u);
  EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM chunks"), 0);
}

TEST_F(ChunkStoreTest, ConcurrentPutsOfSameDataAgreeOnIds) {
  auto st = mk();
  std::vector<std::string> data;
  for (int i = 0; i < 60; ++i) data.push_back(i % 2 ? test::random_bytes(20000 + i, uint64_t(i)) : test::text_bytes(20000 + i, uint64_t(i)));
  constexpr int kThreads = 6;
  std::vector<std::vector<int64_t>> ids(kThreads, std::vector<int64_t>(data.size()));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (size_t k = 0; k < data.size(); ++k) {
        size_t i = (k * 7 + size_t(t) * 13) % data.size();  // each thread in its own order
        auto id = st->chunks.put(reinterpret_cast<const uint8_t*>(data[i].data()), data[i].size());
        ids[size_t(t)][i] = id.ok() ? *id : -1;
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 1; t < kThreads; ++t) EXPECT_EQ(ids[size_t(t)], ids[0]) << "thread " << t;
  EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM chunks"), int64_t(data.size()));
  std::set<int64_t> distinct(ids[0].begin(), ids[0].end());
  EXPECT_EQ(distinct.size(), data.size());
  EXPECT_EQ(distinct.count(-1), 0u);
  ASSERT_TRUE(st->commit().ok());
  std::string dir = st->dir;
  st.reset();
  st = test::open_store(dir);
  for (size_t i = 0; i < data.size(); ++i) {
    auto got = st->chunks.get(ids[0][i]);
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_TRUE(**got == data[i]) << i;
    for (int t = 0; t < kThreads; ++t) st->chunks.unpin(ids[0][i]);
  }
}

TEST(ChunkCacheTest, LruBoundedInBytes) {
  ChunkCache c(100);
  auto mk = [](size_t n, char ch) { return std::make_shared<const std::string>(n, ch); };
  c.put(1, mk(40, 'a'));
  c.put(2, mk(40, 'b'));
  ASSERT_TRUE(c.get(1));  // 1 is now the most recent
  c.put(3, mk(40, 'c'));  // over 100: the least recent (2) goes
  EXPECT_TRUE(c.get(1));
  EXPECT_FALSE(c.get(2));
  EXPECT_TRUE(c.get(3));
  c.put(4, mk(101, 'd'));  // larger than the cache: not cached, nothing evicted
  EXPECT_FALSE(c.get(4));
  EXPECT_TRUE(c.get(1));
  EXPECT_TRUE(c.get(3));
  c.erase(1);
  EXPECT_FALSE(c.get(1));
  c.put(5, mk(60, 'e'));  // 40 + 60 fits exactly
  EXPECT_TRUE(c.get(3));
  EXPECT_TRUE(c.get(5));
  EXPECT_EQ(*c.get(5), std::string(60, 'e'));
}

}  // namespace
}  // namespace dzfs
