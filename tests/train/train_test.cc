// Tests of dzfs train: the quantization-aware forward reproduces the codec's integer reference
// (Model::forward_reference) exactly, export/import round trips, split and config parsing, the
// command end to end on a tiny corpus, and the shipped default model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "codec/frame.h"
#include "codec/model.h"
#include "train/data.h"
#include "train/export.h"
#include "train/qat.h"
#include "train/train_command.h"

using namespace dzfs;
using namespace dzfs::train;
namespace fs = std::filesystem;

namespace {

// Text-like synthetic bytes with some structure, so a few training steps move the weights.
std::vector<uint8_t> synthetic(size_t n, uint64_t seed) {
  std::mt19937_64 r(seed);
  const char* words[] = {"int ", "return ", "static ", "void ", "(x) ", "{\n", "}\n", "struct ", "if ", "the ", "= ", ";\n"};
  std::vector<uint8_t> v;
  while (v.size() < n) {
    const char* w = words[r() % 12];
    v.insert(v.end(), w, w + std::strlen(w));
    if (r() % 7 == 0) v.push_back(static_cast<uint8_t>(r()));  // some noise, incl. high bytes
  }
  v.resize(n);
  return v;
}

Batch random_windows(int W, int n, uint64_t seed) {
  std::mt19937_64 r(seed);
  Batch b;
  b.size = n;
  b.idx.resize(size_t(n) * W);
  b.target.resize(n);
  for (int k = 0; k < n; ++k) {
    for (int i = 0; i < W; ++i) {
      // Mostly bytes, some pads (as at chunk starts).
      const int sym = r() % 16 == 0 ? kPad : static_cast<int>(r() % 256);
      b.idx[size_t(k) * W + i] = int64_t{i} * kSym + sym;
    }
    b.target[k] = static_cast<uint8_t>(r());
  }
  return b;
}

// Number of logits (of n windows x 255 nodes) where the trainer's integer forward differs from
// Model::forward_reference.
uint64_t mismatches(QatNet& net, const codec::Model& m, const Batch& b) {
  const auto lg = net.int_logits(b);
  const int W = net.config().window;
  std::vector<uint16_t> win(W);
  std::vector<int16_t> ref;
  uint64_t bad = 0;
  for (int k = 0; k < b.size; ++k) {
    for (int i = 0; i < W; ++i) win[i] = static_cast<uint16_t>(b.idx[size_t(k) * W + i] - int64_t{i} * kSym);
    EXPECT_TRUE(m.forward_reference(win, nullptr, &ref).ok());
    for (int j = 0; j < kNodes; ++j) bad += ref[j] != lg[size_t(k) * kNodes + j];
  }
  return bad;
}

void train_few(QatNet& net, int steps, double lr, uint64_t seed) {
  Corpus c;
  auto data = synthetic(200000, seed);
  c.data = data;
  c.piece_start = {0, 65536, 131072};
  c.piece_class = {0, 0, 0};
  c.classes = {""};
  std::mt19937_64 rng(seed);
  Batch b;
  for (int s = 0; s < steps; ++s) {
    sample_batch(c, net.config().window, 2048, rng, &b);
    net.train_step(b, lr);
  }
}

}  // namespace

TEST(Requant, ChoiceRespectsOverflowBound) {
  int32_t m = 0, s = 0;
  choose_requant(0.5, (1 << 20) + 16 * 127, &m, &s);
  EXPECT_NEAR(double(m) / std::ldexp(1.0, s), 0.5, 1e-9);
  EXPECT_LE(int64_t((1 << 20) + 16 * 127) * m + (s ? int64_t{1} << (s - 1) : 0), INT32_MAX);
  choose_requant(256.0 / 8128, (1 << 20) + 512 * 127 * 127, &m, &s);
  EXPECT_NEAR(double(m) / std::ldexp(1.0, s), 256.0 / 8128, 2e-3);
  EXPECT_LE(int64_t((1 << 20) + 512 * 127 * 127) * m + (s ? int64_t{1} << (s - 1) : 0), INT32_MAX);
}

