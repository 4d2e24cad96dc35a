// libdzcodec: the C API of codec/include/dzcodec.h over the C++ codec (frames, models), and the
// .dzc container (codec/FORMAT.md section 8). Every entry point catches everything: no exception
// crosses the C boundary, an allocation failure is DZC_E_NO_MEMORY, and a failure's message is
// kept per thread for dzc_last_error().
#include "dzcodec.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <xxhash.h>
#include <zstd.h>

#include "codec/frame.h"
#include "codec/model.h"
#include "codec/util.h"

using namespace dzfs::codec;

// The models compiled in (index/embed_model.cmake writes them, renamed to dzcodec_* by the build so
// that a program may link this library beside dzfs_index).
extern "C" const unsigned char* const dzcodec_embedded_models[];
extern "C" const unsigned long dzcodec_embedded_model_sizes[];
extern "C" const unsigned long dzcodec_embedded_model_count;

struct dzc_model {
  std::shared_ptr<const Model> m;
};

namespace {

constexpr uint8_t kHeadMagic[4] = {'D', 'Z', 'C', 'C'};
constexpr uint8_t kIndexMagic[4] = {'D', 'Z', 'C', 'I'};
constexpr uint8_t kTrailMagic[4] = {'D', 'Z', 'C', 'E'};
constexpr uint8_t kFrameMagicBytes[4] = {'D', 'Z', 'C', 'F'};
constexpr unsigned kContainerVersion = 1;
constexpr size_t kHeadSize = 16;
constexpr size_t kTrailSize = 16;
constexpr size_t kIndexFixed = 4 + 4 + 8 + 4;  // magic, count, total raw, check (+ 8 per frame)
constexpr uint32_t kMinChunk = 1;
constexpr size_t kDefaultChunk = 65536;

thread_local std::string tl_error;

int set_error(int code, const std::string& msg) {
  try {
    tl_error = msg;
  } catch (...) {
  }
  return code;
}

int code_of(ErrorCode c) {
  switch (c) {
    case ErrorCode::kOk: return DZC_OK;
    case ErrorCode::kInvalidArgument: return DZC_E_INVALID_ARGUMENT;
    case ErrorCode::kCorrupt: return DZC_E_CORRUPT;
    case ErrorCode::kChecksumMismatch: return DZC_E_CHECKSUM;
    case ErrorCode::kModelMismatch: return DZC_E_MODEL_MISMATCH;
    case ErrorCode::kUnsupported: return DZC_E_UNSUPPORTED;
    case ErrorCode::kTooLarge: return DZC_E_TOO_LARGE;
    case ErrorCode::kIo: return DZC_E_IO;
    case ErrorCode::kInternal: return DZC_E_INTERNAL;
  }
  return DZC_E_INTERNAL;
}

int from_status(const Status& s, const std::string& where = "") {
  if (s.ok()) return DZC_OK;
  return set_error(code_of(s.code()), where.empty() ? s.message() : where + ": " + s.message());
}

// Runs body, mapping escaping exceptions to codes (the C boundary never sees one).
template <class F>
int guarded(F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return set_error(DZC_E_NO_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return set_error(DZC_E_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return set_error(DZC_E_INTERNAL, "internal error");
  }
}

uint32_t check32(const uint8_t* p, size_t n) { return static_cast<uint32_t>(XXH3_64bits(p, n)); }

// The embedded models, parsed once. Built without trained models, index 0 is the codec's seeded
// random-init model, as in dzfs mkfs (index/model_registry.cc).
struct Embedded {
  std::vector<std::shared_ptr<const Model>> models;
  Status status = Status::Ok();
};
const Embedded& embedded() {
  static Embedded* e = [] {
    auto* r = new Embedded;
    try {
      if (dzcodec_embedded_model_count == 0) {
        auto bytes = serialize_model(make_random_tensors(RandomModelParams{}));
        if (!bytes.ok()) { r->status = bytes.status(); return r; }
        auto m = Model::load(*bytes);
        if (!m.ok()) { r->status = m.status(); return r; }
        r->models.push_back(*m);
      }
      for (unsigned long i = 0; i < dzcodec_embedded_model_count; ++i) {
        auto m = Model::load(std::span<const uint8_t>(dzcodec_embedded_models[i], dzcodec_embedded_model_sizes[i]));
        if (!m.ok()) { r->status = m.status(); return r; }
        r->models.push_back(*m);
      }
    } catch (...) {
      r->status = Status::Error(ErrorCode::kInternal, "cannot load the embedded models");
    }
    return r;
  }();
  return *e;
}

struct Settings {
  std::shared_ptr<const Model> enc;
  ModelSet dec;
  unsigned threads = 1;
  uint32_t chunk = kDefaultChunk;
  int level = 3;
  int codec = DZC_CODEC_AUTO;
  int isa = DZC_ISA_AUTO;
  uint32_t max_chunk = kMaxFrameRawLen;

  Isa isa_enum() const {
    switch (isa) {
      case DZC_ISA_SCALAR: return Isa::kScalar;
      case DZC_ISA_AVX2: return Isa::kAvx2;
      case DZC_ISA_AVX512VNNI: return Isa::kAvx512Vnni;
      default: return Isa::kAuto;
    }
  }
  unsigned workers() const {
    if (threads != 0) return threads;
    return std::max(1u, std::thread::hardware_concurrency());
  }
};

// A byte queue: output waiting to be read, consumed from the front.
struct ByteQueue {
  std::vector<uint8_t> buf;
  size_t head = 0;
  size_t size() const { return buf.size() - head; }
  void append(const uint8_t* p, size_t n) {
    if (head > 0 && head == buf.size()) {
      buf.clear();
      head = 0;
    }
    buf.insert(buf.end(), p, p + n);
  }
  size_t take(uint8_t* dst, size_t cap) {
    const size_t n = std::min(cap, size());
    if (n) std::memcpy(dst, buf.data() + head, n);
    head += n;
    if (head == buf.size()) {
      buf.clear();
      head = 0;
    } else if (head > (1u << 20) && head * 2 > buf.size()) {
      buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(head));
      head = 0;
    }
    return n;
  }
};

struct IndexEntry {
  uint32_t frame_len, raw_len;
};

// Index block + trailer for these frames (FORMAT.md 8.3, 8.4).
std::vector<uint8_t> make_index(const std::vector<IndexEntry>& e, uint64_t index_off) {
  std::vector<uint8_t> b(kIndexFixed + 8 * e.size() + kTrailSize);
  uint8_t* p = b.data();
  std::memcpy(p, kIndexMagic, 4);
  store_le32(p + 4, static_cast<uint32_t>(e.size()));
  uint64_t total = 0;
  size_t o = 8;
  for (auto& x : e) {
    store_le32(p + o, x.frame_len);
    store_le32(p + o + 4, x.raw_len);
    total += x.raw_len;
    o += 8;
  }
  store_le64(p + o, total);
  o += 8;
  store_le32(p + o, check32(p, o));
  o += 4;
  const size_t index_len = o;
  store_le64(p + o, index_off);
  store_le32(p + o + 8, static_cast<uint32_t>(index_len));
  std::memcpy(p + o + 12, kTrailMagic, 4);
  return b;
}

Status parse_head(const uint8_t* p, uint32_t max_chunk, uint32_t* chunk) {
  if (std::memcmp(p, kHeadMagic, 4) != 0) return Status::Error(ErrorCode::kCorrupt, "not a .dzc container (bad magic)");
  if (load_le32(p + 12) != check32(p, 12)) return Status::Error(ErrorCode::kCorrupt, "container header check mismatch");
  if (p[4] != kContainerVersion)
    return Status::Error(ErrorCode::kUnsupported, "unsupported container version " + std::to_string(p[4]));
  if (p[5] != 0 || p[6] != 0 || p[7] != 0) return Status::Error(ErrorCode::kCorrupt, "container reserved fields set");
  const uint32_t c = load_le32(p + 8);
  if (c < 1 || c > kMaxFrameRawLen) return Status::Error(ErrorCode::kCorrupt, "container chunk size out of range");
  if (c > max_chunk)
    return Status::Error(ErrorCode::kTooLarge, "container chunk size " + std::to_string(c) + " above the limit");
  *chunk = c;
  return Status::Ok();
}

// Parses a whole index block (magic to check word). Checks the count against the length, the
// check word and the total.
Status parse_index_block(const uint8_t* p, size_t n, std::vector<IndexEntry>* out, uint64_t* total) {
  if (n < kIndexFixed || std::memcmp(p, kIndexMagic, 4) != 0) return Status::Error(ErrorCode::kCorrupt, "bad index magic");
  const uint64_t count = load_le32(p + 4);
  if (n != kIndexFixed + 8 * count) return Status::Error(ErrorCode::kCorrupt, "index length does not match its count");
  if (load_le32(p + n - 4) != check32(p, n - 4)) return Status::Error(ErrorCode::kCorrupt, "index check mismatch");
  out->clear();
  out->reserve(count);
  uint64_t sum = 0;
  for (uint64_t i = 0; i < count; ++i) {
    IndexEntry e{load_le32(p + 8 + 8 * i), load_le32(p + 12 + 8 * i)};
    sum += e.raw_len;
    out->push_back(e);
  }
  *total = load_le64(p + 8 + 8 * count);
  if (sum != *total) return Status::Error(ErrorCode::kCorrupt, "index total does not match its entries");
  return Status::Ok();
}

// Index of a whole container in memory: header, trailer, index, and that the frames exactly fill
// the space between header and index.
Status parse_container_index(const uint8_t* p, size_t n, uint32_t max_chunk, std::vector<IndexEntry>* e,
                             uint64_t* total) {
  uint32_t chunk = 0;
  if (n < kHeadSize + kIndexFixed + kTrailSize) return Status::Error(ErrorCode::kCorrupt, "truncated container");
  DZC_RETURN_IF_ERROR(parse_head(p, max_chunk, &chunk));
  const uint8_t* t = p + n - kTrailSize;
  if (std::memcmp(t + 12, kTrailMagic, 4) != 0) return Status::Error(ErrorCode::kCorrupt, "truncated container (no trailer)");
  const uint64_t off = load_le64(t), len = load_le32(t + 8);
  if (off < kHeadSize || off > n - kTrailSize || len != n - kTrailSize - off)
    return Status::Error(ErrorCode::kCorrupt, "trailer does not locate the index");
  DZC_RETURN_IF_ERROR(parse_index_block(p + off, len, e, total));
  uint64_t frames = 0;
  for (auto& x : *e) {
    if (x.raw_len > chunk) return Status::Error(ErrorCode::kCorrupt, "index entry larger than the chunk size");
    frames += x.frame_len;
  }
  if (kHeadSize + frames != off) return Status::Error(ErrorCode::kCorrupt, "index does not match the frames");
  return Status::Ok();
}

// ---------------------------------------------------------------- encoder
class Encoder {
 public:
  explicit Encoder(const Settings& s) : s_(s), workers_(s.workers()) {
    batch_cap_ = size_t{s_.chunk} * workers_;
    uint8_t h[kHeadSize] = {};
    std::memcpy(h, kHeadMagic, 4);
    h[4] = kContainerVersion;
    store_le32(h + 8, s_.chunk);
    store_le32(h + 12, check32(h, 12));
    out_.append(h, kHeadSize);
    offset_ = kHeadSize;
  }

