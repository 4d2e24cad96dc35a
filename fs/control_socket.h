// The control socket of a mounted volume, STORE/control.sock: how `dzfs snapshot` and `dzfs prune`
// ask the mount daemon, the index's one writer, to change the volume while it is mounted.
//
// A Unix stream socket (mode 0600; only root or the daemon's own user is served, checked by
// SO_PEERCRED). One request per connection: the client sends its fields and shuts down writing;
// the daemon answers with a code (0 or an errno) and a message, and closes. Framing, little-endian:
// request = u32 count, then per field u32 length + bytes (at most 2^20 fields, 64 MiB in all, all
// within 5 s of the connection); reply = i32 code, u32 length + message. Requests are served one
// at a time.
#pragma once
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "index/status.h"

namespace dzfs {

inline constexpr const char* kControlSocketName = "control.sock";

class ControlServer {
 public:
  using Handler = std::function<std::pair<int, std::string>(const std::vector<std::string>& request)>;
  ControlServer(std::string store_dir, Handler handler);
  ~ControlServer();  // stops serving and removes the socket
  Status start();

 private:
  void serve();
  void answer(int fd);

  std::string dir_;
  Handler handler_;
  int listen_fd_ = -1, stop_pipe_[2] = {-1, -1};
  std::thread thread_;
};

// Sends one request to the daemon of the volume in store_dir; its message, or its error.
Result<std::string> control_request(const std::string& store_dir, const std::vector<std::string>& request);

}  // namespace dzfs
