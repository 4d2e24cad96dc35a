// The mount daemon's side of model adoption and per-volume training. Every tick (a PeriodicTask
// of the mount, every 2 s) it applies pending orders of the model inbox (model_inbox.h), and
// with autotrain on, once a minute it checks how much unique data arrived since the last
// training; past the threshold it starts `dzfs train STORE --auto` as a child process (its own
// process group, idle priority, logging to syslog), whose adoption order it then applies.
//
// Invariant: the daemon is the only writer of a mounted volume's index; a training child only
// reads the store and posts to the inbox. The unique-bytes mark (meta 'autotrain_at_bytes') is
// set at the first mount with autotrain and when a child starts, so a failing training is
// retried only after as much new data again.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>

#include "index/store.h"

namespace dzfs {

struct TrainingSchedulerOptions {
  uint64_t autotrain_bytes = 0;  // new unique bytes that start a training; 0 = never
  std::string dzfs_binary;       // what the child runs (this binary)
  int check_every_ticks = 15;  // 30 s: the check sums the chunk table under the index lock
};

class TrainingScheduler {
 public:
  TrainingScheduler(Store& store, TrainingSchedulerOptions opts) : store_(store), opts_(std::move(opts)) {}
  ~TrainingScheduler();  // stops a running training child (SIGTERM to its group) and reaps it
  // At mount: a volume that never trained counts new data from now on (marks what it holds).
  Status init();
  Status tick();

 private:
  Status maybe_start_training();
  void reap(bool wait);
  Store& store_;
  TrainingSchedulerOptions opts_;
  pid_t child_ = -1;
  int ticks_ = 0;
};

}  // namespace dzfs