  int write(const uint8_t* src, size_t n, size_t* consumed) {
    *consumed = 0;
    if (error_) return set_error(DZC_E_STATE, "encoder: unusable after an earlier error: " + error_msg_);
    if (finished_) return set_error(DZC_E_STATE, "encoder: write after finish");
    while (*consumed < n && out_.size() < batch_cap_) {
      const size_t take = std::min(n - *consumed, batch_cap_ - in_.size());
      in_.insert(in_.end(), src + *consumed, src + *consumed + take);
      *consumed += take;
      if (in_.size() == batch_cap_) {
        if (int rc = code_batch(); rc != DZC_OK) return rc;
      }
    }
    return DZC_OK;
  }

  int finish() {
    if (error_) return set_error(DZC_E_STATE, "encoder: unusable after an earlier error: " + error_msg_);
    if (finished_) return DZC_OK;
    if (int rc = code_batch(); rc != DZC_OK) return rc;
    auto idx = make_index(index_, offset_);
    out_.append(idx.data(), idx.size());
    finished_ = true;
    return DZC_OK;
  }

  size_t read(uint8_t* dst, size_t cap) { return out_.take(dst, cap); }
  size_t pending() const { return out_.size(); }

 private:
  // Codes the buffered input as chunks of s_.chunk bytes (the last may be shorter), in parallel.
  int code_batch() {
    if (in_.empty()) return DZC_OK;
    std::vector<std::span<const uint8_t>> chunks;
    for (size_t off = 0; off < in_.size(); off += s_.chunk)
      chunks.emplace_back(in_.data() + off, std::min<size_t>(s_.chunk, in_.size() - off));
    std::vector<Result<std::vector<uint8_t>>> frames(chunks.size(), Result<std::vector<uint8_t>>(std::vector<uint8_t>{}));
    EncodeOptions eo;
    eo.zstd_level = s_.level;
    eo.isa = s_.isa_enum();
    const Model* model = s_.enc.get();
    const int codec = s_.codec;
    parallel_for(chunks.size(), workers_, [&](size_t i) {
      try {
        switch (codec) {
          case DZC_CODEC_RAW: frames[i] = encode_frame(CodecId::kRaw, chunks[i], model, eo); break;
          case DZC_CODEC_ZSTD: frames[i] = encode_frame(CodecId::kZstd, chunks[i], model, eo); break;
          case DZC_CODEC_NEURAL: frames[i] = encode_frame(CodecId::kNeural, chunks[i], model, eo); break;
          default: frames[i] = choose_and_encode(chunks[i], model, eo); break;
        }
      } catch (const std::bad_alloc&) {
        frames[i] = Status::Error(ErrorCode::kInternal, "out of memory");
      } catch (...) {
        frames[i] = Status::Error(ErrorCode::kInternal, "exception while coding a chunk");
      }
    });
    for (size_t i = 0; i < frames.size(); ++i) {
      if (!frames[i].ok()) return fail(from_status(frames[i].status(), "chunk " + std::to_string(index_.size())));
      const auto& f = *frames[i];
      out_.append(f.data(), f.size());
      index_.push_back({static_cast<uint32_t>(f.size()), static_cast<uint32_t>(chunks[i].size())});
      offset_ += f.size();
    }
    in_.clear();
    return DZC_OK;
  }
  int fail(int rc) {
    error_ = true;
    error_msg_ = tl_error;
    return rc;
  }

