// FUSE low-level glue: decode the request, call the Volume, encode the reply. No policy here.
#include "fs/fuse_ops.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "index/log.h"

namespace dzfs {
namespace {

FuseContext& ctx(fuse_req_t req) { return *static_cast<FuseContext*>(fuse_req_userdata(req)); }
Volume& vol(fuse_req_t req) { return *ctx(req).volume; }

Caller caller(fuse_req_t req) {
  const fuse_ctx* c = fuse_req_ctx(req);
  return Caller{c->uid, c->gid, uint32_t(c->umask)};
}

void reply_err(fuse_req_t req, const Status& s) { fuse_reply_err(req, s.ok() ? 0 : s.code()); }

void reply_entry(fuse_req_t req, const Status& s, const struct stat& st) {
  if (!s.ok()) return reply_err(req, s);
  fuse_entry_param e{};
  e.ino = st.st_ino;
  e.attr = st;
  e.attr_timeout = e.entry_timeout = ctx(req).timeout;
  if (fuse_reply_entry(req, &e) != 0) vol(req).forget(st.st_ino, 1);  // the kernel never saw it
}

void op_init(void* userdata, fuse_conn_info* conn) {
  auto* c = static_cast<FuseContext*>(userdata);
  conn->max_write = 1u << 20;
  conn->max_readahead = 1u << 20;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  if (c->writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  else c->writeback_cache = false;
  if (conn->capable & FUSE_CAP_SPLICE_READ) conn->want |= FUSE_CAP_SPLICE_READ;
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  // ACLs as on ext4: the kernel checks permissions against them (default_permissions alone sees
  // only the mode) and refreshes the mode after an ACL changes it; the Volume inherits default
  // ACLs, and with them applies the umask itself (Caller::umask).
  if (conn->capable & FUSE_CAP_POSIX_ACL) conn->want |= FUSE_CAP_POSIX_ACL;
  if ((conn->want & FUSE_CAP_POSIX_ACL) && (conn->capable & FUSE_CAP_DONT_MASK)) conn->want |= FUSE_CAP_DONT_MASK;
  conn->want &= ~unsigned(FUSE_CAP_READDIRPLUS_AUTO);  // always plus: one round trip per batch
}

void write_request_counts();

void op_destroy(void* userdata) {
  write_request_counts();
  auto* c = static_cast<FuseContext*>(userdata);
  Status s = c->volume->flush_all();
  if (s.ok()) s = c->volume->commit();
  if (!s.ok()) log_error("commit at unmount failed: " + s.message());
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  struct stat st {};
  Status s = vol(req).lookup(parent, name, st);
  if (s.code() == ENOENT) {  // a negative entry: names are only created through this kernel
    fuse_entry_param e{};
    e.entry_timeout = ctx(req).timeout;
    fuse_reply_entry(req, &e);
    return;
  }
  reply_entry(req, s, st);
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
  vol(req).forget(ino, n);
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* f) {
  for (size_t i = 0; i < count; ++i) vol(req).forget(f[i].ino, f[i].nlookup);
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  struct stat st {};
  Status s = vol(req).getattr(ino, st);
  if (!s.ok()) return reply_err(req, s);
  fuse_reply_attr(req, &st, ctx(req).timeout);
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int set, fuse_file_info*) {
  struct stat st {};
  Status s = vol(req).setattr(ino, *attr, set, st);
  if (!s.ok()) return reply_err(req, s);
  fuse_reply_attr(req, &st, ctx(req).timeout);
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  std::string target;
  Status s = vol(req).readlink(ino, target);
  if (!s.ok()) return reply_err(req, s);
  fuse_reply_readlink(req, target.c_str());
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  struct stat st {};
  Status s = vol(req).mknod(parent, name, mode, rdev, caller(req), st);
  reply_entry(req, s, st);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  struct stat st {};
  Status s = vol(req).mkdir(parent, name, mode, caller(req), st);
  reply_entry(req, s, st);
}

void op_symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  struct stat st {};
  Status s = vol(req).symlink(parent, name, target, caller(req), st);
  reply_entry(req, s, st);
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char* name) {
  struct stat st {};
  Status s = vol(req).link(ino, parent, name, st);
  reply_entry(req, s, st);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) { reply_err(req, vol(req).unlink(parent, name)); }
void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) { reply_err(req, vol(req).rmdir(parent, name)); }

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
               unsigned flags) {
  reply_err(req, vol(req).rename(parent, name, newparent, newname, flags));
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Status s = vol(req).open(ino, fi->flags);
  if (!s.ok()) return reply_err(req, s);
  fi->keep_cache = 1;  // every change passes through the kernel, so its page cache stays valid
  if (fuse_reply_open(req, fi) != 0) vol(req).release(ino, fi->flags);
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  struct stat st {};
  Status s = vol(req).mknod(parent, name, (mode & 07777) | S_IFREG, 0, caller(req), st);
  if (!s.ok()) return reply_err(req, s);
  vol(req).open(st.st_ino, fi->flags);
  fi->keep_cache = 1;
  fuse_entry_param e{};
  e.ino = st.st_ino;
  e.attr = st;
  e.attr_timeout = e.entry_timeout = ctx(req).timeout;
  if (fuse_reply_create(req, &e, fi) != 0) {
    vol(req).release(st.st_ino, fi->flags);
    vol(req).forget(st.st_ino, 1);
  }
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  std::string buf;
  Status s = vol(req).read(ino, uint64_t(off), size, buf);
  if (!s.ok()) return reply_err(req, s);
  fuse_reply_buf(req, buf.data(), buf.size());
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off, fuse_file_info*) {
  Status s = vol(req).write(ino, uint64_t(off), data, size);
  if (!s.ok()) return reply_err(req, s);
  fuse_reply_write(req, size);
}

