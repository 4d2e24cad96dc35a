// Model versions of a volume: model files kept in STORE/models/<id>.dzm and rows in the `models`
// table (id = content hash, created, parent, architecture, training summary, size). One model is
// current (meta 'current_model'): background recompression encodes with it. Every model a chunk
// names stays loadable; a model is retired (file and row removed) only when no chunk names it
// and it is not current.
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

// The default model compiled into this binary (a trained one when the build had it).
std::span<const uint8_t> embedded_default_model();

class ModelRegistry {
 public:
  explicit ModelRegistry(Store& store) : store_(store) {}
  // Loads every model of the store; installs the embedded default as current if there is none.
  Status open(bool install_default);
  std::shared_ptr<const codec::Model> current() const;
  codec::ModelSet decode_set() const;
  // Validates, stores durably, records; returns the model id (hex). Caller commits.
  Result<std::string> install(std::span<const uint8_t> file, const std::string& parent,
                              const std::string& summary, bool make_current);
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
  std::shared_ptr<const codec::Model> current_;
};

}  // namespace dzfs
