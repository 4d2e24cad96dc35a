// `dzfs mount`: opens the store, mounts it with the libfuse low-level API, serves requests on a
// multi-threaded session loop, commits and closes at unmount. Returns the process exit code.
#pragma once
#include "fs/mount_options.h"

namespace dzfs {

int run_mount(const MountOptions& opts);

}  // namespace dzfs
