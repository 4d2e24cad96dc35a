// The tree diff of `dzfs diff`: walks two directory trees of the index side by side, directory by
// directory, and reports added, removed and modified entries. See snapshot_diff.h.
#include "index/snapshot_diff.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <unordered_set>
#include <utility>

namespace dzfs {
namespace {

// A directory entry with the columns of its inode row that the comparison needs.
struct Node {
  std::string name;
  uint64_t ino = 0;
  uint32_t mode = 0, uid = 0, gid = 0;
  uint64_t nlink = 0, rdev = 0;
  int64_t size = 0, mtime = 0;
  std::string target;
};

// A directory's entries sorted by name (bytes, as std::string compares them).
Status list_dir(SqliteDb& db, uint64_t dir, const DiffOptions& o, std::vector<Node>& out) {
  out.clear();
  Stmt s = db.prepare(
      "SELECT d.name, d.ino, i.mode, i.uid, i.gid, i.nlink, i.size, i.rdev, i.mtime_ns, i.target "
      "FROM dirents d JOIN inodes i ON i.ino = d.ino WHERE d.parent = ? ORDER BY d.name");
  s.bind(1, dir);
  while (s.step()) {
    Node n;
    n.ino = uint64_t(s.i64(1));
    if (o.skip && o.skip(n.ino)) continue;
    n.name = s.blob(0);
    n.mode = uint32_t(s.i64(2));
    n.uid = uint32_t(s.i64(3));
    n.gid = uint32_t(s.i64(4));
    n.nlink = uint64_t(s.i64(5));
    n.size = s.i64(6);
    n.rdev = uint64_t(s.i64(7));
    n.mtime = s.i64(8);
    if (!s.is_null(9)) n.target = s.blob(9);
    out.push_back(std::move(n));
  }
  if (!s.done_status().ok()) return s.done_status();
  // SQLite orders TEXT before BLOB; names are BLOBs, but a stray TEXT name must not break the merge.
  auto by_name = [](const Node& a, const Node& b) { return a.name < b.name; };
  if (!std::is_sorted(out.begin(), out.end(), by_name)) std::sort(out.begin(), out.end(), by_name);
  return Status::Ok();
}

Status root_mode(SqliteDb& db, uint64_t ino, uint32_t& mode) {
  Stmt s = db.prepare("SELECT mode FROM inodes WHERE ino = ?");
  s.bind(1, ino);
  if (!s.step()) {
    if (!s.done_status().ok()) return s.done_status();
    return Status::Error(ENOENT, "inode " + std::to_string(ino) + " does not exist");
  }
  mode = uint32_t(s.i64(0));
  if (!S_ISDIR(mode)) return Status::Error(ENOTDIR, "inode " + std::to_string(ino) + " is not a directory");
  return Status::Ok();
}

struct Extent {
  int64_t off, len, chunk, chunk_off;
  bool operator==(const Extent&) const = default;
};

// A file's extents, with neighbours that continue each other in the same chunk merged, so that
// one byte range split differently still compares equal.
Status load_extents(SqliteDb& db, uint64_t ino, std::vector<Extent>& out) {
  out.clear();
  Stmt s = db.prepare("SELECT off, len, chunk, chunk_off FROM extents WHERE ino = ? ORDER BY off");
  s.bind(1, ino);
  while (s.step()) {
    Extent e{s.i64(0), s.i64(1), s.i64(2), s.i64(3)};
    if (!out.empty()) {
      Extent& p = out.back();
      if (p.off + p.len == e.off && p.chunk == e.chunk && p.chunk_off + p.len == e.chunk_off) {
        p.len += e.len;
        continue;
      }
    }
    out.push_back(e);
  }
  return s.done_status();
}

using Xattrs = std::vector<std::pair<std::string, std::string>>;

Status load_xattrs(SqliteDb& db, uint64_t ino, Xattrs& out) {
  out.clear();
  Stmt s = db.prepare("SELECT name, value FROM xattrs WHERE ino = ? ORDER BY name");
  s.bind(1, ino);
  while (s.step()) out.emplace_back(s.blob(0), s.blob(1));
  return s.done_status();
}

// Bytes of `in`'s extents whose chunk `other` does not name (borg: sizes of chunks only in one).
int64_t bytes_not_in(const std::vector<Extent>& in, const std::vector<Extent>& other) {
  std::vector<int64_t> ids;
  ids.reserve(other.size());
  for (const Extent& e : other) ids.push_back(e.chunk);
  std::sort(ids.begin(), ids.end());
  int64_t n = 0;
  for (const Extent& e : in)
    if (!std::binary_search(ids.begin(), ids.end(), e.chunk)) n += e.len;
  return n;
}

// The walk's state: the connection, options, output, and the directories seen on each side
// (a directory met twice means a damaged index with a cycle, which would never end).
class Walker {
 public:
  Walker(SqliteDb& db, const DiffOptions& o) : db_(db), o_(o) {}

