// Model file format: loading, validation of every field, damage detection, reference forward.
#include <gtest/gtest.h>
#include <xxhash.h>

#include "codec/model.h"
#include "codec/net.h"
#include "test_data.h"

namespace dzfs::codec {
namespace {

std::vector<uint8_t> small_file() {
  auto b = serialize_model(make_random_tensors({.seed = 7, .window = 8, .hidden = 32, .layers = 2}));
  EXPECT_TRUE(b.ok());
  return *b;
}

void put32(std::vector<uint8_t>& f, size_t off, uint32_t v) {
  for (int i = 0; i < 4; ++i) f[off + i] = static_cast<uint8_t>(v >> (8 * i));
}

void reseal(std::vector<uint8_t>& f) {
  const uint64_t h = XXH3_64bits(f.data(), f.size() - 8);
  for (int i = 0; i < 8; ++i) f[f.size() - 8 + i] = static_cast<uint8_t>(h >> (8 * i));
}

Status load_status(const std::vector<uint8_t>& f) {
  auto m = Model::load(f);
  return m.ok() ? Status::Ok() : m.status();
}

TEST(Model, LoadsAndReportsManifest) {
  auto f = small_file();
  auto m = Model::load(f);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ((*m)->spec().window, 8u);
  EXPECT_EQ((*m)->spec().hidden, 32u);
  EXPECT_EQ((*m)->manifest_value("seed"), "7");
  EXPECT_EQ((*m)->id(), ModelId::of_bytes(f));
  EXPECT_FALSE((*m)->id().is_null());
  auto again = ModelId::from_hex((*m)->id().hex());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, (*m)->id());
  // Re-serializing the loaded tensors reproduces the file byte for byte.
  auto b = serialize_model((*m)->tensors());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, f);
}

TEST(Model, GeneratorIsDeterministic) {
  EXPECT_EQ(small_file(), small_file());
  auto other = serialize_model(make_random_tensors({.seed = 8, .window = 8, .hidden = 32, .layers = 2}));
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, small_file());
}

TEST(Model, EveryTruncationIsAnError) {
  auto f = small_file();
  for (size_t n = 0; n < f.size(); n += (n < 200 || f.size() - n < 200) ? 1 : 97) {
    std::vector<uint8_t> g(f.begin(), f.begin() + n);
    auto s = load_status(g);
    ASSERT_FALSE(s.ok()) << "truncated to " << n;
  }
}

TEST(Model, BitFlipsAreChecksumErrors) {
  auto f = small_file();
  for (size_t i = 8; i < f.size(); i += 331) {
    auto g = f;
    g[i] ^= 4;
    auto s = load_status(g);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), ErrorCode::kChecksumMismatch) << s.to_string();
  }
}

TEST(Model, ResealedBadFieldsAreClearErrors) {
  const auto f = small_file();
  struct Case {
    const char* what;
    size_t off;
    uint32_t value;
    ErrorCode code;
  };
  // Section layout for W=8, H=32: header 64, T1 hdr 32 + 65792, B1 hdr 32 + 128, A1 hdr 32 + 256.
  const size_t a1_data = 64 + 32 + 65792 + 32 + 128 + 32;
  const Case cases[] = {
      {"format version", 8, 2, ErrorCode::kUnsupported},
      {"arch id", 12, 9, ErrorCode::kUnsupported},
      {"header size", 16, 60, ErrorCode::kCorrupt},
      {"window 0", 20, 0, ErrorCode::kCorrupt},
      {"window mismatch", 20, 9, ErrorCode::kCorrupt},
      {"hidden not multiple of 32", 24, 48, ErrorCode::kCorrupt},
      {"hidden huge", 24, 1u << 30, ErrorCode::kCorrupt},
      {"layers 3", 28, 3, ErrorCode::kCorrupt},
      {"layers 1 with layer-2 sections", 28, 1, ErrorCode::kCorrupt},
      {"m1 overflow", 32, 1u << 30, ErrorCode::kCorrupt},
      {"m1 zero", 32, 0, ErrorCode::kCorrupt},
      {"s1 too large", 36, 31, ErrorCode::kCorrupt},
      {"negative shift", 44, 0xffffffffu, ErrorCode::kCorrupt},
      {"section count short", 56, 5, ErrorCode::kCorrupt},
      {"section count huge", 56, 1000, ErrorCode::kCorrupt},
      {"reserved", 60, 1, ErrorCode::kCorrupt},
      {"T1 tag", 64, 0x41414141, ErrorCode::kCorrupt},
      {"T1 dtype", 68, 2, ErrorCode::kCorrupt},
      {"T1 dim", 72, 7, ErrorCode::kCorrupt},
      {"T1 byte length", 88, 65791, ErrorCode::kCorrupt},
      {"T1 byte length huge", 92, 0x10000, ErrorCode::kCorrupt},
      {"negative LUT value", a1_data, 0x80808080u, ErrorCode::kCorrupt},
  };
  for (const auto& c : cases) {
    auto g = f;
    put32(g, c.off, c.value);
    reseal(g);
    auto s = load_status(g);
    ASSERT_FALSE(s.ok()) << c.what;
    EXPECT_EQ(s.code(), c.code) << c.what << ": " << s.to_string();
    EXPECT_FALSE(s.message().empty());
  }
}

