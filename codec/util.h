// Internal helpers (little-endian access, file I/O). Not part of the public API.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
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

}  // namespace dzfs::codec
