#include "codec/model.h"

#include <xxhash.h>

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>

#include "codec/util.h"

namespace dzfs::codec {
namespace {

constexpr char kMagic[8] = {'D', 'Z', 'F', 'S', 'M', 'O', 'D', 'L'};
constexpr size_t kHeaderSize = 64;
constexpr size_t kSectionHeaderSize = 32;
constexpr size_t kMaxModelFile = size_t{256} << 20;
constexpr size_t kMaxManifest = 64 << 10;
constexpr int64_t kMaxBias = int64_t{1} << 24;
constexpr int32_t kMaxMult = int32_t{1} << 30;
constexpr int32_t kMaxShift = 30;

enum DType : uint8_t { kI8 = 1, kI32 = 2, kText = 3 };

uint32_t tag_of(const char* s) {
  uint8_t b[4] = {0, 0, 0, 0};
  for (int i = 0; i < 4 && s[i]; ++i) b[i] = static_cast<uint8_t>(s[i]);
  return load_le32(b);
}

std::string tag_name(uint32_t tag) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    char c = static_cast<char>((tag >> (8 * i)) & 0xff);
    if (c == 0) break;
    s += (c >= 32 && c < 127) ? c : '?';
  }
  return s;
}

bool valid_key(std::string_view k) {
  if (k.empty() || k.size() > 128) return false;
  for (char c : k)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == '-'))
      return false;
  return true;
}
bool valid_value(std::string_view v) {
  for (char c : v)
    if (c == '\n' || c == '\0' || c == '\r') return false;
  return true;
}

Status spec_check(const NetSpec& s) {
  auto bad = [](std::string m) { return Status::Error(ErrorCode::kCorrupt, "model: " + m); };
  if (s.window < 1 || s.window > 64) return bad("window out of range 1..64: " + std::to_string(s.window));
  if (s.hidden < 32 || s.hidden > 512 || s.hidden % 32 != 0)
    return bad("hidden must be a multiple of 32 in 32..512: " + std::to_string(s.hidden));
  if (s.layers < 1 || s.layers > 2) return bad("layers must be 1 or 2: " + std::to_string(s.layers));
  const int32_t ms[3] = {s.m1, s.m2, s.mo}, ss[3] = {s.s1, s.s2, s.so};
  for (int i = 0; i < 3; ++i) {
    if (ms[i] < 1 || ms[i] > kMaxMult) return bad("requant multiplier out of range 1..2^30");
    if (ss[i] < 0 || ss[i] > kMaxShift) return bad("requant shift out of range 0..30");
  }
  return Status::Ok();
}

template <class T>
Status check_bias(const std::vector<T>& b, const char* name) {
  for (auto v : b)
    if (v > kMaxBias || v < -kMaxBias)
      return Status::Error(ErrorCode::kCorrupt, std::string("model: bias out of range in ") + name);
  return Status::Ok();
}

struct Writer {
  std::vector<uint8_t> out;
  void u32(uint32_t v) { uint8_t b[4]; store_le32(b, v); out.insert(out.end(), b, b + 4); }
  void u64(uint64_t v) { uint8_t b[8]; store_le64(b, v); out.insert(out.end(), b, b + 8); }
  void section(const char* tag, uint8_t dtype, std::initializer_list<uint32_t> dims, const void* data,
               size_t bytes) {
    u32(tag_of(tag));
    out.push_back(dtype);
    out.push_back(static_cast<uint8_t>(dims.size()));
    out.push_back(0);
    out.push_back(0);
    uint32_t d[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (auto x : dims) d[i++] = x;
    for (auto x : d) u32(x);
    u64(bytes);
    const uint8_t* p = static_cast<const uint8_t*>(data);
    out.insert(out.end(), p, p + bytes);
    while (out.size() % 8) out.push_back(0);
  }
  template <class T>
  void i32s(const char* tag, std::initializer_list<uint32_t> dims, const std::vector<T>& v) {
    std::vector<uint8_t> tmp(v.size() * 4);
    for (size_t i = 0; i < v.size(); ++i) store_le32(&tmp[4 * i], static_cast<uint32_t>(v[i]));
    section(tag, kI32, dims, tmp.data(), tmp.size());
  }
};

// splitmix64 + xoshiro256**: integer-only, identical everywhere.
struct Rng {
  uint64_t s[4];
  explicit Rng(uint64_t seed) {
    for (auto& x : s) {
      seed += 0x9E3779B97F4A7C15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      x = z ^ (z >> 31);
    }
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45);
    return r;
  }
  int8_t i8(int lim) {  // uniform in [-lim, lim]
    return static_cast<int8_t>(static_cast<int>(next() % static_cast<uint64_t>(2 * lim + 1)) - lim);
  }
};

