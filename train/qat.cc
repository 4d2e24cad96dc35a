// dzfs train: quantization-aware WMLP in libtorch (C++17). See qat.h for the units.
#include "train/qat.h"

#include <torch/torch.h>

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace dzfs::train {

void choose_requant(double ratio, int64_t bound, int32_t* m, int32_t* s) {
  for (int sh = 30; sh >= 0; --sh) {
    const double mv = std::nearbyint(ratio * std::ldexp(1.0, sh));
    if (mv < 1 || mv > double(1 << 30)) continue;
    const int64_t mi = static_cast<int64_t>(mv);
    const int64_t half = sh > 0 ? int64_t{1} << (sh - 1) : 0;
    if (bound * mi + half <= INT32_MAX) {
      *m = static_cast<int32_t>(mi);
      *s = sh;
      return;
    }
  }
  *m = 1;
  *s = 0;
}

namespace {
namespace F = torch::nn::functional;

torch::Tensor ste_round(const torch::Tensor& x, double lo, double hi) {
  auto q = x.detach().round().clamp(lo, hi);
  return x + (q - x).detach();
}

std::vector<int8_t> sigmoid_lut(double P) {
  std::vector<int8_t> a(256);
  for (int k = 0; k < 256; ++k)
    a[k] = static_cast<int8_t>(std::nearbyint(127.0 / (1.0 + std::exp(-(k - 128) / P))));
  return a;
}
}  // namespace

struct QatNet::Impl {
  NetConfig cfg;
  torch::Device dev{torch::kCPU};
  torch::Tensor t1, b1, w2, b2, wo, bo;  // natural units, requires_grad
  std::unique_ptr<torch::optim::Adam> opt;
  torch::Tensor lut1, lut2;  // float [256] on dev
  int32_t m1 = 1, s1 = 0, m2 = 1, s2 = 0, mo = 1, so = 0;
  double P = 32;
  torch::Tensor node_tab, bit_tab;  // [256, 8] long / float: node-1 and bit along each byte's path

  std::vector<torch::Tensor> params() const {
    std::vector<torch::Tensor> v{t1, b1, wo, bo};
    if (cfg.layers == 2) {
      v.push_back(w2);
      v.push_back(b2);
    }
    return v;
  }

  void set_requant() {
    const int64_t W = cfg.window, H = cfg.hidden;
    P = 128.0 / cfg.lut_range;
    choose_requant(P / kWeightScale, kMaxBiasInt + W * 127, &m1, &s1);
    choose_requant(P / (kWeightScale * 127), kMaxBiasInt + H * 127 * 127, &m2, &s2);
    choose_requant(256.0 / (kWeightScale * 127), kMaxBiasInt + H * 127 * 127, &mo, &so);
    if (cfg.layers != 2) m2 = 1, s2 = 0;
  }

  torch::Tensor lut_tensor(const std::vector<int8_t>& a) const {
    std::vector<float> f(a.begin(), a.end());
    return torch::tensor(f, torch::kFloat32).to(dev);
  }

  static double ratio(int32_t m, int32_t s) { return double(m) / std::ldexp(1.0, s); }

  // Exact integer requantization of integer-valued float tensor acc (float64 arithmetic).
  static torch::Tensor requant_t(const torch::Tensor& acc, int32_t m, int32_t s) {
    auto a = acc.detach().to(torch::kFloat64);
    const double half = s > 0 ? std::ldexp(1.0, s - 1) : 0.0;
    return torch::floor((a * double(m) + half) / std::ldexp(1.0, s));
  }

  torch::Tensor act(const torch::Tensor& acc, int32_t m, int32_t s, const torch::Tensor& lut, bool quant) const {
    auto soft = 127.0 * torch::sigmoid(acc * (ratio(m, s) / P));
    if (!quant) return soft;
    auto v = (requant_t(acc, m, s).clamp(-128, 127) + 128).to(torch::kLong);
    auto hard = lut.index_select(0, v.flatten()).view_as(acc);
    return soft + (hard - soft).detach();
  }

  // Returns the output accumulators [B, 255] (integer-valued in quant mode).
  torch::Tensor hidden_and_acc(const torch::Tensor& idx, bool quant) const {
    const int64_t W = cfg.window, H = cfg.hidden;
    auto t1e = quant ? ste_round(t1 * kWeightScale, -127, 127) : t1 * kWeightScale;
    auto b1e = quant ? ste_round(b1 * kWeightScale, -kMaxBiasInt, kMaxBiasInt) : b1 * kWeightScale;
    auto acc1 = F::embedding_bag(idx, t1e.view({W * kSym, H}), F::EmbeddingBagFuncOptions().mode(torch::kSum)) + b1e;
    auto h = act(acc1, m1, s1, lut1, quant);
    if (cfg.layers == 2) {
      const double kb = kWeightScale * 127;
      auto w2e = quant ? ste_round(w2 * kWeightScale, -127, 127) : w2 * kWeightScale;
      auto b2e = quant ? ste_round(b2 * kb, -kMaxBiasInt, kMaxBiasInt) : b2 * kb;
      auto acc2 = torch::addmm(b2e, h, w2e.t());
      h = act(acc2, m2, s2, lut2, quant);
    }
    const double kb = kWeightScale * 127;
    auto woe = quant ? ste_round(wo * kWeightScale, -127, 127) : wo * kWeightScale;
    auto boe = quant ? ste_round(bo * kb, -kMaxBiasInt, kMaxBiasInt) : bo * kb;
    return torch::addmm(boe, h, woe.t());
  }

  // Logits in stretch units (float: unclamped; quant: exact integers, clamped +-2047).
  torch::Tensor logits_of(const torch::Tensor& acc, bool quant) const {
    auto soft = acc * ratio(mo, so);
    if (!quant) return soft;
    auto hard = requant_t(acc, mo, so).clamp(-2047, 2047).to(acc.scalar_type());
    return soft + (hard - soft).detach();
  }

  torch::Tensor to_idx(const Batch& b) const {
    auto t = torch::from_blob(const_cast<int64_t*>(b.idx.data()), {b.size, cfg.window}, torch::kLong);
    return t.to(dev);
  }
  torch::Tensor to_tgt(const Batch& b) const {
    auto t = torch::from_blob(const_cast<uint8_t*>(b.target.data()), {b.size}, torch::kUInt8);
    return t.to(torch::kLong).to(dev);
  }

  // Bits per position [B] (sum over the byte's 8 nodes).
  torch::Tensor bits(const torch::Tensor& idx, const torch::Tensor& tgt, bool quant) const {
    auto acc = hidden_and_acc(idx, quant);
    auto nodes = node_tab.index_select(0, tgt);
    auto y = bit_tab.index_select(0, tgt);
    auto lg = logits_of(acc.gather(1, nodes), quant) / 256.0;  // nats
    auto ce = F::binary_cross_entropy_with_logits(lg, y, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
    return ce.sum(1) / std::log(2.0);
  }
};

QatNet::QatNet(const NetConfig& cfg, uint64_t seed) : p_(new Impl) {
  auto& I = *p_;
  I.cfg = cfg;
  if (cfg.window < 1 || cfg.window > 64) throw std::invalid_argument("window must be 1..64");
  if (cfg.hidden < 32 || cfg.hidden > 512 || cfg.hidden % 32) throw std::invalid_argument("hidden must be a multiple of 32 in 32..512");
  if (cfg.layers < 1 || cfg.layers > 2) throw std::invalid_argument("layers must be 1 or 2");
  if (!(cfg.lut_range > 0.1 && cfg.lut_range < 64)) throw std::invalid_argument("lut_range out of range");
  if (cfg.threads > 0) {
    torch::set_num_threads(cfg.threads);
    // OpenBLAS runs its own thread pool next to torch's OpenMP one: on a shared, busy machine the
    // two oversubscribe the cores badly (measured 7x slower), so give it the same count.
    using SetThreads = void (*)(int);
    if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(cfg.threads);
  }
  if (cfg.use_cuda && torch::cuda::is_available()) {
    I.dev = torch::Device(torch::kCUDA);
    // Exactness of the integer path needs true fp32 products (no TF32).
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
  }
  torch::manual_seed(seed);
  const int64_t W = cfg.window, H = cfg.hidden;
  auto opts = torch::TensorOptions().dtype(torch::kFloat32);
  // Init: layer-1 pre-activation std ~1 (in sigmoid input units), small output weights.
  I.t1 = (torch::randn({W, kSym, H}, opts) * (1.0 / std::sqrt(double(W)))).clamp(-1.9, 1.9).to(I.dev).requires_grad_(true);
  I.b1 = torch::zeros({H}, opts).to(I.dev).requires_grad_(true);
  if (cfg.layers == 2) {
    I.w2 = (torch::randn({H, H}, opts) * (2.0 / std::sqrt(double(H)))).clamp(-1.9, 1.9).to(I.dev).requires_grad_(true);
    I.b2 = (torch::full({H}, -1.0, opts)).to(I.dev).requires_grad_(true);
  }
  I.wo = (torch::randn({kNodes, H}, opts) * 0.05).to(I.dev).requires_grad_(true);
  I.bo = torch::zeros({kNodes}, opts).to(I.dev).requires_grad_(true);
  I.set_requant();
  I.lut1 = I.lut_tensor(sigmoid_lut(I.P));
  I.lut2 = I.lut1.clone();
  std::vector<int64_t> nodes(256 * 8);
  std::vector<float> bitsv(256 * 8);
  for (int c = 0; c < 256; ++c) {
    int c0 = 1;
    for (int k = 0; k < 8; ++k) {
      const int bit = (c >> (7 - k)) & 1;
      nodes[c * 8 + k] = c0 - 1;
      bitsv[c * 8 + k] = float(bit);
      c0 = c0 * 2 + bit;
    }
  }
  I.node_tab = torch::tensor(nodes, torch::kLong).view({256, 8}).to(I.dev);
  I.bit_tab = torch::tensor(bitsv, torch::kFloat32).view({256, 8}).to(I.dev);
  I.opt = std::make_unique<torch::optim::Adam>(I.params(), torch::optim::AdamOptions(1e-3));
}

QatNet::~QatNet() = default;

std::string QatNet::device_name() const {
  return p_->dev.is_cuda() ? "cuda" : "cpu (" + std::to_string(torch::get_num_threads()) + " threads)";
}
const NetConfig& QatNet::config() const { return p_->cfg; }

double QatNet::train_step(const Batch& b, double lr) {
  auto& I = *p_;
  for (auto& g : I.opt->param_groups()) static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);
  auto idx = I.to_idx(b);
  auto tgt = I.to_tgt(b);
  auto loss = I.bits(idx, tgt, true).mean();
  I.opt->zero_grad();
  loss.backward();
  I.opt->step();
  {
    torch::NoGradGuard ng;
    const double lim = 127.49 / kWeightScale;
    I.t1.clamp_(-lim, lim);
    I.wo.clamp_(-lim, lim);
    if (I.cfg.layers == 2) I.w2.clamp_(-lim, lim);
  }
  return loss.item<double>();
}

void QatNet::evaluate(const Batch& b, std::vector<float>* fb, std::vector<float>* ib) {
  auto& I = *p_;
  torch::NoGradGuard ng;
  fb->assign(b.size, 0.f);
  ib->assign(b.size, 0.f);
  auto idx = I.to_idx(b);
  auto tgt = I.to_tgt(b);
  const int64_t step = 65536;
  for (int64_t s = 0; s < b.size; s += step) {
    const int64_t e = std::min<int64_t>(b.size, s + step);
    auto ix = idx.slice(0, s, e), tg = tgt.slice(0, s, e);
    auto f = I.bits(ix, tg, false).to(torch::kCPU).contiguous();
    auto q = I.bits(ix, tg, true).to(torch::kCPU).contiguous();
    std::copy(f.data_ptr<float>(), f.data_ptr<float>() + (e - s), fb->begin() + s);
    std::copy(q.data_ptr<float>(), q.data_ptr<float>() + (e - s), ib->begin() + s);
  }
}

std::vector<int16_t> QatNet::int_logits(const Batch& b) {
  auto& I = *p_;
  torch::NoGradGuard ng;
  auto acc = I.hidden_and_acc(I.to_idx(b), true);
  auto lg = I.logits_of(acc, true).to(torch::kCPU).to(torch::kInt16).contiguous();
  return std::vector<int16_t>(lg.data_ptr<int16_t>(), lg.data_ptr<int16_t>() + lg.numel());
}

namespace {
template <class T>
std::vector<T> to_vec(const torch::Tensor& x) {
  auto c = x.to(torch::kCPU).contiguous();
  return std::vector<T>(c.data_ptr<T>(), c.data_ptr<T>() + c.numel());
}
std::vector<int8_t> q8(const torch::Tensor& p) {
  return to_vec<int8_t>((p.detach() * kWeightScale).round().clamp(-127, 127).to(torch::kInt8));
}
std::vector<int32_t> q32(const torch::Tensor& p, double k) {
  return to_vec<int32_t>((p.detach() * k).round().clamp(-kMaxBiasInt, kMaxBiasInt).to(torch::kInt32));
}
std::vector<int8_t> lut_vec(const torch::Tensor& l) { return to_vec<int8_t>(l.to(torch::kInt8)); }
}  // namespace

IntTensors QatNet::export_int() const {
  const auto& I = *p_;
  torch::NoGradGuard ng;
  IntTensors t;
  t.window = I.cfg.window;
  t.hidden = I.cfg.hidden;
  t.layers = I.cfg.layers;
  t.m1 = I.m1, t.s1 = I.s1, t.m2 = I.m2, t.s2 = I.s2, t.mo = I.mo, t.so = I.so;
  const double kb = kWeightScale * 127;
  t.t1 = q8(I.t1);
  t.b1 = q32(I.b1, kWeightScale);
  t.a1 = lut_vec(I.lut1);
  if (I.cfg.layers == 2) {
    t.w2 = q8(I.w2);
    t.b2 = q32(I.b2, kb);
    t.a2 = lut_vec(I.lut2);
  }
  t.wo = q8(I.wo);
  t.bo = q32(I.bo, kb);
  return t;
}

void QatNet::import_int(const IntTensors& t) {
  auto& I = *p_;
  const int64_t W = I.cfg.window, H = I.cfg.hidden;
  if (t.window != W || t.hidden != H || t.layers != I.cfg.layers) throw std::invalid_argument("import: shape mismatch");
  torch::NoGradGuard ng;
  const double kb = kWeightScale * 127;
  auto i8 = [&](const std::vector<int8_t>& v, std::vector<int64_t> shape) {
    std::vector<float> f(v.begin(), v.end());
    return (torch::tensor(f, torch::kFloat32).view(shape) / kWeightScale).to(I.dev);
  };
  auto i32 = [&](const std::vector<int32_t>& v, double k) {
    std::vector<double> f(v.begin(), v.end());
    return (torch::tensor(f, torch::kFloat64) / k).to(torch::kFloat32).to(I.dev);
  };
  I.t1.copy_(i8(t.t1, {W, kSym, H}));
  I.b1.copy_(i32(t.b1, kWeightScale));
  I.wo.copy_(i8(t.wo, {kNodes, H}));
  I.bo.copy_(i32(t.bo, kb));
  if (I.cfg.layers == 2) {
    I.w2.copy_(i8(t.w2, {H, H}));
    I.b2.copy_(i32(t.b2, kb));
    I.lut2 = I.lut_tensor(t.a2);
  }
  I.lut1 = I.lut_tensor(t.a1);
  I.m1 = t.m1, I.s1 = t.s1, I.m2 = t.m2, I.s2 = t.s2, I.mo = t.mo, I.so = t.so;
  // Re-check: the imported integers must reproduce exactly (int32 biases beyond float32 exactness
  // or beyond kMaxBiasInt are not supported by the float path).
  for (auto v : t.b1)
    if (std::abs(v) > kMaxBiasInt) throw std::invalid_argument("import: B1 bias beyond 2^20 not supported");
  for (auto v : t.b2)
    if (std::abs(v) > kMaxBiasInt) throw std::invalid_argument("import: B2 bias beyond 2^20 not supported");
  for (auto v : t.bo)
    if (std::abs(v) > kMaxBiasInt) throw std::invalid_argument("import: BO bias beyond 2^20 not supported");
}

}  // namespace dzfs::train
