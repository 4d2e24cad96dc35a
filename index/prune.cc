// The prune planner: borg 1.2's retention rules over snapshot (name, time) pairs. See prune.h for
// the semantics and where they come from.
#include "index/prune.h"

#include <time.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <optional>

namespace dzfs {
namespace {

constexpr int64_t kNsPerSec = 1000000000;
constexpr int64_t kNsPerHour = 3600 * kNsPerSec;

// The period rules in borg's order, with borg's strftime patterns (PRUNING_PATTERNS): the period
// of a snapshot is its local time formatted with the pattern, so two snapshots share a period
// exactly when borg would say they do (DST repeats and ISO weeks included).
struct PeriodRule {
  const char* name;
  const char* pattern;
  int PruneRules::*count;
};
constexpr PeriodRule kPeriodRules[] = {
    {"secondly", "%Y-%m-%d %H:%M:%S", &PruneRules::secondly},
    {"minutely", "%Y-%m-%d %H:%M", &PruneRules::minutely},
    {"hourly", "%Y-%m-%d %H", &PruneRules::hourly},
    {"daily", "%Y-%m-%d", &PruneRules::daily},
    {"weekly", "%G-%V", &PruneRules::weekly},
    {"monthly", "%Y-%m", &PruneRules::monthly},
    {"yearly", "%Y", &PruneRules::yearly},
};

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Local time of a snapshot, truncated to the second as Python's time.localtime does (floor).
struct tm local_tm(int64_t ns) {
  time_t t = static_cast<time_t>(floor_div(ns, kNsPerSec));
  struct tm tm {};
  localtime_r(&t, &tm);
  return tm;
}

std::string format_tm(const struct tm& tm, const char* pattern) {
  char buf[96];
  size_t n = strftime(buf, sizeof buf, pattern, &tm);
  return std::string(buf, n);
}

void keep(PruneVerdict& v, const std::string& rule, int index) {
  v.keep = true;
  v.rule = rule;
  v.rule_index = index;
  v.reason = rule + " #" + std::to_string(index);
}

// borg's prune_within: everything strictly newer than now - within.
void apply_within(std::vector<PruneVerdict>& v, int64_t within_ns, int64_t now_ns) {
  if (within_ns <= 0) return;
  const int64_t cutoff = now_ns < INT64_MIN + within_ns ? INT64_MIN : now_ns - within_ns;
  int count = 0;
  for (auto& x : v)
    if (x.time_ns > cutoff) keep(x, "within", ++count);
}

// borg's prune_split over `v` (newest first) for one rule; `tms` holds each item's local time.
// A new period is noticed by comparing with the previous snapshot's period only (as borg does).
void apply_period_rule(std::vector<PruneVerdict>& v, const std::vector<struct tm>& tms, const PeriodRule& r,
                       int n) {
  if (n == 0 || v.empty()) return;
  std::optional<std::string> last;
  int count = 0;
  size_t i = 0;
  for (; i < v.size(); ++i) {
    std::string period = format_tm(tms[i], r.pattern);
    if (last && *last == period) continue;
    last = std::move(period);
    if (v[i].keep) continue;  // this period's newest was kept by an earlier rule: the period is used up
    keep(v[i], r.name, ++count);
    if (count == n) return;
  }
  // The target was not reached: keep the oldest snapshot, unless some rule already keeps it.
  // (borg compares len(keep) < n, which is never true for unlimited rules.)
  PruneVerdict& oldest = v.back();
  if (n > 0 && count < n && !oldest.keep) keep(oldest, std::string(r.name) + "[oldest]", ++count);
}

Status check_rules(const PruneRules& r) {
  if (r.last != 0 && r.secondly != 0 && r.last != r.secondly)
    return Status::Error(EINVAL, "--keep-last and --keep-secondly are the same rule; give one of them");
  if (!r.any())
    return Status::Error(EINVAL,
                         "at least one of --keep-within, --keep-last, --keep-secondly, --keep-minutely, "
                         "--keep-hourly, --keep-daily, --keep-weekly, --keep-monthly or --keep-yearly "
                         "must be given");
  return Status::Ok();
}

// Escapes control bytes, backslash and invalid UTF-8 as \xNN, so a listing line stays one line.
std::string printable(std::string_view s) {
  std::string out;
  static const char* hex = "0123456789abcdef";
  auto esc = [&](unsigned char c) { out += "\\x"; out += hex[c >> 4]; out += hex[c & 15]; };
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') { out += char(c); ++i; continue; }
    size_t n = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    bool ok = n > 0 && c < 0xf5 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    if (ok && n == 3) {  // no overlongs, no surrogates
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
    }
    if (ok && n == 4) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
    }
    if (!ok) { esc(c); ++i; continue; }
    out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

// Pads to `width` characters (UTF-8 code points), as Python's format does.
std::string pad(std::string s, size_t width) {
  size_t chars = 0;
  for (unsigned char c : s) chars += (c & 0xc0) != 0x80;
  if (chars < width) s.append(width - chars, ' ');
  return s;
}

Result<int> parse_count(const std::string& opt, const std::string& v) {
  int n = 0;
  const char* b = v.data();
  const char* e = b + v.size();
  auto [end, ec] = std::from_chars(b, e, n);
  if (v.empty() || ec != std::errc() || end != e)
    return Status::Error(EINVAL, opt + ": '" + v + "' is not an integer");
  if (n < -1) return Status::Error(EINVAL, opt + ": " + v + " is negative; -1 means unlimited, 0 turns the rule off");
  return n;
}

// The option table of `dzfs prune`: long name, short name, and what it sets.
enum class Opt { kWithin, kLast, kSecondly, kMinutely, kHourly, kDaily, kWeekly, kMonthly, kYearly, kPrefix, kDryRun, kList };
struct OptSpec {
  const char* long_name;
  const char* short_name;
  Opt opt;
  bool takes_value;
};
constexpr OptSpec kOpts[] = {
    {"--keep-within", nullptr, Opt::kWithin, true},  {"--keep-last", nullptr, Opt::kLast, true},
    {"--keep-secondly", nullptr, Opt::kSecondly, true}, {"--keep-minutely", nullptr, Opt::kMinutely, true},
    {"--keep-hourly", "-H", Opt::kHourly, true},      {"--keep-daily", "-d", Opt::kDaily, true},
    {"--keep-weekly", "-w", Opt::kWeekly, true},      {"--keep-monthly", "-m", Opt::kMonthly, true},
    {"--keep-yearly", "-y", Opt::kYearly, true},      {"--prefix", "-P", Opt::kPrefix, true},
    {"--dry-run", "-n", Opt::kDryRun, false},         {"--list", nullptr, Opt::kList, false},
};

// Finds the option `arg` names; `inline_value` gets the part after '=' (long) or after the
// letter (short, "-d7"), if any.
const OptSpec* find_opt(const std::string& arg, std::optional<std::string>& inline_value) {
  for (const OptSpec& o : kOpts) {
    std::string_view ln = o.long_name;
    if (arg == ln) return &o;
    if (o.takes_value && arg.size() > ln.size() && arg.compare(0, ln.size(), ln) == 0 && arg[ln.size()] == '=') {
      inline_value = arg.substr(ln.size() + 1);
      return &o;
    }
    if (!o.short_name) continue;
    std::string_view sn = o.short_name;
    if (arg == sn) return &o;
    if (o.takes_value && arg.size() > 2 && arg.compare(0, 2, sn) == 0) {
      inline_value = arg.substr(2);
      return &o;
    }
  }
  return nullptr;
}

Status apply_opt(PruneArgs& a, const OptSpec& o, const std::string& v) {
  PruneRules& r = a.rules;
  auto set_count = [&](int& field) -> Status {
    Result<int> n = parse_count(o.long_name, v);
    if (!n.ok()) return n.status();
    field = *n;
    return Status::Ok();
  };
  switch (o.opt) {
    case Opt::kWithin: {
      Result<int64_t> ns = parse_interval(v);
      if (!ns.ok()) return Status::Error(EINVAL, "--keep-within: " + ns.status().message());
      r.within_ns = *ns;
      return Status::Ok();
    }
    // One rule under two names (borg 1.2: the same argparse dest), so the later one wins.
    case Opt::kLast: r.secondly = 0; return set_count(r.last);
    case Opt::kSecondly: r.last = 0; return set_count(r.secondly);
    case Opt::kMinutely: return set_count(r.minutely);
    case Opt::kHourly: return set_count(r.hourly);
    case Opt::kDaily: return set_count(r.daily);
    case Opt::kWeekly: return set_count(r.weekly);
    case Opt::kMonthly: return set_count(r.monthly);
    case Opt::kYearly: return set_count(r.yearly);
    case Opt::kPrefix: r.prefix = v; return Status::Ok();
    case Opt::kDryRun: a.dry_run = true; return Status::Ok();
    case Opt::kList: a.list = true; return Status::Ok();
  }
  return Status::Ok();
}

}  // namespace

bool PruneRules::any() const {
  return last || secondly || minutely || hourly || daily || weekly || monthly || yearly || within_ns > 0;
}

Result<int64_t> parse_interval(std::string_view s) {
  if (s.empty()) return Status::Error(EINVAL, "empty interval: expected <number><unit>, unit one of H, d, w, m, y");
  int64_t hours_per_unit = 0;
  switch (s.back()) {
    case 'H': hours_per_unit = 1; break;
    case 'd': hours_per_unit = 24; break;
    case 'w': hours_per_unit = 24 * 7; break;
    case 'm': hours_per_unit = 24 * 31; break;  // borg: "1m" is 31 days
    case 'y': hours_per_unit = 24 * 365; break;
    default:
      return Status::Error(EINVAL, "unexpected interval time unit \"" + std::string(1, s.back()) +
                                       "\": expected one of H, d, w, m, y");
  }
  std::string_view num = s.substr(0, s.size() - 1);
  bool digits = !num.empty() && std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; });
  uint64_t n = 0;
  bool big = false;
  for (char c : num) {
    if (!digits) break;
    if (n > (UINT64_MAX - 9) / 10) { big = true; break; }
    n = n * 10 + uint64_t(c - '0');
  }
  if (!digits || (!big && n == 0))
    return Status::Error(EINVAL, "unexpected interval number \"" + std::string(num) +
                                     "\": expected an integer greater than 0");
  // Longer than int64 nanoseconds reach (~292 years) means "everything": saturate.
  const uint64_t max_units = uint64_t(INT64_MAX) / uint64_t(hours_per_unit * kNsPerHour);
  if (big || n > max_units) return INT64_MAX;
  return int64_t(n) * hours_per_unit * kNsPerHour;
}

