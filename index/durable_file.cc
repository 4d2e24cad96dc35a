// Durable small-file writes: see durable_file.h.
#include "index/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace dzfs {

Status write_file_durably(const std::string& dir, const std::string& name, std::span<const uint8_t> bytes,
                          mode_t mode) {
  std::string tmp = dir + "/." + name + ".tmp", dst = dir + "/" + name;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::Error(errno, "cannot write " + tmp + ": " + strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::Error(e, "cannot write " + tmp + ": " + strerror(e));
    }
    done += size_t(w);
  }
  bool ok = fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), dst.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Status::Error(EIO, "cannot store " + dst);
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

}  // namespace dzfs
