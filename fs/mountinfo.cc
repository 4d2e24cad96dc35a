// mountinfo parsing: see mountinfo.h. Fields are octal-escaped (\040 for a space).
#include "fs/mountinfo.h"

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

namespace dzfs {

static std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() + 0 && isdigit(s[i + 1])) {
      out.push_back(char(std::stoi(s.substr(i + 1, 3), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string canonical_path(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) ? std::string(buf) : std::string();
}

bool find_mount(const std::string& path, MountEntry& out) {
  std::string want = canonical_path(path);
  if (want.empty()) want = path;
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  bool found = false;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::vector<std::string> w;
    std::string x;
    while (in >> x) w.push_back(x);
    size_t dash = 0;
    while (dash < w.size() && w[dash] != "-") ++dash;
    if (w.size() < 5 || dash + 2 >= w.size()) continue;
    if (unescape(w[4]) != want) continue;
    out = {unescape(w[dash + 2]), want, w[dash + 1]};
    found = true;  // the last match is the top of a stacked mountpoint
  }
  return found;
}

}  // namespace dzfs
