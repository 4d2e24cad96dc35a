// PackStore: records round-trip; every damaged or out-of-bounds read is EIO, never wrong data.
#include "index/pack_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "index/chunk_store.h"
#include "tests/unit/test_util.h"

namespace dzfs {
namespace {

ChunkRecord make_record(const std::string& raw, uint8_t codec = kCodecRaw) {
  ChunkRecord r;
  r.codec = codec;
  r.raw_len = uint32_t(raw.size());
  ChunkHash h = hash_chunk(raw.data(), raw.size());
  memcpy(r.hash, h.b, 16);
  r.payload = raw;
  return r;
}

void expect_same(const ChunkRecord& a, const ChunkRecord& b) {
  EXPECT_EQ(a.codec, b.codec);
  EXPECT_EQ(a.raw_len, b.raw_len);
  EXPECT_EQ(memcmp(a.hash, b.hash, 16), 0);
  EXPECT_EQ(a.payload, b.payload);
}

class PackStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path() + "/packs";
    ASSERT_EQ(::mkdir(dir_.c_str(), 0700), 0);
  }
  std::unique_ptr<PackStore> open_packs(bool readonly = false) {
    auto p = std::make_unique<PackStore>(dir_, readonly);
    Status s = p->open();
    EXPECT_TRUE(s.ok()) << s.message();
    return p;
  }
  test::TempDir tmp_;
  std::string dir_;
};

TEST_F(PackStoreTest, AppendReadRoundTrip) {
  auto ps = open_packs();
  EXPECT_EQ(ps->current_packs().size(), 0u);
  std::vector<ChunkRecord> recs;
  std::vector<PackLocation> locs;
  for (int i = 0; i < 20; ++i) {
    std::string raw = test::random_bytes(size_t(1 + i * 977), uint64_t(i));
    recs.push_back(make_record(raw, uint8_t(i % 3)));
    auto loc = ps->append(recs.back(), PackStream::kSettled);
    ASSERT_TRUE(loc.ok()) << loc.status().message();
    EXPECT_EQ(loc->stored_len, raw.size());
    if (!locs.empty()) {
      EXPECT_EQ(loc->pack, locs.back().pack);
      EXPECT_EQ(loc->off, locs.back().off + kRecordHeaderSize + locs.back().stored_len) << "records are contiguous";
    } else {
      EXPECT_EQ(loc->off, kPackHeaderSize);
    }
    locs.push_back(*loc);
  }
  EXPECT_EQ(ps->current_packs(), std::vector<uint32_t>{locs[0].pack});
  // Readable before sync (the same session reads what it appended) and after.
  for (size_t i = 0; i < recs.size(); ++i) {
    auto r = ps->read(locs[i]);
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().message();
    expect_same(*r, recs[i]);
  }
  ASSERT_TRUE(ps->sync().ok());
  ps.reset();
  // A new session reads them too, and appends to a new pack.
  auto ps2 = open_packs();
  for (size_t i = 0; i < recs.size(); ++i) {
    auto r = ps2->read(locs[i]);
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().message();
    expect_same(*r, recs[i]);
  }
  auto loc = ps2->append(make_record("next session"), PackStream::kSettled);
  ASSERT_TRUE(loc.ok());
  EXPECT_GT(loc->pack, locs[0].pack);
  EXPECT_EQ(loc->off, kPackHeaderSize);
  // The pack file: header magic, then records; its size is exactly the records appended.
  EXPECT_EQ(test::file_size(ps2->path_of(locs[0].pack)), locs.back().off + kRecordHeaderSize + locs.back().stored_len);
  FILE* f = fopen(ps2->path_of(locs[0].pack).c_str(), "rb");
  ASSERT_NE(f, nullptr);
  char hdr[16] = {};
  ASSERT_EQ(fread(hdr, 1, 16, f), 16u);
  fclose(f);
  EXPECT_EQ(std::string(hdr, 8), "DZPACK01");
}

