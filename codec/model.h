// dzfs codec: the pretrained byte-level network ("model") used by neural frames.
// File format: see codec/FORMAT.md, section "Model file". Architecture 1 = WMLP: a causal window
// MLP over the last W bytes of the chunk with a bit-tree output of 255 nodes, integer-only.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codec/isa.h"
#include "codec/status.h"

namespace dzfs::codec {

// Content hash of a model file: XXH3-128 of all its bytes (canonical big-endian byte order).
// The all-zero id is reserved: "no network" (neural frames coded by the adaptive parts alone).
struct ModelId {
  std::array<uint8_t, 16> bytes{};
  bool is_null() const;
  std::string hex() const;
  static Result<ModelId> from_hex(std::string_view hex);
  static ModelId of_bytes(std::span<const uint8_t> file);
  friend bool operator==(const ModelId& a, const ModelId& b) { return a.bytes == b.bytes; }
};

inline constexpr uint32_t kModelFormatVersion = 1;
inline constexpr uint32_t kArchWmlp = 1;
inline constexpr uint32_t kPadSymbol = 256;  // window slot before the start of the chunk
inline constexpr uint32_t kSymbols = 257;    // 256 byte values + pad
inline constexpr uint32_t kTreeNodes = 255;  // bit-tree nodes 1..255, row index node-1

// Hyperparameters and requantization constants (arch WMLP). requant(x, m, s) =
// (x * m + (s ? 1 << (s-1) : 0)) >> s  (arithmetic shift) in int32: the loader proves from the
// actual weights that |x| * m + 2^(s-1) < 2^31 for every unit, so it never overflows.
struct NetSpec {
  uint32_t window = 16;  // W: bytes of context, 1..64
  uint32_t hidden = 64;  // H: hidden width, multiple of 32, 32..512
  uint32_t layers = 1;   // 1 or 2 hidden layers
  int32_t m1 = 1, s1 = 0, m2 = 1, s2 = 0, mo = 1, so = 0;
};

// Plain tensors of a WMLP model, as stored in the file (row-major, see FORMAT.md).
struct ModelTensors {
  NetSpec spec;
  std::vector<int8_t> t1;   // [W][257][H]  per-position symbol table (embedding x layer-1 folded)
  std::vector<int32_t> b1;  // [H]
  std::vector<int8_t> a1;   // [256] activation LUT (values 0..127), index clamp(requant(acc1),-128,127)+128
  std::vector<int8_t> w2;   // [H][H] (row = output unit), only when layers == 2
  std::vector<int32_t> b2;  // [H]
  std::vector<int8_t> a2;   // [256] (values 0..127)
  std::vector<int8_t> wo;   // [255][H] bit-tree node weights
  std::vector<int32_t> bo;  // [255]
  std::vector<std::pair<std::string, std::string>> manifest;  // training metadata, key=value
};

// Checks shapes and value ranges of tensors against the arch spec (what the loader enforces).
Status validate_tensors(const ModelTensors& t);
// Serializes to the model file format (validates first).
Result<std::vector<uint8_t>> serialize_model(const ModelTensors& t);

// Deterministic random-init model (stand-in until trained models exist). Integer-only PRNG, so
// the same parameters give the same bytes (and model id) on every machine.
// Defaults = the default model size (W 16, H 64, one hidden layer): ~280 KB file, ~1.1 MB/s
// per core with the adaptive parts on the reference VM (see FORMAT.md "Performance").
struct RandomModelParams {
  uint64_t seed = 1;
  uint32_t window = 16;
  uint32_t hidden = 64;
  uint32_t layers = 1;
};
ModelTensors make_random_tensors(const RandomModelParams& p);

namespace detail {
struct NetKernels;
}

class Model {
 public:
  // Validates checksum, header, every section size/shape/range before allocating.
  static Result<std::shared_ptr<const Model>> load(std::span<const uint8_t> file);
  static Result<std::shared_ptr<const Model>> load_file(const std::string& path);
  // Builds from tensors (serializes, so the id is that of the equivalent file).
  static Result<std::shared_ptr<const Model>> from_tensors(const ModelTensors& t);

  const ModelId& id() const { return id_; }
  const NetSpec& spec() const { return t_.spec; }
  const ModelTensors& tensors() const { return t_; }
  size_t file_size() const { return file_size_; }
  std::string manifest_value(std::string_view key) const;

  // Reference forward pass (scalar, integer-only), the specification the trainer's fake-quantized
  // forward must reproduce. window[i] = symbol at distance i+1 before the predicted byte
  // (0..255, or kPadSymbol before the chunk start); window.size() must equal spec().window.
  // hidden gets the H last-layer activations; logits gets the 255 node outputs in the stretch
  // domain (8 fractional bits, clamped to +-2047): logit of P(bit = 1) at node n is logits[n-1].
  Status forward_reference(std::span<const uint16_t> window, std::vector<uint8_t>* hidden,
                           std::vector<int16_t>* logits) const;

  // Derived layout for the kernels: WO/BO rows regrouped per nibble tree, [17][16][H] / [17][16]
  // (bucket 0 = first nibble, 1 + h = second nibble after h; slot j = nibble-tree node j, slot 0
  // zero).
  const std::vector<int8_t>& wo_nibble() const { return wo_nib_; }
  const std::vector<int32_t>& bo_nibble() const { return bo_nib_; }
  // T1 again, 64-byte aligned: a row of H = 64 is then one cache line, not two.
  const int8_t* t1_aligned() const { return t1_line_.get(); }

 private:
  Model() = default;
  ModelTensors t_;
  ModelId id_;
  size_t file_size_ = 0;
  std::vector<int8_t> wo_nib_;
  std::vector<int32_t> bo_nib_;
  struct AlignedFree {
    void operator()(int8_t* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::unique_ptr<int8_t[], AlignedFree> t1_line_;
};

// Equal to the int32 formula whenever the loader's overflow bound holds (always, for a loaded model).
inline int32_t requant(int32_t x, int32_t m, int32_t s) {
  const int64_t v = static_cast<int64_t>(x) * m + (s > 0 ? int64_t{1} << (s - 1) : 0);
  return static_cast<int32_t>(v >> s);
}

}  // namespace dzfs::codec
