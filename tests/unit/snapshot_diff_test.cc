// The tree diff: two directories of one volume built through Volume (as a backup writes them),
// identical, then with every kind of difference; the text and JSON forms (JSON checked by a small
// parser here), odd names, the skip option, errors, and trees built by SQL for size, depth and a
// damaged (cyclic) index.
#define FUSE_USE_VERSION 314
#include "index/snapshot_diff.h"

#include <fcntl.h>
#include <fuse3/fuse_lowlevel.h>
#include <gtest/gtest.h>
#include <sys/sysmacros.h>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "fs/volume.h"
#include "index/schema.h"
#include "tests/unit/test_util.h"

namespace dzfs {
namespace {

constexpr uint64_t kRoot = kRootIno;
constexpr int64_t kTime = 1700000000000000000;  // every mtime, once the trees are built

// A strict JSON reader, enough to check diff_json: one value per line, strings decoded to bytes
// (\udc80..\udcff back to the byte, as Python's surrogateescape), objects flattened to key -> text.
class JsonLine {
 public:
  explicit JsonLine(const std::string& s) : s_(s) {}
  // Parses the line as one object; its scalar members land in `fields` (strings decoded, others
  // as written), arrays of strings joined with ','.
  bool object(std::map<std::string, std::string>& fields) {
    ws();
    if (!eat('{')) return false;
    ws();
    if (eat('}')) return end();
    do {
      ws();
      std::string key, value;
      if (!string(key)) return false;
      ws();
      if (!eat(':')) return false;
      ws();
      if (!scalar_or_array(value)) return false;
      fields[key] = value;
      ws();
    } while (eat(','));
    return eat('}') && end();
  }

