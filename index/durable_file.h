// Writing a small file so that after a crash it is either absent or complete: a hidden temporary
// in the same directory, fsync, rename over the name, fsync of the directory. Model files and
// model inbox orders are written this way.
#pragma once
#include <sys/types.h>

#include <span>
#include <string>

#include "index/status.h"

namespace dzfs {

Status write_file_durably(const std::string& dir, const std::string& name, std::span<const uint8_t> bytes,
                          mode_t mode);

}  // namespace dzfs
