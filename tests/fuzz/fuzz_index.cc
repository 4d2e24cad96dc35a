// libFuzzer target: opening a volume whose index (index.db) is damaged.
//
// Once per process a small valid volume is built with the real store and filesystem code
// (files with several chunks, a dedup copy, a sparse file, a hard link, a symlink, a fifo, an
// xattr, a subdirectory, a garbage chunk). Each input then damages a copy of its index.db and
// opens it: Store::open, fsck's check_volume (with data verification), repair_volume and a
// second check, then Volume::recover and a walk of the tree (readdir, lookup, getattr, reads of
// every file, readlink, xattrs). Nothing may crash, hang or touch memory out of bounds; every
// failure must come back as a Status with a message. First input byte picks the damage:
//   0: (offset, xor) pairs applied to the database file's bytes (page-level damage);
//   1: row-level damage through SQL: column values set to hostile values (negative, huge,
//      wrapped, wrong type, NULL), rows deleted, applied to a chosen row of a chosen table;
//   2: both.
// After a repair that succeeded, the volume must check clean (what `dzfs fsck --repair`
// promises); DZFS_FUZZ_INDEX_NO_REPAIR_CHECK=1 turns that one property off.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "fs/volume.h"
#include "index/fsck.h"
#include "index/log.h"
#include "index/schema.h"
#include "index/index_at_rest.h"
#include "index/store.h"

namespace fsys = std::filesystem;
using namespace dzfs;

namespace {

std::string g_root, g_base, g_work;
std::string g_index;  // the valid index.db, checkpointed (no WAL)
bool g_check_repair = true;

[[noreturn]] void die(const std::string& what) {
  fprintf(stderr, "fuzz_index: setup: %s\n", what.c_str());
  abort();
}
void need(const Status& s, const char* what) {
  if (!s.ok()) die(std::string(what) + ": " + s.message());
}
// A failure must carry a message: an empty one means an error path forgot to say what failed.
void check_status(const Status& s, const char* where) {
  if (!s.ok() && s.message().empty()) {
    fprintf(stderr, "fuzz_index: %s failed with code %d and no message\n", where, s.code());
    abort();
  }
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}
void spit(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  if (!f) die("cannot write " + path);
}

uint64_t make_file(Volume& v, uint64_t parent, const char* name, const std::string& data, uint64_t at = 0) {
  struct stat st {};
  need(v.mknod(parent, name, S_IFREG | 0644, 0, Caller{}, st), name);
  need(v.open(st.st_ino, O_WRONLY), "open");
  if (!data.empty()) need(v.write(st.st_ino, at, data.data(), data.size()), "write");
  need(v.release(st.st_ino, O_WRONLY), "release");
  return st.st_ino;
}

void build_base() {
  const char* shm = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  std::string tmpl = std::string(shm) + "/dzfs-fuzz-index.XXXXXX";
  if (!mkdtemp(tmpl.data())) die("mkdtemp");
  g_root = tmpl;
  g_base = g_root + "/base";
  g_work = g_root + "/work";
  StoreConfig cfg;
  cfg.chunk_min = 2048;
  cfg.chunk_avg = 8192;
  cfg.chunk_max = 32768;
  need(Store::mkfs(g_base, cfg), "mkfs");
  {
    auto st = Store::open(g_base, StoreOptions{});
    need(st.status(), "open base");
    Store& s = **st;
    {
      VolumeOptions vo;
      Volume v(s, vo);
      std::string text, rnd;
      for (int i = 0; text.size() < 60000; ++i) text += "line " + std::to_string(i * 7919 % 10007) + " of the fuzz corpus\n";
      uint64_t x = 88172645463325252ull;
      for (int i = 0; i < 40000; ++i) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        rnd.push_back(char(x));
      }
      struct stat d {}, e {};
      need(v.mkdir(kRootIno, "dir", S_IFDIR | 0755, Caller{}, d), "mkdir");
      uint64_t t = make_file(v, d.st_ino, "text", text);
      make_file(v, kRootIno, "random", rnd);
      make_file(v, kRootIno, "copy", rnd);  // dedup: the same chunks as "random"
      make_file(v, kRootIno, "sparse", "tail bytes", 100000);
      make_file(v, kRootIno, "empty", "");
      make_file(v, d.st_ino, "gone", rnd.substr(0, 9000) + text.substr(0, 9000));
      need(v.unlink(d.st_ino, "gone"), "unlink");  // its unique chunks become garbage
      need(v.link(t, kRootIno, "hardlink", e), "link");
      need(v.symlink(kRootIno, "symlink", "dir/text", Caller{}, e), "symlink");
      need(v.mknod(d.st_ino, "fifo", S_IFIFO | 0600, 0, Caller{}, e), "mknod fifo");
      need(v.setxattr(t, "user.note", "a value", 0), "setxattr");
      need(v.flush_all(), "flush_all");
    }
    // No model files: each input then opens quickly (model loading has its own fuzz target).
    {
      std::lock_guard<std::mutex> g(s.index.mu);
      need(s.index.db->exec("DELETE FROM models; UPDATE meta SET value = '' WHERE key = 'current_model'"), "models");
    }
    need(s.commit(), "commit");
  }
  for (auto& f : fsys::directory_iterator(g_base + "/models")) fsys::remove(f.path());
  if (!index_at_rest::unpack(g_base).ok()) die("unpack the base index");  // a clean close packed it
  sqlite3* db = nullptr;
  if (sqlite3_open((g_base + "/index.db").c_str(), &db) != SQLITE_OK) die("sqlite open");
  sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  fsys::remove(g_base + "/index.db-wal");
  fsys::remove(g_base + "/index.db-shm");
  g_index = slurp(g_base + "/index.db");
  if (g_index.size() < 4096) die("base index is too small");
  if (const char* e = getenv("DZFS_FUZZ_INDEX_NO_REPAIR_CHECK")) g_check_repair = strcmp(e, "1") != 0;
}

