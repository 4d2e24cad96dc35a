// Mount option parsing: see mount_options.h.
#include "fs/mount_options.h"

#include <charconv>
#include <set>
#include <sstream>

namespace dzfs {

static bool parse_int(const std::string& s, long lo, long hi, long& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out >= lo && out <= hi;
}

Status parse_mount_option_list(const std::string& list, MountOptions& o) {
  // Options the kernel or libfuse understand, passed through as they are.
  static const std::set<std::string> kFuse = {
      "allow_other", "allow_root", "default_permissions", "ro", "rw", "auto_unmount", "suid", "nosuid",
      "dev", "nodev", "exec", "noexec", "atime", "noatime", "sync", "async", "dirsync"};
  // fstab and mount(8) bookkeeping that means nothing to us; and kernel flags that libfuse 3.14
  // refuses ("unknown option") although mount(8) passes them on: atime variants (a FUSE mount is
  // relatime unless noatime), lazytime, iversion, mand, silent/loud. nosymfollow stays an error.
  static const std::set<std::string> kIgnored = {
      "defaults", "auto", "noauto", "user", "nouser", "users", "_netdev", "nofail", "owner", "group",
      "relatime", "norelatime", "strictatime", "nostrictatime", "diratime", "nodiratime", "lazytime",
      "nolazytime", "iversion", "noiversion", "mand", "nomand", "silent", "loud"};
  std::stringstream in(list);
  std::string opt;
  while (std::getline(in, opt, ',')) {
    if (opt.empty() || kIgnored.count(opt) || opt.rfind("x-", 0) == 0 || opt.rfind("comment=", 0) == 0) continue;
    auto eq = opt.find('=');
    std::string key = opt.substr(0, eq), val = eq == std::string::npos ? "" : opt.substr(eq + 1);
    long n = 0;
    auto need = [&](long lo, long hi) -> Status {
      if (eq == std::string::npos || !parse_int(val, lo, hi, n))
        return Status::Error(EINVAL, "mount option " + key + " needs a number in " + std::to_string(lo) + ".." +
                                         std::to_string(hi) + " (got '" + opt + "')");
      return Status::Ok();
    };
    if (eq == std::string::npos && kFuse.count(key)) { o.fuse_opts.push_back(key); continue; }
    if (key == "commit_secs") { DZ_RETURN_IF_ERROR(need(1, 3600)); o.commit_secs = int(n); }
    else if (key == "cache_mb") { DZ_RETURN_IF_ERROR(need(1, 1 << 20)); o.cache_mb = size_t(n); }
    else if (key == "group_cache_mb") { DZ_RETURN_IF_ERROR(need(16, 1 << 20)); o.group_cache_mb = size_t(n); }
    else if (key == "group_kb") { DZ_RETURN_IF_ERROR(need(64, 65536)); o.group_kb = size_t(n); }
    else if (key == "dirty_mb") { DZ_RETURN_IF_ERROR(need(4, 1 << 16)); o.dirty_mb = size_t(n); }
    else if (key == "gc_secs") { DZ_RETURN_IF_ERROR(need(0, 86400)); o.gc_secs = int(n); }
    else if (key == "gc_garbage_mb") { DZ_RETURN_IF_ERROR(need(1, 1 << 20)); o.gc_garbage_mb = size_t(n); }
    else if (key == "workers") { DZ_RETURN_IF_ERROR(need(0, 256)); o.workers = int(n); }
    else if (key == "settle_secs") { DZ_RETURN_IF_ERROR(need(0, 86400)); o.settle_secs = int(n); }
    else if (key == "codec") {
      if (val == "auto" || val == "neural") o.neural = true;
      else if (val == "zstd") o.neural = false;
      else return Status::Error(EINVAL, "mount option codec must be auto, neural or zstd (got '" + val + "')");
    }
    else if (key == "gpu") {
      if (val == "auto") o.gpu = MountOptions::Gpu::kAuto;
      else if (val == "on") o.gpu = MountOptions::Gpu::kOn;
      else if (val == "off") o.gpu = MountOptions::Gpu::kOff;
      else return Status::Error(EINVAL, "mount option gpu must be auto, on or off (got '" + val + "')");
    }
    else if (key == "autotrain_mb") { DZ_RETURN_IF_ERROR(need(0, 1L << 30)); o.autotrain_mb = size_t(n); }
    else if (key == "threads") { DZ_RETURN_IF_ERROR(need(1, 256)); o.threads = int(n); }
    else if (key == "writeback") { DZ_RETURN_IF_ERROR(need(0, 1)); o.writeback = n != 0; }
    else if (key == "max_read") { DZ_RETURN_IF_ERROR(need(4096, 1 << 20)); o.fuse_opts.push_back(opt); }
    else if (key == "debug" && eq == std::string::npos) o.debug = true;
    else if (key == "fsname" || key == "subtype") continue;  // we set these ourselves
    else return Status::Error(EINVAL, "unknown mount option '" + opt + "' (see dzfs help mount)");
  }
  return Status::Ok();
}

Result<MountOptions> parse_mount_args(const std::vector<std::string>& args) {
  MountOptions o;
  std::vector<std::string> pos;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-f") o.foreground = true;
    else if (a == "-d") o.foreground = o.debug = true;
    else if (a == "-o") {
      if (i + 1 >= args.size()) return Status::Error(EINVAL, "-o needs an option list");
      DZ_RETURN_IF_ERROR(parse_mount_option_list(args[++i], o));
    } else if (a.rfind("-o", 0) == 0) {
      DZ_RETURN_IF_ERROR(parse_mount_option_list(a.substr(2), o));
    } else if (!a.empty() && a[0] == '-') {
      return Status::Error(EINVAL, "unknown argument '" + a + "' (see dzfs help mount)");
    } else {
      pos.push_back(a);
    }
  }
  if (pos.size() != 2) return Status::Error(EINVAL, "usage: dzfs mount STORE MOUNTPOINT [-f] [-o opt,...]");
  o.store = pos[0];
  o.mountpoint = pos[1];
  return o;
}

}  // namespace dzfs
