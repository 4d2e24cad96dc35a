// Model registry: see model_registry.h.
#include "index/model_registry.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "index/durable_file.h"
#include "index/log.h"

namespace dzfs {

extern "C" const unsigned char* const dzfs_embedded_models[];
extern "C" const unsigned long dzfs_embedded_model_sizes[];
extern "C" const unsigned long dzfs_embedded_model_count;

std::vector<std::span<const uint8_t>> embedded_default_models() {
  std::vector<std::span<const uint8_t>> out;
  for (unsigned long i = 0; i < dzfs_embedded_model_count; ++i)
    out.emplace_back(dzfs_embedded_models[i], size_t(dzfs_embedded_model_sizes[i]));
  if (!out.empty()) return out;
  // Built without a trained model: the codec's seeded random-init network (deterministic bytes).
  static const std::vector<uint8_t> fallback = [] {
    auto bytes = codec::serialize_model(codec::make_random_tensors(codec::RandomModelParams{}));
    return bytes.ok() ? *bytes : std::vector<uint8_t>();
  }();
  out.emplace_back(fallback);
  return out;
}

static std::vector<std::string> split_ids(const std::string& s) {
  std::vector<std::string> out;
  size_t p = 0;
  while (p <= s.size()) {
    size_t q = s.find(',', p);
    if (q == std::string::npos) q = s.size();
    if (q > p) out.push_back(s.substr(p, q - p));
    p = q + 1;
  }
  return out;
}

Status ModelRegistry::load_file(const std::string& path) {
  auto m = codec::Model::load_file(path);
  if (!m.ok()) return Status::Error(EIO, "model file " + path + " is damaged: " + m.status().message());
  std::lock_guard<std::mutex> g(mu_);
  models_.add(*m);
  all_.push_back(*m);
  return Status::Ok();
}

Status ModelRegistry::open() {
  const std::string dir = store_.dir + "/models";
  std::vector<std::string> ids;
  std::string cur;
  {
    std::lock_guard<std::mutex> g(store_.index.mu);
    Stmt s = store_.index.db->prepare("SELECT id FROM models");
    while (s.step()) ids.push_back(s.blob(0));
    DZ_RETURN_IF_ERROR(s.done_status());
    s.reset();
    Stmt c = store_.index.db->prepare("SELECT value FROM meta WHERE key = 'current_model'");
    if (c.step()) cur = c.blob(0);
  }
  for (const std::string& id : ids) {
    // Paths are built only from hex ids: a damaged row never names a file outside models/.
    const bool hex = id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    });
    if (!hex) {
      log_error("index row names model '" + id.substr(0, 40) + "', which is not a model id; ignored (run dzfs fsck)");
      continue;
    }
    Status st = load_file(dir + "/" + id + ".dzm");
    // A damaged model makes only its own chunks unreadable (EIO naming it); the volume mounts.
    if (!st.ok()) log_error(st.message() + "; chunks compressed with it cannot be read");
  }
  std::lock_guard<std::mutex> g(mu_);
  for (const std::string& id : split_ids(cur)) {
    bool found = false;
    for (auto& m : all_)
      if (m->id().hex() == id) { active_.push_back(m); found = true; }
    if (!found) log_error("active model " + id + " is missing or damaged; recompression does not use it");
  }
  return Status::Ok();
}

std::shared_ptr<const codec::Model> ModelRegistry::current() const {
  std::lock_guard<std::mutex> g(mu_);
  return active_.empty() ? nullptr : active_.front();
}

std::vector<std::shared_ptr<const codec::Model>> ModelRegistry::active() const {
  std::lock_guard<std::mutex> g(mu_);
  return active_;
}

Status ModelRegistry::save_active_locked() {
  std::string ids;
  for (auto& m : active_) {
    if (!ids.empty()) ids.push_back(',');
    ids += m->id().hex();
  }
  Stmt c = store_.index.db->prepare("INSERT OR REPLACE INTO meta(key, value) VALUES ('current_model', ?)");
  c.bind_text(1, ids);
  DZ_RETURN_IF_ERROR(c.run());
  // Chunks tried with the old set are worth a try with the new one.
  return store_.index.db->exec("UPDATE chunks SET tier_done = 0 WHERE codec NOT IN (2, 3)");
}

codec::ModelSet ModelRegistry::decode_set() const {
  std::lock_guard<std::mutex> g(mu_);
  return models_;
}

