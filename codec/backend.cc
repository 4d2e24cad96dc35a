#include "codec/backend.h"

#include "codec/util.h"

namespace dzfs::codec {
namespace {

class CpuBackend final : public CodecBackend {
 public:
  CpuBackend(std::shared_ptr<const Model> m, const ModelSet& set, const CpuBackendOptions& o)
      : model_(std::move(m)), models_(set), opts_(o) {
    if (model_) models_.add(model_);
    opts_.encode.isa = resolve_isa(o.isa);
    opts_.decode.isa = opts_.encode.isa;
  }
  std::string name() const override { return std::string("cpu-") + isa_name(opts_.encode.isa); }

  Status encode_batch(std::span<const std::span<const uint8_t>> chunks, std::vector<std::vector<uint8_t>>* frames,
                      const BatchOptions& bo) override {
    frames->assign(chunks.size(), {});
    std::vector<Status> st(chunks.size());
    parallel_for(chunks.size(), bo.threads, [&](size_t i) {
      auto r = choose_and_encode(chunks[i], model_.get(), opts_.encode);
      if (r.ok()) (*frames)[i] = std::move(*r);
      else st[i] = r.status();
    });
    for (size_t i = 0; i < st.size(); ++i)
      if (!st[i].ok()) return Status::Error(st[i].code(), "chunk " + std::to_string(i) + ": " + st[i].message());
    return Status::Ok();
  }

  void decode_batch(std::span<const std::span<const uint8_t>> frames, std::vector<Result<std::vector<uint8_t>>>* out,
                    const BatchOptions& bo) override {
    out->clear();
    out->reserve(frames.size());
    for (size_t i = 0; i < frames.size(); ++i) out->emplace_back(Status::Error(ErrorCode::kInternal, "not run"));
    parallel_for(frames.size(), bo.threads,
                 [&](size_t i) { (*out)[i] = decode_frame(frames[i], models_, opts_.decode); });
  }

 private:
  std::shared_ptr<const Model> model_;
  ModelSet models_;
  CpuBackendOptions opts_;
};

}  // namespace

std::unique_ptr<CodecBackend> make_cpu_backend(std::shared_ptr<const Model> encode_model,
                                               const ModelSet& decode_models, const CpuBackendOptions& opts) {
  return std::make_unique<CpuBackend>(std::move(encode_model), decode_models, opts);
}

}  // namespace dzfs::codec