  Status run(uint64_t root_a, uint64_t root_b) {
    std::vector<Pair> stack{{root_a, root_b, std::string()}};
    std::vector<Node> la, lb;
    while (!stack.empty()) {
      Pair p = std::move(stack.back());
      stack.pop_back();
      DZ_RETURN_IF_ERROR(enter(seen_a_, p.a));
      DZ_RETURN_IF_ERROR(enter(seen_b_, p.b));
      DZ_RETURN_IF_ERROR(list_dir(db_, p.a, o_, la));
      DZ_RETURN_IF_ERROR(list_dir(db_, p.b, o_, lb));
      DZ_RETURN_IF_ERROR(merge(la, lb, p.path, stack));
    }
    return Status::Ok();
  }

  std::vector<DiffEntry>& out() { return out_; }

 private:
  struct Pair {
    uint64_t a, b;
    std::string path;
  };

  static std::string join(const std::string& dir, const std::string& name) {
    return dir.empty() ? name : dir + "/" + name;
  }

  Status enter(std::unordered_set<uint64_t>& seen, uint64_t dir) {
    if (!seen.insert(dir).second)
      return Status::Error(EIO, "directory inode " + std::to_string(dir) + " is reached twice (damaged index)");
    return Status::Ok();
  }

  // Both listings are sorted by name: one pass pairs them up.
  Status merge(const std::vector<Node>& la, const std::vector<Node>& lb, const std::string& dir,
               std::vector<Pair>& stack) {
    size_t i = 0, j = 0;
    while (i < la.size() || j < lb.size()) {
      if (j == lb.size() || (i < la.size() && la[i].name < lb[j].name)) {
        DZ_RETURN_IF_ERROR(subtree(DiffEntry::kRemoved, la[i], join(dir, la[i].name), seen_a_));
        ++i;
      } else if (i == la.size() || lb[j].name < la[i].name) {
        DZ_RETURN_IF_ERROR(subtree(DiffEntry::kAdded, lb[j], join(dir, lb[j].name), seen_b_));
        ++j;
      } else {
        DZ_RETURN_IF_ERROR(pair(la[i], lb[j], join(dir, la[i].name), stack));
        ++i, ++j;
      }
    }
    return Status::Ok();
  }

  // An entry present on both sides.
  Status pair(const Node& a, const Node& b, std::string path, std::vector<Pair>& stack) {
    DZ_RETURN_IF_ERROR(compare(a, b, path));
    const bool da = S_ISDIR(a.mode), db = S_ISDIR(b.mode);
    if (da && db) {
      if (a.ino != b.ino) stack.push_back({a.ino, b.ino, std::move(path)});  // one inode: one tree
    } else if (da) {
      DZ_RETURN_IF_ERROR(below(DiffEntry::kRemoved, a.ino, path, seen_a_));
    } else if (db) {
      DZ_RETURN_IF_ERROR(below(DiffEntry::kAdded, b.ino, path, seen_b_));
    }
    return Status::Ok();
  }

