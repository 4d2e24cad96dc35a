#include "train/train_command.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "codec/frame.h"
#include "codec/model.h"
#include "codec/util.h"
#include "train/data.h"
#include "train/export.h"
#include "train/qat.h"

namespace dzfs::train {
namespace {
namespace fs = std::filesystem;
using codec::Model;

int usage() {
  std::fprintf(stderr,
               "usage: dzfs train --config FILE [--data DIR]... [--valid DIR]... [--out MODEL] [--steps N]\n"
               "                  [--batch N] [--lr X] [--seed N] [--threads N] [--set KEY=VALUE]...\n"
               "       dzfs train --eval MODEL [--also MODEL]... --data DIR... [--threads N] [--max-bytes N] [--no-codec] [--null]\n"
               "       dzfs train split --corpus DIR --out DIR [--held-percent 20]\n"
               "Config keys (key = value): arch(wmlp) window hidden layers lut_range steps batch lr lr_final\n"
               "  warmup seed data valid validation_percent chunk eval_every valid_positions threads out\n"
               "  max_train_bytes log_every\n");
  return 2;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of the calling thread: codec speed per core stays meaningful on a busy shared machine.
double thread_cpu() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct Args {
  std::vector<std::pair<std::string, std::string>> opt;
  std::vector<std::string> flags, pos;
  std::string get(const std::string& k, const std::string& d = "") const {
    std::string v = d;
    for (auto& [a, b] : opt)
      if (a == k) v = b;
    return v;
  }
  std::vector<std::string> all(const std::string& k) const {
    std::vector<std::string> r;
    for (auto& [a, b] : opt)
      if (a == k) r.push_back(b);
    return r;
  }
  bool flag(const std::string& f) const { return std::find(flags.begin(), flags.end(), f) != flags.end(); }
};

bool parse_args(const std::vector<std::string>& in, size_t from, Args* a) {
  static const char* kFlags[] = {"no-codec", "null", "help"};
  for (size_t i = from; i < in.size(); ++i) {
    const std::string& s = in[i];
    if (s.rfind("--", 0) == 0) {
      std::string k = s.substr(2);
      const auto eq = k.find('=');
      if (eq != std::string::npos) {
        a->opt.emplace_back(k.substr(0, eq), k.substr(eq + 1));
        continue;
      }
      bool is_flag = false;
      for (auto f : kFlags) is_flag |= k == f;
      if (is_flag) {
        a->flags.push_back(k);
        continue;
      }
      if (i + 1 >= in.size()) return false;
      a->opt.emplace_back(k, in[++i]);
    } else {
      a->pos.push_back(s);
    }
  }
  return true;
}

bool to_num(const std::string& s, double* v) {
  if (s.empty()) return false;
  char* e = nullptr;
  *v = std::strtod(s.c_str(), &e);
  return *e == 0;
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string hms(double s) {
  if (!(s >= 0) || s > 1e7) return "--:--";
  const long t = static_cast<long>(s + 0.5);
  char b[32];
  if (t >= 3600) std::snprintf(b, sizeof b, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else std::snprintf(b, sizeof b, "%02ld:%02ld", t / 60, t % 60);
  return b;
}

// Progress bar on a terminal, plain lines otherwise.
class Progress {
 public:
  Progress(long total, long log_every, double time_limit_s)
      : total_(total), log_every_(log_every), limit_(time_limit_s), tty_(isatty(STDERR_FILENO)), t0_(now()) {}
  void update(long step, double bpb, double bytes_per_s) {
    const double el = now() - t0_;
    double eta = step > 0 ? el / step * (total_ - step) : -1;
    if (limit_ > 0) eta = std::max(0.0, std::min(eta < 0 ? limit_ : eta, limit_ - el));
    if (tty_) {
      if (now() - last_ < 0.2 && step != total_) return;
      last_ = now();
      const int width = 30;
      const int fill = static_cast<int>(width * double(step) / std::max(1L, total_));
      std::string bar(fill, '#');
      bar += std::string(width - fill, '.');
      std::fprintf(stderr, "\r[%s] %ld/%ld %5.1f%% | %.4f bits/B | %s B/s | ETA %s   ", bar.c_str(), step, total_,
                   100.0 * step / std::max(1L, total_), bpb, human(bytes_per_s).c_str(), hms(eta).c_str());
      if (step == total_) std::fprintf(stderr, "\n");
    } else if (step % log_every_ == 0 || step == total_) {
      std::fprintf(stderr, "step %ld/%ld loss %.4f bits/B %s B/s elapsed %s ETA %s\n", step, total_, bpb,
                   human(bytes_per_s).c_str(), hms(el).c_str(), hms(eta).c_str());
    }
    std::fflush(stderr);
  }
  void message(const std::string& m) {
    if (tty_) std::fprintf(stderr, "\r%*s\r", 100, "");
    std::fprintf(stderr, "%s\n", m.c_str());
    std::fflush(stderr);
  }

 private:
  static std::string human(double v) {
    if (v >= 1e6) return fmt("%.2fM", v / 1e6);
    if (v >= 1e3) return fmt("%.1fk", v / 1e3);
    return fmt("%.0f", v);
  }
  long total_, log_every_;
  double limit_;
  bool tty_;
  double t0_, last_ = 0;
};

struct EvalResult {
  double float_bpb = 0, int_bpb = 0;
  std::vector<std::pair<std::string, std::pair<double, double>>> per_class;  // name -> (float, int)
};

EvalResult eval_net(QatNet& net, const Corpus& c, uint64_t positions) {
  Batch vb;
  std::vector<int> cls;
  spread_batch(c, net.config().window, positions, &vb, &cls);
  std::vector<float> fb, ib;
  net.evaluate(vb, &fb, &ib);
  EvalResult r;
  std::vector<double> fs(c.classes.size()), is(c.classes.size());
  std::vector<uint64_t> n(c.classes.size());
  for (int i = 0; i < vb.size; ++i) {
    r.float_bpb += fb[i];
    r.int_bpb += ib[i];
    fs[cls[i]] += fb[i];
    is[cls[i]] += ib[i];
    n[cls[i]]++;
  }
  r.float_bpb /= std::max(1, vb.size);
  r.int_bpb /= std::max(1, vb.size);
  for (size_t k = 0; k < c.classes.size(); ++k)
    if (n[k]) r.per_class.push_back({c.classes[k].empty() ? "." : c.classes[k], {fs[k] / n[k], is[k] / n[k]}});
  return r;
}

std::string eval_line(const EvalResult& r) {
  std::string s = "valid float " + fmt("%.4f", r.float_bpb) + " int " + fmt("%.4f", r.int_bpb) + " bits/B (int/float " +
                  fmt("%+.2f%%", 100.0 * (r.int_bpb / std::max(1e-9, r.float_bpb) - 1)) + ")";
  for (auto& [k, v] : r.per_class) s += " | " + k + " " + fmt("%.3f", v.first) + "/" + fmt("%.3f", v.second);
  return s;
}

// Compares the codec's Model::forward_reference with the trainer's integer forward.
// Returns the number of mismatching logits over n positions (all 255 nodes each).
uint64_t check_against_reference(QatNet& net, const Model& m, const Corpus& c, uint64_t n, uint64_t* compared) {
  Batch b;
  spread_batch(c, net.config().window, n, &b, nullptr);
  const auto lg = net.int_logits(b);
  const int W = net.config().window;
  uint64_t bad = 0;
  std::vector<uint16_t> win(W);
  std::vector<int16_t> ref;
  for (int k = 0; k < b.size; ++k) {
    for (int i = 0; i < W; ++i) win[i] = static_cast<uint16_t>(b.idx[size_t(k) * W + i] - int64_t{i} * kSym);
    if (!m.forward_reference(win, nullptr, &ref).ok()) return UINT64_MAX;
    for (int j = 0; j < kNodes; ++j) bad += ref[j] != lg[size_t(k) * kNodes + j];
  }
  *compared = uint64_t(b.size) * kNodes;
  return bad;
}

std::string resolve(const std::string& p, const std::string& cfg_path) {
  if (p.empty() || p[0] == '/' || cfg_path.empty()) return p;
  return (fs::path(cfg_path).parent_path() / p).lexically_normal().string();
}

std::vector<std::string> split_list(const std::vector<std::string>& vals) {
  std::vector<std::string> out;
  for (auto v : vals) {
    size_t a = 0;
    while (a <= v.size()) {
      size_t b = v.find(',', a);
      if (b == std::string::npos) b = v.size();
      std::string s = v.substr(a, b - a);
      while (!s.empty() && s.back() == ' ') s.pop_back();
      while (!s.empty() && s[0] == ' ') s.erase(0, 1);
      if (!s.empty()) out.push_back(s);
      a = b + 1;
    }
  }
  return out;
}

int fail(const std::string& m) {
  std::fprintf(stderr, "dzfs train: %s\n", m.c_str());
  return 1;
}

// ---------------------------------------------------------------------------------------------
int cmd_split(const Args& a) {
  const std::string corpus = a.get("corpus"), out = a.get("out");
  double held = 20;
  if (corpus.empty() || out.empty() || !to_num(a.get("held-percent", "20"), &held)) return usage();
  std::string err;
  auto files = list_files({corpus}, &err);
  if (files.empty()) return fail(err.empty() ? "no files in " + corpus : err);
  uint64_t n[2] = {0, 0}, bytes[2] = {0, 0};
  for (auto& f : files) {
    const int part = is_held_back(f.rel, static_cast<int>(held)) ? 1 : 0;
    const fs::path dst = fs::path(out) / (part ? "heldback" : "train") / f.rel;
    std::error_code ec;
    fs::create_directories(dst.parent_path(), ec);
    fs::remove(dst, ec);
    fs::create_hard_link(fs::path(f.root) / f.rel, dst, ec);
    if (ec) {
      ec.clear();
      fs::copy_file(fs::path(f.root) / f.rel, dst, fs::copy_options::overwrite_existing, ec);
      if (ec) return fail("cannot create " + dst.string() + ": " + ec.message());
    }
    n[part]++;
    bytes[part] += f.size;
  }
  std::printf("split %s (held back: FNV-1a64(relative path) %% 100 < %g): train %llu files %llu bytes, heldback %llu files %llu bytes\n",
              corpus.c_str(), held, (unsigned long long)n[0], (unsigned long long)bytes[0], (unsigned long long)n[1],
              (unsigned long long)bytes[1]);
  return 0;
}

// ---------------------------------------------------------------------------------------------
struct CodecTotals {
  uint64_t in = 0, neural = 0, chosen = 0, null_neural = 0, chunks = 0, best = 0, extra_wins = 0;
  uint64_t chosen_codec[3] = {0, 0, 0};
  double enc_s = 0, dec_s = 0;  // CPU seconds of the neural encode / decode passes (summed over threads)
};

// model: the primary model; extras: domain models tried per chunk beside it ("best" = smallest
// neural frame of all models for each chunk, "auto" = choose_and_encode with that chunk's best model).
int codec_eval(const std::shared_ptr<const Model>& model, const std::vector<std::shared_ptr<const Model>>& extras,
               const std::vector<FileEntry>& files, uint32_t chunk, unsigned threads, bool with_null,
               uint64_t max_bytes) {
  struct Piece { int cls; std::vector<uint8_t> bytes; };
  std::vector<std::string> classes;
  std::map<std::string, int> cidx;
  std::vector<Piece> pieces;
  uint64_t total = 0;
  for (auto& f : files) {
    if (max_bytes && total >= max_bytes) break;
    auto b = codec::read_file((fs::path(f.root) / f.rel).string(), size_t{1} << 34);
    if (!b.ok()) return fail(b.status().to_string());
    if (max_bytes && b->size() > max_bytes - total) b->resize(max_bytes - total);
    auto [it, fresh] = cidx.emplace(f.cls(), int(classes.size()));
    if (fresh) classes.push_back(f.cls());
    for (size_t off = 0; off < b->size(); off += chunk) {
      const size_t len = std::min<size_t>(chunk, b->size() - off);
      pieces.push_back({it->second, std::vector<uint8_t>(b->begin() + off, b->begin() + off + len)});
      total += len;
    }
  }
  codec::ModelSet set;
  set.add(model);
  for (auto& e : extras) set.add(e);
  std::vector<CodecTotals> tot(classes.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> bad{false};
  std::mutex mu;
  auto worker = [&]() {
    std::vector<CodecTotals> local(classes.size());
    for (;;) {
      const size_t i = next++;
      if (i >= pieces.size() || bad) break;
      const auto& p = pieces[i];
      auto& t = local[p.cls];
      t.in += p.bytes.size();
      t.chunks++;
      double t0 = thread_cpu();
      auto nf = codec::encode_frame(codec::CodecId::kNeural, p.bytes, model.get());
      t.enc_s += thread_cpu() - t0;
      if (!nf.ok()) { bad = true; break; }
      t.neural += nf->size();
      t0 = thread_cpu();
      auto d = codec::decode_frame(*nf, set);
      t.dec_s += thread_cpu() - t0;
      if (!d.ok() || *d != p.bytes) { bad = true; break; }
      const Model* best = model.get();
      size_t best_size = nf->size();
      for (auto& e : extras) {
        auto ef = codec::encode_frame(codec::CodecId::kNeural, p.bytes, e.get());
        if (!ef.ok()) { bad = true; break; }
        if (ef->size() < best_size) {
          auto ed = codec::decode_frame(*ef, set);
          if (!ed.ok() || *ed != p.bytes) { bad = true; break; }
          best_size = ef->size();
          best = e.get();
        }
      }
      if (bad) break;
      t.best += best_size;
      t.extra_wins += best != model.get();
      auto cf = codec::choose_and_encode(p.bytes, best);
      if (!cf.ok()) { bad = true; break; }
      t.chosen += cf->size();
      t.chosen_codec[(*cf)[5] % 3]++;
      if (with_null) {
        auto z = codec::encode_frame(codec::CodecId::kNeural, p.bytes, nullptr);
        if (!z.ok()) { bad = true; break; }
        t.null_neural += z->size();
      }
    }
    std::lock_guard<std::mutex> g(mu);
    for (size_t k = 0; k < local.size(); ++k) {
      auto& T = tot[k];
      const auto& L = local[k];
      T.best += L.best, T.extra_wins += L.extra_wins;
      T.in += L.in, T.neural += L.neural, T.chosen += L.chosen, T.null_neural += L.null_neural, T.chunks += L.chunks;
      for (int c = 0; c < 3; ++c) T.chosen_codec[c] += L.chosen_codec[c];
      T.enc_s += L.enc_s, T.dec_s += L.dec_s;
    }
  };
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < std::max(1u, threads); ++i) ts.emplace_back(worker);
  for (auto& t : ts) t.join();
  if (bad) return fail("codec evaluation failed (encode error or round-trip mismatch)");
  std::printf("codec frames per %u-byte chunk (model %s", chunk, model->id().hex().c_str());
  for (auto& e : extras) std::printf(" + %s", e->id().hex().c_str());
  std::printf("):\n");
  std::printf("%-10s %11s %7s %11s %7s %11s %11s %11s %7s %17s %9s %9s\n", "class", "in", "chunks", "neural", "bpc",
              "auto", with_null ? "null-neural" : "-", "best-model", "extra", "auto raw/zstd/nn", "enc MB/s", "dec MB/s");
  CodecTotals all;
  for (size_t k = 0; k <= tot.size(); ++k) {
    const CodecTotals& t = k < tot.size() ? tot[k] : all;
    if (k < tot.size()) {
      all.in += t.in, all.neural += t.neural, all.chosen += t.chosen, all.null_neural += t.null_neural;
      all.best += t.best, all.extra_wins += t.extra_wins;
      all.chunks += t.chunks, all.enc_s += t.enc_s, all.dec_s += t.dec_s;
      for (int c = 0; c < 3; ++c) all.chosen_codec[c] += t.chosen_codec[c];
    }
    char mix[64];
    std::snprintf(mix, sizeof mix, "%llu/%llu/%llu", (unsigned long long)t.chosen_codec[0],
                  (unsigned long long)t.chosen_codec[1], (unsigned long long)t.chosen_codec[2]);
    std::printf("%-10s %11llu %7llu %11llu %7.4f %11llu %11llu %11llu %7llu %17s %9.2f %9.2f\n",
                k < tot.size() ? (classes[k].empty() ? "." : classes[k].c_str()) : "TOTAL", (unsigned long long)t.in,
                (unsigned long long)t.chunks, (unsigned long long)t.neural, t.in ? 8.0 * t.neural / t.in : 0.0,
                (unsigned long long)t.chosen, (unsigned long long)t.null_neural, (unsigned long long)t.best,
                (unsigned long long)t.extra_wins, mix, t.in / 1e6 / std::max(1e-9, t.enc_s),
                t.in / 1e6 / std::max(1e-9, t.dec_s));
  }
  std::printf("(neural: the model alone; best-model: per chunk the smallest neural frame over the model and the\n"
              " --also models, extra = chunks won by those; auto: choose_and_encode with that model; enc/dec MB/s per\n"
              " core: neural encode_frame / decode_frame of the model alone over thread CPU time, %u threads)\n",
              std::max(1u, threads));
  return 0;
}

int cmd_eval(const Args& a) {
  const std::string path = a.get("eval");
  auto data = split_list(a.all("data"));
  if (path.empty() || data.empty()) return usage();
  double threads = 2, maxb = 0, positions = 1 << 19, chunk = 65536;
  if (!to_num(a.get("threads", "2"), &threads) || !to_num(a.get("max-bytes", "0"), &maxb) ||
      !to_num(a.get("valid-positions", "524288"), &positions) || !to_num(a.get("chunk", "65536"), &chunk))
    return usage();
  auto model = Model::load_file(path);
  if (!model.ok()) return fail(path + ": " + model.status().to_string());
  const auto& mt = (*model)->tensors();
  std::printf("model %s id %s: window %u hidden %u layers %u, %zu bytes\n", path.c_str(), (*model)->id().hex().c_str(),
              mt.spec.window, mt.spec.hidden, mt.spec.layers, (*model)->file_size());
  for (auto& [k, v] : mt.manifest)
    if (k.find("bpb") != std::string::npos || k == "steps" || k == "generator") std::printf("  manifest %s=%s\n", k.c_str(), v.c_str());
  std::string err;
  auto files = list_files(data, &err);
  if (files.empty()) return fail(err.empty() ? "no files" : err);
  Corpus c;
  if (!c.load(files, static_cast<uint32_t>(chunk), static_cast<uint64_t>(maxb), &err)) return fail(err);
  std::printf("data: %llu files, %zu bytes\n", (unsigned long long)c.files, c.data.size());
  try {
    QatNet net(net_config_of(mt, static_cast<int>(threads)), 1);
    net.import_int(from_model_tensors(mt));
    const auto r = eval_net(net, c, static_cast<uint64_t>(positions));
    std::printf("network bits/byte (integer model, %llu positions): %.4f", (unsigned long long)std::min<uint64_t>(positions, c.data.size()), r.int_bpb);
    for (auto& [k, v] : r.per_class) std::printf(" | %s %.4f", k.c_str(), v.second);
    std::printf("\n");
    uint64_t cmp = 0;
    const uint64_t bad = check_against_reference(net, **model, c, 2048, &cmp);
    std::printf("integer forward vs Model::forward_reference: %llu of %llu logits differ\n", (unsigned long long)bad,
                (unsigned long long)cmp);
  } catch (const std::exception& e) {
    return fail(std::string("network evaluation: ") + e.what());
  }
  if (a.flag("no-codec")) return 0;
  std::vector<std::shared_ptr<const Model>> extras;
  for (auto& e : split_list(a.all("also"))) {
    auto m = Model::load_file(e);
    if (!m.ok()) return fail(e + ": " + m.status().to_string());
    extras.push_back(*m);
  }
  return codec_eval(*model, extras, files, static_cast<uint32_t>(chunk), static_cast<unsigned>(threads), a.flag("null"),
                    static_cast<uint64_t>(maxb));
}

// ---------------------------------------------------------------------------------------------
int cmd_train(const Args& a) {
  Config cfg;
  std::string err;
  if (!a.get("config").empty() && !cfg.read(a.get("config"), &err)) return fail(err);
  // Command-line overrides.
  static const std::pair<const char*, const char*> kOverrides[] = {
      {"steps", "steps"}, {"batch", "batch"}, {"lr", "lr"}, {"seed", "seed"}, {"threads", "threads"}, {"out", "out"}};
  for (auto [opt, key] : kOverrides)
    if (!a.get(opt).empty()) cfg.set(key, a.get(opt));
  for (auto& kv : a.all("set")) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos) return usage();
    cfg.set(kv.substr(0, eq), kv.substr(eq + 1));
  }
  std::vector<std::string> data, valid;
  if (!a.all("data").empty()) data = split_list(a.all("data"));
  else for (auto& d : split_list(cfg.all("data"))) data.push_back(resolve(d, cfg.path));
  if (!a.all("valid").empty()) valid = split_list(a.all("valid"));
  else for (auto& d : split_list(cfg.all("valid"))) valid.push_back(resolve(d, cfg.path));
  if (data.empty()) return fail("no training data (--data DIR or data = DIR in the config)");

  static const char* kKnown[] = {"arch", "window", "hidden", "layers", "lut_range", "steps", "batch", "lr", "lr_final",
                                 "warmup", "seed", "data", "valid", "validation_percent", "chunk", "eval_every",
                                 "valid_positions", "threads", "out", "max_train_bytes", "log_every", "name",
                                 "time_limit", "init"};
  for (auto& [k, v] : cfg.kv)
    if (std::none_of(std::begin(kKnown), std::end(kKnown), [&](const char* x) { return k == x; }))
      return fail("unknown config key '" + k + "'");
  if (cfg.get("arch", "wmlp") != "wmlp") return fail("unsupported arch '" + cfg.get("arch") + "' (only wmlp)");
  auto num = [&](const char* k, double def, double lo, double hi, double* out) {
    const std::string s = cfg.get(k, "");
    double v = def;
    if (!s.empty() && !to_num(s, &v)) return false;
    if (!(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
  };
  double window, hidden, layers, lut_range, steps, batch, lr, lr_final, warmup, seed, vpct, chunk, eval_every, vpos,
      threads, maxtrain, log_every, time_limit;
  struct K { const char* k; double def, lo, hi; double* v; };
  const K keys[] = {{"window", 16, 1, 64, &window}, {"hidden", 64, 32, 512, &hidden}, {"layers", 1, 1, 2, &layers},
                    {"lut_range", 4, 0.5, 32, &lut_range}, {"steps", 2000, 1, 1e9, &steps},
                    {"batch", 8192, 1, 1 << 22, &batch}, {"lr", 3e-3, 1e-7, 1, &lr}, {"lr_final", 0.05, 0, 1, &lr_final},
                    {"warmup", 100, 0, 1e9, &warmup}, {"seed", 1, 0, 1e15, &seed},
                    {"validation_percent", 20, 0, 99, &vpct}, {"chunk", 65536, 1024, 64 << 20, &chunk},
                    {"eval_every", 500, 0, 1e9, &eval_every}, {"valid_positions", 262144, 1024, 1 << 26, &vpos},
                    {"threads", 1, 0, 256, &threads}, {"max_train_bytes", 0, 0, 1e15, &maxtrain},
                    {"log_every", 50, 1, 1e9, &log_every}, {"time_limit", 0, 0, 1e7, &time_limit}};
  for (auto& k : keys)
    if (!num(k.k, k.def, k.lo, k.hi, k.v)) return fail(std::string("bad value for ") + k.k + ": " + cfg.get(k.k));
  if (int(hidden) % 32) return fail("hidden must be a multiple of 32");
  const std::string out = resolve(cfg.get("out", "model.dzm"), a.get("out").empty() ? cfg.path : "");

  auto all_files = list_files(data, &err);
  if (all_files.empty()) return fail(err.empty() ? "no training files" : err);
  std::vector<FileEntry> train_files, valid_files;
  std::string split_desc;
  if (!valid.empty()) {
    train_files = all_files;
    valid_files = list_files(valid, &err);
    if (valid_files.empty()) return fail(err.empty() ? "no validation files" : err);
    split_desc = "separate validation dirs";
  } else {
    for (auto& f : all_files) (is_held_back(f.rel, int(vpct)) ? valid_files : train_files).push_back(f);
    split_desc = "FNV-1a64(relative path) % 100 < " + fmt("%.0f", vpct) + " held back";
    if (train_files.empty() || valid_files.empty()) return fail("split left no training or no validation files");
  }
  Corpus tc, vc;
  if (!tc.load(train_files, uint32_t(chunk), uint64_t(maxtrain), &err)) return fail("training data: " + err);
  if (!vc.load(valid_files, uint32_t(chunk), 0, &err)) return fail("validation data: " + err);

  NetConfig nc;
  nc.window = int(window), nc.hidden = int(hidden), nc.layers = int(layers), nc.lut_range = lut_range, nc.threads = int(threads);
  std::unique_ptr<QatNet> net;
  try {
    net = std::make_unique<QatNet>(nc, uint64_t(seed));
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  // init = MODEL: start from an existing integer model (fine-tuning, e.g. a domain model).
  std::string init = cfg.get("init");
  if (!init.empty()) {
    init = resolve(init, cfg.path);
    auto im = Model::load_file(init);
    if (!im.ok()) return fail("init " + init + ": " + im.status().to_string());
    try {
      net->import_int(from_model_tensors((*im)->tensors()));
    } catch (const std::exception& e) {
      return fail("init " + init + ": " + e.what() + " (window/hidden/layers must match the config)");
    }
    std::fprintf(stderr, "dzfs train: initialized from %s (id %s)\n", init.c_str(), (*im)->id().hex().c_str());
  }
  std::fprintf(stderr, "dzfs train: wmlp W=%d H=%d layers=%d, %ld steps x %ld positions, lr %g, seed %.0f, device %s\n",
               nc.window, nc.hidden, nc.layers, long(steps), long(batch), lr, seed, net->device_name().c_str());
  std::fprintf(stderr, "  train: %llu files %zu bytes; valid: %llu files %zu bytes (%s)\n", (unsigned long long)tc.files,
               tc.data.size(), (unsigned long long)vc.files, vc.data.size(), split_desc.c_str());

  std::mt19937_64 rng(uint64_t(seed) * 0x9E3779B97F4A7C15ull + 12345);
  Progress prog{static_cast<long>(steps), static_cast<long>(log_every), time_limit * 60};
  Batch b;
  const double t_start = now();
  double ema = -1, train_s = 0;
  EvalResult last;
  // time_limit (minutes, 0 = none): the schedule follows max(step fraction, time fraction) and
  // training stops when either runs out (the manifest records the steps actually done).
  long done = 0;
  for (long step = 1; step <= long(steps); ++step) {
    const double t0 = now();
    const double tfrac = time_limit > 0 ? (t0 - t_start) / (time_limit * 60) : 0;
    if (tfrac >= 1) break;
    sample_batch(tc, nc.window, int(batch), rng, &b);
    // Linear warmup, then cosine decay to lr * lr_final.
    double f = 1;
    if (step <= warmup && warmup > 0) f = double(step) / warmup;
    else {
      const double x = std::max((step - warmup) / std::max(1.0, steps - warmup), tfrac);
      f = lr_final + (1 - lr_final) * 0.5 * (1 + std::cos(M_PI * std::min(1.0, x)));
    }
    const double loss = net->train_step(b, lr * f);
    train_s += now() - t0;
    ema = ema < 0 ? loss : 0.98 * ema + 0.02 * loss;
    done = step;
    prog.update(step, ema, step * batch / std::max(1e-9, train_s));
    if (eval_every > 0 && step % long(eval_every) == 0 && step != long(steps)) {
      last = eval_net(*net, vc, uint64_t(vpos));
      prog.message("step " + std::to_string(step) + ": " + eval_line(last));
    }
  }
  steps = double(done);
  last = eval_net(*net, vc, uint64_t(vpos));
  prog.message("final (step " + std::to_string(done) + "): " + eval_line(last));
  const double wall = now() - t_start;
  const double bps = steps * batch / std::max(1e-9, train_s);
  std::fprintf(stderr, "trained %ld steps in %s (%.2f steps/s, %.0f bytes/s of training positions)\n", long(steps),
               hms(wall).c_str(), steps / std::max(1e-9, train_s), bps);

  // Export with the training manifest.
  std::vector<std::pair<std::string, std::string>> man = {
      {"generator", "dzfs train"}, {"arch", "wmlp"},
      {"window", std::to_string(nc.window)}, {"hidden", std::to_string(nc.hidden)}, {"layers", std::to_string(nc.layers)},
      {"activation", "sigmoid LUT, lut_range " + fmt("%g", lut_range)},
      {"seed", fmt("%.0f", seed)}, {"steps", fmt("%.0f", steps)}, {"batch", fmt("%.0f", batch)},
      {"lr", fmt("%g", lr)}, {"chunk", fmt("%.0f", chunk)}};
  std::string dl;
  for (auto& d : data) dl += (dl.empty() ? "" : ",") + d;
  man.push_back({"data", dl});
  std::string vl;
  for (auto& d : valid) vl += (vl.empty() ? "" : ",") + d;
  if (!vl.empty()) man.push_back({"valid", vl});
  man.push_back({"split", split_desc});
  if (!init.empty()) man.push_back({"init", init});
  man.push_back({"train_files", std::to_string(tc.files)});
  man.push_back({"train_bytes", std::to_string(tc.data.size())});
  man.push_back({"valid_files", std::to_string(vc.files)});
  man.push_back({"valid_bytes", std::to_string(vc.data.size())});
  for (auto& [k, v] : cfg.kv) {
    std::string val = v;
    for (auto& ch : val)
      if (ch == '\n' || ch == '\r' || ch == 0) ch = ' ';
    man.push_back({"config." + k, val});
  }
  man.push_back({"valid_positions", fmt("%.0f", std::min<double>(vpos, vc.data.size()))});
  man.push_back({"float_bpb", fmt("%.4f", last.float_bpb)});
  man.push_back({"int_bpb", fmt("%.4f", last.int_bpb)});
  for (auto& [k, v] : last.per_class) {
    std::string key = k;
    for (auto& ch : key)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-' && ch != '.') ch = '_';
    man.push_back({"float_bpb." + key, fmt("%.4f", v.first)});
    man.push_back({"int_bpb." + key, fmt("%.4f", v.second)});
  }
  man.push_back({"train_bytes_per_s", fmt("%.0f", bps)});
  man.push_back({"device", net->device_name()});
  auto mtens = to_model_tensors(net->export_int(), man);
  auto bytes = codec::serialize_model(mtens);
  if (!bytes.ok()) return fail("export: " + bytes.status().to_string());
  auto model = Model::load(*bytes);
  if (!model.ok()) return fail("export: reload: " + model.status().to_string());
  uint64_t cmp = 0;
  const uint64_t bad = check_against_reference(*net, **model, vc, 2048, &cmp);
  std::fprintf(stderr, "export check: integer forward vs Model::forward_reference: %llu of %llu logits differ\n",
               (unsigned long long)bad, (unsigned long long)cmp);
  if (bad) return fail("exported model does not reproduce the trained integer network");
  if (auto s = codec::write_file(out, *bytes); !s.ok()) return fail(s.to_string());
  std::printf("wrote %s (%zu bytes, id %s): valid float %.4f int %.4f bits/B (%+.2f%%), %.0f training bytes/s\n",
              out.c_str(), bytes->size(), (*model)->id().hex().c_str(), last.float_bpb, last.int_bpb,
              100.0 * (last.int_bpb / std::max(1e-9, last.float_bpb) - 1), bps);
  return 0;
}

}  // namespace

int run_train_command(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "split") {
    Args a;
    if (!parse_args(args, 1, &a)) return usage();
    return cmd_split(a);
  }
  Args a;
  if (!parse_args(args, 0, &a) || a.flag("help") || !a.pos.empty()) return usage();
  try {
    if (!a.get("eval").empty()) return cmd_eval(a);
    if (a.get("config").empty() && a.all("data").empty()) return usage();
    return cmd_train(a);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

}  // namespace dzfs::train
