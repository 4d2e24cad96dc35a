// Pack files: see pack_store.h.
#include "index/pack_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>

namespace dzfs {

namespace {
constexpr char kPackMagic[8] = {'D', 'Z', 'P', 'A', 'C', 'K', '0', '1'};
constexpr uint32_t kRecordMagic = 0x43525a44;  // "DZRC" little-endian
constexpr uint8_t kRecordVersion = 1;

void put32(char* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = char(v >> (8 * i)); }
void put64(char* p, uint64_t v) { for (int i = 0; i < 8; ++i) p[i] = char(v >> (8 * i)); }
uint32_t get32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(uint8_t(p[i])) << (8 * i);
  return v;
}
uint64_t get64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(uint8_t(p[i])) << (8 * i);
  return v;
}

Status pread_all(int fd, char* buf, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, buf + done, n - done, off + done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::Error(errno, std::string("pack read: ") + strerror(errno));
    if (r == 0) return Status::Error(EIO, "pack record truncated");
    done += size_t(r);
  }
  return Status::Ok();
}

Status pwrite_all(int fd, const char* buf, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pwrite(fd, buf + done, n - done, off + done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::Error(errno, std::string("pack write: ") + strerror(errno));
    done += size_t(r);
  }
  return Status::Ok();
}
}  // namespace

// Record header, 48 bytes, little-endian:
//   0 magic u32 | 4 codec u8 | 5 version u8 | 6 reserved u16 | 8 raw_len u32 | 12 stored_len u32
//  16 hash[16] | 32 payload XXH3-64 u64 | 40 reserved u32 | 44 XXH32 of bytes 0..43 u32
std::string encode_record_header(const ChunkRecord& rec, uint32_t stored_len) {
  std::string h(kRecordHeaderSize, '\0');
  put32(&h[0], kRecordMagic);
  h[4] = char(rec.codec);
  h[5] = char(kRecordVersion);
  put32(&h[8], rec.raw_len);
  put32(&h[12], stored_len);
  memcpy(&h[16], rec.hash, 16);
  put64(&h[32], XXH3_64bits(rec.payload.data(), rec.payload.size()));
  put32(&h[44], XXH32(h.data(), 44, 0));
  return h;
}

PackFd::~PackFd() {
  if (fd >= 0) ::close(fd);
}

PackStore::PackStore(std::string dir, bool readonly) : dir_(std::move(dir)), readonly_(readonly) {}

PackStore::~PackStore() {
  sync();
  for (Current& c : cur_)
    if (c.fd >= 0) ::close(c.fd);
}

std::string PackStore::path_of(uint32_t pack) const {
  char name[32];
  snprintf(name, sizeof name, "/%08u.pack", pack);
  return dir_ + name;
}

Status PackStore::open() {
  DIR* d = opendir(dir_.c_str());
  if (!d) return Status::Error(errno, "cannot open pack directory " + dir_ + ": " + strerror(errno));
  while (dirent* e = readdir(d)) {
    unsigned id = 0;
    char tail[8] = {};
    if (sscanf(e->d_name, "%8u.%5s", &id, tail) == 2 && strcmp(tail, "pack") == 0)
      next_id_ = std::max<uint32_t>(next_id_, id + 1);
  }
  closedir(d);
  return Status::Ok();
}