  Settings s_;
  unsigned workers_;
  size_t batch_cap_;
  std::vector<uint8_t> in_;
  ByteQueue out_;
  std::vector<IndexEntry> index_;
  uint64_t offset_ = 0;
  bool finished_ = false, error_ = false;
  std::string error_msg_;
};

// ---------------------------------------------------------------- decoder
class Decoder {
 public:
  explicit Decoder(const Settings& s) : s_(s), workers_(s.workers()) {
    do_.max_raw_len = s_.max_chunk;
    do_.isa = s_.isa_enum();
  }

  int write(const uint8_t* src, size_t n, size_t* consumed) {
    *consumed = 0;
    if (error_) return set_error(DZC_E_STATE, "decoder: unusable after an earlier error: " + error_msg_);
    if (finished_) return set_error(DZC_E_STATE, "decoder: write after finish");
    // Input after the end: refused (not consumed, not sticky), so that no caller loops on it.
    if (state_ == kDone && n > 0) return set_error(DZC_E_STATE, "decoder: input after the end of the container");
    while (*consumed < n && out_.size() < out_cap() && state_ != kDone) {
      // Take exactly what the next unit (header, frame, index, trailer) still lacks: memory stays
      // bounded by a batch of frames, and nothing past the container's end is ever consumed (the
      // caller keeps it: a second container, or trailing garbage that dzc_decompress reports).
      const size_t need = needed(), have = buf_.size() - pos_;
      if (need <= have) return fail(set_error(DZC_E_INTERNAL, "decoder made no progress"));
      const size_t take = std::min(n - *consumed, need - have);
      buf_.insert(buf_.end(), src + *consumed, src + *consumed + take);
      *consumed += take;
      if (int rc = parse(false); rc != DZC_OK) return rc;
    }
    return DZC_OK;
  }

  int finish() {
    if (error_) return set_error(DZC_E_STATE, "decoder: unusable after an earlier error: " + error_msg_);
    if (finished_) return DZC_OK;
    if (int rc = parse(true); rc != DZC_OK) return rc;
    if (int rc = flush(); rc != DZC_OK) return rc;
    const size_t left = buf_.size() - pos_;
    if (state_ == kStart && left == 0) {
      // Empty input: the empty legacy stream (dzfs-codec wrote empty files as 0 bytes before
      // the container existed).
      state_ = kDone;
    } else if (state_ == kFrames && legacy_ && left == 0) {
      state_ = kDone;
    }
    if (state_ != kDone)
      return fail(set_error(DZC_E_CORRUPT, legacy_ ? "truncated input: incomplete last frame"
                                                   : "truncated container: input ended before its index and trailer"));
    finished_ = true;
    return DZC_OK;
  }

  size_t read(uint8_t* dst, size_t cap) { return out_.take(dst, cap); }
  size_t pending() const { return out_.size(); }
  bool done() const { return state_ == kDone && !legacy_; }

