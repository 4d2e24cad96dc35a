// SQLite connection wrapper: see sqlite_db.h.
#include "index/sqlite_db.h"

namespace dzfs {

bool Stmt::step() {
  if (!s_) return false;
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) {
    int code = (rc & 0xff) == SQLITE_FULL ? ENOSPC : EIO;
    status_ = Status::Error(code, std::string("index: ") + sqlite3_errmsg(sqlite3_db_handle(s_)));
  }
  return false;
}

Status Stmt::run() {
  while (step()) {
  }
  return status_;
}

std::string Stmt::blob(int col) const {
  const void* p = sqlite3_column_blob(s_, col);
  int n = sqlite3_column_bytes(s_, col);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

SqliteDb::~SqliteDb() {
  for (auto& [k, s] : cache_) sqlite3_finalize(s);
  sqlite3_close_v2(db_);
}

Result<SqliteDb*> SqliteDb::open(const std::string& path, bool readonly) {
  sqlite3* db = nullptr;
  int flags = readonly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return Status::Error(EIO, "cannot open index " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, 10000);
  sqlite3_extended_result_codes(db, 1);
  auto* out = new SqliteDb(db);
  // A new index gets 1 KiB pages (SQLite's default is 4 KiB): an index is many small trees and
  // rows, and measured on the kernel sources (926 files) it takes 260 KB instead of 340 KB; a
  // commit's WAL frames are smaller too. Only possible before the first write (and WAL mode).
  if (!readonly) {
    Stmt n = out->prepare("PRAGMA page_count");
    if (n.step() && n.i64(0) == 0) {
      n.reset();
      (void)out->exec("PRAGMA page_size=1024");
    }
  }
  // Temporary tables and sorts in memory: the connection always has a transaction open, in which
  // temp_store can no longer be set, and a snapshot's map of a large tree would otherwise go
  // to a temporary file behind a 2 MiB cache.
  const char* pragmas = readonly ? "PRAGMA query_only=1; PRAGMA temp_store=MEMORY;"
                                 : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY;"
                                   "PRAGMA foreign_keys=OFF; PRAGMA cache_size=-65536;";
  Status s = out->exec(pragmas);
  if (!s.ok()) {
    delete out;
    return s;
  }
  return out;
}

Status SqliteDb::exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return Status::Error((rc & 0xff) == SQLITE_FULL ? ENOSPC : EIO, "index: " + msg);
  }
  return Status::Ok();
}

Stmt SqliteDb::prepare(const char* sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return Stmt(it->second);
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
    sqlite3_finalize(s);
    return Stmt(Status::Error(EIO, std::string("index: cannot prepare: ") + sqlite3_errmsg(db_)));
  }
  cache_[sql] = s;
  return Stmt(s);
}

Status SqliteDb::begin_batch() { return exec("BEGIN IMMEDIATE"); }
Status SqliteDb::commit_batch() { return exec("COMMIT"); }

}  // namespace dzfs
