// The logical form of an index at rest: see index_dump.h.
#include "index/index_dump.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cctype>
#include <climits>
#include <cstring>
#include <memory>
#include <vector>

namespace dzfs::index_dump {
namespace {

struct DbCloser {
  void operator()(sqlite3* d) const { sqlite3_close_v2(d); }
};
struct StmtCloser {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;
using Query = std::unique_ptr<sqlite3_stmt, StmtCloser>;

Status db_error(sqlite3* db, const std::string& what) {
  return Status::Error(EIO, what + ": " + sqlite3_errmsg(db));
}

Result<Query> prepare(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) return db_error(db, "index dump: " + sql);
  return Query(s);
}

std::string quoted(const std::string& name) {
  std::string q(1, '"');
  for (char c : name) {
    if (c == '"') q.push_back('"');
    q.push_back(c);
  }
  q.push_back('"');
  return q;
}

// ---- writing -------------------------------------------------------------------------------
void put_varint(std::string& o, uint64_t v) {
  while (v >= 0x80) {
    o += char(uint8_t(v) | 0x80);
    v >>= 7;
  }
  o += char(uint8_t(v));
}
void put_str(std::string& o, const void* p, size_t n) {
  put_varint(o, n);
  o.append(static_cast<const char*>(p), n);
}
void put_str(std::string& o, const std::string& s) { put_str(o, s.data(), s.size()); }
uint64_t zigzag(int64_t v) { return (uint64_t(v) << 1) ^ uint64_t(v >> 63); }

struct Table {
  std::string name;
  bool has_rowid = false;
  std::vector<std::string> columns;  // without the rowid
};

// The columns of a table, and whether it has a rowid that no column aliases.
Result<Table> table_shape(sqlite3* db, const std::string& name) {
  Table t{name, false, {}};
  auto info = prepare(db, "PRAGMA table_info(" + quoted(name) + ")");
  if (!info.ok()) return info.status();
  int pks = 0;
  bool integer_pk = false;
  int rc;
  while ((rc = sqlite3_step(info->get())) == SQLITE_ROW) {
    t.columns.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(info->get(), 1)));
    const char* type = reinterpret_cast<const char*>(sqlite3_column_text(info->get(), 2));
    if (sqlite3_column_int(info->get(), 5) > 0) {
      ++pks;
      integer_pk = type && sqlite3_stricmp(type, "INTEGER") == 0;
    }
  }
  if (rc != SQLITE_DONE) return db_error(db, "index dump: columns of " + name);
  // WITHOUT ROWID tables have no rowid to select (an error that names it); any other error fails.
  sqlite3_stmt* probe = nullptr;
  const std::string sql = "SELECT rowid FROM " + quoted(name);
  const bool rowid_table = sqlite3_prepare_v2(db, sql.c_str(), -1, &probe, nullptr) == SQLITE_OK;
  sqlite3_finalize(probe);
  if (!rowid_table && !strstr(sqlite3_errmsg(db), "no such column"))
    return db_error(db, "index dump: rowid of " + name);
  t.has_rowid = rowid_table && !(pks == 1 && integer_pk);
  return t;
}

Status dump_table(sqlite3* db, const Table& t, std::string& o) {
  std::string cols;
  if (t.has_rowid) cols = "rowid";
  for (auto& c : t.columns) cols += (cols.empty() ? "" : ", ") + quoted(c);
  auto q = prepare(db, "SELECT " + cols + " FROM " + quoted(t.name));
  if (!q.ok()) return q.status();
  const int n = int(t.columns.size()) + (t.has_rowid ? 1 : 0);
  std::vector<std::string> column(static_cast<size_t>(n));
  std::vector<int64_t> prev(static_cast<size_t>(n), 0);
  uint64_t rows = 0;
  int rc;
  while ((rc = sqlite3_step(q->get())) == SQLITE_ROW) {
    ++rows;
    for (int i = 0; i < n; ++i) {
      std::string& c = column[size_t(i)];
      sqlite3_stmt* s = q->get();
      switch (sqlite3_column_type(s, i)) {
        case SQLITE_NULL: c += char(0); break;
        case SQLITE_INTEGER: {
          const int64_t v = sqlite3_column_int64(s, i);
          c += char(1);
          put_varint(c, zigzag(int64_t(uint64_t(v) - uint64_t(prev[size_t(i)]))));
          prev[size_t(i)] = v;
          break;
        }
        case SQLITE_FLOAT: {
          const double d = sqlite3_column_double(s, i);
          char b[8];
          memcpy(b, &d, 8);
          c += char(2);
          c.append(b, 8);
          break;
        }
        case SQLITE_TEXT:
          c += char(3);
          put_str(c, sqlite3_column_text(s, i), size_t(sqlite3_column_bytes(s, i)));
          break;
        default:
          c += char(4);
          put_str(c, sqlite3_column_blob(s, i), size_t(sqlite3_column_bytes(s, i)));
      }
    }
  }
  if (rc != SQLITE_DONE) return db_error(db, "index dump: reading " + t.name);
  put_str(o, t.name);
  o += char(t.has_rowid ? 1 : 0);
  put_varint(o, uint64_t(n));
  put_varint(o, rows);
  for (auto& c : column) o += c;
  return Status::Ok();
}

