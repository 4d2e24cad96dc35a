// Neural payload coder. Everything that influences a coded probability is integer arithmetic
// with the fixed specification below (FORMAT.md, "Neural payload"); float appears only in the
// optional CoderStats measurement, which never feeds back into coding.
#include "codec/neural.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "codec/net.h"

namespace dzfs::codec::detail {
namespace {

// ---------------------------------------------------------------------------------------------
// Logistic domain. squash(d) = 4096 / (1 + e^(-d/256)) by linear interpolation of a 33-point
// table (integer), stretch = its inverse (table over 12-bit p).
struct Logistic {
  int16_t sq[4095];  // index d + 2047
  int16_t st[4096];
  Logistic() {
    static const int t[33] = {1,    2,    4,    6,    10,   17,   27,   45,   74,   120,  194,
                              311,  488,  747,  1102, 1546, 2048, 2550, 2994, 3349, 3608, 3785,
                              3902, 3976, 4022, 4051, 4069, 4079, 4086, 4090, 4092, 4094, 4095};
    for (int d = -2047; d <= 2047; ++d) {
      const int w = d & 127, i = (d >> 7) + 16;
      sq[d + 2047] = static_cast<int16_t>((t[i] * (128 - w) + t[i + 1] * w + 64) >> 7);
    }
    int pi = 0;
    for (int x = -2047; x <= 2047; ++x) {
      const int v = sq[x + 2047];
      for (int j = pi; j <= v; ++j) st[j] = static_cast<int16_t>(x);
      pi = v + 1;
    }
    for (int j = pi; j < 4096; ++j) st[j] = 2047;
  }
};
const Logistic& L() {
  static const Logistic l;
  return l;
}
inline int squash(const Logistic& l, int d) {
  d = d > 2047 ? 2047 : d < -2047 ? -2047 : d;
  return l.sq[d + 2047];
}
inline int stretch(const Logistic& l, int p) { return l.st[p]; }

inline uint32_t hash32(uint32_t a, uint32_t b, uint32_t k) {
  uint32_t x = a * 0x9E3779B1u ^ (b + 0x7F4A7C15u) * 0x85EBCA77u ^ k * 0xC2B2AE3Du;
  x ^= x >> 15;
  x *= 0x2C1B3C6Du;
  x ^= x >> 12;
  x *= 0x297A2D39u;
  x ^= x >> 15;
  return x;
}

// 64-byte aligned storage for the hashed tables: a 32-byte bucket then never straddles two cache
// lines (malloc'd large blocks are only 16-byte aligned), so one prefetch covers a bucket.
template <class T>
struct CacheAlloc {
  using value_type = T;
  CacheAlloc() = default;
  template <class U>
  CacheAlloc(const CacheAlloc<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64})); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t{64}); }
  template <class U>
  bool operator==(const CacheAlloc<U>&) const { return true; }
};
template <class T>
using CacheVec = std::vector<T, CacheAlloc<T>>;

inline uint32_t pow2_at_least(size_t n, uint32_t lo, uint32_t hi) {
  uint32_t v = lo;
  while (v < n && v < hi) v <<= 1;
  return v;
}

// Adaptive probability with count (22-bit p, 10-bit n), rate 1/(n+1.5) until n reaches limit.
struct Dt {
  int32_t r[1024];
  Dt() {
    for (int i = 0; i < 1024; ++i) r[i] = 16384 / (i + i + 3);
  }
};
const Dt& DT() {
  static const Dt d;
  return d;
}
inline void sm_update(uint32_t& t, int y, uint32_t limit, const Dt& dt) {
  const uint32_t n = t & 1023, p = t >> 10;
  if (n < limit) ++t;
  else t = (t & 0xfffffc00u) | limit;
  const int64_t delta = (((static_cast<int64_t>(y) << 22) - static_cast<int64_t>(p)) >> 3) * dt.r[n];
  t += static_cast<uint32_t>(static_cast<uint64_t>(delta) & ~uint64_t{1023});
}
constexpr uint32_t kSmInit = 1u << 31;  // p = 0.5, n = 0

// Hashed/direct context slot: 16 bits = p12 << 4 | n4 (fresh slot 0x8000: p 2048, n 0, whose
// stretch is 0). Update: p += ((target - p) * rate[n] + 32768) >> 16, rate[n] = 131072/(2n+3)
// (stays within 0..4095 since rate <= 2/3), n saturating at kSlotLimit.
constexpr uint32_t kSlotLimit = 14;
constexpr uint16_t kSlotInit = 0x8000;
struct Rate16 {
  int32_t r[16];
  uint8_t next[16];
  explicit Rate16(int limit = kSlotLimit) {
    for (int i = 0; i < 16; ++i) {
      r[i] = (65536 * 2) / (2 * i + 3);
      next[i] = static_cast<uint8_t>(i < limit ? i + 1 : i);
    }
  }
};
const Rate16& R16() {
  static const Rate16 r;
  return r;
}
// Version 5: slots saturate at n = 8 (rate 2/19): measured 0.1-0.4 % smaller than 14 on long
// streams (a hashed slot is shared by colliding contexts; it must keep adapting).
constexpr int kSlotLimitV5 = 8;
const Rate16& R16v5() {
  static const Rate16 r(kSlotLimitV5);
  return r;
}
inline int slot_p(uint16_t s) { return s >> 4; }
inline void slot_update(uint16_t& s, int y, const Rate16& r) {
  const int n = s & 15, p = s >> 4;
  const int target = -y & 4095;
  const int np = p + (((target - p) * r.r[n] + 32768) >> 16);
  s = static_cast<uint16_t>((np << 4) | r.next[n]);
}

// APM / SSE: 33 interpolation points over stretch(p) per context, 16-bit probabilities.
struct Apm {
  std::vector<uint16_t> t;
  uint32_t idx = 0;
  int rate;
  Apm(size_t n, int rate_) : t(n * 33), rate(rate_) {
    const Logistic& l = L();
    for (int j = 0; j < 33; ++j) t[j] = static_cast<uint16_t>(squash(l, (j - 16) * 128) * 16);
    for (size_t i = 1; i < n; ++i) std::memcpy(&t[i * 33], &t[0], 33 * sizeof(uint16_t));
  }
  // Returns 12-bit p. wlo/hi exported for the float measurement.
  // st = stretch(p) of the input probability.
  int pp(int st, uint32_t cx, int* w_out, uint32_t* base_out) {
    const int s = st + 2048;  // 1..4095
    const int lo = s >> 7, w = s & 127;   // lo 0..31
    const uint32_t base = cx * 33 + static_cast<uint32_t>(lo);
    idx = base + (w >> 6);
    if (w_out) *w_out = w;
    if (base_out) *base_out = base;
    return (t[base] * (128 - w) + t[base + 1] * w) >> 11;
  }
  void update(int y) {
    const int g = (y << 16) + (y << rate) - y - y;
    t[idx] = static_cast<uint16_t>(t[idx] + ((g - t[idx]) >> rate));
  }
};

// ---------------------------------------------------------------------------------------------
constexpr int kMinMatch = 6;

// Hashed context kinds. Version 1 uses {kO2, kO3, kO4, kO6, kWord} (FORMAT.md 2.2).
// Version 2 replaces order 3 by a column context and an order-12 context that skips line feeds
// (FASTA/FASTQ sequence lines continue across them), and drops the order-0 input.
enum Ctx : int { kO2, kO3, kO4, kO6, kWord, kCol, kN12, kFld, kW2, kI1, kI2, kX1, kX2, kX4 };

