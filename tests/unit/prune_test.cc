// The prune planner against borg 1.2's documented behaviour: docs/misc/prune-example.txt, the
// examples of docs/usage/prune.rst, borg's own prune_split/prune_within/interval test cases
// (src/borg/testsuite/helpers.py), plus a two-year hourly calendar, ties, prefixes, local time,
// the listing, and the command-line parser.
#include "index/prune.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <time.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace dzfs {
namespace {

constexpr int64_t kSec = 1000000000;

// UTC calendar time -> ns.
int64_t utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return int64_t(timegm(&tm)) * kSec;
}

std::string day_name(int64_t ns) {
  time_t t = ns / kSec;
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

// One snapshot a day at 10:00 UTC from `from` to `to` (inclusive), named by its date.
std::vector<PruneItem> daily_items(int64_t from, int64_t to, const std::set<std::string>& skip = {}) {
  std::vector<PruneItem> v;
  for (int64_t t = from; t <= to; t += 86400 * kSec)
    if (!skip.count(day_name(t))) v.push_back({day_name(t), t + 10 * 3600 * kSec});
  return v;
}

// name -> reason of the kept ones.
std::map<std::string, std::string> kept(const std::vector<PruneVerdict>& v) {
  std::map<std::string, std::string> out;
  for (const auto& x : v)
    if (x.keep) out[x.name] = x.reason;
  return out;
}

std::vector<PruneVerdict> plan(const std::vector<PruneItem>& items, const PruneRules& r, int64_t now) {
  auto res = plan_prune(items, r, now);
  EXPECT_TRUE(res.ok()) << res.status().message();
  return res.ok() ? *res : std::vector<PruneVerdict>{};
}

class PruneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tz = getenv("TZ");
    had_tz_ = tz != nullptr;
    if (tz) old_tz_ = tz;
    set_tz("UTC");
  }
  void TearDown() override {
    if (had_tz_) setenv("TZ", old_tz_.c_str(), 1);
    else unsetenv("TZ");
    tzset();
  }
  static void set_tz(const char* tz) {
    setenv("TZ", tz, 1);
    tzset();
  }
  bool had_tz_ = false;
  std::string old_tz_;
};

// docs/misc/prune-example.txt: a backup every day of 2015 except 2015-12-19, pruned on
// 2016-01-01 with --keep-daily 14 --keep-monthly 6 --keep-yearly 1.
TEST_F(PruneTest, BorgPruneExampleCalendar) {
  auto items = daily_items(utc(2015, 1, 1), utc(2015, 12, 31), {"2015-12-19"});
  ASSERT_EQ(items.size(), 364u);
  PruneRules r;
  r.daily = 14;
  r.monthly = 6;
  r.yearly = 1;
  auto v = plan(items, r, utc(2016, 1, 1));
  std::map<std::string, std::string> want = {
      {"2015-12-31", "daily #1"},   {"2015-12-30", "daily #2"},   {"2015-12-29", "daily #3"},
      {"2015-12-28", "daily #4"},   {"2015-12-27", "daily #5"},   {"2015-12-26", "daily #6"},
      {"2015-12-25", "daily #7"},   {"2015-12-24", "daily #8"},   {"2015-12-23", "daily #9"},
      {"2015-12-22", "daily #10"},  {"2015-12-21", "daily #11"},  {"2015-12-20", "daily #12"},
      {"2015-12-18", "daily #13"},  {"2015-12-17", "daily #14"},  {"2015-11-30", "monthly #1"},
      {"2015-10-31", "monthly #2"}, {"2015-09-30", "monthly #3"}, {"2015-08-31", "monthly #4"},
      {"2015-07-31", "monthly #5"}, {"2015-06-30", "monthly #6"}, {"2015-01-01", "yearly[oldest] #1"},
  };
  EXPECT_EQ(kept(v), want);
  ASSERT_EQ(v.size(), 364u);
  EXPECT_EQ(v.front().name, "2015-12-31") << "newest first";
  EXPECT_EQ(v.back().name, "2015-01-01");
  for (const auto& x : v)
    if (!x.keep) { EXPECT_EQ(x.reason, "") << x.name; }
}

