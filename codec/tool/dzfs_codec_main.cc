// dzfs-codec: command-line front end of the codec library.
//   make-model [--seed N] [--window W] [--hidden H] [--layers L] OUT
//   model-info MODEL
//   compress   [--model M|none|default] [--level N] [--chunk BYTES] [--codec auto|raw|zstd|neural]
//              [--isa I] [--threads T] IN OUT        (IN a file, or a tree -> OUT tree of .dzc)
//   decompress [--model M]... [--isa I] [--threads T] IN OUT      (a .dzc file, or a tree)
// A .dzc file is the container of codec/FORMAT.md section 8 (header, frames, index); files of
// the older format (the bare concatenation of frames) still decompress. compress and decompress
// go through the public C API (libdzcodec, codec/include/dzcodec.h); without --model the
// embedded default model codes, and every embedded model is available for decoding.
//   bench      [--model M] [--chunk BYTES] [--isa I] [--max-bytes N] PATH...   (files or trees)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "codec/backend.h"
#include "codec/frame.h"
#include "codec/model.h"
#include "codec/neural.h"
#include "codec/util.h"
#include "dzcodec.h"

using namespace dzfs::codec;
namespace fs = std::filesystem;

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: dzfs-codec make-model [--seed N] [--window W(16)] [--hidden H(64)] [--layers L(1)] OUT\n"
               "       dzfs-codec model-info MODEL\n"
               "       dzfs-codec compress [--model M|none|default] [--level N] [--chunk BYTES] [--codec auto|raw|zstd|neural]\n"
               "                           [--isa auto|scalar|avx2|avx512vnni] [--threads T] IN OUT\n"
               "       dzfs-codec decompress [--model M]... [--isa I] [--threads T] IN OUT\n"
               "       dzfs-codec bench [--model M] [--chunk BYTES] [--isa I] [--max-bytes N] PATH...\n");
  return 2;
}

struct Args {
  std::vector<std::string> pos;
  std::vector<std::pair<std::string, std::string>> opt;
  std::string get(const std::string& k, const std::string& d = "") const {
    for (auto& [a, b] : opt)
      if (a == k) return b;
    return d;
  }
  std::vector<std::string> all(const std::string& k) const {
    std::vector<std::string> r;
    for (auto& [a, b] : opt)
      if (a == k) r.push_back(b);
    return r;
  }
};

bool parse(int argc, char** argv, Args* a) {
  for (int i = 2; i < argc; ++i) {
    std::string s = argv[i];
    if (s.rfind("--", 0) == 0) {
      if (i + 1 >= argc) return false;
      a->opt.emplace_back(s.substr(2), argv[++i]);
    } else {
      a->pos.push_back(s);
    }
  }
  return true;
}

bool to_u64(const std::string& s, uint64_t* v) {
  if (s.empty()) return false;
  char* e = nullptr;
  *v = std::strtoull(s.c_str(), &e, 10);
  return *e == 0;
}

int fail(const Status& s) {
  std::fprintf(stderr, "dzfs-codec: %s\n", s.to_string().c_str());
  return 1;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Result<std::shared_ptr<const Model>> load_opt_model(const std::string& path) {
  if (path.empty()) return std::shared_ptr<const Model>();
  return Model::load_file(path);
}

Isa get_isa(const Args& a) {
  Isa isa = Isa::kAuto;
  if (!parse_isa(a.get("isa", "auto"), &isa)) std::fprintf(stderr, "dzfs-codec: unknown --isa, using auto\n");
  return isa;
}

int cmd_make_model(const Args& a) {
  if (a.pos.size() != 1) return usage();
  RandomModelParams p;
  uint64_t v;
  if (to_u64(a.get("seed", "1"), &v)) p.seed = v; else return usage();
  if (to_u64(a.get("window", "16"), &v)) p.window = static_cast<uint32_t>(v); else return usage();
  if (to_u64(a.get("hidden", "64"), &v)) p.hidden = static_cast<uint32_t>(v); else return usage();
  if (to_u64(a.get("layers", "1"), &v)) p.layers = static_cast<uint32_t>(v); else return usage();
  auto bytes = serialize_model(make_random_tensors(p));
  if (!bytes.ok()) return fail(bytes.status());
  if (auto s = write_file(a.pos[0], *bytes); !s.ok()) return fail(s);
  std::printf("%s %zu bytes id %s\n", a.pos[0].c_str(), bytes->size(), ModelId::of_bytes(*bytes).hex().c_str());
  return 0;
}

int cmd_model_info(const Args& a) {
  if (a.pos.size() != 1) return usage();
  auto m = Model::load_file(a.pos[0]);
  if (!m.ok()) return fail(m.status());
  const auto& s = (*m)->spec();
  std::printf("id %s\nsize %zu\narch wmlp window %u hidden %u layers %u\nrequant m1 %d s1 %d m2 %d s2 %d mo %d so %d\n",
              (*m)->id().hex().c_str(), (*m)->file_size(), s.window, s.hidden, s.layers, s.m1, s.s1, s.m2, s.s2,
              s.mo, s.so);
  for (auto& [k, v] : (*m)->tensors().manifest) std::printf("meta %s=%s\n", k.c_str(), v.c_str());
  std::printf("isa %s\n", isa_name(resolve_isa(Isa::kAuto)));
  return 0;
}

void collect(const fs::path& p, std::vector<fs::path>* files) {
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) {
    files->push_back(p);
    return;
  }
  if (!fs::is_directory(p, ec)) return;
  std::vector<fs::path> sub;
  for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) sub.push_back(it->path());
  }
  std::sort(sub.begin(), sub.end());
  files->insert(files->end(), sub.begin(), sub.end());
}

