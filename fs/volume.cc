// Volume: see volume.h.
#define FUSE_USE_VERSION 314
#include "fs/volume.h"

#include <fuse3/fuse_lowlevel.h>
#include <linux/fs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "fs/posix_acl.h"
#include "index/log.h"
#include "index/schema.h"

namespace dzfs {

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

static timespec to_ts(int64_t ns) {
  timespec t{};
  t.tv_sec = ns / 1000000000;
  t.tv_nsec = ns % 1000000000;
  if (t.tv_nsec < 0) { t.tv_nsec += 1000000000; t.tv_sec -= 1; }
  return t;
}
static int64_t from_ts(const timespec& t) { return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec; }

Volume::Volume(Store& store, VolumeOptions opts)
    : store_(store), opts_(opts), chunker_(store.cfg.chunk_min, store.cfg.chunk_avg, store.cfg.chunk_max) {
  if (opts_.readahead_threads > 0)
    prefetcher_ = std::make_unique<ChunkPrefetcher>(store_.chunks, opts_.readahead_threads);
  std::lock_guard<std::mutex> g(store_.index.mu);
  if (Status s = reload_frozen_locked(); !s.ok()) log_error("cannot read the snapshots table: " + s.message());
}

Status Volume::recover() {
  std::lock_guard<std::mutex> g(store_.index.mu);
  std::vector<uint64_t> orphans;
  Stmt s = store_.index.db->prepare("SELECT ino FROM inodes WHERE nlink = 0");
  while (s.step()) orphans.push_back(uint64_t(s.i64(0)));
  DZ_RETURN_IF_ERROR(s.done_status());
  s.reset();
  for (uint64_t ino : orphans) DZ_RETURN_IF_ERROR(delete_inode_locked(ino));
  if (!orphans.empty()) log_info("recovered " + std::to_string(orphans.size()) + " orphaned inodes");
  return Status::Ok();
}

// ---- inode table -------------------------------------------------------------------------

void Volume::add_lookup(uint64_t ino, uint64_t n) {
  std::lock_guard<std::mutex> g(table_mu_);
  table_[ino].nlookup += n;
}

void Volume::forget(uint64_t ino, uint64_t n) {
  {
    std::lock_guard<std::mutex> g(table_mu_);
    auto it = table_.find(ino);
    if (it == table_.end()) return;
    it->second.nlookup = it->second.nlookup > n ? it->second.nlookup - n : 0;
    if (it->second.nlookup || it->second.nopen) return;
  }
  maybe_delete(ino);
}

bool Volume::in_use_locked(uint64_t ino) {
  std::lock_guard<std::mutex> g(table_mu_);
  auto it = table_.find(ino);
  if (it == table_.end()) return false;
  if (it->second.nlookup || it->second.nopen) return true;
  table_.erase(it);
  return false;
}

void Volume::maybe_delete(uint64_t ino) {
  std::lock_guard<std::mutex> g(store_.index.mu);
  Stmt s = store_.index.db->prepare("SELECT nlink FROM inodes WHERE ino = ?");
  s.bind(1, ino);
  bool orphan = s.step() && s.i64(0) == 0;
  s.reset();
  if (!in_use_locked(ino) && orphan) {
    Status st = delete_inode_locked(ino);
    if (!st.ok()) log_error("cannot delete inode " + std::to_string(ino) + ": " + st.message());
  }
}

Status Volume::delete_inode_locked(uint64_t ino) {
  SqliteDb& db = *store_.index.db;
  Savepoint sp(db);
  DZ_RETURN_IF_ERROR(sp.begun());
  std::unordered_map<int64_t, int64_t> delta;
  {
    Stmt s = db.prepare("SELECT chunk FROM extents WHERE ino = ?");
    s.bind(1, ino);
    while (s.step()) --delta[s.i64(0)];
    DZ_RETURN_IF_ERROR(s.done_status());
  }
  for (auto& [id, dv] : delta) {
    Stmt u = db.prepare("UPDATE chunks SET refcount = refcount + ? WHERE id = ?");
    u.bind(1, dv).bind(2, id);
    DZ_RETURN_IF_ERROR(u.run());
  }
  for (const char* sql : {"DELETE FROM extents WHERE ino = ?", "DELETE FROM xattrs WHERE ino = ?",
                          "DELETE FROM inodes WHERE ino = ?"}) {
    Stmt d = db.prepare(sql);
    d.bind(1, ino);
    DZ_RETURN_IF_ERROR(d.run());
  }
  sp.done();
  return Status::Ok();
}

std::shared_ptr<FileState> Volume::state_for(uint64_t ino, bool create) {
  std::lock_guard<std::mutex> g(table_mu_);
  auto it = table_.find(ino);
  if (it == table_.end()) {
    if (!create) return nullptr;
    it = table_.emplace(ino, InodeRef{}).first;
  }
  if (!it->second.state && create)
    it->second.state = std::make_shared<FileState>(ino, store_.chunks, chunker_, opts_.dirty_limit);
  return it->second.state;
}

// Returns the inode's FileState, created and loaded; the caller locks out->mu itself after.
Status Volume::get_state_loaded(uint64_t ino, std::shared_ptr<FileState>& out) {
  out = state_for(ino, true);
  std::lock_guard<std::mutex> g(out->mu);
  if (!out->loaded) {
    DZ_RETURN_IF_ERROR(out->load(store_.index));
    out->loaded = true;
  }
  return Status::Ok();
}

void Volume::maybe_drop_state(uint64_t ino, const std::shared_ptr<FileState>& st) {
  std::lock_guard<std::mutex> g(table_mu_);
  auto it = table_.find(ino);
  if (it != table_.end() && it->second.state == st && st->writers == 0 && !st->changed())
    it->second.state.reset();
}

// ---- attributes --------------------------------------------------------------------------

Status Volume::stat_locked(uint64_t ino, struct stat& out) {
  Stmt s = store_.index.db->prepare(
      "SELECT mode, uid, gid, nlink, size, rdev, atime_ns, mtime_ns, ctime_ns, data_bytes FROM inodes WHERE ino = ?");
  s.bind(1, ino);
  if (!s.step()) {
    Status e = s.done_status();
    return e.ok() ? Status::Error(ENOENT, "no such inode") : e;
  }
  memset(&out, 0, sizeof out);
  out.st_ino = ino;
  out.st_mode = mode_t(s.i64(0));
  out.st_uid = uid_t(s.i64(1));
  out.st_gid = gid_t(s.i64(2));
  out.st_nlink = nlink_t(s.i64(3));
  out.st_size = off_t(s.i64(4));
  out.st_rdev = dev_t(s.i64(5));
  out.st_atim = to_ts(s.i64(6));
  out.st_mtim = to_ts(s.i64(7));
  out.st_ctim = to_ts(s.i64(8));
  out.st_blksize = 65536;
  // data_bytes comes from the index: a damaged value must not overflow (fuzz_index found it).
  const uint64_t data_bytes = uint64_t(std::max<int64_t>(s.i64(9), 0));
  out.st_blocks = blkcnt_t(data_bytes / 512 + (data_bytes % 512 != 0));
  if (S_ISLNK(out.st_mode)) out.st_blocks = 0;
  return Status::Ok();
}

Status Volume::getattr(uint64_t ino, struct stat& out) {
  std::shared_ptr<FileState> st = state_for(ino, false);
  uint64_t size = 0;
  bool have_state = false;
  if (st) {
    std::lock_guard<std::mutex> g(st->mu);
    if (st->loaded) { size = st->size(); have_state = true; }
  }
  std::lock_guard<std::mutex> g(store_.index.mu);
  DZ_RETURN_IF_ERROR(stat_locked(ino, out));
  if (have_state) out.st_size = off_t(size);
  return Status::Ok();
}

Status Volume::setattr(uint64_t ino, const struct stat& in, int set, struct stat& out) {
  DZ_RETURN_IF_ERROR(writable(ino));
  if (set & FUSE_SET_ATTR_SIZE) {
    std::shared_ptr<FileState> st;
    DZ_RETURN_IF_ERROR(get_state_loaded(ino, st));
    {
      std::lock_guard<std::mutex> g(st->mu);
      struct stat cur {};
      {
        std::lock_guard<std::mutex> gi(store_.index.mu);
        DZ_RETURN_IF_ERROR(stat_locked(ino, cur));
      }
      if (S_ISDIR(cur.st_mode)) return Status::Error(EISDIR, "is a directory");
      if (!S_ISREG(cur.st_mode)) return Status::Error(EINVAL, "not a regular file");
      DZ_RETURN_IF_ERROR(st->truncate(uint64_t(in.st_size)));
      DZ_RETURN_IF_ERROR(st->flush_dirty());
      DZ_RETURN_IF_ERROR(st->apply(store_.index));
    }
    maybe_drop_state(ino, st);
  }
  std::lock_guard<std::mutex> g(store_.index.mu);
  SqliteDb& db = *store_.index.db;
  int64_t now = now_ns();
  auto upd = [&](const char* sql, int64_t v) {
    Stmt s = db.prepare(sql);
    s.bind(1, v).bind(2, ino);
    return s.run();
  };
  Savepoint sp(db);
  DZ_RETURN_IF_ERROR(sp.begun());
  if (set & FUSE_SET_ATTR_MODE) {
    struct stat cur {};
    DZ_RETURN_IF_ERROR(stat_locked(ino, cur));
    DZ_RETURN_IF_ERROR(upd("UPDATE inodes SET mode = ? WHERE ino = ?", (cur.st_mode & S_IFMT) | (in.st_mode & 07777)));
    Stmt q = db.prepare("SELECT value FROM xattrs WHERE ino = ? AND name = ?");
    q.bind(1, ino).bind_blob(2, kAclAccessXattr);
    if (q.step()) {
      std::string acl = acl_with_mode(q.blob(0), in.st_mode);
      q.reset();
      Stmt w = db.prepare("UPDATE xattrs SET value = ? WHERE ino = ? AND name = ?");
      w.bind_blob(1, acl).bind(2, ino).bind_blob(3, kAclAccessXattr);
      DZ_RETURN_IF_ERROR(w.run());
    }
  }
  if (set & FUSE_SET_ATTR_UID) DZ_RETURN_IF_ERROR(upd("UPDATE inodes SET uid = ? WHERE ino = ?", in.st_uid));
  if (set & FUSE_SET_ATTR_GID) DZ_RETURN_IF_ERROR(upd("UPDATE inodes SET gid = ? WHERE ino = ?", in.st_gid));
  if (set & FUSE_SET_ATTR_ATIME_NOW) DZ_RETURN_IF_ERROR(upd("UPDATE inodes SET atime_ns = ? WHERE ino = ?", now));
  else if (set & FUSE_SET_ATTR_ATIME) DZ_RETURN_IF_ERROR(upd("UPDATE inodes SET atime_ns = ? WHERE ino = ?", from_ts(in.st_atim)));
  if (set & FUSE_SET_ATTR_MTIME_NOW) DZ_RETURN_IF_ERROR(upd("UPDATE inodes SET mtime_ns = ? WHERE ino = ?", now));
  else if (set & FUSE_SET_ATTR_MTIME) DZ_RETURN_IF_ERROR(upd("UPDATE inodes SET mtime_ns = ? WHERE ino = ?", from_ts(in.st_mtim)));
  else if (set & FUSE_SET_ATTR_SIZE) DZ_RETURN_IF_ERROR(upd("UPDATE inodes SET mtime_ns = ? WHERE ino = ?", now));
  if (set & FUSE_SET_ATTR_CTIME) DZ_RETURN_IF_ERROR(upd("UPDATE inodes SET ctime_ns = ? WHERE ino = ?", from_ts(in.st_ctim)));
  else if (set) DZ_RETURN_IF_ERROR(upd("UPDATE inodes SET ctime_ns = ? WHERE ino = ?", now));
  sp.done();
  return stat_locked(ino, out);
}

Status Volume::readlink(uint64_t ino, std::string& out) {
  std::lock_guard<std::mutex> g(store_.index.mu);
  Stmt s = store_.index.db->prepare("SELECT mode, target FROM inodes WHERE ino = ?");
  s.bind(1, ino);
  if (!s.step()) return Status::Error(ENOENT, "no such inode");
  if (!S_ISLNK(mode_t(s.i64(0)))) return Status::Error(EINVAL, "not a symlink");
  out = s.blob(1);
  return Status::Ok();
}

// ---- names -------------------------------------------------------------------------------

Status Volume::child_locked(uint64_t parent, std::string_view name, uint64_t& ino) {
  // A name no entry can have is ENAMETOOLONG, as on ext4, for every operation that looks one up
  // (not ENOENT, which the kernel would also cache as a negative entry).
  if (name.size() > 255) return Status::Error(ENAMETOOLONG, "name too long");
  Stmt s = store_.index.db->prepare("SELECT ino FROM dirents WHERE parent = ? AND name = ?");
  s.bind(1, parent).bind_blob(2, name);
  if (s.step()) {
    ino = uint64_t(s.i64(0));
    return Status::Ok();
  }
  Status e = s.done_status();
  return e.ok() ? Status::Error(ENOENT, "no such entry") : e;
}

Status Volume::lookup(uint64_t parent, std::string_view name, struct stat& out) {
  uint64_t ino = 0;
  {
    std::lock_guard<std::mutex> g(store_.index.mu);
    DZ_RETURN_IF_ERROR(child_locked(parent, name, ino));
    DZ_RETURN_IF_ERROR(stat_locked(ino, out));
    add_lookup(ino);
  }
  std::shared_ptr<FileState> st = state_for(ino, false);
  if (st) {
    std::lock_guard<std::mutex> g(st->mu);
    if (st->loaded) out.st_size = off_t(st->size());
  }
  return Status::Ok();
}

Status Volume::touch_dir_locked(uint64_t dir, int nlink_delta) {
  Stmt s = store_.index.db->prepare("UPDATE inodes SET mtime_ns = ?1, ctime_ns = ?1, nlink = nlink + ?2 WHERE ino = ?3");
  s.bind(1, now_ns()).bind(2, nlink_delta).bind(3, dir);
  return s.run();
}

// A new node's permission bits and ACLs (the kernel's posix_acl_create, which a FUSE filesystem
// with POSIX ACLs does itself): the directory's default ACL, if any, replaces the umask and gives
// the access ACL; a new directory inherits the default ACL too. Symlinks have neither.
struct NewNodeAcls {
  std::string access, dflt;
};
static Status new_node_acls(SqliteDb& db, uint64_t parent, uint32_t umask, uint32_t& mode, NewNodeAcls& out) {
  if (S_ISLNK(mode)) return Status::Ok();
  Stmt q = db.prepare("SELECT value FROM xattrs WHERE ino = ? AND name = ?");
  q.bind(1, parent).bind_blob(2, kAclDefaultXattr);
  const bool have = q.step();
  if (!have) DZ_RETURN_IF_ERROR(q.done_status());
  std::string dflt = have ? q.blob(0) : std::string();
  if (have && acl_inherit(dflt, mode, out.access)) {
    if (S_ISDIR(mode)) out.dflt = std::move(dflt);
    return Status::Ok();
  }
  mode &= ~(umask & 0777);
  return Status::Ok();
}

static Status insert_xattr(SqliteDb& db, uint64_t ino, std::string_view name, std::string_view value) {
  Stmt s = db.prepare("INSERT OR REPLACE INTO xattrs(ino, name, value) VALUES (?, ?, ?)");
  s.bind(1, ino).bind_blob(2, name).bind_blob(3, value);
  return s.run();
}

Status Volume::make_node(uint64_t parent, std::string_view name, uint32_t mode, uint64_t rdev,
                         std::string_view target, const Caller& c, struct stat& out) {
  if (name.size() > 255) return Status::Error(ENAMETOOLONG, "name too long");
  DZ_RETURN_IF_ERROR(writable(parent));
  std::lock_guard<std::mutex> g(store_.index.mu);
  SqliteDb& db = *store_.index.db;
  struct stat pst {};
  DZ_RETURN_IF_ERROR(stat_locked(parent, pst));
  if (!S_ISDIR(pst.st_mode)) return Status::Error(ENOTDIR, "parent is not a directory");
  if (pst.st_nlink == 0) return Status::Error(ENOENT, "parent directory was removed");
  uint64_t existing = 0;
  if (child_locked(parent, name, existing).ok()) return Status::Error(EEXIST, "entry exists");
  uint32_t gid = c.gid;
  if (pst.st_mode & S_ISGID) {  // BSD group semantics for setgid directories
    gid = pst.st_gid;
    if (S_ISDIR(mode)) mode |= S_ISGID;
  }
  NewNodeAcls acls;
  DZ_RETURN_IF_ERROR(new_node_acls(db, parent, c.umask, mode, acls));
  bool dir = S_ISDIR(mode);
  Savepoint sp(db);
  DZ_RETURN_IF_ERROR(sp.begun());
  int64_t now = now_ns();
  Stmt ins = db.prepare(
      "INSERT INTO inodes(mode, uid, gid, nlink, size, rdev, atime_ns, mtime_ns, ctime_ns, target) "
      "VALUES (?, ?, ?, ?, ?, ?, ?8, ?8, ?8, ?9)");
  ins.bind(1, mode).bind(2, c.uid).bind(3, gid).bind(4, dir ? 2 : 1).bind(5, uint64_t(target.size()));
  ins.bind(6, rdev).bind(8, now);
  if (S_ISLNK(mode)) ins.bind_blob(9, target); else ins.bind_null(9);
  DZ_RETURN_IF_ERROR(ins.run());
  uint64_t ino = uint64_t(db.last_rowid());
  if (!acls.access.empty()) DZ_RETURN_IF_ERROR(insert_xattr(db, ino, kAclAccessXattr, acls.access));
  if (!acls.dflt.empty()) DZ_RETURN_IF_ERROR(insert_xattr(db, ino, kAclDefaultXattr, acls.dflt));
  Stmt de = db.prepare("INSERT INTO dirents(parent, name, ino) VALUES (?, ?, ?)");
  de.bind(1, parent).bind_blob(2, name).bind(3, ino);
  DZ_RETURN_IF_ERROR(de.run());
  DZ_RETURN_IF_ERROR(touch_dir_locked(parent, dir ? 1 : 0));
  sp.done();
  DZ_RETURN_IF_ERROR(stat_locked(ino, out));
  add_lookup(ino);
  return Status::Ok();
}

Status Volume::mknod(uint64_t parent, std::string_view name, uint32_t mode, uint64_t rdev, const Caller& c, struct stat& out) {
  uint32_t type = mode & S_IFMT;
  if (type == 0) mode |= S_IFREG;
  else if (type != S_IFREG && type != S_IFIFO && type != S_IFCHR && type != S_IFBLK && type != S_IFSOCK)
    return Status::Error(EINVAL, "bad file type");
  return make_node(parent, name, mode, rdev, {}, c, out);
}

Status Volume::mkdir(uint64_t parent, std::string_view name, uint32_t mode, const Caller& c, struct stat& out) {
  return make_node(parent, name, S_IFDIR | (mode & 07777), 0, {}, c, out);
}

Status Volume::symlink(uint64_t parent, std::string_view name, std::string_view target, const Caller& c, struct stat& out) {
  if (target.size() >= 4096) return Status::Error(ENAMETOOLONG, "symlink target too long");
  return make_node(parent, name, S_IFLNK | 0777, 0, target, c, out);
}

Status Volume::link(uint64_t ino, uint64_t parent, std::string_view name, struct stat& out) {
  if (name.size() > 255) return Status::Error(ENAMETOOLONG, "name too long");
  DZ_RETURN_IF_ERROR(writable(parent));
  DZ_RETURN_IF_ERROR(writable(ino));  // a new name would change the snapshot's link count
  std::lock_guard<std::mutex> g(store_.index.mu);
  SqliteDb& db = *store_.index.db;
  struct stat st {};
  DZ_RETURN_IF_ERROR(stat_locked(ino, st));
  if (S_ISDIR(st.st_mode)) return Status::Error(EPERM, "cannot hard-link a directory");
  uint64_t existing = 0;
  if (child_locked(parent, name, existing).ok()) return Status::Error(EEXIST, "entry exists");
  Savepoint sp(db);
  DZ_RETURN_IF_ERROR(sp.begun());
  Stmt de = db.prepare("INSERT INTO dirents(parent, name, ino) VALUES (?, ?, ?)");
  de.bind(1, parent).bind_blob(2, name).bind(3, ino);
  DZ_RETURN_IF_ERROR(de.run());
  Stmt u = db.prepare("UPDATE inodes SET nlink = nlink + 1, ctime_ns = ? WHERE ino = ?");
  u.bind(1, now_ns()).bind(2, ino);
  DZ_RETURN_IF_ERROR(u.run());
  DZ_RETURN_IF_ERROR(touch_dir_locked(parent, 0));
  sp.done();
  DZ_RETURN_IF_ERROR(stat_locked(ino, out));
  add_lookup(ino);
  return Status::Ok();
}

// Removes the entry `name` -> ino and drops a link of ino (two for a directory: its own ".").
Status Volume::drop_name_locked(uint64_t parent, std::string_view name, uint64_t ino, bool is_dir) {
  SqliteDb& db = *store_.index.db;
  Stmt d = db.prepare("DELETE FROM dirents WHERE parent = ? AND name = ?");
  d.bind(1, parent).bind_blob(2, name);
  DZ_RETURN_IF_ERROR(d.run());
  Stmt u = db.prepare("UPDATE inodes SET nlink = CASE WHEN ?1 THEN 0 ELSE nlink - 1 END, ctime_ns = ?2 WHERE ino = ?3");
  u.bind(1, is_dir ? 1 : 0).bind(2, now_ns()).bind(3, ino);
  DZ_RETURN_IF_ERROR(u.run());
  return touch_dir_locked(parent, is_dir ? -1 : 0);
}

static Status dir_empty_locked(SqliteDb& db, uint64_t ino) {
  Stmt s = db.prepare("SELECT 1 FROM dirents WHERE parent = ? LIMIT 1");
  s.bind(1, ino);
  if (s.step()) return Status::Error(ENOTEMPTY, "directory not empty");
  return s.done_status();
}

// unlink (dir = false) and rmdir (dir = true): the entry must be of that kind, a directory empty.
Status Volume::remove_entry(uint64_t parent, std::string_view name, bool dir) {
  uint64_t ino = 0;
  DZ_RETURN_IF_ERROR(writable(parent));
  {
    std::lock_guard<std::mutex> g(store_.index.mu);
    DZ_RETURN_IF_ERROR(child_locked(parent, name, ino));
    DZ_RETURN_IF_ERROR(writable(ino));  // the snapshots folder itself
    struct stat st {};
    DZ_RETURN_IF_ERROR(stat_locked(ino, st));
    if (!dir && S_ISDIR(st.st_mode)) return Status::Error(EISDIR, "is a directory");
    if (dir && !S_ISDIR(st.st_mode)) return Status::Error(ENOTDIR, "not a directory");
    if (dir) DZ_RETURN_IF_ERROR(dir_empty_locked(*store_.index.db, ino));
    Savepoint sp(*store_.index.db);
    DZ_RETURN_IF_ERROR(sp.begun());
    DZ_RETURN_IF_ERROR(drop_name_locked(parent, name, ino, dir));
    sp.done();
  }
  maybe_delete(ino);
  return Status::Ok();
}

Status Volume::rename(uint64_t parent, std::string_view name, uint64_t newparent, std::string_view newname, unsigned flags) {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return Status::Error(EINVAL, "unsupported rename flags");
  if (newname.size() > 255) return Status::Error(ENAMETOOLONG, "name too long");
  DZ_RETURN_IF_ERROR(writable(parent));
  DZ_RETURN_IF_ERROR(writable(newparent));
  uint64_t victim = 0;
  {
    std::lock_guard<std::mutex> g(store_.index.mu);
    SqliteDb& db = *store_.index.db;
    uint64_t src = 0, dst = 0;
    DZ_RETURN_IF_ERROR(child_locked(parent, name, src));
    bool have_dst = child_locked(newparent, newname, dst).ok();
    DZ_RETURN_IF_ERROR(writable(src));  // the snapshots folder cannot move, nor be replaced
    if (have_dst) DZ_RETURN_IF_ERROR(writable(dst));
    struct stat sst {}, dstst {};
    DZ_RETURN_IF_ERROR(stat_locked(src, sst));
    if (have_dst) DZ_RETURN_IF_ERROR(stat_locked(dst, dstst));
    bool src_dir = S_ISDIR(sst.st_mode), dst_dir = have_dst && S_ISDIR(dstst.st_mode);
    Savepoint sp(db);
    DZ_RETURN_IF_ERROR(sp.begun());
    auto set_entry = [&](uint64_t p, std::string_view n, uint64_t ino) {
      Stmt u = db.prepare("UPDATE dirents SET ino = ? WHERE parent = ? AND name = ?");
      u.bind(1, ino).bind(2, p).bind_blob(3, n);
      return u.run();
    };
    auto touch_ctime = [&](uint64_t ino) {
      Stmt u = db.prepare("UPDATE inodes SET ctime_ns = ? WHERE ino = ?");
      u.bind(1, now_ns()).bind(2, ino);
      return u.run();
    };
    if (flags & RENAME_EXCHANGE) {
      if (!have_dst) return Status::Error(ENOENT, "rename exchange target missing");
      DZ_RETURN_IF_ERROR(set_entry(parent, name, dst));
      DZ_RETURN_IF_ERROR(set_entry(newparent, newname, src));
      int moved = (src_dir ? 1 : 0) - (dst_dir ? 1 : 0);  // net directories moving parent -> newparent
      DZ_RETURN_IF_ERROR(touch_dir_locked(parent, parent == newparent ? 0 : -moved));
      if (newparent != parent) DZ_RETURN_IF_ERROR(touch_dir_locked(newparent, moved));
      DZ_RETURN_IF_ERROR(touch_ctime(src));
      DZ_RETURN_IF_ERROR(touch_ctime(dst));
      sp.done();
      return Status::Ok();
    }
    if (have_dst) {
      if (flags & RENAME_NOREPLACE) return Status::Error(EEXIST, "target exists");
      if (dst == src) { sp.done(); return Status::Ok(); }  // two links to one inode: POSIX no-op
      if (src_dir && !dst_dir) return Status::Error(ENOTDIR, "target is not a directory");
      if (!src_dir && dst_dir) return Status::Error(EISDIR, "target is a directory");
      if (dst_dir) DZ_RETURN_IF_ERROR(dir_empty_locked(db, dst));
      DZ_RETURN_IF_ERROR(drop_name_locked(newparent, newname, dst, dst_dir));
      victim = dst;
    }
    Stmt mv = db.prepare("UPDATE dirents SET parent = ?, name = ? WHERE parent = ? AND name = ?");
    mv.bind(1, newparent).bind_blob(2, newname).bind(3, parent).bind_blob(4, name);
    DZ_RETURN_IF_ERROR(mv.run());
    DZ_RETURN_IF_ERROR(touch_dir_locked(parent, src_dir && parent != newparent ? -1 : 0));
    if (newparent != parent) DZ_RETURN_IF_ERROR(touch_dir_locked(newparent, src_dir ? 1 : 0));
    DZ_RETURN_IF_ERROR(touch_ctime(src));
    sp.done();
  }
  if (victim) maybe_delete(victim);
  return Status::Ok();
}

// ---- file content ------------------------------------------------------------------------

Status Volume::open(uint64_t ino, int flags) {
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) DZ_RETURN_IF_ERROR(writable(ino));
  {
    std::lock_guard<std::mutex> g(table_mu_);
    auto& r = table_[ino];
    ++r.nopen;
    if ((flags & O_ACCMODE) != O_RDONLY) {
      if (!r.state) r.state = std::make_shared<FileState>(ino, store_.chunks, chunker_, opts_.dirty_limit);
      ++r.state->writers;
    }
  }
  // The kernel asks for atomic O_TRUNC: the truncation is ours to do, here.
  if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
    struct stat in {}, out {};
    in.st_size = 0;
    Status s = setattr(ino, in, FUSE_SET_ATTR_SIZE, out);
    if (!s.ok()) {
      release(ino, flags);
      return s;
    }
  }
  return Status::Ok();
}

