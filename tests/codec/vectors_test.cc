// Checked-in test vectors: a small model (and its generator seed) and the XXH3-128 of the frames
// that every implementation (scalar, AVX2, AVX-512 VNNI; any batch size or thread count) must
// produce, one file per frame version: expected.txt (version 1) and expected_v2.txt (version 2),
// expected_v3.txt (version 3) and expected_v5.txt (the first solid-group version), all frozen:
// existing volumes hold such frames, so they are never regenerated; expected_v4.txt (the
// per-chunk version written now) and expected_v6.txt (solid groups now). After an intentional
// format change, bump the frame version, add a file, and generate it with
//   DZFS_CODEC_REGEN_VECTORS=1 ./codec_vectors_test   (rewrites the files of versions 4 and 6 only)
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "codec/backend.h"
#include "codec/frame.h"
#include "codec/model.h"
#include "codec/neural.h"
#include "codec/util.h"
#include "test_data.h"

#ifndef DZFS_CODEC_VECTORS_DIR
#error "DZFS_CODEC_VECTORS_DIR must be defined"
#endif

namespace dzfs::codec {
namespace {

const std::string kDir = DZFS_CODEC_VECTORS_DIR;

std::string hash128(const std::vector<uint8_t>& b) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits(b.data(), b.size()));
  static const char* d = "0123456789abcdef";
  std::string s;
  for (auto x : c.digest) {
    s += d[x >> 4];
    s += d[x & 15];
  }
  return s;
}

// Version 3 added genomic inputs (the older versions' files are frozen with the first seven).
std::vector<std::pair<std::string, std::vector<uint8_t>>> vector_inputs(uint8_t version) {
  std::vector<std::pair<std::string, std::vector<uint8_t>>> v;
  v.emplace_back("one-byte", std::vector<uint8_t>{'Q'});
  v.emplace_back("zeros-1k", std::vector<uint8_t>(1024, 0));
  v.emplace_back("text-20k", test::text_bytes(20000, 100));
  v.emplace_back("code-30k", test::code_bytes(30000, 101));
  v.emplace_back("repeat-40k", test::repeat_bytes(40000, 102));
  v.emplace_back("random-4k", test::random_bytes(4096, 103));
  auto file = read_file(kDir + "/sample.txt", 1 << 20);
  if (file.ok()) v.emplace_back("sample.txt", *file);
  if (version >= 3) {
    v.emplace_back("fastq-30k", test::fastq_bytes(30000, 104));
    // A short field after a long one: the field context's separator scan runs up to and past
    // its 256-byte bound.
    std::string f;
    for (int i = 0; i < 40; ++i)
      f += "A" + std::string(250 + i % 12, static_cast<char>('a' + i % 26)) + " q,r\tz\nA y q,r\tz\n";
    v.emplace_back("long-fields", std::vector<uint8_t>(f.begin(), f.end()));
  }
  if (version >= 6) {
    // Binary records (little-endian counters, offsets, flags, zero padding) between text: the
    // kind detector switches to the sparse contexts and back.
    std::vector<uint8_t> r;
    uint32_t x = 12345;
    for (int i = 0; i < 3000; ++i) {
      x = x * 1103515245u + 12345u;
      const uint32_t f[4] = {uint32_t(i), 0x400000u + uint32_t(i) * 24u, (x >> 16) & 7u, 0};
      for (uint32_t w : f)
        for (int k = 0; k < 4; ++k) r.push_back(uint8_t(w >> (8 * k)));
      if (i % 500 == 499) {
        auto t = test::text_bytes(2000, 300 + i);
        r.insert(r.end(), t.begin(), t.end());
      }
    }
    v.emplace_back("records-60k", r);
  }
  if (version >= 5) {
    // A solid group: chunks of several kinds, long enough (1.2 MiB) that the match table outgrows
    // the per-chunk versions' cap.
    std::vector<uint8_t> g;
    for (int i = 0; i < 6; ++i) {
      for (auto part : {test::code_bytes(90000, 200 + i), test::text_bytes(60000, 210 + i),
                        test::fastq_bytes(40000, 220 + i), test::random_bytes(3000, 230 + i)})
        g.insert(g.end(), part.begin(), part.end());
      auto again = test::code_bytes(20000, 200 + i);  // repeats far back in the group
      g.insert(g.end(), again.begin(), again.end());
    }
    v.emplace_back("group-1m", std::move(g));
  }
  return v;
}