// compress and decompress run on the public C API (codec/include/dzcodec.h), streaming the file
// through it in 1 MiB blocks: memory stays bounded whatever the file's size, and the CLI is a real
// user of the API the bindings use.
int api_fail(const char* what) {
  std::fprintf(stderr, "dzfs-codec: %s: %s\n", what, dzc_last_error());
  return 1;
}

struct CtxHolder {
  dzc_ctx* c = dzc_ctx_new();
  ~CtxHolder() { dzc_ctx_free(c); }
};

// --model M: a model file, "none" (no network: the adaptive models alone) or "default" (the
// embedded default, also what no --model means). Every --model is added for decoding.
int setup_ctx(const Args& a, dzc_ctx* ctx, bool encoding) {
  if (!ctx) return api_fail("context");
  auto models = a.all("model");
  for (size_t i = 0; i < models.size(); ++i) {
    const std::string& m = models[i];
    if (m == "default") continue;
    if (m == "none") {
      if (encoding && dzc_ctx_set_model(ctx, nullptr) != DZC_OK) return api_fail("model");
      continue;
    }
    dzc_model* mod = nullptr;
    if (dzc_model_load_file(m.c_str(), &mod) != DZC_OK) return api_fail("model");
    const int rc = encoding && i == 0 ? dzc_ctx_set_model(ctx, mod) : dzc_ctx_add_model(ctx, mod);
    dzc_model_free(mod);
    if (rc != DZC_OK) return api_fail("model");
  }
  uint64_t threads = 1;
  if (!to_u64(a.get("threads", "1"), &threads) || dzc_ctx_set_param(ctx, DZC_P_THREADS, (long long)threads) != DZC_OK) return 2;
  const std::string isa = a.get("isa", "auto");
  const int isa_v = isa == "scalar" ? DZC_ISA_SCALAR : isa == "avx2" ? DZC_ISA_AVX2 : isa == "avx512vnni" ? DZC_ISA_AVX512VNNI : DZC_ISA_AUTO;
  if (isa_v == DZC_ISA_AUTO && isa != "auto") std::fprintf(stderr, "dzfs-codec: unknown --isa, using auto\n");
  if (dzc_ctx_set_param(ctx, DZC_P_ISA, isa_v) != DZC_OK) return api_fail("isa");
  if (!encoding) return 0;
  uint64_t chunk = 65536, level = 3;
  if (!to_u64(a.get("chunk", "65536"), &chunk) || dzc_ctx_set_param(ctx, DZC_P_CHUNK_SIZE, (long long)chunk) != DZC_OK) return 2;
  if (!to_u64(a.get("level", "3"), &level) || dzc_ctx_set_param(ctx, DZC_P_ZSTD_LEVEL, (long long)level) != DZC_OK) return 2;
  const std::string codec = a.get("codec", "auto");
  int c;
  if (codec == "auto") c = DZC_CODEC_AUTO;
  else if (codec == "raw") c = DZC_CODEC_RAW;
  else if (codec == "zstd") c = DZC_CODEC_ZSTD;
  else if (codec == "neural") c = DZC_CODEC_NEURAL;
  else return 2;
  if (dzc_ctx_set_param(ctx, DZC_P_CODEC, c) != DZC_OK) return api_fail("codec");
  return 0;
}

struct File {
  FILE* f = nullptr;
  ~File() {
    if (f) std::fclose(f);
  }
};

