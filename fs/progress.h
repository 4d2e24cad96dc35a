// Progress of a long command (fsck, gc, compress, train STORE): on a terminal a bar with
// percentage, counts, rate and ETA, redrawn at most 5 times a second; otherwise a plain line
// every 10% or 30 s, so logs of scripted runs stay short.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace dzfs {

class Progress {
 public:
  explicit Progress(std::string what);
  void update(uint64_t done, uint64_t total);

 private:
  using Clock = std::chrono::steady_clock;
  std::string what_;
  bool tty_;
  Clock::time_point start_, last_{};
  int last_tenth_ = -1;
  bool finished_ = false;
};

}  // namespace dzfs