uint32_t isqrt(uint64_t x) {
  uint64_t r = 0;
  while ((r + 1) * (r + 1) <= x) ++r;
  return static_cast<uint32_t>(r);
}

}  // namespace

bool ModelId::is_null() const {
  for (auto b : bytes)
    if (b) return false;
  return true;
}

std::string ModelId::hex() const {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (auto b : bytes) {
    s += d[b >> 4];
    s += d[b & 15];
  }
  return s;
}

Result<ModelId> ModelId::from_hex(std::string_view h) {
  if (h.size() != 32) return Status::Error(ErrorCode::kInvalidArgument, "model id: need 32 hex digits");
  ModelId id;
  for (size_t i = 0; i < 32; ++i) {
    char c = h[i];
    int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (v < 0) return Status::Error(ErrorCode::kInvalidArgument, "model id: bad hex digit");
    id.bytes[i / 2] = static_cast<uint8_t>(id.bytes[i / 2] | (i % 2 ? v : v << 4));
  }
  return id;
}

ModelId ModelId::of_bytes(std::span<const uint8_t> file) {
  XXH128_hash_t h = XXH3_128bits(file.data(), file.size());
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  ModelId id;
  std::memcpy(id.bytes.data(), c.digest, 16);
  return id;
}

Status validate_tensors(const ModelTensors& t) {
  DZC_RETURN_IF_ERROR(spec_check(t.spec));
  const size_t W = t.spec.window, H = t.spec.hidden;
  auto bad = [](std::string m) { return Status::Error(ErrorCode::kCorrupt, "model: " + m); };
  if (t.t1.size() != W * kSymbols * H) return bad("T1 size mismatch");
  if (t.b1.size() != H) return bad("B1 size mismatch");
  if (t.a1.size() != 256) return bad("A1 size mismatch");
  if (t.spec.layers == 2) {
    if (t.w2.size() != H * H) return bad("W2 size mismatch");
    if (t.b2.size() != H) return bad("B2 size mismatch");
    if (t.a2.size() != 256) return bad("A2 size mismatch");
  } else if (!t.w2.empty() || !t.b2.empty() || !t.a2.empty()) {
    return bad("layer-2 tensors present in a 1-layer model");
  }
  if (t.wo.size() != kTreeNodes * H) return bad("WO size mismatch");
  if (t.bo.size() != kTreeNodes) return bad("BO size mismatch");
  for (auto v : t.a1)
    if (v < 0) return bad("A1: activation LUT values must be 0..127");
  for (auto v : t.a2)
    if (v < 0) return bad("A2: activation LUT values must be 0..127");
  DZC_RETURN_IF_ERROR(check_bias(t.b1, "B1"));
  DZC_RETURN_IF_ERROR(check_bias(t.b2, "B2"));
  DZC_RETURN_IF_ERROR(check_bias(t.bo, "BO"));
  // int32 requantization must not overflow: bound |acc| per unit from the actual weights.
  auto fits = [](int64_t bound, int32_t m, int32_t sh) {
    return bound * m + (sh > 0 ? int64_t{1} << (sh - 1) : 0) <= INT32_MAX;
  };
  for (size_t j = 0; j < H; ++j) {
    int64_t b = std::abs(int64_t{t.b1[j]});
    for (size_t i = 0; i < W; ++i) {
      int mx = 0;
      for (size_t sym = 0; sym < kSymbols; ++sym) mx = std::max(mx, std::abs(int{t.t1[(i * kSymbols + sym) * H + j]}));
      b += mx;
    }
    if (!fits(b, t.spec.m1, t.spec.s1)) return bad("layer 1: requantization can overflow int32 (m1 too large)");
  }
  auto rows_fit = [&](const std::vector<int8_t>& w, const std::vector<int32_t>& bias, size_t rows, int32_t m,
                      int32_t sh) {
    for (size_t r = 0; r < rows; ++r) {
      int64_t b = std::abs(int64_t{bias[r]});
      for (size_t c = 0; c < H; ++c) b += 127 * std::abs(int{w[r * H + c]});
      if (!fits(b, m, sh)) return false;
    }
    return true;
  };
  if (t.spec.layers == 2 && !rows_fit(t.w2, t.b2, H, t.spec.m2, t.spec.s2))
    return bad("layer 2: requantization can overflow int32 (m2 too large)");
  if (!rows_fit(t.wo, t.bo, kTreeNodes, t.spec.mo, t.spec.so))
    return bad("output: requantization can overflow int32 (mo too large)");
  size_t mbytes = 0;
  for (auto& [k, v] : t.manifest) {
    if (!valid_key(k)) return bad("manifest: invalid key");
    if (!valid_value(v)) return bad("manifest: invalid value for key " + k);
    mbytes += k.size() + v.size() + 2;
  }
  if (mbytes > kMaxManifest) return bad("manifest larger than 64 KiB");
  return Status::Ok();
}

