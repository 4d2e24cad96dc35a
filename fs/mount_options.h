// Every option of `dzfs mount` is parsed here, in one place (the libfuse examples' rule).
#pragma once
#include <string>
#include <vector>

#include "index/status.h"

namespace dzfs {

struct MountOptions {
  std::string store, mountpoint;
  bool foreground = false, debug = false;
  int commit_secs = 5;      // batched index commits
  size_t cache_mb = 256;    // decoded-chunk cache
  size_t group_cache_mb = 448;  // solid groups being decoded (decoders and their bytes)
  size_t group_kb = 0;      // raw KiB of a new group; 0 = the volume's (dzfs.conf group_kb)
  size_t dirty_mb = 64;     // per-file write buffer before forced chunking
  bool writeback = true;    // kernel writeback cache
  int threads = 16;         // FUSE worker threads at most
  int gc_secs = 300;        // background gc pass interval; 0 turns it off
  size_t gc_garbage_mb = 64;  // ... and a pass as soon as this much garbage is in the packs
  int workers = -1;         // recompression threads; -1 = one less than the CPUs (at least 1)
  int settle_secs = 10;     // age of a chunk before it is recompressed
  bool neural = true;       // codec=auto (zstd now, neural in the background) or codec=zstd
  enum class Gpu { kAuto, kOn, kOff } gpu = Gpu::kAuto;  // the GPU codec backend (this build: none)
  size_t autotrain_mb = 0;  // train a volume model after this much new data; 0 = never
  std::vector<std::string> fuse_opts;  // passed on to libfuse / the kernel mount
};

// Parses `-o a,b=c` option strings into `out`. Unknown options are an error naming them.
Status parse_mount_option_list(const std::string& list, MountOptions& out);
// Parses `STORE MNT [-f] [-d] [-o opts]...` (the words after `dzfs mount`, or mount.fuse3's call).
Result<MountOptions> parse_mount_args(const std::vector<std::string>& args);

}  // namespace dzfs
