#include "train/data.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace dzfs::train {
namespace fs = std::filesystem;

uint64_t path_hash(const std::string& rel) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : rel) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string FileEntry::cls() const {
  const auto p = rel.find('/');
  return p == std::string::npos ? std::string() : rel.substr(0, p);
}

std::vector<FileEntry> list_files(const std::vector<std::string>& roots, std::string* err) {
  std::vector<FileEntry> out;
  for (const auto& r : roots) {
    std::error_code ec;
    fs::path root(r);
    if (fs::is_regular_file(root, ec)) {
      out.push_back({root.parent_path().string(), root.filename().string(), fs::file_size(root, ec)});
      continue;
    }
    if (!fs::is_directory(root, ec)) {
      if (err) *err = "not a file or directory: " + r;
      return {};
    }
    std::vector<FileEntry> sub;
    auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!name.empty() && name[0] == '.') {
        if (it->is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      if (it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
      sub.push_back({r, fs::relative(it->path(), root, ec).generic_string(), it->file_size(ec)});
    }
    std::sort(sub.begin(), sub.end(), [](const FileEntry& a, const FileEntry& b) { return a.rel < b.rel; });
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

bool Corpus::load(const std::vector<FileEntry>& files_in, uint32_t chunk, uint64_t max_bytes, std::string* err) {
  data.clear();
  piece_start.clear();
  piece_class.clear();
  classes.clear();
  files = 0;
  std::map<std::string, int> cidx;
  for (const auto& f : files_in) {
    if (max_bytes && data.size() >= max_bytes) break;
    std::ifstream in(fs::path(f.root) / f.rel, std::ios::binary);
    if (!in) {
      if (err) *err = "cannot read " + (fs::path(f.root) / f.rel).string();
      return false;
    }
    std::vector<uint8_t> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (b.empty()) continue;
    if (max_bytes && data.size() + b.size() > max_bytes) b.resize(max_bytes - data.size());
    auto [it, fresh] = cidx.emplace(f.cls(), static_cast<int>(classes.size()));
    if (fresh) classes.push_back(f.cls());
    for (size_t off = 0; off < b.size(); off += chunk) {
      piece_start.push_back(data.size() + off);
      piece_class.push_back(it->second);
    }
    data.insert(data.end(), b.begin(), b.end());
    ++files;
  }
  if (data.empty()) {
    if (err) *err = "no data";
    return false;
  }
  return true;
}

size_t Corpus::piece_of(uint64_t pos) const {
  return static_cast<size_t>(std::upper_bound(piece_start.begin(), piece_start.end(), pos) - piece_start.begin()) - 1;
}

void Corpus::fill(uint64_t pos, int window, int64_t* idx, uint8_t* target) const {
  const uint64_t start = piece_start[piece_of(pos)];
  for (int i = 0; i < window; ++i) {
    const int sym = pos >= start + i + 1 ? data[pos - 1 - i] : kPad;
    idx[i] = int64_t{i} * kSym + sym;
  }
  *target = data[pos];
}

void sample_batch(const Corpus& c, int window, int size, std::mt19937_64& rng, Batch* out) {
  out->size = size;
  out->idx.resize(size_t(size) * window);
  out->target.resize(size);
  std::uniform_int_distribution<uint64_t> d(0, c.data.size() - 1);
  for (int b = 0; b < size; ++b) c.fill(d(rng), window, &out->idx[size_t(b) * window], &out->target[b]);
}

void spread_batch(const Corpus& c, int window, uint64_t n, Batch* out, std::vector<int>* cls) {
  n = std::min<uint64_t>(n, c.data.size());
  out->size = static_cast<int>(n);
  out->idx.resize(n * window);
  out->target.resize(n);
  if (cls) cls->resize(n);
  // Contiguous runs of 1024 positions spread evenly (keeps chunk-start effects representative).
  const uint64_t run = std::min<uint64_t>(1024, n);
  const uint64_t runs = (n + run - 1) / run;
  uint64_t k = 0;
  for (uint64_t r = 0; r < runs && k < n; ++r) {
    uint64_t base = c.data.size() * r / runs;
    for (uint64_t j = 0; j < run && k < n; ++j, ++k) {
      const uint64_t pos = std::min<uint64_t>(base + j, c.data.size() - 1);
      c.fill(pos, window, &out->idx[k * window], &out->target[k]);
      if (cls) (*cls)[k] = c.piece_class[c.piece_of(pos)];
    }
  }
}

bool Config::read(const std::string& file, std::string* err) {
  std::ifstream in(file);
  if (!in) {
    if (err) *err = "cannot read config " + file;
    return false;
  }
  path = file;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    auto trim = [](std::string s) {
      const auto a = s.find_first_not_of(" \t\r");
      if (a == std::string::npos) return std::string();
      const auto b = s.find_last_not_of(" \t\r");
      return s.substr(a, b - a + 1);
    };
    line = trim(line);
    if (line.empty()) continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos) {
      if (err) *err = file + ":" + std::to_string(n) + ": expected key = value";
      return false;
    }
    kv.emplace_back(trim(line.substr(0, eq)), trim(line.substr(eq + 1)));
  }
  return true;
}

bool Config::has(const std::string& k) const {
  for (auto& [a, b] : kv)
    if (a == k) return true;
  return false;
}
std::string Config::get(const std::string& k, const std::string& def) const {
  std::string v = def;
  for (auto& [a, b] : kv)
    if (a == k) v = b;
  return v;
}
std::vector<std::string> Config::all(const std::string& k) const {
  std::vector<std::string> r;
  for (auto& [a, b] : kv)
    if (a == k) r.push_back(b);
  return r;
}
void Config::set(const std::string& k, const std::string& v) {
  kv.erase(std::remove_if(kv.begin(), kv.end(), [&](auto& p) { return p.first == k; }), kv.end());
  kv.emplace_back(k, v);
}

}  // namespace dzfs::train