 private:
  enum State { kStart, kFrames, kIndex, kTrailer, kDone };

  size_t out_cap() const { return size_t{chunk_} * workers_; }

  // Bytes that must be buffered (from pos_) before the next unit can be parsed.
  size_t needed() const {
    const size_t have = buf_.size() - pos_;
    const uint8_t* p = buf_.data() + pos_;
    switch (state_) {
      case kStart: return have < 4 ? 4 : kHeadSize;
      case kFrames:
        if (have < 8) return 8;
        if (std::memcmp(p, kIndexMagic, 4) == 0 && !legacy_) return kIndexFixed + 8 * size_t{load_le32(p + 4)};
        if (have < p[7] || have < kFrameHeaderSize) return std::max<size_t>(p[7], kFrameHeaderSize);
        return p[7] + size_t{load_le32(p + 12)};  // header already validated by parse before waiting
      case kIndex: return 0;
      case kTrailer: return kTrailSize;
      case kDone: return 0;
    }
    return 0;
  }

  int parse(bool at_end) {
    for (;;) {
      const size_t have = buf_.size() - pos_;
      const uint8_t* p = buf_.data() + pos_;
      if (state_ == kStart) {
        // A legacy stream starts with a frame; the container with its header.
        if (have >= 4 && std::memcmp(p, kFrameMagicBytes, 4) == 0) {
          legacy_ = true;
          chunk_ = s_.max_chunk;
          chunk_ = std::min<uint32_t>(chunk_, 1u << 20);  // output batching only; frames may be larger
          state_ = kFrames;
          continue;
        }
        if (have >= 4 && std::memcmp(p, kHeadMagic, 4) != 0)
          return fail(set_error(DZC_E_CORRUPT, "not a .dzc stream (bad magic)"));
        if (have < kHeadSize) break;
        if (int rc = from_status(parse_head(p, s_.max_chunk, &chunk_)); rc != DZC_OK) return fail(rc);
        pos_ += kHeadSize;
        offset_ = kHeadSize;
        state_ = kFrames;
        continue;
      }
      if (state_ == kFrames) {
        if (have < 8) break;
        if (!legacy_ && std::memcmp(p, kIndexMagic, 4) == 0) {
          if (load_le32(p + 4) != seen_.size())
            return fail(set_error(DZC_E_CORRUPT, "index counts " + std::to_string(load_le32(p + 4)) + " frames, the container holds " +
                                                     std::to_string(seen_.size())));
          const size_t len = kIndexFixed + 8 * seen_.size();
          if (have < len) break;
          if (int rc = flush(); rc != DZC_OK) return rc;
          std::vector<IndexEntry> e;
          uint64_t total = 0;
          if (int rc = from_status(parse_index_block(p, len, &e, &total)); rc != DZC_OK) return fail(rc);
          for (size_t i = 0; i < e.size(); ++i)
            if (e[i].frame_len != seen_[i].frame_len || e[i].raw_len != seen_[i].raw_len)
              return fail(set_error(DZC_E_CORRUPT, "index entry " + std::to_string(i) + " does not match its frame"));
          index_off_ = offset_;
          index_len_ = len;
          pos_ += len;
          offset_ += len;
          state_ = kTrailer;
          continue;
        }
        if (have < kFrameHeaderSize) break;
        const size_t hl = p[7] == kNeuralFrameHeaderSize ? kNeuralFrameHeaderSize : kFrameHeaderSize;
        if (have < hl) break;
        auto h = peek_frame_header(std::span<const uint8_t>(p, have));
        if (!h.ok()) return fail(from_status(h.status(), "frame " + std::to_string(seen_.size()) + " at offset " + std::to_string(offset_)));
        if (h->raw_len > chunk_ && !legacy_)
          return fail(set_error(DZC_E_CORRUPT, "frame " + std::to_string(seen_.size()) + " larger than the container's chunk size"));
        if (h->raw_len > s_.max_chunk)
          return fail(set_error(DZC_E_TOO_LARGE, "frame " + std::to_string(seen_.size()) + " above the chunk size limit"));
        if (have < h->frame_len()) break;
        batch_.emplace_back(p, p + h->frame_len());
        batch_raw_ += h->raw_len;
        seen_.push_back({static_cast<uint32_t>(h->frame_len()), h->raw_len});
        pos_ += h->frame_len();
        offset_ += h->frame_len();
        if (batch_.size() >= workers_ || batch_raw_ >= out_cap()) {
          if (int rc = flush(); rc != DZC_OK) return rc;
        }
        continue;
      }
      if (state_ == kTrailer) {
        if (have < kTrailSize) break;
        if (std::memcmp(p + 12, kTrailMagic, 4) != 0 || load_le64(p) != index_off_ || load_le32(p + 8) != index_len_)
          return fail(set_error(DZC_E_CORRUPT, "bad container trailer"));
        pos_ += kTrailSize;
        offset_ += kTrailSize;
        state_ = kDone;
        continue;
      }
      break;  // kDone: more bytes are reported by write/finish
    }
    if (state_ == kDone && buf_.size() > pos_)
      return fail(set_error(DZC_E_CORRUPT, "trailing bytes after the end of the container"));
    // Drop what was parsed.
    if (pos_ > 0 && (pos_ == buf_.size() || pos_ > (1u << 20))) {
      buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
      pos_ = 0;
    }
    (void)at_end;
    return DZC_OK;
  }