Result<std::vector<uint8_t>> serialize_model(const ModelTensors& t) {
  DZC_RETURN_IF_ERROR(validate_tensors(t));
  const uint32_t W = t.spec.window, H = t.spec.hidden;
  Writer w;
  w.out.insert(w.out.end(), kMagic, kMagic + 8);
  w.u32(kModelFormatVersion);
  w.u32(kArchWmlp);
  w.u32(kHeaderSize);
  w.u32(W);
  w.u32(H);
  w.u32(t.spec.layers);
  for (int32_t v : {t.spec.m1, t.spec.s1, t.spec.m2, t.spec.s2, t.spec.mo, t.spec.so})
    w.u32(static_cast<uint32_t>(v));
  const uint32_t nsec = t.spec.layers == 2 ? 9 : 6;
  w.u32(nsec);
  w.u32(0);
  w.section("T1", kI8, {W, kSymbols, H}, t.t1.data(), t.t1.size());
  w.i32s("B1", {H}, t.b1);
  w.section("A1", kI8, {256}, t.a1.data(), 256);
  if (t.spec.layers == 2) {
    w.section("W2", kI8, {H, H}, t.w2.data(), t.w2.size());
    w.i32s("B2", {H}, t.b2);
    w.section("A2", kI8, {256}, t.a2.data(), 256);
  }
  w.section("WO", kI8, {kTreeNodes, H}, t.wo.data(), t.wo.size());
  w.i32s("BO", {kTreeNodes}, t.bo);
  std::string text;
  for (auto& [k, v] : t.manifest) text += k + "=" + v + "\n";
  w.section("META", kText, {static_cast<uint32_t>(text.size())}, text.data(), text.size());
  w.u64(XXH3_64bits(w.out.data(), w.out.size()));
  return std::move(w.out);
}