  Status compare(const Node& a, const Node& b, const std::string& path) {
    if (a.ino == b.ino) return Status::Ok();  // the same inode is the same everything
    DiffEntry e;
    e.kind = DiffEntry::kModified;
    fill_a(e, a);
    fill_b(e, b);
    if ((a.mode & S_IFMT) != (b.mode & S_IFMT)) {
      e.changes.push_back("type");
      e.bytes_removed = S_ISREG(a.mode) ? a.size : 0;
      e.bytes_added = S_ISREG(b.mode) ? b.size : 0;
    } else if (S_ISREG(a.mode)) {
      DZ_RETURN_IF_ERROR(compare_content(a, b, e));
    } else if (S_ISLNK(a.mode) && a.target != b.target) {
      e.changes.push_back("target");
    } else if ((S_ISCHR(a.mode) || S_ISBLK(a.mode)) && a.rdev != b.rdev) {
      e.changes.push_back("rdev");
    }
    if ((a.mode & 07777) != (b.mode & 07777)) e.changes.push_back("mode");
    if (a.uid != b.uid || a.gid != b.gid) e.changes.push_back("owner");
    if (o_.times && a.mtime != b.mtime) e.changes.push_back("mtime");
    DZ_RETURN_IF_ERROR(load_xattrs(db_, a.ino, xa_));
    DZ_RETURN_IF_ERROR(load_xattrs(db_, b.ino, xb_));
    if (xa_ != xb_) e.changes.push_back("xattrs");
    // A directory's count moves with its subdirectories, which are reported themselves.
    if (!S_ISDIR(a.mode) && !S_ISDIR(b.mode) && a.nlink != b.nlink) e.changes.push_back("links");
    if (e.changes.empty()) return Status::Ok();
    e.path = path;
    out_.push_back(std::move(e));
    return Status::Ok();
  }

  Status compare_content(const Node& a, const Node& b, DiffEntry& e) {
    DZ_RETURN_IF_ERROR(load_extents(db_, a.ino, ea_));
    DZ_RETURN_IF_ERROR(load_extents(db_, b.ino, eb_));
    if (a.size == b.size && ea_ == eb_) return Status::Ok();
    e.changes.push_back("content");
    e.bytes_added = bytes_not_in(eb_, ea_);
    e.bytes_removed = bytes_not_in(ea_, eb_);
    return Status::Ok();
  }

  static void fill_a(DiffEntry& e, const Node& n) {
    e.mode_a = n.mode, e.uid_a = n.uid, e.gid_a = n.gid, e.mtime_a = n.mtime, e.nlink_a = n.nlink;
  }
  static void fill_b(DiffEntry& e, const Node& n) {
    e.mode_b = n.mode, e.uid_b = n.uid, e.gid_b = n.gid, e.mtime_b = n.mtime, e.nlink_b = n.nlink;
  }

  void one(DiffEntry::Kind kind, const Node& n, std::string path) {
    DiffEntry e;
    e.kind = kind;
    e.path = std::move(path);
    const int64_t size = S_ISREG(n.mode) ? n.size : 0;
    if (kind == DiffEntry::kAdded) {
      fill_b(e, n);
      e.bytes_added = size;
    } else {
      fill_a(e, n);
      e.bytes_removed = size;
    }
    out_.push_back(std::move(e));
  }

  // An entry on one side only: it and, for a directory, everything under it (as borg reports).
  Status subtree(DiffEntry::Kind kind, const Node& n, std::string path, std::unordered_set<uint64_t>& seen) {
    one(kind, n, path);
    if (!S_ISDIR(n.mode)) return Status::Ok();
    return below(kind, n.ino, std::move(path), seen);
  }

  // Everything under directory `dir` (not dir itself), with an explicit stack.
  Status below(DiffEntry::Kind kind, uint64_t dir, std::string path, std::unordered_set<uint64_t>& seen) {
    std::vector<std::pair<uint64_t, std::string>> stack{{dir, std::move(path)}};
    std::vector<Node> list;
    while (!stack.empty()) {
      auto [d, p] = std::move(stack.back());
      stack.pop_back();
      DZ_RETURN_IF_ERROR(enter(seen, d));
      DZ_RETURN_IF_ERROR(list_dir(db_, d, o_, list));
      for (const Node& n : list) {
        one(kind, n, join(p, n.name));
        if (S_ISDIR(n.mode)) stack.emplace_back(n.ino, join(p, n.name));
      }
    }
    return Status::Ok();
  }

