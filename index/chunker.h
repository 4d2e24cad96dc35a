// Content-defined chunking (FastCDC with normalized chunking, Xia et al. 2016).
// Cut points depend only on the bytes since the previous cut, so an insertion shifts chunk
// boundaries only until the next cut point after it: the rest of the file dedups.
#pragma once
#include <cstddef>
#include <cstdint>

namespace dzfs {

class Chunker {
 public:
  Chunker(uint32_t min_size, uint32_t avg_size, uint32_t max_size);
  // Length of the chunk starting at data[0]. Returns n (all of it) when no cut point lies in
  // data[0..n) and n < max: the caller decides whether more data may follow (then the chunk is
  // not final) or the data ends here.
  size_t cut(const uint8_t* data, size_t n) const;
  uint32_t min_size() const { return min_; }
  uint32_t max_size() const { return max_; }

 private:
  uint32_t min_, avg_, max_;
  uint64_t mask_small_, mask_large_;  // stricter before avg, looser after: normalized chunking
};

}  // namespace dzfs
