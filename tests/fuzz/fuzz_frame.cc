// libFuzzer target: frame decoding. The first input byte picks a mode so that the fuzzer reaches
// every layer, not just the header check:
//   0: the rest is a frame, decoded as is;
//   1: the rest is a frame whose header check word is recomputed (payload parsers get fuzzed);
//   2: the rest is [codec, model, raw_len lo, raw_len hi, payload...]: a valid header is built
//      around an arbitrary payload (the neural decoder and zstd get fuzzed directly).
// Success requires the raw checksum to match, so any ok() result must also re-encode losslessly.
#include <xxhash.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "codec/frame.h"
#include "codec/model.h"

using namespace dzfs::codec;

namespace {
const ModelSet& models() {
  static ModelSet set = [] {
    ModelSet s;
    auto m = Model::from_tensors(make_random_tensors({.seed = 7, .window = 8, .hidden = 32, .layers = 2}));
    if (!m.ok()) std::abort();
    s.add(*m);
    return s;
  }();
  return set;
}

void put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 3;
  std::vector<uint8_t> f(data + 1, data + size);
  DecodeOptions opt;
  opt.max_raw_len = 1 << 13;  // keeps each run short; limit handling is itself exercised
  if (mode == 1 && f.size() >= 8) {
    const size_t hl = std::min<size_t>(f[7], f.size());
    if (hl >= 4) put32(&f[hl - 4], static_cast<uint32_t>(XXH3_64bits(f.data(), hl - 4)));
  } else if (mode == 2) {
    if (f.size() < 4) return 0;
    const uint8_t codec = f[0] % 3, which = f[1];
    const uint32_t raw_len = f[2] | (f[3] << 8);
    std::vector<uint8_t> payload(f.begin() + 4, f.end());
    const size_t hl = codec == 2 ? kNeuralFrameHeaderSize : kFrameHeaderSize;
    std::vector<uint8_t> g(hl);
    std::memcpy(g.data(), "DZCF", 4);
    g[4] = static_cast<uint8_t>(kFrameVersionMin + (which >> 1) % (kFrameVersionMax - kFrameVersionMin + 1));  // every predictor
    g[5] = codec;
    g[7] = static_cast<uint8_t>(hl);
    put32(&g[8], codec == 0 ? static_cast<uint32_t>(payload.size()) : raw_len);
    put32(&g[12], static_cast<uint32_t>(payload.size()));
    put32(&g[16], 0x12345678u);
    put32(&g[20], 0x9abcdef0u);
    if (codec == 2 && (which & 1)) {
      static const ModelId id =
          ModelId::of_bytes(*serialize_model(make_random_tensors({.seed = 7, .window = 8, .hidden = 32, .layers = 2})));
      std::memcpy(&g[24], id.bytes.data(), 16);
    }
    put32(&g[hl - 4], static_cast<uint32_t>(XXH3_64bits(g.data(), hl - 4)));
    g.insert(g.end(), payload.begin(), payload.end());
    f.swap(g);
  }
  auto h = peek_frame_header(f);
  auto r = decode_frame(f, models(), opt);
  if (r.ok()) {
    if (!h.ok() || r->size() != h->raw_len) std::abort();
    EncodeOptions eo{.zstd_level = 1, .try_neural = r->size() < 2048};
    eo.frame_version = h->version;
    auto e = choose_and_encode(*r, nullptr, eo);
    if (!e.ok()) std::abort();
    auto back = decode_frame(*e, models(), opt);
    if (!back.ok() || *back != *r) std::abort();
  }
  return 0;
}
