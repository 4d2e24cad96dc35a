// SIMD kernels. Compiled with per-function target attributes so the library runs on any x86-64;
// chosen at run time (net.cc). Exact integer arithmetic: results equal the scalar kernels.
#include "codec/net.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define DZC_AVX2 __attribute__((target("avx2")))
#define DZC_VNNI __attribute__((target("avx2,avx512f,avx512vl,avx512bw,avx512vnni")))

namespace dzfs::codec::detail {
namespace {

inline const __m128i* p128(const void* p) { return static_cast<const __m128i*>(p); }
inline const __m256i* p256(const void* p) { return static_cast<const __m256i*>(p); }

DZC_AVX2 inline void accum_store(int32_t* acc, const int32_t* bias, int j, __m256i s) {
  __m256i lo = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s));
  __m256i hi = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s, 1));
  lo = _mm256_add_epi32(lo, _mm256_loadu_si256(p256(bias + j)));
  hi = _mm256_add_epi32(hi, _mm256_loadu_si256(p256(bias + j + 8)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + j), lo);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + j + 8), hi);
}

// int16 accumulation is exact: |sum| <= 64 rows * 128.
DZC_AVX2 void accum_avx2(int32_t* acc, const int32_t* bias, const int8_t* const* rows, int nrows, int H) {
  int j = 0;
  for (; j + 64 <= H; j += 64) {  // 4 accumulators per pass over the rows
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    for (int r = 0; r < nrows; ++r) {
      const int8_t* row = rows[r] + j;
      s0 = _mm256_add_epi16(s0, _mm256_cvtepi8_epi16(_mm_loadu_si128(p128(row))));
      s1 = _mm256_add_epi16(s1, _mm256_cvtepi8_epi16(_mm_loadu_si128(p128(row + 16))));
      s2 = _mm256_add_epi16(s2, _mm256_cvtepi8_epi16(_mm_loadu_si128(p128(row + 32))));
      s3 = _mm256_add_epi16(s3, _mm256_cvtepi8_epi16(_mm_loadu_si128(p128(row + 48))));
    }
    accum_store(acc, bias, j, s0);
    accum_store(acc, bias, j + 16, s1);
    accum_store(acc, bias, j + 32, s2);
    accum_store(acc, bias, j + 48, s3);
  }
  for (; j < H; j += 32) {  // H is a multiple of 32
    __m256i s0 = _mm256_setzero_si256(), s1 = s0;
    for (int r = 0; r < nrows; ++r) {
      const int8_t* row = rows[r] + j;
      s0 = _mm256_add_epi16(s0, _mm256_cvtepi8_epi16(_mm_loadu_si128(p128(row))));
      s1 = _mm256_add_epi16(s1, _mm256_cvtepi8_epi16(_mm_loadu_si128(p128(row + 16))));
    }
    accum_store(acc, bias, j, s0);
    accum_store(acc, bias, j + 16, s1);
  }
}

DZC_AVX2 inline int32_t hsum_avx2(__m256i v) {
  __m128i x = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4e));
  x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xb1));
  return _mm_cvtsi128_si32(x);
}

// u8 (0..127) x s8: vpmaddubsw pair sums <= 2*127*128 = 32512, no saturation; then to int32.
DZC_AVX2 inline __m256i dot32_avx2(__m256i a, __m256i w) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(a, w), _mm256_set1_epi16(1));
}

DZC_AVX2 int32_t dot_avx2(const uint8_t* a, const int8_t* w, int H) {
  __m256i acc = _mm256_setzero_si256();
  for (int j = 0; j < H; j += 32)
    acc = _mm256_add_epi32(acc, dot32_avx2(_mm256_loadu_si256(p256(a + j)), _mm256_loadu_si256(p256(w + j))));
  return hsum_avx2(acc);
}

// Reduces 8 vectors of 8 partial sums to one vector of 8 totals (lane r = total of v[r]).
DZC_AVX2 inline __m256i reduce8(const __m256i* v) {
  const __m256i s01 = _mm256_hadd_epi32(v[0], v[1]), s23 = _mm256_hadd_epi32(v[2], v[3]);
  const __m256i s45 = _mm256_hadd_epi32(v[4], v[5]), s67 = _mm256_hadd_epi32(v[6], v[7]);
  const __m256i s0123 = _mm256_hadd_epi32(s01, s23), s4567 = _mm256_hadd_epi32(s45, s67);
  return _mm256_add_epi32(_mm256_permute2x128_si256(s0123, s4567, 0x20),
                          _mm256_permute2x128_si256(s0123, s4567, 0x31));
}