Status Volume::release(uint64_t ino, int flags) {
  Status s;
  std::shared_ptr<FileState> st = state_for(ino, false);
  if (st) {
    std::lock_guard<std::mutex> g(st->mu);
    if (st->loaded) {
      s = st->flush_dirty();
      if (s.ok()) s = st->apply(store_.index);
    }
  }
  bool unused = false;
  {
    std::lock_guard<std::mutex> g(table_mu_);
    auto it = table_.find(ino);
    if (it != table_.end()) {
      if (it->second.nopen > 0) --it->second.nopen;
      if (st && (flags & O_ACCMODE) != O_RDONLY && st->writers > 0) --st->writers;
      unused = !it->second.nopen && !it->second.nlookup;
    }
  }
  if (st && s.ok()) maybe_drop_state(ino, st);
  if (unused) maybe_delete(ino);
  if (!s.ok()) log_error("inode " + std::to_string(ino) + ": data not saved at close: " + s.message());
  return s;
}

Status Volume::read(uint64_t ino, uint64_t off, size_t n, std::string& out) {
  if (std::shared_ptr<FileState> st = state_for(ino, false)) {
    std::lock_guard<std::mutex> g(st->mu);
    if (st->loaded) return st->read(off, n, out);
  }
  ExtentMap extents;
  uint64_t size = 0;
  {
    std::lock_guard<std::mutex> g(store_.index.mu);
    Stmt s = store_.index.db->prepare("SELECT size FROM inodes WHERE ino = ?");
    s.bind(1, ino);
    if (!s.step()) return Status::Error(ENOENT, "no such inode");
    size = uint64_t(s.i64(0));
    s.reset();
    if (off >= size) { out.clear(); return Status::Ok(); }
    n = size_t(std::min<uint64_t>(n, size - off));
    DZ_RETURN_IF_ERROR(load_extents(*store_.index.db, ino, off, n, store_.cfg.chunk_max, extents));
  }
  read_ahead(ino, off, off + n, size);
  out.resize(n);
  Status s = read_extents(store_.chunks, extents, off, n, out.data());
  if (!s.ok()) log_error("read of inode " + std::to_string(ino) + " at " + std::to_string(off) + ": " + s.message());
  return s;
}

