// The content of one regular file while it is being written: the file's extent map, loaded from
// the index and changed in memory, plus written bytes not yet cut into chunks.
//
// How writes become chunks (the re-chunking rule, also in docs/ARCHITECTURE.md):
//  - Written bytes collect in `dirty` (non-overlapping runs). A run [a, b) is materialized over a
//    region [a', b') widened to existing extent boundaries: a' is the start of the extent holding a
//    (or a itself in a hole, or the start of a short tail extent ending at a, so appends re-chunk a
//    file's last small chunk), b' the end of the extent holding b-1. Only that region is read back,
//    merged with the new bytes, cut by FastCDC and stored; extents outside it are untouched. So an
//    in-place write in the middle of a large file costs the chunks it touches, not the file.
//  - A streaming writer's run is cut as it grows; the last, incomplete piece stays dirty until
//    more bytes come or the file is flushed, so sequential writes chunk exactly as a whole-file
//    CDC pass would.
//  - All-zero chunks become holes: they cost no chunk and read as zeros.
//  - Nothing here touches the index until apply(): the index sees the file in its old state until
//    the whole new state is applied in one go (at flush, fsync or release), so a commit never
//    captures a half-written file.
//
// Copies (copy_from, for copy_file_range): the source's dirty bytes are materialized so that
// its extent map describes all of its content; the destination range is then cut out of the
// destination's map and filled with the source's extents, re-based (chunk_off/len name the part
// of a chunk that the copy covers, so the partial chunks at both ends are shared, not re-chunked:
// re-chunking would read and decode them, and a fragment keeps at most one chunk per end alive).
// Holes stay holes. The destination is applied before the locks are dropped: until an extents
// row names a shared chunk, only the source protects it from gc (its rows or its pins), and the
// source may drop it the moment its lock is released; ChunkStore offers no pin of an existing
// chunk by id, so the destination cannot hold it by itself in memory. Its own pending writes are
// applied with the copy, in the same savepoint: a crash still finds it in its old or new state.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "index/chunk_store.h"
#include "index/chunker.h"
#include "index/index_db.h"
#include "index/status.h"

namespace dzfs {

struct Extent {
  uint64_t len = 0;
  int64_t chunk = 0;
  uint32_t chunk_off = 0;
};
using ExtentMap = std::map<uint64_t, Extent>;  // file offset -> extent; no overlaps

// Reads extents of `ino` overlapping [off, off+len) from the index; caller holds IndexDb::mu.
Status load_extents(SqliteDb& db, uint64_t ino, uint64_t off, uint64_t len, uint64_t max_extent, ExtentMap& out);
// Copies the bytes of [off, off+len) described by `extents` into out (holes are zeros).
Status read_extents(ChunkStore& chunks, const ExtentMap& extents, uint64_t off, uint64_t len, char* out);

class FileState {
 public:
  FileState(uint64_t ino, ChunkStore& chunks, const Chunker& chunker, size_t dirty_limit)
      : ino_(ino), chunks_(chunks), chunker_(chunker), dirty_limit_(dirty_limit) {}
  ~FileState();

  std::mutex mu;  // guards everything below; taken before IndexDb::mu

  Status load(IndexDb& index);  // whole extent map and size from the index
  Status write(uint64_t off, const char* data, size_t n);
  Status read(uint64_t off, size_t n, std::string& out);
  Status truncate(uint64_t size);
  Status flush_dirty();              // materialize all dirty bytes
  Status apply(IndexDb& index);      // write changed extents and size to the index (dirty empty)
  // copy_file_range inside the volume (see "Copies" at the top): [off_in, off_in + len) of `src`
  // (which may be *this) replaces [off_out, off_out + copied) of this file, as extents naming
  // src's chunks, and is applied to the index at once. The caller holds both mu (inode order).
  Status copy_from(FileState& src, uint64_t off_in, uint64_t off_out, uint64_t len, int64_t now_ns,
                   IndexDb& index, uint64_t& copied);
  uint64_t size() const { return size_; }
  uint64_t dirty_bytes() const { return dirty_bytes_; }
  bool changed() const { return changed_from_ != UINT64_MAX || size_changed_ || !dirty_.empty(); }
  int writers = 0;      // open handles that may write (under Volume's inode table lock)
  bool loaded = false;  // load() has run (under mu)

 private:
  Status materialize(uint64_t a, bool final);
  size_t run_room(size_t n) const;      // capacity for a run that must hold n bytes
  std::string take_spare(size_t n);     // an empty buffer for a new run (see file_state.cc)
  void keep_spare(std::string&& buf);
  Status compose(uint64_t off, uint64_t len, char* out);
  void cut_extents(uint64_t lo, uint64_t hi);  // removes [lo, hi) from the map, splitting
  void mark_changed(uint64_t off) { changed_from_ = std::min(changed_from_, off); }
  // Extents of [off, off + n) (holes left out), clipped to it and moved to start at `to`.
  std::vector<std::pair<uint64_t, Extent>> extents_moved(uint64_t off, uint64_t n, uint64_t to) const;
  // What a copy into [lo, hi) changes in memory, kept so a failed apply can put it back.
  struct RangeBackup {
    uint64_t lo = 0, hi = 0;  // the span the old extents of the range (and straddlers) covered
    std::vector<std::pair<uint64_t, Extent>> extents;
    uint64_t size = 0, changed_from = 0;
    bool size_changed = false;
    int64_t touch_ns = 0;
  };
  RangeBackup backup_range(uint64_t lo, uint64_t hi) const;
  void restore_range(const RangeBackup& b);

  uint64_t ino_;
  ChunkStore& chunks_;
  const Chunker& chunker_;
  size_t dirty_limit_;
  ExtentMap extents_;
  std::map<uint64_t, std::string> dirty_;
  uint64_t dirty_bytes_ = 0;
  uint64_t size_ = 0;
  uint64_t changed_from_ = UINT64_MAX;  // lowest offset whose extents differ from the index
  bool size_changed_ = false;
  int64_t touch_ns_ = 0;                // mtime/ctime for apply to set (a copy), 0: leave them
  std::vector<int64_t> pins_;           // chunks pinned for extents the index does not hold yet
  std::vector<std::string> spare_;      // buffers of absorbed runs, for new runs
  size_t spare_bytes_ = 0;
};

}  // namespace dzfs