// Per payload version: the hashed contexts and their mixer lanes; kNoO0: no order-0 input.
template <int V>
struct Layout;
template <>
struct Layout<1> {
  static constexpr int kHashed = 5;
  static constexpr Ctx kKind[kHashed] = {kO2, kO3, kO4, kO6, kWord};
  static constexpr int kLane[kHashed] = {2, 3, 4, 5, 6};
  static constexpr bool kNoO0 = false;
  static constexpr size_t kTableDiv = 8;  // buckets per hashed table: pow2 >= n / kTableDiv
  // Table size caps (entries): hashed buckets, match positions, sequence-model positions.
  static constexpr uint32_t kHashCap = 1u << 18, kMatchCap = 1u << 18, kSeqCap = 1u << 16;
};
template <>
struct Layout<2> {
  static constexpr int kHashed = 6;
  static constexpr Ctx kKind[kHashed] = {kO2, kO4, kO6, kWord, kN12, kCol};
  static constexpr int kLane[kHashed] = {2, 4, 5, 6, 7, 3};
  static constexpr bool kNoO0 = true;
  static constexpr size_t kTableDiv = 8;
  static constexpr uint32_t kHashCap = 1u << 18, kMatchCap = 1u << 18, kSeqCap = 1u << 16;
};
// Version 3 adds a field-aligned context (lane 0; FORMAT.md 2.6) and, outside the hashed
// tables, a nucleotide match model (lanes 14, 15).
template <>
struct Layout<3> {
  static constexpr int kHashed = 7;
  static constexpr Ctx kKind[kHashed] = {kO2, kO4, kO6, kWord, kN12, kCol, kFld};
  static constexpr int kLane[kHashed] = {2, 4, 5, 6, 7, 3, 0};
  static constexpr bool kNoO0 = true;
  static constexpr size_t kTableDiv = 8;
  static constexpr uint32_t kHashCap = 1u << 18, kMatchCap = 1u << 18, kSeqCap = 1u << 16;
};
// Version 4 is version 3 without the order-6 and line-feed-skipping order-12 contexts (lanes 5
// and 7 stay 0), and with a cheaper second-nibble hash (FORMAT.md 2.7): measured, those two
// contexts bought 0.1-0.25 % of size for 10 % of the instructions.
template <>
struct Layout<4> {
  static constexpr int kHashed = 5;
  static constexpr Ctx kKind[kHashed] = {kO2, kO4, kWord, kCol, kFld};
  static constexpr int kLane[kHashed] = {2, 4, 6, 3, 0};
  static constexpr bool kNoO0 = true;
  static constexpr size_t kTableDiv = 8;
  static constexpr uint32_t kHashCap = 1u << 18, kMatchCap = 1u << 18, kSeqCap = 1u << 16;
};
// Version 5 codes solid groups (many chunks as one stream, up to 64 MiB; FORMAT.md 2.8): the
// order-3 and order-6 contexts of versions 1 and 3 come back (measured on 4 MiB of
// concatenated sources: -2.4 %; binaries -1.3 %) and the match table may grow to 2^22 entries,
// so that repeats anywhere in a group are found (-0.3 % sources, -0.8 % binaries).
template <>
struct Layout<5> {
  static constexpr int kHashed = 7;
  static constexpr Ctx kKind[kHashed] = {kO2, kO3, kO4, kO6, kWord, kCol, kFld};
  static constexpr int kLane[kHashed] = {2, 7, 4, 5, 6, 3, 0};
  static constexpr bool kNoO0 = true;
  static constexpr size_t kTableDiv = 8;
  static constexpr uint32_t kHashCap = 1u << 18, kMatchCap = 1u << 22, kSeqCap = 1u << 18;
};
// Version 6 (FORMAT.md 2.9) adds, for text, a word-pair context (the previous word and the
// current one) and two indirect contexts (the bytes that followed the last occurrences of the
// last byte, of the last two), and for binaries three sparse contexts: bytes 2 and 4 back, bytes
// 3-4, bytes 5-8. Which are live depends on a kind detector over the last 64 bytes (control
// bytes other than tab, line feed, form feed and return): in binary data the sparse ones and no
// nucleotide models, else the others, so contexts never live together share mixer lanes.
// Measured on 4 MiB groups of the bench corpus against version 5: sources -2.3 %, docs -1.8 %,
// binaries -10.4 %.
template <>
struct Layout<6> {
  static constexpr int kHashed = 13;
  static constexpr Ctx kKind[kHashed] = {kO2, kO3, kO4, kO6, kWord, kCol, kFld, kW2, kI1, kI2, kX1, kX2, kX4};
  static constexpr int kLane[kHashed] = {2, 7, 4, 5, 6, 3, 0, 11, 12, 13, 11, 12, 13};
  static constexpr bool kNoO0 = true;
  static constexpr size_t kTableDiv = 8;
  static constexpr uint32_t kHashCap = 1u << 18, kMatchCap = 1u << 22, kSeqCap = 1u << 18;
};

// Logistic mixer, int16 weights (1.0 = 2^13), int16 inputs (stretch, +-2047), 16 lanes.
// dot = (sum_i x_i * w_i) >> 13 (exact int32: |sum| <= 16 * 2047 * 32767 < 2^31).
// train: e = ((y << 12) - p) * lr; w_i = sat16(w_i + (((x_i << 3) * e) >> 16)).
// The SSE2 form (pmaddwd, pmulhw, paddsw) computes exactly the same integers.
constexpr int kLanes = 16;
#if defined(__SSE2__)
struct XVec {  // the 16 inputs, built once per bit in registers
  __m128i v[2];
  void clear() { v[0] = v[1] = _mm_setzero_si128(); }
  // Lane by lane into the register: storing scalars and loading them as a vector would stall
  // on store forwarding (measured: it was the single hottest instruction).
  template <int L>
  void put(int x) {
    v[L / 8] = _mm_insert_epi16(v[L / 8], x, L % 8);
  }
};
#else
struct XVec {
  int16_t v[kLanes];
  void clear() { std::memset(v, 0, sizeof v); }
  template <int L>
  void put(int x) {
    v[L] = static_cast<int16_t>(x);
  }
};
#endif

