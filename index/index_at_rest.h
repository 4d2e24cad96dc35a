// The index at rest: a store that is not open keeps its SQLite index compressed, as
// STORE/index.db.zst: one zstd frame with its content checksum, of the index's rows in the
// logical form of index_dump.h (or, for an index over kLogicalMax, of the index.db file in
// rollback-journal mode), because an index of small pages and B-tree copies of every key is
// mostly redundant: measured on the kernel sources of the bench corpus, 305,152 bytes of
// index.db are 38,969 at rest (98,954 as zstd -19 of the file), 1 % of the whole store.
//
// Invariant: whenever index.db exists it is the newest index, and index.db.zst is either absent
// or an identical, stale copy. Every step below keeps it across a crash:
//   pack   (a clean close of a writable store): journal_mode=DELETE (the WAL is folded in), close,
//          write index.db.zst.tmp, fsync, rename it to index.db.zst, fsync the directory, then
//          unlink index.db. A crash before the unlink leaves both, equal.
//   unpack (a writable open): inflate index.db.zst into index.db.tmp, build the database from it
//          in index.db.restore.tmp (or take it as it is, for the page form), fsync, rename that
//          to index.db, fsync the directory, then unlink index.db.zst. If index.db exists
//          already, the .zst is stale and only removed. Temporaries a crash left are removed.
// A read-only open never writes the store: it inflates index.db.zst into a private temporary
// file (TMPDIR), opens that and unlinks it at once.
#pragma once
#include <string>

#include "index/status.h"

namespace dzfs::index_at_rest {

inline constexpr const char* kPackedName = "index.db.zst";

// Writable open: makes STORE/index.db exist (from index.db.zst if only that is there).
Status unpack(const std::string& dir);
// After a writable store closed its index cleanly: STORE/index.db becomes index.db.zst, in the
// logical form (index_dump.h, checked by restoring it) up to logical_max bytes of index.db, as
// its pages beyond (rebuilding a large index at every mount would take too long).
inline constexpr uint64_t kLogicalMax = 64u << 20;
Status pack(const std::string& dir, uint64_t logical_max = kLogicalMax);
// Read-only open: the path to open. STORE/index.db when it exists; otherwise a temporary copy
// inflated from index.db.zst, and *temp is set to that path (the caller unlinks it once open).
Result<std::string> readable_path(const std::string& dir, std::string* temp);
// Removes such a temporary copy (and the private directory it is in) once it is open.
void remove_copy(const std::string& temp);

}  // namespace dzfs::index_at_rest
