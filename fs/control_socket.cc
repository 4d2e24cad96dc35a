// The control socket: see control_socket.h. Every length read from the socket is checked before
// it is used; a malformed or oversized request gets an error reply, never a crash.
#include "fs/control_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "index/log.h"

namespace dzfs {
namespace {

// A request names at most this many fields and bytes: a prune may delete every snapshot of a
// volume in one request (years of hourly snapshots are tens of thousands of names of up to 255
// bytes). Fields are allocated as their bytes arrive, so a count alone costs nothing.
constexpr uint32_t kMaxFields = 1u << 20;
constexpr uint32_t kMaxRequestBytes = 64u << 20;
// The whole request must arrive within this time: requests are served one at a time, so a client
// that connects and sends nothing (or a byte now and then) must not hold the socket for long.
constexpr int kRequestDeadlineMs = 5000;

// sun_path holds 108 bytes; a store deeper than that is reached through its directory's fd.
struct SocketAddress {
  sockaddr_un addr{};
  int dir_fd = -1;
  ~SocketAddress() {
    if (dir_fd >= 0) close(dir_fd);
  }
};

Status address_of(const std::string& dir, SocketAddress& a) {
  a.addr.sun_family = AF_UNIX;
  std::string path = dir + "/" + kControlSocketName;
  if (path.size() >= sizeof a.addr.sun_path) {
    a.dir_fd = open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (a.dir_fd < 0) return Status::Error(errno, "cannot open " + dir + ": " + strerror(errno));
    path = "/proc/self/fd/" + std::to_string(a.dir_fd) + "/" + kControlSocketName;
  }
  memcpy(a.addr.sun_path, path.c_str(), path.size() + 1);
  return Status::Ok();
}

bool write_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n) {
    ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= size_t(w);
  }
  return true;
}

// deadline_ms: a steady-clock time in ms by which the bytes must have arrived (0: none).
int64_t steady_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool read_all(int fd, void* p, size_t n, int64_t deadline_ms = 0) {
  char* c = static_cast<char*>(p);
  while (n) {
    if (deadline_ms) {
      const int64_t left = deadline_ms - steady_ms();
      pollfd q{fd, POLLIN, 0};
      if (left <= 0 || poll(&q, 1, int(left)) == 0) return false;
    }
    ssize_t r = recv(fd, c, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    c += r;
    n -= size_t(r);
  }
  return true;
}

bool read_u32(int fd, uint32_t& v, int64_t deadline_ms = 0) {
  unsigned char b[4];
  if (!read_all(fd, b, 4, deadline_ms)) return false;
  v = uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
  return true;
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}

Result<std::vector<std::string>> read_request(int fd) {
  const int64_t deadline = steady_ms() + kRequestDeadlineMs;
  uint32_t count = 0, total = 0;
  if (!read_u32(fd, count, deadline) || count == 0 || count > kMaxFields)
    return Status::Error(EPROTO, "malformed request");
  std::vector<std::string> fields;
  fields.reserve(std::min<uint32_t>(count, 1024));
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t len = 0;
    if (!read_u32(fd, len, deadline) || len > kMaxRequestBytes - total) return Status::Error(EPROTO, "malformed request");
    total += len;
    std::string& f = fields.emplace_back(len, '\0');
    if (len && !read_all(fd, f.data(), len, deadline)) return Status::Error(EPROTO, "truncated request");
  }
  return fields;
}

}  // namespace

ControlServer::ControlServer(std::string store_dir, Handler handler)
    : dir_(std::move(store_dir)), handler_(std::move(handler)) {}

ControlServer::~ControlServer() {
  if (thread_.joinable()) {
    char b = 0;
    ssize_t w = write(stop_pipe_[1], &b, 1);
    (void)w;
    thread_.join();
  }
  for (int fd : {listen_fd_, stop_pipe_[0], stop_pipe_[1]})
    if (fd >= 0) close(fd);
  if (listen_fd_ >= 0) unlink((dir_ + "/" + kControlSocketName).c_str());
}

Status ControlServer::start() {
  SocketAddress a;
  DZ_RETURN_IF_ERROR(address_of(dir_, a));
  // A socket file left by a daemon that died: we hold the store's lock, so nobody serves it.
  unlink((dir_ + "/" + kControlSocketName).c_str());
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Status::Error(errno, std::string("socket: ") + strerror(errno));
  const mode_t old = umask(0177);  // the socket is created 0600: its permission is the first gate
  int rc = bind(listen_fd_, reinterpret_cast<sockaddr*>(&a.addr), sizeof a.addr);
  umask(old);
  if (rc != 0 || listen(listen_fd_, 8) != 0)
    return Status::Error(errno, "cannot listen on " + dir_ + "/" + kControlSocketName + ": " + strerror(errno));
  if (pipe2(stop_pipe_, O_CLOEXEC) != 0) return Status::Error(errno, "pipe failed");
  thread_ = std::thread([this] { serve(); });
  return Status::Ok();
}

void ControlServer::serve() {
  for (;;) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents) return;
    if (!(p[0].revents & POLLIN)) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    answer(fd);
    close(fd);
  }
}

void ControlServer::answer(int fd) {
  timeval tv{10, 0};  // a client that stops reading the reply must not block the socket
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::pair<int, std::string> reply;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || (cred.uid != 0 && cred.uid != geteuid())) {
    reply = {EPERM, "only root or the mount's owner may change a mounted volume"};
  } else if (auto req = read_request(fd); !req.ok()) {
    reply = {req.status().code(), req.status().message()};
  } else {
    reply = handler_(*req);
  }
  std::string out;
  put_u32(out, uint32_t(reply.first));
  put_u32(out, uint32_t(reply.second.size()));
  out += reply.second;
  if (!write_all(fd, out.data(), out.size())) log_error("control socket: the client left before the reply");
}

Result<std::string> control_request(const std::string& store_dir, const std::vector<std::string>& request) {
  SocketAddress a;
  DZ_RETURN_IF_ERROR(address_of(store_dir, a));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Error(errno, std::string("socket: ") + strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  if (connect(fd, reinterpret_cast<sockaddr*>(&a.addr), sizeof a.addr) != 0)
    return Status::Error(errno, "cannot reach the mount daemon of " + store_dir + " (" + strerror(errno) +
                                    "): is it mounted by a dzfs that has snapshots?");
  size_t bytes = 0;
  for (const std::string& f : request) bytes += f.size();
  if (request.empty() || request.size() > kMaxFields || bytes > kMaxRequestBytes)
    return Status::Error(E2BIG, "request too large for the mount daemon (" + std::to_string(request.size()) +
                                    " fields, " + std::to_string(bytes) + " bytes): give fewer names at a time");
  std::string out;
  put_u32(out, uint32_t(request.size()));
  for (const std::string& f : request) {
    put_u32(out, uint32_t(f.size()));
    out += f;
  }
  if (!write_all(fd, out.data(), out.size())) return Status::Error(EPIPE, "the mount daemon closed the connection");
  shutdown(fd, SHUT_WR);
  uint32_t code = 0, n = 0;
  if (!read_u32(fd, code) || !read_u32(fd, n) || n > kMaxRequestBytes)
    return Status::Error(EPROTO, "no reply from the mount daemon (did it exit?)");
  std::string msg(n, '\0');
  if (n && !read_all(fd, msg.data(), n)) return Status::Error(EPROTO, "truncated reply from the mount daemon");
  if (code != 0) return Status::Error(int(code), msg);
  return msg;
}

}  // namespace dzfs