struct Mixer {
  std::vector<int16_t> w;  // [sets][kLanes]
  int16_t* cur = nullptr;
  int dot = 0;
  explicit Mixer(size_t sets) : w(sets * kLanes, static_cast<int16_t>(kMixInit)) {}
  static constexpr int kMixInit = 2458;  // ~0.3
  int mix(const XVec& x, size_t set) {
    cur = &w[set * kLanes];
#if defined(__SSE2__)
    __m128i a = _mm_madd_epi16(x.v[0], _mm_loadu_si128(reinterpret_cast<const __m128i*>(cur)));
    a = _mm_add_epi32(a, _mm_madd_epi16(x.v[1], _mm_loadu_si128(reinterpret_cast<const __m128i*>(cur + 8))));
    a = _mm_add_epi32(a, _mm_shuffle_epi32(a, 0x4e));
    a = _mm_add_epi32(a, _mm_shuffle_epi32(a, 0xb1));
    int32_t s = _mm_cvtsi128_si32(a);
#else
    int32_t s = 0;
    for (int i = 0; i < kLanes; ++i) s += int32_t{x.v[i]} * cur[i];
#endif
    s >>= 13;
    dot = s > 2047 ? 2047 : s < -2047 ? -2047 : s;
    return dot;
  }
  // The mixer's own probability squash(dot) is needed only here (version 4 skips many updates).
  void update(const Logistic& l, const XVec& x, int y, int lr) {
    const int pr = squash(l, dot);
    const int e = ((y << 12) - pr) * lr;  // |e| <= 4095 * 7 < 2^15
#if defined(__SSE2__)
    const __m128i ve = _mm_set1_epi16(static_cast<int16_t>(e));
    for (int k = 0; k < 2; ++k) {
      const __m128i d = _mm_mulhi_epi16(_mm_slli_epi16(x.v[k], 3), ve);
      __m128i* wp = reinterpret_cast<__m128i*>(cur + 8 * k);
      _mm_storeu_si128(wp, _mm_adds_epi16(_mm_loadu_si128(wp), d));
    }
#else
    for (int i = 0; i < kLanes; ++i) {
      const int32_t d = (int32_t{static_cast<int16_t>(x.v[i] * 8)} * e) >> 16;
      const int32_t v = cur[i] + d;
      cur[i] = static_cast<int16_t>(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
    }
#endif
  }
};

template <int V>
class Predictor {
  static constexpr int kHashed = Layout<V>::kHashed;
  static constexpr bool kNoO0 = Layout<V>::kNoO0;

 public:
  Predictor(const uint8_t* buf, size_t len, const Model* model, const NetKernels& k)
      : l_(L()), dt_(DT()), r16_(V >= 5 ? R16v5() : R16()), buf_(buf), len_(len), a1_(256, 7), a2_(33 * 8, 7),
        mx1_(256), mx2_(64), mx3_(V >= 5 ? 2048 : 1), mx4_(V >= 5 ? 2048 : 1), a3_(V >= 5 ? 65536 : 1, 7) {
    if (model) net_ = std::make_unique<NetEval>(*model, k);
    const uint32_t nb = pow2_at_least(len / Layout<V>::kTableDiv, 1024, Layout<V>::kHashCap);
    for (int i = 0; i < kHashed; ++i) {
      uint32_t b = nb;
      if (Layout<V>::kKind[i] == kO2) b = std::min<uint32_t>(b, 1u << 16);  // order 2
      mask_[i] = b - 1;
      // Version 6: a context that lives only in one kind of data gets its table when it first
      // lives (a fresh table is the initial state, so when does not matter): a text group never
      // holds the sparse contexts' tables.
      if (V >= 6 && Layout<V>::kKind[i] >= kW2) continue;
      tab_[i].assign(static_cast<size_t>(b) * 16, kSlotInit);  // tag 0x8000 never matters
    }
    o0_.assign(256, kSmInit);
    o1_.assign(256 * 17 * 16, kSlotInit);  // [c1][nibble bucket 0..16][nibble node 1..15]
    mm_sm_.assign(64 * 2, kSmInit);
    mbits_ = pow2_at_least(len / 2, 1024, Layout<V>::kMatchCap);
    if constexpr (V >= 2) {
      rbits_ = pow2_at_least(len / 4, 1024, Layout<V>::kSeqCap);
      rtab_.assign(rbits_, 0);
      rsm_.assign(32 * 2, kSmInit);
    }
    if constexpr (V >= 3) {
      nbits_ = pow2_at_least(len / 4, 1024, Layout<V>::kSeqCap);
      ntab_.assign(nbits_, 0);
      nkey_.assign(nbits_, 0);
      nsm_.assign(16 * 8 * 2, kSmInit);
    }
    mtab_.assign(mbits_, 0);
    byte_update();
  }

  int p() {
    const Logistic& l = l_;
    XVec& x = xv_;
    x.clear();
    if constexpr (!kNoO0) x.put<0>(stretch(l, static_cast<int>(o0_[c0_] >> 20)));
    o1slot_ = o1base_ + nib_;
    x.put<1>(stretch(l, slot_p(*o1slot_)));
    put_hashed_inputs(std::make_index_sequence<kHashed>{});
    // Match model.
    mctx_ = -1;
    if (mlen_ > 0) {
      if (const int ebit = expected_bit(buf_[mptr_]); ebit >= 0) {
        const int lq = mlen_ < 16 ? mlen_ : std::min(31, 12 + ilog2(mlen_));
        mctx_ = lq * 2 + ebit;
        set_expected_inputs<8>(mm_sm_[mctx_], ebit, std::min(2047, lq * 64));
      }
    }
    if (net_) x.put<10>(net_->nibble_logit(nib_));
    if constexpr (V < 6) x.put<11>(256);
    if constexpr (V >= 2) {
      // Inverted-repeat model: predicts the complement of the nucleotide before the earlier
      // occurrence of the reverse complement of the last kRcK nucleotides. Version 6: while it
      // speaks, its lanes replace the indirect contexts' inputs (which still learn).
      rctx_ = -1;
      if (rlen_ > 0 && dna_live()) {
        if (const int ebit = expected_bit(rc_expect_); ebit >= 0) {
          const int lq = static_cast<int>(std::min<uint32_t>(rlen_, 31));
          rctx_ = lq * 2 + ebit;
          set_expected_inputs<12>(rsm_[rctx_], ebit, std::min(2047, lq * 32));
        }
      }
    }
    if constexpr (V >= 3) {
      nctx_ = -1;
      if (nact_ && dna_live()) {
        if (const int ebit = expected_bit(nexp_); ebit >= 0) {
          const int miss = std::min<int>(7, nmisses_);
          nctx_ = ((static_cast<int>(std::min<uint32_t>(nlen_, 15)) << 3 | miss) << 1) | ebit;
          const int conf = std::min(2047, static_cast<int>(std::min<uint32_t>(nlen_, 32)) * 48);
          set_expected_inputs<kNmLane>(nsm_[nctx_], ebit, conf);
        }
      }
    }
    const int lb = (mctx_ < 0) ? 0 : 1 + std::min(6, ilog2(mlen_));
    const int d1 = mx1_.mix(xv_, c0_);
    const int d2 = mx2_.mix(xv_, static_cast<size_t>(lb * 8 + bitpos_));
    dmix_ = (d1 + d2) >> 1;
    if constexpr (V >= 5) {
      // Version 5 (FORMAT.md 2.8): two more mixers, selected by (c1, bit position) and by
      // (c2, bit position), averaged with the first two; then the c0 APM and an order-1 APM
      // on (c1, c0), weighted 1:3.
      const int d3 = mx3_.mix(xv_, static_cast<size_t>(c1_ << 3 | static_cast<uint32_t>(bitpos_)));
      const int d4 = mx4_.mix(xv_, static_cast<size_t>(((c4_ >> 8) & 255) << 3 | static_cast<uint32_t>(bitpos_)));
      dmix_ = (d1 + d2 + d3 + d4) >> 2;
      const int q1 = a1_.pp(dmix_, c0_, &aw1_, &ab1_);
      const int q3 = a3_.pp(dmix_, c1_ << 8 | c0_, nullptr, nullptr);
      const int q = (q1 + 3 * q3 + 2) >> 2;
      pr_ = q < 1 ? 1 : q > 4095 ? 4095 : q;
      return pr_;
    }
    if constexpr (V >= 3) {
      // One APM, on c0 over the mixers' dot, is the final probability (FORMAT.md 2.6): the
      // match-state APM and the mixer term of versions 1-2 made v3 larger, not smaller.
      const int q = a1_.pp(dmix_, c0_, &aw1_, &ab1_);
      pr_ = q < 1 ? 1 : q > 4095 ? 4095 : q;
      return pr_;
    }
    pmix_ = squash(l, dmix_);
    const int spmix = stretch(l, pmix_);
    const int q1 = a1_.pp(spmix, c0_, &aw1_, &ab1_);
    a2base_ = (mctx_ < 0 ? 0u : 1u + static_cast<uint32_t>(std::min(mctx_ >> 1, 15) * 2 + (mctx_ & 1))) << 3;
    const int q2 = a2_.pp(spmix, a2ctx(), &aw2_, &ab2_);
    int pr = (pmix_ + q1 + 2 * q2 + 2) >> 2;
    pr_ = pr < 1 ? 1 : pr > 4095 ? 4095 : pr;
    return pr_;
  }

