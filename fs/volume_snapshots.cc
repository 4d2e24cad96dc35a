// Volume's side of snapshots (index/snapshots.h): the frozen set that makes every change inside
// a snapshot EROFS, and snapshot creation and deletion on a mounted volume, where files may be
// being written (applied first) and the kernel may hold inodes of a deleted snapshot (kept
// until it forgets them).
#include "fs/volume.h"
#include "index/log.h"

#include <algorithm>

namespace dzfs {

bool Volume::frozen(uint64_t ino) {
  std::lock_guard<std::mutex> g(frozen_mu_);
  return frozen_.contains(ino);
}

Status Volume::reload_frozen_locked() {
  auto f = load_frozen_locked(*store_.index.db);
  if (!f.ok()) return f.status();
  std::lock_guard<std::mutex> g(frozen_mu_);
  frozen_ = std::move(*f);
  return Status::Ok();
}

bool Volume::held(uint64_t ino) {
  std::lock_guard<std::mutex> g(table_mu_);
  if (ino == 0) return !table_.empty();
  auto it = table_.find(ino);
  return it != table_.end() && (it->second.nlookup || it->second.nopen);
}

Result<SnapshotInfo> Volume::snapshot(std::string_view source_path, std::string_view name) {
  if (store_.readonly) return Status::Error(EROFS, "the volume is mounted read-only");
  DZ_RETURN_IF_ERROR(flush_all());
  Result<SnapshotInfo> info = Status::Error(EIO, "not run");
  {
    std::lock_guard<std::mutex> g(store_.index.mu);
    SqliteDb& db = *store_.index.db;
    auto source = resolve_path_locked(db, source_path);
    if (!source.ok()) return source.status();
    info = create_snapshot_locked(db, *source, name, now_ns());
    if (!info.ok()) return info;
    DZ_RETURN_IF_ERROR(reload_frozen_locked());
  }
  DZ_RETURN_IF_ERROR(store_.commit());
  log_info("snapshot " + info->name + " of " + info->source + ": inodes " + std::to_string(info->lo) + ".." +
           std::to_string(info->hi));
  return info;
}

Status Volume::delete_snapshots(const std::vector<std::string>& names, std::vector<SnapshotInfo>& deleted) {
  if (store_.readonly) return Status::Error(EROFS, "the volume is mounted read-only");
  {
    std::lock_guard<std::mutex> g(store_.index.mu);
    SqliteDb& db = *store_.index.db;
    deleted.clear();
    for (const std::string& n : names) {
      auto s = find_snapshot_locked(db, n);
      if (!s.ok()) return s.status();
      if (std::none_of(deleted.begin(), deleted.end(), [&](const SnapshotInfo& d) { return d.id == s->id; }))
        deleted.push_back(*s);  // a name given twice is deleted (and reported) once
    }
    DZ_RETURN_IF_ERROR(delete_snapshots_locked(db, names, [this](uint64_t ino) { return held(ino); }));
    DZ_RETURN_IF_ERROR(reload_frozen_locked());
  }
  DZ_RETURN_IF_ERROR(store_.commit());
  for (const SnapshotInfo& s : deleted) log_info("deleted snapshot " + s.name);
  return Status::Ok();
}

}  // namespace dzfs
