// Chunker (FastCDC): boundaries are part of format v1 (a change defeats dedup against existing
// volumes), so they are pinned here, besides the size and resync properties.
#include "index/chunker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "index/chunk_store.h"
#include "tests/unit/test_util.h"

namespace dzfs {
namespace {

constexpr uint32_t kMin = 16 * 1024, kAvg = 64 * 1024, kMax = 256 * 1024;

// Cut lengths of a whole-buffer pass: the caller's loop that the store runs at a flush.
std::vector<size_t> chunk_all(const Chunker& c, const std::string& data) {
  std::vector<size_t> out;
  const uint8_t* p = reinterpret_cast<const uint8_t*>(data.data());
  size_t pos = 0;
  while (pos < data.size()) {
    size_t n = c.cut(p + pos, data.size() - pos);
    EXPECT_GT(n, 0u) << "cut returned 0 at " << pos << ": the caller would loop forever";
    if (n == 0) break;
    out.push_back(n);
    pos += n;
  }
  return out;
}

uint64_t fnv1a(const std::vector<size_t>& cuts) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t v : cuts)
    for (int i = 0; i < 8; ++i) {
      h ^= uint8_t(uint64_t(v) >> (8 * i));
      h *= 0x100000001b3ull;
    }
  return h;
}

// An independent transcription of the documented algorithm (FastCDC, normalized chunking level 2,
// gear table from splitmix64 seeded 0x6a09e667f3bcc908, masks spread over the high 48 bits).
struct ReferenceCdc {
  std::array<uint64_t, 256> gear{};
  uint64_t small = 0, large = 0;
  uint32_t min, avg, max;
  ReferenceCdc(uint32_t mn, uint32_t av, uint32_t mx) : min(mn), avg(av), max(mx) {
    uint64_t x = 0x6a09e667f3bcc908ull;
    for (auto& v : gear) {
      x += 0x9e3779b97f4a7c15ull;
      uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      v = z ^ (z >> 31);
    }
    int bits = 0;
    while ((1u << (bits + 1)) <= av) ++bits;  // log2(avg)
    auto spread = [](int b) {
      uint64_t m = 0;
      for (int i = 0; i < b; ++i) m |= 1ull << (63 - i * 48 / b);
      return m;
    };
    small = spread(bits + 2);
    large = spread(std::max(bits - 2, 1));
  }
  size_t cut(const uint8_t* d, size_t n) const {
    if (n <= min) return n;
    size_t end = std::min<size_t>(n, max), normal = std::min<size_t>(end, avg);
    uint64_t h = 0;
    size_t i = min;
    for (; i < normal; ++i) {
      h = (h << 1) + gear[d[i]];
      if (!(h & small)) return i + 1;
    }
    for (; i < end; ++i) {
      h = (h << 1) + gear[d[i]];
      if (!(h & large)) return i + 1;
    }
    return end;
  }
};

TEST(ChunkerTest, BoundariesArePinnedForSeededInput) {
  Chunker c(kMin, kAvg, kMax);
  std::string data = test::random_bytes(4u << 20, 20240601);
  std::vector<size_t> cuts = chunk_all(c, data);
  // Values recorded from format v1. If this fails, chunk boundaries changed: every existing
  // volume stops deduplicating against new writes. Do not "fix" the numbers without a format bump.
  EXPECT_EQ(cuts.size(), 52u);
  std::vector<size_t> first(cuts.begin(), cuts.begin() + std::min<size_t>(6, cuts.size()));
  EXPECT_EQ(first, (std::vector<size_t>{79269, 79627, 41823, 65943, 103310, 152058}));
  EXPECT_EQ(fnv1a(cuts), 0xbe713d795b47d690ull) << std::hex << fnv1a(cuts);

  // Same input, fresh chunker: same cuts.
  Chunker c2(kMin, kAvg, kMax);
  EXPECT_EQ(chunk_all(c2, data), cuts);
}

TEST(ChunkerTest, MatchesIndependentReferenceImplementation) {
  for (auto [mn, av, mx] : std::vector<std::array<uint32_t, 3>>{{kMin, kAvg, kMax}, {1024, 4096, 16384}, {2048, 8192, 65536}}) {
    Chunker c(mn, av, mx);
    ReferenceCdc ref(mn, av, mx);
    for (uint64_t seed : {1ull, 2ull, 3ull}) {
      std::string data = seed == 3 ? test::text_bytes(2u << 20, seed) : test::random_bytes(2u << 20, seed);
      const uint8_t* p = reinterpret_cast<const uint8_t*>(data.data());
      size_t pos = 0;
      int n = 0;
      while (pos < data.size()) {
        size_t got = c.cut(p + pos, data.size() - pos), want = ref.cut(p + pos, data.size() - pos);
        ASSERT_EQ(got, want) << "min " << mn << " avg " << av << " seed " << seed << " chunk " << n << " at " << pos;
        pos += got;
        ++n;
      }
    }
  }
}