TEST(Model, ValidateRejectsBadTensors) {
  auto t = make_random_tensors({.seed = 1, .window = 4, .hidden = 32, .layers = 1});
  ASSERT_TRUE(validate_tensors(t).ok());
  auto u = t;
  u.b1[0] = 1 << 30;
  EXPECT_FALSE(validate_tensors(u).ok());
  u = t;
  u.wo.pop_back();
  EXPECT_FALSE(validate_tensors(u).ok());
  u = t;
  u.manifest.push_back({"bad key", "v"});
  EXPECT_FALSE(validate_tensors(u).ok());
  u = t;
  u.manifest.push_back({"k", "line\nbreak"});
  EXPECT_FALSE(validate_tensors(u).ok());
  u = t;
  u.spec.mo = 1 << 30;
  EXPECT_FALSE(validate_tensors(u).ok());
  u = t;
  u.w2.assign(32 * 32, 1);
  EXPECT_FALSE(validate_tensors(u).ok());
}

TEST(Model, KernelsMatchReferenceForward) {
  for (uint32_t layers : {1u, 2u}) {
    auto m = Model::from_tensors(make_random_tensors({.seed = 5, .window = 16, .hidden = 64, .layers = layers}));
    ASSERT_TRUE(m.ok());
    const auto data = test::text_bytes(300, 3);
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512Vnni}) {
      if (!isa_supported(isa)) continue;
      detail::NetEval ev(**m, detail::kernels_for(isa));
      for (size_t pos = 0; pos < data.size(); pos += 13) {
        std::vector<uint16_t> win(16);
        for (size_t i = 0; i < 16; ++i) win[i] = pos > i ? data[pos - 1 - i] : kPadSymbol;
        std::vector<uint8_t> hidden;
        std::vector<int16_t> logits;
        ASSERT_TRUE((*m)->forward_reference(win, &hidden, &logits).ok());
        ev.set_context(data.data(), pos);
        for (size_t j = 0; j < 64; ++j) ASSERT_EQ(ev.hidden()[j], hidden[j]) << isa_name(isa);
        for (int node = 1; node <= 255; ++node)
          ASSERT_EQ(ev.node_logit(node), logits[node - 1]) << isa_name(isa) << " node " << node;
      }
    }
  }
}

// The coder calls set_context for every position and prefetch_next after it; set_context then
// reuses the rows prefetch_next found. Every position must still equal the reference, for the
// default shape (H 64, its own path) and another, from the chunk start on.
TEST(Model, RowsFoundByPrefetchNextGiveTheReferenceHidden) {
  for (auto [w, h] : {std::pair<uint32_t, uint32_t>{16, 64}, {6, 96}}) {
    auto m = Model::from_tensors(make_random_tensors({.seed = 4, .window = w, .hidden = h, .layers = 1}));
    ASSERT_TRUE(m.ok());
    const auto data = test::code_bytes(200, 2);
    detail::NetEval ev(**m, detail::kernels_for(resolve_isa(Isa::kAuto)));
    for (size_t pos = 0; pos < data.size(); ++pos) {
      std::vector<uint16_t> win(w);
      for (size_t i = 0; i < w; ++i) win[i] = pos > i ? data[pos - 1 - i] : kPadSymbol;
      std::vector<uint8_t> hidden;
      std::vector<int16_t> logits;
      ASSERT_TRUE((*m)->forward_reference(win, &hidden, &logits).ok());
      ev.set_context(data.data(), pos);
      for (size_t j = 0; j < h; ++j) ASSERT_EQ(ev.hidden()[j], hidden[j]) << "W " << w << " pos " << pos;
      if (pos % 7 != 3) ev.prefetch_next(data.data(), pos);  // sometimes not: rows found afresh
    }
  }
}