  // Float version of the final probability (measurement only).
  double p_float() const {
    const double pm = 1.0 / (1.0 + std::exp(-dmix_ / 256.0));
    auto ap = [](const Apm& a, uint32_t base, int w) {
      return (a.t[base] * (128.0 - w) + a.t[base + 1] * w) / (128.0 * 65536.0);
    };
    const double q = V >= 3 ? ap(a1_, ab1_, aw1_) : (pm + ap(a1_, ab1_, aw1_) + 2 * ap(a2_, ab2_, aw2_)) / 4;
    return std::clamp(q, 1e-9, 1 - 1e-9);
  }

  void update(int y) {
    if (learns_from(y)) {
      if constexpr (!kNoO0) sm_update(o0_[c0_], y, 1023, dt_);
      slot_update(*o1slot_, y, r16_);
      for (int i = 0; i < kHashed; ++i)
        if (V < 6 || live_[i]) slot_update(*slot_[i], y, r16_);
      if (mctx_ >= 0) sm_update(mm_sm_[mctx_], y, 1023, dt_);
      if constexpr (V >= 2)
        if (rctx_ >= 0) sm_update(rsm_[rctx_], y, 1023, dt_);
      if constexpr (V >= 3)
        if (nctx_ >= 0) sm_update(nsm_[nctx_], y, 1023, dt_);
      mx1_.update(l_, xv_, y, lr_);
      mx2_.update(l_, xv_, y, lr_);
      if constexpr (V >= 5) {
        mx3_.update(l_, xv_, y, lr_);
        mx4_.update(l_, xv_, y, lr_);
      }
    }
    a1_.update(y);
    if constexpr (V < 3) a2_.update(y);
    if constexpr (V >= 5) a3_.update(y);
    c0_ = (c0_ << 1) | static_cast<uint32_t>(y);
    nib_ = (nib_ << 1) | static_cast<uint32_t>(y);
    ++bitpos_;
    if (bitpos_ == 3) {
      // The second-nibble buckets depend on the 4th bit: prefetch both candidates now.
      // (The two candidate hashes are kept for bit 4.)
      for (int i = 0; i < kHashed; ++i) {
        if (V >= 6 && live_[i] == 0) continue;  // the null bucket again
        const uint32_t ca = c0_ << 1;
        hn_[0][i] = nibble_hash(h_[i], ca);
        hn_[1][i] = nibble_hash(h_[i], ca | 1);
        __builtin_prefetch(&tab_[i][static_cast<size_t>(hn_[0][i] & mask_[i]) * 16]);
        __builtin_prefetch(&tab_[i][static_cast<size_t>(hn_[1][i] & mask_[i]) * 16]);
      }
      __builtin_prefetch(&o1_[(c1_ * 17 + ((c0_ << 1) & 15) + 1) * 16]);
      __builtin_prefetch(&o1_[(c1_ * 17 + (((c0_ << 1) | 1) & 15) + 1) * 16]);
    } else if (bitpos_ == 4) {
      nib_ = 1;
      if (net_) net_->nibble_logits(1 + static_cast<int>(c0_ & 15));
      o1base_ = &o1_[(c1_ * 17 + (c0_ & 15) + 1) * 16];
      for (int i = 0; i < kHashed; ++i) find_bucket(i, hn_[y][i]);
    } else if (bitpos_ == 8) {
      ++pos_;
      byte_update();
    }
    if constexpr (V >= 5) {  // the next bit's rows of the c1/c2 mixers and the order-1 APM
      __builtin_prefetch(&mx3_.w[(c1_ << 3 | static_cast<uint32_t>(bitpos_)) * kLanes]);
      __builtin_prefetch(&mx4_.w[(((c4_ >> 8) & 255) << 3 | static_cast<uint32_t>(bitpos_)) * kLanes]);
      const uint16_t* t = &a3_.t[(c1_ << 8 | c0_) * 33];
      __builtin_prefetch(t);
      __builtin_prefetch(t + 32);
    }
  }

  size_t pos() const { return pos_; }
  // Bytes of the tables that scale with the input (what a suspended decoder holds).
  size_t table_bytes() const {
    size_t b = o1_.size() * 2 + (mtab_.size() + rtab_.size() + ntab_.size() + nkey_.size()) * 4;
    for (int i = 0; i < kHashed; ++i) b += tab_[i].size() * 2;
    return b;
  }

  // Version 4: a bit that was coded with probability >= 1 - kSureMargin/4096 teaches the slots,
  // the adaptive probabilities and the mixers nothing (the APM still learns). Measured on the
  // held-back split: 0.4-0.8 % smaller on every class (slots of contexts that agree stop
  // drifting to certainty), and half the bits skip most of the update work.
  static constexpr int kSureMargin = 32;
  bool learns_from(int y) const {
    if constexpr (V < 4) return true;
    return y ? pr_ < 4096 - kSureMargin : pr_ > kSureMargin;
  }

  // Mixer learning rate: 5 in versions 1-2; version 3 starts at 3 and settles at 1 (measured:
  // with 16 live inputs the fixed 5 overshoots, costing 2-3 % on every class). Depends only on
  // the position, so byte_update keeps it in lr_.
  int mixer_rate() const {
    if constexpr (V < 3) return 5;
    return pos_ < 512 ? 3 : pos_ < 2048 ? 2 : 1;
  }

 private:
  // APM-2 context: match state (0 = none, else 1 + 2 * min(length class, 15) + expected bit) x bit
  // position: it calibrates the match model's confidence.
  uint32_t a2ctx() const { return a2base_ | static_cast<uint32_t>(bitpos_); }
  // Bucket hash of the second nibble: context hash h, ca = 1 followed by the first nibble and
  // the candidate 4th bit (16..31).
  static uint32_t nibble_hash(uint32_t h, uint32_t ca) {
    if constexpr (V < 4) return hash32(h, ca, 99);
    const uint32_t x = (h + ca * 0x9E3779B1u) * 0x85EBCA77u;
    return x ^ (x >> 15);
  }
  static int ilog2(uint32_t v) { return 31 - __builtin_clz(v | 1); }

