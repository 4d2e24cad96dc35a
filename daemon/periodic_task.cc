// Periodic background task: see periodic_task.h.
#include "daemon/periodic_task.h"

#include <chrono>

#include "index/log.h"

namespace dzfs {

PeriodicTask::PeriodicTask(std::string name, std::function<Status()> task, int interval_secs)
    : name_(std::move(name)), task_(std::move(task)), interval_(interval_secs), thread_([this] { run(); }) {}

PeriodicTask::~PeriodicTask() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void PeriodicTask::run() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    cv_.wait_for(lk, std::chrono::seconds(interval_), [this] { return stop_; });
    if (stop_) break;
    lk.unlock();
    Status s = task_();
    if (!s.ok()) log_error(name_ + " failed: " + s.message());
    lk.lock();
  }
}

}  // namespace dzfs
