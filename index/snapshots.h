// Snapshots: instant, read-only copies of a directory tree inside the same volume.
//
// A snapshot copies index rows, never data: the tree's inodes, names, xattrs and extents are
// copied as new rows naming the same chunks (whose refcounts grow by the extents added). Its
// inodes get a contiguous range of new numbers lo..hi (root = lo) that no other inode will ever
// have (the inodes table is AUTOINCREMENT), so "is this inode in a snapshot" is a range lookup
// (FrozenSet) that needs no column on every inode. The snapshot's root is named NAME in the
// snapshots folder (/.snapshots, made by the first snapshot; its inode in meta.snapshots_dir),
// which is frozen too: only these functions add or remove its entries.
//
// Each function runs in one savepoint of the caller's batch (the caller holds IndexDb::mu), so a
// crash leaves the volume as it was before or after the whole operation, never half of it.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "index/sqlite_db.h"

namespace dzfs {

inline constexpr const char* kSnapshotsDirName = ".snapshots";

struct SnapshotInfo {
  int64_t id = 0;
  std::string name;
  uint64_t root = 0, lo = 0, hi = 0;  // the snapshot's inodes are lo..hi; root == lo
  int64_t created_ns = 0;
  std::string source;  // the copied directory, as a path from the volume's root ("/" for the root)
};

// What a snapshot holds: its inodes, and the chunks only it names (deleting it frees those).
struct SnapshotUsage {
  uint64_t files = 0, dirs = 0, others = 0;  // regular files, directories, everything else
  uint64_t logical_bytes = 0;                // sum of its files' sizes
  uint64_t exclusive_chunks = 0, exclusive_raw = 0, exclusive_stored = 0;
};

// The inodes no change may touch: every snapshot's range and the snapshots folder.
class FrozenSet {
 public:
  bool contains(uint64_t ino) const;
  bool empty() const { return ranges_.empty() && folder_ == 0; }
  uint64_t folder() const { return folder_; }

 private:
  friend Result<FrozenSet> load_frozen_locked(SqliteDb& db);
  std::vector<std::pair<uint64_t, uint64_t>> ranges_;  // sorted by lo, disjoint
  uint64_t folder_ = 0;
};

Result<FrozenSet> load_frozen_locked(SqliteDb& db);

// A name a snapshot may have: 1..255 bytes, no '/' or NUL, not "." or "..".
Status check_snapshot_name(std::string_view name);
// The default name: the UTC date and time, e.g. 2026-12-03T17:42:05Z.
std::string default_snapshot_name(int64_t now_ns);

// Resolves a path from the volume's root ("/a/b", "a/b", "" or "/" for the root) to an inode.
Result<uint64_t> resolve_path_locked(SqliteDb& db, std::string_view path);
// The path of a directory from the root ("/" for the root), by its parents' names.
Result<std::string> directory_path_locked(SqliteDb& db, uint64_t ino);

// Copies the tree under directory `source` (leaving out frozen subtrees: the snapshots folder and
// other snapshots) as snapshot `name`.
Result<SnapshotInfo> create_snapshot_locked(SqliteDb& db, uint64_t source, std::string_view name, int64_t now_ns);

// Deletes snapshots (all or none). Inodes for which held(ino) is true (the kernel still knows
// them, or a file is open) keep their rows with nlink 0 and are deleted when released, as any
// unlinked open file; the rest go at once, and their chunks' refcounts drop.
Status delete_snapshots_locked(SqliteDb& db, const std::vector<std::string>& names,
                               const std::function<bool(uint64_t)>& held);

Result<std::vector<SnapshotInfo>> list_snapshots_locked(SqliteDb& db);
Result<SnapshotInfo> find_snapshot_locked(SqliteDb& db, std::string_view name);
Result<SnapshotUsage> snapshot_usage_locked(SqliteDb& db, const SnapshotInfo& s);

}  // namespace dzfs
