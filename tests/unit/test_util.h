// Helpers shared by the unit tests: temporary store directories, seeded data, raw SQL queries.
#pragma once
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "index/store.h"

namespace dzfs::test {

// A fresh directory, removed with everything in it at scope exit. Prefers tmpfs (/dev/shm) so
// fdatasync is cheap and the suite stays fast.
class TempDir {
 public:
  TempDir() {
    std::string base = "/tmp";
    if (const char* t = getenv("TMPDIR"); t && *t) base = t;
    if (::access("/dev/shm", W_OK) == 0 && !getenv("DZFS_TEST_NO_SHM")) base = "/dev/shm";
    std::string tmpl = base + "/dzfs_unit_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    char* p = mkdtemp(buf.data());
    if (!p) ADD_FAILURE() << "mkdtemp failed in " << base;
    path_ = p ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::unique_ptr<Store> open_store(const std::string& dir, StoreOptions opts = {}) {
  auto st = Store::open(dir, opts);
  if (!st.ok()) {
    ADD_FAILURE() << "Store::open(" << dir << "): " << st.status().message();
    return nullptr;
  }
  return std::move(*st);
}

inline std::unique_ptr<Store> make_store(const std::string& dir, StoreConfig cfg = {}, StoreOptions opts = {}) {
  Status s = Store::mkfs(dir, cfg);
  if (!s.ok()) {
    ADD_FAILURE() << "Store::mkfs(" << dir << "): " << s.message();
    return nullptr;
  }
  return open_store(dir, opts);
}

// Pseudo-random bytes from a fixed seed (std::mt19937_64 is fully specified by the standard, so
// these bytes are the same on every platform and library).
inline std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    for (int k = 0; k < 8; ++k) s[i + k] = char(v >> (8 * k));
  }
  uint64_t v = rng();
  for (size_t k = 0; i < n; ++i, ++k) s[i] = char(v >> (8 * (k & 7)));
  return s;
}

// Compressible, text-like bytes (words from a small vocabulary).
inline std::string text_bytes(size_t n, uint64_t seed) {
  static const char* words[] = {"the ",    "backup ", "file ",  "system ", "chunk ",  "index ", "pack ",
                                "store\n", "of ",     "and ",   "data ",   "volume ", "dedup ", "zstd, "};
  std::mt19937_64 rng(seed);
  std::string s;
  while (s.size() < n) s += words[rng() % (sizeof words / sizeof *words)];
  s.resize(n);
  return s;
}

// Ad-hoc SQL straight on the store's connection, under IndexDb::mu. (SqliteDb::prepare caches by
// the literal's address, so tests never pass it computed strings; they use sqlite3 directly.)
inline std::vector<std::vector<int64_t>> sql_rows(Store& st, const std::string& sql) {
  std::lock_guard<std::mutex> g(st.index.mu);
  std::vector<std::vector<int64_t>> out;
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(st.index.db->raw(), sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "prepare failed: " << sql << ": " << st.index.db->errmsg();
    return out;
  }
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    std::vector<int64_t> row;
    for (int c = 0; c < sqlite3_column_count(s); ++c) row.push_back(sqlite3_column_int64(s, c));
    out.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) ADD_FAILURE() << "step failed: " << sql << ": " << st.index.db->errmsg();
  sqlite3_finalize(s);
  return out;
}

inline int64_t sql_i64(Store& st, const std::string& sql) {
  auto rows = sql_rows(st, sql);
  if (rows.empty() || rows[0].empty()) {
    ADD_FAILURE() << "no row for: " << sql;
    return -1;
  }
  return rows[0][0];
}

inline void sql_exec(Store& st, const std::string& sql) {
  std::lock_guard<std::mutex> g(st.index.mu);
  Status s = st.index.db->exec(sql.c_str());
  ASSERT_TRUE(s.ok()) << sql << ": " << s.message();
}

// Flips one byte of a file in place.
inline void flip_byte(const std::string& path, uint64_t off, uint8_t mask = 0x01) {
  FILE* f = fopen(path.c_str(), "r+b");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(fseeko(f, off_t(off), SEEK_SET), 0);
  int c = fgetc(f);
  ASSERT_NE(c, EOF) << "offset " << off << " is beyond the end of " << path;
  ASSERT_EQ(fseeko(f, off_t(off), SEEK_SET), 0);
  fputc(c ^ mask, f);
  fclose(f);
}

inline uint64_t file_size(const std::string& path) {
  std::error_code ec;
  auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : uint64_t(n);
}

}  // namespace dzfs::test