// A read that starts where the previous one ended asks the prefetcher for the chunks of the next
// readahead_bytes, so they decode in parallel while the reader works through this one.
void Volume::read_ahead(uint64_t ino, uint64_t off, uint64_t end, uint64_t size) {
  if (!prefetcher_) return;
  bool sequential;
  {
    std::lock_guard<std::mutex> g(table_mu_);
    auto it = table_.find(ino);
    if (it == table_.end()) return;
    sequential = off == 0 || it->second.last_read_end == off;
    it->second.last_read_end = end;
  }
  if (!sequential) return;
  ExtentMap ahead;
  {
    std::lock_guard<std::mutex> g(store_.index.mu);
    uint64_t from = end >= size ? (size > 0 ? size - 1 : 0) : end;
    if (!load_extents(*store_.index.db, ino, from, opts_.readahead_bytes, 0, ahead).ok()) return;
  }
  if (end < size) {
    for (auto& [o, e] : ahead) prefetcher_->want(e.chunk);
  } else if (!ahead.empty()) {
    // The whole file was read: a restore reads files in about the order they were backed up,
    // and chunk ids follow that order, so the next ids are the next files' chunks.
    for (int64_t id = ahead.rbegin()->second.chunk + 1, n = 0; n < 4; ++id, ++n) prefetcher_->want(id);
  }
}