// docs/usage/prune.rst: --keep-daily=7 --keep-weekly=4, daily backups ending on a Wednesday.
TEST_F(PruneTest, BorgUsageDailyWeekly) {
  auto items = daily_items(utc(2024, 1, 1), utc(2024, 3, 27));
  PruneRules r;
  r.daily = 7;
  r.weekly = 4;
  auto v = plan(items, r, utc(2024, 3, 27, 12));
  // Daily keeps Mar 21..27. Week 13 (Mar 25..) and week 12 (..Mar 24) have their newest kept by
  // daily, so they are used up; weekly keeps the Sundays of weeks 11, 10, 9, 8.
  std::map<std::string, std::string> want = {
      {"2024-03-27", "daily #1"},  {"2024-03-26", "daily #2"},  {"2024-03-25", "daily #3"},
      {"2024-03-24", "daily #4"},  {"2024-03-23", "daily #5"},  {"2024-03-22", "daily #6"},
      {"2024-03-21", "daily #7"},  {"2024-03-17", "weekly #1"}, {"2024-03-10", "weekly #2"},
      {"2024-03-03", "weekly #3"}, {"2024-02-25", "weekly #4"},
  };
  EXPECT_EQ(kept(v), want);

  // ... and an end of month archive for every month (--keep-monthly=-1): unlimited, so no
  // [oldest] even though 2024-01-01 is not kept.
  r.monthly = -1;
  want["2024-02-29"] = "monthly #1";
  want["2024-01-31"] = "monthly #2";
  EXPECT_EQ(kept(plan(items, r, utc(2024, 3, 27, 12))), want);
}

// docs/usage/prune.rst: --keep-within=10d --keep-weekly=4 --keep-monthly=-1.
TEST_F(PruneTest, BorgUsageWithinWeeklyMonthly) {
  auto items = daily_items(utc(2024, 1, 1), utc(2024, 3, 27));
  PruneRules r;
  auto w = parse_interval("10d");
  ASSERT_TRUE(w.ok());
  r.within_ns = *w;
  r.weekly = 4;
  r.monthly = -1;
  // now = Mar 27 12:00: the cutoff is Mar 17 12:00, so Mar 18..27 (10:00) are within.
  auto v = plan(items, r, utc(2024, 3, 27, 12));
  std::map<std::string, std::string> want;
  for (int d = 27, n = 1; d >= 18; --d, ++n) want["2024-03-" + std::to_string(d)] = "within #" + std::to_string(n);
  want["2024-03-17"] = "weekly #1";
  want["2024-03-10"] = "weekly #2";
  want["2024-03-03"] = "weekly #3";
  want["2024-02-25"] = "weekly #4";
  want["2024-02-29"] = "monthly #1";
  want["2024-01-31"] = "monthly #2";
  EXPECT_EQ(kept(v), want);
}