TEST(Model, NibbleBatchedLogitsMatchNodeLogits) {
  auto m = Model::from_tensors(make_random_tensors({.seed = 9, .window = 6, .hidden = 96, .layers = 2}));
  ASSERT_TRUE(m.ok());
  const auto data = test::code_bytes(64, 1);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512Vnni}) {
    if (!isa_supported(isa)) continue;
    detail::NetEval ev(**m, detail::kernels_for(isa));
    ev.set_context(data.data(), 40);
    for (int bucket = 0; bucket < 17; ++bucket) {
      ev.nibble_logits(bucket);
      for (uint32_t j = 1; j < 16; ++j) {
        const int depth = 31 - __builtin_clz(j);
        const int node = bucket == 0 ? static_cast<int>(j)
                                     : ((16 + bucket - 1) << depth) | static_cast<int>(j & ((1u << depth) - 1));
        ASSERT_EQ(ev.nibble_logit(j), ev.node_logit(node)) << isa_name(isa) << " bucket " << bucket << " j " << j;
      }
    }
  }
}

// The SIMD activation (vpshufb LUT) and logit kernels equal the scalar ones for every LUT index
// and for requantized values beyond the clamps.
TEST(Model, ActAndLogitKernelsMatchScalar) {
  const auto& sc = detail::kernels_for(Isa::kScalar);
  uint64_t st = 12345;
  auto rnd = [&] {
    st = st * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(st >> 33);
  };
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512Vnni}) {
    if (!isa_supported(isa)) continue;
    const auto& k = detail::kernels_for(isa);
    for (int rep = 0; rep < 200; ++rep) {
      uint8_t lut[256];
      for (auto& v : lut) v = static_cast<uint8_t>(rnd() % 128);
      const int32_t s = static_cast<int32_t>(rnd() % 12), m = 1 + static_cast<int32_t>(rnd() % 4096);
      std::vector<int32_t> acc(64);
      for (auto& a : acc) a = static_cast<int32_t>(rnd() % (1u << 18)) - (1 << 17);
      for (int j = 0; j < 64 && rep == 0; ++j) acc[j] = (j * 4 - 128) << s;  // every index 0..255 region
      uint8_t o1[64], o2[64];
      sc.act(o1, acc.data(), m, s, lut, 64);
      k.act(o2, acc.data(), m, s, lut, 64);
      for (int j = 0; j < 64; ++j) ASSERT_EQ(o1[j], o2[j]) << isa_name(isa) << " j " << j;
      int16_t l1[16], l2[16];
      sc.logits16(l1, acc.data(), m, s);
      k.logits16(l2, acc.data(), m, s);
      for (int j = 0; j < 16; ++j) ASSERT_EQ(l1[j], l2[j]) << isa_name(isa) << " j " << j;
    }
    // Each LUT index individually.
    uint8_t lut[256];
    for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>((i * 37 + 11) % 128);
    for (int base = -128; base < 128; base += 64) {
      std::vector<int32_t> acc(64);
      for (int j = 0; j < 64; ++j) acc[j] = base + j;
      uint8_t o2[64];
      k.act(o2, acc.data(), 1, 0, lut, 64);
      for (int j = 0; j < 64; ++j) ASSERT_EQ(o2[j], lut[base + j + 128]);
    }
  }
}

TEST(Model, ForwardRejectsBadWindow) {
  auto m = Model::from_tensors(make_random_tensors({.seed = 5, .window = 4, .hidden = 32, .layers = 1}));
  ASSERT_TRUE(m.ok());
  std::vector<uint16_t> w = {1, 2, 3};
  EXPECT_FALSE((*m)->forward_reference(w, nullptr, nullptr).ok());
  w = {1, 2, 3, 257};
  EXPECT_FALSE((*m)->forward_reference(w, nullptr, nullptr).ok());
}

}  // namespace
}  // namespace dzfs::codec