Status Volume::write(uint64_t ino, uint64_t off, const char* data, size_t n) {
  DZ_RETURN_IF_ERROR(writable(ino));
  last_write_ns_.store(now_ns(), std::memory_order_relaxed);
  std::shared_ptr<FileState> st;
  DZ_RETURN_IF_ERROR(get_state_loaded(ino, st));
  {
    std::lock_guard<std::mutex> g(st->mu);
    DZ_RETURN_IF_ERROR(st->write(off, data, n));
  }
  if (!opts_.writeback_cache) {
    std::lock_guard<std::mutex> g(store_.index.mu);
    Stmt u = store_.index.db->prepare("UPDATE inodes SET mtime_ns = ?1, ctime_ns = ?1 WHERE ino = ?2");
    u.bind(1, now_ns()).bind(2, ino);
    DZ_RETURN_IF_ERROR(u.run());
  }
  return Status::Ok();
}

Status Volume::flush(uint64_t ino) {
  std::shared_ptr<FileState> st = state_for(ino, false);
  if (!st) return Status::Ok();
  std::lock_guard<std::mutex> g(st->mu);
  if (!st->loaded) return Status::Ok();
  DZ_RETURN_IF_ERROR(st->flush_dirty());
  return st->apply(store_.index);
}

Status Volume::fsync(uint64_t ino) {
  DZ_RETURN_IF_ERROR(flush(ino));
  return store_.commit();
}

