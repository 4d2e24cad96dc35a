// dzfs train: the quantization-aware WMLP network (libtorch behind a pimpl).
// This header is plain C++17 without torch or codec headers: the torch code is compiled as C++17
// (train/qat.cc), everything else (config, data, export through the codec) as C++20.
//
// Units. Parameters are kept in float "natural" units and mapped to the codec's integers:
//   T1, W2, WO:  int8 = clamp(round(p * kWeightScale), -127, 127)      (kWeightScale = 64)
//   B1:          int32 = round(p * kWeightScale)                          (layer-1 accumulator units)
//   B2, BO:      int32 = round(p * kWeightScale * 127)                    (hidden 0..127 x int8 units)
//   hidden h:    0..127 = A[clamp(requant(acc), -128, 127) + 128],  A[k] = round(127 sigmoid((k-128)/P))
// with P = 128 / lut_range, and requant ratios m/2^s chosen so that the LUT input is
// acc / kWeightScale (layer 1) or acc / (kWeightScale*127) (layer 2) in units of 1/P, and the
// output logit (stretch domain, 8 fractional bits) is 256 * acc / (kWeightScale*127).
// The QAT forward computes the integer values exactly (float32 sums of integers below 2^24,
// requantization in float64), with straight-through estimators for every rounding step.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dzfs::train {

inline constexpr int kSym = 257;     // 256 byte values + pad (codec kSymbols)
inline constexpr int kPad = 256;     // codec kPadSymbol
inline constexpr int kNodes = 255;   // bit-tree nodes
inline constexpr double kWeightScale = 64.0;
inline constexpr int32_t kMaxBiasInt = 1 << 20;  // codec allows 2^24; keeps float32 sums exact

struct NetConfig {
  int window = 16;
  int hidden = 64;
  int layers = 1;
  double lut_range = 4.0;  // activation LUT covers sigmoid inputs [-lut_range, lut_range)
  int threads = 2;         // CPU threads for torch
  bool use_cuda = true;    // use CUDA when torch::cuda::is_available()
};

// Integer tensors in the codec's layout (mirror of codec::ModelTensors, without the manifest).
struct IntTensors {
  int window = 0, hidden = 0, layers = 1;
  int32_t m1 = 1, s1 = 0, m2 = 1, s2 = 0, mo = 1, so = 0;
  std::vector<int8_t> t1;   // [W][257][H]
  std::vector<int32_t> b1;  // [H]
  std::vector<int8_t> a1;   // [256]
  std::vector<int8_t> w2;   // [H][H]
  std::vector<int32_t> b2;  // [H]
  std::vector<int8_t> a2;   // [256]
  std::vector<int8_t> wo;   // [255][H]
  std::vector<int32_t> bo;  // [255]
};

// A batch of predicted byte positions: idx[b*W + i] = i*257 + symbol at distance i+1 (or pad).
struct Batch {
  int size = 0;
  std::vector<int64_t> idx;
  std::vector<uint8_t> target;
};

// Chooses (m, s) with m/2^s ~ ratio, s as large as possible while bound*m + 2^(s-1) < 2^31.
void choose_requant(double ratio, int64_t bound, int32_t* m, int32_t* s);

class QatNet {
 public:
  QatNet(const NetConfig& cfg, uint64_t seed);
  ~QatNet();
  QatNet(const QatNet&) = delete;
  QatNet& operator=(const QatNet&) = delete;

  std::string device_name() const;
  const NetConfig& config() const;
  // One Adam step on the integer (fake-quantized) forward; returns its loss in bits per byte.
  double train_step(const Batch& b, double lr);
  // Per-position code length in bits (sum of the 8 node cross-entropies) of the float model
  // (unrounded weights, smooth activation, unclamped logits) and of the integer model.
  void evaluate(const Batch& b, std::vector<float>* float_bits, std::vector<float>* int_bits);
  // Integer logits (stretch domain, clamped +-2047) of all 255 nodes: out[b*255 + node-1].
  std::vector<int16_t> int_logits(const Batch& b);
  IntTensors export_int() const;
  // Loads an integer model (any LUT and requant constants); shapes must match the config.
  void import_int(const IntTensors& t);

 private:
  struct Impl;
  std::unique_ptr<Impl> p_;
};

}  // namespace dzfs::train