// H = 32 * NC (NC <= 4): the activations stay in registers for all rows.
template <int NC>
DZC_AVX2 void matvec_avx2_fixed(int32_t* out, const uint8_t* a, const int8_t* w, const int32_t* bias, int rows) {
  constexpr int H = 32 * NC;
  __m256i av[NC];
  for (int c = 0; c < NC; ++c) av[c] = _mm256_loadu_si256(p256(a + 32 * c));
  for (int r0 = 0; r0 < rows; r0 += 8) {
    __m256i acc[8];
    for (int i = 0; i < 8; ++i) {
      const int8_t* row = w + static_cast<size_t>(r0 + i) * H;
      __m256i s = dot32_avx2(av[0], _mm256_loadu_si256(p256(row)));
      for (int c = 1; c < NC; ++c) s = _mm256_add_epi32(s, dot32_avx2(av[c], _mm256_loadu_si256(p256(row + 32 * c))));
      acc[i] = s;
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r0),
                        _mm256_add_epi32(reduce8(acc), _mm256_loadu_si256(p256(bias + r0))));
  }
}

DZC_AVX2 void matvec_avx2(int32_t* out, const uint8_t* a, const int8_t* w, const int32_t* bias, int rows, int H) {
  switch (H) {
    case 32: return matvec_avx2_fixed<1>(out, a, w, bias, rows);
    case 64: return matvec_avx2_fixed<2>(out, a, w, bias, rows);
    case 96: return matvec_avx2_fixed<3>(out, a, w, bias, rows);
    case 128: return matvec_avx2_fixed<4>(out, a, w, bias, rows);
  }
  for (int r0 = 0; r0 < rows; r0 += 8) {
    __m256i acc[8];
    for (int i = 0; i < 8; ++i) {
      const int8_t* row = w + static_cast<size_t>(r0 + i) * H;
      __m256i s = _mm256_setzero_si256();
      for (int j = 0; j < H; j += 32)
        s = _mm256_add_epi32(s, dot32_avx2(_mm256_loadu_si256(p256(a + j)), _mm256_loadu_si256(p256(row + j))));
      acc[i] = s;
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r0),
                        _mm256_add_epi32(reduce8(acc), _mm256_loadu_si256(p256(bias + r0))));
  }
}

// requant in int32 (the loader guarantees |acc| * m + 2^(s-1) < 2^31), clamp, then LUT.
// requant in int32 (the loader guarantees |acc| * m + 2^(s-1) < 2^31), clamp, then LUT.
DZC_AVX2 void act_avx2(uint8_t* out, const int32_t* acc, int32_t m, int32_t s, const uint8_t* lut, int H) {
  const __m256i vm = _mm256_set1_epi32(m), vr = _mm256_set1_epi32(s > 0 ? 1 << (s - 1) : 0);
  const __m128i vs = _mm_cvtsi32_si128(s);
  const __m256i off = _mm256_set1_epi16(128);
  for (int j = 0; j < H; j += 32) {
    __m256i v[4];
    for (int k = 0; k < 4; ++k)
      v[k] = _mm256_sra_epi32(
          _mm256_add_epi32(_mm256_mullo_epi32(_mm256_loadu_si256(p256(acc + j + 8 * k)), vm), vr), vs);
    // Saturating packs clamp to int16 then -128..127 (as the scalar clamp does); +128 -> 0..255.
    __m256i w01 = _mm256_packs_epi32(v[0], v[1]), w23 = _mm256_packs_epi32(v[2], v[3]);
    w01 = _mm256_add_epi16(_mm256_max_epi16(_mm256_min_epi16(w01, _mm256_set1_epi16(127)), _mm256_set1_epi16(-128)), off);
    w23 = _mm256_add_epi16(_mm256_max_epi16(_mm256_min_epi16(w23, _mm256_set1_epi16(127)), _mm256_set1_epi16(-128)), off);
    __m256i b = _mm256_packus_epi16(w01, w23);
    // Undo the per-lane interleaving of the packs: dwords hold elements
    // [0-3, 8-11, 16-19, 24-27 | 4-7, 12-15, 20-23, 28-31].
    b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    // 256-entry LUT by 16 vpshufb lookups: entry b = table k = b >> 4, element b & 15.
    const __m256i lo = _mm256_and_si256(b, _mm256_set1_epi8(15));
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), _mm256_set1_epi8(15));
    __m256i r = _mm256_setzero_si256();
    for (int k = 0; k < 16; ++k) {
      const __m256i t = _mm256_broadcastsi128_si256(_mm_loadu_si128(p128(lut + 16 * k)));
      r = _mm256_or_si256(r, _mm256_and_si256(_mm256_cmpeq_epi8(hi, _mm256_set1_epi8(static_cast<char>(k))),
                                              _mm256_shuffle_epi8(t, lo)));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), r);
  }
}