 private:
  bool end() { ws(); return i_ == s_.size(); }
  void ws() { while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_; }
  bool eat(char c) { return i_ < s_.size() && s_[i_] == c ? (++i_, true) : false; }
  bool scalar_or_array(std::string& out) {
    if (i_ < s_.size() && s_[i_] == '"') return string(out);
    if (eat('[')) {
      ws();
      if (eat(']')) return true;
      do {
        ws();
        std::string v;
        if (!string(v)) return false;
        out += (out.empty() ? "" : ",") + v;
        ws();
      } while (eat(','));
      return eat(']');
    }
    size_t start = i_;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    while (i_ < s_.size() && isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    out = s_.substr(start, i_ - start);
    return !out.empty() && out != "-";
  }
  bool string(std::string& out) {
    if (!eat('"')) return false;
    while (i_ < s_.size()) {
      unsigned char c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return valid_utf8(out);
      if (c < 0x20) return false;
      if (c != '\\') { out += char(c); continue; }
      if (i_ >= s_.size()) return false;
      char e = s_[i_++];
      if (e == '"' || e == '\\' || e == '/') out += e;
      else if (e == 'n') out += '\n';
      else if (e == 't') out += '\t';
      else if (e == 'u') {
        if (i_ + 4 > s_.size()) return false;
        unsigned v = std::stoul(s_.substr(i_, 4), nullptr, 16);
        i_ += 4;
        if (v >= 0xdc80 && v <= 0xdcff) { raw_.insert(out.size()); out += char(v - 0xdc00); }
        else if (v < 0x80) out += char(v);
        else return false;  // diff_json writes only these escapes
      } else return false;
    }
    return false;
  }
  // Raw (unescaped) bytes of a JSON text must be UTF-8; bytes that came from \udcXX are exempt.
  bool valid_utf8(const std::string& s) {
    for (size_t i = 0; i < s.size();) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (c < 0x80 || raw_.count(i)) { ++i; continue; }
      size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
      if (n == 0 || i + n > s.size()) return false;
      for (size_t k = 1; k < n; ++k)
        if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80 || raw_.count(i + k)) return false;
      i += n;
    }
    raw_.clear();
    return true;
  }
  std::string s_;
  size_t i_ = 0;
  std::set<size_t> raw_;
};

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// "path kind change,change" per entry: what the tests compare whole.
std::vector<std::string> summary(const std::vector<DiffEntry>& d) {
  static const char* kinds[] = {"A", "R", "M"};
  std::vector<std::string> out;
  for (const auto& e : d) {
    std::string s = e.path + " " + kinds[e.kind];
    for (size_t i = 0; i < e.changes.size(); ++i) s += (i ? "," : " ") + e.changes[i];
    out.push_back(s);
  }
  return out;
}

class SnapshotDiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* tz = getenv("TZ")) old_tz_ = tz;
    setenv("TZ", "UTC", 1);  // the mtimes in the text lines are local time
    tzset();
    store_ = test::make_store(tmp_.path() + "/store");
    ASSERT_TRUE(store_);
    vol_ = std::make_unique<Volume>(*store_, VolumeOptions{});
  }

  void TearDown() override {
    if (old_tz_) setenv("TZ", old_tz_->c_str(), 1);
    else unsetenv("TZ");
    tzset();
  }

  uint64_t node(uint64_t parent, const std::string& name, uint32_t mode, uint64_t rdev = 0) {
    struct stat st {};
    Status s = vol_->mknod(parent, name, mode, rdev, caller_, st);
    EXPECT_TRUE(s.ok()) << name << ": " << s.message();
    return st.st_ino;
  }
  uint64_t file(uint64_t parent, const std::string& name, const std::string& data, uint32_t mode = 0644) {
    uint64_t ino = node(parent, name, S_IFREG | mode);
    if (data.empty()) return ino;
    EXPECT_TRUE(vol_->open(ino, O_WRONLY).ok());
    EXPECT_TRUE(vol_->write(ino, 0, data.data(), data.size()).ok());
    EXPECT_TRUE(vol_->release(ino, O_WRONLY).ok());
    return ino;
  }
  void overwrite(uint64_t ino, uint64_t off, const std::string& data) {
    ASSERT_TRUE(vol_->open(ino, O_WRONLY).ok());
    ASSERT_TRUE(vol_->write(ino, off, data.data(), data.size()).ok());
    ASSERT_TRUE(vol_->release(ino, O_WRONLY).ok());
  }
  uint64_t dir(uint64_t parent, const std::string& name, uint32_t mode = 0755) {
    struct stat st {};
    Status s = vol_->mkdir(parent, name, mode, caller_, st);
    EXPECT_TRUE(s.ok()) << name << ": " << s.message();
    return st.st_ino;
  }
  uint64_t symlink(uint64_t parent, const std::string& name, const std::string& target) {
    struct stat st {};
    EXPECT_TRUE(vol_->symlink(parent, name, target, caller_, st).ok()) << name;
    return st.st_ino;
  }
  void link(uint64_t ino, uint64_t parent, const std::string& name) {
    struct stat st {};
    ASSERT_TRUE(vol_->link(ino, parent, name, st).ok()) << name;
  }
  void unlink(uint64_t parent, const std::string& name) { ASSERT_TRUE(vol_->unlink(parent, name).ok()) << name; }
  void rmdir(uint64_t parent, const std::string& name) { ASSERT_TRUE(vol_->rmdir(parent, name).ok()) << name; }
  uint64_t ino_of(uint64_t parent, const std::string& name) {
    struct stat st {};
    Status s = vol_->lookup(parent, name, st);
    EXPECT_TRUE(s.ok()) << name << ": " << s.message();
    if (s.ok()) vol_->forget(st.st_ino, 1);
    return st.st_ino;
  }
  void setattr(uint64_t ino, int set, const struct stat& in) {
    struct stat out {};
    Status s = vol_->setattr(ino, in, set, out);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  void xattr(uint64_t ino, const std::string& name, const std::string& value) {
    ASSERT_TRUE(vol_->setxattr(ino, name, value, 0).ok()) << name;
  }
  // Creation and writes set times; the trees compare equal only once they agree.
  void same_times() { test::sql_exec(*store_, "UPDATE inodes SET mtime_ns = " + std::to_string(kTime)); }

  // The tree both sides start from.
  void build(uint64_t d) {
    file(d, "f1", test::random_bytes(300000, 1));
    file(d, "f2", test::text_bytes(5000, 2));
    file(d, "empty", "");
    file(d, "t", test::text_bytes(700, 3));
    file(d, "solo", "x");
    file(d, "grow", "g");
    uint64_t hl = file(d, "hl1", test::text_bytes(100, 4));
    link(hl, d, "hl2");
    xattr(file(d, "xa", "y"), "user.a", "1");
    uint64_t sub = dir(d, "sub");
    file(sub, "g", test::random_bytes(100000, 5));
    file(dir(sub, "deep"), "h", test::text_bytes(1000, 6));
    file(dir(d, "d2"), "k", "k");
    symlink(d, "l", "f1");
    node(d, "chr", S_IFCHR | 0644, makedev(1, 3));
    node(d, "blk", S_IFBLK | 0600, makedev(8, 0));
    node(d, "fifo", S_IFIFO | 0644);
  }

  Result<std::vector<DiffEntry>> diff(uint64_t a, uint64_t b, const DiffOptions& o = {}) {
    std::lock_guard<std::mutex> g(store_->index.mu);
    return diff_trees(*store_->index.db, a, b, o);
  }
  std::vector<DiffEntry> diff_ok(uint64_t a, uint64_t b, const DiffOptions& o = {}) {
    auto r = diff(a, b, o);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : std::vector<DiffEntry>{};
  }

  // A and B built alike, then B changed in every way the diff reports.
  std::pair<uint64_t, uint64_t> every_kind() {
    uint64_t a = dir(kRoot, "A"), b = dir(kRoot, "B");
    build(a);
    build(b);
    file(b, "new", std::string(1200, 'n'));
    uint64_t nd = dir(b, "newdir");
    file(nd, "x", "0123456789");
    file(dir(nd, "y"), "z", "z");
    unlink(b, "empty");
    uint64_t sub = ino_of(b, "sub");
    unlink(ino_of(sub, "deep"), "h");
    rmdir(sub, "deep");
    overwrite(ino_of(b, "f1"), 0, test::random_bytes(1000, 77));
    overwrite(ino_of(b, "f2"), 0, test::text_bytes(5000, 99));  // same size
    struct stat in {};
    in.st_mode = S_IFREG | 0755;
    setattr(ino_of(sub, "g"), FUSE_SET_ATTR_MODE, in);
    in.st_uid = 0;
    in.st_gid = 0;
    setattr(sub, FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID, in);
    xattr(ino_of(b, "xa"), "user.a", "2");
    xattr(ino_of(b, "chr"), "user.new", "1");
    unlink(b, "l");
    symlink(b, "l", "f2");
    unlink(b, "t");
    file(dir(b, "t", 0644), "c", "c");
    unlink(ino_of(b, "d2"), "k");
    rmdir(b, "d2");
    file(b, "d2", "", 0755);
    link(ino_of(b, "solo"), b, "solo2");
    in.st_size = 1 << 20;  // a hole at the end: same extents, other size
    setattr(ino_of(b, "grow"), FUSE_SET_ATTR_SIZE, in);
    unlink(b, "hl2");
    unlink(b, "blk");
    node(b, "blk", S_IFBLK | 0600, makedev(8, 1));
    same_times();
    in.st_mtim.tv_sec = kTime / 1000000000 + 60;
    setattr(ino_of(b, "fifo"), FUSE_SET_ATTR_MTIME, in);
    return {a, b};
  }

  std::optional<std::string> old_tz_;
  test::TempDir tmp_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Volume> vol_;
  Caller caller_{1000, 1000};
};