// borg's test_prune_split, rule by rule (each alone).
TEST_F(PruneTest, BorgPruneSplitCases) {
  std::vector<PruneItem> items = {
      {"1", utc(2015, 1, 1, 10)},         {"2", utc(2016, 1, 1, 10)},         {"3", utc(2017, 1, 1, 10)},
      {"4", utc(2017, 2, 1, 10)},         {"5", utc(2017, 3, 1, 10)},         {"6", utc(2017, 3, 2, 10)},
      {"7", utc(2017, 3, 3, 10)},         {"8", utc(2017, 3, 4, 10)},         {"9", utc(2017, 10, 1, 9, 45)},
      {"10", utc(2017, 10, 1, 9, 55)},    {"11", utc(2017, 10, 1, 10, 0, 1)}, {"12", utc(2017, 10, 1, 10, 0, 3)},
      {"13", utc(2017, 10, 1, 10, 0, 5)},
  };
  struct Case {
    int PruneRules::*rule;
    const char* name;
    int n;
    std::set<std::string> want;
  };
  const Case cases[] = {
      {&PruneRules::yearly, "yearly", 3, {"13", "2", "1"}},
      {&PruneRules::monthly, "monthly", 3, {"13", "8", "4"}},
      {&PruneRules::weekly, "weekly", 2, {"13", "8"}},
      {&PruneRules::daily, "daily", 3, {"13", "8", "7"}},
      {&PruneRules::hourly, "hourly", 3, {"13", "10", "8"}},
      {&PruneRules::minutely, "minutely", 3, {"13", "10", "9"}},
      {&PruneRules::secondly, "secondly", 4, {"13", "12", "11", "10"}},
      {&PruneRules::last, "secondly", 4, {"13", "12", "11", "10"}},  // --keep-last is --keep-secondly
  };
  for (const Case& c : cases) {
    PruneRules r;
    r.*(c.rule) = c.n;
    std::set<std::string> got;
    for (const auto& x : plan(items, r, utc(2018, 1, 1)))
      if (x.keep) {
        got.insert(x.name);
        EXPECT_EQ(x.rule, c.name) << x.name;
      }
    EXPECT_EQ(got, c.want) << c.name << " " << c.n;
  }
}

// borg's test_prune_split_keep_oldest.
TEST_F(PruneTest, KeepsOldestWhenTargetNotReached) {
  std::vector<PruneItem> items = {
      {"1", utc(2018, 1, 1, 10)}, {"2", utc(2018, 12, 30, 10)}, {"3", utc(2018, 12, 31, 10)}, {"4", utc(2019, 12, 31, 10)}};
  PruneRules r;
  r.yearly = 3;
  std::map<std::string, std::string> want = {{"4", "yearly #1"}, {"3", "yearly #2"}, {"1", "yearly[oldest] #3"}};
  EXPECT_EQ(kept(plan(items, r, utc(2020, 1, 1))), want);
  r.yearly = 2;
  want = {{"4", "yearly #1"}, {"3", "yearly #2"}};
  EXPECT_EQ(kept(plan(items, r, utc(2020, 1, 1))), want);
}

// borg's test_prune_within: offsets 1 min, 1.5 h, 2.5 h, 3.5 h, 25 h, 49 h before now.
TEST_F(PruneTest, BorgPruneWithinCases) {
  const int64_t now = utc(2024, 6, 1, 12);
  const int64_t offsets[] = {60, 90 * 60, 150 * 60, 210 * 60, 25 * 3600, 49 * 3600};
  std::vector<PruneItem> items;
  for (int i = 0; i < 6; ++i) items.push_back({std::to_string(i), now - offsets[i] * kSec});
  const std::pair<const char*, int> cases[] = {{"1H", 1},  {"2H", 2},  {"3H", 3}, {"24H", 4}, {"26H", 5}, {"2d", 5},
                                               {"50H", 6}, {"3d", 6},  {"1w", 6}, {"1m", 6},  {"1y", 6}};
  for (auto [within, n] : cases) {
    PruneRules r;
    auto w = parse_interval(within);
    ASSERT_TRUE(w.ok()) << within;
    r.within_ns = *w;
    std::map<std::string, std::string> want;
    for (int i = 0; i < n; ++i) want[std::to_string(i)] = "within #" + std::to_string(i + 1);
    EXPECT_EQ(kept(plan(items, r, now)), want) << within;
  }
  // The cutoff itself is not "within" (borg: ts > now - interval).
  PruneRules r;
  r.within_ns = 3600 * kSec;
  EXPECT_TRUE(kept(plan({{"edge", now - 3600 * kSec}}, r, now)).empty());
}