  // Decodes the frames collected so far (in parallel) and queues their bytes in order.
  int flush() {
    if (batch_.empty()) return DZC_OK;
    std::vector<Result<std::vector<uint8_t>>> outs(batch_.size(), Result<std::vector<uint8_t>>(std::vector<uint8_t>{}));
    parallel_for(batch_.size(), workers_, [&](size_t i) {
      try {
        outs[i] = decode_frame(batch_[i], s_.dec, do_);
      } catch (const std::bad_alloc&) {
        outs[i] = Status::Error(ErrorCode::kInternal, "out of memory");
      } catch (...) {
        outs[i] = Status::Error(ErrorCode::kInternal, "exception while decoding a frame");
      }
    });
    const size_t first = seen_.size() - batch_.size();
    for (size_t i = 0; i < outs.size(); ++i) {
      if (!outs[i].ok()) return fail(from_status(outs[i].status(), "frame " + std::to_string(first + i)));
      out_.append(outs[i]->data(), outs[i]->size());
    }
    batch_.clear();
    batch_raw_ = 0;
    return DZC_OK;
  }

  int fail(int rc) {
    error_ = true;
    error_msg_ = tl_error;
    return rc;
  }

  Settings s_;
  unsigned workers_;
  DecodeOptions do_;
  State state_ = kStart;
  bool legacy_ = false, finished_ = false, error_ = false;
  std::string error_msg_;
  uint32_t chunk_ = kDefaultChunk;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;
  uint64_t offset_ = 0, index_off_ = 0, index_len_ = 0;
  std::vector<std::vector<uint8_t>> batch_;
  uint64_t batch_raw_ = 0;
  std::vector<IndexEntry> seen_;
  ByteQueue out_;
};

}  // namespace

struct dzc_ctx {
  Settings s;
};
struct dzc_encoder {
  Encoder e;
};
struct dzc_decoder {
  Decoder d;
};
struct dzc_reader {
  Settings s;
  int fd = -1;
  uint64_t size = 0;
  std::vector<IndexEntry> index;
  std::vector<uint64_t> frame_off, raw_off;  // per frame: file offset, raw offset
  long cached = -1;
  std::vector<uint8_t> cache;
  ~dzc_reader() {
    if (fd >= 0) ::close(fd);
  }
};

#define DZC_CHECK_ARG(cond, what) \
  if (!(cond)) return set_error(DZC_E_INVALID_ARGUMENT, what)