Status Volume::flush_all() {
  std::vector<std::pair<uint64_t, std::shared_ptr<FileState>>> states;
  {
    std::lock_guard<std::mutex> g(table_mu_);
    for (auto& [ino, r] : table_)
      if (r.state) states.emplace_back(ino, r.state);
  }
  Status first;
  for (auto& [ino, st] : states) {
    std::lock_guard<std::mutex> g(st->mu);
    if (!st->loaded) continue;
    Status s = st->flush_dirty();
    if (s.ok()) s = st->apply(store_.index);
    if (!s.ok() && first.ok()) first = s;
  }
  return first;
}

Status Volume::fallocate(uint64_t ino, int mode, uint64_t off, uint64_t len) {
  if (mode & ~FALLOC_FL_KEEP_SIZE) return Status::Error(EOPNOTSUPP, "fallocate mode not supported");
  DZ_RETURN_IF_ERROR(writable(ino));
  if (mode & FALLOC_FL_KEEP_SIZE) return Status::Ok();  // space is not reserved in a dedup store
  std::shared_ptr<FileState> st;
  DZ_RETURN_IF_ERROR(get_state_loaded(ino, st));
  std::lock_guard<std::mutex> g(st->mu);
  if (off + len > st->size()) DZ_RETURN_IF_ERROR(st->truncate(off + len));
  return Status::Ok();
}

