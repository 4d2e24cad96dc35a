// Store and StoreConfig: mkfs/open rules, the writer lock, batched commits, crash rollback,
// version checks, and dzfs.conf parsing.
#include "index/store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include <fstream>
#include <random>
#include <string>

#include "fs/volume.h"
#include "index/fsck.h"
#include "index/index_at_rest.h"
#include "index/index_dump.h"
#include "index/schema.h"
#include "index/sqlite_db.h"
#include "index/store_config.h"
#include "tests/unit/test_util.h"

namespace dzfs {
namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(StoreTest, MkfsRules) {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/v";
  ASSERT_TRUE(Store::mkfs(dir, {}).ok());
  EXPECT_EQ(Store::mkfs(dir, {}).code(), EEXIST) << "mkfs over an existing volume";
  // A non-empty directory that is not a volume is refused and left alone.
  const std::string other = tmp.path() + "/other";
  ASSERT_EQ(::mkdir(other.c_str(), 0700), 0);
  write_file(other + "/precious", "data");
  EXPECT_EQ(Store::mkfs(other, {}).code(), ENOTEMPTY);
  EXPECT_EQ(read_file(other + "/precious"), "data");
  EXPECT_FALSE(std::filesystem::exists(other + "/index.db"));
  // A file in the way.
  write_file(tmp.path() + "/file", "x");
  EXPECT_EQ(Store::mkfs(tmp.path() + "/file", {}).code(), ENOTDIR);
  // Invalid parameters are refused before anything is created.
  StoreConfig bad;
  bad.chunk_avg = 48 * 1024;
  EXPECT_EQ(Store::mkfs(tmp.path() + "/bad", bad).code(), EINVAL);
  EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/bad/dzfs.conf"));
  // An empty existing directory is fine; the config is what was asked, with a uuid.
  const std::string empty = tmp.path() + "/empty";
  ASSERT_EQ(::mkdir(empty.c_str(), 0700), 0);
  StoreConfig cfg;
  cfg.chunk_min = 4096;
  cfg.chunk_avg = 16384;
  cfg.chunk_max = 65536;
  cfg.zstd_level = 7;
  cfg.verify_dedup = true;
  ASSERT_TRUE(Store::mkfs(empty, cfg).ok());
  auto loaded = StoreConfig::load(empty);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded->chunk_min, 4096u);
  EXPECT_EQ(loaded->chunk_avg, 16384u);
  EXPECT_EQ(loaded->chunk_max, 65536u);
  EXPECT_EQ(loaded->zstd_level, 7);
  EXPECT_TRUE(loaded->verify_dedup);
  EXPECT_EQ(loaded->format_version, kFormatVersion);
  EXPECT_EQ(loaded->uuid.size(), 36u);
  EXPECT_NE(loaded->uuid, StoreConfig::load(dir)->uuid) << "two volumes share a uuid";
}

TEST(StoreTest, OpenNonVolumeIsEnoent) {
  test::TempDir tmp;
  auto st = Store::open(tmp.path(), {});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), ENOENT);
}

TEST(StoreTest, OneWriterAtATime) {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/v";
  auto a = test::make_store(dir);
  ASSERT_TRUE(a);
  EXPECT_EQ(Store::lock_holder(dir), getpid());
  auto b = Store::open(dir, {});
  ASSERT_FALSE(b.ok()) << "a second writer opened the volume";
  EXPECT_EQ(b.status().code(), EBUSY);
  EXPECT_NE(b.status().message().find(std::to_string(getpid())), std::string::npos) << b.status().message();
  // Readers may open beside the writer.
  StoreOptions ro;
  ro.readonly = true;
  auto r = Store::open(dir, ro);
  ASSERT_TRUE(r.ok()) << r.status().message();
  r->reset();
  a.reset();
  EXPECT_EQ(Store::lock_holder(dir), 0);
  auto c = Store::open(dir, {});
  EXPECT_TRUE(c.ok()) << c.status().message();
}

