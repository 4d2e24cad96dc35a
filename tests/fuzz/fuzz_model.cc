// libFuzzer target: model loading. First byte picks a mode:
//   0: the rest is a model file, loaded as is (checksum usually rejects it);
//   1: the rest is a model file whose trailing checksum is recomputed (the parser gets fuzzed);
//   2: a valid tiny model is generated, then the input's (offset, xor) pairs damage it and the
//      checksum is recomputed: structured mutations of real files.
// A model that loads must survive a forward pass and a neural round trip.
#include <xxhash.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "codec/frame.h"
#include "codec/model.h"

using namespace dzfs::codec;

namespace {
void reseal(std::vector<uint8_t>& f) {
  if (f.size() < 8) return;
  const uint64_t h = XXH3_64bits(f.data(), f.size() - 8);
  for (int i = 0; i < 8; ++i) f[f.size() - 8 + i] = static_cast<uint8_t>(h >> (8 * i));
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 3;
  std::vector<uint8_t> f;
  if (mode == 2) {
    if (size < 3) return 0;
    static const std::vector<uint8_t> base[2] = {
        *serialize_model(make_random_tensors({.seed = 1, .window = 1, .hidden = 32, .layers = 1})),
        *serialize_model(make_random_tensors({.seed = 2, .window = 2, .hidden = 32, .layers = 2}))};
    f = base[data[1] & 1];
    for (size_t i = 2; i + 2 < size; i += 3) {
      const size_t off = (static_cast<size_t>(data[i]) | static_cast<size_t>(data[i + 1]) << 8) *
                         ((f.size() + 65535) / 65536);
      if (off < f.size()) f[off] ^= data[i + 2];
    }
    if (data[1] & 2) f.resize(f.size() - (data[1] >> 2));
    reseal(f);
  } else {
    f.assign(data + 1, data + size);
    if (mode == 1) reseal(f);
  }
  auto m = Model::load(f);
  if (!m.ok()) {
    if (m.status().message().empty()) std::abort();
    return 0;
  }
  const Model& model = **m;
  std::vector<uint16_t> win(model.spec().window, kPadSymbol);
  std::vector<uint8_t> hidden;
  std::vector<int16_t> logits;
  if (!model.forward_reference(win, &hidden, &logits).ok()) std::abort();
  const std::vector<uint8_t> raw = {'f', 'u', 'z', 'z', ' ', 'f', 'u', 'z', 'z', ' ', 0, 1, 2, 255};
  auto e = encode_frame(CodecId::kNeural, raw, &model);
  if (!e.ok()) std::abort();
  ModelSet set;
  set.add(*m);
  auto d = decode_frame(*e, set);
  if (!d.ok() || *d != raw) std::abort();
  return 0;
}