TEST_F(SnapshotDiffTest, IdenticalTreesHaveNoDiff) {
  uint64_t a = dir(kRoot, "A"), b = dir(kRoot, "B");
  build(a);
  build(b);
  same_times();
  EXPECT_TRUE(diff_ok(a, b).empty()) << diff_text(diff_ok(a, b));
  EXPECT_TRUE(diff_ok(a, a).empty());
  EXPECT_EQ(diff_text({}), "");
  EXPECT_EQ(diff_json({}), "");
}

TEST_F(SnapshotDiffTest, EveryKindOfDifference) {
  auto [a, b] = every_kind();
  auto d = diff_ok(a, b);
  std::vector<std::string> want = {
      "blk M rdev",   "chr M xattrs",   "d2 M type",      "d2/k R",      "empty R",      "f1 M content",
      "f2 M content", "fifo M mtime",   "grow M content",   "hl1 M links",    "hl2 R",       "l M target",   "new A",
      "newdir A",     "newdir/x A",     "newdir/y A",     "newdir/y/z A", "solo M links", "solo2 A",
      "sub M owner",  "sub/deep R",     "sub/deep/h R",   "sub/g M mode", "t M type",     "t/c A",
      "xa M xattrs",
  };
  EXPECT_EQ(summary(d), want);
  std::map<std::string, DiffEntry> by;
  for (auto& e : d) by[e.path] = e;
  EXPECT_EQ(by["new"].bytes_added, 1200);
  EXPECT_EQ(by["newdir/x"].bytes_added, 10);
  EXPECT_EQ(by["newdir"].bytes_added, 0);
  EXPECT_EQ(by["empty"].bytes_removed, 0);
  EXPECT_EQ(by["sub/deep/h"].bytes_removed, 1000);
  EXPECT_EQ(by["f2"].bytes_added, 5000) << "one small chunk, replaced";
  EXPECT_EQ(by["f2"].bytes_removed, 5000);
  EXPECT_GT(by["f1"].bytes_added, 0);
  EXPECT_LT(by["f1"].bytes_added, 300000) << "only the rewritten chunks: the rest is shared";
  EXPECT_GT(by["f1"].bytes_removed, 0);
  EXPECT_EQ(by["grow"].bytes_added, 0) << "a hole adds no chunk";
  EXPECT_EQ(by["grow"].bytes_removed, 0);
  EXPECT_EQ(by["t"].bytes_removed, 700);
  EXPECT_EQ(by["t"].bytes_added, 0);
  EXPECT_EQ(by["hl1"].nlink_a, 2u);
  EXPECT_EQ(by["hl1"].nlink_b, 1u);
  EXPECT_EQ(by["sub/g"].mode_a, S_IFREG | 0644u);
  EXPECT_EQ(by["sub/g"].mode_b, S_IFREG | 0755u);
  EXPECT_EQ(by["sub"].uid_b, 0u);
  EXPECT_EQ(by["fifo"].mtime_b - by["fifo"].mtime_a, 60 * int64_t(1000000000));

  // The other way round, added and removed swap.
  auto r = diff_ok(b, a);
  ASSERT_EQ(r.size(), d.size());
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i].path, d[i].path);
    if (d[i].kind == DiffEntry::kModified) {
      EXPECT_EQ(r[i].kind, DiffEntry::kModified);
    } else {
      EXPECT_NE(r[i].kind, d[i].kind) << d[i].path;
    }
  }

  DiffOptions no_times;
  no_times.times = false;
  auto nt = summary(diff_ok(a, b, no_times));
  EXPECT_EQ(std::count(nt.begin(), nt.end(), "fifo M mtime"), 0);
  EXPECT_EQ(nt.size(), want.size() - 1);
}

