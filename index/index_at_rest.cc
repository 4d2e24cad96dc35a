// The index at rest: see index_at_rest.h.
#include "index/index_at_rest.h"

#include "index/index_dump.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <span>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace dzfs::index_at_rest {
namespace {

bool exists(const std::string& p) {
  struct stat s {};
  return ::stat(p.c_str(), &s) == 0;
}

Status sys_error(const std::string& what, const std::string& path) {
  const int e = errno;
  return Status::Error(e, what + " " + path + ": " + strerror(e));
}

// The directory's entries made durable: a rename must be on disk before the other form of the
// index is unlinked, or a crash could keep the unlink and lose the rename.
Status fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sys_error("cannot open", dir);
  const bool ok = fsync(fd) == 0;
  const int e = errno;
  ::close(fd);
  if (!ok) return Status::Error(e, "cannot sync the directory " + dir + ": " + strerror(e));
  return Status::Ok();
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status write_all(int fd, const void* p, size_t n, const std::string& path) {
  const auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd, b, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return sys_error("cannot write", path);
    b += w;
    n -= size_t(w);
  }
  return Status::Ok();
}

// A level that keeps packing a large index within seconds (zstd -19 runs at a few MB/s).
int level_for(uint64_t bytes) {
  if (bytes <= (16u << 20)) return 19;
  if (bytes <= (128u << 20)) return 12;
  return 6;
}