// Two years of hourly snapshots: counts per rule, the used-up periods, and [oldest] for yearly.
TEST_F(PruneTest, HourlyCalendarOverTwoYears) {
  std::vector<PruneItem> items;
  for (int64_t t = utc(2022, 1, 1); t < utc(2024, 1, 1); t += 3600 * kSec) {
    time_t s = t / kSec;
    struct tm tm {};
    gmtime_r(&s, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H", &tm);
    items.push_back({buf, t});
  }
  ASSERT_EQ(items.size(), 17520u);
  PruneRules r;
  r.hourly = 24;
  r.daily = 7;
  r.weekly = 4;
  r.monthly = 12;
  r.yearly = -1;
  auto v = plan(items, r, utc(2024, 1, 1));
  std::map<std::string, int> per_rule;
  for (const auto& x : v)
    if (x.keep) per_rule[x.rule]++;
  std::map<std::string, int> want_counts = {{"hourly", 24}, {"daily", 7}, {"weekly", 4}, {"monthly", 12}};
  EXPECT_EQ(per_rule, want_counts) << "yearly: both years' newest are already kept; unlimited: no [oldest]";
  auto k = kept(v);
  EXPECT_EQ(k["2023-12-31T00"], "hourly #24");
  EXPECT_EQ(k["2023-12-30T23"], "daily #1");
  EXPECT_EQ(k["2023-12-24T23"], "daily #7");
  // 2023-12-31 is a Sunday (ISO week 52); week 51 ends on Dec 24, kept by daily: used up.
  EXPECT_EQ(k["2023-12-17T23"], "weekly #1");
  EXPECT_EQ(k["2023-11-26T23"], "weekly #4");
  EXPECT_EQ(k["2023-11-30T23"], "monthly #1");
  EXPECT_EQ(k["2022-12-31T23"], "monthly #12");

  r.yearly = 3;  // cannot be met: the oldest snapshot is kept for it
  k = kept(plan(items, r, utc(2024, 1, 1)));
  EXPECT_EQ(k.size(), 48u);
  EXPECT_EQ(k["2022-01-01T00"], "yearly[oldest] #1");
}

TEST_F(PruneTest, IsoWeeksCrossYears) {
  // 2021-01-03 (Sunday) is in ISO week 2020-53; 2021-01-04 starts 2021-01.
  std::vector<PruneItem> items = {
      {"2020-12-28", utc(2020, 12, 28, 10)}, {"2021-01-03", utc(2021, 1, 3, 10)}, {"2021-01-04", utc(2021, 1, 4, 10)}};
  PruneRules r;
  r.weekly = 2;
  std::map<std::string, std::string> want = {{"2021-01-04", "weekly #1"}, {"2021-01-03", "weekly #2"}};
  EXPECT_EQ(kept(plan(items, r, utc(2021, 2, 1))), want);
}

TEST_F(PruneTest, TiesAndSubSecondTimes) {
  const int64_t t = utc(2024, 5, 5, 10);
  // Same ns: the greater name counts as newer (a fixed order; borg's is the listing order).
  std::vector<PruneItem> items = {{"a", t}, {"b", t}};
  PruneRules r;
  r.last = 1;
  auto v = plan(items, r, t);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].name, "b");
  EXPECT_EQ(v[0].reason, "secondly #1");
  EXPECT_FALSE(v[1].keep) << "same second: one period";

  // 10:00:00.0, 10:00:00.5 and 10:00:01: --keep-last 2 keeps :01 and :00.5 (newest of second :00).
  items = {{"x0", t}, {"x5", t + kSec / 2}, {"y", t + kSec}};
  r.last = 2;
  std::map<std::string, std::string> want = {{"y", "secondly #1"}, {"x5", "secondly #2"}};
  EXPECT_EQ(kept(plan(items, r, t)), want);
  r.last = 3;  // only two periods: the oldest is kept for the third
  want["x0"] = "secondly[oldest] #3";
  EXPECT_EQ(kept(plan(items, r, t)), want);
}