// libFuzzer's timers interrupt system calls (EINTR): a copy is retried, not a crash.
void copy_retrying(const fsys::path& from, const fsys::path& to) {
  for (int i = 0;; ++i) {
    std::error_code ec;
    fsys::copy_file(from, to, fsys::copy_options::overwrite_existing, ec);
    if (!ec) return;
    if (ec.value() != EINTR || i == 100) throw fsys::filesystem_error("cannot copy file", from, to, ec);
  }
}

void fresh_work_copy() {
  std::error_code ec;
  fsys::remove_all(g_work, ec);
  fsys::create_directories(g_work + "/packs");
  fsys::create_directories(g_work + "/models");
  copy_retrying(g_base + "/dzfs.conf", g_work + "/dzfs.conf");
  for (auto& f : fsys::directory_iterator(g_base + "/packs"))
    copy_retrying(f.path(), g_work + "/packs/" + f.path().filename().string());
}

// ---- row-level damage ------------------------------------------------------------------------
struct Table {
  const char* name;
  const char* key;  // primary key columns
  std::vector<const char*> cols;
};
const Table kTables[] = {
    {"inodes", "ino", {"ino", "mode", "uid", "gid", "nlink", "size", "rdev", "data_bytes", "atime_ns", "mtime_ns", "ctime_ns", "target"}},
    {"dirents", "id", {"id", "parent", "name", "ino"}},
    {"extents", "ino, off", {"ino", "off", "len", "chunk", "chunk_off"}},
    {"chunks", "id", {"id", "hash", "raw_len", "refcount", "pack", "off", "stored_len", "codec", "model", "tier_done"}},
    {"xattrs", "ino, name", {"ino", "name", "value"}},
    {"meta", "key", {"value"}},
};
const int64_t kInteresting[] = {0, 1, -1, 2, 255, 4095, 4096, 65535, 65536, 1 << 20, INT32_MAX, int64_t(INT32_MAX) + 1,
                                UINT32_MAX, int64_t(UINT32_MAX) + 1, INT32_MIN, INT64_MAX, INT64_MIN, INT64_MAX - 1,
                                int64_t(1) << 62, -(int64_t(1) << 32), 16384, 040000, 0100644, 0120777};

struct Reader {
  const uint8_t* p;
  size_t n;
  uint8_t u8() { return n ? (--n, *p++) : 0; }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t(u8()) << (8 * i);
    return v;
  }
  std::string bytes(size_t k) {
    k = std::min(k, n);
    std::string s(reinterpret_cast<const char*>(p), k);
    p += k;
    n -= k;
    return s;
  }
};

