// Logging: see log.h. One line per message, written with a single write(2) so threads don't mix.
#include "index/log.h"

#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <ctime>

namespace dzfs {

static std::atomic<int> g_level{int(LogLevel::kInfo)};
static std::atomic<bool> g_syslog{false};

void log_set_level(LogLevel level) { g_level = int(level); }
void log_to_syslog(bool on) {
  if (on) openlog("dzfs", LOG_PID, LOG_DAEMON);
  g_syslog = on;
}

void log_msg(LogLevel level, const std::string& msg) {
  if (int(level) > g_level) return;
  static const char* names[] = {"error", "warning", "info", "debug"};
  if (g_syslog) {
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    syslog(prio[int(level)], "%s", msg.c_str());
    return;
  }
  char ts[32];
  time_t t = time(nullptr);
  struct tm tm {};
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", gmtime_r(&t, &tm));
  std::string line = std::string(ts) + " dzfs " + names[int(level)] + ": " + msg + "\n";
  ssize_t r = ::write(2, line.data(), line.size());
  (void)r;
}

}  // namespace dzfs