TEST_F(PruneTest, PrefixEmptyAndUnlimited) {
  PruneRules r;
  r.daily = 1;
  auto empty = plan_prune({}, r, 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());

  const int64_t t = utc(2024, 1, 10, 10);
  std::vector<PruneItem> items = {{"host-a-1", t}, {"host-a-2", t - 86400 * kSec}, {"host-b-1", t + 60 * kSec},
                                  {"other", t + 120 * kSec}};
  r.prefix = "host-a-";
  auto v = plan(items, r, t);
  ASSERT_EQ(v.size(), 2u) << "only the prefix's snapshots are considered";
  EXPECT_EQ(v[0].name, "host-a-1");
  EXPECT_EQ(v[0].reason, "daily #1");
  EXPECT_FALSE(v[1].keep) << "host-b-1 and other do not count towards the daily total";

  // Unlimited daily: each day's newest, all days; an extra snapshot of the first day is pruned
  // and not kept as [oldest] (borg never applies [oldest] to unlimited rules).
  items.clear();
  for (int d = 1; d <= 10; ++d) items.push_back({"d" + std::to_string(d), utc(2024, 1, d, 12)});
  items.push_back({"d1-early", utc(2024, 1, 1, 6)});
  r = PruneRules();
  r.daily = -1;
  auto k = kept(plan(items, r, utc(2024, 2, 1)));
  EXPECT_EQ(k.size(), 10u);
  EXPECT_EQ(k["d1"], "daily #10");
  EXPECT_FALSE(k.count("d1-early"));
}

TEST_F(PruneTest, PeriodsAreLocalTime) {
  std::vector<PruneItem> items = {
      {"a", utc(2024, 3, 9, 12)}, {"b", utc(2024, 3, 10, 3)}, {"c", utc(2024, 3, 10, 6)}};
  PruneRules r;
  r.daily = 2;
  std::set<std::string> in_utc = {"c", "a"};  // b shares Mar 10 with c
  std::set<std::string> got;
  for (auto& [n, reason] : kept(plan(items, r, utc(2024, 4, 1)))) got.insert(n);
  EXPECT_EQ(got, in_utc);

  set_tz("EST5");  // UTC-5: c is Mar 10 01:00, b is Mar 9 22:00, a is Mar 9 07:00
  got.clear();
  for (auto& [n, reason] : kept(plan(items, r, utc(2024, 4, 1)))) got.insert(n);
  EXPECT_EQ(got, (std::set<std::string>{"c", "b"}));

  // DST: in Berlin 2024-10-27 02:00-03:00 happens twice (00:00-01:00 and 01:00-02:00 UTC). Both
  // 02:30s are hour "2024-10-27 02", one period; 01:30 CEST is the next older hour.
  set_tz("CET-1CEST,M3.5.0,M10.5.0/3");
  items = {{"cest-0130", utc(2024, 10, 26, 23, 30)}, {"cest-0230", utc(2024, 10, 27, 0, 30)},
           {"cet-0230", utc(2024, 10, 27, 1, 30)}};
  r = PruneRules();
  r.hourly = 2;
  std::map<std::string, std::string> want = {{"cet-0230", "hourly #1"}, {"cest-0130", "hourly #2"}};
  EXPECT_EQ(kept(plan(items, r, utc(2024, 11, 1))), want);
}

TEST_F(PruneTest, ListingLines) {
  const int64_t t = utc(2024, 1, 1, 10);  // a Monday
  PruneRules r;
  r.last = 1;
  auto v = plan({{"new", t + kSec}, {"old", t}}, r, t);
  std::string dry = prune_listing(v, true);
  EXPECT_EQ(dry,
            std::string("Keeping snapshot (rule: secondly #1):") + std::string(44 - 37, ' ') + " new" +
                std::string(33, ' ') + " Mon, 2024-01-01 10:00:01\n" + "Would prune:" + std::string(32, ' ') + " old" +
                std::string(33, ' ') + " Mon, 2024-01-01 10:00:00\n");
  std::string real = prune_listing(v, false);
  EXPECT_NE(real.find("\nPruning snapshot (1/1):"), std::string::npos) << real;
  // A name with a newline and invalid UTF-8 stays on its line.
  v = plan({{"bad\nname\xff", t}}, r, t);
  EXPECT_EQ(prune_listing(v).find("bad\\x0aname\\xff"), 44u + 1);
}

