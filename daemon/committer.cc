// Commit timer: see committer.h.
#include "daemon/committer.h"

#include <chrono>

#include "index/log.h"

namespace dzfs {

Committer::Committer(std::function<Status()> commit, int interval_secs)
    : commit_(std::move(commit)), interval_(interval_secs), thread_([this] { run(); }) {}

Committer::~Committer() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Committer::run() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    cv_.wait_for(lk, std::chrono::seconds(interval_), [this] { return stop_; });
    if (stop_) break;
    lk.unlock();
    Status s = commit_();
    if (!s.ok()) log_error("periodic commit failed: " + s.message());
    lk.lock();
  }
}

}  // namespace dzfs
