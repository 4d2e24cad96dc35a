// Codec benchmark (built by CMake, not a test). Usage:
//   codec_bench CORPUS_DIR [--model FILE] [--max-mb N] [--chunk BYTES] [--isa I]
// CORPUS_DIR has class subdirectories (src/ docs/ genomic/ bin/; any others are measured too).
// Per class, files (sorted, recursive) are concatenated up to --max-mb MiB and cut into chunks
// (64 KiB by default); for raw, zstd -3, zstd -19, neural and the fallback policy ("chosen")
// it prints compressed bytes (frames, headers included), bits per byte and single-thread
// encode/decode speed in MB/s of thread CPU time (wall-clock in brackets).
// Without --model, the default-size random-init model (seed 1) is used.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "codec/frame.h"
#include "codec/model.h"
#include "codec/util.h"

using namespace dzfs::codec;
namespace fs = std::filesystem;

namespace {

double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}
double wall_now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

std::vector<uint8_t> load_class(const fs::path& dir, size_t max_bytes) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  std::vector<uint8_t> data;
  for (auto& f : files) {
    if (data.size() >= max_bytes) break;
    auto b = read_file(f.string(), size_t{1} << 32);
    if (!b.ok()) continue;
    const size_t take = std::min(b->size(), max_bytes - data.size());
    data.insert(data.end(), b->begin(), b->begin() + static_cast<std::ptrdiff_t>(take));
  }
  return data;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: codec_bench CORPUS_DIR [--model FILE] [--max-mb N] [--chunk BYTES] [--isa I]\n");
    return 2;
  }
  std::string model_path;
  size_t max_mb = 4, chunk = 65536;
  Isa isa = Isa::kAuto;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") model_path = v;
    else if (k == "--max-mb") max_mb = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--chunk") chunk = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--isa") {
      if (!parse_isa(v, &isa)) return 2;
    } else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (chunk == 0 || chunk > kMaxFrameRawLen) return 2;
  std::shared_ptr<const Model> model;
  if (!model_path.empty()) {
    auto m = Model::load_file(model_path);
    if (!m.ok()) {
      std::fprintf(stderr, "%s\n", m.status().to_string().c_str());
      return 1;
    }
    model = *m;
  } else {
    model = *Model::from_tensors(make_random_tensors({}));
  }
  ModelSet set;
  set.add(model);
  const auto& sp = model->spec();
  std::printf("model %s (W %u H %u layers %u, %zu bytes%s), isa %s, chunk %zu\n", model->id().hex().c_str(),
              sp.window, sp.hidden, sp.layers, model->file_size(), model_path.empty() ? ", random init" : "",
              isa_name(resolve_isa(isa)), chunk);
  std::vector<std::string> classes = {"src", "docs", "genomic", "bin"};
  std::error_code ec;
  for (auto& e : fs::directory_iterator(argv[1], ec))
    if (e.is_directory() && std::find(classes.begin(), classes.end(), e.path().filename().string()) == classes.end())
      classes.push_back(e.path().filename().string());
  for (auto& cls : classes) {
    const fs::path dir = fs::path(argv[1]) / cls;
    if (!fs::is_directory(dir, ec)) {
      std::printf("\n[%s] missing, skipped\n", cls.c_str());
      continue;
    }
    const auto data = load_class(dir, max_mb << 20);
    std::vector<std::span<const uint8_t>> chunks;
    for (size_t off = 0; off < data.size(); off += chunk)
      chunks.emplace_back(data.data() + off, std::min(chunk, data.size() - off));
    std::printf("\n[%s] %zu bytes, %zu chunks\n", cls.c_str(), data.size(), chunks.size());
    if (data.empty()) continue;
    std::printf("  %-8s %12s %7s %22s %22s\n", "method", "bytes", "bpb", "encode MB/s cpu(wall)", "decode MB/s cpu(wall)");
    for (int method = 0; method < 5; ++method) {
      static const char* names[] = {"raw", "zstd-3", "zstd-19", "neural", "chosen"};
      EncodeOptions eo;
      eo.isa = isa;
      eo.zstd_level = method == 2 ? 19 : 3;
      DecodeOptions dopt;
      dopt.isa = isa;
      std::vector<std::vector<uint8_t>> frames;
      size_t total = 0;
      double c0 = cpu_now(), w0 = wall_now();
      for (auto c : chunks) {
        Result<std::vector<uint8_t>> f = method == 4 ? choose_and_encode(c, model.get(), eo)
                                         : encode_frame(method == 0   ? CodecId::kRaw
                                                        : method == 3 ? CodecId::kNeural
                                                                      : CodecId::kZstd,
                                                        c, model.get(), eo);
        if (!f.ok()) {
          std::fprintf(stderr, "encode: %s\n", f.status().to_string().c_str());
          return 1;
        }
        total += f->size();
        frames.push_back(std::move(*f));
      }
      const double ce = cpu_now() - c0, we = wall_now() - w0;
      c0 = cpu_now();
      w0 = wall_now();
      for (size_t i = 0; i < frames.size(); ++i) {
        auto r = decode_frame(frames[i], set, dopt);
        if (!r.ok() || r->size() != chunks[i].size()) {
          std::fprintf(stderr, "decode failed: %s\n", r.ok() ? "size" : r.status().to_string().c_str());
          return 1;
        }
      }
      const double cd = cpu_now() - c0, wd = wall_now() - w0;
      const double mb = static_cast<double>(data.size()) / 1e6;
      std::printf("  %-8s %12zu %7.3f %12.2f (%7.2f) %12.2f (%7.2f)\n", names[method], total,
                  8.0 * static_cast<double>(total) / static_cast<double>(data.size()), mb / std::max(ce, 1e-9),
                  mb / std::max(we, 1e-9), mb / std::max(cd, 1e-9), mb / std::max(wd, 1e-9));
    }
  }
  return 0;
}