// Streams src through zstd into dst_fd (compressing or inflating).
Status compress_file(int in, int out, uint64_t size, const std::string& src, const std::string& dst) {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> c(ZSTD_createCCtx(), ZSTD_freeCCtx);
  if (!c) return Status::Error(ENOMEM, "cannot compress " + src + ": out of memory");
  ZSTD_CCtx_setParameter(c.get(), ZSTD_c_compressionLevel, level_for(size));
  ZSTD_CCtx_setParameter(c.get(), ZSTD_c_checksumFlag, 1);
  ZSTD_CCtx_setPledgedSrcSize(c.get(), size);
  std::vector<uint8_t> ib(ZSTD_CStreamInSize()), ob(ZSTD_CStreamOutSize());
  for (bool last = false; !last;) {
    const ssize_t r = ::read(in, ib.data(), ib.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return sys_error("cannot read", src);
    last = r == 0;
    ZSTD_inBuffer zin{ib.data(), size_t(r), 0};
    for (bool done = false; !done;) {
      ZSTD_outBuffer zout{ob.data(), ob.size(), 0};
      const size_t left = ZSTD_compressStream2(c.get(), &zout, &zin, last ? ZSTD_e_end : ZSTD_e_continue);
      if (ZSTD_isError(left)) return Status::Error(EIO, "cannot compress " + src + ": " + ZSTD_getErrorName(left));
      DZ_RETURN_IF_ERROR(write_all(out, ob.data(), zout.pos, dst));
      done = last ? left == 0 : zin.pos == zin.size;
    }
  }
  return Status::Ok();
}

Status inflate_file(int in, int out, const std::string& src, const std::string& dst) {
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> d(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!d) return Status::Error(ENOMEM, "cannot read " + src + ": out of memory");
  std::vector<uint8_t> ib(ZSTD_DStreamInSize()), ob(ZSTD_DStreamOutSize());
  size_t hint = 1;  // 0 once a frame has ended
  bool any = false;
  for (;;) {
    const ssize_t r = ::read(in, ib.data(), ib.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return sys_error("cannot read", src);
    if (r == 0) break;
    any = true;
    if (hint == 0) return Status::Error(EIO, src + " is damaged: bytes after the end of its zstd frame");
    ZSTD_inBuffer zin{ib.data(), size_t(r), 0};
    while (zin.pos < zin.size) {
      ZSTD_outBuffer zout{ob.data(), ob.size(), 0};
      hint = ZSTD_decompressStream(d.get(), &zout, &zin);
      if (ZSTD_isError(hint)) return Status::Error(EIO, src + " is damaged: " + ZSTD_getErrorName(hint));
      DZ_RETURN_IF_ERROR(write_all(out, ob.data(), zout.pos, dst));
      if (hint == 0 && zin.pos < zin.size)
        return Status::Error(EIO, src + " is damaged: bytes after the end of its zstd frame");
    }
  }
  if (!any || hint != 0) return Status::Error(EIO, src + " is damaged: truncated");
  return Status::Ok();
}

Result<std::string> read_all(const std::string& path) {
  Fd in{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (in.fd < 0) return sys_error("cannot open", path);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const ssize_t r = ::read(in.fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return sys_error("cannot read", path);
    if (r == 0) return out;
    out.append(buf, size_t(r));
  }
}

bool is_dump(const std::string& path) {
  Fd in{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  char b[sizeof index_dump::kMagic] = {};
  return in.fd >= 0 && ::read(in.fd, b, sizeof b) == ssize_t(sizeof b) && memcmp(b, index_dump::kMagic, sizeof b) == 0;
}

// An inflated index at `inflated` that is a dump becomes a database file at `out`; a database
// file is renamed there.
Status to_database(const std::string& inflated, const std::string& out) {
  if (!is_dump(inflated)) {
    if (::rename(inflated.c_str(), out.c_str()) != 0) return sys_error("cannot rename", inflated);
    return Status::Ok();
  }
  auto d = read_all(inflated);
  if (!d.ok()) return d.status();
  ::unlink(inflated.c_str());
  return index_dump::restore(std::span(reinterpret_cast<const uint8_t*>(d->data()), d->size()), out);
}

// The logical form of index.db, checked by restoring it and dumping the result again: a bug in
// either direction is found here, while index.db still exists, not at the next mount.
Result<std::string> verified_dump(const std::string& dir) {
  const std::string db = dir + "/index.db", check = dir + "/index.db.check.tmp";
  auto d = index_dump::dump(db);
  if (!d.ok()) return d.status();
  Status s = index_dump::restore(std::span(reinterpret_cast<const uint8_t*>(d->data()), d->size()), check);
  if (!s.ok()) return Status::Error(s.code(), "the index dump does not restore: " + s.message());
  auto again = index_dump::dump(check);
  ::unlink(check.c_str());
  ::unlink((check + "-journal").c_str());
  if (!again.ok()) return again.status();
  if (*again != *d) return Status::Error(EIO, "the index dump does not restore to the same rows");
  return d;
}

Status compress_bytes(const std::string& src, int out, const std::string& dst) {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> c(ZSTD_createCCtx(), ZSTD_freeCCtx);
  if (!c) return Status::Error(ENOMEM, "cannot compress the index: out of memory");
  ZSTD_CCtx_setParameter(c.get(), ZSTD_c_compressionLevel, level_for(src.size()));
  ZSTD_CCtx_setParameter(c.get(), ZSTD_c_checksumFlag, 1);
  std::string z(ZSTD_compressBound(src.size()), '\0');
  const size_t n = ZSTD_compress2(c.get(), z.data(), z.size(), src.data(), src.size());
  if (ZSTD_isError(n)) return Status::Error(EIO, std::string("cannot compress the index: ") + ZSTD_getErrorName(n));
  return write_all(out, z.data(), n, dst);
}

// Inflates DIR/index.db.zst into an open file descriptor.
Status inflate_into(const std::string& dir, int out, const std::string& dst) {
  const std::string src = dir + "/" + kPackedName;
  Fd in{::open(src.c_str(), O_RDONLY | O_CLOEXEC)};
  if (in.fd < 0) return sys_error("cannot open", src);
  DZ_RETURN_IF_ERROR(inflate_file(in.fd, out, src, dst));
  if (fsync(out) != 0) return sys_error("cannot sync", dst);
  return Status::Ok();
}

}  // namespace

Status unpack(const std::string& dir) {
  const std::string db = dir + "/index.db", packed = dir + "/" + kPackedName;
  // Temporaries of a pack or unpack that a crash interrupted (the caller holds the store's lock).
  for (const char* t : {"/index.db.tmp", "/index.db.restore.tmp", "/index.db.check.tmp", "/index.db.check.tmp-journal",
                        "/index.db.zst.tmp"})
    ::unlink((dir + t).c_str());
  if (!exists(packed)) return Status::Ok();
  if (!exists(db)) {
    const std::string tmp = db + ".tmp", restored = db + ".restore.tmp";
    Fd out{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (out.fd < 0) return sys_error("cannot create", tmp);
    Status s = inflate_into(dir, out.fd, tmp);
    if (s.ok()) s = to_database(tmp, restored);  // complete and synced before it gets the name
    if (s.ok() && ::rename(restored.c_str(), db.c_str()) != 0) s = sys_error("cannot rename", restored);
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      ::unlink(restored.c_str());
      return s;
    }
    DZ_RETURN_IF_ERROR(fsync_dir(dir));  // index.db is there for good before the .zst goes
  }
  if (::unlink(packed.c_str()) != 0 && errno != ENOENT) return sys_error("cannot remove", packed);
  (void)fsync_dir(dir);  // a .zst that comes back after a crash is stale and removed again
  return Status::Ok();
}

Status pack(const std::string& dir, uint64_t logical_max) {
  const std::string db = dir + "/index.db", packed = dir + "/" + kPackedName, tmp = packed + ".tmp";
  // A WAL or journal beside index.db means it was not closed cleanly: it stays as it is.
  for (const char* side : {"-wal", "-journal"}) {
    struct stat s {};
    if (::stat((db + side).c_str(), &s) == 0 && s.st_size > 0)
      return Status::Error(EBUSY, "index.db" + std::string(side) + " is not empty; the index stays unpacked");
  }
  Fd in{::open(db.c_str(), O_RDONLY | O_CLOEXEC)};
  if (in.fd < 0) return sys_error("cannot open", db);
  struct stat s {};
  if (fstat(in.fd, &s) != 0) return sys_error("cannot stat", db);
  Result<std::string> logical = std::string();
  if (uint64_t(s.st_size) <= logical_max) logical = verified_dump(dir);
  if (!logical.ok()) return logical.status();
  Status r;
  {
    Fd out{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (out.fd < 0) return sys_error("cannot create", tmp);
    r = logical->empty() ? compress_file(in.fd, out.fd, uint64_t(s.st_size), db, tmp) : compress_bytes(*logical, out.fd, tmp);
    if (r.ok() && fsync(out.fd) != 0) r = sys_error("cannot sync", tmp);
  }
  if (r.ok() && ::rename(tmp.c_str(), packed.c_str()) != 0) r = sys_error("cannot rename", tmp);
  if (!r.ok()) {
    ::unlink(tmp.c_str());
    return r;
  }
  DZ_RETURN_IF_ERROR(fsync_dir(dir));  // index.db.zst is there for good before index.db goes
  for (const char* f : {"", "-wal", "-shm", "-journal"}) ::unlink((db + f).c_str());
  (void)fsync_dir(dir);  // an index.db that comes back after a crash is equal to the .zst
  return Status::Ok();
}

Result<std::string> readable_path(const std::string& dir, std::string* temp) {
  temp->clear();
  const std::string db = dir + "/index.db";
  if (exists(db) || !exists(dir + "/" + kPackedName)) return db;
  // A private directory (mode 0700) holds the inflated copy: no other user can place a link
  // where it is written. The caller unlinks the copy once open; the directory goes with it.
  const char* t = getenv("TMPDIR");
  std::string tdir = std::string(t && *t ? t : "/tmp") + "/dzfs-index-XXXXXX";
  if (!mkdtemp(tdir.data())) return sys_error("cannot create a temporary directory for the index in", tdir);
  const std::string path = tdir + "/inflated", restored = tdir + "/index.db";
  Status s;
  {
    Fd out{::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
    if (out.fd < 0) s = sys_error("cannot create", path);
    else s = inflate_into(dir, out.fd, path);
  }
  if (s.ok()) s = to_database(path, restored);
  ::unlink(path.c_str());
  if (!s.ok()) {
    ::unlink(restored.c_str());
    ::rmdir(tdir.c_str());
    return s;
  }
  *temp = restored;
  return restored;
}

void remove_copy(const std::string& temp) {
  ::unlink(temp.c_str());
  ::rmdir(temp.substr(0, temp.rfind('/')).c_str());
}

}  // namespace dzfs::index_at_rest
