// Codec benchmark (built by CMake, not a test). Usage:
//   codec_bench CORPUS_DIR [--model FILE] [--max-mb N] [--chunk BYTES] [--isa I] [--classes a,b]
//               [--methods raw,zstd-3,zstd-19,xz-9e,neural,chosen] [--decode 0|1] [--frame-version V]
//               [--compare-versions A,B]
// CORPUS_DIR has class subdirectories (src/ docs/ genomic/ bin/; any others are measured too).
// Per class, files (sorted, recursive, at most --max-mb MiB in all, the last one cut) are each
// cut into chunks of 64 KiB (a file's tail is its own chunk, as in the filesystem and in
// /work/shared/bench/peers.py). For raw, zstd -3, zstd -19, neural and the fallback policy
// ("chosen") it prints compressed bytes (frames, headers included), bits per byte and
// single-thread encode/decode speed in MB/s of thread CPU time (wall-clock in brackets);
// xz-9e runs the xz CLI (`xz -9e -c`) on each chunk and reports the summed .xz sizes (container
// included, as peers.py does) and wall-clock speed of the CLI (process start-up included).
// A summary table per class follows. Without --model, the random-init model (seed 1) is used.
// --compare-versions A,B measures only neural frames of versions A and B, alternating version by
// chunk (and which goes first), so that a drifting machine slows both alike: bytes and encode /
// decode MB/s of each, and B's speed relative to A's.
#include <stdlib.h>

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

// Bytes of `xz -9e -c` of one chunk (the CLI: a temporary file, then the pipe).
size_t xz_size(std::span<const uint8_t> c) {
  char name[] = "/tmp/codec_bench_xz_XXXXXX";
  const int fd = mkstemp(name);
  if (fd < 0) return 0;
  FILE* f = fdopen(fd, "wb");
  std::fwrite(c.data(), 1, c.size(), f);
  std::fclose(f);
  const std::string cmd = std::string("xz -9e -c ") + name;
  FILE* p = popen(cmd.c_str(), "r");
  size_t n = 0;
  if (p) {
    char buf[65536];
    size_t k;
    while ((k = std::fread(buf, 1, sizeof buf, p)) > 0) n += k;
    if (pclose(p) != 0) n = 0;
  }
  std::remove(name);
  return n;
}

// Files of a class, each cut into chunks (offsets into the returned data).
std::vector<uint8_t> load_class(const fs::path& dir, size_t max_bytes, size_t chunk,
                                std::vector<std::pair<size_t, size_t>>* pieces) {
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
    for (size_t off = 0; off < take; off += chunk) pieces->emplace_back(data.size() + off, std::min(chunk, take - off));
    data.insert(data.end(), b->begin(), b->begin() + static_cast<std::ptrdiff_t>(take));
  }
  return data;
}

struct VersionRun {
  size_t bytes = 0;
  double enc = 0, dec = 0;  // thread CPU seconds
};

