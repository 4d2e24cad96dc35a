#include "train/export.h"

namespace dzfs::train {

codec::ModelTensors to_model_tensors(const IntTensors& t,
                                     std::vector<std::pair<std::string, std::string>> manifest) {
  codec::ModelTensors m;
  m.spec.window = static_cast<uint32_t>(t.window);
  m.spec.hidden = static_cast<uint32_t>(t.hidden);
  m.spec.layers = static_cast<uint32_t>(t.layers);
  m.spec.m1 = t.m1, m.spec.s1 = t.s1, m.spec.m2 = t.m2, m.spec.s2 = t.s2, m.spec.mo = t.mo, m.spec.so = t.so;
  m.t1 = t.t1, m.b1 = t.b1, m.a1 = t.a1, m.w2 = t.w2, m.b2 = t.b2, m.a2 = t.a2, m.wo = t.wo, m.bo = t.bo;
  m.manifest = std::move(manifest);
  return m;
}

IntTensors from_model_tensors(const codec::ModelTensors& m) {
  IntTensors t;
  t.window = static_cast<int>(m.spec.window);
  t.hidden = static_cast<int>(m.spec.hidden);
  t.layers = static_cast<int>(m.spec.layers);
  t.m1 = m.spec.m1, t.s1 = m.spec.s1, t.m2 = m.spec.m2, t.s2 = m.spec.s2, t.mo = m.spec.mo, t.so = m.spec.so;
  t.t1 = m.t1, t.b1 = m.b1, t.a1 = m.a1, t.w2 = m.w2, t.b2 = m.b2, t.a2 = m.a2, t.wo = m.wo, t.bo = m.bo;
  return t;
}

NetConfig net_config_of(const codec::ModelTensors& m, int threads) {
  NetConfig c;
  c.window = static_cast<int>(m.spec.window);
  c.hidden = static_cast<int>(m.spec.hidden);
  c.layers = static_cast<int>(m.spec.layers);
  c.threads = threads;
  return c;
}

}  // namespace dzfs::train