TEST(StoreTest, ReadersSeeOnlyCommittedState) {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/v";
  auto w = test::make_store(dir);
  ASSERT_TRUE(w);
  StoreOptions ro;
  ro.readonly = true;
  auto r = test::open_store(dir, ro);
  ASSERT_TRUE(r);
  std::string d = test::random_bytes(10000, 1);
  auto id = w->chunks.put(reinterpret_cast<const uint8_t*>(d.data()), d.size());
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(test::sql_i64(*w, "SELECT COUNT(*) FROM chunks"), 1);
  EXPECT_EQ(test::sql_i64(*r, "SELECT COUNT(*) FROM chunks"), 0) << "a reader saw an uncommitted row";
  ASSERT_TRUE(w->commit().ok());
  EXPECT_EQ(test::sql_i64(*r, "SELECT COUNT(*) FROM chunks"), 1);
  auto got = r->chunks.get(*id);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_TRUE(**got == d);
  EXPECT_EQ(r->chunks.put(reinterpret_cast<const uint8_t*>("x"), 1).status().code(), EROFS);
  EXPECT_TRUE(r->commit().ok()) << "commit of a read-only store is a no-op";
}

// A process that dies without committing leaves the volume at its last commit.
TEST(StoreTest, CrashRollsBackToLastCommit) {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/v";
  ASSERT_TRUE(Store::mkfs(dir, {}).ok());
  const std::string kept = test::random_bytes(300000, 1), lost = test::random_bytes(300000, 2);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto st = Store::open(dir, {});
    if (!st.ok()) _exit(10);
    Volume vol(**st, VolumeOptions{});
    struct stat a {}, b {};
    if (!vol.mknod(kRootIno, "kept", S_IFREG | 0644, 0, Caller{}, a).ok()) _exit(11);
    if (!vol.write(a.st_ino, 0, kept.data(), kept.size()).ok() || !vol.flush(a.st_ino).ok()) _exit(12);
    if (!(*st)->commit().ok()) _exit(13);
    if (!vol.mknod(kRootIno, "lost", S_IFREG | 0644, 0, Caller{}, b).ok()) _exit(14);
    if (!vol.write(b.st_ino, 0, lost.data(), lost.size()).ok() || !vol.flush(b.st_ino).ok()) _exit(15);
    if (!vol.write(a.st_ino, 0, lost.data(), 1000).ok() || !vol.flush(a.st_ino).ok()) _exit(16);
    _exit(0);  // no destructors: no final commit
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "child step failed";
  auto st = test::open_store(dir);
  ASSERT_TRUE(st);
  Volume vol(*st, VolumeOptions{});
  ASSERT_TRUE(vol.recover().ok());
  struct stat s {};
  ASSERT_TRUE(vol.lookup(kRootIno, "kept", s).ok());
  EXPECT_EQ(vol.lookup(kRootIno, "lost", s).code(), ENOENT);
  ASSERT_TRUE(vol.lookup(kRootIno, "kept", s).ok());
  std::string got;
  ASSERT_TRUE(vol.read(s.st_ino, 0, 1u << 20, got).ok());
  EXPECT_TRUE(got == kept) << "the file is not in its committed state";
  auto r = check_volume(*st);
  ASSERT_TRUE(r.ok());
  for (auto& p : r->problems) ADD_FAILURE() << "fsck: " << p;
}

TEST(StoreTest, NewerVersionsAreRefused) {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/v";
  ASSERT_TRUE(Store::mkfs(dir, {}).ok());
  const std::string conf = read_file(dir + "/dzfs.conf");
  std::string newer = conf;
  newer.replace(newer.find("format_version = 2"), 18, "format_version = 3");
  write_file(dir + "/dzfs.conf", newer);
  auto st = Store::open(dir, {});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), EPROTO);
  write_file(dir + "/dzfs.conf", conf);
  {
    auto ok = test::open_store(dir);
    ASSERT_TRUE(ok);
    test::sql_exec(*ok, "UPDATE meta SET value = '4' WHERE key = 'schema_version'");
  }
  auto st2 = Store::open(dir, {});
  ASSERT_FALSE(st2.ok());
  EXPECT_EQ(st2.status().code(), EPROTO);
}