Result<std::shared_ptr<const Model>> Model::load(std::span<const uint8_t> f) {
  auto bad = [](std::string m) { return Status::Error(ErrorCode::kCorrupt, "model: " + m); };
  if (f.size() < kHeaderSize + 8) return bad("file too short (" + std::to_string(f.size()) + " bytes)");
  if (f.size() > kMaxModelFile) return Status::Error(ErrorCode::kTooLarge, "model: file larger than 256 MiB");
  if (std::memcmp(f.data(), kMagic, 8) != 0) return bad("bad magic (not a dzfs model file)");
  const uint64_t want = load_le64(f.data() + f.size() - 8);
  if (XXH3_64bits(f.data(), f.size() - 8) != want) return Status::Error(ErrorCode::kChecksumMismatch, "model: checksum mismatch (file damaged)");
  const uint8_t* h = f.data();
  if (load_le32(h + 8) != kModelFormatVersion)
    return Status::Error(ErrorCode::kUnsupported, "model: unsupported format version " + std::to_string(load_le32(h + 8)));
  if (load_le32(h + 12) != kArchWmlp)
    return Status::Error(ErrorCode::kUnsupported, "model: unsupported architecture id " + std::to_string(load_le32(h + 12)));
  if (load_le32(h + 16) != kHeaderSize) return bad("bad header size");
  ModelTensors t;
  t.spec.window = load_le32(h + 20);
  t.spec.hidden = load_le32(h + 24);
  t.spec.layers = load_le32(h + 28);
  int32_t* q[6] = {&t.spec.m1, &t.spec.s1, &t.spec.m2, &t.spec.s2, &t.spec.mo, &t.spec.so};
  for (int i = 0; i < 6; ++i) *q[i] = static_cast<int32_t>(load_le32(h + 32 + 4 * i));
  DZC_RETURN_IF_ERROR(spec_check(t.spec));
  const uint32_t nsec = load_le32(h + 56);
  if (load_le32(h + 60) != 0) return bad("reserved header field not zero");
  if (nsec > 16) return bad("too many sections");
  const uint64_t W = t.spec.window, H = t.spec.hidden;
  size_t off = kHeaderSize;
  const size_t end = f.size() - 8;
  uint32_t seen = 0;
  bool have_meta = false;
  for (uint32_t s = 0; s < nsec; ++s) {
    if (end - off < kSectionHeaderSize) return bad("truncated section header");
    const uint8_t* sh = f.data() + off;
    const uint32_t tag = load_le32(sh);
    const uint8_t dtype = sh[4], ndim = sh[5];
    if (sh[6] || sh[7]) return bad("reserved section field not zero");
    uint32_t dims[4];
    for (int i = 0; i < 4; ++i) dims[i] = load_le32(sh + 8 + 4 * i);
    const uint64_t bytes = load_le64(sh + 24);
    off += kSectionHeaderSize;
    if (bytes > end - off) return bad("section " + tag_name(tag) + " runs past end of file");
    const uint8_t* data = f.data() + off;
    struct Want { const char* tag; uint8_t dtype; uint8_t ndim; uint64_t d[3]; int bit; };
    const Want wants[] = {
        {"T1", kI8, 3, {W, kSymbols, H}, 0}, {"B1", kI32, 1, {H, 0, 0}, 1},
        {"A1", kI8, 1, {256, 0, 0}, 2},      {"W2", kI8, 2, {H, H, 0}, 3},
        {"B2", kI32, 1, {H, 0, 0}, 4},       {"A2", kI8, 1, {256, 0, 0}, 5},
        {"WO", kI8, 2, {kTreeNodes, H, 0}, 6}, {"BO", kI32, 1, {kTreeNodes, 0, 0}, 7},
    };
    if (tag == tag_of("META")) {
      if (have_meta) return bad("duplicate META section");
      have_meta = true;
      if (dtype != kText || ndim != 1 || dims[0] != bytes || dims[1] || dims[2] || dims[3]) return bad("bad META section header");
      if (bytes > kMaxManifest) return bad("manifest larger than 64 KiB");
      std::string_view text(reinterpret_cast<const char*>(data), bytes);
      while (!text.empty()) {
        size_t nl = text.find('\n');
        if (nl == std::string_view::npos) return bad("manifest: last line not terminated");
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl + 1);
        size_t eq = line.find('=');
        if (eq == std::string_view::npos) return bad("manifest: line without '='");
        std::string_view k = line.substr(0, eq), v = line.substr(eq + 1);
        if (!valid_key(k) || !valid_value(v)) return bad("manifest: invalid key or value");
        t.manifest.emplace_back(std::string(k), std::string(v));
      }
    } else {
      const Want* w = nullptr;
      for (auto& c : wants)
        if (tag == tag_of(c.tag)) w = &c;
      if (!w) return bad("unknown section '" + tag_name(tag) + "'");
      if (seen & (1u << w->bit)) return bad("duplicate section " + tag_name(tag));
      if (w->bit >= 3 && w->bit <= 5 && t.spec.layers != 2) return bad("layer-2 section in a 1-layer model");
      seen |= 1u << w->bit;
      if (dtype != w->dtype || ndim != w->ndim) return bad("section " + tag_name(tag) + ": wrong dtype or rank");
      uint64_t n = 1;
      for (int i = 0; i < 4; ++i) {
        const uint64_t expect = i < w->ndim && i < 3 ? w->d[i] : 0;
        if (dims[i] != expect) return bad("section " + tag_name(tag) + ": wrong shape");
        if (i < w->ndim) n *= expect;
      }
      const uint64_t esz = dtype == kI32 ? 4 : 1;
      if (bytes != n * esz) return bad("section " + tag_name(tag) + ": byte length does not match shape");
      try {
        auto i8 = [&](std::vector<int8_t>& v) { v.resize(n); std::memcpy(v.data(), data, n); };
        auto i32 = [&](std::vector<int32_t>& v) {
          v.resize(n);
          for (uint64_t i = 0; i < n; ++i) v[i] = static_cast<int32_t>(load_le32(data + 4 * i));
        };
        switch (w->bit) {
          case 0: i8(t.t1); break;
          case 1: i32(t.b1); break;
          case 2: i8(t.a1); break;
          case 3: i8(t.w2); break;
          case 4: i32(t.b2); break;
          case 5: i8(t.a2); break;
          case 6: i8(t.wo); break;
          case 7: i32(t.bo); break;
        }
      } catch (const std::bad_alloc&) {
        return Status::Error(ErrorCode::kInternal, "model: out of memory");
      }
    }
    off += bytes;
    const size_t pad = (8 - off % 8) % 8;
    if (pad > end - off) return bad("truncated section padding");
    for (size_t i = 0; i < pad; ++i)
      if (f[off + i]) return bad("nonzero section padding");
    off += pad;
  }
  if (off != end) return bad("trailing bytes after last section");
  const uint32_t need = t.spec.layers == 2 ? 0xffu : (0xffu & ~0x38u);
  if (seen != need) return bad("missing required section(s)");
  if (!have_meta) return bad("missing META section");
  DZC_RETURN_IF_ERROR(validate_tensors(t));
  std::shared_ptr<Model> m(new (std::nothrow) Model());
  if (!m) return Status::Error(ErrorCode::kInternal, "model: out of memory");
  m->id_ = ModelId::of_bytes(f);
  m->file_size_ = f.size();
  m->t_ = std::move(t);
  // Nibble-tree regrouping: node of nibble index j (1..15, leading-1 form) in bucket b.
  try {
    m->wo_nib_.assign(size_t{17} * 16 * H, 0);
    m->bo_nib_.assign(size_t{17} * 16, 0);
    for (uint32_t b = 0; b < 17; ++b)
      for (uint32_t j = 1; j < 16; ++j) {
        const uint32_t depth = 31 - static_cast<uint32_t>(__builtin_clz(j));  // 0..3
        const uint32_t node = b == 0 ? j : (((16 + (b - 1)) << depth) | (j & ((1u << depth) - 1)));
        std::memcpy(&m->wo_nib_[(b * 16 + j) * H], &m->t_.wo[(node - 1) * H], H);
        m->bo_nib_[b * 16 + j] = m->t_.bo[node - 1];
      }
    m->t1_line_.reset(new (std::align_val_t{64}) int8_t[m->t_.t1.size()]);
    std::memcpy(m->t1_line_.get(), m->t_.t1.data(), m->t_.t1.size());
  } catch (const std::bad_alloc&) {
    return Status::Error(ErrorCode::kInternal, "model: out of memory");
  }
  return std::shared_ptr<const Model>(std::move(m));
}