// The core guarantee: after training (weights off the integer grid, biases, saturating
// activations), the exported model's Model::forward_reference gives exactly the trainer's
// integer logits, for 1- and 2-layer networks.
class QatExact : public ::testing::TestWithParam<std::tuple<int, int, int>> {};

TEST_P(QatExact, ExportedModelMatchesForwardReference) {
  auto [W, H, L] = GetParam();
  NetConfig cfg;
  cfg.window = W, cfg.hidden = H, cfg.layers = L, cfg.threads = 1;
  QatNet net(cfg, 7);
  train_few(net, 30, 0.03, 11);
  auto mt = to_model_tensors(net.export_int(), {{"generator", "train_test"}});
  auto model = codec::Model::from_tensors(mt);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const Batch b = random_windows(W, 3000, 99);
  EXPECT_EQ(mismatches(net, **model, b), 0u);
  // Logits must actually vary (a trivially constant network would also "match").
  const auto lg = net.int_logits(b);
  int distinct = 0;
  for (size_t i = 1; i < lg.size(); ++i) distinct += lg[i] != lg[0];
  EXPECT_GT(distinct, 1000);
  // Import of the exported integers reproduces the same logits in a fresh network.
  QatNet net2(cfg, 8);
  net2.import_int(from_model_tensors((*model)->tensors()));
  EXPECT_EQ(mismatches(net2, **model, b), 0u);
}

INSTANTIATE_TEST_SUITE_P(Shapes, QatExact,
                         ::testing::Values(std::make_tuple(16, 64, 1), std::make_tuple(8, 32, 2),
                                           std::make_tuple(5, 96, 1)));

TEST(QatImport, RandomCodecModelWithOtherLutAndRequant) {
  // make_random_tensors uses a hard-sigmoid LUT and its own requant constants.
  codec::RandomModelParams p;
  p.window = 8, p.hidden = 32, p.layers = 2, p.seed = 5;
  auto mt = codec::make_random_tensors(p);
  auto model = codec::Model::from_tensors(mt);
  ASSERT_TRUE(model.ok());
  QatNet net(net_config_of(mt, 1), 1);
  net.import_int(from_model_tensors(mt));
  EXPECT_EQ(mismatches(net, **model, random_windows(8, 2000, 3)), 0u);
}

TEST(Qat, IntegerModelCloseToFloatAndLearns) {
  NetConfig cfg;
  cfg.window = 8, cfg.hidden = 32, cfg.threads = 1;
  QatNet net(cfg, 3);
  Corpus c;
  c.data = synthetic(300000, 21);
  c.piece_start = {0, 65536, 131072, 196608, 262144};
  c.piece_class = {0, 0, 0, 0, 0};
  c.classes = {""};
  Batch vb;
  spread_batch(c, 8, 20000, &vb, nullptr);
  std::vector<float> f0, i0, f1, i1;
  net.evaluate(vb, &f0, &i0);
  std::mt19937_64 rng(1);
  Batch b;
  for (int s = 0; s < 150; ++s) {
    sample_batch(c, 8, 4096, rng, &b);
    net.train_step(b, 0.03);
  }
  net.evaluate(vb, &f1, &i1);
  auto mean = [](const std::vector<float>& v) {
    double s = 0;
    for (float x : v) s += x;
    return s / v.size();
  };
  EXPECT_LT(mean(i1), mean(i0) - 2.0);  // learned something (starts near 8 bits/byte)
  EXPECT_NEAR(mean(i1) / mean(f1), 1.0, 0.02);
}