Result<std::string> ModelRegistry::install(std::span<const uint8_t> file, const std::string& parent,
                                           const std::string& summary, Activate how) {
  auto m = codec::Model::load(file);
  if (!m.ok()) return Status::Error(EINVAL, "not a valid model file: " + m.status().message());
  std::string id = (*m)->id().hex();
  DZ_RETURN_IF_ERROR(write_file_durably(store_.dir + "/models", id + ".dzm", file, 0644));
  std::lock_guard<std::mutex> gi(store_.index.mu);
  Stmt s = store_.index.db->prepare(
      "INSERT OR IGNORE INTO models(id, created, parent, arch, summary, size) VALUES (?, ?, ?, ?, ?, ?)");
  s.bind_text(1, id).bind(2, int64_t(time(nullptr))).bind_text(3, parent).bind(4, codec::kArchWmlp);
  s.bind_text(5, summary).bind(6, uint64_t(file.size()));
  DZ_RETURN_IF_ERROR(s.run());
  std::lock_guard<std::mutex> g(mu_);
  std::shared_ptr<const codec::Model> model = *m;
  for (auto& x : all_)
    if (x->id() == model->id()) model = x;
  if (model == *m) {
    models_.add(model);
    all_.push_back(model);
  }
  if (how == Activate::kReplace) active_ = {model};
  bool in = false;
  for (auto& x : active_) in |= x == model;
  if (how == Activate::kAdd && !in) active_.push_back(model);
  if (how != Activate::kNo) DZ_RETURN_IF_ERROR(save_active_locked());
  return id;
}

Status ModelRegistry::set_active(const std::vector<std::string>& ids) {
  if (ids.empty()) return Status::Error(EINVAL, "the active model set cannot be empty");
  std::lock_guard<std::mutex> gi(store_.index.mu);
  std::lock_guard<std::mutex> g(mu_);
  std::vector<std::shared_ptr<const codec::Model>> next;
  for (const std::string& id : ids) {
    auto it = std::find_if(all_.begin(), all_.end(), [&](auto& m) { return m->id().hex() == id; });
    if (it == all_.end()) return Status::Error(ENOENT, "model " + id + " is not in the store (or is damaged)");
    if (std::find(next.begin(), next.end(), *it) == next.end()) next.push_back(*it);
  }
  active_ = next;
  return save_active_locked();
}

Result<std::vector<ModelInfo>> ModelRegistry::list() const {
  std::vector<ModelInfo> out;
  std::lock_guard<std::mutex> g(store_.index.mu);
  std::string cur;
  {
    Stmt c = store_.index.db->prepare("SELECT value FROM meta WHERE key = 'current_model'");
    if (c.step()) cur = c.blob(0);
  }
  Stmt s = store_.index.db->prepare(
      "SELECT m.id, m.created, COALESCE(m.parent, ''), m.arch, m.summary, m.size, "
      "(SELECT COUNT(*) FROM chunks c WHERE c.model = m.id), "
      "(SELECT COALESCE(SUM(stored_len), 0) FROM chunks c WHERE c.model = m.id), "
      "(SELECT COALESCE(SUM(raw_len), 0) FROM chunks c WHERE c.model = m.id) FROM models m ORDER BY m.created, m.id");
  while (s.step()) {
    ModelInfo i;
    i.id = s.blob(0);
    i.created = s.i64(1);
    i.parent = s.blob(2);
    i.arch = uint32_t(s.i64(3));
    i.summary = s.blob(4);
    i.size = s.i64(5);
    i.chunks = s.i64(6);
    i.stored_bytes = s.i64(7);
    i.raw_bytes = s.i64(8);
    for (const std::string& a : split_ids(cur)) i.current |= i.id == a;
    out.push_back(i);
  }
  DZ_RETURN_IF_ERROR(s.done_status());
  return out;
}

Result<int> ModelRegistry::retire_unused() {
  auto models = list();
  if (!models.ok()) return models.status();
  int n = 0;
  for (const ModelInfo& m : *models) {
    if (m.current || m.chunks > 0) continue;
    {
      std::lock_guard<std::mutex> g(store_.index.mu);
      // Re-checked under the lock: a worker may have just recompressed a chunk with it.
      Stmt s = store_.index.db->prepare(
          "DELETE FROM models WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM chunks WHERE model = ?1)");
      s.bind_text(1, m.id);
      DZ_RETURN_IF_ERROR(s.run());
      if (store_.index.db->changes() == 0) continue;
    }
    // The file goes after the commit that drops the row; a crash in between leaves a stray file.
    DZ_RETURN_IF_ERROR(store_.commit());
    ::unlink((store_.dir + "/models/" + m.id + ".dzm").c_str());
    {
      std::lock_guard<std::mutex> g(mu_);
      for (size_t i = 0; i < all_.size(); ++i)
        if (all_[i]->id().hex() == m.id) all_.erase(all_.begin() + long(i));
      codec::ModelSet fresh;
      for (auto& x : all_) fresh.add(x);
      models_ = fresh;
    }
    ++n;
  }
  return n;
}

Result<std::string> ModelRegistry::decode(const ChunkRecord& rec) const {
  codec::ModelSet set = decode_set();
  auto raw = codec::decode_frame({reinterpret_cast<const uint8_t*>(rec.payload.data()), rec.payload.size()}, set);
  if (!raw.ok()) return Status::Error(EIO, "neural frame: " + raw.status().to_string());
  return std::string(raw->begin(), raw->end());
}

}  // namespace dzfs