extern "C" {

DZC_API unsigned dzc_version_number(void) { return DZC_VERSION_NUMBER; }
DZC_API const char* dzc_version_string(void) { return DZC_VERSION_STRING; }
DZC_API unsigned dzc_container_version(void) { return kContainerVersion; }
DZC_API unsigned dzc_frame_version_max(void) { return kFrameVersionMax; }

DZC_API const char* dzc_error_name(int code) {
  switch (code) {
    case DZC_OK: return "ok";
    case DZC_E_INVALID_ARGUMENT: return "invalid argument";
    case DZC_E_CORRUPT: return "corrupt input";
    case DZC_E_CHECKSUM: return "checksum mismatch";
    case DZC_E_MODEL_MISMATCH: return "model not available";
    case DZC_E_UNSUPPORTED: return "unsupported version";
    case DZC_E_TOO_LARGE: return "size above a limit";
    case DZC_E_IO: return "I/O error";
    case DZC_E_NO_MEMORY: return "out of memory";
    case DZC_E_DST_TOO_SMALL: return "destination buffer too small";
    case DZC_E_STATE: return "call out of order";
    case DZC_E_INTERNAL: return "internal error";
  }
  return "unknown error code";
}

DZC_API const char* dzc_last_error(void) { return tl_error.c_str(); }

DZC_API int dzc_model_load_file(const char* path, dzc_model** out) {
  return guarded([&] {
    DZC_CHECK_ARG(path && out, "dzc_model_load_file: NULL argument");
    *out = nullptr;
    auto m = Model::load_file(path);
    if (!m.ok()) return from_status(m.status(), std::string(path));
    *out = new dzc_model{*m};
    return DZC_OK;
  });
}

DZC_API int dzc_model_load_memory(const void* data, size_t size, dzc_model** out) {
  return guarded([&] {
    DZC_CHECK_ARG(out && (data || size == 0), "dzc_model_load_memory: NULL argument");
    *out = nullptr;
    auto m = Model::load(std::span<const uint8_t>(static_cast<const uint8_t*>(data), size));
    if (!m.ok()) return from_status(m.status(), "model");
    *out = new dzc_model{*m};
    return DZC_OK;
  });
}

DZC_API unsigned dzc_embedded_model_count(void) {
  try {
    return static_cast<unsigned>(embedded().models.size());
  } catch (...) {
    return 0;
  }
}

DZC_API int dzc_model_embedded(unsigned index, dzc_model** out) {
  return guarded([&] {
    DZC_CHECK_ARG(out, "dzc_model_embedded: NULL argument");
    *out = nullptr;
    const auto& e = embedded();
    if (!e.status.ok()) return from_status(e.status, "embedded models");
    if (index >= e.models.size())
      return set_error(DZC_E_INVALID_ARGUMENT, "no embedded model " + std::to_string(index) + " (there are " +
                                                   std::to_string(e.models.size()) + ")");
    *out = new dzc_model{e.models[index]};
    return DZC_OK;
  });
}

DZC_API void dzc_model_free(dzc_model* model) { delete model; }

DZC_API void dzc_model_id(const dzc_model* model, char hex_out[33]) {
  if (!hex_out) return;
  std::string h;
  try {
    h = model && model->m ? model->m->id().hex() : std::string(32, '0');
  } catch (...) {
    h = std::string(32, '0');
  }
  std::memcpy(hex_out, h.data(), std::min<size_t>(32, h.size()));
  hex_out[32] = 0;
}

DZC_API dzc_ctx* dzc_ctx_new(void) {
  try {
    auto c = std::make_unique<dzc_ctx>();
    const auto& e = embedded();
    if (!e.status.ok()) {
      from_status(e.status, "embedded models");
      return nullptr;
    }
    if (!e.models.empty()) c->s.enc = e.models[0];
    for (auto& m : e.models) c->s.dec.add(m);
    return c.release();
  } catch (...) {
    set_error(DZC_E_NO_MEMORY, "out of memory");
    return nullptr;
  }
}

DZC_API void dzc_ctx_free(dzc_ctx* ctx) { delete ctx; }

DZC_API int dzc_ctx_set_param(dzc_ctx* ctx, int param, long long v) {
  return guarded([&] {
    DZC_CHECK_ARG(ctx, "dzc_ctx_set_param: NULL context");
    auto range = [&](long long lo, long long hi, const char* name) {
      if (v < lo || v > hi)
        return set_error(DZC_E_INVALID_ARGUMENT, std::string(name) + " must be in " + std::to_string(lo) + ".." + std::to_string(hi) +
                                                     ", not " + std::to_string(v));
      return DZC_OK;
    };
    int rc;
    switch (param) {
      case DZC_P_THREADS:
        if ((rc = range(0, 256, "threads")) == DZC_OK) ctx->s.threads = static_cast<unsigned>(v);
        return rc;
      case DZC_P_CHUNK_SIZE:
        if ((rc = range(kMinChunk, kMaxFrameRawLen, "chunk size")) == DZC_OK) ctx->s.chunk = static_cast<uint32_t>(v);
        return rc;
      case DZC_P_ZSTD_LEVEL:
        if ((rc = range(1, ZSTD_maxCLevel(), "zstd level")) == DZC_OK) ctx->s.level = static_cast<int>(v);
        return rc;
      case DZC_P_CODEC:
        if ((rc = range(DZC_CODEC_AUTO, DZC_CODEC_NEURAL, "codec")) == DZC_OK) ctx->s.codec = static_cast<int>(v);
        return rc;
      case DZC_P_ISA:
        if ((rc = range(DZC_ISA_AUTO, DZC_ISA_AVX512VNNI, "isa")) == DZC_OK) ctx->s.isa = static_cast<int>(v);
        return rc;
      case DZC_P_MAX_CHUNK:
        if ((rc = range(1, kMaxFrameRawLen, "max chunk")) == DZC_OK) ctx->s.max_chunk = static_cast<uint32_t>(v);
        return rc;
    }
    return set_error(DZC_E_INVALID_ARGUMENT, "unknown parameter " + std::to_string(param));
  });
}

DZC_API int dzc_ctx_get_param(const dzc_ctx* ctx, int param, long long* v) {
  return guarded([&] {
    DZC_CHECK_ARG(ctx && v, "dzc_ctx_get_param: NULL argument");
    switch (param) {
      case DZC_P_THREADS: *v = ctx->s.threads; return DZC_OK;
      case DZC_P_CHUNK_SIZE: *v = ctx->s.chunk; return DZC_OK;
      case DZC_P_ZSTD_LEVEL: *v = ctx->s.level; return DZC_OK;
      case DZC_P_CODEC: *v = ctx->s.codec; return DZC_OK;
      case DZC_P_ISA: *v = ctx->s.isa; return DZC_OK;
      case DZC_P_MAX_CHUNK: *v = ctx->s.max_chunk; return DZC_OK;
    }
    return set_error(DZC_E_INVALID_ARGUMENT, "unknown parameter " + std::to_string(param));
  });
}

DZC_API int dzc_ctx_set_model(dzc_ctx* ctx, const dzc_model* model) {
  return guarded([&] {
    DZC_CHECK_ARG(ctx, "dzc_ctx_set_model: NULL context");
    ctx->s.enc = model ? model->m : nullptr;
    if (model && model->m && !ctx->s.dec.find(model->m->id())) ctx->s.dec.add(model->m);
    return DZC_OK;
  });
}

DZC_API int dzc_ctx_add_model(dzc_ctx* ctx, const dzc_model* model) {
  return guarded([&] {
    DZC_CHECK_ARG(ctx && model && model->m, "dzc_ctx_add_model: NULL argument");
    if (!ctx->s.dec.find(model->m->id())) ctx->s.dec.add(model->m);
    return DZC_OK;
  });
}

DZC_API size_t dzc_compress_bound(size_t src_size, size_t chunk_size) {
  if (chunk_size == 0) chunk_size = kDefaultChunk;
  if (chunk_size > kMaxFrameRawLen) return 0;
  const size_t chunks = src_size / chunk_size + (src_size % chunk_size != 0);
  // Worst frame: a zstd frame (never chosen above the raw frame by AUTO, but forced ZSTD may be).
  const size_t per_frame_extra = kFrameHeaderSize + (ZSTD_compressBound(chunk_size) - chunk_size) + 8 /* index entry */;
  const size_t fixed = kHeadSize + kIndexFixed + kTrailSize;
  if (chunks > (SIZE_MAX - fixed - src_size) / per_frame_extra) return 0;
  return src_size + chunks * per_frame_extra + fixed;
}

DZC_API int dzc_compress(dzc_ctx* ctx, void* dst, size_t cap, size_t* dst_size, const void* src, size_t n) {
  return guarded([&] {
    DZC_CHECK_ARG(ctx && dst_size && (dst || cap == 0) && (src || n == 0), "dzc_compress: NULL argument");
    *dst_size = 0;
    Encoder e(ctx->s);
    const uint8_t* p = static_cast<const uint8_t*>(src);
    uint8_t* d = static_cast<uint8_t*>(dst);
    size_t done = 0, w = 0;
    auto drain = [&] {
      const size_t pend = e.pending();
      if (pend > cap - w)
        return set_error(DZC_E_DST_TOO_SMALL, "dzc_compress: output does not fit in " + std::to_string(cap) + " bytes");
      w += e.read(d + w, pend);
      return DZC_OK;
    };
    while (done < n) {
      size_t used = 0;
      if (int rc = e.write(p + done, n - done, &used); rc != DZC_OK) return rc;
      done += used;
      if (int rc = drain(); rc != DZC_OK) return rc;
    }
    if (int rc = e.finish(); rc != DZC_OK) return rc;
    if (int rc = drain(); rc != DZC_OK) return rc;
    *dst_size = w;
    return DZC_OK;
  });
}

DZC_API int dzc_decompressed_size(const void* src, size_t n, uint64_t* size) {
  return guarded([&] {
    DZC_CHECK_ARG((src || n == 0) && size, "dzc_decompressed_size: NULL argument");
    *size = 0;
    const uint8_t* p = static_cast<const uint8_t*>(src);
    if (n == 0) return DZC_OK;
    if (n >= 4 && std::memcmp(p, kFrameMagicBytes, 4) == 0) {  // legacy: walk the frame headers
      uint64_t total = 0;
      for (size_t off = 0; off < n;) {
        auto h = peek_frame_header(std::span<const uint8_t>(p + off, n - off));
        if (!h.ok()) return from_status(h.status(), "at offset " + std::to_string(off));
        if (h->frame_len() > n - off) return set_error(DZC_E_CORRUPT, "truncated last frame");
        total += h->raw_len;
        off += h->frame_len();
      }
      *size = total;
      return DZC_OK;
    }
    std::vector<IndexEntry> e;
    uint64_t total = 0;
    if (int rc = from_status(parse_container_index(p, n, kMaxFrameRawLen, &e, &total)); rc != DZC_OK) return rc;
    *size = total;
    return DZC_OK;
  });
}

DZC_API int dzc_decompress(dzc_ctx* ctx, void* dst, size_t cap, size_t* dst_size, const void* src, size_t n) {
  return guarded([&] {
    DZC_CHECK_ARG(ctx && dst_size && (dst || cap == 0) && (src || n == 0), "dzc_decompress: NULL argument");
    *dst_size = 0;
    const uint8_t* p = static_cast<const uint8_t*>(src);
    // The index gives the size before anything is decoded (legacy input: the frame headers).
    uint64_t declared = 0;
    if (int rc = dzc_decompressed_size(src, n, &declared); rc != DZC_OK) return rc;
    if (declared > cap)
      return set_error(DZC_E_DST_TOO_SMALL, "dzc_decompress: " + std::to_string(declared) + " bytes do not fit in " +
                                                std::to_string(cap));
    Decoder d(ctx->s);
    uint8_t* o = static_cast<uint8_t*>(dst);
    size_t done = 0, w = 0;
    auto drain = [&] {
      const size_t pend = d.pending();
      if (pend > cap - w) return set_error(DZC_E_DST_TOO_SMALL, "dzc_decompress: output larger than declared");
      w += d.read(o + w, pend);
      return DZC_OK;
    };
    while (done < n) {
      size_t used = 0;
      if (int rc = d.write(p + done, n - done, &used); rc != DZC_OK) return rc;
      done += used;
      if (int rc = drain(); rc != DZC_OK) return rc;
      if (used == 0 && d.done()) return set_error(DZC_E_CORRUPT, "trailing bytes after the end of the container");
    }
    if (int rc = d.finish(); rc != DZC_OK) return rc;
    if (int rc = drain(); rc != DZC_OK) return rc;
    if (w != declared) return set_error(DZC_E_CORRUPT, "decoded size differs from the declared size");
    *dst_size = w;
    return DZC_OK;
  });
}

DZC_API int dzc_encoder_new(const dzc_ctx* ctx, dzc_encoder** out) {
  return guarded([&] {
    DZC_CHECK_ARG(ctx && out, "dzc_encoder_new: NULL argument");
    *out = new dzc_encoder{Encoder(ctx->s)};
    return DZC_OK;
  });
}
DZC_API int dzc_encoder_write(dzc_encoder* enc, const void* src, size_t n, size_t* consumed) {
  return guarded([&] {
    DZC_CHECK_ARG(enc && consumed && (src || n == 0), "dzc_encoder_write: NULL argument");
    return enc->e.write(static_cast<const uint8_t*>(src), n, consumed);
  });
}
DZC_API int dzc_encoder_finish(dzc_encoder* enc) {
  return guarded([&] {
    DZC_CHECK_ARG(enc, "dzc_encoder_finish: NULL encoder");
    return enc->e.finish();
  });
}
DZC_API int dzc_encoder_read(dzc_encoder* enc, void* dst, size_t cap, size_t* got) {
  return guarded([&] {
    DZC_CHECK_ARG(enc && got && (dst || cap == 0), "dzc_encoder_read: NULL argument");
    *got = enc->e.read(static_cast<uint8_t*>(dst), cap);
    return DZC_OK;
  });
}
DZC_API size_t dzc_encoder_pending(const dzc_encoder* enc) { return enc ? enc->e.pending() : 0; }
DZC_API void dzc_encoder_free(dzc_encoder* enc) { delete enc; }

DZC_API int dzc_decoder_new(const dzc_ctx* ctx, dzc_decoder** out) {
  return guarded([&] {
    DZC_CHECK_ARG(ctx && out, "dzc_decoder_new: NULL argument");
    *out = new dzc_decoder{Decoder(ctx->s)};
    return DZC_OK;
  });
}
DZC_API int dzc_decoder_write(dzc_decoder* dec, const void* src, size_t n, size_t* consumed) {
  return guarded([&] {
    DZC_CHECK_ARG(dec && consumed && (src || n == 0), "dzc_decoder_write: NULL argument");
    return dec->d.write(static_cast<const uint8_t*>(src), n, consumed);
  });
}
DZC_API int dzc_decoder_finish(dzc_decoder* dec) {
  return guarded([&] {
    DZC_CHECK_ARG(dec, "dzc_decoder_finish: NULL decoder");
    return dec->d.finish();
  });
}
DZC_API int dzc_decoder_read(dzc_decoder* dec, void* dst, size_t cap, size_t* got) {
  return guarded([&] {
    DZC_CHECK_ARG(dec && got && (dst || cap == 0), "dzc_decoder_read: NULL argument");
    *got = dec->d.read(static_cast<uint8_t*>(dst), cap);
    return DZC_OK;
  });
}
DZC_API size_t dzc_decoder_pending(const dzc_decoder* dec) { return dec ? dec->d.pending() : 0; }
DZC_API int dzc_decoder_done(const dzc_decoder* dec) { return dec && dec->d.done() ? 1 : 0; }
DZC_API void dzc_decoder_free(dzc_decoder* dec) { delete dec; }

namespace {
Status pread_all(int fd, uint8_t* p, size_t n, uint64_t off) {
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::Error(ErrorCode::kIo, std::string("read: ") + std::strerror(errno));
    if (r == 0) return Status::Error(ErrorCode::kCorrupt, "file shorter than its index says");
    p += r;
    n -= static_cast<size_t>(r);
    off += static_cast<uint64_t>(r);
  }
  return Status::Ok();
}
}  // namespace

