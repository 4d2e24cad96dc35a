// The prune planner of `dzfs prune`: which snapshots a retention policy keeps and which it removes.
// Pure functions over (name, time) pairs; the caller lists the snapshots and deletes the pruned ones.
//
// The semantics are borg 1.2's `borg prune` (src/borg/helpers/misc.py prune_within/prune_split and
// the `borg prune` help text, branch 1.2-maint at 1.2.9), on purpose so that a policy people know
// from borg keeps the same snapshots here:
//  - rules are applied in the order within, secondly (= last), minutely, hourly, daily, weekly
//    (ISO 8601 week, strftime %G-%V), monthly, yearly;
//  - each period rule walks the snapshots newest first and keeps the newest snapshot of each period
//    (periods in local time) unless an earlier rule already kept it; a period whose newest
//    snapshot was already kept yields nothing to this rule; it stops after N; N = -1 is unlimited;
//  - a rule that cannot reach N keeps the oldest snapshot (reason "<rule>[oldest]") if no rule
//    kept it (borg >= 1.2.0, commit 943088df2 "Keep oldest archive when retention target is not met");
//  - --keep-within keeps everything newer than now - interval; those do not count for other rules;
//  - --keep-last is borg 1.2's alias of --keep-secondly: one rule, reported as "secondly".
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "index/status.h"

namespace dzfs {

struct PruneItem {
  std::string name;
  int64_t time_ns = 0;  // when the snapshot was taken (UTC nanoseconds since the epoch)
};

struct PruneRules {
  // Number of periods to keep: -1 unlimited, 0 rule off. `last` and `secondly` are one rule
  // (borg 1.2); setting both to different non-zero values is an error.
  int last = 0, secondly = 0, minutely = 0, hourly = 0, daily = 0, weekly = 0, monthly = 0, yearly = 0;
  int64_t within_ns = 0;  // 0: off
  std::string prefix;     // only snapshots whose name starts with it are considered
  bool any() const;       // at least one rule is set
};

struct PruneVerdict {
  std::string name;
  int64_t time_ns = 0;
  bool keep = false;
  std::string reason;  // "within #2", "daily #3", "yearly[oldest] #1"; "" when pruned
  std::string rule;    // the rule alone ("daily", "yearly[oldest]", "within"); "" when pruned
  int rule_index = 0;  // the "#N" of reason
};

// The parsed `dzfs prune` command line.
struct PruneArgs {
  PruneRules rules;
  bool dry_run = false;                 // -n, --dry-run
  bool list = false;                    // --list
  std::vector<std::string> positional;  // STORE|MNT (the caller checks how many)
};

// Parses the flags of `dzfs prune` (args without the command word): --keep-within INTERVAL,
// --keep-last/--keep-secondly N, --keep-minutely N, -H/--keep-hourly N, -d/--keep-daily N,
// -w/--keep-weekly N, -m/--keep-monthly N, -y/--keep-yearly N, -P/--prefix P, -n/--dry-run, --list;
// both "--opt V" and "--opt=V". Errors (EINVAL, a usage error) for unknown options, missing values,
// counts that are not integers or are negative other than -1, bad intervals, and no rule at all.
Result<PruneArgs> parse_prune_args(const std::vector<std::string>& args);

// borg's --keep-within syntax: a positive integer and a unit, H (hour), d (24 H), w (7 d),
// m (31 d), y (365 d). Returns nanoseconds.
Result<int64_t> parse_interval(std::string_view s);

// Applies the rules to the items whose name starts with rules.prefix (the others are not in the
// result: never pruned). Returns those items newest first (equal times: greater name first), each
// with its verdict. Error (EINVAL) when no rule is set or last/secondly disagree.
Result<std::vector<PruneVerdict>> plan_prune(const std::vector<PruneItem>& items, const PruneRules& rules,
                                             int64_t now_ns);

// borg `prune --list` style lines, one per verdict in the given order:
//   "Keeping snapshot (rule: daily #1):           NAME                                 Mon, 2024-01-01 10:00:00"
//   "Would prune:                                 NAME ..."  (dry_run)
//   "Pruning snapshot (1/3):                      NAME ..."  (otherwise)
// Times in local time. Names are printed with control bytes and invalid UTF-8 escaped (\xNN).
std::string prune_listing(const std::vector<PruneVerdict>& verdicts, bool dry_run = true);

}  // namespace dzfs
