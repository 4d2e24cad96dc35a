// Store: see store.h.
#include "index/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "index/index_at_rest.h"
#include "index/log.h"
#include "index/model_registry.h"
#include "index/schema.h"

namespace dzfs {

static bool dir_is_empty(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return false;
  bool empty = true;
  while (dirent* e = readdir(d))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) { empty = false; break; }
  closedir(d);
  return empty;
}

static std::string random_uuid() {
  uint8_t b[16] = {};
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t r = ::read(fd, b, sizeof b);
    (void)r;
    ::close(fd);
  }
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  char s[40];
  snprintf(s, sizeof s, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
           b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return s;
}

Status Store::mkfs(const std::string& dir, StoreConfig cfg) {
  DZ_RETURN_IF_ERROR(cfg.validate());
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (::mkdir(dir.c_str(), 0700) != 0) return Status::Error(errno, "cannot create " + dir + ": " + strerror(errno));
  } else if (!S_ISDIR(st.st_mode)) {
    return Status::Error(ENOTDIR, dir + " is not a directory");
  } else if (::access((dir + "/dzfs.conf").c_str(), F_OK) == 0) {
    return Status::Error(EEXIST, dir + " is already a dzfs volume");
  } else if (!dir_is_empty(dir)) {
    return Status::Error(ENOTEMPTY, dir + " is not empty and not a dzfs volume; refusing to use it");
  }
  for (const char* sub : {"/packs", "/models"})
    if (::mkdir((dir + sub).c_str(), 0700) != 0 && errno != EEXIST)
      return Status::Error(errno, "cannot create " + dir + sub + ": " + strerror(errno));
  auto db = SqliteDb::open(dir + "/index.db", false);
  if (!db.ok()) return db.status();
  std::unique_ptr<SqliteDb> owned(*db);
  DZ_RETURN_IF_ERROR(create_schema(*owned, S_IFDIR | 0755, getuid(), getgid()));
  owned.reset();
  cfg.format_version = kFormatVersion;
  cfg.uuid = random_uuid();
  DZ_RETURN_IF_ERROR(cfg.save(dir));  // its presence marks a complete volume
  // The volume gets its own copy of the default model, so it never depends on this binary's.
  auto store = Store::open(dir, StoreOptions{});
  if (!store.ok()) return store.status();
  auto how = ModelRegistry::Activate::kReplace;
  for (auto model : embedded_default_models()) {
    auto id = (*store)->models->install(model, "", "default model embedded in dzfs", how);
    if (!id.ok()) return id.status();
    how = ModelRegistry::Activate::kAdd;
  }
  return (*store)->commit();
}

Store::Store(std::string d, const StoreConfig& c, const StoreOptions& opts)
    : dir(std::move(d)), readonly(opts.readonly), cfg(c), packs(dir + "/packs", opts.readonly),
      groups(packs, opts.group_cache_bytes), chunks(index, packs, cfg, opts.cache_bytes),
      models(std::make_unique<ModelRegistry>(*this)) {
  chunks.set_external_decoder([this](const ChunkRecord& r) { return models->decode(r); });
  groups.set_models([this] { return models->decode_set(); });
  groups.set_locator([this](int64_t gid) -> Result<PackLocation> {
    std::lock_guard<std::mutex> g(index.mu);
    Stmt s = index.db->prepare("SELECT pack, off, stored_len FROM groups WHERE id = ?");
    s.bind(1, gid);
    if (!s.step()) return Status::Error(ENOENT, "no group " + std::to_string(gid));
    return PackLocation{uint32_t(s.i64(0)), uint64_t(s.i64(1)), uint32_t(s.i64(2))};
  });
  chunks.set_group_reader(&groups);
}

