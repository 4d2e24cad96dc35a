// The mount sequence: see mount.h. Without -f the process forks before touching the store (SQLite
// connections must not cross a fork); the child reports success or the error over a pipe, so the
// parent's exit code and message tell the caller what happened.
#include "fs/mount.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <memory>
#include <set>
#include <thread>

#include "daemon/periodic_task.h"
#include "daemon/recompressor.h"
#include "daemon/training_scheduler.h"
#include "fs/control_socket.h"
#include "fs/fuse_ops.h"
#include "fs/mountinfo.h"
#include "index/gc.h"
#include "index/log.h"
#include "index/schema.h"
#include "index/store.h"

namespace dzfs {

static int fail(int report_fd, const std::string& msg) {
  if (report_fd >= 0) {
    std::string m = "E" + msg;
    ssize_t r = write(report_fd, m.data(), m.size());
    (void)r;
  } else {
    fprintf(stderr, "dzfs: %s\n", msg.c_str());
  }
  return 1;
}

static Status preflight(MountOptions& o) {
  std::string store = canonical_path(o.store);
  if (store.empty()) return Status::Error(ENOENT, "store " + o.store + " does not exist");
  auto cfg = StoreConfig::load(store);
  if (!cfg.ok()) return cfg.status();
  std::string mnt = canonical_path(o.mountpoint);
  struct stat st {};
  if (mnt.empty() || stat(mnt.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Status::Error(ENOTDIR, "mountpoint " + o.mountpoint + " is not a directory");
  MountEntry m;
  if (find_mount(mnt, m)) return Status::Error(EBUSY, "mountpoint " + mnt + " is busy: " + m.source + " is mounted there");
  if (int pid = Store::lock_holder(store))
    return Status::Error(EBUSY, "store " + store + " is already in use (pid " + std::to_string(pid) + ")");
  if (mnt == store || mnt.rfind(store + "/", 0) == 0)
    return Status::Error(EINVAL, "the mountpoint must not lie inside the store");
  // No GPU codec backend is built into this dzfs yet (codec/backend.h has the CPU one only).
  if (o.gpu == MountOptions::Gpu::kOn)
    return Status::Error(ENODEV, "gpu=on: this dzfs has no GPU codec backend; use gpu=auto or gpu=off");
  o.store = store;
  o.mountpoint = mnt;
  return Status::Ok();
}

// What the control socket (control_socket.h) asks of a mounted volume: snapshots made and deleted
// by the daemon, the index's one writer, and the kernel told of the names that changed (the
// replies to lookups are cached, negative ones too).
// `readonly`: mounted with -o ro. The store is still open for writing (the daemon commits and
// recompresses), so the kernel's read-only flag alone would not stop these requests.
static std::pair<int, std::string> control(Volume& volume, fuse_session* se, bool readonly,
                                           const std::vector<std::string>& req) {
  if ((req[0] == "snapshot" || req[0] == "delete") && readonly)
    return {EROFS, "the volume is mounted read-only (-o ro): remount it read-write to change its snapshots"};
  if ((req[0] == "snapshot" && req.size() != 3) || (req[0] == "delete" && req.size() < 2))
    return {EINVAL, "malformed " + req[0] + " request"};
  auto inval = [se](uint64_t parent, const std::string& name) {
    fuse_lowlevel_notify_inval_entry(se, parent, name.data(), name.size());
    fuse_lowlevel_notify_inval_inode(se, parent, 0, 0);
  };
  auto folder = [&volume]() -> uint64_t {  // the snapshots folder's inode (0: none yet)
    std::lock_guard<std::mutex> g(volume.store().index.mu);
    auto f = resolve_path_locked(*volume.store().index.db, std::string("/") + kSnapshotsDirName);
    return f.ok() ? *f : 0;
  };
  if (req[0] == "snapshot") {
    auto info = volume.snapshot(req[1], req[2]);
    if (!info.ok()) return {info.status().code(), info.status().message()};
    inval(kRootIno, kSnapshotsDirName);
    if (uint64_t f = folder()) inval(f, info->name);
    return {0, info->name + std::string(1, '\0') + info->source + std::string(1, '\0') +
                   std::to_string(info->hi - info->lo + 1)};
  }
  if (req[0] == "delete") {
    std::vector<SnapshotInfo> gone;
    Status s = volume.delete_snapshots({req.begin() + 1, req.end()}, gone);
    if (!s.ok()) return {s.code(), s.message()};
    if (uint64_t f = folder()) {
      for (const SnapshotInfo& i : gone) {
        fuse_lowlevel_notify_delete(se, f, i.root, i.name.data(), i.name.size());
        inval(f, i.name);
      }
    }
    return {0, std::to_string(gone.size())};
  }
  return {EINVAL, "unknown control request '" + req[0] + "' (a dzfs of another version?)"};
}

static int serve(const MountOptions& o, int report_fd) {
  StoreOptions so;
  so.cache_bytes = o.cache_mb << 20;
  so.group_cache_bytes = o.group_cache_mb << 20;
  auto store = Store::open(o.store, so);
  if (!store.ok()) return fail(report_fd, store.status().message());
  VolumeOptions vo;
  vo.writeback_cache = o.writeback;
  vo.dirty_limit = o.dirty_mb << 20;
  vo.readahead_threads = std::max(2, int(std::thread::hardware_concurrency()));
  Volume volume(**store, vo);
  Status s = volume.recover();
  if (s.ok()) s = (*store)->commit();
  if (!s.ok()) return fail(report_fd, "recovery failed: " + s.message());

  FuseContext fctx;
  fctx.volume = &volume;
  fctx.writeback_cache = o.writeback;
  std::string opts = "fsname=" + o.store + ",subtype=dzfs,default_permissions";
  for (const std::string& f : o.fuse_opts) opts += "," + f;
  std::vector<std::string> argv_s = {"dzfs", "-o", opts};
  if (o.debug) argv_s.push_back("-d");
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(int(argv.size()), argv.data());
  fuse_session* se = fuse_session_new(&args, fuse_operations(), sizeof(fuse_lowlevel_ops), &fctx);
  if (!se) return fail(report_fd, "cannot start a FUSE session with options '" + opts + "'");
  if (fuse_set_signal_handlers(se) != 0) {
    fuse_session_destroy(se);
    return fail(report_fd, "cannot install signal handlers");
  }
  if (fuse_session_mount(se, o.mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return fail(report_fd, "cannot mount on " + o.mountpoint + " (is /dev/fuse available? are you root?)");
  }
  (*store)->note_pid();
  // Up before the mount reports success, so that a `dzfs snapshot` right after it finds it.
  auto control_server = std::make_unique<ControlServer>(
      o.store, [&, ro = std::find(o.fuse_opts.rbegin(), o.fuse_opts.rend(), "ro") <  // the last of ro, rw wins
                          std::find(o.fuse_opts.rbegin(), o.fuse_opts.rend(), "rw")](
                   const std::vector<std::string>& req) { return control(volume, se, ro, req); });
  if (Status c = control_server->start(); !c.ok()) log_error("no control socket (snapshots need one): " + c.message());
  log_info("mounted " + o.store + " on " + o.mountpoint);
  if (report_fd >= 0) {
    ssize_t r = write(report_fd, "ok", 2);
    (void)r;
    close(report_fd);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      if (null > 2) close(null);
    }
  }
  int rc;
  {
    PeriodicTask committer("periodic commit", [&] { return (*store)->commit(); }, o.commit_secs);
    std::unique_ptr<Recompressor> recompressor;
    int workers = o.workers >= 0 ? o.workers : std::max(1, int(std::thread::hardware_concurrency()) - 1);
    if (o.neural && workers > 0) {
      RecompressOptions ro;
      ro.threads = workers;
      ro.settle_secs = o.settle_secs;
      ro.group_bytes = o.group_kb << 10;
      ro.last_foreground_write_ns = [&volume] { return volume.last_write_ns(); };
      recompressor = std::make_unique<Recompressor>(**store, ro);
      recompressor->start();
    }
    TrainingSchedulerOptions tso;
    tso.autotrain_bytes = uint64_t(o.autotrain_mb) << 20;
    tso.dzfs_binary = canonical_path("/proc/self/exe");
    TrainingScheduler trainer(**store, tso);
    if (Status t = trainer.init(); !t.ok()) log_error("autotrain: " + t.message());
    PeriodicTask inbox("model inbox and autotrain", [&] { return trainer.tick(); }, 2);
    std::set<int64_t> garbage_seen;  // two-phase deletion: see GcOptions::previous_garbage
    std::unique_ptr<PeriodicTask> gc;
    // A pass every gc_secs, and as soon as gc_garbage_mb of garbage has piled up (a churning
    // workload would otherwise fill the disk between passes); checked every 2 s. A chunk is
    // deleted at the second pass that sees it garbage, so a trigger leads to two passes.
    using Clock = std::chrono::steady_clock;
    Clock::time_point last_pass = Clock::now();
    if (o.gc_secs > 0)
      gc = std::make_unique<PeriodicTask>("background gc", [&]() -> Status {
        const bool due = Clock::now() - last_pass >= std::chrono::seconds(o.gc_secs);
        if (!due) {
          auto g = garbage_bytes(**store);
          if (!g.ok()) return g.status();
          if (*g < (uint64_t(o.gc_garbage_mb) << 20)) return Status::Ok();
        }
        last_pass = Clock::now();
        GcOptions go;
        go.previous_garbage = &garbage_seen;
        go.compact_below_live = 0.5;
        auto r = collect_garbage(**store, go);
        if (r.ok() && (r->chunks_deleted || r->packs_removed))
          log_info("background gc: deleted " + std::to_string(r->chunks_deleted) + " chunks, removed " +
                   std::to_string(r->packs_removed) + " packs");
        return r.status();
      }, std::min(o.gc_secs, 2));
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(cfg, unsigned(o.threads));
    fuse_loop_cfg_set_idle_threads(cfg, 4);
    rc = fuse_session_loop_mt(se, cfg);
    fuse_loop_cfg_destroy(cfg);
  }
  control_server.reset();  // before the session goes: a request being served may notify it
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  // The final commit below is crash-safe, but a second SIGTERM should not cut it short.
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) signal(sig, SIG_IGN);
  fuse_session_destroy(se);
  s = volume.flush_all();
  if (s.ok()) s = volume.recover();  // files unlinked while open: the kernel holds none now
  if (s.ok()) s = (*store)->commit();
  if (!s.ok()) log_error("final commit failed: " + s.message());
  log_info("unmounted " + o.mountpoint);
  return rc == 0 && s.ok() ? 0 : 1;
}

int run_mount(const MountOptions& in) {
  MountOptions o = in;
  Status s = preflight(o);
  if (!s.ok()) return fail(-1, s.message());
  if (o.foreground) return serve(o, -1);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return fail(-1, "pipe failed");
  pid_t pid = fork();
  if (pid < 0) return fail(-1, "fork failed");
  if (pid > 0) {
    close(p[1]);
    std::string msg;
    char buf[512];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0) msg.append(buf, size_t(n));
    if (msg == "ok") return 0;
    fprintf(stderr, "dzfs: %s\n", msg.size() > 1 ? msg.c_str() + 1 : "the mount process died while starting");
    return 1;
  }
  close(p[0]);
  setsid();
  if (chdir("/") != 0) { /* not fatal */ }
  log_to_syslog(true);
  _exit(serve(o, p[1]));
}

}  // namespace dzfs