struct Computed {
  std::string model_id;
  std::vector<std::pair<std::string, std::string>> lines;  // key -> "size hash"
};

Computed compute(const Model& m, Isa isa, uint8_t version) {
  Computed c;
  c.model_id = m.id().hex();
  EncodeOptions o;
  o.isa = isa;
  o.frame_version = version;
  for (auto& [name, raw] : vector_inputs(version)) {
    for (int which = 0; which < 3; ++which) {
      Result<std::vector<uint8_t>> f = Status::Error(ErrorCode::kInternal, "");
      std::string key;
      if (which == 0) f = encode_frame(CodecId::kNeural, raw, &m, o), key = "neural-model/";
      if (which == 1) f = encode_frame(CodecId::kNeural, raw, nullptr, o), key = "neural-nomodel/";
      if (which == 2) f = choose_and_encode(raw, &m, o), key = "chosen/";
      EXPECT_TRUE(f.ok()) << f.status().to_string();
      if (!f.ok()) continue;
      c.lines.emplace_back(key + name, std::to_string(f->size()) + " " + hash128(*f));
    }
  }
  return c;
}

TEST(Vectors, CheckedInModelMatchesGenerator) {
  auto file = read_file(kDir + "/small_model.dzm", 1 << 20);
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  auto gen = serialize_model(make_random_tensors({.seed = 7, .window = 8, .hidden = 32, .layers = 2}));
  ASSERT_TRUE(gen.ok());
  EXPECT_EQ(*file, *gen) << "random-init generator changed: model files would differ";
}

std::string expected_file(uint8_t version) {
  return kDir + (version == 1 ? std::string("/expected.txt") : "/expected_v" + std::to_string(version) + ".txt");
}

void check_version(uint8_t version) {
  auto m = Model::load_file(kDir + "/small_model.dzm");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Computed ref = compute(**m, Isa::kScalar, version);
  if (std::getenv("DZFS_CODEC_REGEN_VECTORS") && (version == kFrameVersion || version == kGroupFrameVersion) && version > 1) {
    std::ofstream out(expected_file(version));
    out << "# dzfs codec test vectors (frame format v" << int(version)
        << "): key frame_bytes xxh3-128(frame). Generated by codec_vectors_test.\n";
    out << "model small_model.dzm " << ref.model_id << "\n";
    for (auto& [k, v] : ref.lines) out << k << " " << v << "\n";
    GTEST_SKIP() << "regenerated " << expected_file(version);
  }
  std::ifstream in(expected_file(version));
  ASSERT_TRUE(in.good()) << "missing " << expected_file(version);
  std::map<std::string, std::string> want;
  std::string line, model_id;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string key, a, b;
    ls >> key >> a >> b;
    if (key == "model") model_id = b;
    else want[key] = a + " " + b;
  }
  EXPECT_EQ(ref.model_id, model_id);
  EXPECT_EQ(want.size(), ref.lines.size());
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512Vnni}) {
    if (!isa_supported(isa)) {
      std::printf("ISA %s not supported on this CPU: skipped\n", isa_name(isa));
      continue;
    }
    const Computed c = isa == Isa::kScalar ? ref : compute(**m, isa, version);
    for (auto& [k, v] : c.lines) EXPECT_EQ(want[k], v) << k << " with ISA " << isa_name(isa) << ", v" << int(version);
  }
  // Decoding the frames (whose hashes were just checked) through a batch backend, 2 threads.
  ModelSet set;
  set.add(*m);
  auto be = make_cpu_backend(nullptr, set);
  std::vector<std::vector<uint8_t>> frames, raws;
  EncodeOptions o;
  o.frame_version = version;
  for (auto& [name, raw] : vector_inputs(version)) {
    for (const Model* mm : {m->get(), static_cast<const Model*>(nullptr)}) {
      auto f = encode_frame(CodecId::kNeural, raw, mm, o);
      ASSERT_TRUE(f.ok());
      ASSERT_EQ((*f)[4], version);
      frames.push_back(*f);
      raws.push_back(raw);
    }
  }
  std::vector<std::span<const uint8_t>> fin(frames.begin(), frames.end());
  std::vector<Result<std::vector<uint8_t>>> out;
  be->decode_batch(fin, &out, {2});
  ASSERT_EQ(out.size(), raws.size());
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_TRUE(out[i].ok()) << out[i].status().to_string();
    EXPECT_TRUE(*out[i] == raws[i]);
  }
}

