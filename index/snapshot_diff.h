// `dzfs diff A B`: what differs between two directory trees of one volume (two snapshots, or a
// snapshot and the live tree), from the index alone — no chunk is read. Like `borg diff` with
// chunk-id comparison: two files have the same content when their extent lists name the same
// chunk ranges at the same offsets (dedup gives identical bytes identical chunks).
//
// The walk goes directory by directory (one query per directory and side, then per changed-or-not
// file a few primary-key lookups) with an explicit stack, so a tree of millions of entries or of
// any depth costs time proportional to its size and memory proportional to one directory plus the
// pending directories and the result.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "index/sqlite_db.h"
#include "index/status.h"

namespace dzfs {

struct DiffEntry {
  enum Kind { kAdded, kRemoved, kModified } kind = kModified;
  // Relative to the compared roots, '/'-separated ("dir/file"); names are the index's bytes.
  std::string path;
  // kModified only, in this order, each at most once: "type" (file type differs; then content,
  // target and rdev are not compared), "content", "target", "rdev", "mode" (permission bits),
  // "owner", "mtime", "xattrs", "links" (hard link count of a non-directory).
  std::vector<std::string> changes;
  // content: bytes of B's extents whose chunk A's file does not name / of A's extents whose chunk
  // B's does not name (borg diff's "+X -Y"); a type change counts the files' whole sizes.
  // kAdded: the entry's size (0 for directories); kRemoved: bytes_removed likewise.
  int64_t bytes_added = 0, bytes_removed = 0;
  uint32_t mode_a = 0, mode_b = 0;  // st_mode on each side (0 where the side has no entry)
  uint32_t uid_a = 0, gid_a = 0, uid_b = 0, gid_b = 0;
  int64_t mtime_a = 0, mtime_b = 0;  // ns
  uint64_t nlink_a = 0, nlink_b = 0;
};

struct DiffOptions {
  // Entries for which skip(ino) is true are left out on both sides, with everything under them
  // (the caller leaves out .snapshots when the live root is compared). Not asked for the roots.
  std::function<bool(uint64_t ino)> skip;
  bool times = true;  // compare mtimes
};

// Compares the trees under root_a and root_b (the roots themselves are not compared). The caller
// holds IndexDb::mu. Result sorted by path, component by component ("a", "a/x", "a-b": a
// directory is followed by what lies in it). Errors: ENOTDIR when a root is not a directory,
// ENOENT when it does not exist, EIO for a directory cycle or an SQLite error.
Result<std::vector<DiffEntry>> diff_trees(SqliteDb& db, uint64_t root_a, uint64_t root_b, const DiffOptions& o);

// One line per entry, as borg diff prints them ("{changes:<19} {path}"):
//   "added       1.20 kB dir/file", "added directory     dir", "removed link        l",
//   "   +1.2 kB    -300 B [mode: -rw-r--r-- -> -rwxr-xr-x] [mtime: ... -> ...] dir/x".
// Sizes in decimal units as borg's format_file_size. Control bytes, backslash and invalid UTF-8 in
// paths are written as \xNN so that each entry stays one line.
std::string diff_text(const std::vector<DiffEntry>& entries);

// JSON lines, one object per entry:
//   {"path": "dir/x", "kind": "modified", "changes": ["content", "mode"], "bytes_added": 1200,
//    "bytes_removed": 300, "old_mode": "-rw-r--r--", "new_mode": "-rwxr-xr-x", ...}
// old_/new_ mode, uid, gid, mtime_ns, nlink appear for the changes that concern them (mode
// always for added/removed entries: new_mode / old_mode). Paths are UTF-8 where they are valid
// UTF-8; each byte that is not is written as the lone surrogate \udcXX (Python's surrogateescape,
// so os.fsencode(json.loads(line)["path"]) gives back the exact bytes).
std::string diff_json(const std::vector<DiffEntry>& entries);

// A name or path of the index (any bytes) as one printable line: control bytes, backslash and
// invalid UTF-8 as \xNN, valid UTF-8 as it is. For every listing of index names (diff, snapshots).
std::string printable_name(std::string_view s);
// The same as a JSON string: valid UTF-8 as it is, other bytes as lone surrogates \udcXX
// (Python's surrogateescape), so that os.fsencode(json.loads(...)) gives back the exact bytes.
std::string json_string(std::string_view s);

}  // namespace dzfs
