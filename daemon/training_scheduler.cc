// Training scheduler of a mount: see training_scheduler.h.
#include "daemon/training_scheduler.h"

#include <signal.h>
#include <sys/wait.h>
#include <cstdlib>
#include <unistd.h>

#include "daemon/model_inbox.h"
#include "index/log.h"

namespace dzfs {

TrainingScheduler::~TrainingScheduler() {
  if (child_ > 0) {
    kill(-child_, SIGTERM);
    reap(true);
  }
}

void TrainingScheduler::reap(bool wait) {
  if (child_ <= 0) return;
  int status = 0;
  pid_t r = waitpid(child_, &status, wait ? 0 : WNOHANG);
  if (r == 0) return;
  if (r == child_ && !(WIFEXITED(status) && WEXITSTATUS(status) == 0) && !wait)
    log_error("autotrain: the training process failed (" +
              (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                 : "signal " + std::to_string(WTERMSIG(status))) +
              "); it is tried again after as much new data");
  child_ = -1;
}

Status TrainingScheduler::tick() {
  reap(false);
  auto applied = apply_adoptions(store_);
  if (!applied.ok()) return applied.status();
  if (opts_.autotrain_bytes == 0 || child_ > 0 || ++ticks_ % opts_.check_every_ticks != 1) return Status::Ok();
  return maybe_start_training();
}

Status TrainingScheduler::init() {
  if (opts_.autotrain_bytes == 0) return Status::Ok();
  std::lock_guard<std::mutex> g(store_.index.mu);
  return store_.index.db->exec(
      "INSERT OR IGNORE INTO meta(key, value) SELECT 'autotrain_at_bytes', COALESCE(SUM(raw_len), 0) FROM chunks "
      "WHERE refcount > 0");
}

Status TrainingScheduler::maybe_start_training() {
  uint64_t unique = 0, mark = 0;
  {
    std::lock_guard<std::mutex> g(store_.index.mu);
    Stmt s = store_.index.db->prepare("SELECT COALESCE(SUM(raw_len), 0) FROM chunks WHERE refcount > 0");
    if (s.step()) unique = uint64_t(s.i64(0));
    DZ_RETURN_IF_ERROR(s.done_status());
    Stmt m = store_.index.db->prepare("SELECT value FROM meta WHERE key = 'autotrain_at_bytes'");
    if (m.step()) mark = strtoull(m.blob(0).c_str(), nullptr, 10);
    DZ_RETURN_IF_ERROR(m.done_status());
    if (unique < mark + opts_.autotrain_bytes) return Status::Ok();
    Stmt u = store_.index.db->prepare("INSERT OR REPLACE INTO meta(key, value) VALUES ('autotrain_at_bytes', ?)");
    u.bind_text(1, std::to_string(unique));
    DZ_RETURN_IF_ERROR(u.run());
  }
  pid_t pid = fork();
  if (pid < 0) return Status::Error(errno, "autotrain: fork failed");
  if (pid == 0) {  // only async-signal-safe calls until exec
    setpgid(0, 0);
    close_range(3, ~0u, 0);  // not the FUSE device nor the index
    execl(opts_.dzfs_binary.c_str(), "dzfs", "train", store_.dir.c_str(), "--auto", static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(pid, pid);
  child_ = pid;
  log_info("autotrain: " + std::to_string((unique - mark) >> 20) + " MiB of new data; training a volume model (pid " +
           std::to_string(pid) + ")");
  return Status::Ok();
}

}  // namespace dzfs
