// The index schema, version 1 (docs/ARCHITECTURE.md describes each table).
#pragma once
#include "index/sqlite_db.h"

namespace dzfs {

constexpr int kIndexSchemaVersion = 1;
constexpr uint64_t kRootIno = 1;

// Creates the tables of a new index and the root directory (mode given).
Status create_schema(SqliteDb& db, uint32_t root_mode, uint32_t uid, uint32_t gid);
// Checks that the index has a schema this build understands.
Status check_schema(SqliteDb& db);

}  // namespace dzfs