Result<PruneArgs> parse_prune_args(const std::vector<std::string>& args) {
  PruneArgs a;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      a.positional.push_back(arg);
      continue;
    }
    if (arg == "--") { options_done = true; continue; }
    std::optional<std::string> value;
    const OptSpec* o = find_opt(arg, value);
    if (!o) return Status::Error(EINVAL, "unknown option " + arg);
    if (o->takes_value && !value) {
      if (i + 1 == args.size()) return Status::Error(EINVAL, arg + " needs a value");
      value = args[++i];
    }
    DZ_RETURN_IF_ERROR(apply_opt(a, *o, value.value_or("")));
  }
  DZ_RETURN_IF_ERROR(check_rules(a.rules));
  return a;
}

Result<std::vector<PruneVerdict>> plan_prune(const std::vector<PruneItem>& items, const PruneRules& rules,
                                             int64_t now_ns) {
  DZ_RETURN_IF_ERROR(check_rules(rules));
  std::vector<PruneVerdict> v;
  for (const PruneItem& it : items)
    if (it.name.compare(0, rules.prefix.size(), rules.prefix) == 0) {
      PruneVerdict x;
      x.name = it.name;
      x.time_ns = it.time_ns;
      v.push_back(std::move(x));
    }
  std::sort(v.begin(), v.end(), [](const PruneVerdict& x, const PruneVerdict& y) {
    return x.time_ns != y.time_ns ? x.time_ns > y.time_ns : x.name > y.name;
  });
  tzset();  // localtime_r need not notice a changed TZ by itself
  std::vector<struct tm> tms;
  tms.reserve(v.size());
  for (const auto& x : v) tms.push_back(local_tm(x.time_ns));

  apply_within(v, rules.within_ns, now_ns);
  PruneRules eff = rules;
  if (eff.secondly == 0) eff.secondly = eff.last;
  for (const PeriodRule& r : kPeriodRules) apply_period_rule(v, tms, r, eff.*(r.count));
  return v;
}

std::string prune_listing(const std::vector<PruneVerdict>& verdicts, bool dry_run) {
  tzset();
  size_t to_prune = std::count_if(verdicts.begin(), verdicts.end(), [](const PruneVerdict& x) { return !x.keep; });
  size_t pruned = 0;
  std::string out;
  for (const PruneVerdict& x : verdicts) {
    std::string msg;
    if (x.keep) msg = "Keeping snapshot (rule: " + x.reason + "):";
    else if (dry_run) msg = "Would prune:";
    else msg = "Pruning snapshot (" + std::to_string(++pruned) + "/" + std::to_string(to_prune) + "):";
    out += pad(msg, 44) + " " + pad(printable(x.name), 36) + " " +
           format_tm(local_tm(x.time_ns), "%a, %Y-%m-%d %H:%M:%S") + "\n";
  }
  return out;
}

}  // namespace dzfs
