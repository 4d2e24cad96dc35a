// The filesystem's semantics over a Store, independent of FUSE: names, inodes, attributes,
// xattrs, file content, and inode lifetime. fs/fuse_ops.cc maps FUSE requests onto it.
//
// Inode lifetime (as libfuse's passthrough_hp): the kernel's lookup count (nlookup), open handles
// (nopen) and link count (nlink, in the index) all keep an inode alive; it is deleted — extents
// released, row removed — when all three reach zero. Inodes with nlink = 0 found at mount time
// were orphaned by a crash and are deleted by recover().
//
// Lock order: FileState::mu, then IndexDb::mu, then table_mu_; frozen_mu_ is taken last.
#pragma once
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fs/file_state.h"
#include "index/chunk_prefetcher.h"
#include "index/snapshots.h"
#include "index/store.h"

namespace dzfs {

struct VolumeOptions {
  bool writeback_cache = true;  // the kernel then owns mtime/ctime of written files
  size_t dirty_limit = 64u << 20;
  int readahead_threads = 0;    // decode-ahead threads for sequential reads (0: off)
  uint64_t readahead_bytes = 4u << 20;
};

struct Caller {
  uint32_t uid = 0, gid = 0;
  uint32_t umask = 0;  // for a new node, unless its directory has a default ACL (which replaces it)
};

struct DirEntry {
  std::string name;
  uint64_t ino = 0;
  uint64_t next_off = 0;
  struct stat attr {};
};

class Volume {
 public:
  Volume(Store& store, VolumeOptions opts);

  Status recover();
  Status lookup(uint64_t parent, std::string_view name, struct stat& out);
  void add_lookup(uint64_t ino, uint64_t n = 1);
  void forget(uint64_t ino, uint64_t n);
  Status getattr(uint64_t ino, struct stat& out);
  // `set` is a mask of FUSE_SET_ATTR_* values (mode, uid, gid, size, atime, mtime, *_now, ctime).
  Status setattr(uint64_t ino, const struct stat& in, int set, struct stat& out);
  Status readlink(uint64_t ino, std::string& out);
  Status mknod(uint64_t parent, std::string_view name, uint32_t mode, uint64_t rdev, const Caller& c, struct stat& out);
  Status mkdir(uint64_t parent, std::string_view name, uint32_t mode, const Caller& c, struct stat& out);
  Status symlink(uint64_t parent, std::string_view name, std::string_view target, const Caller& c, struct stat& out);
  Status link(uint64_t ino, uint64_t parent, std::string_view name, struct stat& out);
  Status unlink(uint64_t parent, std::string_view name) { return remove_entry(parent, name, false); }
  Status rmdir(uint64_t parent, std::string_view name) { return remove_entry(parent, name, true); }
  Status rename(uint64_t parent, std::string_view name, uint64_t newparent, std::string_view newname, unsigned flags);

  Status open(uint64_t ino, int flags);
  Status release(uint64_t ino, int flags);
  Status read(uint64_t ino, uint64_t off, size_t n, std::string& out);
  Status write(uint64_t ino, uint64_t off, const char* data, size_t n);
  Status flush(uint64_t ino);
  Status fsync(uint64_t ino);
  Status fallocate(uint64_t ino, int mode, uint64_t off, uint64_t len);
  // copy_file_range(2) inside the volume: the destination's extents name the source's chunks
  // (no data is read or written); `copied` is how many bytes were copied (short at the source's
  // end). Implemented in fs/volume_copy.cc.
  Status copy_range(uint64_t ino_in, uint64_t off_in, uint64_t ino_out, uint64_t off_out, uint64_t len,
                    uint64_t& copied);

  Status readdir(uint64_t ino, uint64_t off, size_t max, bool plus, std::vector<DirEntry>& out);
  Status statfs(struct statvfs& out);

  Status setxattr(uint64_t ino, std::string_view name, std::string_view value, int flags);
  Status getxattr(uint64_t ino, std::string_view name, std::string& out);
  Status listxattr(uint64_t ino, std::string& out);  // NUL-separated names
  Status removexattr(uint64_t ino, std::string_view name);

  // Snapshots (index/snapshots.h) of a mounted volume, in fs/volume_snapshots.cc. Files being
  // written are applied first, so a snapshot holds what every file holds now; each operation is
  // committed before it returns.
  Result<SnapshotInfo> snapshot(std::string_view source_path, std::string_view name);
  Status delete_snapshots(const std::vector<std::string>& names, std::vector<SnapshotInfo>& deleted);
  bool frozen(uint64_t ino);  // in a snapshot, or the snapshots folder: every change is EROFS

  Status commit() { return store_.commit(); }
  int64_t last_write_ns() const { return last_write_ns_.load(std::memory_order_relaxed); }
  Status flush_all();  // materialize and apply every file being written (unmount, commit timer)
  Store& store() { return store_; }

 private:
  struct InodeRef {
    uint64_t nlookup = 0;
    uint64_t last_read_end = 0;  // sequential-read detection for decode-ahead
    int nopen = 0;
    std::shared_ptr<FileState> state;
  };
  std::shared_ptr<FileState> state_for(uint64_t ino, bool create);
  Status get_state_loaded(uint64_t ino, std::shared_ptr<FileState>& out);
  Status stat_locked(uint64_t ino, struct stat& out);
  Status make_node(uint64_t parent, std::string_view name, uint32_t mode, uint64_t rdev,
                   std::string_view target, const Caller& c, struct stat& out);
  Status child_locked(uint64_t parent, std::string_view name, uint64_t& ino);
  Status touch_dir_locked(uint64_t dir, int nlink_delta);
  Status remove_entry(uint64_t parent, std::string_view name, bool dir);
  Status drop_name_locked(uint64_t parent, std::string_view name, uint64_t ino, bool is_dir);
  Status delete_inode_locked(uint64_t ino);
  bool in_use_locked(uint64_t ino);  // takes table_mu_
  void maybe_delete(uint64_t ino);
  void maybe_drop_state(uint64_t ino, const std::shared_ptr<FileState>& st);
  void read_ahead(uint64_t ino, uint64_t off, uint64_t end, uint64_t size);
  Status writable(uint64_t ino) {
    return frozen(ino) ? Status::Error(EROFS, "snapshots are read-only") : Status::Ok();
  }
  Status reload_frozen_locked();  // caller holds IndexDb::mu
  bool held(uint64_t ino);        // the kernel knows it or it is open (ino 0: any inode at all)

  Store& store_;
  VolumeOptions opts_;
  Chunker chunker_;
  std::unique_ptr<ChunkPrefetcher> prefetcher_;
  std::atomic<int64_t> last_write_ns_{0};  // background work pauses while ingest is busy
  std::mutex table_mu_;
  std::unordered_map<uint64_t, InodeRef> table_;
  std::mutex frozen_mu_;  // taken alone, or last
  FrozenSet frozen_;
};

int64_t now_ns();

}  // namespace dzfs