TEST_F(SnapshotDiffTest, TextLines) {
  auto [a, b] = every_kind();
  auto text = lines(diff_text(diff_ok(a, b)));
  std::set<std::string> got(text.begin(), text.end());
  for (const char* l : {
           "added       1.20 kB new",
           "added directory     newdir",
           "added          10 B newdir/x",
           "removed         0 B empty",
           "removed directory   sub/deep",
           "  +5.0 kB   -5.0 kB f2",
           "[mode: -rw-r--r-- -> -rwxr-xr-x] sub/g",
           "[owner: 1000:1000 -> 0:0] sub",
           "changed link        l",
           "[rdev]              blk",
           "[xattrs]            xa",
           "[links: 2 -> 1]     hl1",
           "[type: -rw-r--r-- -> drw-r--r--] t",
           "[type: drwxr-xr-x -> -rwxr-xr-x] d2",
           "[mtime: Tue, 2023-11-14 22:13:20 -> Tue, 2023-11-14 22:14:20] fifo",
       })
    EXPECT_TRUE(got.count(l)) << "missing: '" << l << "' in\n" << diff_text(diff_ok(a, b));
  EXPECT_TRUE(got.count("      0 B       0 B grow")) << diff_text(diff_ok(a, b));
  EXPECT_EQ(text.size(), 26u);
}

