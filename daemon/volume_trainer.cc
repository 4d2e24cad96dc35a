// Per-volume training: see volume_trainer.h.
#include "daemon/volume_trainer.h"

#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "codec/frame.h"
#include "codec/model.h"
#include "daemon/model_inbox.h"
#include "index/model_registry.h"
#include "index/store.h"

namespace dzfs {
namespace {

namespace fsys = std::filesystem;
using ModelPtr = std::shared_ptr<const codec::Model>;

void say(const VolumeTrainOptions& o, const std::string& m) {
  if (o.say) o.say(m);
}

std::string mib(uint64_t b) {
  char s[32];
  snprintf(s, sizeof s, "%.1f MiB", double(b) / (1 << 20));
  return s;
}

Status write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  f.close();
  if (!f) return Status::Error(EIO, "cannot write " + path);
  return Status::Ok();
}

struct Sample {
  std::vector<ModelPtr> active;
  ModelPtr init;  // the active model that codes the most of the volume: the one to fine-tune
  TrainingOutcome counts;
};

// The active model naming the most live raw bytes (the primary when none names any): fine-tuning
// the model that already wins the volume's chunks is what can beat it.
Result<ModelPtr> busiest_active_model(Store& st, const std::vector<ModelPtr>& active) {
  std::lock_guard<std::mutex> g(st.index.mu);
  Stmt q = st.index.db->prepare(
      "SELECT model FROM chunks WHERE refcount > 0 AND model IS NOT NULL GROUP BY model ORDER BY SUM(raw_len) DESC");
  while (q.step()) {
    const std::string id = q.blob(0);
    for (auto& m : active)
      if (m->id().hex() == id) return m;
  }
  DZ_RETURN_IF_ERROR(q.done_status());
  return active.front();
}

// Step 1. Read-only: works beside a mount (the index is read at its last commit).
Result<Sample> write_sample(const std::string& dir, const std::string& work, const VolumeTrainOptions& o) {
  StoreOptions so;
  so.readonly = true;
  so.cache_bytes = 8u << 20;
  auto st = Store::open(dir, so);
  if (!st.ok()) return st.status();
  Sample s;
  s.active = (*st)->models->active();
  if (s.active.empty()) return Status::Error(ENOENT, "the volume has no usable active model to start from");
  auto init = busiest_active_model(**st, s.active);
  if (!init.ok()) return init.status();
  s.init = *init;
  std::vector<int64_t> ids;
  {
    std::lock_guard<std::mutex> g((*st)->index.mu);
    Stmt q = (*st)->index.db->prepare(
        "SELECT id FROM chunks WHERE refcount > 0 ORDER BY (id * 2654435761) % 4294967296, id");
    while (q.step()) ids.push_back(q.i64(0));
    DZ_RETURN_IF_ERROR(q.done_status());
  }
  TrainingOutcome& c = s.counts;
  uint64_t unreadable = 0, n = 0;
  for (int64_t id : ids) {
    if (c.train_bytes >= o.sample_bytes && c.held_bytes >= o.heldback_bytes) break;
    const bool held = n++ % 8 == 7;
    if (held ? c.held_bytes >= o.heldback_bytes : c.train_bytes >= o.sample_bytes) continue;
    auto raw = (*st)->chunks.get(id);
    if (!raw.ok()) {  // damaged or moved away meanwhile: fsck's business, not training's
      ++unreadable;
      continue;
    }
    const std::string path = work + (held ? "/heldback/" : "/train/") + std::to_string(id);
    DZ_RETURN_IF_ERROR(write_file(path, **raw));
    (held ? c.held_chunks : c.train_chunks)++;
    (held ? c.held_bytes : c.train_bytes) += (*raw)->size();
  }
  if (c.train_bytes < (256u << 10) || c.held_chunks < 2)
    return Status::Error(ENODATA, "the volume holds too little data to train on (" + mib(c.train_bytes + c.held_bytes) +
                                      " sampled; at least 0.3 MiB in 16 chunks is needed)");
  say(o, "sampled " + std::to_string(c.train_chunks) + " chunks (" + mib(c.train_bytes) + ") to train on, " +
             std::to_string(c.held_chunks) + " (" + mib(c.held_bytes) + ") held back" +
             (unreadable ? ", " + std::to_string(unreadable) + " unreadable chunks skipped" : ""));
  return s;
}

// Step 2: the trainer's config follows the primary model's shape (init must match it).
Status write_config(const std::string& path, const codec::Model& init, const std::string& init_path,
                    const std::string& work, const VolumeTrainOptions& o) {
  std::string lut = init.manifest_value("config.lut_range");
  if (lut.empty()) lut = "4";
  char text[2048];
  snprintf(text, sizeof text,
           "# written by dzfs train STORE: fine-tune the volume's primary model on a sample of it\n"
           "arch = wmlp\nwindow = %u\nhidden = %u\nlayers = %u\nlut_range = %s\n"
           "steps = %d\nbatch = %d\nlr = %g\nlr_final = 0.1\nwarmup = %d\nseed = 1\nchunk = 65536\n"
           "eval_every = 0\nvalid_positions = 131072\nthreads = 1\nlog_every = 50\n"
           "init = %s\ndata = %s/train\nvalid = %s/heldback\nout = %s/candidate.dzm\n",
           init.spec().window, init.spec().hidden, init.spec().layers, lut.c_str(), o.steps, o.batch, o.lr,
           std::min(100, o.steps / 10), init_path.c_str(), work.c_str(), work.c_str(), work.c_str());
  return write_file(path, text);
}

Status run_trainer(const std::string& trainer, const std::string& config, const std::string& log,
                   const VolumeTrainOptions& o) {
  pid_t pid = fork();
  if (pid < 0) return Status::Error(errno, "fork failed");
  if (pid == 0) {
    if (o.idle_priority) {
      sched_param sp{};
      sched_setscheduler(0, SCHED_IDLE, &sp);
    }
    setpriority(PRIO_PROCESS, 0, 19);
    if (o.quiet) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
    }
    execl(trainer.c_str(), "dzfs-train", "--config", config.c_str(), static_cast<char*>(nullptr));
    fprintf(stderr, "cannot run %s: %s\n", trainer.c_str(), strerror(errno));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return Status::Error(errno, "waitpid failed");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  return Status::Error(EIO, trainer + " failed (" +
                                (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                                   : "signal " + std::to_string(WTERMSIG(status))) +
                                (o.quiet ? "); its output is in " + log : ")"));
}

// Step 3: per held-back chunk, the frame size under every model; models[0..k-1] = active,
// models[k] = candidate.
Result<std::vector<std::vector<size_t>>> frame_sizes(const std::string& dir, const std::vector<ModelPtr>& models,
                                                     int threads) {
  std::vector<std::string> files;
  for (auto& e : fsys::directory_iterator(dir)) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  std::vector<std::vector<size_t>> sizes(files.size(), std::vector<size_t>(models.size(), SIZE_MAX));
  std::atomic<size_t> next{0};
  std::atomic<bool> bad{false};
  auto work = [&] {
    for (size_t i; (i = next++) < files.size();) {
      std::ifstream f(files[i], std::ios::binary);
      std::vector<uint8_t> raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      for (size_t m = 0; m < models.size(); ++m) {
        auto fr = codec::encode_frame(codec::CodecId::kNeural, raw, models[m].get());
        if (fr.ok()) sizes[i][m] = fr->size();
        else bad = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (bad) return Status::Error(EIO, "the codec failed to encode a held-back chunk");
  return sizes;
}

std::string summary_of(const TrainingOutcome& r, const VolumeTrainOptions& o) {
  char s[512];
  snprintf(s, sizeof s,
           "trained on this volume: %llu chunks (%s), %d steps from %s; held back %llu chunks: %llu -> %llu bytes "
           "(%+.2f%%)",
           (unsigned long long)r.train_chunks, mib(r.train_bytes).c_str(), o.steps, r.parent.substr(0, 8).c_str(),
           (unsigned long long)r.held_chunks, (unsigned long long)r.before, (unsigned long long)r.after,
           r.before ? 100.0 * (double(r.after) - double(r.before)) / double(r.before) : 0.0);
  return s;
}

// Step 4 on a volume nobody holds: apply the order here. Returns false if somebody holds it.
Result<bool> adopt_here(const std::string& dir) {
  if (Store::lock_holder(dir) != 0) return false;
  auto st = Store::open(dir, StoreOptions{});
  if (!st.ok() && st.status().code() == EBUSY) return false;  // mounted meanwhile
  if (!st.ok()) return st.status();
  auto n = apply_adoptions(**st);
  if (!n.ok()) return n.status();
  return true;
}

// On a mounted volume the daemon applies the order; wait until it has.
Status wait_for_daemon(const std::string& dir, const std::string& id) {
  const std::string order = dir + "/inbox/" + id + ".adopt";
  for (int i = 0; i < 1200 && access(order.c_str(), F_OK) == 0; ++i) usleep(100000);
  if (access(order.c_str(), F_OK) == 0)
    return Status::Error(ETIMEDOUT, "the mount daemon has not adopted model " + id + " after 120 s (it stays in " +
                                        dir + "/inbox and is adopted at the next mount)");
  if (access((dir + "/inbox/rejected/" + id + ".adopt").c_str(), F_OK) == 0)
    return Status::Error(EIO, "the mount daemon rejected model " + id + " (see its log)");
  return Status::Ok();
}

class TrainLock {
 public:
  explicit TrainLock(const std::string& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {}
  ~TrainLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool acquire() { return fd_ >= 0 && flock(fd_, LOCK_EX | LOCK_NB) == 0; }

 private:
  int fd_;
};

Result<TrainingOutcome> train_in(const std::string& dir, const std::string& work, const VolumeTrainOptions& o) {
  const std::string trainer = o.trainer.empty() ? find_trainer() : o.trainer;
  if (trainer.empty())
    return Status::Error(ENOENT, "dzfs-train is not installed (build dzfs with libtorch: apt-get install libtorch-dev)");
  std::error_code ec;
  fsys::remove_all(work, ec);
  if (!fsys::create_directories(work + "/train", ec) || !fsys::create_directories(work + "/heldback", ec))
    return Status::Error(EIO, "cannot create " + work + ": " + ec.message());
  ::chmod(work.c_str(), 0700);  // the sample is the volume's data

  auto sample = write_sample(dir, work, o);
  if (!sample.ok()) return sample.status();
  TrainingOutcome r = sample->counts;
  VolumeTrainOptions run = o;
  if (run.steps <= 0) run.steps = int(std::clamp<uint64_t>(2 * r.train_bytes / uint64_t(o.batch), 100, 1000));
  const ModelPtr& init = sample->init;
  r.parent = init->id().hex();
  DZ_RETURN_IF_ERROR(write_config(work + "/train.conf", *init, dir + "/models/" + r.parent + ".dzm", work, run));
  say(o, "training (fine-tuning model " + r.parent.substr(0, 8) + ", " + std::to_string(run.steps) + " steps)");
  DZ_RETURN_IF_ERROR(run_trainer(trainer, work + "/train.conf", work + "/train.log", run));

  auto candidate = codec::Model::load_file(work + "/candidate.dzm");
  if (!candidate.ok()) return Status::Error(EIO, "the trained model is not loadable: " + candidate.status().message());
  r.model_id = (*candidate)->id().hex();
  std::vector<ModelPtr> models = sample->active;
  models.push_back(*candidate);
  say(o, "evaluating on " + std::to_string(r.held_chunks) + " held-back chunks with " +
             std::to_string(models.size()) + " models");
  auto sizes = frame_sizes(work + "/heldback", models, o.threads);
  if (!sizes.ok()) return sizes.status();
  const size_t k = models.size() - 1;
  std::vector<uint64_t> wins(models.size(), 0);
  for (auto& row : *sizes) {
    r.before += *std::min_element(row.begin(), row.begin() + long(k));
    const size_t best = size_t(std::min_element(row.begin(), row.end()) - row.begin());
    r.after += row[best];
    ++wins[best];
  }
  r.summary = summary_of(r, run);
  r.adopted = double(r.after) <= double(r.before) * (1.0 - o.margin) && r.after < r.before;
  if (!r.adopted) return r;

  AdoptionOrder order;
  order.model_id = r.model_id;
  order.parent = r.parent;
  order.summary = r.summary;
  order.migrate = o.migrate;
  order.active.push_back(r.model_id);
  for (size_t m = 0; m < k && order.active.size() < o.max_active; ++m)
    if (wins[m] > 0) order.active.push_back(models[m]->id().hex());
  std::ifstream f(work + "/candidate.dzm", std::ios::binary);
  std::vector<uint8_t> file((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  DZ_RETURN_IF_ERROR(post_adoption(dir, file, order));
  auto here = adopt_here(dir);
  if (!here.ok()) return here.status();
  if (!*here && o.wait) DZ_RETURN_IF_ERROR(wait_for_daemon(dir, r.model_id));
  return r;
}

}  // namespace

std::string find_trainer() {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    std::string beside(self, size_t(n));
    beside = beside.substr(0, beside.rfind('/') + 1) + "dzfs-train";
    if (access(beside.c_str(), X_OK) == 0) return beside;
  }
  const char* path = getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (size_t a = 0; a <= p.size();) {
    size_t b = p.find(':', a);
    if (b == std::string::npos) b = p.size();
    std::string cand = p.substr(a, b - a) + "/dzfs-train";
    if (b > a && access(cand.c_str(), X_OK) == 0) return cand;
    a = b + 1;
  }
  return "";
}

Result<TrainingOutcome> train_volume(const std::string& dir, const VolumeTrainOptions& o) {
  TrainLock lock(dir + "/train.lock");
  if (!lock.acquire()) return Status::Error(EBUSY, "a training of " + dir + " is already running");
  const std::string work = dir + "/train.tmp";
  auto r = train_in(dir, work, o);
  std::error_code ec;
  if (r.ok() || !o.quiet) fsys::remove_all(work, ec);  // a failed background run keeps its log
  return r;
}

}  // namespace dzfs