  SqliteDb& db_;
  const DiffOptions& o_;
  std::vector<DiffEntry> out_;
  std::unordered_set<uint64_t> seen_a_, seen_b_;
  std::vector<Extent> ea_, eb_;  // reused buffers
  Xattrs xa_, xb_;
};

// Path order component by component: '/' sorts before every byte a name can hold (names hold
// neither '/' nor NUL), so "a" < "a/x" < "a-b".
bool path_less(const DiffEntry& x, const DiffEntry& y) {
  const std::string& a = x.path;
  const std::string& b = y.path;
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    unsigned char ca = a[i] == '/' ? 0 : static_cast<unsigned char>(a[i]);
    unsigned char cb = b[i] == '/' ? 0 : static_cast<unsigned char>(b[i]);
    if (ca != cb) return ca < cb;
  }
  return a.size() < b.size();
}

// ---- output --------------------------------------------------------------------------------

// Length of the valid UTF-8 sequence at s[i] (1 for ASCII), or 0 if the byte starts none.
size_t utf8_len(std::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  const size_t n = c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  const unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
  if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0)) return 0;  // overlong, surrogate
  if ((c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 >= 0x90)) return 0;  // overlong, > U+10FFFF
  return n;
}

// borg's sizeof_fmt with decimal units: "0 B", "300 B", "1.20 kB"; with sign, "+1.2 kB".
std::string size_fmt(int64_t v, int precision, bool sign) {
  static const char* units[] = {"", "k", "M", "G", "T", "P", "E", "Z", "Y"};
  double num = double(v);
  const double scale = std::pow(10.0, precision);
  int prec = 0;
  size_t u = 0;
  for (; u + 1 < std::size(units); ++u) {
    if (std::fabs(std::nearbyint(num * scale) / scale) < 1000) break;
    num /= 1000;
    prec = precision;
  }
  char buf[64];
  snprintf(buf, sizeof buf, sign && v > 0 ? "%+.*f %sB" : "%.*f %sB", prec, num, units[u]);
  return buf;
}

// Python's stat.filemode.
std::string filemode(uint32_t m) {
  char t = '-';
  switch (m & S_IFMT) {
    case S_IFLNK: t = 'l'; break;
    case S_IFSOCK: t = 's'; break;
    case S_IFBLK: t = 'b'; break;
    case S_IFDIR: t = 'd'; break;
    case S_IFCHR: t = 'c'; break;
    case S_IFIFO: t = 'p'; break;
  }
  std::string s(1, t);
  auto tri = [&](uint32_t r, uint32_t w, uint32_t x, uint32_t special, char on, char off) {
    s += (m & r) ? 'r' : '-';
    s += (m & w) ? 'w' : '-';
    if (m & special) s += (m & x) ? on : off;
    else s += (m & x) ? 'x' : '-';
  };
  tri(S_IRUSR, S_IWUSR, S_IXUSR, S_ISUID, 's', 'S');
  tri(S_IRGRP, S_IWGRP, S_IXGRP, S_ISGID, 's', 'S');
  tri(S_IROTH, S_IWOTH, S_IXOTH, S_ISVTX, 't', 'T');
  return s;
}

// What borg calls an item without content: "directory", "link", ...; "" for regular files.
const char* presence_name(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFDIR: return "directory";
    case S_IFLNK: return "link";
    case S_IFCHR: return "chrdev";
    case S_IFBLK: return "blkdev";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
  }
  return "";
}

std::string local_time(int64_t ns) {
  time_t t = static_cast<time_t>(ns / 1000000000 - (ns % 1000000000 < 0));
  struct tm tm {};
  localtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%a, %Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string rjust(const std::string& s, size_t w) { return s.size() >= w ? s : std::string(w - s.size(), ' ') + s; }

std::string change_text(const DiffEntry& e, const std::string& c) {
  if (c == "type") return "[type: " + filemode(e.mode_a) + " -> " + filemode(e.mode_b) + "]";
  if (c == "content")
    return rjust(size_fmt(e.bytes_added, 1, true), 9) + " " + rjust(size_fmt(-e.bytes_removed, 1, true), 9);
  if (c == "target") return "changed link";
  if (c == "mode") return "[mode: " + filemode(e.mode_a) + " -> " + filemode(e.mode_b) + "]";
  if (c == "owner")
    return "[owner: " + std::to_string(e.uid_a) + ":" + std::to_string(e.gid_a) + " -> " + std::to_string(e.uid_b) +
           ":" + std::to_string(e.gid_b) + "]";
  if (c == "mtime") return "[mtime: " + local_time(e.mtime_a) + " -> " + local_time(e.mtime_b) + "]";
  if (c == "links") return "[links: " + std::to_string(e.nlink_a) + " -> " + std::to_string(e.nlink_b) + "]";
  return "[" + c + "]";  // rdev, xattrs
}

std::string changes_text(const DiffEntry& e) {
  if (e.kind == DiffEntry::kAdded) {
    const char* what = presence_name(e.mode_b);
    return *what ? std::string("added ") + what : "added " + rjust(size_fmt(e.bytes_added, 2, false), 13);
  }
  if (e.kind == DiffEntry::kRemoved) {
    const char* what = presence_name(e.mode_a);
    return *what ? std::string("removed ") + what : "removed " + rjust(size_fmt(e.bytes_removed, 2, false), 11);
  }
  std::string s;
  for (const std::string& c : e.changes) s += (s.empty() ? "" : " ") + change_text(e, c);
  return s;
}

bool has(const DiffEntry& e, const char* c) { return std::find(e.changes.begin(), e.changes.end(), c) != e.changes.end(); }

}  // namespace