void damage_rows(const std::string& path, Reader& in) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    sqlite3_close(db);
    return;
  }
  sqlite3_busy_timeout(db, 1000);
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  for (int ops = 0; in.n >= 3 && ops < 8; ++ops) {
    const Table& t = kTables[in.u8() % (sizeof kTables / sizeof kTables[0])];
    const uint8_t row = in.u8();
    const uint8_t kind = in.u8();
    const char* col = t.cols[(kind >> 4) % t.cols.size()];
    std::string where = std::string(" WHERE (") + t.key + ") IN (SELECT " + t.key + " FROM " + t.name +
                        " ORDER BY " + t.key + " LIMIT 1 OFFSET " + std::to_string(row % 32) + ")";
    std::string sql;
    switch (kind & 15) {
      case 0: sql = std::string("DELETE FROM ") + t.name + where; break;
      case 1: sql = std::string("UPDATE ") + t.name + " SET " + col + " = NULL" + where; break;
      case 2: case 3: case 4:
        sql = std::string("UPDATE ") + t.name + " SET " + col + " = " +
              std::to_string(kInteresting[in.u8() % (sizeof kInteresting / sizeof kInteresting[0])]) + where;
        break;
      case 5: case 6:
        sql = std::string("UPDATE ") + t.name + " SET " + col + " = " + col + " + " +
              std::to_string(int64_t(int8_t(in.u8()))) + where;
        break;
      case 7: sql = std::string("UPDATE ") + t.name + " SET " + col + " = " + std::to_string(int64_t(in.u64())) + where; break;
      case 8: case 9: case 10: {  // a blob or a text value of the input's bytes
        std::string v = in.bytes(in.u8() % 40);
        sql = std::string("UPDATE ") + t.name + " SET " + col + " = ?1" + where;
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK) {
          if ((kind & 15) == 10) sqlite3_bind_text(s, 1, v.data(), int(v.size()), SQLITE_TRANSIENT);
          else sqlite3_bind_blob(s, 1, v.data(), int(v.size()), SQLITE_TRANSIENT);
          sqlite3_step(s);
        }
        sqlite3_finalize(s);
        sql.clear();
        break;
      }
      case 11:  // a second row like this one (under a fresh key where the key is an integer)
        if (!strcmp(t.name, "extents"))
          sql = "INSERT OR IGNORE INTO extents SELECT ino, off + " + std::to_string(int64_t(int8_t(in.u8())) * 512) +
                ", len, chunk, chunk_off FROM extents" + where;
        else if (!strcmp(t.name, "dirents"))
          sql = "INSERT OR IGNORE INTO dirents(parent, name, ino) SELECT " + std::to_string(in.u8() % 4) +
                ", name, ino FROM dirents" + where;
        break;
      case 12: sql = std::string("UPDATE ") + t.name + " SET " + col + " = -" + col + where; break;
      default:
        sql = std::string("UPDATE ") + t.name + " SET " + col + " = " + std::to_string(int64_t(int16_t(in.u8() | in.u8() << 8))) + where;
        break;
    }
    if (!sql.empty()) sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  }
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
}

void damage_bytes(std::string& f, Reader& in) {
  for (int ops = 0; in.n >= 3 && ops < 16; ++ops) {
    uint64_t off = (uint64_t(in.u8()) | uint64_t(in.u8()) << 8) * ((f.size() + 65535) / 65536);
    uint8_t x = in.u8();
    if (off < f.size()) f[off] = char(uint8_t(f[off]) ^ (x ? x : 1));
  }
}

// ---- what a mount and fsck do with the volume ---------------------------------------------------
void read_file(Volume& v, uint64_t ino, uint64_t size) {
  check_status(v.open(ino, O_RDONLY), "open");
  std::string buf;
  uint64_t end = std::min<uint64_t>(size, 1 << 20);
  for (uint64_t off = 0; off < end; off += 65536) {
    Status s = v.read(ino, off, 65536, buf);
    check_status(s, "read");
    if (s.ok() && buf.size() > 65536) abort();
    if (!s.ok()) break;
  }
  if (size > (1 << 20)) check_status(v.read(ino, size - 100, 4096, buf), "read at the end");
  check_status(v.read(ino, UINT64_MAX - 4096, 4096, buf), "read far beyond the end");
  v.release(ino, O_RDONLY);
}