// Pipes in_path through a dzc encoder or decoder into out_path. Counts frames per codec when
// encoding (byte 5 of each frame header, seen while the output passes).
template <class Stream>
int pipe_file(const std::string& in_path, const std::string& out_path, Stream* s, uint64_t* in_bytes, uint64_t* out_bytes) {
  File in, out;
  in.f = std::fopen(in_path.c_str(), "rb");
  if (!in.f) return fail(Status::Error(ErrorCode::kIo, in_path + ": " + std::strerror(errno)));
  out.f = std::fopen(out_path.c_str(), "wb");
  if (!out.f) return fail(Status::Error(ErrorCode::kIo, out_path + ": " + std::strerror(errno)));
  std::vector<uint8_t> ib(1u << 20), ob(1u << 20);
  auto drain = [&]() -> bool {
    while (s->pending() > 0) {
      size_t got = 0;
      if (s->read(ob.data(), ob.size(), &got) != DZC_OK) return false;
      if (std::fwrite(ob.data(), 1, got, out.f) != got) return false;
      *out_bytes += got;
    }
    return true;
  };
  for (;;) {
    const size_t n = std::fread(ib.data(), 1, ib.size(), in.f);
    if (n == 0) break;
    *in_bytes += n;
    for (size_t off = 0; off < n;) {
      size_t used = 0;
      if (s->write(ib.data() + off, n - off, &used) != DZC_OK) return api_fail(in_path.c_str());
      off += used;
      if (!drain()) return api_fail(out_path.c_str());
    }
  }
  if (std::ferror(in.f)) return fail(Status::Error(ErrorCode::kIo, in_path + ": read error"));
  if (s->finish() != DZC_OK) return api_fail(in_path.c_str());
  if (!drain()) return api_fail(out_path.c_str());
  if (std::fflush(out.f) != 0 || std::ferror(out.f)) return fail(Status::Error(ErrorCode::kIo, out_path + ": write error"));
  return 0;
}

struct EncStream {
  dzc_encoder* e = nullptr;
  ~EncStream() { dzc_encoder_free(e); }
  int write(const uint8_t* p, size_t n, size_t* used) { return dzc_encoder_write(e, p, n, used); }
  int finish() { return dzc_encoder_finish(e); }
  int read(uint8_t* p, size_t n, size_t* got) { return dzc_encoder_read(e, p, n, got); }
  size_t pending() const { return dzc_encoder_pending(e); }
};
struct DecStream {
  dzc_decoder* d = nullptr;
  ~DecStream() { dzc_decoder_free(d); }
  int write(const uint8_t* p, size_t n, size_t* used) { return dzc_decoder_write(d, p, n, used); }
  int finish() { return dzc_decoder_finish(d); }
  int read(uint8_t* p, size_t n, size_t* got) { return dzc_decoder_read(d, p, n, got); }
  size_t pending() const { return dzc_decoder_pending(d); }
};

int compress_one(const Args& a, const std::string& in_path, const std::string& out_path) {
  CtxHolder ctx;
  if (int rc = setup_ctx(a, ctx.c, true); rc != 0) return rc == 2 ? usage() : rc;
  EncStream s;
  if (dzc_encoder_new(ctx.c, &s.e) != DZC_OK) return api_fail("encoder");
  uint64_t in_bytes = 0, out_bytes = 0;
  const double t0 = now();
  if (int rc = pipe_file(in_path, out_path, &s, &in_bytes, &out_bytes); rc != 0) return rc;
  const double dt = now() - t0;
  std::fprintf(stderr, "%s: %llu -> %llu bytes (%.3f bpc), %.2f MB/s\n", in_path.c_str(), (unsigned long long)in_bytes,
               (unsigned long long)out_bytes, in_bytes ? 8.0 * out_bytes / in_bytes : 0.0, in_bytes / 1e6 / std::max(dt, 1e-9));
  return 0;
}

int decompress_one(const Args& a, const std::string& in_path, const std::string& out_path) {
  CtxHolder ctx;
  if (int rc = setup_ctx(a, ctx.c, false); rc != 0) return rc == 2 ? usage() : rc;
  DecStream s;
  if (dzc_decoder_new(ctx.c, &s.d) != DZC_OK) return api_fail("decoder");
  uint64_t in_bytes = 0, out_bytes = 0;
  if (int rc = pipe_file(in_path, out_path, &s, &in_bytes, &out_bytes); rc != 0) {
    std::remove(out_path.c_str());  // never leave a partial output that looks like a result
    return rc;
  }
  return 0;
}


