// The libfuse low-level operations table, mapping FUSE requests onto a Volume.
#pragma once
#define FUSE_USE_VERSION 314
#include <fuse3/fuse_lowlevel.h>

#include "fs/volume.h"

namespace dzfs {

struct FuseContext {
  Volume* volume = nullptr;
  double timeout = 3600.0;      // entry and attribute cache lifetime: we are the only writer
  bool writeback_cache = true;
};

const fuse_lowlevel_ops* fuse_operations();

}  // namespace dzfs