  // The models that expect a byte (match, inverted repeat, nucleotide match) speak only while
  // that byte agrees with the bits coded so far: then this is its next bit, else -1.
  int expected_bit(uint8_t byte) const {
    const uint32_t e = uint32_t{byte} | 256u;
    return (e >> (8 - bitpos_)) == c0_ ? static_cast<int>((e >> (7 - bitpos_)) & 1) : -1;
  }
  // Their two lanes: the adaptive probability of their context, and a signed confidence.
  template <int Lane>
  void set_expected_inputs(uint32_t sm, int ebit, int conf) {
    xv_.put<Lane>(stretch(l_, static_cast<int>(sm >> 20)));
    xv_.put<Lane + 1>(ebit ? conf : -conf);
  }
  // The hashed contexts' slots of this bit, each into its lane.
  template <size_t... I>
  void put_hashed_inputs(std::index_sequence<I...>) {
    ((slot_[I] = bucket_[I] + nib_, put_live<I>()), ...);
  }
  // Version 6: contexts that are never live together share a lane; a dead one leaves it alone.
  template <size_t I>
  void put_live() {
    if (V >= 6 && live_[I] == 0) return;
    xv_.put<Layout<V>::kLane[I]>(stretch(l_, slot_p(*slot_[I])));
  }
  bool dna_live() const {
    if constexpr (V >= 6) return bin_cnt_ <= kBinLive;
    return true;
  }

  void find_bucket(int i, uint32_t h) {
    if constexpr (V >= 3) {
      if (V >= 6 ? live_[i] == 0 : !ctx_live(Layout<V>::kKind[i])) {  // input 0, learns nothing
        for (int j = 0; j < 16; ++j) null_bucket_[j] = kSlotInit;
        bucket_[i] = null_bucket_;
        return;
      }
    }
    uint16_t* b = &tab_[i][static_cast<size_t>(h & mask_[i]) * 16];
    const uint16_t tag = static_cast<uint16_t>(h >> 16);
    if constexpr (V >= 6) {
      uint16_t* b2 = &tab_[i][static_cast<size_t>((h ^ 1) & mask_[i]) * 16];
      if (b[0] != tag) {
        if (b2[0] == tag) b = b2;
        else if ((b2[1] & 15) < (b[1] & 15)) b = b2;
      }
    }
    if (b[0] != tag) {
      b[0] = tag;
      for (int j = 1; j < 16; ++j) b[j] = kSlotInit;
    }
    bucket_[i] = b;
  }

  // Called with buf_[0 .. pos_) known.
  void byte_update() {
    const size_t pos = pos_;
    uint32_t hm = 0;  // the match-table slot of the last 6 bytes
    if (pos > 0) {
      const uint32_t c = buf_[pos - 1];
      if constexpr (V >= 2) {
        if (c != '\n') {  // the last 12 bytes other than line feeds
          n12_ = (n12_ << 8) | (n8_ >> 24);
          n8_ = (n8_ << 8) | (n4_ >> 24);
          n4_ = (n4_ << 8) | c;
        } else {
          pls_ = ls_;  // start of the previous line
          ls_ = static_cast<uint32_t>(pos);  // start of the current line
        }
      }
      if constexpr (V >= 6) {  // the bytes that followed the last two occurrences of c2, of c3 c2
        next1_[c4_ & 0xff] = static_cast<uint16_t>(next1_[c4_ & 0xff] << 8 | c);
        next2_[c4_ & 0xffff] = static_cast<uint16_t>(next2_[c4_ & 0xffff] << 8 | c);
      }
      c8_ = (c8_ << 8) | (c4_ >> 24);
      c4_ = (c4_ << 8) | c;
      c1_ = c;
      // Table slots this byte will read, started before the work below (the match and sequence
      // models run after the network, which hides their latency; nothing in between uses them).
      __builtin_prefetch(&o1_[c1_ * 17 * 16]);
      hm = hash32(c4_, c8_ & 0xffff, 7) & (mbits_ - 1);
      __builtin_prefetch(&mtab_[hm]);
      if constexpr (V >= 2) shift_nucleotide(c);
      if constexpr (V >= 3) fld_byte(c, pos);
      if constexpr (V >= 6) {  // control bytes other than tab, line feed, form feed, return among the last 64
        const uint64_t b = ((c < 32 && c != 9 && c != 10 && c != 12 && c != 13) || c == 255) ? 1 : 0;
        bin_cnt_ += static_cast<uint32_t>(b) - static_cast<uint32_t>(bin_hist_ >> 63);
        bin_hist_ = (bin_hist_ << 1) | b;
      }
      const uint32_t lc = (c >= 'A' && c <= 'Z') ? c + 32 : c;
      if ((lc >= 'a' && lc <= 'z') || c >= 128) wh_ = (wh_ + lc + 1) * 0x3D4D51CBu;
      else if (wh_ != 0) { pwh_ = wh_; wh_ = 0; }
    }
    if constexpr (V == 1) {
      h_[0] = hash32(c4_ & 0xffff, 0, 2);
      h_[1] = hash32(c4_ & 0xffffff, 0, 3);
      h_[2] = hash32(c4_, 0, 4);
      h_[3] = hash32(c4_, c8_ & 0xffff, 6);
      h_[4] = hash32(wh_, c1_, 8);
    } else {
      if constexpr (V >= 6)
        for (int i = 0; i < kHashed; ++i) {
          live_[i] = ctx_live(Layout<V>::kKind[i]) ? 1 : 0;
          if (live_[i] && tab_[i].empty()) tab_[i].assign(static_cast<size_t>(mask_[i] + 1) * 16, kSlotInit);
        }
      // Version 6: a dead context's hash is never used (null bucket, no prefetch).
      for (int i = 0; i < kHashed; ++i) h_[i] = (V < 6 || live_[i]) ? ctx_hash(Layout<V>::kKind[i], pos) : 0;
    }
    for (int i = 0; i < kHashed; ++i)
      if (V < 6 || live_[i]) __builtin_prefetch(&tab_[i][static_cast<size_t>(h_[i] & mask_[i]) * 16]);
    // The network runs while the table lines load.
    if (net_ && pos < len_) {
      net_->set_context(buf_, pos);
      net_->nibble_logits(0);
      net_->prefetch_next(buf_, pos);
    }
    if (pos > 0) {
      const uint32_t c = c1_;
      if constexpr (V >= 2) {
        if (nt_code(c) < 4) {
          rc_byte(c, pos);
          if constexpr (V >= 3) nt_match(c, pos);
        }
      }
      // Match model: extend or look up.
      if (mlen_ > 0 && buf_[mptr_] == c) {
        ++mptr_;
        if (mlen_ < 65535) ++mlen_;
      } else {
        mlen_ = 0;
      }
    }
    if (pos >= static_cast<size_t>(kMinMatch)) {
      if (mlen_ == 0) {
        const uint32_t cand = mtab_[hm];
        if (cand > 0) {
          uint32_t n = 0;
          while (n < 64 && n < cand && buf_[cand - 1 - n] == buf_[pos - 1 - n]) ++n;
          if (n >= static_cast<uint32_t>(kMinMatch)) {
            mlen_ = n;
            mptr_ = cand;
          }
        }
      }
      mtab_[hm] = static_cast<uint32_t>(pos);
    }
    if (mlen_ > 0 && mptr_ >= pos) mlen_ = 0;  // cannot happen; defensive
    for (int i = 0; i < kHashed; ++i) find_bucket(i, h_[i]);
    c0_ = 1;
    nib_ = 1;
    bitpos_ = 0;
    lr_ = mixer_rate();
    o1base_ = &o1_[c1_ * 17 * 16];
  }

