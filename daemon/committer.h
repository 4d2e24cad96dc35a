// The commit timer: every few seconds, makes what the volume has applied durable (packs synced,
// index committed). Files still open for writing are not applied by it, so a commit never
// captures a file half-written: each file is in its old or its new state.
#pragma once
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "index/status.h"

namespace dzfs {

class Committer {
 public:
  Committer(std::function<Status()> commit, int interval_secs);
  ~Committer();  // stops the thread (no final commit: the owner commits at unmount)

 private:
  void run();
  std::function<Status()> commit_;
  int interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace dzfs