// ---- directories -------------------------------------------------------------------------

Status Volume::readdir(uint64_t ino, uint64_t off, size_t max, bool plus, std::vector<DirEntry>& out) {
  std::lock_guard<std::mutex> g(store_.index.mu);
  SqliteDb& db = *store_.index.db;
  struct stat self {};
  DZ_RETURN_IF_ERROR(stat_locked(ino, self));
  if (!S_ISDIR(self.st_mode)) return Status::Error(ENOTDIR, "not a directory");
  if (off < 1) out.push_back({".", ino, 1, self});
  if (off < 2) {
    uint64_t parent = ino;
    if (ino != kRootIno) {
      Stmt s = db.prepare("SELECT parent FROM dirents WHERE ino = ? LIMIT 1");
      s.bind(1, ino);
      if (s.step()) parent = uint64_t(s.i64(0));
    }
    DirEntry dd{"..", parent, 2, {}};
    dd.attr.st_ino = parent;
    dd.attr.st_mode = S_IFDIR;
    out.push_back(dd);
  }
  uint64_t after = off >= 2 ? off - 2 : 0;
  Stmt s = db.prepare(
      plus ? "SELECT d.id, d.name, d.ino, i.mode, i.uid, i.gid, i.nlink, i.size, i.rdev, i.atime_ns, i.mtime_ns, "
             "i.ctime_ns, i.data_bytes FROM dirents d JOIN inodes i ON i.ino = d.ino "
             "WHERE d.parent = ? AND d.id > ? ORDER BY d.id LIMIT ?"
           : "SELECT d.id, d.name, d.ino, i.mode FROM dirents d JOIN inodes i ON i.ino = d.ino "
             "WHERE d.parent = ? AND d.id > ? ORDER BY d.id LIMIT ?");
  s.bind(1, ino).bind(2, after).bind(3, uint64_t(max));
  while (s.step()) {
    DirEntry e;
    e.next_off = uint64_t(s.i64(0)) + 2;
    e.name = s.blob(1);
    e.ino = uint64_t(s.i64(2));
    e.attr.st_ino = e.ino;
    e.attr.st_mode = mode_t(s.i64(3));
    if (plus) {
      e.attr.st_uid = uid_t(s.i64(4));
      e.attr.st_gid = gid_t(s.i64(5));
      e.attr.st_nlink = nlink_t(s.i64(6));
      e.attr.st_size = off_t(s.i64(7));
      e.attr.st_rdev = dev_t(s.i64(8));
      e.attr.st_atim = to_ts(s.i64(9));
      e.attr.st_mtim = to_ts(s.i64(10));
      e.attr.st_ctim = to_ts(s.i64(11));
      e.attr.st_blksize = 65536;
      e.attr.st_blocks = S_ISLNK(e.attr.st_mode) ? 0 : blkcnt_t((s.i64(12) + 511) / 512);
    }
    out.push_back(std::move(e));
  }
  return s.done_status();
}