  // Nucleotide code 0..3 (A C G T/U, upper case), 4 = line feed (skipped), 5 = other.
  static int nt_code(uint32_t c) {
    switch (c) {
      case 'A': return 0;
      case 'C': return 1;
      case 'G': return 2;
      case 'T':
      case 'U': return 3;
      case '\n': return 4;
    }
    return 5;
  }
  uint8_t complement(uint8_t c) const {
    switch (c) {
      case 'A': return rna_ ? 'U' : 'T';
      case 'C': return 'G';
      case 'G': return 'C';
    }
    return 'A';  // T, U
  }
  // The nucleotide before index i: steps back over at most kRcSkip line feeds (not below 0).
  bool step_back(uint32_t i, uint32_t* out) const {
    if (i == 0) return false;
    uint32_t b = i - 1;
    for (int k = 0; k < kRcSkip && b > 0 && buf_[b] == '\n'; ++k) --b;
    *out = b;
    return nt_code(buf_[b]) < 4;
  }
  // First half of the sequence models' byte update, early in byte_update: byte c shifts into
  // the k-mer of the inverted-repeat model and the nucleotide history (a line feed is skipped,
  // any other byte resets them), and the table slots their lookups will read are prefetched.
  void shift_nucleotide(uint32_t c) {
    const int code = nt_code(c);
    if (code == 4) return;
    if (code == 5) {
      rk_n_ = 0;
      rlen_ = 0;
      if constexpr (V >= 3) {
        nh_ = 0;
        nrun_ = 0;
      }
      return;
    }
    constexpr uint32_t kMask = (1u << (2 * kRcK)) - 1;
    rk_fw_ = ((rk_fw_ << 2) | static_cast<uint32_t>(code)) & kMask;
    rk_rc_ = (rk_rc_ >> 2) | (static_cast<uint32_t>(3 - code) << (2 * kRcK - 2));
    if (rk_n_ < kRcK) ++rk_n_;
    rslot_ = hash32(rk_rc_, 0, 50) & (rbits_ - 1);
    __builtin_prefetch(&rtab_[rslot_]);
    if constexpr (V >= 3) {
      nh_ = (nh_ << 2) | static_cast<uint64_t>(code);
      if (nrun_ < 255) ++nrun_;
      nslot_ = hash32(nt_key(), 0, 70) & (nbits_ - 1);
      __builtin_prefetch(&ntab_[nslot_]);
      __builtin_prefetch(&nkey_[nslot_]);
    }
  }
  uint32_t nt_key() const { return static_cast<uint32_t>(nh_ & ((uint64_t{1} << (2 * kNmK)) - 1)); }
  // Inverted-repeat model after nucleotide c at buf_[pos - 1] (its k-mer already shifted).
  void rc_byte(uint32_t c, size_t pos) {
    if (c == 'U') rna_ = true;
    else if (c == 'T') rna_ = false;
    if (rlen_ > 0) {
      uint32_t q;
      if (c == rc_expect_ && step_back(rptr_, &q)) {
        rptr_ = q;
        rc_expect_ = complement(buf_[q]);
        if (rlen_ < 65535) ++rlen_;
      } else {
        rlen_ = 0;
      }
    }
    if (rk_n_ < kRcK) return;
    if (rlen_ == 0) {
      // The table holds, per k-mer hash, 1 + the position of the last nucleotide of its latest
      // occurrence; the candidate is verified by reading its k-mer back from the buffer.
      const uint32_t cand = rtab_[rslot_];
      if (cand > 0) {
        uint32_t q = cand - 1, got = 0;
        int n = 0;
        bool ok = true;
        for (int examined = 1;; ++examined) {  // at most kRcWalk bytes (bounded work per byte)
          const int k = nt_code(buf_[q]);
          if (k < 4) {
            got |= static_cast<uint32_t>(k) << (2 * n);
            if (++n == kRcK) break;
          } else if (k == 5) {
            ok = false;
            break;
          }
          if (q == 0 || examined == kRcWalk) {
            ok = false;
            break;
          }
          --q;
        }
        // q = first nucleotide of the occurrence; predict the complement of the one before it.
        uint32_t b;
        if (ok && got == rk_rc_ && step_back(q, &b)) {
          rptr_ = b;
          rc_expect_ = complement(buf_[b]);
          rlen_ = 1;
        }
      }
    }
    rtab_[hash32(rk_fw_, 0, 50) & (rbits_ - 1)] = static_cast<uint32_t>(pos);
  }

  // Nucleotide match model: follows an earlier occurrence of the last kNmK nucleotides through
  // the nucleotide stream (line feeds skipped on both sides) and tolerates substitutions: it
  // lets go only when more than kNmMaxMiss of the last 16 predictions missed.
  bool next_nt(uint32_t q, size_t pos, uint32_t* out) const {
    for (int k = 0; k <= kRcSkip && q < pos; ++k, ++q) {
      const int code = nt_code(buf_[q]);
      if (code < 4) {
        *out = q;
        return true;
      }
      if (code == 5) return false;
    }
    return false;
  }
  // After nucleotide c at buf_[pos - 1] (the history already shifted).
  void nt_match(uint32_t c, size_t pos) {
    if (nact_) {
      const bool hit = c == nexp_;
      nmisses_ += (hit ? 0u : 1u) - (nmiss_ >> 15);  // popcount(nmiss_), kept (no POPCNT in x86-64)
      nmiss_ = ((nmiss_ << 1) | (hit ? 0u : 1u)) & 0xffffu;
      nlen_ = hit ? nlen_ + 1 : 0;
      uint32_t q;
      if (nmisses_ > static_cast<uint32_t>(kNmMaxMiss) || !next_nt(nptr_ + 1, pos, &q)) {
        nact_ = false;
      } else {
        nptr_ = q;
        nexp_ = buf_[q];
      }
    }
    if (nrun_ < static_cast<uint32_t>(kNmK)) return;
    const uint32_t key = nt_key(), h = nslot_;
    if (!nact_ && ntab_[h] > 0 && nkey_[h] == key) {
      uint32_t q;
      if (next_nt(ntab_[h], pos, &q)) {
        nact_ = true;
        nptr_ = q;
        nexp_ = buf_[q];
        nlen_ = 0;
        nmiss_ = 0;
        nmisses_ = 0;
      }
    }
    ntab_[h] = static_cast<uint32_t>(pos);
    nkey_[h] = key;
  }
  // Field-aligned reference: the previous line that starts with the same byte as this one,
  // followed field by field (fields end at a space, tab or comma), so that FASTA/FASTQ headers,
  // SAM and log lines see the same field of the previous record (counters, names, flags).
  static bool is_sep(uint32_t c) { return c == ' ' || c == '\t' || c == ','; }
  bool fld_live() const { return fref_ != kNoRef && !line_ctl_; }
  bool ctx_live(Ctx k) const {
    if (k == kFld) return fld_live();
    if constexpr (V >= 6) {
      if (k == kX1 || k == kX2 || k == kX4) return bin_cnt_ > kBinLive;
      if (k == kW2 || k == kI1 || k == kI2) return bin_cnt_ <= kBinLive;
    }
    return true;
  }
  void fld_byte(uint32_t c, size_t pos) {
    if (c == '\n') {
      fref_ = kNoRef;
      line_ctl_ = false;
      return;
    }
    if (c < 9 || (c > 13 && c < 32) || c == 127) line_ctl_ = true;  // not a text line
    if (pos - 1 == ls_) {  // the first byte of a line
      const uint32_t prev = first_line_[c];
      first_line_[c] = ls_ + 1;
      fref_ = prev ? prev : kNoRef;  // prev - 1 is the start of that line; its second byte is next
      return;
    }
    if (fref_ == kNoRef) return;
    const uint32_t a = buf_[fref_];  // fref_ <= the line feed that ends the reference line < ls_
    if (is_sep(c)) {
      uint32_t q = fref_;
      fref_ = kNoRef;
      for (int k = 0; k < kFldScan && buf_[q] != '\n'; ++k, ++q) {  // buf_[ref .. ref + 255]
        if (buf_[q] == c) {
          fref_ = q + 1;
          break;
        }
      }
    } else if (a != '\n' && !is_sep(a)) {
      ++fref_;
    }
  }