// ---- reading -------------------------------------------------------------------------------
struct Reader {
  std::span<const uint8_t> in;
  size_t at = 0;
  bool bad = false;
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at >= in.size()) break;
      const uint8_t b = in[at++];
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    bad = true;
    return 0;
  }
  uint8_t byte() {
    if (at >= in.size()) {
      bad = true;
      return 0;
    }
    return in[at++];
  }
  std::span<const uint8_t> bytes(uint64_t n) {
    if (n > in.size() - at || n > uint64_t(INT32_MAX)) {
      bad = true;
      at = in.size();
      return {};
    }
    auto s = in.subspan(at, size_t(n));
    at += size_t(n);
    return s;
  }
  std::string str() {
    auto s = bytes(varint());
    return std::string(s.begin(), s.end());
  }
};

Status damaged(const std::string& what) { return Status::Error(EIO, "index dump is damaged: " + what); }

// A failure of SQLite while building: a full disk is ENOSPC, not damage.
Status build_error(sqlite3* db, const std::string& what) {
  const int code = sqlite3_errcode(db) & 0xff;
  if (code == SQLITE_FULL) return Status::Error(ENOSPC, "no space to rebuild the index: " + what);
  if (code == SQLITE_IOERR || code == SQLITE_NOMEM || code == SQLITE_CANTOPEN)
    return Status::Error(EIO, "cannot rebuild the index (" + what + "): " + sqlite3_errmsg(db));
  return damaged(what + ": " + sqlite3_errmsg(db));
}

Status exec(sqlite3* db, const std::string& sql) {
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) return build_error(db, "\"" + sql.substr(0, 80) + "\"");
  return Status::Ok();
}

// The schema of a dump is untrusted: one CREATE statement of the kind it claims, nothing else
// (no ATTACH, no VACUUM INTO, no second statement behind it).
Status exec_create(sqlite3* db, uint8_t kind, const std::string& sql) {
  static const std::pair<uint8_t, const char*> kinds[] = {{'t', "CREATE TABLE "}, {'i', "CREATE INDEX "},
                                                          {'i', "CREATE UNIQUE INDEX "}, {'v', "CREATE VIEW "},
                                                          {'r', "CREATE TRIGGER "}};
  bool ok = false;
  for (auto& [k, head] : kinds)
    ok = ok || (k == kind && sqlite3_strnicmp(sql.c_str(), head, int(strlen(head))) == 0);
  if (!ok) return damaged("not a CREATE statement of its kind: " + sql.substr(0, 80));
  sqlite3_stmt* st = nullptr;
  const char* tail = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), int(sql.size()), &st, &tail) != SQLITE_OK) return build_error(db, sql.substr(0, 80));
  Query q(st);
  while (tail && *tail && isspace(static_cast<unsigned char>(*tail))) ++tail;
  if (tail && *tail) return damaged("more than one statement: " + sql.substr(0, 80));
  if (sqlite3_step(st) != SQLITE_DONE) return build_error(db, sql.substr(0, 80));
  return Status::Ok();
}

