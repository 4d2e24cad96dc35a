// The index connection and the one mutex that serializes every use of it.
// Lock order (never take them the other way round): an inode's FileState mutex, then
// IndexDb::mu, then PackStore's internal mutex.
#pragma once
#include <memory>
#include <mutex>

#include "index/sqlite_db.h"

namespace dzfs {

struct IndexDb {
  std::mutex mu;
  std::unique_ptr<SqliteDb> db;
};

}  // namespace dzfs
