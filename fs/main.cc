// The dzfs command line: subcommands, their arguments, exit codes. Each subcommand is a short
// function; everything they do lives in the libraries.
//
// Exit codes: 0 success; 1 failure (message on stderr); 2 usage error; fsck: 4 problems found;
// train STORE: 3 the trained model was not adopted.
#include <fcntl.h>
#include <malloc.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "daemon/recompressor.h"
#include "daemon/volume_trainer.h"
#include "fs/control_socket.h"
#include "fs/mount.h"
#include "fs/mountinfo.h"
#include "fs/progress.h"
#include "fs/volume.h"
#include "index/fsck.h"
#include "index/gc.h"
#include "index/index_at_rest.h"
#include "index/log.h"
#include "index/model_registry.h"
#include "index/prune.h"
#include "index/schema.h"
#include "index/snapshot_diff.h"
#include "index/snapshots.h"
#include "index/stats.h"
#include "index/store.h"

using namespace dzfs;

namespace {

constexpr int kUsage = 2;

const std::map<std::string, std::string> kHelp = {
    {"mkfs", "dzfs mkfs STORE [--chunk-min BYTES] [--chunk-avg BYTES] [--chunk-max BYTES] [--zstd-level N] [--verify-dedup]\n"
             "          [--group-kb N]\n"
             "  Make a new volume in directory STORE (created if missing; must be empty).\n"
             "  Chunk sizes default to 16 KiB / 64 KiB / 256 KiB; zstd level 3; solid groups of\n"
             "  up to 4096 KiB (64..65536) for the neural tier."},
    {"mount", "dzfs mount STORE MOUNTPOINT [-f] [-d] [-o opt[,opt...]]\n"
              "dzfs STORE MOUNTPOINT [-o opt,...]      (the form mount.fuse3 and fstab use)\n"
              "  Mount a volume. -f stays in the foreground, -d also prints FUSE debug output.\n"
              "  Options: allow_other, ro, commit_secs=N (5), cache_mb=N (256), dirty_mb=N (64),\n"
              "  threads=N (16), gc_secs=N (300, 0 = off), gc_garbage_mb=N (64: a gc pass once that much is\n"
              "  garbage), workers=N (CPUs-1), settle_secs=N (10),\n"
              "  group_kb=N (the volume's: raw KiB of a solid group), group_cache_mb=N (448: groups being\n"
              "  decoded), codec=auto|zstd (auto), writeback=0|1 (1), gpu=auto|on|off (auto; this build has no GPU\n"
              "  backend, so on fails), autotrain_mb=N (0 = off: train a volume model after N MiB of new\n"
              "  data, see dzfs help train), and the usual kernel mount flags."},
    {"umount", "dzfs umount MOUNTPOINT\n  Commit everything, unmount, and wait until the volume is closed."},
    {"stats", "dzfs stats STORE|MOUNTPOINT [--json]\n  Logical, unique and stored bytes, ratios, bytes per codec."},
    {"gc", "dzfs gc STORE\n  Delete unreferenced chunks, regroup mostly dead groups, compact pack files and the\n"
           "  index. The volume must not be mounted."},
    {"compress", "dzfs compress STORE|MOUNTPOINT [--wait] [--migrate]\n"
                 "  --migrate also moves chunks of older models to the current one (unmounted STORE).\n"
                 "  Recompress the zstd-tier backlog with the volume's current model. On an unmounted STORE it\n"
                 "  runs here; on a mount the background workers do it, and --wait waits until they are done."},
    {"models", "dzfs models STORE|MOUNTPOINT [--add MODEL_FILE] [--retire]\n"
               "  List the volume's model versions and what each compresses. --add installs a model file\n"
               "  and makes it current; --retire removes models no chunk uses (both: volume unmounted)."},
    {"train", "dzfs train STORE|MOUNTPOINT [--steps N] [--margin PCT] [--sample-mb N] [--migrate] [--no-wait]\n"
              "  Train a model of this volume: fine-tune the model that codes most of it on a sample of\n"
              "  its chunks (32 MiB; two passes, 100..1000 steps, unless --steps) and adopt the result only\n"
              "  if it shrinks a held-back sample by at least PCT percent (default 1). --migrate re-encodes\n"
              "  chunks of models that leave the active set. Works mounted (the daemon adopts) or not.\n"
              "  Exit 0 adopted, 3 not adopted.\n"
              "dzfs train --config FILE [--data DIR]... [--out MODEL] | --eval MODEL --data DIR\n"
              "  Train the codec's network on a directory tree (libtorch; GPU when present) and export a\n"
              "  model file; see train/README.md. Both run the dzfs-train program installed beside dzfs."},
    {"unpack-index", "dzfs unpack-index STORE\n  Inflate the volume's packed index (index.db.zst) to STORE/index.db, a plain SQLite file,\n"
                     "  for sqlite3 or a script to read. The next clean close of the volume packs it again."},
    {"snapshot", "dzfs snapshot MNT/PATH [NAME]   |   dzfs snapshot --delete MNT/.snapshots/NAME... | STORE|MNT NAME...\n"
                 "  Make an instant, read-only snapshot of directory PATH of a mounted volume, shared chunk\n"
                 "  by chunk with it, as MNT/.snapshots/NAME (default NAME: the UTC date and time). Nothing\n"
                 "  in a snapshot can be changed (EROFS, root too); --delete removes snapshots (all or none;\n"
                 "  mounted or not). dzfs gc, or the mount's gc, then reclaims what only they held."},
    {"snapshots", "dzfs snapshots STORE|MOUNTPOINT [--json]\n"
                  "  List snapshots: name, time, source, files, and the bytes only that snapshot holds (what\n"
                  "  deleting it frees, as dzfs stats counts stored bytes)."},
    {"prune", "dzfs prune STORE|MOUNTPOINT [--keep-within I] [--keep-last N] [--keep-minutely N] [-H|--keep-hourly N]\n"
              "           [-d|--keep-daily N] [-w|--keep-weekly N] [-m|--keep-monthly N] [-y|--keep-yearly N]\n"
              "           [-P|--prefix P] [-n|--dry-run] [--list]\n"
              "  Delete the snapshots a retention policy does not keep, with borg prune's rules (newest of\n"
              "  each period, -1 = every period, local time; I like 10d, 4w, 12m, 1y). All of them go in one\n"
              "  change; then gc reclaims the space."},
    {"diff", "dzfs diff MNT/A MNT/B [--json]   |   dzfs diff STORE|MNT A B [--json]\n"
             "  What changed from tree A to tree B (snapshots or directories of one volume; A and B are\n"
             "  paths in a mount, or snapshot names or /paths of the volume): added, removed and modified\n"
             "  entries, with content, mode, owner, times, xattrs. From the index alone: no data is read."},
    {"fsck", "dzfs fsck STORE [--no-data] [--repair]\n  Check the index invariants and verify every chunk's bytes.\n"
             "  --repair moves damaged files into /lost+found (unreadable parts become holes) and fixes\n"
             "  counts, then checks again. Exit 0 when clean (after repair), 4 when problems remain."},
};

int usage_error(const std::string& msg) {
  fprintf(stderr, "dzfs: %s\n", msg.c_str());
  return kUsage;
}

int failed(const Status& s) {
  fprintf(stderr, "dzfs: %s\n", s.message().c_str());
  return 1;
}

bool parse_u32(const std::string& s, uint32_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

int cmd_help(const std::vector<std::string>& a) {
  if (!a.empty()) {
    auto it = kHelp.find(a[0]);
    if (it == kHelp.end()) return usage_error("no such command: " + a[0]);
    printf("%s\n", it->second.c_str());
    return 0;
  }
  printf("dzfs: a deduplicating, compressing FUSE filesystem for backups.\n\nCommands:\n");
  for (auto& [name, text] : kHelp) printf("  %s\n", text.substr(0, text.find('\n')).c_str());
  printf("\nRun 'dzfs help COMMAND' for details. Exit codes: 0 ok, 1 failure, 2 usage, 4 fsck found problems.\n");
  return 0;
}

int cmd_mkfs(const std::vector<std::string>& a) {
  StoreConfig cfg;
  std::string dir;
  for (size_t i = 0; i < a.size(); ++i) {
    auto num = [&](uint32_t& out) {
      return i + 1 < a.size() && parse_u32(a[++i], out);
    };
    uint32_t lvl = 0;
    if (a[i] == "--chunk-min") { if (!num(cfg.chunk_min)) return usage_error("--chunk-min needs a byte count"); }
    else if (a[i] == "--chunk-avg") { if (!num(cfg.chunk_avg)) return usage_error("--chunk-avg needs a byte count"); }
    else if (a[i] == "--chunk-max") { if (!num(cfg.chunk_max)) return usage_error("--chunk-max needs a byte count"); }
    else if (a[i] == "--zstd-level") { if (!num(lvl)) return usage_error("--zstd-level needs a number"); cfg.zstd_level = int(lvl); }
    else if (a[i] == "--verify-dedup") cfg.verify_dedup = true;
    else if (a[i] == "--group-kb") { if (!num(cfg.group_kb)) return usage_error("--group-kb needs a number of KiB"); }
    else if (a[i][0] == '-') return usage_error("unknown mkfs option " + a[i]);
    else if (dir.empty()) dir = a[i];
    else return usage_error("mkfs takes one STORE directory");
  }
  if (dir.empty()) return usage_error(kHelp.at("mkfs"));
  Status s = Store::mkfs(dir, cfg);
  if (!s.ok()) return failed(s);
  printf("made dzfs volume in %s (chunks %u/%u/%u bytes, zstd level %d, groups of %u KiB%s)\n", dir.c_str(),
         cfg.chunk_min, cfg.chunk_avg, cfg.chunk_max, cfg.zstd_level, cfg.group_kb,
         cfg.verify_dedup ? ", dedup verified" : "");
  return 0;
}

int cmd_mount(const std::vector<std::string>& a) {
  auto o = parse_mount_args(a);
  if (!o.ok()) return usage_error(o.status().message());
  return run_mount(*o);
}

// STORE or the mountpoint of a mounted STORE -> the store directory.
// Tools read a mounted volume's index as of its last commit: fsync of the mount's root makes the
// daemon commit what it has (FSYNCDIR), so what was written just before is counted.
void commit_mount(const std::string& mountpoint) {
  if (int fd = ::open(mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); fd >= 0) {
    (void)fsync(fd);
    ::close(fd);
  }
}

Result<std::string> resolve_store(const std::string& arg) {
  if (access((arg + "/dzfs.conf").c_str(), F_OK) == 0) return canonical_path(arg);
  MountEntry m;
  if (find_mount(arg, m) && m.fstype == "fuse.dzfs") return m.source;
  return Status::Error(ENOENT, arg + " is neither a dzfs volume nor a dzfs mountpoint");
}

int cmd_umount(const std::vector<std::string>& a) {
  if (a.size() != 1) return usage_error(kHelp.at("umount"));
  MountEntry m;
  if (!find_mount(a[0], m) || m.fstype != "fuse.dzfs") return failed(Status::Error(EINVAL, a[0] + " is not a dzfs mountpoint"));
  pid_t pid = fork();
  if (pid == 0) {
    execlp("fusermount3", "fusermount3", "-u", m.mountpoint.c_str(), (char*)nullptr);
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return failed(Status::Error(EBUSY, "could not unmount " + m.mountpoint + " (busy?)"));
  for (int i = 0; i < 6000; ++i) {  // the daemon commits and closes the store after the unmount
    if (Store::lock_holder(m.source) == 0) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return failed(Status::Error(ETIMEDOUT, "unmounted, but the dzfs process has not closed " + m.source + " after 300 s"));
}

int cmd_stats(const std::vector<std::string>& a) {
  bool json = false;
  std::string target;
  for (auto& x : a) {
    if (x == "--json") json = true;
    else if (target.empty()) target = x;
    else return usage_error(kHelp.at("stats"));
  }
  if (target.empty()) return usage_error(kHelp.at("stats"));
  auto dir = resolve_store(target);
  if (!dir.ok()) return failed(dir.status());
  if (*dir != canonical_path(target)) commit_mount(target);
  StoreOptions so;
  so.readonly = true;
  auto st = Store::open(*dir, so);
  if (!st.ok()) return failed(st.status());
  auto v = compute_stats(**st);
  if (!v.ok()) return failed(v.status());
  fputs((json ? stats_json(*v) : stats_text(*v)).c_str(), stdout);
  return 0;
}

Result<std::unique_ptr<Store>> open_exclusive(const std::string& dir, StoreOptions so = {}) {
  auto st = Store::open(dir, so);
  if (!st.ok() && st.status().code() == EBUSY)
    return Status::Error(EBUSY, dir + " is mounted or in use; unmount it first (dzfs umount MOUNTPOINT)");
  return st;
}

int cmd_gc(const std::vector<std::string>& a) {
  if (a.size() != 1) return usage_error(kHelp.at("gc"));
  auto st = open_exclusive(a[0]);
  if (!st.ok()) return failed(st.status());
  Progress bar("gc: packs");
  GcOptions go;
  go.progress = [&](uint64_t d, uint64_t t) { bar.update(d, t); };
  auto r = collect_garbage(**st, go);
  if (!r.ok()) return failed(r.status());
  printf("gc: deleted %llu unreferenced chunks, compacted %llu packs (%llu records moved), removed %llu packs\n"
         "gc: pack bytes %llu -> %llu\n",
         (unsigned long long)r->chunks_deleted, (unsigned long long)r->packs_compacted,
         (unsigned long long)r->records_moved, (unsigned long long)r->packs_removed,
         (unsigned long long)r->pack_bytes_before, (unsigned long long)r->pack_bytes_after);
  auto v = (*st)->vacuum();  // what deletions and page splits left half-empty
  if (!v.ok()) return failed(v.status());
  printf("gc: index bytes %llu -> %llu\n", (unsigned long long)v->first, (unsigned long long)v->second);
  return 0;
}

int cmd_unpack_index(const std::vector<std::string>& a) {
  if (a.size() != 1) return usage_error(kHelp.at("unpack-index"));
  if (::access((a[0] + "/dzfs.conf").c_str(), F_OK) != 0) return failed(Status::Error(ENOENT, a[0] + " is not a dzfs volume"));
  const int fd = ::open((a[0] + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return failed(Status::Error(errno, "cannot open " + a[0] + "/lock: " + strerror(errno)));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return failed(Status::Error(EBUSY, a[0] + " is mounted or in use; unmount it first (dzfs umount MOUNTPOINT)"));
  }
  Status s = index_at_rest::unpack(a[0]);
  ::close(fd);
  if (!s.ok()) return failed(s);
  printf("%s/index.db\n", a[0].c_str());
  return 0;
}

int cmd_compress(const std::vector<std::string>& a) {
  bool wait = false, migrate = false;
  std::string target;
  for (auto& x : a) {
    if (x == "--wait") wait = true;
    else if (x == "--migrate") migrate = true;
    else if (target.empty()) target = x;
    else return usage_error(kHelp.at("compress"));
  }
  if (target.empty()) return usage_error(kHelp.at("compress"));
  auto dir = resolve_store(target);
  if (!dir.ok()) return failed(dir.status());
  if (Store::lock_holder(*dir) == 0) {  // not mounted: do the work here
    auto st = open_exclusive(*dir);
    if (!st.ok()) return failed(st.status());
    if (migrate) {
      Status m = queue_model_migration(**st);
      if (!m.ok()) return failed(m);
    }
    RecompressOptions ro;
    ro.settle_secs = 0;
    Recompressor r(**st, ro);
    Progress bar("compress");
    Status s = r.drain([&](uint64_t d, uint64_t t) { bar.update(d, t); });
    if (!s.ok()) return failed(s);
    auto& c = r.counters();
    printf("compress: %llu chunks tried, %llu recompressed (%llu -> %llu bytes), %llu kept\n",
           (unsigned long long)c.tried, (unsigned long long)c.recompressed, (unsigned long long)c.bytes_before.load(),
           (unsigned long long)c.bytes_after.load(), (unsigned long long)c.kept);
    return 0;
  }
  if (migrate) return failed(Status::Error(EBUSY, "--migrate needs the volume unmounted"));
  commit_mount(target);  // the backlog is read from the last commit
  uint64_t first = 0;
  Progress bar("compress (mount workers)");
  for (;;) {
    StoreOptions so;
    so.readonly = true;
    auto st = Store::open(*dir, so);
    if (!st.ok()) return failed(st.status());
    auto b = recompress_backlog(**st);
    if (!b.ok()) return failed(b.status());
    first = std::max(first, b->chunks);
    if (!wait) return printf("backlog: %llu chunks (%llu bytes)\n", (unsigned long long)b->chunks,
                             (unsigned long long)b->raw_bytes), 0;
    bar.update(first - b->chunks, first);
    if (b->chunks == 0) return 0;
    st->reset();
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

Result<std::vector<uint8_t>> read_file(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  if (!f) return Status::Error(errno, "cannot open " + path + ": " + strerror(errno));
  std::vector<uint8_t> out;
  uint8_t buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.insert(out.end(), buf, buf + n);
  fclose(f);
  return out;
}

int cmd_models_change(const std::string& dir, const std::string& add, bool retire) {
  auto st = open_exclusive(dir);
  if (!st.ok()) return failed(st.status());
  if (!add.empty()) {
    auto bytes = read_file(add);
    if (!bytes.ok()) return failed(bytes.status());
    auto cur = (*st)->models->current();
    auto id = (*st)->models->install(*bytes, cur ? cur->id().hex() : "", "added from " + add,
                                     ModelRegistry::Activate::kReplace);
    if (!id.ok()) return failed(id.status());
    Status c = (*st)->commit();
    if (!c.ok()) return failed(c);
    printf("model %s is now current\n", id->c_str());
  }
  if (retire) {
    auto n = (*st)->models->retire_unused();
    if (!n.ok()) return failed(n.status());
    printf("retired %d unused models\n", *n);
  }
  return 0;
}

int cmd_models(const std::vector<std::string>& args) {
  std::vector<std::string> a;
  std::string add;
  bool retire = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--add" && i + 1 < args.size()) add = args[++i];
    else if (args[i] == "--retire") retire = true;
    else if (args[i][0] == '-') return usage_error(kHelp.at("models"));
    else a.push_back(args[i]);
  }
  if (a.size() != 1) return usage_error(kHelp.at("models"));
  auto dir = resolve_store(a[0]);
  if (!dir.ok()) return failed(dir.status());
  if (!add.empty() || retire) {
    int rc = cmd_models_change(*dir, add, retire);
    if (rc) return rc;
  }
  if (*dir != canonical_path(a[0])) commit_mount(a[0]);
  StoreOptions so;
  so.readonly = true;
  auto st = Store::open(*dir, so);
  if (!st.ok()) return failed(st.status());
  auto list = (*st)->models->list();
  if (!list.ok()) return failed(list.status());
  printf("%-32s %-7s %10s %8s %12s %12s  %s\n", "model id", "current", "size", "chunks", "raw bytes", "stored",
         "summary");
  for (auto& m : *list)
    printf("%-32s %-7s %10lld %8lld %12lld %12lld  %s\n", m.id.c_str(), m.current ? "yes" : "", (long long)m.size,
           (long long)m.chunks, (long long)m.raw_bytes, (long long)m.stored_bytes, m.summary.c_str());
  return 0;
}

void print_fsck(const FsckReport& r) {
  for (auto& p : r.problems) printf("problem: %s\n", p.c_str());
  for (auto& f : r.damaged_files) printf("damaged file: %s\n", f.c_str());
  printf("fsck: %llu inodes, %llu chunks verified: %s\n", (unsigned long long)r.inodes_checked,
         (unsigned long long)r.chunks_checked, r.clean() ? "clean" : "PROBLEMS FOUND");
}

int cmd_fsck(const std::vector<std::string>& a) {
  FsckOptions fo;
  bool repair = false;
  std::string dir;
  for (auto& x : a) {
    if (x == "--no-data") fo.verify_data = false;
    else if (x == "--repair") repair = true;
    else if (dir.empty()) dir = x;
    else return usage_error(kHelp.at("fsck"));
  }
  if (dir.empty()) return usage_error(kHelp.at("fsck"));
  StoreOptions so;
  so.pack_index = repair;  // a check changes nothing: an unpacked index stays as it is
  auto st = open_exclusive(dir, so);
  if (!st.ok()) return failed(st.status());
  Progress bar("fsck: verifying chunks");
  fo.progress = [&](uint64_t d, uint64_t t) { bar.update(d, t); };
  auto r = check_volume(**st, fo);
  if (!r.ok()) return failed(r.status());
  print_fsck(*r);
  if (r->clean() || !repair) return r->clean() ? 0 : 4;
  auto fixed = repair_volume(**st, *r);
  if (!fixed.ok()) return failed(fixed.status());
  for (auto& line : fixed->actions) printf("repair: %s\n", line.c_str());
  Status c = (*st)->commit();
  if (!c.ok()) return failed(c);
  auto again = check_volume(**st, fo);
  if (!again.ok()) return failed(again.status());
  printf("after repair: ");
  print_fsck(*again);
  return again->clean() ? 0 : 4;
}

// ---- snapshots, prune, diff ---------------------------------------------------------------

// A name left-aligned in `width` terminal columns: a column per character, not per byte, so that
// the table stays aligned with non-ASCII names (a longer name pushes the row, as ls -l does).
std::string pad_name(const std::string& printable, size_t width) {
  size_t cols = 0;
  for (unsigned char c : printable) cols += (c & 0xc0) != 0x80;
  return cols >= width ? printable : printable + std::string(width - cols, ' ');
}

std::string utc_time(int64_t ns) {
  time_t t = time_t(ns / 1000000000);
  tm u{};
  gmtime_r(&t, &u);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &u);
  return buf;
}

// A path inside a mounted dzfs: its store, its mountpoint, and the path from the volume's root.
struct MountPath {
  std::string store, mountpoint, rel;
};

Result<MountPath> mount_path_of(const std::string& arg) {
  const std::string canon = canonical_path(arg);
  if (canon.empty()) return Status::Error(ENOENT, arg + " does not exist");
  for (std::string p = canon;;) {
    MountEntry m;
    if (find_mount(p, m) && m.fstype == "fuse.dzfs") {
      std::string rel = canon.substr(p == "/" ? 0 : p.size());
      return MountPath{m.source, m.mountpoint, rel.empty() ? "/" : rel};
    }
    if (p == "/") return Status::Error(EINVAL, arg + " is not inside a mounted dzfs volume");
    const size_t slash = p.rfind('/');
    p = slash == 0 ? "/" : p.substr(0, slash);
  }
}

// The store's index as of now: a mount is first made to commit, then read read-only beside it.
Result<std::unique_ptr<Store>> open_for_reading(const std::string& target, std::string& dir) {
  auto d = resolve_store(target);
  if (!d.ok()) return d.status();
  dir = *d;
  if (Store::lock_holder(dir) != 0) {
    MountEntry m;
    if (find_mount(target, m)) commit_mount(m.mountpoint);
  }
  StoreOptions so;
  so.readonly = true;
  return Store::open(dir, so);
}

// Deletes snapshots: through the mount daemon when the volume is mounted, else here.
Status delete_snapshots_of(const std::string& dir, const std::vector<std::string>& names) {
  if (Store::lock_holder(dir) != 0) {
    std::vector<std::string> req = {"delete"};
    req.insert(req.end(), names.begin(), names.end());
    return control_request(dir, req).status();
  }
  auto st = open_exclusive(dir);
  if (!st.ok()) return st.status();
  {
    std::lock_guard<std::mutex> g((*st)->index.mu);
    DZ_RETURN_IF_ERROR(delete_snapshots_locked(*(*st)->index.db, names, nullptr));
  }
  return (*st)->commit();
}

// MNT/.snapshots/NAME as (store, NAME), found by its parent folder: the snapshot itself need not
// exist (a missing one is then reported by name, as the daemon reports it).
Result<std::pair<std::string, std::string>> snapshot_path_of(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.rfind('/');
  const std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : p.substr(0, slash);
  const std::string name = p.substr(slash == std::string::npos ? 0 : slash + 1);
  auto mp = mount_path_of(parent);
  if (!mp.ok() || mp->rel != std::string("/") + kSnapshotsDirName || name.empty() || name == "." || name == "..")
    return Status::Error(EINVAL, p + " is not MOUNTPOINT/" + kSnapshotsDirName + "/NAME of a mounted dzfs volume");
  return std::make_pair(mp->store, name);
}

int cmd_snapshot_delete(const std::vector<std::string>& a) {
  if (a.empty()) return usage_error(kHelp.at("snapshot"));
  std::string dir;
  std::vector<std::string> names;
  if (auto first = snapshot_path_of(a[0]); first.ok()) {
    dir = first->first;  // paths of snapshots: MNT/.snapshots/NAME ...
    for (const std::string& p : a) {
      auto q = snapshot_path_of(p);
      if (!q.ok()) return failed(q.status());
      if (q->first != dir) return failed(Status::Error(EXDEV, p + " is not a snapshot of " + dir));
      names.push_back(q->second);
    }
  } else {
    auto d = resolve_store(a[0]);
    if (!d.ok()) return failed(d.status());
    dir = *d;
    names.assign(a.begin() + 1, a.end());
    if (names.empty()) return usage_error(kHelp.at("snapshot"));
  }
  std::vector<std::string> unique;  // a name given twice is deleted, and reported, once
  for (const std::string& n : names)
    if (std::find(unique.begin(), unique.end(), n) == unique.end()) unique.push_back(n);
  Status s = delete_snapshots_of(dir, unique);
  if (!s.ok()) return failed(s);
  for (const std::string& n : unique) printf("deleted snapshot %s\n", printable_name(n).c_str());
  return 0;
}

int cmd_snapshot(const std::vector<std::string>& a) {
  if (!a.empty() && a[0] == "--delete") return cmd_snapshot_delete({a.begin() + 1, a.end()});
  if (a.empty() || a.size() > 2 || a[0].empty() || a[0][0] == '-') return usage_error(kHelp.at("snapshot"));
  const std::string name = a.size() == 2 ? a[1] : default_snapshot_name(now_ns());
  if (Status n = check_snapshot_name(name); !n.ok()) return failed(n);
  auto mp = mount_path_of(a[0]);
  if (!mp.ok() && mp.status().code() == ENOENT) return failed(mp.status());
  std::string at;  // where the snapshot shows: MNT, or the store's mount when a mounted STORE was given
  if (mp.ok()) {
    at = mp->mountpoint == "/" ? "" : mp->mountpoint;
  } else {
    auto d = resolve_store(a[0]);
    if (!d.ok())
      return failed(Status::Error(EINVAL, a[0] + " is neither a directory in a mounted dzfs volume nor a volume"));
    // A mounted STORE: the daemon, the index's one writer, makes the snapshot of its whole tree.
    if (Store::lock_holder(*d) != 0) mp = MountPath{*d, "", "/"};
  }
  if (mp.ok()) {
    auto r = control_request(mp->store, {"snapshot", mp->rel, name});
    if (!r.ok()) return failed(r.status());
    std::vector<std::string> f;
    for (size_t i = 0, j; i <= r->size(); i = j + 1) {
      j = r->find('\0', i);
      if (j == std::string::npos) j = r->size();
      f.push_back(r->substr(i, j - i));
    }
    if (f.size() != 3) return failed(Status::Error(EPROTO, "unexpected reply from the mount daemon"));
    printf("snapshot %s of %s: %s/%s/%s (%s inodes)\n", printable_name(f[0]).c_str(), printable_name(f[1]).c_str(),
           at.c_str(), kSnapshotsDirName, printable_name(f[0]).c_str(), f[2].c_str());
    return 0;
  }
  // An unmounted STORE: a snapshot of its whole tree.
  auto st = open_exclusive(*resolve_store(a[0]));
  if (!st.ok()) return failed(st.status());
  Result<SnapshotInfo> info = Status::Error(EIO, "not run");
  {
    std::lock_guard<std::mutex> g((*st)->index.mu);
    info = create_snapshot_locked(*(*st)->index.db, kRootIno, name, now_ns());
  }
  if (!info.ok()) return failed(info.status());
  if (Status c = (*st)->commit(); !c.ok()) return failed(c);
  printf("snapshot %s of /: /%s/%s (%llu inodes)\n", printable_name(info->name).c_str(), kSnapshotsDirName,
         printable_name(info->name).c_str(), (unsigned long long)(info->hi - info->lo + 1));
  return 0;
}

int cmd_snapshots(const std::vector<std::string>& a) {
  bool json = false;
  std::string target;
  for (auto& x : a) {
    if (x == "--json") json = true;
    else if (target.empty() && x[0] != '-') target = x;
    else return usage_error(kHelp.at("snapshots"));
  }
  if (target.empty()) return usage_error(kHelp.at("snapshots"));
  std::string dir;
  auto st = open_for_reading(target, dir);
  if (!st.ok()) return failed(st.status());
  std::lock_guard<std::mutex> g((*st)->index.mu);
  SqliteDb& db = *(*st)->index.db;
  auto list = list_snapshots_locked(db);
  if (!list.ok()) return failed(list.status());
  // Built as strings, not into a fixed buffer: a name may be 255 bytes, and many more in JSON.
  std::string out = json ? "{\"snapshots\": [" : "";
  if (!json) out += "NAME                              CREATED (UTC)         SOURCE            FILES       DIRS  ONLY-HERE STORED  ONLY-HERE RAW\n";
  for (size_t i = 0; i < list->size(); ++i) {
    const SnapshotInfo& s = (*list)[i];
    auto u = snapshot_usage_locked(db, s);
    if (!u.ok()) return failed(u.status());
    auto n = [](uint64_t v) { return std::to_string(v); };
    if (json) {
      out += std::string(i ? ", " : "") + "{\"name\": " + json_string(s.name) + ", \"created_ns\": " +
             std::to_string(s.created_ns) + ", \"created\": \"" + utc_time(s.created_ns) + "Z\", \"source\": " +
             json_string(s.source) + ", \"files\": " + n(u->files) + ", \"dirs\": " + n(u->dirs) +
             ", \"others\": " + n(u->others) + ", \"logical_bytes\": " + n(u->logical_bytes) +
             ", \"exclusive_chunks\": " + n(u->exclusive_chunks) + ", \"exclusive_raw_bytes\": " +
             n(u->exclusive_raw) + ", \"exclusive_stored_bytes\": " + n(u->exclusive_stored) + "}";
    } else {
      char nums[128];
      snprintf(nums, sizeof nums, " %7llu %10llu %16llu %14llu\n", (unsigned long long)u->files,
               (unsigned long long)u->dirs, (unsigned long long)u->exclusive_stored,
               (unsigned long long)u->exclusive_raw);
      out += pad_name(printable_name(s.name), 33) + " " + pad_name(utc_time(s.created_ns), 21) + " " +
             pad_name(printable_name(s.source), 15) + nums;
    }
  }
  if (json) out += "]}\n";
  fputs(out.c_str(), stdout);
  return 0;
}

int cmd_prune(const std::vector<std::string>& a) {
  auto args = parse_prune_args(a);
  if (!args.ok()) return usage_error(args.status().message() + "\n" + kHelp.at("prune"));
  if (args->positional.size() != 1) return usage_error(kHelp.at("prune"));
  std::string dir;
  std::vector<PruneItem> items;
  {
    auto st = open_for_reading(args->positional[0], dir);
    if (!st.ok()) return failed(st.status());
    std::lock_guard<std::mutex> g((*st)->index.mu);
    auto list = list_snapshots_locked(*(*st)->index.db);
    if (!list.ok()) return failed(list.status());
    for (const SnapshotInfo& s : *list) items.push_back({s.name, s.created_ns});
  }
  auto plan = plan_prune(items, args->rules, now_ns());
  if (!plan.ok()) return usage_error(plan.status().message());
  std::vector<std::string> doomed;
  for (const PruneVerdict& v : *plan)
    if (!v.keep) doomed.push_back(v.name);
  if (args->list || args->dry_run) fputs(prune_listing(*plan, args->dry_run).c_str(), stdout);
  if (!args->dry_run && !doomed.empty()) {
    Status s = delete_snapshots_of(dir, doomed);
    if (!s.ok()) return failed(s);
  }
  printf("prune: %zu snapshots kept, %zu %s%s\n", plan->size() - doomed.size(), doomed.size(),
         args->dry_run ? "would be pruned" : "pruned",
         !args->dry_run && !doomed.empty() ? " (dzfs gc, or the mount's gc, reclaims their space)" : "");
  return 0;
}

// A diff operand: a path in a mount, or (with a STORE|MNT first) a snapshot name or a /path.
int cmd_diff(const std::vector<std::string>& args) {
  bool json = false;
  std::vector<std::string> a;
  for (auto& x : args) {
    if (x == "--json") json = true;
    else if (x[0] == '-') return usage_error(kHelp.at("diff"));
    else a.push_back(x);
  }
  std::string target, rel_a, rel_b;
  if (a.size() == 2) {
    auto pa = mount_path_of(a[0]), pb = mount_path_of(a[1]);
    if (!pa.ok()) return failed(pa.status());
    if (!pb.ok()) return failed(pb.status());
    if (pa->store != pb->store) return failed(Status::Error(EXDEV, "both trees must be in one dzfs volume"));
    target = pa->mountpoint, rel_a = pa->rel, rel_b = pb->rel;
  } else if (a.size() == 3) {
    auto as_rel = [](const std::string& x) { return x[0] == '/' ? x : std::string("/") + kSnapshotsDirName + "/" + x; };
    target = a[0], rel_a = as_rel(a[1]), rel_b = as_rel(a[2]);
  } else {
    return usage_error(kHelp.at("diff"));
  }
  std::string dir;
  auto st = open_for_reading(target, dir);
  if (!st.ok()) return failed(st.status());
  std::lock_guard<std::mutex> g((*st)->index.mu);
  SqliteDb& db = *(*st)->index.db;
  auto ia = resolve_path_locked(db, rel_a), ib = resolve_path_locked(db, rel_b);
  if (!ia.ok()) return failed(ia.status());
  if (!ib.ok()) return failed(ib.status());
  auto frozen = load_frozen_locked(db);
  if (!frozen.ok()) return failed(frozen.status());
  DiffOptions o;
  const uint64_t folder = frozen->folder();
  o.skip = [folder](uint64_t ino) { return folder && ino == folder; };  // the live root's snapshots
  auto d = diff_trees(db, *ia, *ib, o);
  if (!d.ok() && d.status().code() == ENOTDIR)  // the index's words name an inode; the user gave paths
    return failed(Status::Error(ENOTDIR, "dzfs diff compares directories: " + printable_name(rel_a) + " and " +
                                             printable_name(rel_b) + " must both be directories of the volume"));
  if (!d.ok()) return failed(d.status());
  fputs((json ? diff_json(*d) : diff_text(*d)).c_str(), stdout);
  return 0;
}

}  // namespace

// `dzfs train STORE|MNT`: per-volume training (daemon/volume_trainer.h).
int cmd_train_volume(const std::vector<std::string>& a) {
  VolumeTrainOptions o;
  std::string target;
  bool automatic = false;
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string& x = a[i];
    auto value = [&](double lo, double hi, double& out) {
      if (i + 1 >= a.size()) return false;
      char* end = nullptr;
      out = strtod(a[++i].c_str(), &end);
      return *end == 0 && out >= lo && out <= hi;
    };
    double v = 0;
    if (x == "--steps" && value(1, 1e7, v)) o.steps = int(v);
    else if (x == "--margin" && value(0, 100, v)) o.margin = v / 100;
    else if (x == "--sample-mb" && value(1, 1 << 20, v)) o.sample_bytes = uint64_t(v * (1 << 20));
    else if (x == "--batch" && value(64, 1 << 20, v)) o.batch = int(v);
    else if (x == "--migrate") o.migrate = true;
    else if (x == "--no-wait") o.wait = false;
    else if (x == "--auto") automatic = true;
    else if (x[0] != '-' && target.empty()) target = x;
    else return usage_error(kHelp.at("train"));
  }
  auto dir = resolve_store(target);
  if (!dir.ok()) return failed(dir.status());
  o.heldback_bytes = std::max<uint64_t>(o.sample_bytes / 8, 1 << 20);
  if (automatic) {  // started by the mount daemon: quiet, idle, the daemon adopts
    log_to_syslog(true);
    o.quiet = o.idle_priority = true;
    o.wait = false;
    o.say = [](const std::string& m) { log_info("autotrain: " + m); };
  } else {
    o.say = [](const std::string& m) { fprintf(stderr, "dzfs train: %s\n", m.c_str()); };
  }
  auto r = train_volume(*dir, o);
  if (!r.ok()) {
    if (automatic) log_error("autotrain: " + r.status().message());
    return failed(r.status());
  }
  const std::string verdict = r->adopted ? "adopted model " + r->model_id : "not adopted (below the margin)";
  if (automatic) log_info("autotrain: " + r->summary + ": " + verdict);
  printf("%s\n%s\n", r->summary.c_str(), verdict.c_str());
  return r->adopted ? 0 : 3;
}

// `dzfs train` runs dzfs-train (beside this binary, else on PATH), so the FUSE daemon never
// loads libtorch.
int cmd_train(char** args) {
  std::vector<char*> av = {const_cast<char*>("dzfs-train")};
  for (char** a = args; *a; ++a) av.push_back(*a);
  av.push_back(nullptr);
  std::string self = canonical_path("/proc/self/exe");
  std::string beside = self.substr(0, self.rfind('/') + 1) + "dzfs-train";
  if (!self.empty() && access(beside.c_str(), X_OK) == 0) execv(beside.c_str(), av.data());
  execvp("dzfs-train", av.data());
  return failed(Status::Error(ENOENT, "dzfs-train is not installed (build dzfs with libtorch: apt-get install libtorch-dev)"));
}

int main(int argc, char** argv) {
  // A fixed mmap threshold: glibc otherwise raises it to the size of the largest block freed (up
  // to 32 MiB), after which codec tables and group buffers come from the arenas and stay there
  // once freed. Measured: a mount that had drained 23 MB of sources kept 204 MB resident when
  // idle, 38 MB with this; a read-only restore peaked at 346 MB, 251 MB with this.
  mallopt(M_MMAP_THRESHOLD, 256 << 10);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return cmd_help({}), kUsage;
  std::string cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "help" || cmd == "--help" || cmd == "-h") return cmd_help(rest);
  if (cmd == "--version" || cmd == "-V") return printf("dzfs 0.1.0 (volume format 2)\n"), 0;
  if (std::find(rest.begin(), rest.end(), "--help") != rest.end() && kHelp.count(cmd)) return cmd_help({cmd});
  if (cmd == "mkfs") return cmd_mkfs(rest);
  if (cmd == "mount") return cmd_mount(rest);
  if (cmd == "umount" || cmd == "unmount") return cmd_umount(rest);
  if (cmd == "stats") return cmd_stats(rest);
  if (cmd == "gc") return cmd_gc(rest);
  if (cmd == "fsck") return cmd_fsck(rest);
  if (cmd == "unpack-index") return cmd_unpack_index(rest);
  if (cmd == "compress") return cmd_compress(rest);
  if (cmd == "train" && !rest.empty() && rest[0][0] != '-' && rest[0] != "split") return cmd_train_volume(rest);
  if (cmd == "train") return cmd_train(argv + 2);
  if (cmd == "models") return cmd_models(rest);
  if (cmd == "snapshot") return cmd_snapshot(rest);
  if (cmd == "snapshots") return cmd_snapshots(rest);
  if (cmd == "prune") return cmd_prune(rest);
  if (cmd == "diff") return cmd_diff(rest);
  // mount.fuse3 calls `dzfs STORE MOUNTPOINT -o ...`.
  if (cmd[0] != '-' && args.size() >= 2) return cmd_mount(args);
  return usage_error("unknown command '" + cmd + "' (try dzfs help)");
}