// Reads one table's columns and inserts its rows.
Status restore_table(sqlite3* db, Reader& r) {
  const std::string name = r.str();
  const bool has_rowid = r.byte() != 0;
  const uint64_t n = r.varint(), rows = r.varint();
  if (r.bad || n == 0 || n > 2000) return damaged("table header");
  auto t = table_shape(db, name);
  if (!t.ok()) return damaged("no table " + name);
  if (t->columns.size() + (has_rowid ? 1 : 0) != n) return damaged("columns of " + name);
  std::string cols, marks;
  if (has_rowid) cols = "rowid", marks = "?";
  for (auto& c : t->columns) {
    cols += (cols.empty() ? "" : ", ") + quoted(c);
    marks += marks.empty() ? "?" : ", ?";
  }
  // Column-major input: find where each column starts, then walk them side by side.
  struct Col {
    Reader r;
    int64_t prev = 0;
  };
  std::vector<Col> c(static_cast<size_t>(n));
  for (uint64_t i = 0; i < n; ++i) {
    c[size_t(i)].r = Reader{r.in, r.at};
    for (uint64_t k = 0; k < rows && !r.bad; ++k) {
      switch (r.byte()) {
        case 0: break;
        case 1: r.varint(); break;
        case 2: r.bytes(8); break;
        case 3:
        case 4: r.bytes(r.varint()); break;
        default: r.bad = true;
      }
    }
    if (r.bad) return damaged("values of " + name);
  }
  auto ins = prepare(db, "INSERT INTO " + quoted(name) + " (" + cols + ") VALUES (" + marks + ")");
  if (!ins.ok()) return damaged("cannot insert into " + name);
  sqlite3_stmt* s = ins->get();
  for (uint64_t k = 0; k < rows; ++k) {
    for (uint64_t i = 0; i < n; ++i) {
      Col& x = c[size_t(i)];
      const int at = int(i) + 1;
      int bound = SQLITE_OK;
      switch (x.r.byte()) {
        case 0: bound = sqlite3_bind_null(s, at); break;
        case 1: {
          const uint64_t z = x.r.varint();
          x.prev = int64_t(uint64_t(x.prev) + uint64_t(int64_t(z >> 1) ^ -int64_t(z & 1)));
          bound = sqlite3_bind_int64(s, at, x.prev);
          break;
        }
        case 2: {
          auto b = x.r.bytes(8);
          double d = 0;
          if (b.size() == 8) memcpy(&d, b.data(), 8);
          bound = sqlite3_bind_double(s, at, d);
          break;
        }
        case 3: {
          auto b = x.r.bytes(x.r.varint());
          bound = sqlite3_bind_text(s, at, reinterpret_cast<const char*>(b.data()), int(b.size()), SQLITE_TRANSIENT);
          break;
        }
        default: {
          auto b = x.r.bytes(x.r.varint());
          bound = sqlite3_bind_blob(s, at, b.empty() ? "" : static_cast<const void*>(b.data()), int(b.size()), SQLITE_TRANSIENT);
        }
      }
      if (x.r.bad) return damaged("values of " + name);
      if (bound != SQLITE_OK) return build_error(db, "a value of " + name);
    }
    if (sqlite3_step(s) != SQLITE_DONE) return build_error(db, "row " + std::to_string(k) + " of " + name);
    sqlite3_reset(s);
  }
  return Status::Ok();
}

Status restore_into(sqlite3* db, Reader& r) {
  if (r.in.size() < sizeof kMagic || memcmp(r.in.data(), kMagic, sizeof kMagic) != 0) return damaged("no magic");
  r.at = sizeof kMagic;
  const uint64_t page = r.varint();
  if (r.bad || page < 512 || page > 65536 || (page & (page - 1))) return damaged("page size");
  DZ_RETURN_IF_ERROR(exec(db, "PRAGMA page_size=" + std::to_string(page) + "; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF"));
  DZ_RETURN_IF_ERROR(exec(db, "BEGIN"));
  const uint64_t objects = r.varint();
  std::vector<std::pair<uint8_t, std::string>> later;  // indexes, views, triggers: after the rows
  for (uint64_t i = 0; i < objects && !r.bad; ++i) {
    const uint8_t kind = r.byte();
    const std::string name = r.str(), sql = r.str();
    if (r.bad) break;
    if (kind == 't') {
      if (name != "sqlite_sequence") DZ_RETURN_IF_ERROR(exec_create(db, kind, sql));
    } else {
      later.emplace_back(kind, sql);
    }
  }
  const uint64_t tables = r.varint();
  if (r.bad) return damaged("schema");
  bool sequence = false;
  for (uint64_t i = 0; i < tables; ++i) {
    const size_t start = r.at;
    const std::string name = r.str();
    r.at = start;
    if (name == "sqlite_sequence" && !sequence) {  // what the inserts counted is replaced
      DZ_RETURN_IF_ERROR(exec(db, "DELETE FROM sqlite_sequence"));
      sequence = true;
    }
    DZ_RETURN_IF_ERROR(restore_table(db, r));
  }
  for (auto& [kind, sql] : later) DZ_RETURN_IF_ERROR(exec_create(db, kind, sql));
  if (r.at != r.in.size()) return damaged("bytes after the last table");
  return exec(db, "COMMIT");
}

}  // namespace

