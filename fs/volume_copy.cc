// Volume::copy_range: copy_file_range(2) between files of the volume without copying data. The
// destination's extents come to name the source's chunks (FileState::copy_from), so a copy of a
// large file costs index rows, not chunk bytes. The two files stay independent: a later write to
// either re-chunks only that file's own extents.
#include <mutex>

#include "fs/volume.h"

namespace dzfs {

// copy_file_range(2)'s errors for what is not a regular file: EISDIR for a directory, EINVAL
// for anything else (the kernel checks too; this keeps the Volume API honest on its own).
static Status check_regular(const struct stat& st) {
  if (S_ISDIR(st.st_mode)) return Status::Error(EISDIR, "is a directory");
  if (!S_ISREG(st.st_mode)) return Status::Error(EINVAL, "not a regular file");
  return Status::Ok();
}

Status Volume::copy_range(uint64_t ino_in, uint64_t off_in, uint64_t ino_out, uint64_t off_out, uint64_t len,
                          uint64_t& copied) {
  copied = 0;
  {
    std::lock_guard<std::mutex> g(store_.index.mu);
    struct stat in {}, out {};
    DZ_RETURN_IF_ERROR(stat_locked(ino_in, in));
    DZ_RETURN_IF_ERROR(stat_locked(ino_out, out));
    DZ_RETURN_IF_ERROR(check_regular(in));
    DZ_RETURN_IF_ERROR(check_regular(out));
  }
  last_write_ns_.store(now_ns(), std::memory_order_relaxed);
  std::shared_ptr<FileState> src, dst;
  Status s;
  for (int attempt = 0;; ++attempt) {
    DZ_RETURN_IF_ERROR(get_state_loaded(ino_in, src));
    DZ_RETURN_IF_ERROR(get_state_loaded(ino_out, dst));
    // Two FileStates are locked in inode order (one lock when it is one file), then IndexDb::mu
    // inside apply: the documented lock order.
    std::unique_lock<std::mutex> first(ino_in <= ino_out ? src->mu : dst->mu);
    std::unique_lock<std::mutex> second;
    if (src != dst) second = std::unique_lock<std::mutex>(ino_in <= ino_out ? dst->mu : src->mu);
    // A state with no writer and nothing pending may be dropped (and another made) by a close
    // between get_state_loaded and the lock; only the inode's current state is the file.
    if (state_for(ino_in, false) == src && state_for(ino_out, false) == dst) {
      s = dst->copy_from(*src, off_in, off_out, len, now_ns(), store_.index, copied);
      break;
    }
    if (attempt == 8) return Status::Error(EAGAIN, "copy: the files' states kept being replaced");
  }
  // States made just for this copy (no writer, nothing pending) are not kept.
  maybe_drop_state(ino_in, src);
  if (dst != src) maybe_drop_state(ino_out, dst);
  return s;
}

}  // namespace dzfs
