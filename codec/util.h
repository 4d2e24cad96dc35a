// Internal helpers (little-endian access, file I/O, a parallel loop). Not part of the public API.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "codec/status.h"

namespace dzfs::codec {

inline uint32_t load_le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
inline uint64_t load_le64(const uint8_t* p) { return uint64_t{load_le32(p)} | uint64_t{load_le32(p + 4)} << 32; }
inline void store_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void store_le64(uint8_t* p, uint64_t v) {
  store_le32(p, static_cast<uint32_t>(v));
  store_le32(p + 4, static_cast<uint32_t>(v >> 32));
}

Result<std::vector<uint8_t>> read_file(const std::string& path, size_t max_bytes);
Status write_file(const std::string& path, const std::vector<uint8_t>& data);

// Runs fn(i) for i in [0, n) on up to `threads` threads (0: one per CPU), work stealing by an
// atomic counter. Each item depends only on its input, so the split cannot change any output; if
// threads cannot be made, the ones there (at least this one) finish the work.
template <class Fn>
void parallel_for(size_t n, unsigned threads, Fn fn) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  const unsigned t = static_cast<unsigned>(std::min<size_t>(threads, n));
  if (t <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) fn(i);
  };
  std::vector<std::thread> pool;
  try {
    for (unsigned k = 1; k < t; ++k) pool.emplace_back(work);
  } catch (...) {
  }
  work();
  for (auto& th : pool) th.join();
}

}  // namespace dzfs::codec