TEST_F(PackStoreTest, EmptyPayloadRecord) {
  auto ps = open_packs();
  ChunkRecord r = make_record("");
  auto loc = ps->append(r, PackStream::kSettled);
  ASSERT_TRUE(loc.ok());
  auto back = ps->read(*loc);
  ASSERT_TRUE(back.ok()) << back.status().message();
  expect_same(*back, r);
}

TEST_F(PackStoreTest, RotatesPastTargetSize) {
  auto ps = open_packs();
  std::vector<std::pair<PackLocation, std::string>> written;
  // 16 MiB records: the pack passes kPackTargetSize after the 4th, the 5th starts a new pack.
  for (int i = 0; i < 5; ++i) {
    std::string raw(16u << 20, char('a' + i));
    raw[i] = 'X';
    auto loc = ps->append(make_record(raw), PackStream::kSettled);
    ASSERT_TRUE(loc.ok()) << loc.status().message();
    written.emplace_back(*loc, raw);
  }
  EXPECT_EQ(written[0].first.pack, written[3].first.pack);
  EXPECT_NE(written[4].first.pack, written[3].first.pack) << "no rotation after " << kPackTargetSize << " bytes";
  EXPECT_EQ(written[4].first.off, kPackHeaderSize);
  EXPECT_EQ(ps->current_packs(), std::vector<uint32_t>{written[4].first.pack});
  ASSERT_TRUE(ps->sync().ok());
  auto l = ps->list();
  ASSERT_EQ(l.size(), 2u);
  for (auto& [loc, raw] : written) {
    auto r = ps->read(loc);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_TRUE(r->payload == raw);
  }
  // The rotated pack can be removed; the current one cannot.
  EXPECT_EQ(ps->remove(written[4].first.pack).code(), EBUSY);
  EXPECT_TRUE(ps->remove(written[0].first.pack).ok());
  EXPECT_EQ(ps->read(written[0].first).status().code(), EIO);
}

TEST_F(PackStoreTest, ReadRawAppendRawCopiesRecord) {
  auto ps = open_packs();
  ChunkRecord a = make_record(test::text_bytes(5000, 1), kCodecZstd);
  ChunkRecord b = make_record(test::random_bytes(3000, 2), kCodecNeural);
  auto la = ps->append(a, PackStream::kSettled), lb = ps->append(b, PackStream::kSettled);
  ASSERT_TRUE(la.ok() && lb.ok());
  auto raw = ps->read_raw(*lb);
  ASSERT_TRUE(raw.ok()) << raw.status().message();
  EXPECT_EQ(raw->size(), kRecordHeaderSize + b.payload.size());
  EXPECT_EQ(raw->substr(0, kRecordHeaderSize), encode_record_header(b, uint32_t(b.payload.size())));
  EXPECT_EQ(raw->substr(kRecordHeaderSize), b.payload);
  auto lc = ps->append_raw(*raw, PackStream::kSettled);
  ASSERT_TRUE(lc.ok()) << lc.status().message();
  EXPECT_EQ(lc->stored_len, lb->stored_len);
  EXPECT_NE(lc->off, lb->off);
  auto c = ps->read(*lc);
  ASSERT_TRUE(c.ok()) << c.status().message();
  expect_same(*c, b);
  auto again = ps->read(*la);
  ASSERT_TRUE(again.ok());
  expect_same(*again, a);
  EXPECT_EQ(ps->append_raw(std::string(10, 'x'), PackStream::kSettled).status().code(), EINVAL);
}

