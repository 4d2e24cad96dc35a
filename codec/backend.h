// dzfs codec: batch API. Many chunks in, many frames out (and back). A backend owns the compute
// (CPU scalar, CPU SIMD now; a GPU backend later) behind one interface, so callers never change.
// Output is a pure function of the input chunk and the model: batch size, thread count and
// backend never change a single bit.
#pragma once
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "codec/frame.h"

namespace dzfs::codec {

struct BatchOptions {
  unsigned threads = 1;  // worker threads for this call (0 = hardware concurrency)
};

class CodecBackend {
 public:
  virtual ~CodecBackend() = default;
  virtual std::string name() const = 0;
  // frames[i] = choose_and_encode(chunks[i]) under the backend's model and options. Fails as a
  // whole only on a library error (out of memory); frames is resized to chunks.size().
  virtual Status encode_batch(std::span<const std::span<const uint8_t>> chunks,
                              std::vector<std::vector<uint8_t>>* frames, const BatchOptions& opts) = 0;
  // out[i] = decode_frame(frames[i]); per-frame errors are reported per item.
  virtual void decode_batch(std::span<const std::span<const uint8_t>> frames,
                            std::vector<Result<std::vector<uint8_t>>>* out, const BatchOptions& opts) = 0;
};

struct CpuBackendOptions {
  Isa isa = Isa::kAuto;        // kScalar forces the reference kernels
  EncodeOptions encode;        // zstd level, try_neural (isa field is overridden by `isa`)
  DecodeOptions decode;        // limits (isa field is overridden by `isa`)
};

// encode_model: model used for new neural frames (may be null: adaptive parts only).
// decode_models: models available for decoding (the encode model is added automatically).
std::unique_ptr<CodecBackend> make_cpu_backend(std::shared_ptr<const Model> encode_model,
                                               const ModelSet& decode_models, const CpuBackendOptions& opts = {});

}  // namespace dzfs::codec