Store::~Store() {
  groups.stop();  // its threads use the index and the models
  if (!readonly && index.db) {
    Status s = commit();
    if (!s.ok()) log_error("final commit failed: " + s.message());
    std::lock_guard<std::mutex> g(index.mu);
    if (index.db->in_batch()) index.db->exec("ROLLBACK");  // nothing left: commit began an empty batch
    clean_close_ = s.ok() && !index.db->in_batch();
  }
  // A clean close folds the WAL into index.db (journal_mode=DELETE) and packs it; anything less
  // leaves index.db and its WAL as they are, for the next open to recover.
  const bool clean = !readonly && index.db && clean_close_ && pack_index_;
  bool packable = false;
  if (clean) packable = index.db->exec("PRAGMA journal_mode=DELETE").ok();
  index.db.reset();
  if (packable) {
    Status s = index_at_rest::pack(dir);
    if (!s.ok()) log_error("index left unpacked: " + s.message());
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

int Store::lock_holder(const std::string& dir) {
  int fd = ::open((dir + "/lock").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  int pid = 0;
  if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
    char buf[32] = {};
    ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
    pid = r > 0 ? atoi(buf) : -1;
    if (pid == 0) pid = -1;
  }
  ::close(fd);
  return pid;
}

void Store::note_pid() {
  if (lock_fd_ < 0) return;
  std::string s = std::to_string(getpid()) + "\n";
  if (ftruncate(lock_fd_, 0) == 0 && pwrite(lock_fd_, s.data(), s.size(), 0) < 0) { /* advisory only */ }
}

Result<std::unique_ptr<Store>> Store::open(const std::string& dir, const StoreOptions& opts) {
  auto cfg = StoreConfig::load(dir);
  if (!cfg.ok()) return cfg.status();
  std::unique_ptr<Store> st(new Store(dir, *cfg, opts));
  if (!opts.readonly) {
    st->lock_fd_ = ::open((dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (st->lock_fd_ < 0) return Status::Error(errno, "cannot open " + dir + "/lock: " + strerror(errno));
    if (flock(st->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      char buf[32] = {};
      ssize_t r = pread(st->lock_fd_, buf, sizeof buf - 1, 0);
      std::string who = r > 0 ? " (pid " + std::to_string(atoi(buf)) + ")" : "";
      return Status::Error(EBUSY, dir + " is in use by another dzfs process" + who +
                                      "; unmount it first (dzfs umount MNT)");
    }
    st->note_pid();
    struct statvfs sv {};
    if (statvfs(dir.c_str(), &sv) == 0) {
      uint64_t total = uint64_t(sv.f_blocks) * sv.f_frsize;
      st->packs.set_reserve_bytes(std::clamp<uint64_t>(total / 50, 4u << 20, 256u << 20));
    }
  }
  if (!opts.readonly && st->cfg.format_version < kFormatVersion) {  // before anything packs the index
    st->cfg.format_version = kFormatVersion;
    DZ_RETURN_IF_ERROR(st->cfg.save(dir));
  }
  std::string temp;  // a read-only open of a packed index reads an inflated temporary copy
  Result<std::string> path = dir + "/index.db";
  if (opts.readonly) path = index_at_rest::readable_path(dir, &temp);
  else if (Status u = index_at_rest::unpack(dir); !u.ok()) return Status::Error(u.code(), "cannot unpack the index: " + u.message());
  if (!path.ok()) return path.status();
  struct stat ist {};
  if (::stat(path->c_str(), &ist) != 0)  // never a new, empty index in a volume that lost its own
    return Status::Error(EIO, dir + " has no index (index.db or " + index_at_rest::kPackedName + "): restore it from a backup");
  auto db = SqliteDb::open(*path, opts.readonly);
  if (!temp.empty()) index_at_rest::remove_copy(temp);
  if (!db.ok()) return db.status();
  st->index.db.reset(*db);
  auto version = check_schema(*st->index.db);
  if (!version.ok()) return version.status();
  if (*version < kIndexSchemaVersion) {  // an older volume: upgraded in place (read-only: stand-ins)
    SqliteDb& db = *st->index.db;
    if (!opts.readonly) DZ_RETURN_IF_ERROR(db.exec("BEGIN IMMEDIATE"));
    Status up = upgrade_schema(db, *version, opts.readonly);
    if (!opts.readonly) DZ_RETURN_IF_ERROR(db.exec(up.ok() ? "COMMIT" : "ROLLBACK"));
    if (!up.ok()) return Status::Error(up.code(), "cannot upgrade the index from schema " + std::to_string(*version) + ": " + up.message());
  }
  DZ_RETURN_IF_ERROR(st->packs.open());
  if (!opts.readonly) DZ_RETURN_IF_ERROR(st->index.db->begin_batch());
  DZ_RETURN_IF_ERROR(st->models->open());
  st->pack_index_ = opts.pack_index;  // only a store that opened completely packs its index
  return st;
}

Status Store::commit() {
  if (readonly) return Status::Ok();
  std::lock_guard<std::mutex> serial(commit_mu_);
  // Sync most pack data without holding the index, so FUSE threads keep going; then again under
  // the lock for whatever was appended meanwhile, so no committed row points at unsynced bytes.
  DZ_RETURN_IF_ERROR(packs.sync());
  std::lock_guard<std::mutex> g(index.mu);
  DZ_RETURN_IF_ERROR(packs.sync());
  if (index.db->in_batch()) DZ_RETURN_IF_ERROR(index.db->commit_batch());
  return index.db->begin_batch();
}

static uint64_t file_bytes(const std::string& path) {
  struct stat s {};
  return ::stat(path.c_str(), &s) == 0 ? uint64_t(s.st_size) : 0;
}

Result<std::pair<uint64_t, uint64_t>> Store::vacuum() {
  if (readonly) return Status::Error(EROFS, "store is read-only");
  DZ_RETURN_IF_ERROR(commit());
  std::lock_guard<std::mutex> serial(commit_mu_);
  std::lock_guard<std::mutex> g(index.mu);
  const std::string db = dir + "/index.db";
  if (index.db->in_batch()) DZ_RETURN_IF_ERROR(index.db->commit_batch());
  DZ_RETURN_IF_ERROR(index.db->exec("PRAGMA wal_checkpoint(TRUNCATE)"));
  const uint64_t before = file_bytes(db);
  Status v = index.db->exec("VACUUM");
  if (v.ok()) v = index.db->exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const uint64_t after = file_bytes(db);
  DZ_RETURN_IF_ERROR(index.db->begin_batch());
  if (!v.ok()) return v;
  return std::make_pair(before, after);
}

}  // namespace dzfs
