// A thin RAII layer over one SQLite connection: cached prepared statements, typed binds, and the
// batched transaction that the whole volume writes into.
//
// Invariant: one connection, used under the caller's mutex (IndexDb::mu()). The connection always
// has a write transaction open between commits (begin_batch), so each FUSE operation's changes are
// applied atomically with respect to commits, and a crash rolls back to the last commit.
#pragma once
#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "index/status.h"

namespace dzfs {

class Stmt {
 public:
  Stmt() = default;
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  explicit Stmt(Status failed) : status_(std::move(failed)) {}  // a statement that did not prepare
  Stmt(const Stmt&) = delete;
  Stmt(Stmt&& o) noexcept : s_(o.s_), status_(std::move(o.status_)) { o.s_ = nullptr; }
  ~Stmt() { reset(); }

  Stmt& bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); return *this; }
  Stmt& bind(int i, uint64_t v) { return bind(i, static_cast<int64_t>(v)); }
  Stmt& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Stmt& bind(int i, uint32_t v) { return bind(i, static_cast<int64_t>(v)); }
  Stmt& bind_blob(int i, const void* p, size_t n) {
    sqlite3_bind_blob(s_, i, n ? p : "", static_cast<int>(n), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind_blob(int i, std::string_view v) { return bind_blob(i, v.data(), v.size()); }
  Stmt& bind_text(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind_null(int i) { sqlite3_bind_null(s_, i); return *this; }
  Stmt& bind_double(int i, double v) { sqlite3_bind_double(s_, i, v); return *this; }

  // Returns true while a row is available; errors are reported by done_status().
  bool step();
  Status run();  // steps to completion, for statements without rows
  int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  bool is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string blob(int col) const;
  Status done_status() const { return status_; }
  void reset() {
    if (s_) { sqlite3_reset(s_); sqlite3_clear_bindings(s_); }
  }

 private:
  sqlite3_stmt* s_ = nullptr;
  Status status_;
};

class SqliteDb {
 public:
  ~SqliteDb();
  static Result<SqliteDb*> open(const std::string& path, bool readonly);
  Status exec(const char* sql);
  // A cached statement; borrow it, bind, step; it is reset when the Stmt handle dies.
  // The cache is keyed by the address of `sql`: pass a string literal, never a built string.
  Stmt prepare(const char* sql);
  // Runs one statement without rows through the statement cache (same rule: a literal). For
  // what runs once per request (SAVEPOINT, RELEASE): exec() parses the SQL on every call.
  Status run_cached(const char* sql) { return prepare(sql).run(); }
  int64_t changes() const { return sqlite3_changes64(db_); }
  int64_t last_rowid() const { return sqlite3_last_insert_rowid(db_); }
  sqlite3* raw() { return db_; }
  std::string errmsg() const { return sqlite3_errmsg(db_); }

  Status begin_batch();   // BEGIN IMMEDIATE
  Status commit_batch();  // COMMIT (the caller has made pack data durable first)
  bool in_batch() const { return !sqlite3_get_autocommit(db_); }

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::map<const char*, sqlite3_stmt*> cache_;  // keyed by the literal's address
};

// A savepoint around one multi-statement change (a FUSE operation, a snapshot), so that an error
// leaves the batch as it was: rolled back to here unless done() was called.
class Savepoint {
 public:
  explicit Savepoint(SqliteDb& db) : db_(db) { ok_ = db_.run_cached("SAVEPOINT op").ok(); }
  ~Savepoint() {
    if (!ok_) return;
    if (!done_) (void)db_.run_cached("ROLLBACK TO op");
    (void)db_.run_cached("RELEASE op");
  }
  Savepoint(const Savepoint&) = delete;
  Savepoint& operator=(const Savepoint&) = delete;
  Status begun() const { return ok_ ? Status::Ok() : Status::Error(EIO, "index: cannot begin a change"); }
  void done() { done_ = true; }

 private:
  SqliteDb& db_;
  bool ok_ = false, done_ = false;
};

}  // namespace dzfs