TEST_F(PackStoreTest, EveryHeaderByteFlipIsEio) {
  auto ps = open_packs();
  ChunkRecord first = make_record(test::random_bytes(1000, 1));
  ChunkRecord rec = make_record(test::random_bytes(4000, 2));
  ChunkRecord last = make_record(test::random_bytes(1000, 3));
  auto l1 = ps->append(first, PackStream::kSettled), loc = ps->append(rec, PackStream::kSettled), l3 = ps->append(last, PackStream::kSettled);
  ASSERT_TRUE(l1.ok() && loc.ok() && l3.ok());
  ASSERT_TRUE(ps->sync().ok());
  const std::string path = ps->path_of(loc->pack);
  for (uint32_t i = 0; i < kRecordHeaderSize; ++i) {
    for (uint8_t mask : {uint8_t(0x01), uint8_t(0x80)}) {
      test::flip_byte(path, loc->off + i, mask);
      auto r = ps->read(*loc);
      EXPECT_FALSE(r.ok()) << "header byte " << i << " mask " << int(mask) << " flipped, read succeeded";
      if (!r.ok()) { EXPECT_EQ(r.status().code(), EIO) << i << ": " << r.status().message(); }
      EXPECT_EQ(ps->read_raw(*loc).status().code(), EIO) << i;
      // Neighbours are unaffected.
      EXPECT_TRUE(ps->read(*l1).ok());
      EXPECT_TRUE(ps->read(*l3).ok());
      test::flip_byte(path, loc->off + i, mask);  // restore
      auto ok = ps->read(*loc);
      ASSERT_TRUE(ok.ok()) << ok.status().message();
      expect_same(*ok, rec);
    }
  }
}

TEST_F(PackStoreTest, PayloadByteFlipIsEio) {
  auto ps = open_packs();
  ChunkRecord rec = make_record(test::random_bytes(8192, 9));
  auto loc = ps->append(rec, PackStream::kSettled);
  ASSERT_TRUE(loc.ok());
  ASSERT_TRUE(ps->sync().ok());
  const std::string path = ps->path_of(loc->pack);
  for (uint64_t i : {0ull, 1ull, 100ull, 4096ull, 8190ull, 8191ull}) {
    test::flip_byte(path, loc->off + kRecordHeaderSize + i, 0x10);
    auto r = ps->read(*loc);
    ASSERT_FALSE(r.ok()) << "payload byte " << i << " flipped, read returned data";
    EXPECT_EQ(r.status().code(), EIO);
    test::flip_byte(path, loc->off + kRecordHeaderSize + i, 0x10);
    EXPECT_TRUE(ps->read(*loc).ok());
  }
}

TEST_F(PackStoreTest, TruncatedPackIsEio) {
  std::vector<ChunkRecord> recs;
  std::vector<PackLocation> locs;
  std::string path;
  {
    auto ps = open_packs();
    for (int i = 0; i < 4; ++i) {
      recs.push_back(make_record(test::random_bytes(2000, uint64_t(i))));
      auto loc = ps->append(recs.back(), PackStream::kSettled);
      ASSERT_TRUE(loc.ok());
      locs.push_back(*loc);
    }
    path = ps->path_of(locs[0].pack);
  }
  // Cut the last record in half, and then just its last byte.
  for (uint64_t cut : {locs[3].off + kRecordHeaderSize + 1999, locs[3].off + kRecordHeaderSize + 1000,
                       locs[3].off + 10}) {  // shrinking only: no zero-filled extension
    ASSERT_EQ(::truncate(path.c_str(), off_t(cut)), 0);
    auto ps = open_packs();
    auto r = ps->read(locs[3]);
    ASSERT_FALSE(r.ok()) << "read of a truncated record at size " << cut << " returned data";
    EXPECT_EQ(r.status().code(), EIO);
    EXPECT_EQ(ps->read_raw(locs[3]).status().code(), EIO);
    for (int i = 0; i < 3; ++i) {
      auto ok = ps->read(locs[i]);
      ASSERT_TRUE(ok.ok()) << i << ": " << ok.status().message();
      expect_same(*ok, recs[i]);
    }
  }
}