DZC_AVX2 void logits16_avx2(int16_t* out, const int32_t* acc, int32_t m, int32_t s) {
  const __m256i vm = _mm256_set1_epi32(m), vr = _mm256_set1_epi32(s > 0 ? 1 << (s - 1) : 0);
  const __m128i vs = _mm_cvtsi32_si128(s);
  const __m256i lo = _mm256_sra_epi32(_mm256_add_epi32(_mm256_mullo_epi32(_mm256_loadu_si256(p256(acc)), vm), vr), vs);
  const __m256i hi = _mm256_sra_epi32(_mm256_add_epi32(_mm256_mullo_epi32(_mm256_loadu_si256(p256(acc + 8)), vm), vr), vs);
  // packs saturates to int16 (monotone), then the clamp to +-2047: same as clamping the int32.
  __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(lo, hi), 0xd8);
  w = _mm256_max_epi16(_mm256_min_epi16(w, _mm256_set1_epi16(2047)), _mm256_set1_epi16(-2047));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), w);
}

DZC_VNNI int32_t dot_vnni(const uint8_t* a, const int8_t* w, int H) {
  __m256i acc = _mm256_setzero_si256();
  for (int j = 0; j < H; j += 32)
    acc = _mm256_dpbusd_epi32(acc, _mm256_loadu_si256(p256(a + j)), _mm256_loadu_si256(p256(w + j)));
  return hsum_avx2(acc);
}

template <int NC>
DZC_VNNI void matvec_vnni_fixed(int32_t* out, const uint8_t* a, const int8_t* w, const int32_t* bias, int rows) {
  constexpr int H = 32 * NC;
  __m256i av[NC];
  for (int c = 0; c < NC; ++c) av[c] = _mm256_loadu_si256(p256(a + 32 * c));
  for (int r0 = 0; r0 < rows; r0 += 8) {
    __m256i acc[8];
    for (int i = 0; i < 8; ++i) {
      const int8_t* row = w + static_cast<size_t>(r0 + i) * H;
      __m256i s = _mm256_setzero_si256();
      for (int c = 0; c < NC; ++c) s = _mm256_dpbusd_epi32(s, av[c], _mm256_loadu_si256(p256(row + 32 * c)));
      acc[i] = s;
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r0),
                        _mm256_add_epi32(reduce8(acc), _mm256_loadu_si256(p256(bias + r0))));
  }
}

DZC_VNNI void matvec_vnni(int32_t* out, const uint8_t* a, const int8_t* w, const int32_t* bias, int rows, int H) {
  switch (H) {
    case 32: return matvec_vnni_fixed<1>(out, a, w, bias, rows);
    case 64: return matvec_vnni_fixed<2>(out, a, w, bias, rows);
    case 96: return matvec_vnni_fixed<3>(out, a, w, bias, rows);
    case 128: return matvec_vnni_fixed<4>(out, a, w, bias, rows);
  }
  for (int r0 = 0; r0 < rows; r0 += 8) {
    __m256i acc[8];
    for (int i = 0; i < 8; ++i) {
      const int8_t* row = w + static_cast<size_t>(r0 + i) * H;
      __m256i s = _mm256_setzero_si256();
      for (int j = 0; j < H; j += 32)
        s = _mm256_dpbusd_epi32(s, _mm256_loadu_si256(p256(a + j)), _mm256_loadu_si256(p256(row + j)));
      acc[i] = s;
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r0),
                        _mm256_add_epi32(reduce8(acc), _mm256_loadu_si256(p256(bias + r0))));
  }
}

const NetKernels kAvx2{Isa::kAvx2, accum_avx2, dot_avx2, matvec_avx2, act_avx2, logits16_avx2};
const NetKernels kVnni{Isa::kAvx512Vnni, accum_avx2, dot_vnni, matvec_vnni, act_avx2, logits16_avx2};

}  // namespace

const NetKernels* avx2_kernels() { return &kAvx2; }
const NetKernels* avx512vnni_kernels() { return &kVnni; }

}  // namespace dzfs::codec::detail

#else
namespace dzfs::codec::detail {
const NetKernels* avx2_kernels() { return nullptr; }
const NetKernels* avx512vnni_kernels() { return nullptr; }
}  // namespace dzfs::codec::detail
#endif