Result<std::shared_ptr<const Model>> Model::load_file(const std::string& path) {
  auto bytes = read_file(path, kMaxModelFile);
  if (!bytes.ok()) return bytes.status();
  return load(*bytes);
}

Result<std::shared_ptr<const Model>> Model::from_tensors(const ModelTensors& t) {
  auto bytes = serialize_model(t);
  if (!bytes.ok()) return bytes.status();
  return load(*bytes);
}

std::string Model::manifest_value(std::string_view key) const {
  for (auto& [k, v] : t_.manifest)
    if (k == key) return v;
  return {};
}

Status Model::forward_reference(std::span<const uint16_t> window, std::vector<uint8_t>* hidden,
                                std::vector<int16_t>* logits) const {
  const auto& s = t_.spec;
  const size_t W = s.window, H = s.hidden;
  if (window.size() != W) return Status::Error(ErrorCode::kInvalidArgument, "forward: window size mismatch");
  for (auto sym : window)
    if (sym > kPadSymbol) return Status::Error(ErrorCode::kInvalidArgument, "forward: symbol out of range");
  std::vector<uint8_t> h1(H), h2;
  for (size_t j = 0; j < H; ++j) {
    int32_t acc = t_.b1[j];
    for (size_t i = 0; i < W; ++i) acc += t_.t1[(i * kSymbols + window[i]) * H + j];
    int32_t v = std::clamp(requant(acc, s.m1, s.s1), -128, 127);
    h1[j] = static_cast<uint8_t>(t_.a1[v + 128]);
  }
  const std::vector<uint8_t>* h = &h1;
  if (s.layers == 2) {
    h2.resize(H);
    for (size_t r = 0; r < H; ++r) {
      int32_t acc = t_.b2[r];
      for (size_t c = 0; c < H; ++c) acc += int32_t{t_.w2[r * H + c]} * h1[c];
      int32_t v = std::clamp(requant(acc, s.m2, s.s2), -128, 127);
      h2[r] = static_cast<uint8_t>(t_.a2[v + 128]);
    }
    h = &h2;
  }
  if (hidden) *hidden = *h;
  if (logits) {
    logits->resize(kTreeNodes);
    for (size_t n = 0; n < kTreeNodes; ++n) {
      int32_t acc = t_.bo[n];
      for (size_t c = 0; c < H; ++c) acc += int32_t{t_.wo[n * H + c]} * (*h)[c];
      (*logits)[n] = static_cast<int16_t>(std::clamp(requant(acc, s.mo, s.so), -2047, 2047));
    }
  }
  return Status::Ok();
}