TEST_F(PackStoreTest, BadLocationsAreEio) {
  auto ps = open_packs();
  ChunkRecord a = make_record(test::random_bytes(3000, 1)), b = make_record(test::random_bytes(3000, 2));
  auto la = ps->append(a, PackStream::kSettled), lb = ps->append(b, PackStream::kSettled);
  ASSERT_TRUE(la.ok() && lb.ok());
  uint64_t size = test::file_size(ps->path_of(la->pack));
  auto eio = [&](PackLocation l, const char* what) {
    auto r = ps->read(l);
    EXPECT_FALSE(r.ok()) << what;
    EXPECT_EQ(r.status().code(), EIO) << what << ": " << r.status().message();
  };
  eio({la->pack, size, 0}, "at end of file");
  eio({la->pack, size + 4096, 10}, "beyond end of file");
  eio({la->pack, lb->off, lb->stored_len + 1}, "length beyond end");
  eio({la->pack, lb->off, lb->stored_len - 1}, "length disagrees with header");
  eio({la->pack, 0, 100}, "inside the pack header");
  eio({la->pack, la->off + 1, la->stored_len}, "misaligned offset");
  eio({la->pack, la->off + kRecordHeaderSize, 100}, "offset into a payload");
  eio({la->pack + 100, kPackHeaderSize, 10}, "missing pack");
  // Good locations still read.
  EXPECT_TRUE(ps->read(*la).ok());
  EXPECT_TRUE(ps->read(*lb).ok());
}

// A damaged index row can name any 64-bit offset (SQLite stores it signed: a negative value reads
// back as a huge one). The bounds check must not wrap around: the read is EIO like any other
// out-of-bounds location.
TEST_F(PackStoreTest, HugeOffsetFromDamagedIndexIsEio) {
  auto ps = open_packs();
  auto la = ps->append(make_record(test::random_bytes(3000, 1)), PackStream::kSettled);
  ASSERT_TRUE(la.ok());
  for (uint64_t off : {~uint64_t(0) - 10, uint64_t(-int64_t(kRecordHeaderSize)), uint64_t(1) << 63}) {
    auto r = ps->read({la->pack, off, 100});
    ASSERT_FALSE(r.ok()) << off;
    EXPECT_EQ(r.status().code(), EIO) << "offset " << off << ": " << r.status().message();
    EXPECT_EQ(ps->read_raw({la->pack, off, 100}).status().code(), EIO) << off;
  }
}

TEST_F(PackStoreTest, RemoveAndList) {
  std::vector<PackLocation> locs;
  for (int session = 0; session < 3; ++session) {
    auto ps = open_packs();
    auto loc = ps->append(make_record(test::random_bytes(1000 + session, uint64_t(session))), PackStream::kSettled);
    ASSERT_TRUE(loc.ok());
    locs.push_back(*loc);
  }
  // A stray file that is not a pack is not listed.
  FILE* f = fopen((dir_ + "/notes.txt").c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  auto ps = open_packs();
  auto l = ps->list();
  ASSERT_EQ(l.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(l[i].first, locs[i].pack);
    EXPECT_EQ(l[i].second, kPackHeaderSize + kRecordHeaderSize + 1000 + i);
  }
  ASSERT_TRUE(ps->read(locs[1]).ok());  // opens and caches an fd
  EXPECT_TRUE(ps->remove(locs[1].pack).ok());
  EXPECT_EQ(::access(ps->path_of(locs[1].pack).c_str(), F_OK), -1);
  l = ps->list();
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].first, locs[0].pack);
  EXPECT_EQ(l[1].first, locs[2].pack);
  EXPECT_EQ(ps->read(locs[1]).status().code(), EIO);
  EXPECT_TRUE(ps->read(locs[0]).ok());
  EXPECT_TRUE(ps->remove(locs[1].pack).ok()) << "removing a missing pack is not an error";
  // New packs never reuse the id of a listed pack.
  auto loc = ps->append(make_record("x"), PackStream::kSettled);
  ASSERT_TRUE(loc.ok());
  EXPECT_GT(loc->pack, locs[2].pack);
}