void op_flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) { reply_err(req, vol(req).flush(ino)); }

void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  reply_err(req, vol(req).release(ino, fi->flags));
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) { reply_err(req, vol(req).fsync(ino)); }
void op_fsyncdir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { reply_err(req, vol(req).commit()); }

void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  std::vector<DirEntry> entries;
  Status s = vol(req).readdir(ino, uint64_t(off), size / 48 + 2, plus, entries);
  if (!s.ok()) return reply_err(req, s);
  std::vector<char> buf(size);
  size_t used = 0;
  for (const DirEntry& e : entries) {
    size_t n;
    bool dot = e.name == "." || e.name == "..";
    if (plus) {
      fuse_entry_param ep{};
      ep.attr = e.attr;
      if (!dot) {
        ep.ino = e.ino;
        ep.attr_timeout = ep.entry_timeout = ctx(req).timeout;
      }
      n = fuse_add_direntry_plus(req, buf.data() + used, size - used, e.name.c_str(), &ep, off_t(e.next_off));
    } else {
      n = fuse_add_direntry(req, buf.data() + used, size - used, e.name.c_str(), &e.attr, off_t(e.next_off));
    }
    if (n > size - used) break;
    used += n;
    if (plus && !dot) vol(req).add_lookup(e.ino);
  }
  fuse_reply_buf(req, buf.data(), used);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  do_readdir(req, ino, size, off, false);
}
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  do_readdir(req, ino, size, off, true);
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs sv {};
  Status s = vol(req).statfs(sv);
  if (!s.ok()) return reply_err(req, s);
  fuse_reply_statfs(req, &sv);
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  reply_err(req, vol(req).setxattr(ino, name, std::string_view(value, size), flags));
}

void reply_sized(fuse_req_t req, const std::string& v, size_t size) {
  if (size == 0) fuse_reply_xattr(req, v.size());
  else if (v.size() > size) fuse_reply_err(req, ERANGE);
  else fuse_reply_buf(req, v.data(), v.size());
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  std::string v;
  Status s = vol(req).getxattr(ino, name, v);
  if (!s.ok()) return reply_err(req, s);
  reply_sized(req, v, size);
}

// Linux lists trusted.* names only to callers with CAP_SYS_ADMIN (ext4's list handler); the
// kernel passes a FUSE filesystem's list through unfiltered, so they are left out here for
// everyone but root (FUSE does not say which capabilities the caller holds).
std::string names_visible_to(fuse_req_t req, const std::string& names) {
  if (fuse_req_ctx(req)->uid == 0) return names;
  std::string out;
  for (size_t i = 0; i < names.size();) {
    size_t end = std::min(names.find('\0', i), names.size());
    std::string_view n(names.data() + i, end - i);
    if (n.substr(0, 8) != "trusted.") out.append(n).push_back('\0');
    i = end + 1;
  }
  return out;
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  std::string v;
  Status s = vol(req).listxattr(ino, v);
  if (!s.ok()) return reply_err(req, s);
  reply_sized(req, names_visible_to(req, v), size);
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  reply_err(req, vol(req).removexattr(ino, name));
}

void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, fuse_file_info*) {
  reply_err(req, vol(req).fallocate(ino, mode, uint64_t(off), uint64_t(len)));
}

// copy_file_range(2) inside the mount: chunks are shared, no data moves (Volume::copy_range). The
// reply's count is 32 bits in the FUSE protocol, so one request copies at most 4 GiB less a page;
// callers loop on a short count.
void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, fuse_file_info*, fuse_ino_t ino_out,
                        off_t off_out, fuse_file_info*, size_t len, int flags) {
  if (flags != 0 || off_in < 0 || off_out < 0)  // as copy_file_range(2)
    return reply_err(req, Status::Error(EINVAL, "bad copy_file_range arguments"));
  constexpr uint64_t kMaxReply = 0xFFFFF000u;
  uint64_t copied = 0;
  Status s = vol(req).copy_range(ino_in, uint64_t(off_in), ino_out, uint64_t(off_out),
                                 std::min<uint64_t>(len, kMaxReply), copied);
  if (!s.ok()) return reply_err(req, s);
  fuse_reply_write(req, size_t(copied));
}