void walk(Volume& v) {
  std::vector<uint64_t> dirs = {kRootIno};
  std::set<uint64_t> seen = {kRootIno};
  int budget = 400;  // entries visited in all: damaged names may form loops or huge listings
  while (!dirs.empty() && budget > 0) {
    uint64_t dir = dirs.back();
    dirs.pop_back();
    uint64_t off = 0;
    for (int pages = 0; pages < 8 && budget > 0; ++pages) {
      std::vector<DirEntry> ents;
      Status s = v.readdir(dir, off, 32, (pages & 1) != 0, ents);
      check_status(s, "readdir");
      if (!s.ok() || ents.empty()) break;
      uint64_t next = off;
      for (const DirEntry& e : ents) {
        next = std::max(next, e.next_off);
        if (--budget <= 0) break;
        if (e.name == "." || e.name == "..") continue;
        struct stat st {};
        Status l = v.lookup(dir, e.name, st);
        check_status(l, "lookup");
        if (!l.ok()) continue;
        check_status(v.getattr(st.st_ino, st), "getattr");
        std::string names, val, target;
        if (v.listxattr(st.st_ino, names).ok()) {
          for (size_t p = 0; p < names.size();) {
            size_t q = names.find('\0', p);
            if (q == std::string::npos) q = names.size();
            check_status(v.getxattr(st.st_ino, names.substr(p, q - p), val), "getxattr");
            p = q + 1;
          }
        }
        if (S_ISDIR(st.st_mode) && seen.insert(st.st_ino).second) dirs.push_back(st.st_ino);
        if (S_ISREG(st.st_mode) && seen.insert(st.st_ino).second) read_file(v, st.st_ino, uint64_t(st.st_size));
        if (S_ISLNK(st.st_mode)) check_status(v.readlink(st.st_ino, target), "readlink");
      }
      if (next <= off) break;  // no progress: a damaged cookie
      off = next;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The store logs every damaged read; quiet unless asked (DZFS_FUZZ_INDEX_LOG=1).
  if (!getenv("DZFS_FUZZ_INDEX_LOG")) log_set_level(LogLevel(-1));
  build_base();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  Reader in{data + 1, size - 1};
  const int mode = data[0] % 3;
  fresh_work_copy();
  std::string idx = g_index;
  if (mode == 0 || mode == 2) {
    Reader bytes_in = in;
    if (mode == 2) {  // half the input for each kind of damage
      bytes_in.n = in.n / 2;
      in.p += in.n / 2;
      in.n -= in.n / 2;
    }
    damage_bytes(idx, bytes_in);
  }
  spit(g_work + "/index.db", idx);
  if (mode == 1 || mode == 2) damage_rows(g_work + "/index.db", in);

  auto st = Store::open(g_work, StoreOptions{});
  check_status(st.status(), "Store::open");
  if (!st.ok()) return 0;
  Store& s = **st;
  // What a mount does with the damaged index first: recover orphans, serve names and reads.
  auto mount_and_walk = [&s] {
    VolumeOptions vo;
    Volume v(s, vo);
    check_status(v.recover(), "recover");
    walk(v);
    check_status(v.flush_all(), "flush_all");
  };
  mount_and_walk();
  FsckOptions fo;
  auto r = check_volume(s, fo);
  check_status(r.status(), "check_volume");
  if (r.ok() && !r->clean()) {
    auto fixed = repair_volume(s, *r);
    check_status(fixed.status(), "repair_volume");
    if (fixed.ok()) {
      check_status(s.commit(), "commit after repair");
      auto again = check_volume(s, fo);
      check_status(again.status(), "check_volume after repair");
      if (g_check_repair && again.ok() && !again->clean()) {
        fprintf(stderr, "fuzz_index: the volume is not clean after a successful repair:\n");
        for (auto& p : r->problems) fprintf(stderr, "  found: %s\n", p.c_str());
        for (auto& a : fixed->actions) fprintf(stderr, "  repair: %s\n", a.c_str());
        for (auto& p : again->problems) fprintf(stderr, "  still: %s\n", p.c_str());
        abort();
      }
      mount_and_walk();  // and the repaired volume serves too
    }
  }
  return 0;
}