TEST(ChunkerTest, ChunkSizesWithinBoundsExceptLast) {
  Chunker c(kMin, kAvg, kMax);
  for (uint64_t seed : {7ull, 8ull}) {
    std::string data = seed == 7 ? test::random_bytes(8u << 20, seed) : test::text_bytes(8u << 20, seed);
    std::vector<size_t> cuts = chunk_all(c, data);
    ASSERT_GT(cuts.size(), 10u);
    size_t total = 0;
    for (size_t i = 0; i < cuts.size(); ++i) {
      total += cuts[i];
      EXPECT_LE(cuts[i], kMax) << "chunk " << i;
      if (i + 1 < cuts.size()) { EXPECT_GE(cuts[i], kMin) << "chunk " << i; }
    }
    EXPECT_EQ(total, data.size());
  }
  // All-zero and constant data never cut early: max-size chunks.
  std::string zeros(1u << 20, '\0');
  for (size_t n : chunk_all(c, zeros)) EXPECT_LE(n, kMax);
}

TEST(ChunkerTest, AverageChunkSizeNearTarget) {
  for (auto [mn, av, mx] : std::vector<std::array<uint32_t, 3>>{{kMin, kAvg, kMax}, {1024, 4096, 16384}}) {
    Chunker c(mn, av, mx);
    std::string data = test::random_bytes(16u << 20, 99);
    std::vector<size_t> cuts = chunk_all(c, data);
    double mean = double(data.size()) / double(cuts.size());
    EXPECT_GT(mean, 0.7 * av) << "avg " << av << ": " << cuts.size() << " chunks";
    EXPECT_LT(mean, 1.3 * av) << "avg " << av << ": " << cuts.size() << " chunks";
  }
}

TEST(ChunkerTest, CutDependsOnlyOnBytesUpToIt) {
  // A cut found in a prefix is the same cut whatever follows (streaming writers rely on it).
  Chunker c(kMin, kAvg, kMax);
  std::string data = test::random_bytes(1u << 20, 5);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(data.data());
  size_t full = c.cut(p, data.size());
  ASSERT_LT(full, size_t(kMax));
  for (size_t n : {full, full + 1, full + 1000, size_t(kMax), data.size()}) EXPECT_EQ(c.cut(p, n), full) << n;
  // With fewer bytes than the cut point and less than max, the whole buffer is returned.
  EXPECT_EQ(c.cut(p, full - 1), full - 1);
  // Never more than max.
  EXPECT_LE(c.cut(p, data.size()), size_t(kMax));
}

TEST(ChunkerTest, InsertionResyncs) {
  Chunker c(kMin, kAvg, kMax);
  std::string a = test::random_bytes(8u << 20, 31337);
  std::string b = a;
  b.insert(b.size() / 2, test::random_bytes(100, 4242));
  auto hashes = [&](const std::string& d) {
    std::vector<std::string> out;
    size_t pos = 0;
    for (size_t n : chunk_all(c, d)) {
      ChunkHash h = hash_chunk(d.data() + pos, n);
      out.emplace_back(reinterpret_cast<const char*>(h.b), 16);
      pos += n;
    }
    return out;
  };
  std::vector<std::string> ha = hashes(a), hb = hashes(b);
  std::set<std::string> sb(hb.begin(), hb.end());
  size_t same = 0;
  for (auto& h : ha) same += sb.count(h);
  EXPECT_GE(double(same), 0.9 * double(ha.size())) << same << " of " << ha.size() << " chunks unchanged";
  // The damage is local: at most a few chunks differ.
  EXPECT_LE(ha.size() - same, 3u);
  // Every chunk after the insertion point's neighbourhood is byte-identical, so the tails match.
  ASSERT_GE(ha.size(), 4u);
  ASSERT_GE(hb.size(), 4u);
  EXPECT_TRUE(std::equal(ha.end() - 3, ha.end(), hb.end() - 3));
  EXPECT_TRUE(std::equal(ha.begin(), ha.begin() + 3, hb.begin()));
}

TEST(ChunkerTest, EmptyAndTinyInputs) {
  Chunker c(kMin, kAvg, kMax);
  EXPECT_EQ(c.cut(nullptr, 0), 0u);
  EXPECT_TRUE(chunk_all(c, std::string()).empty());
  std::string one("x");
  EXPECT_EQ(c.cut(reinterpret_cast<const uint8_t*>(one.data()), 1), 1u);
  EXPECT_EQ(chunk_all(c, one), std::vector<size_t>{1});
  // Anything up to min is one chunk.
  std::string small = test::random_bytes(kMin, 3);
  EXPECT_EQ(chunk_all(c, small), std::vector<size_t>{kMin});
  std::string just_over = test::random_bytes(kMin + 1, 3);
  EXPECT_EQ(chunk_all(c, just_over), std::vector<size_t>{kMin + 1});
  EXPECT_EQ(c.min_size(), kMin);
  EXPECT_EQ(c.max_size(), kMax);
}

}  // namespace
}  // namespace dzfs