constexpr char kHex[] = "0123456789abcdef";

std::string printable_name(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = utf8_len(s, i);
    if (n == 0 || c < 0x20 || c == 0x7f || c == '\\') {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
      ++i;
      continue;
    }
    out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  auto u = [&](unsigned v) {
    out += "\\u";
    for (int sh = 12; sh >= 0; sh -= 4) out += kHex[(v >> sh) & 15];
  };
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = utf8_len(s, i);
    if (n == 0) u(0xdc00 + c), ++i;  // surrogateescape
    else if (c == '"' || c == '\\') out += '\\', out += char(c), ++i;
    else if (c < 0x20) u(c), ++i;
    else out.append(s.substr(i, n)), i += n;
  }
  return out + "\"";
}

Result<std::vector<DiffEntry>> diff_trees(SqliteDb& db, uint64_t root_a, uint64_t root_b, const DiffOptions& o) {
  uint32_t mode = 0;
  DZ_RETURN_IF_ERROR(root_mode(db, root_a, mode));
  DZ_RETURN_IF_ERROR(root_mode(db, root_b, mode));
  Walker w(db, o);
  DZ_RETURN_IF_ERROR(w.run(root_a, root_b));
  std::vector<DiffEntry> out = std::move(w.out());
  std::sort(out.begin(), out.end(), path_less);
  return out;
}

std::string diff_text(const std::vector<DiffEntry>& entries) {
  tzset();
  std::string out;
  for (const DiffEntry& e : entries) {
    std::string c = changes_text(e);
    if (c.size() < 19) c.append(19 - c.size(), ' ');
    out += c + " " + printable_name(e.path) + "\n";
  }
  return out;
}

std::string diff_json(const std::vector<DiffEntry>& entries) {
  static const char* kinds[] = {"added", "removed", "modified"};
  std::string out;
  for (const DiffEntry& e : entries) {
    std::string j = "{\"path\": " + json_string(e.path) + ", \"kind\": \"" + kinds[e.kind] + "\", \"changes\": [";
    for (size_t i = 0; i < e.changes.size(); ++i) j += (i ? ", \"" : "\"") + e.changes[i] + "\"";
    j += "], \"bytes_added\": " + std::to_string(e.bytes_added) + ", \"bytes_removed\": " + std::to_string(e.bytes_removed);
    const bool mod = e.kind == DiffEntry::kModified;
    if (e.kind == DiffEntry::kRemoved || (mod && (has(e, "mode") || has(e, "type"))))
      j += ", \"old_mode\": \"" + filemode(e.mode_a) + "\"";
    if (e.kind == DiffEntry::kAdded || (mod && (has(e, "mode") || has(e, "type"))))
      j += ", \"new_mode\": \"" + filemode(e.mode_b) + "\"";
    if (mod && has(e, "owner"))
      j += ", \"old_uid\": " + std::to_string(e.uid_a) + ", \"old_gid\": " + std::to_string(e.gid_a) +
           ", \"new_uid\": " + std::to_string(e.uid_b) + ", \"new_gid\": " + std::to_string(e.gid_b);
    if (mod && has(e, "mtime"))
      j += ", \"old_mtime_ns\": " + std::to_string(e.mtime_a) + ", \"new_mtime_ns\": " + std::to_string(e.mtime_b);
    if (mod && has(e, "links"))
      j += ", \"old_nlink\": " + std::to_string(e.nlink_a) + ", \"new_nlink\": " + std::to_string(e.nlink_b);
    out += j + "}\n";
  }
  return out;
}

}  // namespace dzfs
