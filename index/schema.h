// The index schema, version 2 (docs/ARCHITECTURE.md describes each table; version 1 lacked groups).
#pragma once
#include "index/sqlite_db.h"

namespace dzfs {

constexpr int kIndexSchemaVersion = 2;
constexpr uint64_t kRootIno = 1;

// Creates the tables of a new index and the root directory (mode given).
Status create_schema(SqliteDb& db, uint32_t root_mode, uint32_t uid, uint32_t gid);
// Checks that the index has a schema this build understands; returns its version.
Result<int> check_schema(SqliteDb& db);
// Brings a version-1 index to version 2 (groups table, chunks.grp and chunks.grp_off) in the
// caller's transaction. A read-only connection instead gets temporary stand-ins (an empty
// groups table, a chunks view with NULL group columns), so old volumes read unchanged.
Status upgrade_schema(SqliteDb& db, int from_version, bool readonly);

}  // namespace dzfs