// A volume of format 1 (written before the index was packed at rest: a plain index.db) reads
// as it is, read-only without a change, and becomes format 2 when opened for writing.
TEST(StoreTest, FormatOneVolumeIsUpgraded) {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/v";
  ASSERT_TRUE(Store::mkfs(dir, {}).ok());
  ASSERT_TRUE(index_at_rest::unpack(dir).ok());
  std::string conf = read_file(dir + "/dzfs.conf");
  conf.replace(conf.find("format_version = 2"), 18, "format_version = 1");
  write_file(dir + "/dzfs.conf", conf);
  {
    StoreOptions ro;
    ro.readonly = true;
    auto r = test::open_store(dir, ro);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->cfg.format_version, 1);
  }
  EXPECT_NE(read_file(dir + "/dzfs.conf").find("format_version = 1"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(dir + "/index.db"));
  { EXPECT_TRUE(test::open_store(dir)); }
  EXPECT_NE(read_file(dir + "/dzfs.conf").find("format_version = 2"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(dir + "/index.db.zst"));
}

// New indexes use 1 KiB pages; vacuum (dzfs gc's last step) gives back what deletions freed,
// and the store works on after it.
TEST(StoreTest, NewIndexPagesAndVacuum) {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/v";
  auto st = test::make_store(dir);
  ASSERT_TRUE(st);
  EXPECT_EQ(test::sql_i64(*st, "PRAGMA page_size"), 1024);
  test::sql_exec(*st, "CREATE TABLE filler(x BLOB)");
  for (int i = 0; i < 2000; ++i) test::sql_exec(*st, "INSERT INTO filler VALUES (randomblob(500))");
  ASSERT_TRUE(st->commit().ok());
  test::sql_exec(*st, "DELETE FROM filler");
  auto v = st->vacuum();
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_GT(v->first, 1000000u);
  EXPECT_LT(v->second, v->first / 4);
  test::sql_exec(*st, "INSERT INTO filler VALUES (1)");
  ASSERT_TRUE(st->commit().ok());
  st.reset();
  st = test::open_store(dir);
  ASSERT_TRUE(st);
  EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM filler"), 1);
}

// The index at rest (index_at_rest.h): a clean close leaves only index.db.zst, smaller than the
// index; a writable open unpacks it, a read-only one reads a private copy and writes nothing.
TEST(StoreTest, IndexIsPackedAtRest) {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/v";
  const std::string d = test::random_bytes(100000, 3);
  int64_t id = 0;
  {
    auto st = test::make_store(dir);
    ASSERT_TRUE(st);
    test::sql_exec(*st, "CREATE TABLE filler(x TEXT)");
    for (int i = 0; i < 3000; ++i) test::sql_exec(*st, "INSERT INTO filler VALUES ('row " + std::to_string(i) + " of text')");
    auto put = st->chunks.put(reinterpret_cast<const uint8_t*>(d.data()), d.size());
    ASSERT_TRUE(put.ok());
    id = *put;
    ASSERT_TRUE(st->commit().ok());
  }
  for (const char* gone : {"/index.db", "/index.db-wal", "/index.db-shm", "/index.db.zst.tmp"})
    EXPECT_FALSE(std::filesystem::exists(dir + gone)) << gone << " after a clean close";
  ASSERT_TRUE(std::filesystem::exists(dir + "/index.db.zst"));
  const uint64_t packed = std::filesystem::file_size(dir + "/index.db.zst");
  {  // read-only: the rows, and nothing written into the store
    StoreOptions ro;
    ro.readonly = true;
    auto r = test::open_store(dir, ro);
    ASSERT_TRUE(r);
    EXPECT_EQ(test::sql_i64(*r, "SELECT COUNT(*) FROM filler"), 3000);
    auto got = r->chunks.get(id);
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_TRUE(**got == d);
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/index.db")) << "a read-only open wrote the store";
  {  // writable: unpacked while open
    auto st = test::open_store(dir);
    ASSERT_TRUE(st);
    ASSERT_TRUE(std::filesystem::exists(dir + "/index.db"));
    EXPECT_LT(packed, std::filesystem::file_size(dir + "/index.db") / 3);
    EXPECT_FALSE(std::filesystem::exists(dir + "/index.db.zst"));
    EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM filler"), 3000);
    test::sql_exec(*st, "INSERT INTO filler VALUES ('one more')");
  }
  auto st = test::open_store(dir);
  ASSERT_TRUE(st);
  EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM filler"), 3001);
}

// Every crash point of packing and unpacking leaves an index that opens with every committed
// row: both files (index.db wins: the .zst is stale or equal), temporaries left behind.
TEST(StoreTest, IndexAtRestCrashPoints) {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/v";
  {
    auto st = test::make_store(dir);
    ASSERT_TRUE(st);
    test::sql_exec(*st, "CREATE TABLE filler(x INTEGER)");
    test::sql_exec(*st, "INSERT INTO filler VALUES (1)");
  }
  namespace fs = std::filesystem;
  const std::string db = dir + "/index.db", zst = dir + "/index.db.zst";
  // Crash mid-pack: a partial temporary beside the packed index of the previous close.
  write_file(zst + ".tmp", "partial");
  // Crash mid-unpack: a partial index.db.tmp, a half-built database; crash mid-check of a pack.
  write_file(db + ".tmp", "partial");
  write_file(db + ".restore.tmp", "partial");
  write_file(db + ".check.tmp", "partial");
  {
    auto st = test::open_store(dir);
    ASSERT_TRUE(st);
    EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM filler"), 1);
    test::sql_exec(*st, "INSERT INTO filler VALUES (2)");
  }
  for (const std::string& t : {db + ".tmp", db + ".restore.tmp", db + ".check.tmp", zst + ".tmp"})
    EXPECT_FALSE(fs::exists(t)) << t << " left behind";
  // Crash after the rename of a pack, before index.db was unlinked; then the newer index.db
  // gains a row while a stale .zst of the older state is still there.
  const std::string stale = read_file(zst);
  {
    auto st = test::open_store(dir);
    ASSERT_TRUE(st);
    test::sql_exec(*st, "INSERT INTO filler VALUES (3)");
  }
  ASSERT_TRUE(index_at_rest::unpack(dir).ok());
  ASSERT_TRUE(fs::exists(db));
  ASSERT_FALSE(fs::exists(zst));
  write_file(zst, stale);  // as if a crash had left the older packed copy
  auto st = test::open_store(dir);
  ASSERT_TRUE(st);
  EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM filler"), 3) << "a stale index.db.zst won over index.db";
}

// A damaged packed index is a clear error, and opening it writes nothing.
TEST(StoreTest, DamagedPackedIndexIsRefused) {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/v";
  ASSERT_TRUE(Store::mkfs(dir, {}).ok());
  const std::string zst = dir + "/index.db.zst", good = read_file(zst);
  ASSERT_GT(good.size(), 100u);
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x10;
  for (const std::string& bad : {flipped, good.substr(0, good.size() - 7), good + "extra", std::string()}) {
    write_file(zst, bad);
    for (bool ro : {true, false}) {
      StoreOptions o;
      o.readonly = ro;
      auto st = Store::open(dir, o);
      ASSERT_FALSE(st.ok()) << "a damaged index.db.zst opened (" << bad.size() << " bytes, ro " << ro << ")";
      EXPECT_EQ(st.status().code(), EIO);
      EXPECT_NE(st.status().message().find("damaged"), std::string::npos) << st.status().message();
      EXPECT_FALSE(std::filesystem::exists(dir + "/index.db"));
      EXPECT_FALSE(std::filesystem::exists(dir + "/index.db.tmp"));
      EXPECT_EQ(read_file(zst), bad) << "the damaged index was changed";
    }
  }
  write_file(zst, good);
  EXPECT_TRUE(test::open_store(dir));
  // A volume that lost both forms of its index is an error, never a new empty index.
  ASSERT_TRUE(std::filesystem::exists(zst));
  std::filesystem::remove(zst);
  for (bool ro : {true, false}) {
    StoreOptions o;
    o.readonly = ro;
    auto st = Store::open(dir, o);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.status().code(), EIO) << st.status().message();
    EXPECT_FALSE(std::filesystem::exists(dir + "/index.db"));
  }
}

// The logical form of the index (index_dump.h): every table, rowid, WITHOUT ROWID table, type,
// AUTOINCREMENT counter (ids of deleted rows are never handed out again) and index comes back;
// an index packed as its pages (over the logical limit) as well.
TEST(StoreTest, IndexDumpRestoresEveryRowAndCounter) {
  test::TempDir tmp;
  for (uint64_t logical_max : {index_at_rest::kLogicalMax, uint64_t{0}}) {
    const std::string dir = tmp.path() + "/v" + std::to_string(logical_max);
    const std::string d = test::random_bytes(70000, 4);
    int64_t last = 0;
    {
      auto st = test::make_store(dir);
      ASSERT_TRUE(st);
      test::sql_exec(*st, "CREATE TABLE kinds(a INTEGER, b REAL, c TEXT, e BLOB, f)");
      test::sql_exec(*st, "INSERT INTO kinds VALUES (-9223372036854775807 - 1, 2.5, 'text', x'00ff', NULL), "
                          "(9223372036854775807, -0.0, '', x'', 7), (0, 1e300, 'quote\"d', randomblob(3000), 'x')");
      test::sql_exec(*st, "CREATE TABLE \"odd \"\"name\"(k TEXT PRIMARY KEY, v INT) WITHOUT ROWID");
      test::sql_exec(*st, "INSERT INTO \"odd \"\"name\" VALUES ('b', 2), ('a', 1)");
      test::sql_exec(*st, "CREATE INDEX kinds_by_c ON kinds(c)");
      test::sql_exec(*st, "DELETE FROM kinds WHERE a = 0");
      for (int i = 0; i < 3; ++i) {
        std::string b = d + std::to_string(i);
        auto id = st->chunks.put(reinterpret_cast<const uint8_t*>(b.data()), b.size());
        ASSERT_TRUE(id.ok());
        last = *id;
      }
      ASSERT_TRUE(st->commit().ok());
      test::sql_exec(*st, "DELETE FROM chunks WHERE id = " + std::to_string(last));
      ASSERT_TRUE(st->commit().ok());
    }
    // Packed again, with the limit under test (the close above packed with the default).
    ASSERT_TRUE(index_at_rest::unpack(dir).ok());
    const std::string before = index_dump::dump(dir + "/index.db").value();
    ASSERT_TRUE(index_at_rest::pack(dir, logical_max).ok());
    const std::string zst = read_file(dir + "/index.db.zst");
    ASSERT_TRUE(index_at_rest::unpack(dir).ok());
    EXPECT_EQ(index_dump::dump(dir + "/index.db").value(), before) << "limit " << logical_max;
    auto st = test::open_store(dir);
    ASSERT_TRUE(st);
    EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM kinds"), 2);
    EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM kinds WHERE a = 9223372036854775807 AND f = 7 AND c = ''"), 1);
    EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM kinds WHERE typeof(e) = 'blob' AND b = 2.5"), 1);
    EXPECT_EQ(test::sql_i64(*st, "SELECT v FROM \"odd \"\"name\" WHERE k = 'b'"), 2);
    EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'kinds_by_c'"), 1);
    EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM chunks"), 2);
    auto next = st->chunks.put(reinterpret_cast<const uint8_t*>("fresh chunk"), 11);
    ASSERT_TRUE(next.ok());
    EXPECT_GT(*next, last) << "a deleted chunk id was handed out again";
    EXPECT_EQ(test::sql_i64(*st, "PRAGMA page_size"), 1024);
    EXPECT_EQ(test::sql_i64(*st, "SELECT COUNT(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'"), 1);
    // Which form was packed: the pages of index.db over the limit, else the logical form.
    std::string head(64, '\0');
    ZSTD_DStream* ds = ZSTD_createDStream();
    ZSTD_inBuffer in{zst.data(), zst.size(), 0};
    ZSTD_outBuffer out{head.data(), head.size(), 0};
    ZSTD_decompressStream(ds, &out, &in);
    ZSTD_freeDStream(ds);
    if (logical_max == 0) EXPECT_EQ(head.substr(0, 15), "SQLite format 3");
    else EXPECT_EQ(head.substr(0, 8), std::string(index_dump::kMagic, 8));
  }
}

// A damaged logical index is an error, never a crash or a database with made-up rows: every
// truncation, and flipped bytes (the zstd checksum catches those in a store; restore itself
// must survive them too).
TEST(StoreTest, DamagedIndexDumpIsAnError) {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/v";
  { ASSERT_TRUE(test::make_store(dir)); }
  ASSERT_TRUE(index_at_rest::unpack(dir).ok());
  const std::string good = index_dump::dump(dir + "/index.db").value();
  auto restore = [&](const std::string& d) {
    return index_dump::restore(std::span(reinterpret_cast<const uint8_t*>(d.data()), d.size()), tmp.path() + "/out.db");
  };
  ASSERT_TRUE(restore(good).ok());
  for (size_t n = 0; n < good.size(); n += std::max<size_t>(1, good.size() / 97)) {
    Status s = restore(good.substr(0, n));
    EXPECT_FALSE(s.ok()) << "a dump cut at " << n << " of " << good.size() << " bytes restored";
    EXPECT_EQ(s.code(), EIO);
    EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/out.db")) << "left behind after a failed restore";
  }
  EXPECT_FALSE(restore(good + "x").ok()) << "trailing bytes";
  // The schema of a dump runs only as one CREATE statement of its kind: nothing can ride along.
  auto dump_with = [](char kind, const std::string& sql) {
    std::string d(index_dump::kMagic, 8);
    d += char(0x80), d += char(0x08);  // page size 1024
    d += char(1), d += kind;
    d += char(1), d += "x";
    d += char(sql.size()), d += sql;
    d += char(0);  // no tables
    return d;
  };
  const std::string evil = tmp.path() + "/evil.db";
  EXPECT_TRUE(restore(dump_with('t', "CREATE TABLE x(a)")).ok());
  for (auto [kind, sql] : {std::pair{'t', "CREATE TABLE x(a); ATTACH '" + evil + "' AS e; CREATE TABLE e.y(b)"},
                           std::pair{'t', "ATTACH '" + evil + "' AS e"}, std::pair{'i', std::string("CREATE TABLE x(a)")},
                           std::pair{'t', "VACUUM INTO '" + evil + "'"}}) {
    Status st = restore(dump_with(kind, sql));
    EXPECT_FALSE(st.ok()) << sql;
    EXPECT_FALSE(std::filesystem::exists(evil)) << sql;
  }
  std::mt19937 rng(3);
  for (int i = 0; i < 300; ++i) {
    std::string bad = good;
    bad[rng() % bad.size()] ^= char(1 + rng() % 255);
    (void)restore(bad);  // may fail or restore; must not crash or hang
  }
}

TEST(SqliteDbTest, StatementsErrorsAndFullDatabase) {
  test::TempDir tmp;
  auto db = SqliteDb::open(tmp.path() + "/t.db", false);
  ASSERT_TRUE(db.ok()) << db.status().message();
  std::unique_ptr<SqliteDb> d(*db);
  ASSERT_TRUE(d->exec("CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)").ok());
  EXPECT_EQ(d->exec("CREATE TABLE t(x)").code(), EIO);
  Stmt bad = d->prepare("SELECT nope FROM nowhere");
  EXPECT_FALSE(bad.step());
  EXPECT_EQ(bad.done_status().code(), EIO);
  EXPECT_EQ(bad.run().code(), EIO);
  ASSERT_TRUE(d->begin_batch().ok());
  EXPECT_TRUE(d->in_batch());
  {
    Stmt ins = d->prepare("INSERT INTO t(k, v) VALUES (?, ?)");
    ins.bind(1, int64_t(7)).bind_blob(2, std::string("a\0b", 3));
    ASSERT_TRUE(ins.run().ok());
    EXPECT_EQ(d->changes(), 1);
    EXPECT_EQ(d->last_rowid(), 7);
  }
  {
    // Duplicate key: an error status, not a crash or a silent success.
    Stmt ins = d->prepare("INSERT INTO t(k, v) VALUES (?, ?)");
    ins.bind(1, int64_t(7)).bind_blob(2, std::string("x"));
    EXPECT_EQ(ins.run().code(), EIO);
  }
  {
    Stmt sel = d->prepare("SELECT v, k FROM t WHERE k = ?");
    sel.bind(1, uint64_t(7));
    ASSERT_TRUE(sel.step());
    EXPECT_EQ(sel.blob(0), std::string("a\0b", 3));
    EXPECT_EQ(sel.i64(1), 7);
    EXPECT_FALSE(sel.step());
    EXPECT_TRUE(sel.done_status().ok());
  }
  ASSERT_TRUE(d->commit_batch().ok());
  EXPECT_FALSE(d->in_batch());
  // A full database is ENOSPC (what a full disk looks like to the index).
  ASSERT_TRUE(d->exec("PRAGMA max_page_count = 20").ok());
  Status full;
  std::string big(100000, 'z');
  for (int i = 0; i < 100 && full.ok(); ++i) {
    Stmt ins = d->prepare("INSERT INTO t(v) VALUES (?)");
    ins.bind_blob(1, big);
    full = ins.run();
  }
  EXPECT_EQ(full.code(), ENOSPC) << full.message();
}

TEST(StoreConfigTest, TextRoundTrip) {
  StoreConfig c;
  c.chunk_min = 2048;
  c.chunk_avg = 8192;
  c.chunk_max = 1 << 20;
  c.zstd_level = 19;
  c.verify_dedup = true;
  c.uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
  auto p = StoreConfig::parse(c.to_text());
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->chunk_min, c.chunk_min);
  EXPECT_EQ(p->chunk_avg, c.chunk_avg);
  EXPECT_EQ(p->chunk_max, c.chunk_max);
  EXPECT_EQ(p->zstd_level, 19);
  EXPECT_TRUE(p->verify_dedup);
  EXPECT_EQ(p->uuid, c.uuid);
  EXPECT_EQ(p->format_version, kFormatVersion);
  // Whitespace and CRLF line ends are tolerated.
  auto q = StoreConfig::parse("# comment\r\nformat_version=1\r\n  chunk_min\t=  4096 \r\nchunk_avg = 16384\nchunk_max = 65536\n");
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_EQ(q->chunk_min, 4096u);
}