  uint32_t ctx_hash(Ctx k, size_t pos) const {
    switch (k) {
      case kFld: {
        if (!fld_live()) return 0;  // unused: find_bucket gives the null bucket
        const uint32_t a = buf_[fref_], a2 = a == '\n' ? 0 : buf_[fref_ + 1];
        return hash32(a | a2 << 8 | c1_ << 16, 1, 81);
      }
      case kO2: return hash32(c4_ & 0xffff, 0, 2);
      case kO3: return hash32(c4_ & 0xffffff, 0, 3);
      case kO4: return hash32(c4_, 0, 4);
      case kO6: return hash32(c4_, c8_ & 0xffff, 6);
      case kWord: return hash32(wh_, c1_, 8);
      case kW2: return hash32(wh_ + pwh_ * 0x2F0F3E6Bu, c1_, 9);
      case kX1: return hash32(c4_ & 0xff00ff00u, 0, 11);
      case kX2: return hash32(c4_ & 0xffff0000u, 0, 12);
      case kX4: return hash32(c8_, 0, 14);
      case kI1: return hash32(c1_ | uint32_t{next1_[c1_]} << 8, 0, 15);
      case kI2: return hash32(c4_ & 0xffff, next2_[c4_ & 0xffff], 16);
      case kN12: return hash32(n4_, hash32(n8_, n12_, 40), 40);
      case kCol: {  // the byte above (same column, previous line), the column and the last byte
        const uint32_t col = static_cast<uint32_t>(pos) - ls_;
        const uint32_t above = pls_ + col < ls_ ? buf_[pls_ + col] : 0;
        return hash32(above << 8 | c1_, std::min<uint32_t>(col, 255), 30);
      }
    }
    return 0;
  }

  const Logistic& l_;
  const Dt& dt_;
  const Rate16& r16_;
  const uint8_t* buf_;
  size_t len_;
  size_t pos_ = 0;
  uint32_t a2base_ = 0;
  uint32_t c0_ = 1, nib_ = 1, c1_ = 0, c4_ = 0, c8_ = 0, wh_ = 0, pwh_ = 0;
  uint32_t n4_ = 0, n8_ = 0, n12_ = 0, ls_ = 0, pls_ = 0;  // version 2
  int bitpos_ = 0;
  int lr_ = 5;
  XVec xv_;
  uint32_t h_[kHashed] = {};
  uint32_t hn_[2][kHashed] = {};
  uint32_t mask_[kHashed] = {};
  CacheVec<uint16_t> tab_[kHashed];
  uint16_t* bucket_[kHashed] = {};
  uint16_t* slot_[kHashed] = {};
  std::vector<uint32_t> o0_;
  CacheVec<uint16_t> o1_;
  uint16_t* o1base_ = nullptr;
  uint16_t* o1slot_ = nullptr;
  std::vector<uint32_t> mm_sm_;
  std::vector<uint32_t> mtab_;
  uint32_t mbits_ = 0;
  // Version 2: inverted-repeat model.
  static constexpr int kRcK = 12;     // k-mer length in nucleotides
  static constexpr int kRcWalk = 32;  // bytes examined to verify a candidate
  static constexpr int kRcSkip = 8;   // line feeds skipped when stepping back
  std::vector<uint32_t> rtab_, rsm_;
  uint32_t rbits_ = 0, rk_fw_ = 0, rk_rc_ = 0, rptr_ = 0, rlen_ = 0;
  uint32_t rslot_ = 0;  // rtab_ slot of rk_rc_ (shift_nucleotide)
  int rk_n_ = 0, rctx_ = -1;
  uint8_t rc_expect_ = 0;
  bool rna_ = false;
  // Version 3: field-aligned reference line.
  static constexpr uint32_t kNoRef = 0xffffffffu;
  static constexpr int kFldScan = 256;
  uint32_t fref_ = kNoRef;
  uint32_t first_line_[256] = {};
  bool line_ctl_ = false;
  alignas(32) uint16_t null_bucket_[16] = {};
  // Version 3: nucleotide history.
  uint64_t nh_ = 0;
  uint32_t nrun_ = 0;
  static constexpr int kNmK = 12, kNmMaxMiss = 8, kNmLane = 14;  // lanes 14 and 15
  std::vector<uint32_t> ntab_, nkey_, nsm_;
  uint32_t nbits_ = 0, nptr_ = 0, nlen_ = 0, nmiss_ = 0, nmisses_ = 0;
  uint32_t nslot_ = 0;  // ntab_ / nkey_ slot of nt_key() (shift_nucleotide)
  uint8_t nexp_ = 0;
  bool nact_ = false;
  int nctx_ = -1;
  uint8_t live_[kHashed] = {};
  // Version 6, indirect contexts: per byte (and per pair of bytes), the two bytes that followed
  // its last two occurrences, the later one low.
  std::vector<uint16_t> next1_ = std::vector<uint16_t>(V >= 6 ? 256 : 0);
  std::vector<uint16_t> next2_ = std::vector<uint16_t>(V >= 6 ? 65536 : 0);
  uint64_t bin_hist_ = 0;  // version 6: which of the last 64 bytes were control bytes
  uint32_t bin_cnt_ = 0;
  static constexpr uint32_t kBinLive = 1;
  uint32_t mlen_ = 0, mptr_ = 0;
  int mctx_ = -1;
  Apm a1_, a2_;
  Mixer mx1_, mx2_;
  Mixer mx3_, mx4_;  // version 5: selected by (c1, bit position) and (c2, bit position)
  Apm a3_;           // version 5: order 1, (c1 << 8 | c0)
  int dmix_ = 0, pmix_ = 2048, pr_ = 2048;
  int aw1_ = 0, aw2_ = 0;
  uint32_t ab1_ = 0, ab2_ = 0;
  std::unique_ptr<NetEval> net_;
};

// ---------------------------------------------------------------------------------------------
// Binary arithmetic coder (carryless, 32-bit, as in lpaq): p = P(bit = 1) in 1..4095 / 4096.
// xmid = x1 + ((x2 - x1) * p >> 12) computed in 64 bits; bit 1 takes [x1, xmid].
class Encoder {
 public:
  explicit Encoder(std::vector<uint8_t>* out) : out_(out) {}
  void code(int y, int p) {
    const uint32_t xmid = x1_ + static_cast<uint32_t>((static_cast<uint64_t>(x2_ - x1_) * static_cast<uint32_t>(p)) >> 12);
    if (y) x2_ = xmid;
    else x1_ = xmid + 1;
    while (((x1_ ^ x2_) & 0xff000000u) == 0) {
      out_->push_back(static_cast<uint8_t>(x2_ >> 24));
      x1_ <<= 8;
      x2_ = (x2_ << 8) | 255;
    }
  }
  void flush() {
    for (int i = 0; i < 4; ++i) {
      out_->push_back(static_cast<uint8_t>(x1_ >> 24));
      x1_ <<= 8;
    }
  }

