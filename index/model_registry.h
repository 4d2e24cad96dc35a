// Model versions of a volume: model files kept in STORE/models/<id>.dzm and rows in the `models`
// table (id = content hash, created, parent, architecture, training summary, size). The active
// set (meta 'current_model': ids separated by commas, the first one primary) is what background
// recompression encodes with: each chunk gets the active model that codes a sample of it best
// (domain models for text, genomic reads, binaries). Every model a chunk names stays loadable; a
// model is retired (file and row removed) only when no chunk names it and it is not active.
//
// A volume without a model of its own uses the default model embedded in the dzfs binary: it is
// installed into the store at first use, so the volume never depends on the binary's copy.
#pragma once
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "codec/frame.h"
#include "codec/model.h"
#include "index/store.h"

namespace dzfs {

struct ModelInfo {
  std::string id, parent, summary;
  int64_t created = 0, size = 0, chunks = 0, stored_bytes = 0, raw_bytes = 0;
  uint32_t arch = 0;
  bool current = false;
};

// The default models compiled into this binary (trained ones when the build had them; else the
// codec's seeded random-init network). The first is the primary.
std::vector<std::span<const uint8_t>> embedded_default_models();

class ModelRegistry {
 public:
  explicit ModelRegistry(Store& store) : store_(store) {}
  Status open();  // loads every model of the store
  std::shared_ptr<const codec::Model> current() const;  // the primary active model
  std::vector<std::shared_ptr<const codec::Model>> active() const;
  codec::ModelSet decode_set() const;
  // Validates, stores durably, records; returns the model id (hex). Caller commits.
  // kReplace makes it the only active model; kAdd adds it to the active set.
  enum class Activate { kNo, kReplace, kAdd };
  Result<std::string> install(std::span<const uint8_t> file, const std::string& parent,
                              const std::string& summary, Activate how);
  // Makes exactly these models (ids, primary first) the active set; each must be loaded. Caller commits.
  Status set_active(const std::vector<std::string>& ids);
  Result<std::vector<ModelInfo>> list() const;
  // Removes models that no chunk names and that are not current; returns how many.
  Result<int> retire_unused();
  // Decodes a neural chunk record's payload (a codec frame) with the store's models.
  Result<std::string> decode(const ChunkRecord& rec) const;

 private:
  Status load_file(const std::string& path);
  Store& store_;
  mutable std::mutex mu_;
  codec::ModelSet models_;
  std::vector<std::shared_ptr<const codec::Model>> all_;
  Status save_active_locked();  // caller holds IndexDb::mu and mu_
  std::vector<std::shared_ptr<const codec::Model>> active_;
};

}  // namespace dzfs
