// Background recompression: see recompressor.h.
#include "daemon/recompressor.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <span>

#include "codec/frame.h"
#include "index/log.h"
#include "index/model_registry.h"

namespace dzfs {

static int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

Status queue_model_migration(Store& st) {
  auto active = st.models->active();
  if (active.empty()) return Status::Error(ENOENT, "the volume has no usable active model");
  std::lock_guard<std::mutex> g(st.index.mu);
  DZ_RETURN_IF_ERROR(st.index.db->exec("SAVEPOINT migrate"));
  Stmt u = st.index.db->prepare("UPDATE chunks SET tier_done = 0 WHERE codec = ?");
  u.bind(1, int(kCodecNeural));
  Status s = u.run();
  for (auto& m : active) {  // chunks already under an active model stay as they are
    if (!s.ok()) break;
    Stmt k = st.index.db->prepare("UPDATE chunks SET tier_done = 1 WHERE codec = ? AND model = ?");
    k.bind(1, int(kCodecNeural)).bind_text(2, m->id().hex());
    s = k.run();
  }
  st.index.db->exec(s.ok() ? "RELEASE migrate" : "ROLLBACK TO migrate; RELEASE migrate");
  return s;
}

// The active model that codes the first 8 KiB of the chunk best: domain models (text, genomic
// reads, binaries) each win on their own data, and a sample costs a fraction of a full encode.
static std::shared_ptr<const codec::Model> pick_model(const std::vector<std::shared_ptr<const codec::Model>>& models,
                                                      std::span<const uint8_t> raw) {
  if (models.size() == 1) return models[0];
  std::shared_ptr<const codec::Model> best = models[0];
  size_t best_size = SIZE_MAX;
  std::span<const uint8_t> sample = raw.first(std::min<size_t>(raw.size(), 8192));
  for (auto& m : models) {
    auto f = codec::encode_frame(codec::CodecId::kNeural, sample, m.get());
    if (f.ok() && f->size() < best_size) {
      best_size = f->size();
      best = m;
    }
  }
  return best;
}

Recompressor::Recompressor(Store& store, RecompressOptions opts) : store_(store), opts_(std::move(opts)) {}

Recompressor::~Recompressor() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void Recompressor::start() {
  for (int i = 0; i < opts_.threads; ++i) threads_.emplace_back([this] { worker(); });
}

bool Recompressor::should_pause() const {
  if (!opts_.last_foreground_write_ns) return false;
  return mono_ns() - opts_.last_foreground_write_ns() < 1000000000;
}

Result<std::vector<Recompressor::Claim>> Recompressor::claim(int settle_secs) {
  std::vector<Claim> out;
  std::lock_guard<std::mutex> gi(store_.index.mu);
  std::lock_guard<std::mutex> g(mu_);
  Stmt s = store_.index.db->prepare(
      "SELECT id, pack, off, stored_len, codec FROM chunks WHERE tier_done = 0 AND refcount > 0 AND created <= ? "
      "ORDER BY created LIMIT ?");
  s.bind(1, int64_t(time(nullptr)) - settle_secs).bind(2, int64_t(opts_.batch) * (opts_.threads + 1));
  while (s.step() && int(out.size()) < opts_.batch) {
    int64_t id = s.i64(0);
    if (claimed_.count(id)) continue;
    claimed_.insert(id);
    out.push_back({id, {uint32_t(s.i64(1)), uint64_t(s.i64(2)), uint32_t(s.i64(3))}, s.i64(4) == kCodecNeural});
  }
  DZ_RETURN_IF_ERROR(s.done_status());
  return out;
}

void Recompressor::release(const std::vector<Claim>& batch) {
  std::lock_guard<std::mutex> g(mu_);
  for (const Claim& c : batch) claimed_.erase(c.id);
}

static Status mark_tried(Store& st, int64_t id) {
  std::lock_guard<std::mutex> g(st.index.mu);
  Stmt u = st.index.db->prepare("UPDATE chunks SET tier_done = 1 WHERE id = ?");
  u.bind(1, id);
  return u.run();
}

Status Recompressor::process(const Claim& c) {
  auto models = store_.models->active();
  if (models.empty()) return Status::Error(ENOENT, "the volume has no usable active model");
  auto raw = store_.chunks.get(c.id);
  if (!raw.ok()) {
    ++c_.failed;
    return mark_tried(store_, c.id);  // unreadable: fsck reports it; nothing to recompress
  }
  int64_t t0 = mono_ns();
  std::span<const uint8_t> in(reinterpret_cast<const uint8_t*>((*raw)->data()), (*raw)->size());
  auto model = pick_model(models, in);
  auto frame = codec::encode_frame(codec::CodecId::kNeural, in, model.get());
  bool smaller = frame.ok() && (c.migrate || double(frame->size()) <= double(c.loc.stored_len) * (1.0 - opts_.margin));
  if (smaller) {
    // The frame counts only if it decodes to exactly the chunk's bytes.
    codec::ModelSet set;
    set.add(model);
    auto back = codec::decode_frame(*frame, set);
    if (!back.ok() || back->size() != in.size() || memcmp(back->data(), in.data(), in.size()) != 0) {
      log_error("recompression of chunk " + std::to_string(c.id) + " did not round-trip; keeping it as it is");
      smaller = false;
      ++c_.failed;
    }
  }
  const int64_t busy = mono_ns() - t0;
  c_.busy_ns += busy;
  ++c_.tried;
  c_.raw_bytes += in.size();
  DZ_RETURN_IF_ERROR(add_recompress_work(store_, in.size(), busy));
  if (!smaller) {
    ++c_.kept;
    return mark_tried(store_, c.id);
  }
  size_t new_len = frame->size();
  auto done = store_.chunks.recode(c.id, c.loc, kCodecNeural, std::string(frame->begin(), frame->end()),
                                   model->id().hex());
  if (!done.ok()) return done.status();
  if (*done) {
    ++c_.recompressed;
    c_.bytes_before += c.loc.stored_len;
    c_.bytes_after += new_len;
  }
  return Status::Ok();
}

void Recompressor::worker() {
  // Background work yields to foreground traffic: idle scheduling class and lowest priority.
  sched_param sp{};
  pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
  setpriority(PRIO_PROCESS, pid_t(syscall(SYS_gettid)), 19);
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    if (should_pause()) {
      cv_.wait_for(lk, std::chrono::milliseconds(200));
      continue;
    }
    lk.unlock();
    auto batch = claim(opts_.settle_secs);
    bool idle = !batch.ok() || batch->empty();
    if (batch.ok()) {
      for (const Claim& c : *batch) {
        Status s = process(c);
        if (!s.ok()) log_error("recompression: " + s.message());
        if (stop_) break;
      }
      release(*batch);
    } else {
      log_error("recompression: " + batch.status().message());
    }
    lk.lock();
    if (idle) cv_.wait_for(lk, std::chrono::seconds(2));
  }
}

Status Recompressor::drain(const std::function<void(uint64_t done, uint64_t total)>& progress) {
  auto b = recompress_backlog(store_);
  if (!b.ok()) return b.status();
  uint64_t total = b->chunks, done = 0;
  for (;;) {
    auto batch = claim(0);
    if (!batch.ok()) return batch.status();
    if (batch->empty()) break;
    for (const Claim& c : *batch) {
      DZ_RETURN_IF_ERROR(process(c));
      if (progress) progress(++done, std::max(total, done));
    }
    release(*batch);
  }
  return store_.commit();
}

}  // namespace dzfs