Status Volume::statfs(struct statvfs& out) {
  if (statvfs(store_.dir.c_str(), &out) != 0) return Status::Error(errno, "statvfs of the store failed");
  out.f_namemax = 255;
  return Status::Ok();
}

// ---- xattrs ------------------------------------------------------------------------------

// The kernel hands a FUSE filesystem every xattr name; ext4 (like every Linux filesystem) serves
// only the user, trusted and security namespaces and the two ACLs: any other name is EOPNOTSUPP,
// a namespace prefix with nothing after it EINVAL (posix_ext4's xattr case).
static Status check_xattr_name(std::string_view name) {
  for (std::string_view ns : {"user.", "trusted.", "security."})
    if (name.substr(0, ns.size()) == ns)
      return name.size() > ns.size() ? Status::Ok() : Status::Error(EINVAL, "xattr name is only a namespace");
  if (name == kAclAccessXattr || name == kAclDefaultXattr) return Status::Ok();
  return Status::Error(EOPNOTSUPP, "xattr namespace not supported");
}

Status Volume::setxattr(uint64_t ino, std::string_view name, std::string_view value, int flags) {
  DZ_RETURN_IF_ERROR(check_xattr_name(name));
  DZ_RETURN_IF_ERROR(writable(ino));
  std::lock_guard<std::mutex> g(store_.index.mu);
  SqliteDb& db = *store_.index.db;
  struct stat st {};
  DZ_RETURN_IF_ERROR(stat_locked(ino, st));
  Stmt q = db.prepare("SELECT 1 FROM xattrs WHERE ino = ? AND name = ?");
  q.bind(1, ino).bind_blob(2, name);
  bool exists = q.step();
  q.reset();
  if ((flags & XATTR_CREATE) && exists) return Status::Error(EEXIST, "xattr exists");
  if ((flags & XATTR_REPLACE) && !exists) return Status::Error(ENODATA, "no such xattr");
  Savepoint sp(db);
  DZ_RETURN_IF_ERROR(sp.begun());
  // An access ACL equivalent to the mode (what cp -a and rsync -A set on every file) only sets
  // the mode, as on ext4: no row, and getxattr then finds none.
  const bool only_mode = name == kAclAccessXattr && acl_is_minimal(value);
  Stmt s = db.prepare(only_mode ? "DELETE FROM xattrs WHERE ino = ?1 AND name = ?2"
                                : "INSERT OR REPLACE INTO xattrs(ino, name, value) VALUES (?1, ?2, ?3)");
  s.bind(1, ino).bind_blob(2, name);
  if (!only_mode) s.bind_blob(3, value);
  DZ_RETURN_IF_ERROR(s.run());
  uint32_t perm = 0;
  if (name == kAclAccessXattr && acl_permission_bits(value, perm)) {
    Stmt m = db.prepare("UPDATE inodes SET mode = (mode & ~511) | ? WHERE ino = ?");
    m.bind(1, perm).bind(2, ino);
    DZ_RETURN_IF_ERROR(m.run());
  }
  Stmt u = db.prepare("UPDATE inodes SET ctime_ns = ? WHERE ino = ?");
  u.bind(1, now_ns()).bind(2, ino);
  DZ_RETURN_IF_ERROR(u.run());
  sp.done();
  return Status::Ok();
}