TEST(StoreConfigTest, Validation) {
  auto bad = [](const char* text) {
    auto p = StoreConfig::parse(text);
    EXPECT_FALSE(p.ok()) << text;
    return p.ok() ? 0 : p.status().code();
  };
  EXPECT_EQ(bad("chunk_min = 4096\n"), EINVAL) << "no format_version";
  EXPECT_EQ(bad("format_version = 1\nchunk_avg = 50000\n"), EINVAL) << "avg not a power of two";
  EXPECT_EQ(bad("format_version = 1\nchunk_min = 512\n"), EINVAL) << "min below 1 KiB";
  EXPECT_EQ(bad("format_version = 1\nchunk_max = 33554432\n"), EINVAL) << "max above 16 MiB";
  EXPECT_EQ(bad("format_version = 1\nchunk_min = 65536\n"), EINVAL) << "min not below avg";
  EXPECT_EQ(bad("format_version = 1\nzstd_level = 23\n"), EINVAL);
  EXPECT_EQ(bad("format_version = 1\nzstd_level = 0\n"), EINVAL);
  EXPECT_EQ(bad("format_version = 1\nchunk_min = lots\n"), EINVAL);
  EXPECT_EQ(bad("format_version = 1\nchunk_min = 4294967296\n"), EINVAL);
  EXPECT_EQ(bad("format_version = 1\njust words\n"), EINVAL);
  EXPECT_EQ(bad("format_version = 9\n"), EPROTO);
  StoreConfig c;
  EXPECT_TRUE(c.validate().ok()) << "the defaults are valid";
}

// store_config.cc says unknown keys are ignored within a format version (a later minor release
// may add one). That must hold whatever the value looks like, not only for numbers.
TEST(StoreConfigTest, UnknownKeysAreIgnored) {
  auto p = StoreConfig::parse("format_version = 1\nfuture_number = 42\n");
  EXPECT_TRUE(p.ok()) << p.status().message();
  auto q = StoreConfig::parse("format_version = 1\nneural_model = small-v2\n");
  EXPECT_TRUE(q.ok()) << "an unknown key with a text value made the volume unopenable: " << q.status().message();
}

}  // namespace
}  // namespace dzfs