TEST_F(PruneTest, ParseInterval) {
  const int64_t h = 3600 * kSec;
  EXPECT_EQ(*parse_interval("1H"), h);
  EXPECT_EQ(*parse_interval("1d"), 24 * h);
  EXPECT_EQ(*parse_interval("1w"), 168 * h);
  EXPECT_EQ(*parse_interval("1m"), 744 * h);
  EXPECT_EQ(*parse_interval("1y"), 8760 * h);
  EXPECT_EQ(*parse_interval("3w"), 3 * 168 * h);
  EXPECT_EQ(*parse_interval("100000y"), INT64_MAX) << "longer than int64 ns: everything";
  EXPECT_EQ(*parse_interval("99999999999999999999999H"), INT64_MAX);
  for (const char* bad : {"", "H", "-1d", "food", "5", "0d", "1M", "1s", "1.5d", " 1d", "1 d", "+1d", "1D"}) {
    auto r = parse_interval(bad);
    EXPECT_FALSE(r.ok()) << "'" << bad << "'";
    if (!r.ok()) { EXPECT_EQ(r.status().code(), EINVAL); }
  }
}

TEST_F(PruneTest, ParseArgs) {
  auto a = parse_prune_args({"--keep-daily", "7", "--keep-weekly=4", "-m", "-1", "/store", "--dry-run", "-P", "host-",
                             "--keep-within", "2d", "-y3", "--list", "-H", "0"});
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->rules.daily, 7);
  EXPECT_EQ(a->rules.weekly, 4);
  EXPECT_EQ(a->rules.monthly, -1);
  EXPECT_EQ(a->rules.yearly, 3);
  EXPECT_EQ(a->rules.hourly, 0);
  EXPECT_EQ(a->rules.within_ns, 48 * 3600 * kSec);
  EXPECT_EQ(a->rules.prefix, "host-");
  EXPECT_TRUE(a->dry_run);
  EXPECT_TRUE(a->list);
  EXPECT_EQ(a->positional, std::vector<std::string>{"/store"});

  // --keep-last and --keep-secondly are one option (borg 1.2): the later wins.
  a = parse_prune_args({"--keep-last", "3", "--keep-secondly", "5", "s"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->rules.secondly, 5);
  EXPECT_EQ(a->rules.last, 0);
  a = parse_prune_args({"--keep-minutely", "2", "-n", "--", "-weird-store"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->positional, std::vector<std::string>{"-weird-store"});

  const std::vector<std::vector<std::string>> bad = {
      {"/store"},                          // no rule
      {"--keep-daily", "0", "/store"},     // 0 is "off": still no rule
      {"--keep-daily", "-2"},              // negative other than -1
      {"--keep-daily", "x"},               // not a number
      {"--keep-daily", "7d"},              // not a number
      {"--keep-daily", ""},                // empty
      {"--keep-daily", "99999999999"},     // out of range
      {"--keep-daily"},                    // missing value
      {"--keep-hourly=", "-d", "1"},       // empty inline value
      {"--keep-within", "3", "-d", "1"},   // bad interval
      {"--bogus", "-d", "1"},              // unknown option
      {"-x", "-d", "1"},                   // unknown short option
  };
  for (const auto& args : bad) {
    auto r = parse_prune_args(args);
    EXPECT_FALSE(r.ok()) << args[0] << (args.size() > 1 ? " " + args[1] : "");
    if (!r.ok()) { EXPECT_EQ(r.status().code(), EINVAL); }
  }
}

TEST_F(PruneTest, PlanRejectsNoRuleAndConflictingLast) {
  std::vector<PruneItem> items = {{"a", 1}};
  auto r = plan_prune(items, PruneRules{}, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), EINVAL);
  PruneRules rules;
  rules.last = 2;
  rules.secondly = 3;
  EXPECT_FALSE(plan_prune(items, rules, 0).ok());
  rules.secondly = 2;  // agreeing is fine
  EXPECT_TRUE(plan_prune(items, rules, 0).ok());
}

}  // namespace
}  // namespace dzfs