TEST_F(SnapshotDiffTest, JsonLinesParse) {
  auto [a, b] = every_kind();
  auto d = diff_ok(a, b);
  auto js = lines(diff_json(d));
  ASSERT_EQ(js.size(), d.size());
  for (size_t i = 0; i < js.size(); ++i) {
    std::map<std::string, std::string> f;
    ASSERT_TRUE(JsonLine(js[i]).object(f)) << js[i];
    EXPECT_EQ(f["path"], d[i].path);
    std::string changes;
    for (auto& c : d[i].changes) changes += (changes.empty() ? "" : ",") + c;
    EXPECT_EQ(f["changes"], changes);
    EXPECT_EQ(f["bytes_added"], std::to_string(d[i].bytes_added));
    if (d[i].path == "sub/g") {
      EXPECT_EQ(f["kind"], "modified");
      EXPECT_EQ(f["old_mode"], "-rw-r--r--");
      EXPECT_EQ(f["new_mode"], "-rwxr-xr-x");
    }
    if (d[i].path == "sub") {
      EXPECT_EQ(f["new_uid"], "0");
    }
    if (d[i].path == "new") {
      EXPECT_EQ(f["kind"], "added");
    }
  }
  std::map<std::string, std::string> f;
  EXPECT_FALSE(JsonLine("{\"a\": \"\\x\"}").object(f)) << "the checker checks";
  EXPECT_FALSE(JsonLine("{\"a\": \"\xff\"}").object(f)) << "raw invalid UTF-8 is not JSON";
}

TEST_F(SnapshotDiffTest, OddNames) {
  uint64_t a = dir(kRoot, "A"), b = dir(kRoot, "B");
  const std::string odd = "we\xff" "ird\nna\"me\\\x01";
  const std::string utf8 = "\xc3\xbcn\xc3\xaf \xe2\x82\xac";  // "ünï €"
  file(b, odd, "1");
  file(b, utf8, "22");
  file(b, "trunc\xe2\x82", "333");  // a cut UTF-8 sequence
  same_times();
  auto d = diff_ok(a, b);
  ASSERT_EQ(d.size(), 3u);
  std::set<std::string> names;
  for (const std::string& j : lines(diff_json(d))) {
    std::map<std::string, std::string> f;
    ASSERT_TRUE(JsonLine(j).object(f)) << j;
    names.insert(f["path"]);
  }
  EXPECT_EQ(names, (std::set<std::string>{odd, utf8, "trunc\xe2\x82"})) << "JSON paths give back the bytes";
  auto text = lines(diff_text(d));
  ASSERT_EQ(text.size(), 3u) << "a newline in a name does not split the line";
  std::set<std::string> t(text.begin(), text.end());
  EXPECT_TRUE(t.count("added           1 B we\\xffird\\x0ana\"me\\x5c\\x01")) << diff_text(d);
  EXPECT_TRUE(t.count("added           2 B " + utf8)) << diff_text(d);
  EXPECT_TRUE(t.count("added           3 B trunc\\xe2\\x82")) << diff_text(d);
}

TEST_F(SnapshotDiffTest, SkipLeavesOutSubtrees) {
  uint64_t a = dir(kRoot, "A"), b = dir(kRoot, "B");
  file(a, "same", "s");
  file(b, "same", "s");
  uint64_t sa = dir(a, ".snapshots");
  file(dir(sa, "one"), "x", "old");
  uint64_t sb = dir(b, ".snapshots");
  file(dir(sb, "two"), "y", "new");
  same_times();
  EXPECT_EQ(summary(diff_ok(a, b)),
            (std::vector<std::string>{".snapshots/one R", ".snapshots/one/x R", ".snapshots/two A", ".snapshots/two/y A"}));
  DiffOptions o;
  o.skip = [&](uint64_t ino) { return ino == sa || ino == sb; };
  EXPECT_TRUE(diff_ok(a, b, o).empty());
  o.skip = [&](uint64_t ino) { return ino == sb; };  // only B's: A's shows as removed whole
  EXPECT_EQ(summary(diff_ok(a, b, o)),
            (std::vector<std::string>{".snapshots R", ".snapshots/one R", ".snapshots/one/x R"}));
}