// Neural frames of versions a and b for every chunk, alternating which goes first.
bool compare_versions(const std::vector<std::span<const uint8_t>>& chunks, const Model* model,
                      const ModelSet& set, Isa isa, const uint8_t v[2], VersionRun run[2]) {
  for (size_t i = 0; i < chunks.size(); ++i) {
    for (int k0 = 0; k0 < 2; ++k0) {
      const int k = (i & 1) ? 1 - k0 : k0;
      EncodeOptions eo;
      eo.isa = isa;
      eo.frame_version = v[k];
      DecodeOptions dopt;
      dopt.isa = isa;
      const double t0 = cpu_now();
      auto f = encode_frame(CodecId::kNeural, chunks[i], model, eo);
      const double t1 = cpu_now();
      if (!f.ok()) return false;
      auto r = decode_frame(*f, set, dopt);
      const double t2 = cpu_now();
      if (!r.ok() || !std::equal(r->begin(), r->end(), chunks[i].begin(), chunks[i].end())) return false;
      run[k].bytes += f->size();
      run[k].enc += t1 - t0;
      run[k].dec += t2 - t1;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: codec_bench CORPUS_DIR [--model FILE] [--max-mb N] [--chunk BYTES] [--isa I]\n");
    return 2;
  }
  std::string model_path;
  double max_mb = 4;
  size_t chunk = 65536;
  Isa isa = Isa::kAuto;
  std::string only_classes, methods = "raw,zstd-3,zstd-19,xz-9e,neural,chosen";
  bool decode = true;
  uint8_t frame_version = kFrameVersion;
  uint8_t compare[2] = {0, 0};
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") model_path = v;
    else if (k == "--max-mb") max_mb = std::strtod(v.c_str(), nullptr);
    else if (k == "--classes") only_classes = "," + v + ",";
    else if (k == "--methods") methods = v;
    else if (k == "--decode") decode = v != "0";
    else if (k == "--frame-version") frame_version = static_cast<uint8_t>(std::strtoul(v.c_str(), nullptr, 10));
    else if (k == "--chunk") chunk = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--compare-versions") {
      unsigned a = 0, b = 0;
      if (std::sscanf(v.c_str(), "%u,%u", &a, &b) != 2 || a < kFrameVersionMin || a > kFrameVersionMax ||
          b < kFrameVersionMin || b > kFrameVersionMax) {
        std::fprintf(stderr, "--compare-versions wants A,B in %d..%d\n", kFrameVersionMin, kFrameVersionMax);
        return 2;
      }
      compare[0] = static_cast<uint8_t>(a);
      compare[1] = static_cast<uint8_t>(b);
    }
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
  struct Row {
    std::string cls;
    size_t bytes = 0, nchunks = 0, raw = 0, zstd19 = 0, xz = 0, neural = 0, chosen = 0;
    double enc = 0, dec = 0;
  };
  std::vector<Row> rows;
  for (auto& cls : classes) {
    if (!only_classes.empty() && only_classes.find("," + cls + ",") == std::string::npos) continue;
    const fs::path dir = fs::path(argv[1]) / cls;
    if (!fs::is_directory(dir, ec)) {
      std::printf("\n[%s] missing, skipped\n", cls.c_str());
      continue;
    }
    std::vector<std::pair<size_t, size_t>> pieces;
    const auto data = load_class(dir, static_cast<size_t>(max_mb * 1048576), chunk, &pieces);
    std::vector<std::span<const uint8_t>> chunks;
    for (auto [off, len] : pieces) chunks.emplace_back(data.data() + off, len);
    std::printf("\n[%s] %zu bytes, %zu chunks\n", cls.c_str(), data.size(), chunks.size());
    if (data.empty()) continue;
    if (compare[0]) {
      VersionRun run[2];
      if (!compare_versions(chunks, model.get(), set, isa, compare, run)) {
        std::fprintf(stderr, "neural round trip failed\n");
        return 1;
      }
      const double mb = static_cast<double>(data.size()) / 1e6;
      for (int k = 0; k < 2; ++k)
        std::printf("  neural v%d %12zu bytes  encode %.2f MB/s  decode %.2f MB/s\n", compare[k], run[k].bytes,
                    mb / std::max(run[k].enc, 1e-9), mb / std::max(run[k].dec, 1e-9));
      std::printf("  v%d against v%d: %+.2f %% bytes, encode x%.3f, decode x%.3f\n", compare[1], compare[0],
                  100.0 * (static_cast<double>(run[1].bytes) / static_cast<double>(run[0].bytes) - 1),
                  run[0].enc / std::max(run[1].enc, 1e-9), run[0].dec / std::max(run[1].dec, 1e-9));
      continue;
    }
    std::printf("  %-8s %12s %7s %22s %22s\n", "method", "bytes", "bpb", "encode MB/s cpu(wall)", "decode MB/s cpu(wall)");
    Row row{cls, data.size(), chunks.size()};
    for (int method = 0; method < 6; ++method) {
      static const char* names[] = {"raw", "zstd-3", "zstd-19", "neural", "chosen", "xz-9e"};
      if (("," + methods + ",").find(std::string(",") + names[method] + ",") == std::string::npos) continue;
      if (method == 5) {
        const double w0 = wall_now();
        size_t total = 0;
        for (auto c : chunks) total += xz_size(c);
        const double we = wall_now() - w0;
        row.xz = total;
        std::printf("  %-8s %12zu %7.3f %12s (%7.2f) %12s\n", names[method], total,
                    8.0 * static_cast<double>(total) / static_cast<double>(data.size()), "-",
                    static_cast<double>(data.size()) / 1e6 / std::max(we, 1e-9), "-");
        continue;
      }
      EncodeOptions eo;
      eo.isa = isa;
      eo.frame_version = frame_version;
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
      for (size_t i = 0; decode && i < frames.size(); ++i) {
        auto r = decode_frame(frames[i], set, dopt);
        if (!r.ok() || r->size() != chunks[i].size()) {
          std::fprintf(stderr, "decode failed: %s\n", r.ok() ? "size" : r.status().to_string().c_str());
          return 1;
        }
      }
      const double cd = cpu_now() - c0, wd = wall_now() - w0;
      const double mb = static_cast<double>(data.size()) / 1e6;
      if (method == 0) row.raw = total;
      if (method == 2) row.zstd19 = total;
      if (method == 3) {
        row.neural = total;
        row.enc = mb / std::max(ce, 1e-9);
        row.dec = decode ? mb / std::max(cd, 1e-9) : 0;
      }
      if (method == 4) row.chosen = total;
      std::printf("  %-8s %12zu %7.3f %12.2f (%7.2f) %12.2f (%7.2f)\n", names[method], total,
                  8.0 * static_cast<double>(total) / static_cast<double>(data.size()), mb / std::max(ce, 1e-9),
                  mb / std::max(we, 1e-9), mb / std::max(cd, 1e-9), mb / std::max(wd, 1e-9));
    }
    rows.push_back(row);
  }
  if (compare[0]) return 0;
  std::printf("\n| class | bytes | chunks | zstd -19 | xz -9e (CLI) | neural | neural / xz | chosen | neural enc MB/s | neural dec MB/s |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  for (auto& r : rows) {
    std::printf("| %s | %zu | %zu | %zu | %zu | %zu | %.3f | %zu | %.2f | %.2f |\n", r.cls.c_str(), r.bytes,
                r.nchunks, r.zstd19, r.xz, r.neural,
                r.xz ? static_cast<double>(r.neural) / static_cast<double>(r.xz) : 0.0, r.chosen, r.enc, r.dec);
  }
  return 0;
}
