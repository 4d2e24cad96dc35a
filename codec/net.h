// Internal: network kernels (scalar / AVX2 / AVX-512 VNNI) and the per-chunk network evaluator.
// Hidden activations are unsigned 7-bit (0..127, guaranteed by the loader), weights int8, so
// u8 x s8 pair sums fit int16 without saturation (2 * 127 * 128 < 32767): vpmaddubsw and
// vpdpbusd are exact, and every kernel returns the same int32 as the scalar loop.
#pragma once
#include <cstdint>
#include <vector>

#include "codec/isa.h"
#include "codec/model.h"

namespace dzfs::codec::detail {

struct NetKernels {
  Isa isa;
  // acc[j] = bias[j] + sum_{r < nrows} rows[r][j] for j < H (H multiple of 32, nrows <= 64).
  void (*accum)(int32_t* acc, const int32_t* bias, const int8_t* const* rows, int nrows, int H);
  // sum_j a[j] * w[j] (exact int32), a in 0..127.
  int32_t (*dot)(const uint8_t* a, const int8_t* w, int H);
  // out[r] = bias[r] + sum_j a[j] * w[r*H + j] for r < rows (rows multiple of 8).
  void (*matvec)(int32_t* out, const uint8_t* a, const int8_t* w, const int32_t* bias, int rows, int H);
  // out[j] = lut[clamp(requant(acc[j], m, s), -128, 127) + 128] (int32 requant, see model.h).
  void (*act)(uint8_t* out, const int32_t* acc, int32_t m, int32_t s, const uint8_t* lut, int H);
  // out[j] = clamp(requant(acc[j], m, s), -2047, 2047) for j < 16 (the nibble-tree logits).
  void (*logits16)(int16_t* out, const int32_t* acc, int32_t m, int32_t s);
};

const NetKernels& kernels_for(Isa resolved);
const NetKernels* avx2_kernels();        // nullptr if not compiled in
const NetKernels* avx512vnni_kernels();  // nullptr if not compiled in

// Evaluates the network for one chunk position at a time.
class NetEval {
 public:
  NetEval(const Model& m, const NetKernels& k);
  // Computes the last hidden layer for the byte at buf[pos] from buf[pos-W .. pos-1].
  void set_context(const uint8_t* buf, size_t pos);
  // Finds and prefetches the layer-1 rows that set_context(buf, pos + 1) will read, except
  // position 0 (the byte at pos is not known yet while decoding); that call then reuses them.
  // Call after set_context(buf, pos).
  void prefetch_next(const uint8_t* buf, size_t pos) {
    const size_t H = static_cast<size_t>(H_);
    const int8_t** next = next_rows_.data();
    next_pos_ = pos + 1;
    if (H == 64 && pos + 1 >= static_cast<size_t>(W_)) {  // the default shape, past the chunk start
      const int8_t* base = t1_;
      for (int i = 1; i < W_; ++i) {
        base += kSymbols * 64;  // table of distance i
        const int8_t* row = base + (size_t{buf[pos - i]} << 6);
        next[i] = row;
        __builtin_prefetch(row);  // T1 is 64-byte aligned: the row is one line
      }
      return;
    }
    for (int i = 1; i < W_; ++i) {
      const size_t sym = pos >= static_cast<size_t>(i) ? buf[pos - i] : kPadSymbol;
      const int8_t* row = t1_ + (static_cast<size_t>(i) * kSymbols + sym) * H;
      next[i] = row;
      // T1 is 64-byte aligned, so a row of H = 64 is exactly one line.
      for (size_t off = 0; off < H; off += 64) __builtin_prefetch(row + off);
      if (H % 64) __builtin_prefetch(row + H - 1);
    }
  }
  // Stretch-domain logit (+-2047) of P(bit=1) at bit-tree node 1..255.
  int node_logit(int node) const {
    const int r = node - 1;
    const int32_t acc = bo_[r] + k_.dot(h_, wo_ + static_cast<size_t>(r) * H_, H_);
    const int32_t v = requant(acc, mo_, so_);
    return v > 2047 ? 2047 : v < -2047 ? -2047 : v;
  }
  const uint8_t* hidden() const { return h_; }
  // Batched form used by the coder: computes the logits of the 15 nodes of a nibble tree at
  // once (off the per-bit dependency chain). bucket 0 = first nibble (nodes 1..15), bucket
  // 1 + h = second nibble after high nibble h (nodes 16+h, 32+2h.., 64+4h.., 128+8h..).
  // Then nibble_logit(j) = node_logit(node of nibble-tree index j), j = 1..15.
  void nibble_logits(int bucket);
  int nibble_logit(uint32_t j) const { return nib_logit_[j]; }

 private:
  const Model& m_;
  const NetKernels& k_;
  int W_, H_;
  const int8_t* wo_;
  const int32_t* bo_;
  int32_t mo_, so_;
  std::vector<const int8_t*> rows_, next_rows_;
  size_t next_pos_ = 0;  // next_rows_[1..W) hold the rows of this position (0: none)
  std::vector<int32_t> acc_;
  std::vector<uint8_t> h1_, h2_;
  uint8_t* h_ = nullptr;
  const int8_t* t1_;
  const int8_t* wo_nib_;   // [17][16][H] rows of WO regrouped per nibble tree (row 0 unused)
  const int32_t* bo_nib_;  // [17][16]
  alignas(32) int32_t nib_acc_[16];
  alignas(32) int16_t nib_logit_[16] = {};
};

}  // namespace dzfs::codec::detail
