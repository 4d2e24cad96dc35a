// The index schema, version 3 (docs/ARCHITECTURE.md describes each table; version 1 lacked
// groups, version 2 snapshots).
#pragma once
#include "index/sqlite_db.h"

namespace dzfs {

constexpr int kIndexSchemaVersion = 3;
constexpr uint64_t kRootIno = 1;

// Creates the tables of a new index and the root directory (mode given).
Status create_schema(SqliteDb& db, uint32_t root_mode, uint32_t uid, uint32_t gid);
// Checks that the index has a schema this build understands; returns its version.
Result<int> check_schema(SqliteDb& db);
// Brings an older index to version 3 in the caller's transaction: 1 -> 2 adds the groups table,
// chunks.grp and chunks.grp_off; 2 -> 3 the snapshots table. A read-only connection instead gets
// temporary stand-ins (an empty groups table, a chunks view with NULL group columns, an empty
// snapshots table), so old volumes read unchanged.
Status upgrade_schema(SqliteDb& db, int from_version, bool readonly);

}  // namespace dzfs