DZC_API int dzc_reader_open(const dzc_ctx* ctx, const char* path, dzc_reader** out) {
  return guarded([&] {
    DZC_CHECK_ARG(ctx && path && out, "dzc_reader_open: NULL argument");
    *out = nullptr;
    auto r = std::make_unique<dzc_reader>();
    r->s = ctx->s;
    r->fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) return set_error(DZC_E_IO, std::string(path) + ": " + std::strerror(errno));
    const off_t end = ::lseek(r->fd, 0, SEEK_END);
    if (end < 0) return set_error(DZC_E_IO, std::string(path) + ": " + std::strerror(errno));
    const uint64_t n = static_cast<uint64_t>(end);
    uint8_t head[kHeadSize], trail[kTrailSize];
    if (n >= 4) {
      if (auto s = pread_all(r->fd, head, 4, 0); !s.ok()) return from_status(s, path);
      if (std::memcmp(head, kFrameMagicBytes, 4) == 0)
        return set_error(DZC_E_UNSUPPORTED, std::string(path) + ": a legacy .dzc without an index (decode it as a stream)");
    }
    if (n < kHeadSize + kIndexFixed + kTrailSize) return set_error(DZC_E_CORRUPT, std::string(path) + ": truncated container");
    if (auto s = pread_all(r->fd, head, kHeadSize, 0); !s.ok()) return from_status(s, path);
    uint32_t chunk = 0;
    if (auto s = parse_head(head, ctx->s.max_chunk, &chunk); !s.ok()) return from_status(s, path);
    if (auto s = pread_all(r->fd, trail, kTrailSize, n - kTrailSize); !s.ok()) return from_status(s, path);
    if (std::memcmp(trail + 12, kTrailMagic, 4) != 0) return set_error(DZC_E_CORRUPT, std::string(path) + ": truncated container (no trailer)");
    const uint64_t off = load_le64(trail), len = load_le32(trail + 8);
    if (off < kHeadSize || off > n - kTrailSize || len != n - kTrailSize - off)
      return set_error(DZC_E_CORRUPT, std::string(path) + ": trailer does not locate the index");
    std::vector<uint8_t> idx(len);
    if (auto s = pread_all(r->fd, idx.data(), len, off); !s.ok()) return from_status(s, path);
    uint64_t total = 0;
    if (auto s = parse_index_block(idx.data(), idx.size(), &r->index, &total); !s.ok()) return from_status(s, path);
    uint64_t fo = kHeadSize, ro = 0;
    for (auto& e : r->index) {
      if (e.raw_len > chunk || e.raw_len == 0 || e.frame_len < kFrameHeaderSize)
        return set_error(DZC_E_CORRUPT, std::string(path) + ": bad index entry");
      r->frame_off.push_back(fo);
      r->raw_off.push_back(ro);
      fo += e.frame_len;
      ro += e.raw_len;
    }
    if (fo != off) return set_error(DZC_E_CORRUPT, std::string(path) + ": index does not match the frames");
    r->size = total;
    *out = r.release();
    return DZC_OK;
  });
}

