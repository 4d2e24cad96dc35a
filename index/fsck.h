// Consistency check of a volume (`dzfs fsck`): index invariants and every live chunk's bytes.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "index/store.h"

namespace dzfs {

struct FsckReport {
  std::vector<std::string> problems;     // one line each, naming the file or chunk concerned
  std::vector<std::string> damaged_files;  // paths whose data cannot be read back intact
  uint64_t chunks_checked = 0, inodes_checked = 0;
  bool clean() const { return problems.empty(); }
};

struct FsckOptions {
  bool verify_data = true;  // read and verify every live chunk
  std::function<void(uint64_t done, uint64_t total)> progress;
};

Result<FsckReport> check_volume(Store& store, const FsckOptions& opts = {});
// A path for an inode, from the root (first name found; hard links have several).
std::string path_of_inode(SqliteDb& db, uint64_t ino);

}  // namespace dzfs
