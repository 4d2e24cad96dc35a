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
  std::vector<int64_t> bad_chunks;          // chunks missing or unreadable (model files aside)
  // Model files that are missing or damaged ("<id>"), and the live chunks that cannot be decoded
  // only for that reason: their bytes are intact and read again once the model file is back.
  std::vector<std::string> damaged_models;
  std::vector<int64_t> model_chunks;
  bool index_file_damaged = false;  // page-level damage of index.db (PRAGMA quick_check)
  uint64_t chunks_checked = 0, inodes_checked = 0;
  bool clean() const { return problems.empty(); }
};

struct FsckOptions {
  bool verify_data = true;  // read and verify every live chunk
  std::function<void(uint64_t done, uint64_t total)> progress;
};

Result<FsckReport> check_volume(Store& store, const FsckOptions& opts = {});

// Repairs what check_volume found, losing no readable byte: a damaged or missing model file that
// this dzfs has built in (the shipped default models) is written again from that copy; chunks of
// a model that cannot be restored here are kept (restore models/<id>.dzm from a backup), and the
// row of such a model that no live chunk uses is dropped; extents whose chunk is missing,
// unreadable or too short become holes, and each file that had one is moved aside into
// /lost+found (as <ino>-<name>) so nobody mistakes it for intact; dangling names are removed;
// overlapping extents are trimmed; link counts and chunk reference counts are recomputed; if
// index.db itself has page-level damage (quick_check), the file is rebuilt by VACUUM, and damage
// that survives that is an error (restore index.db from a backup).
// Commits at the end; the volume then checks clean (damaged data excepted, now as holes).
struct RepairReport {
  std::vector<std::string> actions;
  uint64_t files_moved = 0, extents_dropped = 0, refcounts_fixed = 0, nlinks_fixed = 0, names_dropped = 0,
           models_restored = 0;
};
Result<RepairReport> repair_volume(Store& store, const FsckReport& found);
// A path for an inode, from the root (first name found; hard links have several).
std::string path_of_inode(SqliteDb& db, uint64_t ino);

}  // namespace dzfs
