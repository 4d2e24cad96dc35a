// The volume's config file (STORE/dzfs.conf): format version and the parameters fixed at mkfs.
// Text, `key = value` per line, so that a person can read what a volume is.
#pragma once
#include <cstdint>
#include <string>

#include "index/status.h"

namespace dzfs {

// Volume format 2: the index may be at rest as index.db.zst (index_at_rest.h), which a dzfs of
// format 1 would not see (it would make an empty index.db), so it must refuse such a volume.
// A format-1 volume is upgraded when opened for writing (only dzfs.conf changes).
constexpr int kFormatVersion = 2;

struct StoreConfig {
  int format_version = kFormatVersion;
  uint32_t chunk_min = 16 * 1024;
  uint32_t chunk_avg = 64 * 1024;
  uint32_t chunk_max = 256 * 1024;
  int zstd_level = 3;
  bool verify_dedup = false;  // byte-compare a dedup hit against the stored chunk
  uint32_t group_kb = 4096;   // raw KiB of a solid group at most (a mount may override it)
  std::string uuid;

  Status validate() const;
  std::string to_text() const;
  static Result<StoreConfig> parse(const std::string& text);
  static Result<StoreConfig> load(const std::string& store_dir);
  Status save(const std::string& store_dir) const;
};

}  // namespace dzfs