Result<std::string> dump(const std::string& db_path) {
  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    Db guard(raw);
    return Status::Error(EIO, "cannot open " + db_path + " to dump it");
  }
  Db db(raw);
  if (sqlite3_exec(db.get(), "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) return db_error(db.get(), "index dump");
  std::string o(kMagic, sizeof kMagic);
  {
    auto p = prepare(db.get(), "PRAGMA page_size");
    if (!p.ok()) return p.status();
    if (sqlite3_step(p->get()) != SQLITE_ROW) return db_error(db.get(), "index dump: page size");
    put_varint(o, uint64_t(sqlite3_column_int64(p->get(), 0)));
  }
  // Tables first (as restore creates them), each kind in the order it was made.
  auto q = prepare(db.get(), "SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_stat%' "
                             "ORDER BY type <> 'table', rowid");
  if (!q.ok()) return q.status();
  std::string objects;
  std::vector<std::string> tables;
  bool has_sequence = false;
  uint64_t n = 0;
  int rc;
  while ((rc = sqlite3_step(q->get())) == SQLITE_ROW) {
    const std::string type = reinterpret_cast<const char*>(sqlite3_column_text(q->get(), 0));
    const std::string name = reinterpret_cast<const char*>(sqlite3_column_text(q->get(), 1));
    const std::string sql = reinterpret_cast<const char*>(sqlite3_column_text(q->get(), 2));
    const char kind = type == "table" ? 't' : type == "index" ? 'i' : type == "view" ? 'v' : 'r';
    if (kind == 't' && sql.rfind("CREATE VIRTUAL", 0) == 0) return Status::Error(EIO, "index dump: virtual table " + name);
    objects += kind;
    put_str(objects, name);
    put_str(objects, sql);
    ++n;
    if (kind == 't' && name != "sqlite_sequence") tables.push_back(name);
    if (kind == 't' && name == "sqlite_sequence") has_sequence = true;
  }
  if (rc != SQLITE_DONE) return db_error(db.get(), "index dump: reading the schema");  // never a dump with tables missing
  if (has_sequence) tables.push_back("sqlite_sequence");  // last: the inserts before it count too
  put_varint(o, n);
  o += objects;
  put_varint(o, tables.size());
  for (auto& name : tables) {
    auto t = table_shape(db.get(), name);
    if (!t.ok()) return t.status();
    DZ_RETURN_IF_ERROR(dump_table(db.get(), *t, o));
  }
  return o;
}

Status restore(std::span<const uint8_t> dump, const std::string& out_path) {
  ::unlink(out_path.c_str());
  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(out_path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW, nullptr) != SQLITE_OK) {
    { Db guard(raw); }
    ::unlink(out_path.c_str());
    return Status::Error(EIO, "cannot create " + out_path);
  }
  Status s;
  {
    Db db(raw);
    sqlite3_limit(db.get(), SQLITE_LIMIT_ATTACHED, 0);
    Reader r{dump, 0};
    s = restore_into(db.get(), r);
    if (s.ok()) s = exec(db.get(), "PRAGMA journal_mode=DELETE");
  }
  if (s.ok()) {
    const int fd = ::open(out_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) s = Status::Error(EIO, "cannot sync " + out_path);
    if (fd >= 0) ::close(fd);
  }
  if (!s.ok()) ::unlink(out_path.c_str());
  return s;
}

}  // namespace dzfs::index_dump
