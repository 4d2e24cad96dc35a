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
#include "index/group_record.h"
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
  Stmt u = st.index.db->prepare("UPDATE chunks SET tier_done = 0 WHERE codec IN (?, ?)");
  u.bind(1, int(kCodecNeural)).bind(2, int(kCodecGroup));
  Status s = u.run();
  for (auto& m : active) {  // chunks already under an active model stay as they are
    if (!s.ok()) break;
    Stmt k = st.index.db->prepare("UPDATE chunks SET tier_done = 1 WHERE codec IN (?, ?) AND model = ?");
    k.bind(1, int(kCodecNeural)).bind(2, int(kCodecGroup)).bind_text(3, m->id().hex());
    s = k.run();
  }
  st.index.db->exec(s.ok() ? "RELEASE migrate" : "ROLLBACK TO migrate; RELEASE migrate");
  return s;
}

// The active model that codes a sample of the group best: domain models (text, genomic reads,
// binaries) each win on their own data, and a sample costs a fraction of a full encode.
static std::shared_ptr<const codec::Model> pick_model(const std::vector<std::shared_ptr<const codec::Model>>& models,
                                                      std::span<const uint8_t> raw) {
  if (models.size() == 1) return models[0];
  std::shared_ptr<const codec::Model> best = models[0];
  size_t best_size = SIZE_MAX;
  std::span<const uint8_t> sample = raw.first(std::min<size_t>(raw.size(), 16384));
  codec::EncodeOptions eo;
  eo.frame_version = codec::kGroupFrameVersion;
  for (auto& m : models) {
    auto f = codec::encode_frame(codec::CodecId::kNeural, sample, m.get(), eo);
    if (f.ok() && f->size() < best_size) {
      best_size = f->size();
      best = m;
    }
  }
  return best;
}

Recompressor::Recompressor(Store& store, RecompressOptions opts) : store_(store), opts_(std::move(opts)) {
  if (opts_.group_bytes == 0) opts_.group_bytes = uint64_t(store_.cfg.group_kb) << 10;
  opts_.group_bytes = std::min<uint64_t>(opts_.group_bytes, kMaxGroupRawBytes);
}

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

