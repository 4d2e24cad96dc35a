// Deterministic test inputs (no files needed) shared by the codec tests.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dzfs::codec::test {

struct Lcg {
  uint64_t s;
  explicit Lcg(uint64_t seed) : s(seed * 2654435761u + 1) {}
  uint32_t next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(s >> 33);
  }
};

inline std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  Lcg r(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(r.next());
  return v;
}

// English-like text from a fixed vocabulary.
inline std::vector<uint8_t> text_bytes(size_t n, uint64_t seed) {
  static const char* words[] = {"the", "chunk", "of", "a", "filesystem", "stores", "bytes", "and", "model",
                                "predicts", "next", "byte", "with", "context", "mixing", "while", "match",
                                "finds", "long", "repeats", "in", "data", "backup", "is", "compressed",
                                "integer", "network", "weights", "to", "frame", "checksum", "verified"};
  Lcg r(seed);
  std::string s;
  while (s.size() < n) {
    const uint32_t k = r.next();
    s += words[(k % 32 + (k >> 8) % 32) / 2];
    s += (k >> 20) % 11 == 0 ? ".\n" : " ";
  }
  s.resize(n);
  return std::vector<uint8_t>(s.begin(), s.end());
}

// A random block repeated with sparse mutations (exercises the match model).
inline std::vector<uint8_t> repeat_bytes(size_t n, uint64_t seed) {
  Lcg r(seed);
  const std::vector<uint8_t> block = random_bytes(3000, seed + 1);
  std::vector<uint8_t> v;
  while (v.size() < n) {
    v.insert(v.end(), block.begin(), block.end());
    v[v.size() - 1 - r.next() % block.size()] ^= 0x55;
  }
  v.resize(n);
  return v;
}

// Source-code-like structured text mixed with numbers.
inline std::vector<uint8_t> code_bytes(size_t n, uint64_t seed) {
  Lcg r(seed);
  std::string s;
  while (s.size() < n) {
    const uint32_t k = r.next();
    s += "  if (x" + std::to_string(k % 17) + " > " + std::to_string(k % 1000) + ") {\n    return f(" +
         std::to_string((k >> 10) % 64) + ");\n  }\n";
  }
  s.resize(n);
  return std::vector<uint8_t>(s.begin(), s.end());
}

// FASTQ-like reads: numbered headers, reads copied from one random reference with ~2%
// substitutions, line-wrapped never, '+' lines, Phred-like quality strings (exercises the
// version-3 field-aligned context and nucleotide match model).
inline std::vector<uint8_t> fastq_bytes(size_t n, uint64_t seed) {
  Lcg r(seed);
  const char* nt = "ACGT";
  std::string ref;
  for (int i = 0; i < 4000; ++i) ref += nt[r.next() % 4];
  std::string s;
  for (int rec = 1; s.size() < n; ++rec) {
    const uint32_t at = r.next() % (ref.size() - 100);
    std::string read = ref.substr(at, 100);
    for (auto& c : read)
      if (r.next() % 50 == 0) c = nt[r.next() % 4];
    std::string q;
    for (int i = 0; i < 100; ++i) q += static_cast<char>('!' + 20 + r.next() % 21 - (i > 80 ? 10 : 0));
    s += "@SRR0" + std::to_string(700000 + rec) + "." + std::to_string(rec) + " " + std::to_string(rec) +
         " length=100\n" + read + "\n+\n" + q + "\n";
  }
  s.resize(n);
  return std::vector<uint8_t>(s.begin(), s.end());
}

}  // namespace dzfs::codec::test
