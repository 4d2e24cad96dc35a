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
  // Both states are held as a writer holds them for the whole copy, so that no close drops one
  // (and another is made) between finding it and using it: a copy that found its state replaced
  // used to retry, and copies and writes on the same files could make every retry fail.
  auto hold = [this](uint64_t ino) {
    std::lock_guard<std::mutex> g(table_mu_);
    auto& r = table_[ino];
    if (!r.state) r.state = std::make_shared<FileState>(ino, store_.chunks, chunker_, opts_.dirty_limit);
    ++r.state->writers;
    return r.state;
  };
  auto release_hold = [this](uint64_t ino, const std::shared_ptr<FileState>& st) {
    {
      std::lock_guard<std::mutex> g(table_mu_);
      --st->writers;
    }
    maybe_drop_state(ino, st);  // a state made just for this copy, with nothing pending, is not kept
  };
  std::shared_ptr<FileState> src = hold(ino_in), dst = hold(ino_out);
  Status s;
  {
    // Two FileStates are locked in inode order (one lock when it is one file), then IndexDb::mu
    // inside load and apply: the documented lock order.
    std::unique_lock<std::mutex> first(ino_in <= ino_out ? src->mu : dst->mu);
    std::unique_lock<std::mutex> second;
    if (src != dst) second = std::unique_lock<std::mutex>(ino_in <= ino_out ? dst->mu : src->mu);
    for (FileState* f : {src.get(), dst.get()}) {
      if (s.ok() && !f->loaded) {
        s = f->load(store_.index);
        f->loaded = s.ok();
      }
    }
    if (s.ok()) s = dst->copy_from(*src, off_in, off_out, len, now_ns(), store_.index, copied);
  }
  release_hold(ino_in, src);
  release_hold(ino_out, dst);
  return s;
}

}  // namespace dzfs
