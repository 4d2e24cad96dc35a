// Progress bar / progress lines: see progress.h.
#include "fs/progress.h"

#include <unistd.h>

#include <cstdio>

namespace dzfs {

static std::string clock_text(double s) {
  if (!(s >= 0) || s > 1e7) return "--:--";
  const long t = long(s + 0.5);
  char b[32];
  if (t >= 3600) snprintf(b, sizeof b, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else snprintf(b, sizeof b, "%02ld:%02ld", t / 60, t % 60);
  return b;
}

Progress::Progress(std::string what) : what_(std::move(what)), tty_(isatty(STDERR_FILENO)), start_(Clock::now()) {}

void Progress::update(uint64_t done, uint64_t total) {
  if (finished_) return;
  const auto now = Clock::now();
  const bool end = done >= total;
  const double frac = total ? double(done) / double(total) : 1.0;
  const double el = std::chrono::duration<double>(now - start_).count();
  const double eta = done ? el / double(done) * double(total - (end ? total : done)) : -1;
  if (tty_) {
    if (!end && now - last_ < std::chrono::milliseconds(200)) return;
    const int width = 30, fill = int(width * frac);
    fprintf(stderr, "\r%s [%s%s] %3.0f%% %llu/%llu ETA %s   ", what_.c_str(), std::string(fill, '#').c_str(),
            std::string(width - fill, '.').c_str(), 100 * frac, (unsigned long long)done, (unsigned long long)total,
            clock_text(eta).c_str());
    if (end) fprintf(stderr, "\r%s [%s] 100%% %llu/%llu in %s          \n", what_.c_str(), std::string(width, '#').c_str(),
                     (unsigned long long)done, (unsigned long long)total, clock_text(el).c_str());
  } else {
    const int tenth = int(frac * 10);
    if (!end && tenth == last_tenth_ && now - last_ < std::chrono::seconds(30)) return;
    last_tenth_ = tenth;
    fprintf(stderr, "%s: %llu/%llu (%.0f%%) elapsed %s ETA %s\n", what_.c_str(), (unsigned long long)done,
            (unsigned long long)total, 100 * frac, clock_text(el).c_str(), clock_text(end ? 0 : eta).c_str());
  }
  last_ = now;
  finished_ = end;
}

}  // namespace dzfs