// Version 1 frames (written before version 2 existed) still encode and decode bit-exactly.
TEST(Vectors, Version1FramesReproduced) { check_version(1); }
TEST(Vectors, Version2FramesReproduced) { check_version(2); }
TEST(Vectors, Version3FramesReproduced) { check_version(3); }
TEST(Vectors, Version4FramesReproduced) { check_version(4); }
TEST(Vectors, Version5FramesReproduced) { check_version(5); }
TEST(Vectors, Version6FramesReproduced) { check_version(6); }

TEST(Vectors, DefaultWritesLatestVersion) {
  auto f = encode_frame(CodecId::kNeural, test::text_bytes(3000, 5), nullptr);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)[4], kFrameVersion);
  EncodeOptions o;
  o.frame_version = kFrameVersionMax + 1;
  EXPECT_FALSE(encode_frame(CodecId::kNeural, test::text_bytes(3000, 5), nullptr, o).ok());
  // raw and zstd frames keep version 1
  auto z = encode_frame(CodecId::kZstd, test::text_bytes(3000, 5), nullptr);
  ASSERT_TRUE(z.ok());
  EXPECT_EQ((*z)[4], 1);
}

// Measures what probability quantization costs: ideal code length with the unquantized (float)
// final probability vs. with the 12-bit probability actually coded, vs. the coder's real output.
TEST(Quantization, CostIsSmallAndReported) {
  auto m = Model::load_file(kDir + "/small_model.dzm");
  ASSERT_TRUE(m.ok());
  for (auto& [name, raw] : vector_inputs(kFrameVersion)) {
    if (raw.size() < 1000) continue;
    detail::CoderStats st;
    std::vector<uint8_t> out;
    auto r = detail::neural_encode(raw, m->get(), Isa::kAuto, SIZE_MAX, &out, &st);
    ASSERT_TRUE(r.ok() && *r);
    const double real_bits = 8.0 * st.payload_bytes;
    std::printf("%-12s %7zu bytes: ideal(float p) %9.1f bits, ideal(12-bit p) %9.1f bits (+%.3f%%), "
                "coded %9.0f bits (+%.3f%% over 12-bit ideal)\n",
                name.c_str(), raw.size(), st.ideal_bits_hp, st.ideal_bits_q,
                100.0 * (st.ideal_bits_q - st.ideal_bits_hp) / st.ideal_bits_hp, real_bits,
                100.0 * (real_bits - st.ideal_bits_q) / st.ideal_bits_q);
    EXPECT_EQ(st.bits, raw.size() * 8);
    // 12-bit probabilities cost < 1% (and < 64 bytes) beyond the float ideal; the coder adds at
    // most its 4-byte flush plus 0.1%.
    EXPECT_LT(st.ideal_bits_q - st.ideal_bits_hp, std::max(0.01 * st.ideal_bits_hp, 512.0)) << name;
    EXPECT_LT(real_bits, st.ideal_bits_q * 1.001 + 40) << name;
  }
}

}  // namespace
}  // namespace dzfs::codec