 private:
  std::vector<uint8_t>* out_;
  uint32_t x1_ = 0, x2_ = 0xffffffffu;
};

class Decoder {
 public:
  explicit Decoder(std::span<const uint8_t> in) : in_(in) {
    for (int i = 0; i < 4; ++i) x_ = (x_ << 8) | next();
  }
  int code(int p) {
    const uint32_t xmid = x1_ + static_cast<uint32_t>((static_cast<uint64_t>(x2_ - x1_) * static_cast<uint32_t>(p)) >> 12);
    const int y = x_ <= xmid;
    if (y) x2_ = xmid;
    else x1_ = xmid + 1;
    while (((x1_ ^ x2_) & 0xff000000u) == 0) {
      x1_ <<= 8;
      x2_ = (x2_ << 8) | 255;
      x_ = (x_ << 8) | next();
    }
    return y;
  }
  bool overrun() const { return overrun_; }
  size_t consumed() const { return pos_; }

 private:
  uint32_t next() {
    if (pos_ < in_.size()) return in_[pos_++];
    overrun_ = true;
    return 0;
  }
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  bool overrun_ = false;
  uint32_t x1_ = 0, x2_ = 0xffffffffu, x_ = 0;
};


template <int V>
Result<bool> encode_impl(std::span<const uint8_t> raw, const Model* model, Isa isa, size_t budget,
                         std::vector<uint8_t>* out, CoderStats* stats) {
  try {
    out->clear();
    out->reserve(std::min(budget, raw.size() + 16) + 8);
    Encoder enc(out);
    Predictor<V> pred(raw.data(), raw.size(), model, kernels_for(resolve_isa(isa)));
    for (size_t i = 0; i < raw.size(); ++i) {
      const uint32_t c = raw[i];
      for (int b = 7; b >= 0; --b) {
        const int y = (c >> b) & 1;
        const int p = pred.p();
        if (stats) {
          const double pf = pred.p_float();
          stats->ideal_bits_hp += -std::log2(y ? pf : 1 - pf);
          stats->ideal_bits_q += -std::log2(y ? p / 4096.0 : 1 - p / 4096.0);
          ++stats->bits;
        }
        enc.code(y, p);
        pred.update(y);
      }
      if (out->size() > budget) return false;
    }
    enc.flush();
    if (stats) stats->payload_bytes = out->size();
    return out->size() <= budget;
  } catch (const std::bad_alloc&) {
    return Status::Error(ErrorCode::kInternal, "neural encode: out of memory");
  }
}

// Decodes a payload progressively into a caller-owned buffer of raw_len bytes: decode_to(end)
// continues from where the last call stopped, so a group is decoded only as far as a reader
// needs, and a sequential reader decodes it once. The first error is sticky.
template <int V>
class StreamImpl final : public NeuralStream {
 public:
  StreamImpl(std::span<const uint8_t> payload, uint32_t raw_len, const Model* model, Isa isa, uint8_t* out)
      : payload_(payload), raw_len_(raw_len), out_(out), dec_(payload),
        pred_(out, raw_len, model, kernels_for(resolve_isa(isa))) {
    if (dec_.overrun()) error_ = Status::Error(ErrorCode::kCorrupt, "neural payload truncated");
  }
  Status decode_to(uint32_t end) override {
    if (!error_.ok()) return error_;
    end = std::min(end, raw_len_);
    try {  // version 6 allocates a table when a context first lives
      for (; pos_ < end; ++pos_) {
        uint32_t c = 0;
        for (int b = 0; b < 8; ++b) {
          const int y = dec_.code(pred_.p());
          c = (c << 1) | static_cast<uint32_t>(y);
          if (b == 7) out_[pos_] = static_cast<uint8_t>(c);  // byte visible before the byte update
          pred_.update(y);
        }
        if (dec_.overrun()) return fail("neural payload truncated or corrupt (overrun)");
      }
    } catch (const std::bad_alloc&) {
      error_ = Status::Error(ErrorCode::kInternal, "neural decode: out of memory");
      return error_;
    }
    if (pos_ == raw_len_ && dec_.consumed() != payload_.size()) return fail("neural payload has trailing bytes");
    return Status::Ok();
  }
  uint32_t decoded() const override { return pos_; }
  size_t state_bytes() const override { return sizeof(*this) + pred_.table_bytes(); }

 private:
  Status fail(const char* why) {
    error_ = Status::Error(ErrorCode::kCorrupt, why);
    return error_;
  }
  std::span<const uint8_t> payload_;
  uint32_t raw_len_, pos_ = 0;
  uint8_t* out_;
  Decoder dec_;
  Predictor<V> pred_;
  Status error_ = Status::Ok();
};

template <int V>
Result<std::unique_ptr<NeuralStream>> stream_impl(std::span<const uint8_t> payload, uint32_t raw_len,
                                                  const Model* model, Isa isa, uint8_t* out) {
  try {
    return std::unique_ptr<NeuralStream>(new StreamImpl<V>(payload, raw_len, model, isa, out));
  } catch (const std::bad_alloc&) {
    return Status::Error(ErrorCode::kInternal, "neural decode: out of memory");
  }
}

}  // namespace

Result<bool> neural_encode(std::span<const uint8_t> raw, const Model* model, Isa isa, size_t budget,
                           std::vector<uint8_t>* out, CoderStats* stats, int version) {
  switch (version) {
    case 1: return encode_impl<1>(raw, model, isa, budget, out, stats);
    case 2: return encode_impl<2>(raw, model, isa, budget, out, stats);
    case 3: return encode_impl<3>(raw, model, isa, budget, out, stats);
    case 4: return encode_impl<4>(raw, model, isa, budget, out, stats);
    case 5: return encode_impl<5>(raw, model, isa, budget, out, stats);
    case 6: return encode_impl<6>(raw, model, isa, budget, out, stats);
  }
  return Status::Error(ErrorCode::kUnsupported, "neural encode: unsupported payload version " + std::to_string(version));
}

Result<std::unique_ptr<NeuralStream>> make_neural_stream(std::span<const uint8_t> payload, uint32_t raw_len,
                                                       const Model* model, Isa isa, uint8_t* out, int version) {
  switch (version) {
    case 1: return stream_impl<1>(payload, raw_len, model, isa, out);
    case 2: return stream_impl<2>(payload, raw_len, model, isa, out);
    case 3: return stream_impl<3>(payload, raw_len, model, isa, out);
    case 4: return stream_impl<4>(payload, raw_len, model, isa, out);
    case 5: return stream_impl<5>(payload, raw_len, model, isa, out);
    case 6: return stream_impl<6>(payload, raw_len, model, isa, out);
  }
  return Status::Error(ErrorCode::kUnsupported, "neural decode: unsupported payload version " + std::to_string(version));
}

Status neural_decode(std::span<const uint8_t> payload, uint32_t raw_len, const Model* model, Isa isa,
                     std::vector<uint8_t>* out, int version) {
  try {
    out->assign(raw_len, 0);
  } catch (const std::bad_alloc&) {
    return Status::Error(ErrorCode::kInternal, "neural decode: out of memory");
  }
  auto stream = make_neural_stream(payload, raw_len, model, isa, out->data(), version);
  if (!stream.ok()) return stream.status();
  return (*stream)->decode_to(raw_len);
}

}  // namespace dzfs::codec::detail
