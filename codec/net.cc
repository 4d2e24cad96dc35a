#include "codec/net.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace dzfs::codec {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAuto: return "auto";
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512Vnni: return "avx512vnni";
  }
  return "?";
}

bool parse_isa(std::string_view s, Isa* out) {
  for (Isa i : {Isa::kAuto, Isa::kScalar, Isa::kAvx2, Isa::kAvx512Vnni})
    if (s == isa_name(i)) {
      *out = i;
      return true;
    }
  return false;
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::kAuto:
    case Isa::kScalar: return true;
#if defined(__x86_64__) || defined(__i386__)
    case Isa::kAvx2: return detail::avx2_kernels() && __builtin_cpu_supports("avx2");
    case Isa::kAvx512Vnni:
      return detail::avx512vnni_kernels() && __builtin_cpu_supports("avx2") &&
             __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni");
#else
    default: return false;
#endif
  }
  return false;
}

Isa detect_isa() {
  if (isa_supported(Isa::kAvx512Vnni)) return Isa::kAvx512Vnni;
  if (isa_supported(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kScalar;
}

Isa resolve_isa(Isa requested) {
  if (requested == Isa::kAuto) {
    const char* env = std::getenv("DZFS_CODEC_ISA");
    Isa e;
    if (env && parse_isa(env, &e) && e != Isa::kAuto) requested = e;
    else return detect_isa();
  }
  for (int i = static_cast<int>(requested); i > static_cast<int>(Isa::kScalar); --i)
    if (isa_supported(static_cast<Isa>(i))) return static_cast<Isa>(i);
  return Isa::kScalar;
}

namespace detail {
namespace {

void accum_scalar(int32_t* acc, const int32_t* bias, const int8_t* const* rows, int nrows, int H) {
  for (int j = 0; j < H; ++j) acc[j] = bias[j];
  for (int r = 0; r < nrows; ++r) {
    const int8_t* row = rows[r];
    for (int j = 0; j < H; ++j) acc[j] += row[j];
  }
}

int32_t dot_scalar(const uint8_t* a, const int8_t* w, int H) {
  int32_t s = 0;
  for (int j = 0; j < H; ++j) s += int32_t{a[j]} * w[j];
  return s;
}

void matvec_scalar(int32_t* out, const uint8_t* a, const int8_t* w, const int32_t* bias, int rows, int H) {
  for (int r = 0; r < rows; ++r) out[r] = bias[r] + dot_scalar(a, w + static_cast<size_t>(r) * H, H);
}

void act_scalar(uint8_t* out, const int32_t* acc, int32_t m, int32_t s, const uint8_t* lut, int H) {
  for (int j = 0; j < H; ++j) out[j] = lut[std::clamp(requant(acc[j], m, s), -128, 127) + 128];
}

void logits16_scalar(int16_t* out, const int32_t* acc, int32_t m, int32_t s) {
  for (int j = 0; j < 16; ++j) out[j] = static_cast<int16_t>(std::clamp(requant(acc[j], m, s), -2047, 2047));
}

const NetKernels kScalar{Isa::kScalar, accum_scalar, dot_scalar, matvec_scalar, act_scalar, logits16_scalar};

}  // namespace

const NetKernels& scalar_kernels() { return kScalar; }

const NetKernels& kernels_for(Isa resolved) {
  if (resolved == Isa::kAvx512Vnni && avx512vnni_kernels()) return *avx512vnni_kernels();
  if (resolved == Isa::kAvx2 && avx2_kernels()) return *avx2_kernels();
  return kScalar;
}

NetEval::NetEval(const Model& m, const NetKernels& k) : m_(m), k_(k) {
  const auto& s = m.spec();
  W_ = static_cast<int>(s.window);
  H_ = static_cast<int>(s.hidden);
  wo_ = m.tensors().wo.data();
  bo_ = m.tensors().bo.data();
  mo_ = s.mo;
  so_ = s.so;
  rows_.resize(W_);
  next_rows_.resize(W_);
  acc_.resize(H_);
  h1_.resize(H_);
  h2_.resize(H_);
  h_ = s.layers == 2 ? h2_.data() : h1_.data();
  wo_nib_ = m.wo_nibble().data();
  t1_ = m.t1_aligned();
  bo_nib_ = m.bo_nibble().data();
}

void NetEval::nibble_logits(int bucket) {
  const size_t H = static_cast<size_t>(H_);
  k_.matvec(nib_acc_, h_, wo_nib_ + static_cast<size_t>(bucket) * 16 * H, bo_nib_ + bucket * 16, 16, H_);
  k_.logits16(nib_logit_, nib_acc_, mo_, so_);  // entry 0 (row 0 unused) is never read
}

void NetEval::set_context(const uint8_t* buf, size_t pos) {
  const auto& t = m_.tensors();
  const auto& s = t.spec;
  const int H = H_;
  const int8_t* t1 = t1_;
  int first_new = W_;  // rows [0, first_new) are computed here
  if (pos == next_pos_ && pos > 0) {
    rows_.swap(next_rows_);  // rows 1.. were found by prefetch_next(buf, pos - 1)
    first_new = 1;
  }
  const int8_t** rows = rows_.data();
  for (int i = 0; i < first_new; ++i) {
    const size_t sym = pos > static_cast<size_t>(i) ? buf[pos - 1 - i] : kPadSymbol;
    rows[i] = t1 + (static_cast<size_t>(i) * kSymbols + sym) * static_cast<size_t>(H);
  }
  int32_t* acc = acc_.data();
  k_.accum(acc, t.b1.data(), rows, W_, H);
  k_.act(h1_.data(), acc, s.m1, s.s1, reinterpret_cast<const uint8_t*>(t.a1.data()), H);
  if (s.layers == 2) {
    k_.matvec(acc, h1_.data(), t.w2.data(), t.b2.data(), H, H);
    k_.act(h2_.data(), acc, s.m2, s.s2, reinterpret_cast<const uint8_t*>(t.a2.data()), H);
  }
}

}  // namespace detail
}  // namespace dzfs::codec