Status Volume::getxattr(uint64_t ino, std::string_view name, std::string& out) {
  DZ_RETURN_IF_ERROR(check_xattr_name(name));
  std::lock_guard<std::mutex> g(store_.index.mu);
  Stmt s = store_.index.db->prepare("SELECT value FROM xattrs WHERE ino = ? AND name = ?");
  s.bind(1, ino).bind_blob(2, name);
  if (!s.step()) {
    Status e = s.done_status();
    return e.ok() ? Status::Error(ENODATA, "no such xattr") : e;
  }
  out = s.blob(0);
  return Status::Ok();
}

Status Volume::listxattr(uint64_t ino, std::string& out) {
  std::lock_guard<std::mutex> g(store_.index.mu);
  out.clear();
  Stmt s = store_.index.db->prepare("SELECT name FROM xattrs WHERE ino = ? ORDER BY name");
  s.bind(1, ino);
  while (s.step()) {
    out += s.blob(0);
    out.push_back('\0');
  }
  return s.done_status();
}

Status Volume::removexattr(uint64_t ino, std::string_view name) {
  DZ_RETURN_IF_ERROR(check_xattr_name(name));
  DZ_RETURN_IF_ERROR(writable(ino));
  std::lock_guard<std::mutex> g(store_.index.mu);
  Stmt s = store_.index.db->prepare("DELETE FROM xattrs WHERE ino = ? AND name = ?");
  s.bind(1, ino).bind_blob(2, name);
  DZ_RETURN_IF_ERROR(s.run());
  if (store_.index.db->changes() == 0) return Status::Error(ENODATA, "no such xattr");
  Stmt u = store_.index.db->prepare("UPDATE inodes SET ctime_ns = ? WHERE ino = ?");
  u.bind(1, now_ns()).bind(2, ino);
  return u.run();
}

}  // namespace dzfs
