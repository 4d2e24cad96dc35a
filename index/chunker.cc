// FastCDC: see chunker.h. The gear table is generated from a fixed seed: changing it changes
// every chunk boundary and so defeats dedup against existing volumes; it is part of format v1.
#include "index/chunker.h"

#include <algorithm>
#include <array>
#include <bit>

namespace dzfs {

namespace {
constexpr std::array<uint64_t, 256> make_gear() {
  std::array<uint64_t, 256> g{};
  uint64_t x = 0x6a09e667f3bcc908ull;  // splitmix64
  for (auto& v : g) {
    x += 0x9e3779b97f4a7c15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    v = z ^ (z >> 31);
  }
  return g;
}
constexpr std::array<uint64_t, 256> kGear = make_gear();

// A mask with `bits` one-bits spread over the high 48 bits, as FastCDC recommends.
uint64_t spread_mask(int bits) {
  uint64_t m = 0;
  for (int i = 0; i < bits; ++i) m |= 1ull << (63 - i * 48 / bits);
  return m;
}
}  // namespace

Chunker::Chunker(uint32_t min_size, uint32_t avg_size, uint32_t max_size)
    : min_(min_size), avg_(avg_size), max_(max_size) {
  int bits = std::bit_width(avg_size) - 1;
  mask_small_ = spread_mask(bits + 2);
  mask_large_ = spread_mask(std::max(bits - 2, 1));
}

size_t Chunker::cut(const uint8_t* data, size_t n) const {
  if (n <= min_) return n;
  size_t end = std::min<size_t>(n, max_);
  size_t normal = std::min<size_t>(end, avg_);
  uint64_t h = 0;
  size_t i = min_;
  for (; i < normal; ++i) {
    h = (h << 1) + kGear[data[i]];
    if (!(h & mask_small_)) return i + 1;
  }
  for (; i < end; ++i) {
    h = (h << 1) + kGear[data[i]];
    if (!(h & mask_large_)) return i + 1;
  }
  return end;
}

}  // namespace dzfs