DZC_API uint64_t dzc_reader_size(const dzc_reader* r) { return r ? r->size : 0; }

DZC_API int dzc_reader_pread(dzc_reader* r, void* dst, size_t n, uint64_t offset, size_t* got) {
  return guarded([&] {
    DZC_CHECK_ARG(r && got && (dst || n == 0), "dzc_reader_pread: NULL argument");
    *got = 0;
    uint8_t* d = static_cast<uint8_t*>(dst);
    DecodeOptions dopt;
    dopt.max_raw_len = r->s.max_chunk;
    dopt.isa = r->s.isa_enum();
    while (*got < n && offset < r->size) {
      // The frame holding `offset`: the last whose raw start is <= offset.
      const size_t i = static_cast<size_t>(std::upper_bound(r->raw_off.begin(), r->raw_off.end(), offset) - r->raw_off.begin()) - 1;
      if (r->cached != static_cast<long>(i)) {
        r->cached = -1;
        std::vector<uint8_t> f(r->index[i].frame_len);
        if (auto s = pread_all(r->fd, f.data(), f.size(), r->frame_off[i]); !s.ok()) return from_status(s, "frame " + std::to_string(i));
        auto out = decode_frame(f, r->s.dec, dopt);
        if (!out.ok()) return from_status(out.status(), "frame " + std::to_string(i));
        if (out->size() != r->index[i].raw_len) return set_error(DZC_E_CORRUPT, "frame " + std::to_string(i) + " size differs from the index");
        r->cache = std::move(*out);
        r->cached = static_cast<long>(i);
      }
      const uint64_t in_frame = offset - r->raw_off[i];
      const size_t k = static_cast<size_t>(std::min<uint64_t>(n - *got, r->cache.size() - in_frame));
      std::memcpy(d + *got, r->cache.data() + in_frame, k);
      *got += k;
      offset += k;
    }
    return DZC_OK;
  });
}

DZC_API void dzc_reader_free(dzc_reader* r) { delete r; }

}  // extern "C"