// Request counting for benchmarks: with DZFS_COUNT_REQUESTS=FILE in the daemon's environment
// every request is counted and timed per opcode (libfuse keeps no counter), and the table is
// written to FILE at unmount, one line "op count microseconds". Without the variable the table
// holds the plain functions: no cost at all.
struct Tally {
  const char* name = nullptr;
  std::atomic<uint64_t> n{0}, ns{0};
};
std::vector<Tally*>& tallies() {
  static std::vector<Tally*> t;
  return t;
}

template <auto F>
struct Counted;
template <class... A, void (*F)(fuse_req_t, A...)>
struct Counted<F> {
  static inline Tally tally;
  static void fn(fuse_req_t req, A... a) {
    const auto t0 = std::chrono::steady_clock::now();
    F(req, a...);  // replies inside: the time includes writing the reply
    const auto dt = std::chrono::steady_clock::now() - t0;
    tally.n.fetch_add(1, std::memory_order_relaxed);
    tally.ns.fetch_add(uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(dt).count()),
                       std::memory_order_relaxed);
  }
};

template <auto F, class Slot>
void count(Slot& slot, const char* name) {
  Counted<F>::tally.name = name;
  tallies().push_back(&Counted<F>::tally);
  slot = &Counted<F>::fn;
}

void count_requests(fuse_lowlevel_ops& o) {
  count<op_lookup>(o.lookup, "lookup");
  count<op_forget>(o.forget, "forget");
  count<op_forget_multi>(o.forget_multi, "forget_multi");
  count<op_getattr>(o.getattr, "getattr");
  count<op_setattr>(o.setattr, "setattr");
  count<op_readlink>(o.readlink, "readlink");
  count<op_mknod>(o.mknod, "mknod");
  count<op_mkdir>(o.mkdir, "mkdir");
  count<op_symlink>(o.symlink, "symlink");
  count<op_link>(o.link, "link");
  count<op_unlink>(o.unlink, "unlink");
  count<op_rmdir>(o.rmdir, "rmdir");
  count<op_rename>(o.rename, "rename");
  count<op_open>(o.open, "open");
  count<op_create>(o.create, "create");
  count<op_read>(o.read, "read");
  count<op_write>(o.write, "write");
  count<op_flush>(o.flush, "flush");
  count<op_release>(o.release, "release");
  count<op_fsync>(o.fsync, "fsync");
  count<op_fsyncdir>(o.fsyncdir, "fsyncdir");
  count<op_readdir>(o.readdir, "readdir");
  count<op_readdirplus>(o.readdirplus, "readdirplus");
  count<op_statfs>(o.statfs, "statfs");
  count<op_setxattr>(o.setxattr, "setxattr");
  count<op_getxattr>(o.getxattr, "getxattr");
  count<op_listxattr>(o.listxattr, "listxattr");
  count<op_removexattr>(o.removexattr, "removexattr");
  count<op_fallocate>(o.fallocate, "fallocate");
  count<op_copy_file_range>(o.copy_file_range, "copy_file_range");
}

void write_request_counts() {
  const char* path = getenv("DZFS_COUNT_REQUESTS");
  if (!path || !*path || tallies().empty()) return;
  FILE* f = fopen(path, "w");
  if (!f) return log_error(std::string("DZFS_COUNT_REQUESTS: cannot write ") + path);
  for (const Tally* t : tallies())
    if (t->n) fprintf(f, "%s %llu %llu\n", t->name, (unsigned long long)t->n, (unsigned long long)(t->ns / 1000));
  fclose(f);
}

fuse_lowlevel_ops make_ops() {
  fuse_lowlevel_ops o{};
  o.init = op_init;
  o.destroy = op_destroy;
  o.lookup = op_lookup;
  o.forget = op_forget;
  o.forget_multi = op_forget_multi;
  o.getattr = op_getattr;
  o.setattr = op_setattr;
  o.readlink = op_readlink;
  o.mknod = op_mknod;
  o.mkdir = op_mkdir;
  o.symlink = op_symlink;
  o.link = op_link;
  o.unlink = op_unlink;
  o.rmdir = op_rmdir;
  o.rename = op_rename;
  o.open = op_open;
  o.create = op_create;
  o.read = op_read;
  o.write = op_write;
  o.flush = op_flush;
  o.release = op_release;
  o.fsync = op_fsync;
  o.fsyncdir = op_fsyncdir;
  o.readdir = op_readdir;
  o.readdirplus = op_readdirplus;
  o.statfs = op_statfs;
  o.setxattr = op_setxattr;
  o.getxattr = op_getxattr;
  o.listxattr = op_listxattr;
  o.removexattr = op_removexattr;
  o.fallocate = op_fallocate;
  o.copy_file_range = op_copy_file_range;
  return o;
}

}  // namespace

const fuse_lowlevel_ops* fuse_operations() {
  static const fuse_lowlevel_ops ops = [] {
    fuse_lowlevel_ops o = make_ops();
    if (const char* c = getenv("DZFS_COUNT_REQUESTS"); c && *c) count_requests(o);
    return o;
  }();
  return &ops;
}

}  // namespace dzfs
