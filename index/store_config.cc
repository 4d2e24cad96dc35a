// dzfs.conf reading and writing: see store_config.h.
#include "index/store_config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

namespace dzfs {

static bool parse_u64(const std::string& s, uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

Status StoreConfig::validate() const {
  if (chunk_min < 1024 || chunk_max > (16u << 20) || !(chunk_min < chunk_avg && chunk_avg < chunk_max))
    return Status::Error(EINVAL, "chunk sizes must satisfy 1 KiB <= min < avg < max <= 16 MiB");
  if ((chunk_avg & (chunk_avg - 1)) != 0)
    return Status::Error(EINVAL, "chunk-avg must be a power of two");
  if (zstd_level < 1 || zstd_level > 22) return Status::Error(EINVAL, "zstd level must be 1..22");
  if (group_kb < 64 || group_kb > 65536) return Status::Error(EINVAL, "group size must be 64..65536 KiB");
  return Status::Ok();
}

std::string StoreConfig::to_text() const {
  std::ostringstream o;
  o << "# dzfs volume configuration; written by dzfs mkfs, do not edit.\n"
    << "format_version = " << format_version << "\n"
    << "uuid = " << uuid << "\n"
    << "chunk_min = " << chunk_min << "\n"
    << "chunk_avg = " << chunk_avg << "\n"
    << "chunk_max = " << chunk_max << "\n"
    << "zstd_level = " << zstd_level << "\n"
    << "verify_dedup = " << (verify_dedup ? 1 : 0) << "\n"
    << "group_kb = " << group_kb << "\n";
  return o.str();
}

Result<StoreConfig> StoreConfig::parse(const std::string& text) {
  StoreConfig c;
  c.format_version = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) return Status::Error(EINVAL, "dzfs.conf: bad line: " + line);
    auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(" \t"));
      s.erase(s.find_last_not_of(" \t\r") + 1);
      return s;
    };
    std::string k = trim(line.substr(0, eq)), v = trim(line.substr(eq + 1));
    uint64_t n = 0;
    bool num = parse_u64(v, n) && n <= 0xffffffffu;
    if (k == "uuid") { c.uuid = v; continue; }
    static const char* kNumeric[] = {"format_version", "chunk_min", "chunk_avg", "chunk_max", "zstd_level", "verify_dedup", "group_kb"};
    bool known = std::find(std::begin(kNumeric), std::end(kNumeric), k) != std::end(kNumeric);
    if (known && !num) return Status::Error(EINVAL, "dzfs.conf: " + k + " is not a number: " + v);
    if (k == "format_version") c.format_version = int(n);
    else if (k == "chunk_min") c.chunk_min = uint32_t(n);
    else if (k == "chunk_avg") c.chunk_avg = uint32_t(n);
    else if (k == "chunk_max") c.chunk_max = uint32_t(n);
    else if (k == "zstd_level") c.zstd_level = int(n);
    else if (k == "verify_dedup") c.verify_dedup = n != 0;
    else if (k == "group_kb") c.group_kb = uint32_t(n);  // absent in volumes made before groups
    // Unknown keys are kept forward-compatible only within a format version: ignore them.
  }
  if (c.format_version == 0) return Status::Error(EINVAL, "dzfs.conf has no format_version");
  if (c.format_version > kFormatVersion)
    return Status::Error(EPROTO, "volume format version " + std::to_string(c.format_version) +
                                     " is newer than this dzfs supports (" +
                                     std::to_string(kFormatVersion) + "); upgrade dzfs");
  DZ_RETURN_IF_ERROR(c.validate());
  return c;
}

Result<StoreConfig> StoreConfig::load(const std::string& dir) {
  std::ifstream f(dir + "/dzfs.conf");
  if (!f) return Status::Error(ENOENT, dir + " is not a dzfs volume (no dzfs.conf); make one with dzfs mkfs");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse(ss.str());
}

Status StoreConfig::save(const std::string& dir) const {
  std::string tmp = dir + "/dzfs.conf.tmp", text = to_text();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Error(errno, "cannot write " + tmp);
  bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), (dir + "/dzfs.conf").c_str()) != 0)
    return Status::Error(errno ? errno : EIO, "cannot write " + dir + "/dzfs.conf");
  return Status::Ok();
}

}  // namespace dzfs
