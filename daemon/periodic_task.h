// A background thread that runs a task every few seconds until destroyed. A mount runs two:
// the commit timer (makes what the volume has applied durable; files still open for writing are
// not applied by it, so a commit never captures a half-written file) and the background gc pass.
#pragma once
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "index/status.h"

namespace dzfs {

class PeriodicTask {
 public:
  PeriodicTask(std::string name, std::function<Status()> task, int interval_secs);
  ~PeriodicTask();  // stops the thread; a run in progress finishes first

 private:
  void run();
  std::string name_;
  std::function<Status()> task_;
  int interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace dzfs
