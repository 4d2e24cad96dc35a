// Reading /proc/self/mountinfo: is a path a mountpoint, and which store is mounted where.
#pragma once
#include <string>

namespace dzfs {

struct MountEntry {
  std::string source, mountpoint, fstype;
};

// The mount whose mountpoint is exactly `path` (canonicalized), if any.
bool find_mount(const std::string& path, MountEntry& out);
std::string canonical_path(const std::string& path);  // realpath, or "" if it does not exist

}  // namespace dzfs