// IN may be a directory: every regular file below it is processed into the same relative path
// below OUT (compress appends ".dzc"; decompress takes "*.dzc" files and strips it).
template <class Fn>
int for_tree(const Args& a, bool compress, Fn one) {
  if (a.pos.size() != 2) return usage();
  std::error_code ec;
  if (!fs::is_directory(a.pos[0], ec)) return one(a, a.pos[0], a.pos[1]);
  std::vector<fs::path> files;
  collect(a.pos[0], &files);
  int rc = 0;
  for (auto& f : files) {
    fs::path rel = fs::relative(f, a.pos[0], ec);
    if (ec) return fail(Status::Error(ErrorCode::kIo, "cannot relativize " + f.string()));
    std::string out = (fs::path(a.pos[1]) / rel).string();
    if (compress) {
      out += ".dzc";
    } else {
      if (rel.extension() != ".dzc") continue;
      out.resize(out.size() - 4);
    }
    fs::create_directories(fs::path(out).parent_path(), ec);
    if (ec) return fail(Status::Error(ErrorCode::kIo, "cannot create directory for " + out));
    const int r = one(a, f.string(), out);
    if (r != 0) rc = r;
  }
  return rc;
}

int cmd_compress(const Args& a) { return for_tree(a, true, compress_one); }
int cmd_decompress(const Args& a) { return for_tree(a, false, decompress_one); }

int cmd_bench(const Args& a) {
  if (a.pos.empty()) return usage();
  auto model = load_opt_model(a.get("model"));
  if (!model.ok()) return fail(model.status());
  uint64_t chunk = 65536, maxb = 8u << 20;
  if (!to_u64(a.get("chunk", "65536"), &chunk) || chunk == 0 || chunk > kMaxFrameRawLen) return usage();
  if (!to_u64(a.get("max-bytes", "8388608"), &maxb)) return usage();
  std::vector<fs::path> files;
  for (auto& p : a.pos) collect(p, &files);
  std::vector<uint8_t> data;
  for (auto& f : files) {
    if (data.size() >= maxb) break;
    auto b = read_file(f.string(), size_t{1} << 34);
    if (b.ok()) data.insert(data.end(), b->begin(), b->begin() + std::min<size_t>(b->size(), maxb - data.size()));
  }
  std::vector<std::span<const uint8_t>> chunks;
  for (size_t off = 0; off < data.size(); off += chunk)
    chunks.emplace_back(data.data() + off, std::min<size_t>(chunk, data.size() - off));
  ModelSet set;
  if (*model) set.add(*model);
  DecodeOptions dopt;
  dopt.isa = get_isa(a);
  std::printf("%zu files, %zu bytes, %zu chunks of %llu, isa %s, model %s\n", files.size(), data.size(), chunks.size(),
              static_cast<unsigned long long>(chunk), isa_name(resolve_isa(dopt.isa)),
              *model ? (*model)->id().hex().c_str() : "(none)");
  for (int which = 0; which < 3; ++which) {
    EncodeOptions eo;
    eo.isa = dopt.isa;
    CodecId id = which == 2 ? CodecId::kNeural : CodecId::kZstd;
    eo.zstd_level = which == 0 ? 3 : 19;
    size_t total = 0;
    std::vector<std::vector<uint8_t>> frames;
    double t0 = now();
    for (auto c : chunks) {
      auto f = encode_frame(id, c, model->get(), eo);
      if (!f.ok()) return fail(f.status());
      total += f->size();
      frames.push_back(std::move(*f));
    }
    double te = now() - t0;
    t0 = now();
    for (auto& f : frames) {
      auto r = decode_frame(f, set, dopt);
      if (!r.ok()) return fail(r.status());
    }
    double td = now() - t0;
    std::printf("%-8s %10zu bytes  %.3f bpc  enc %8.2f MB/s  dec %8.2f MB/s\n",
                which == 0 ? "zstd-3" : which == 1 ? "zstd-19" : "neural", total,
                data.empty() ? 0.0 : 8.0 * total / data.size(), data.size() / 1e6 / te, data.size() / 1e6 / td);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  Args a;
  if (!parse(argc, argv, &a)) return usage();
  const std::string cmd = argv[1];
  if (cmd == "make-model") return cmd_make_model(a);
  if (cmd == "model-info") return cmd_model_info(a);
  if (cmd == "compress") return cmd_compress(a);
  if (cmd == "decompress") return cmd_decompress(a);
  if (cmd == "bench") return cmd_bench(a);
  return usage();
}