// Each stream appends to a pack of its own; seal() ends appends to a current pack (the next
// append of that stream starts a new pack) and makes it removable; what was appended before the
// seal stays readable, in this session and the next.
TEST_F(PackStoreTest, StreamsHaveTheirOwnPacksAndSealEndsAppends) {
  std::vector<std::pair<PackLocation, ChunkRecord>> written;
  PackLocation fast_loc, settled_loc;
  {
    auto ps = open_packs();
    auto f1 = ps->append(make_record("fast one", kCodecZstd), PackStream::kFast);
    auto s1 = ps->append(make_record("settled one"), PackStream::kSettled);
    auto f2 = ps->append(make_record("fast two", kCodecZstd), PackStream::kFast);
    ASSERT_TRUE(f1.ok() && s1.ok() && f2.ok());
    EXPECT_EQ(f1->pack, f2->pack);
    EXPECT_NE(f1->pack, s1->pack);
    EXPECT_EQ(f2->off, f1->off + kRecordHeaderSize + 8) << "the fast stream's records are contiguous";
    EXPECT_EQ(ps->current_packs().size(), 2u);
    EXPECT_EQ(ps->current_packs(), (std::vector<uint32_t>{f1->pack, s1->pack}));
    EXPECT_EQ(ps->remove(f1->pack).code(), EBUSY);

    EXPECT_TRUE(ps->seal(f1->pack));
    EXPECT_FALSE(ps->seal(f1->pack)) << "a sealed pack is no longer current";
    EXPECT_EQ(ps->current_packs(), std::vector<uint32_t>{s1->pack});
    auto f3 = ps->append(make_record("fast three", kCodecZstd), PackStream::kFast);
    ASSERT_TRUE(f3.ok());
    EXPECT_GT(f3->pack, s1->pack) << "after a seal the stream starts a new pack";
    auto s2 = ps->append(make_record("settled two"), PackStream::kSettled);
    ASSERT_TRUE(s2.ok());
    EXPECT_EQ(s2->pack, s1->pack) << "sealing one stream leaves the other's pack open";
    ASSERT_TRUE(ps->sync().ok());
    auto r = ps->read(*f2);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->payload, "fast two");
    fast_loc = *f1;
    settled_loc = *s2;
    EXPECT_TRUE(ps->remove(f1->pack).ok()) << "a sealed pack can be removed";
    EXPECT_EQ(ps->read(*f2).status().code(), EIO);
  }
  auto ps = open_packs();
  EXPECT_TRUE(ps->current_packs().empty()) << "a new session has no current pack until it appends";
  auto r = ps->read(settled_loc);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->payload, "settled two");
  EXPECT_EQ(ps->list().size(), 2u);
}

TEST_F(PackStoreTest, BelowReserveAppendsFailEnospc) {
  auto ps = open_packs();
  ps->set_reserve_bytes(uint64_t(1) << 62);  // more than any disk: always "full"
  auto r = ps->append(make_record(test::random_bytes(1000, 1)), PackStream::kSettled);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ENOSPC);
  ps->set_reserve_bytes(0);
  ChunkRecord rec = make_record(test::random_bytes(1000, 2));
  auto ok = ps->append(rec, PackStream::kSettled);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  auto back = ps->read(*ok);
  ASSERT_TRUE(back.ok()) << back.status().message();
  expect_same(*back, rec);
  // The refused record left nothing behind: the good one follows the pack header directly.
  EXPECT_EQ(ok->off, kPackHeaderSize);
}

TEST_F(PackStoreTest, ReadOnlyRefusesAppends) {
  {
    auto ps = open_packs();
    ASSERT_TRUE(ps->append(make_record("data"), PackStream::kSettled).ok());
  }
  auto ro = open_packs(true);
  EXPECT_EQ(ro->append(make_record("more"), PackStream::kSettled).status().code(), EROFS);
  EXPECT_EQ(ro->list().size(), 1u);
  EXPECT_TRUE(ro->read({1, kPackHeaderSize, 4}).ok());
}

}  // namespace
}  // namespace dzfs