ModelTensors make_random_tensors(const RandomModelParams& p) {
  ModelTensors t;
  t.spec.window = p.window;
  t.spec.hidden = p.hidden;
  t.spec.layers = p.layers;
  const uint32_t W = p.window, H = p.hidden;
  Rng rng(p.seed);
  t.t1.resize(size_t{W} * kSymbols * H);
  for (auto& v : t.t1) v = rng.i8(32);
  t.b1.assign(H, 0);
  // Hard-sigmoid LUT: a = clamp(v + 64, 0, 127).
  t.a1.resize(256);
  for (int i = 0; i < 256; ++i) t.a1[i] = static_cast<int8_t>(std::clamp(i - 64, 0, 127));
  // acc1 std ~ 18.5*sqrt(W); target LUT input std ~ 32.
  const uint32_t sd1 = std::max<uint32_t>(1, 185 * isqrt(uint64_t{W} * 100) / 100);
  t.spec.s1 = 16;
  t.spec.m1 = static_cast<int32_t>(std::max<uint64_t>(1, (uint64_t{32} << 16) / sd1 / 10));
  // Activations ~ 64 +- 32 (0..127); int8 weights uniform +-16 (std ~9.5).
  const uint32_t sdh = 72 * 95 * isqrt(uint64_t{H}) / 10;  // ~ std of a dot product
  if (p.layers == 2) {
    t.w2.resize(size_t{H} * H);
    for (auto& v : t.w2) v = rng.i8(16);
    t.b2.assign(H, 0);
    t.a2 = t.a1;
    t.spec.s2 = 16;
    t.spec.m2 = static_cast<int32_t>(std::max<uint64_t>(1, (uint64_t{32} << 16) / std::max<uint32_t>(1, sdh)));
  }
  t.wo.resize(size_t{kTreeNodes} * H);
  for (auto& v : t.wo) v = rng.i8(16);
  t.bo.assign(kTreeNodes, 0);
  t.spec.so = 16;  // target logit std ~ 256 (one nat)
  t.spec.mo = static_cast<int32_t>(std::max<uint64_t>(1, (uint64_t{256} << 16) / std::max<uint32_t>(1, sdh)));
  t.manifest = {{"generator", "dzfs-codec make-model (random init, untrained)"},
                {"seed", std::to_string(p.seed)},
                {"arch", "wmlp"},
                {"window", std::to_string(W)},
                {"hidden", std::to_string(H)},
                {"layers", std::to_string(p.layers)}};
  return t;
}

}  // namespace dzfs::codec