std::vector<std::pair<uint32_t, uint64_t>> PackStore::list() const {
  std::vector<std::pair<uint32_t, uint64_t>> out;
  DIR* d = opendir(dir_.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    unsigned id = 0;
    char tail[8] = {};
    if (sscanf(e->d_name, "%8u.%5s", &id, tail) == 2 && strcmp(tail, "pack") == 0) {
      struct stat st {};
      if (::stat(path_of(id).c_str(), &st) == 0) out.emplace_back(id, uint64_t(st.st_size));
    }
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<uint32_t> PackStore::current_packs() const {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<uint32_t> out;
  for (const Current& c : cur_)
    if (c.id) out.push_back(c.id);
  return out;
}

PackStore::Current* PackStore::current_locked(uint32_t pack) {
  for (Current& c : cur_)
    if (c.id && c.id == pack) return &c;
  return nullptr;
}

void PackStore::seal_locked(Current& c) {
  if (c.fd >= 0) unsynced_.push_back(c.fd);  // closed by the next sync
  c = Current{};
}

bool PackStore::seal(uint32_t pack) {
  std::lock_guard<std::mutex> g(mu_);
  Current* c = current_locked(pack);
  if (c) seal_locked(*c);
  return c != nullptr;
}

Result<std::shared_ptr<PackFd>> PackStore::fd_for(uint32_t pack) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = fds_.find(pack);
  if (it != fds_.end()) return it->second;
  int fd = ::open(path_of(pack).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Error(EIO, "pack " + path_of(pack) + " is missing: " + strerror(errno));
  auto p = std::make_shared<PackFd>();
  p->fd = fd;
  fds_[pack] = p;
  return p;
}

Status PackStore::start_new_pack(Current& c) {
  seal_locked(c);
  const uint32_t id = next_id_++;
  int fd = ::open(path_of(id).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Error(errno, "cannot create pack file: " + std::string(strerror(errno)));
  char hdr[kPackHeaderSize] = {};
  memcpy(hdr, kPackMagic, 8);
  put32(hdr + 8, 1);
  put32(hdr + 12, id);
  Status s = pwrite_all(fd, hdr, sizeof hdr, 0);
  if (!s.ok()) {
    ::close(fd);
    ::unlink(path_of(id).c_str());
    return s;
  }
  c = Current{id, fd, kPackHeaderSize};
  dir_dirty_ = true;
  return Status::Ok();
}

Status PackStore::check_space(int fd, size_t need) {
  // statvfs every 1 MiB written, and on every append once space runs low.
  bytes_since_space_check_ += need;
  if (!space_low_ && bytes_since_space_check_ < (1u << 20)) return Status::Ok();
  bytes_since_space_check_ = 0;
  struct statvfs sv {};
  if (fstatvfs(fd, &sv) != 0) return Status::Ok();
  uint64_t avail = uint64_t(sv.f_bavail) * sv.f_frsize;
  space_low_ = avail < reserve_ + (16u << 20);
  if (avail < reserve_ + need) return Status::Error(ENOSPC, "backing store is full");
  return Status::Ok();
}

Result<PackLocation> PackStore::write_record(const std::string& header, const std::string& payload,
                                             uint32_t stored_len, PackStream stream) {
  if (readonly_) return Status::Error(EROFS, "store is read-only");
  std::lock_guard<std::mutex> g(mu_);
  Current& c = cur_[int(stream) % kPackStreams];
  if (c.fd < 0 || c.size >= kPackTargetSize) DZ_RETURN_IF_ERROR(start_new_pack(c));
  DZ_RETURN_IF_ERROR(check_space(c.fd, header.size() + payload.size()));
  PackLocation loc{c.id, c.size, stored_len};
  // One pwrite of the record from a buffer that keeps its capacity (a fresh one per record is
  // a fresh mmap for a large chunk); crash tests aim their kills at this pwrite64.
  record_buf_.assign(header);
  record_buf_.append(payload);
  Status s = pwrite_all(c.fd, record_buf_.data(), record_buf_.size(), c.size);
  const size_t written = record_buf_.size();
  if (record_buf_.capacity() > (1u << 20)) std::string().swap(record_buf_);  // a group's: not kept
  if (!s.ok()) {
    // A partial record may sit at the tail; nothing points at it and the next record
    // overwrites it, so the pack stays well-formed.
    if (ftruncate(c.fd, off_t(c.size)) != 0) { /* gc reclaims the tail anyway */ }
    return s;
  }
  c.size += written;
  return loc;
}

Result<PackLocation> PackStore::append(const ChunkRecord& rec, PackStream stream) {
  return write_record(encode_record_header(rec, uint32_t(rec.payload.size())), rec.payload,
                      uint32_t(rec.payload.size()), stream);
}

Result<PackLocation> PackStore::append_raw(const std::string& bytes, PackStream stream) {
  if (bytes.size() < kRecordHeaderSize) return Status::Error(EINVAL, "record too short");
  return write_record(bytes.substr(0, kRecordHeaderSize), bytes.substr(kRecordHeaderSize),
                      uint32_t(bytes.size() - kRecordHeaderSize), stream);
}

Result<std::string> PackStore::read_raw(const PackLocation& loc, bool check_payload) {
  auto fd = fd_for(loc.pack);
  if (!fd.ok()) return fd.status();
  const std::string where = path_of(loc.pack) + " @" + std::to_string(loc.off);
  struct stat st {};
  if (fstat((*fd)->fd, &st) != 0) return Status::Error(EIO, "cannot stat " + where);
  const uint64_t size = uint64_t(st.st_size);  // compared without sums that could wrap
  if (loc.off < kPackHeaderSize || loc.off > size || kRecordHeaderSize + uint64_t(loc.stored_len) > size - loc.off)
    return Status::Error(EIO, "chunk record lies beyond the end of its pack (truncated?): " + where);
  std::string buf(kRecordHeaderSize + loc.stored_len, '\0');
  DZ_RETURN_IF_ERROR(pread_all((*fd)->fd, buf.data(), buf.size(), loc.off));
  if (get32(&buf[0]) != kRecordMagic || XXH32(buf.data(), 44, 0) != get32(&buf[44]))
    return Status::Error(EIO, "chunk record header is damaged: " + where);
  if (get32(&buf[12]) != loc.stored_len)
    return Status::Error(EIO, "chunk record length disagrees with the index: " + where);
  if (check_payload && XXH3_64bits(buf.data() + kRecordHeaderSize, loc.stored_len) != get64(&buf[32]))
    return Status::Error(EIO, "chunk payload checksum mismatch: " + where);
  return buf;
}

Result<ChunkRecord> PackStore::read(const PackLocation& loc, bool check_payload) {
  auto raw = read_raw(loc, check_payload);
  if (!raw.ok()) return raw.status();
  const std::string& b = *raw;
  ChunkRecord r;
  r.codec = uint8_t(b[4]);
  r.raw_len = get32(&b[8]);
  memcpy(r.hash, &b[16], 16);
  r.payload = b.substr(kRecordHeaderSize);
  return r;
}

Status PackStore::sync() {
  std::lock_guard<std::mutex> serial(sync_mu_);  // closes of rotated fds must not race a sync
  std::vector<int> fds;
  bool dir_dirty;
  std::vector<int> cur;  // stay open: only a sync closes a sealed pack's fd, and syncs are serial
  {
    std::lock_guard<std::mutex> g(mu_);
    fds.swap(unsynced_);
    dir_dirty = dir_dirty_;
    dir_dirty_ = false;
    for (const Current& c : cur_)
      if (c.fd >= 0) cur.push_back(c.fd);
  }
  Status s;
  for (int fd : fds) {
    if (fdatasync(fd) != 0 && s.ok()) s = Status::Error(errno, std::string("pack fsync: ") + strerror(errno));
    ::close(fd);
  }
  for (int fd : cur)
    if (fdatasync(fd) != 0 && s.ok()) s = Status::Error(errno, std::string("pack fsync: ") + strerror(errno));
  if (dir_dirty) {
    int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      ::close(dfd);
    }
  }
  return s;
}

Status PackStore::remove(uint32_t pack) {
  std::lock_guard<std::mutex> g(mu_);
  if (current_locked(pack)) return Status::Error(EBUSY, "cannot remove the pack being written");
  fds_.erase(pack);  // readers holding the shared fd keep it open until they finish
  if (::unlink(path_of(pack).c_str()) != 0 && errno != ENOENT)
    return Status::Error(errno, "cannot remove " + path_of(pack));
  dir_dirty_ = true;
  return Status::Ok();
}

}  // namespace dzfs