TEST_F(SnapshotDiffTest, PathOrderIsTreeOrder) {
  uint64_t a = dir(kRoot, "A"), b = dir(kRoot, "B");
  file(dir(b, "a"), "x", "1");
  file(b, "a-b", "2");
  file(b, "a0", "3");
  same_times();
  EXPECT_EQ(summary(diff_ok(a, b)), (std::vector<std::string>{"a A", "a/x A", "a-b A", "a0 A"}));
}

TEST_F(SnapshotDiffTest, Errors) {
  uint64_t a = dir(kRoot, "A");
  uint64_t f = file(kRoot, "f", "x");
  auto r = diff(a, f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ENOTDIR);
  r = diff(999999, a);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ENOENT);
}

// Trees written straight into the index: wide (many files), deep (a long chain), and damaged.
class SnapshotDiffSqlTest : public SnapshotDiffTest {
 protected:
  // Under `top`: 100 directories d1..d100 holding files f1..fN (one extent each, chunk = i, or
  // i + 10^7 for every 2000th file when `changed`). Inode numbers from `base`.
  void wide(uint64_t top, int64_t base, int n, bool changed) {
    const std::string b = std::to_string(base), t = std::to_string(top), N = std::to_string(n);
    test::sql_exec(*store_,
                   "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 100) "
                   "INSERT INTO inodes(ino, mode, uid, gid, nlink, size, atime_ns, mtime_ns, ctime_ns) "
                   "SELECT " + b + " + i, 16877, 0, 0, 2, 0, 0, 0, 0 FROM k");
    test::sql_exec(*store_,
                   "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 100) "
                   "INSERT INTO dirents(parent, name, ino) SELECT " + t + ", CAST('d' || i AS BLOB), " + b + " + i FROM k");
    test::sql_exec(*store_,
                   "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < " + N + ") "
                   "INSERT INTO inodes(ino, mode, uid, gid, nlink, size, atime_ns, mtime_ns, ctime_ns) "
                   "SELECT " + b + " + 1000 + i, 33188, 0, 0, 1, 4096, 0, 0, 0 FROM k");
    test::sql_exec(*store_,
                   "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < " + N + ") "
                   "INSERT INTO dirents(parent, name, ino) SELECT " + b + " + 1 + i % 100, CAST('f' || i AS BLOB), " +
                       b + " + 1000 + i FROM k");
    test::sql_exec(*store_,
                   "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < " + N + ") "
                   "INSERT INTO extents(ino, off, len, chunk, chunk_off) SELECT " + b + " + 1000 + i, 0, 4096, "
                   "CASE WHEN " + (changed ? "1" : "0") + " AND i % 2000 = 0 THEN i + 10000000 ELSE i END, 0 FROM k");
  }
  // A chain of `depth` directories named "d" under `top`, with a file "f" of size `size` at the bottom.
  uint64_t chain(uint64_t top, int64_t base, int depth, int size) {
    const std::string b = std::to_string(base), D = std::to_string(depth);
    test::sql_exec(*store_,
                   "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < " + D + ") "
                   "INSERT INTO inodes(ino, mode, uid, gid, nlink, size, atime_ns, mtime_ns, ctime_ns) "
                   "SELECT " + b + " + i, 16877, 0, 0, 2, 0, 0, 0, 0 FROM k");
    test::sql_exec(*store_,
                   "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < " + D + ") "
                   "INSERT INTO dirents(parent, name, ino) SELECT CASE i WHEN 1 THEN " + std::to_string(top) +
                       " ELSE " + b + " + i - 1 END, CAST('d' AS BLOB), " + b + " + i FROM k");
    test::sql_exec(*store_, "INSERT INTO inodes(ino, mode, uid, gid, nlink, size, atime_ns, mtime_ns, ctime_ns) "
                            "VALUES (" + b + ", 33188, 0, 0, 1, " + std::to_string(size) + ", 0, 0, 0)");
    test::sql_exec(*store_, "INSERT INTO dirents(parent, name, ino) VALUES (" + b + " + " + D +
                                ", CAST('f' AS BLOB), " + b + ")");
    return uint64_t(base + depth);  // the deepest directory
  }
};