// Where a chunk belongs in group order: files of one kind (name extension) together, then by
// directory, name and offset, so that a file's chunks are in order and similar files adjacent.
static std::string order_key(SqliteDb& db, int64_t chunk) {
  char num[40];
  Stmt e = db.prepare("SELECT ino, off FROM extents WHERE chunk = ? LIMIT 1");
  e.bind(1, chunk);
  if (!e.step()) return std::string("\xff");  // no extent (yet): last
  const int64_t ino = e.i64(0), off = e.i64(1);
  std::string ext, name;
  int64_t parent = 0;
  Stmt d = db.prepare("SELECT parent, name FROM dirents WHERE ino = ? LIMIT 1");
  d.bind(1, ino);
  if (d.step()) {
    parent = d.i64(0);
    name = d.blob(1);
    const size_t dot = name.rfind('.');
    if (dot != std::string::npos && dot > 0 && name.size() - dot <= 16)
      for (char c : name.substr(dot + 1)) ext += char(c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  snprintf(num, sizeof num, "%016llx", (unsigned long long)parent);
  std::string key = ext + '\0' + num + '\0' + name + '\0';
  snprintf(num, sizeof num, "%016llx%016llx", (unsigned long long)ino, (unsigned long long)off);
  return key + num;
}

static Status mark_tried(Store& st, const std::vector<int64_t>& ids) {
  std::lock_guard<std::mutex> g(st.index.mu);
  for (int64_t id : ids) {
    Stmt u = st.index.db->prepare("UPDATE chunks SET tier_done = 1 WHERE id = ?");
    u.bind(1, id);
    DZ_RETURN_IF_ERROR(u.run());
  }
  return Status::Ok();
}

Result<std::vector<std::vector<Recompressor::Claim>>> Recompressor::claim(int settle_secs) {
  std::vector<Claim> window;
  std::vector<int64_t> untouchable;  // incompressible (raw tier): tried, never grouped
  const uint64_t want = opts_.group_bytes * uint64_t(std::max(1, opts_.window_groups));
  {
    std::lock_guard<std::mutex> gi(store_.index.mu);
    std::lock_guard<std::mutex> g(mu_);
    Stmt s = store_.index.db->prepare(
        "SELECT id, pack, off, stored_len, codec, COALESCE(grp, 0), raw_len FROM chunks "
        "WHERE tier_done = 0 AND refcount > 0 AND created <= ? ORDER BY created, id");
    s.bind(1, int64_t(time(nullptr)) - settle_secs);
    uint64_t raw = 0;
    while (raw < want && s.step()) {
      const int64_t id = s.i64(0);
      if (claimed_.count(id)) continue;
      Claim c{id, {{uint32_t(s.i64(1)), uint64_t(s.i64(2)), uint32_t(s.i64(3))}, s.i64(5)}, uint32_t(s.i64(6)),
              uint8_t(s.i64(4)), {}};
      if (c.codec == kCodecRaw) {
        untouchable.push_back(id);
        continue;
      }
      claimed_.insert(id);
      raw += c.raw_len;
      window.push_back(std::move(c));
    }
    DZ_RETURN_IF_ERROR(s.done_status());
    for (Claim& c : window) c.order = order_key(*store_.index.db, c.id);
  }
  DZ_RETURN_IF_ERROR(mark_tried(store_, untouchable));
  std::stable_sort(window.begin(), window.end(), [](const Claim& a, const Claim& b) { return a.order < b.order; });
  std::vector<std::vector<Claim>> groups;
  uint64_t in_group = 0;
  for (Claim& c : window) {
    if (groups.empty() || in_group + c.raw_len > opts_.group_bytes) {
      groups.emplace_back();
      in_group = 0;
    }
    in_group += c.raw_len;
    groups.back().push_back(std::move(c));
  }
  return groups;
}

void Recompressor::release(const std::vector<std::vector<Claim>>& groups) {
  std::lock_guard<std::mutex> g(mu_);
  for (auto& group : groups)
    for (const Claim& c : group) claimed_.erase(c.id);
}


Status Recompressor::process(const std::vector<Claim>& claims) {
  auto models = store_.models->active();
  if (models.empty()) return Status::Error(ENOENT, "the volume has no usable active model");
  const int64_t t0 = mono_ns();
  std::vector<GroupedChunk> members, fast;  // fast: members whose record is in the fast stream
  std::vector<GroupMember> table;
  std::vector<int64_t> skipped;
  std::vector<uint8_t> raw;
  uint64_t before = 0;
  bool forced = false;  // members already neural or grouped: a new model, or a regroup
  for (const Claim& c : claims) {
    auto bytes = store_.chunks.get(c.id);
    if (!bytes.ok()) {  // unreadable: fsck reports it; nothing to recompress
      ++c_.failed;
      skipped.push_back(c.id);
      continue;
    }
    members.push_back({c.id, c.was, c.raw_len});
    if (c.codec == kCodecZstd) fast.push_back(members.back());
    table.push_back({c.raw_len, hash_chunk((*bytes)->data(), (*bytes)->size())});
    raw.insert(raw.end(), (*bytes)->begin(), (*bytes)->end());
    before += c.was.loc.stored_len + kRecordHeaderSize;
    forced |= c.codec == kCodecNeural || c.codec == kCodecGroup;
  }
  DZ_RETURN_IF_ERROR(mark_tried(store_, skipped));
  if (members.empty()) return Status::Ok();
  auto model = pick_model(models, raw);
  codec::EncodeOptions eo;
  eo.frame_version = codec::kGroupFrameVersion;
  auto frame = codec::encode_frame(codec::CodecId::kNeural, raw, model.get(), eo);
  std::vector<int64_t> ids;
  for (const GroupedChunk& m : members) ids.push_back(m.id);
  if (!frame.ok()) {  // tried, so that it is not retried in a loop
    ++c_.failed;
    DZ_RETURN_IF_ERROR(mark_tried(store_, ids));
    return Status::Error(EIO, "group encode: " + frame.status().message());
  }
  std::string payload = encode_group_payload(table, *frame);
  bool keep = forced || double(payload.size() + kRecordHeaderSize) <= double(before) * (1.0 - opts_.margin);
  if (keep) {
    // The group counts only if it decodes to exactly the members' bytes.
    codec::ModelSet set;
    set.add(model);
    auto back = codec::decode_frame(*frame, set);
    if (!back.ok() || *back != raw) {
      log_error("a group of " + std::to_string(members.size()) + " chunks did not round-trip; keeping them as they are");
      keep = false;
      ++c_.failed;
    }
  }
  const int64_t busy = mono_ns() - t0;
  c_.busy_ns += busy;
  c_.tried += members.size();
  c_.raw_bytes += raw.size();
  DZ_RETURN_IF_ERROR(add_recompress_work(store_, members.size(), raw.size(), busy));
  if (!keep && forced) {  // did not round-trip: tried, so that it is not retried in a loop
    c_.kept += members.size();
    return mark_tried(store_, ids);
  }
  // From here on a member is marked tried by the update that moves it (into the group, or to a
  // settled pack). One that gc moved or deleted meanwhile stays untried, so that it is claimed
  // again from where it is now instead of being left in the fast stream for good.
  if (!keep) {  // they stay as they are, so they leave the fast stream
    c_.kept += members.size();
    return store_.chunks.settle(fast).status();
  }
  const size_t after = payload.size();
  const ChunkHash th = group_table_hash(std::string_view(payload).substr(0, group_table_len(table.size())));
  auto moved = store_.chunks.store_group(members, raw.size(), th, std::move(payload), model->id().hex());
  if (!moved.ok()) return moved.status();
  c_.recompressed += *moved;
  c_.bytes_before += before;
  c_.bytes_after += after;
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
    auto groups = claim(opts_.settle_secs);
    bool idle = !groups.ok() || groups->empty();
    if (groups.ok()) {
      for (const auto& group : *groups) {
        if (stop_) break;
        Status s = process(group);
        if (!s.ok()) log_error("recompression: " + s.message());
      }
      release(*groups);
    } else {
      log_error("recompression: " + groups.status().message());
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
    auto groups = claim(0);
    if (!groups.ok()) return groups.status();
    if (groups->empty()) break;
    for (const auto& group : *groups) {
      Status s = process(group);
      if (!s.ok()) {
        release(*groups);
        return s;
      }
      done += group.size();
      if (progress) progress(done, std::max(total, done));
    }
    release(*groups);
  }
  return store_.commit();
}

}  // namespace dzfs