TEST(Split, PathHashIsFnv1a64AndStable) {
  EXPECT_EQ(path_hash(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(path_hash("a"), 0xaf63dc4c8601ec8cull);
  int held = 0;
  for (int i = 0; i < 1000; ++i) {
    char name[32];
    snprintf(name, sizeof name, "dir/file%d.c", i);
    held += is_held_back(name, 20);
  }
  EXPECT_GT(held, 140);
  EXPECT_LT(held, 260);
}

TEST(ConfigFile, ParsesKeyValueCommentsAndRepeats) {
  const fs::path p = fs::temp_directory_path() / "dzfs_train_test.conf";
  std::ofstream(p) << "# comment\nwindow = 8   # trailing\n\nhidden=32\ndata = a, b\ndata = c\n";
  Config c;
  std::string err;
  ASSERT_TRUE(c.read(p.string(), &err)) << err;
  EXPECT_EQ(c.get("window"), "8");
  EXPECT_EQ(c.get("hidden"), "32");
  EXPECT_EQ(c.all("data").size(), 2u);
  EXPECT_EQ(c.get("missing", "x"), "x");
  std::ofstream(p) << "window 8\n";
  Config bad;
  EXPECT_FALSE(bad.read(p.string(), &err));
  fs::remove(p);
}

TEST(Command, TrainsExportsAndEvaluatesTinyCorpus) {
  const fs::path d = fs::temp_directory_path() / "dzfs_train_cmd_test";
  fs::remove_all(d);
  fs::create_directories(d / "corpus" / "text");
  for (int i = 0; i < 12; ++i) {
    auto v = synthetic(20000 + 1000 * i, 100 + i);
    char name[32];
    snprintf(name, sizeof name, "f%d.txt", i);
    std::ofstream(d / "corpus" / "text" / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(v.data()), v.size());
  }
  std::ofstream(d / "tiny.conf") << "window = 8\nhidden = 32\nsteps = 20\nbatch = 1024\nlr = 0.03\nseed = 3\n"
                                    "eval_every = 10\nvalid_positions = 4096\nthreads = 1\nvalidation_percent = 30\n"
                                    "data = corpus\nout = tiny.dzm\n";
  ASSERT_EQ(run_train_command({"--config", (d / "tiny.conf").string()}), 0);
  auto m = codec::Model::load_file((d / "tiny.dzm").string());
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ((*m)->spec().window, 8u);
  EXPECT_EQ((*m)->manifest_value("steps"), "20");
  EXPECT_FALSE((*m)->manifest_value("int_bpb").empty());
  EXPECT_FALSE((*m)->manifest_value("float_bpb").empty());
  EXPECT_NE((*m)->manifest_value("config.window"), "");
  // Evaluation with the codec (round trip checked inside).
  EXPECT_EQ(run_train_command({"--eval", (d / "tiny.dzm").string(), "--data", (d / "corpus").string(), "--threads", "1"}), 0);
  // Split into train/heldback.
  ASSERT_EQ(run_train_command({"split", "--corpus", (d / "corpus").string(), "--out", (d / "split").string()}), 0);
  size_t n = 0;
  for (auto& e : fs::recursive_directory_iterator(d / "split"))
    if (e.is_regular_file()) {
      ++n;
      const auto rel = fs::relative(e.path(), d / "split" / (e.path().string().find("/heldback/") != std::string::npos ? "heldback" : "train"));
      EXPECT_EQ(is_held_back(rel.generic_string(), 20), e.path().string().find("/heldback/") != std::string::npos);
    }
  EXPECT_EQ(n, 12u);
  EXPECT_NE(run_train_command({"--bogus-only"}), 0);
  fs::remove_all(d);
}

TEST(DefaultModel, LoadsAndCarriesItsManifest) {
  const fs::path p = fs::path(DZFS_TRAIN_MODELS_DIR) / "default.dzm";
  if (!fs::exists(p)) GTEST_SKIP() << "no default model checked in at " << p;
  auto m = codec::Model::load_file(p.string());
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ((*m)->manifest_value("generator"), "dzfs train");
  EXPECT_FALSE((*m)->manifest_value("int_bpb").empty());
  EXPECT_LE((*m)->file_size(), size_t{3} << 20);
  QatNet net(net_config_of((*m)->tensors(), 1), 1);
  net.import_int(from_model_tensors((*m)->tensors()));
  EXPECT_EQ(mismatches(net, **m, random_windows(int((*m)->spec().window), 1000, 5)), 0u);
  // Round trip through the codec on text.
  auto raw = synthetic(30000, 9);
  auto f = codec::encode_frame(codec::CodecId::kNeural, raw, m->get());
  ASSERT_TRUE(f.ok());
  codec::ModelSet set;
  set.add(*m);
  auto d = codec::decode_frame(*f, set);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, raw);
}