TEST_F(SnapshotDiffSqlTest, WideTreesScale) {
  uint64_t a = dir(kRoot, "A"), b = dir(kRoot, "B");
  const int n = 20000;
  wide(a, 10000000, n, false);
  wide(b, 20000000, n, true);
  auto t0 = std::chrono::steady_clock::now();
  auto d = diff_ok(a, b);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(d.size(), size_t(n / 2000));
  for (const auto& e : d) {
    EXPECT_EQ(e.changes, std::vector<std::string>{"content"}) << e.path;
    EXPECT_EQ(e.bytes_added, 4096);
    EXPECT_EQ(e.bytes_removed, 4096);
  }
  EXPECT_EQ(d[0].path, "d1/f10000") << "names compare as bytes";
  printf("diff of 2 x %d files: %.3f s (%.1f us per file pair)\n", n, secs, secs * 1e6 / n);
  EXPECT_LT(secs, 30.0) << "linear in the tree's size";
}

TEST_F(SnapshotDiffSqlTest, DeepTreesNeedNoRecursion) {
  uint64_t a = dir(kRoot, "A"), b = dir(kRoot, "B");
  const int depth = 3000;
  chain(a, 30000000, depth, 1);
  chain(b, 40000000, depth, 2);
  auto d = diff_ok(a, b);
  ASSERT_EQ(d.size(), 1u);
  std::string want;
  for (int i = 0; i < depth; ++i) want += "d/";
  EXPECT_EQ(d[0].path, want + "f");
  EXPECT_EQ(d[0].changes, std::vector<std::string>{"content"});

  // A directory entry in B pointing back up (a damaged index) ends in an error, not a loop.
  test::sql_exec(*store_, "INSERT INTO dirents(parent, name, ino) VALUES (40000000 + 100, CAST('up' AS BLOB), 40000000 + 50)");
  auto r = diff(a, b);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), EIO);
}

// Extents that split one chunk range differently name the same bytes: no content change.
TEST_F(SnapshotDiffSqlTest, SplitExtentsOfOneChunkRangeAreTheSameContent) {
  uint64_t a = dir(kRoot, "A"), b = dir(kRoot, "B");
  for (auto [ino, parent] : {std::pair<int64_t, uint64_t>{50000001, a}, {50000002, b}}) {
    test::sql_exec(*store_, "INSERT INTO inodes(ino, mode, uid, gid, nlink, size, atime_ns, mtime_ns, ctime_ns) "
                            "VALUES (" + std::to_string(ino) + ", 33188, 0, 0, 1, 300, 0, 0, 0)");
    test::sql_exec(*store_, "INSERT INTO dirents(parent, name, ino) VALUES (" + std::to_string(parent) +
                                ", CAST('f' AS BLOB), " + std::to_string(ino) + ")");
  }
  test::sql_exec(*store_, "INSERT INTO extents VALUES (50000001, 0, 100, 7, 0), (50000001, 100, 100, 7, 100), "
                          "(50000001, 200, 100, 8, 0)");
  test::sql_exec(*store_, "INSERT INTO extents VALUES (50000002, 0, 200, 7, 0), (50000002, 200, 100, 8, 0)");
  EXPECT_TRUE(diff_ok(a, b).empty()) << diff_text(diff_ok(a, b));
  // Not contiguous in the chunk: other bytes.
  test::sql_exec(*store_, "UPDATE extents SET chunk_off = 150 WHERE ino = 50000001 AND off = 100");
  auto d = diff_ok(a, b);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].changes, std::vector<std::string>{"content"});
  EXPECT_EQ(d[0].bytes_added, 0) << "both name chunks 7 and 8";
}

}  // namespace
}  // namespace dzfs
