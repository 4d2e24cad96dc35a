// dzfs train: corpus loading, the deterministic file split, batch sampling, config files.
#pragma once
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "train/qat.h"

namespace dzfs::train {

// FNV-1a 64 of a relative path (the split key; same definition as packaging/train-default-model.sh).
uint64_t path_hash(const std::string& rel);
// True if the file with this path (relative to its data root) is held back (validation / benchmark).
inline bool is_held_back(const std::string& rel, int held_percent) {
  return static_cast<int>(path_hash(rel) % 100) < held_percent;
}

struct FileEntry {
  std::string root, rel;  // rel: path relative to root, '/' separated
  uint64_t size = 0;
  std::string cls() const;  // first path component of rel ("" for files directly in root)
};

// Regular files under each root (recursively, sorted, hidden names skipped). A root that is a
// file is listed with rel = its file name.
std::vector<FileEntry> list_files(const std::vector<std::string>& roots, std::string* err);

// Concatenated file contents with chunk boundaries: every file is cut into `chunk`-byte pieces
// (its tail is its own piece), like a filesystem cutting fixed chunks; the network's window
// never crosses a piece start (pad symbols instead), as in the codec.
struct Corpus {
  std::vector<uint8_t> data;
  std::vector<uint64_t> piece_start;  // sorted; piece i = [piece_start[i], piece_start[i+1])
  std::vector<int> piece_class;       // index into classes
  std::vector<std::string> classes;
  uint64_t files = 0;
  bool load(const std::vector<FileEntry>& files, uint32_t chunk, uint64_t max_bytes, std::string* err);
  // Builds one batch position: global byte position pos.
  void fill(uint64_t pos, int window, int64_t* idx, uint8_t* target) const;
  size_t piece_of(uint64_t pos) const;
};

// Uniformly random positions (training batches).
void sample_batch(const Corpus& c, int window, int size, std::mt19937_64& rng, Batch* out);
// A deterministic validation set: up to n positions spread evenly over the corpus;
// cls gets the class index of each position.
void spread_batch(const Corpus& c, int window, uint64_t n, Batch* out, std::vector<int>* cls);

// key = value config file ('#' comments). Repeated keys accumulate (data = ...).
struct Config {
  std::vector<std::pair<std::string, std::string>> kv;
  std::string path;  // file it was read from (relative data dirs resolve against its directory)
  bool read(const std::string& file, std::string* err);
  bool has(const std::string& k) const;
  std::string get(const std::string& k, const std::string& def = "") const;  // last value
  std::vector<std::string> all(const std::string& k) const;
  void set(const std::string& k, const std::string& v);  // replaces every value of k
};

}  // namespace dzfs::train
