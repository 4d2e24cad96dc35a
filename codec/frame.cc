#include "codec/frame.h"

#include <xxhash.h>
#include <zstd.h>

#include <cstring>
#include <new>

#include "codec/neural.h"
#include "codec/util.h"

namespace dzfs::codec {
namespace {

constexpr uint8_t kFrameMagic[4] = {'D', 'Z', 'C', 'F'};

uint64_t raw_hash(std::span<const uint8_t> raw) { return XXH3_64bits(raw.data(), raw.size()); }

uint32_t header_check(const uint8_t* h, size_t n) { return static_cast<uint32_t>(XXH3_64bits(h, n)); }

void put_header(std::vector<uint8_t>* out, CodecId codec, std::span<const uint8_t> raw, uint32_t payload_len,
                const ModelId* model_id, uint8_t version) {
  const size_t hl = codec == CodecId::kNeural ? kNeuralFrameHeaderSize : kFrameHeaderSize;
  out->resize(hl);
  uint8_t* h = out->data();
  std::memcpy(h, kFrameMagic, 4);
  h[4] = codec == CodecId::kNeural ? version : 1;
  h[5] = static_cast<uint8_t>(codec);
  h[6] = 0;
  h[7] = static_cast<uint8_t>(hl);
  store_le32(h + 8, static_cast<uint32_t>(raw.size()));
  store_le32(h + 12, payload_len);
  store_le64(h + 16, raw_hash(raw));
  if (codec == CodecId::kNeural) std::memcpy(h + 24, model_id->bytes.data(), 16);
  store_le32(h + hl - 4, header_check(h, hl - 4));
}

struct ZstdCtx {
  ZSTD_CCtx* c = nullptr;
  ZSTD_DCtx* d = nullptr;
  ~ZstdCtx() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};
thread_local ZstdCtx tl_zstd;

Result<std::vector<uint8_t>> zstd_payload(std::span<const uint8_t> raw, int level) {
  if (!tl_zstd.c) tl_zstd.c = ZSTD_createCCtx();
  if (!tl_zstd.c) return Status::Error(ErrorCode::kInternal, "zstd: cannot create context");
  std::vector<uint8_t> out(ZSTD_compressBound(raw.size()));
  const size_t n = ZSTD_compressCCtx(tl_zstd.c, out.data(), out.size(), raw.data(), raw.size(), level);
  if (ZSTD_isError(n)) return Status::Error(ErrorCode::kInternal, std::string("zstd: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

Result<std::vector<uint8_t>> assemble(CodecId codec, std::span<const uint8_t> raw, std::span<const uint8_t> payload,
                                      const ModelId* id, uint8_t version = 1) {
  std::vector<uint8_t> f;
  put_header(&f, codec, raw, static_cast<uint32_t>(payload.size()), id, version);
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

bool neural_version_ok(const EncodeOptions& o) {
  return o.frame_version >= kFrameVersionMin && o.frame_version <= kFrameVersionMax;
}
Status bad_version(const EncodeOptions& o) {
  return Status::Error(ErrorCode::kInvalidArgument,
                       "encode: unsupported frame version " + std::to_string(o.frame_version));
}

}  // namespace

const char* codec_name(CodecId id) {
  switch (id) {
    case CodecId::kRaw: return "raw";
    case CodecId::kZstd: return "zstd";
    case CodecId::kNeural: return "neural";
  }
  return "?";
}

void ModelSet::add(std::shared_ptr<const Model> m) {
  if (m && !find(m->id())) models_.push_back(std::move(m));
}

const Model* ModelSet::find(const ModelId& id) const { return get(id).get(); }

std::shared_ptr<const Model> ModelSet::get(const ModelId& id) const {
  for (auto& m : models_)
    if (m->id() == id) return m;
  return nullptr;
}

Result<FrameHeader> peek_frame_header(std::span<const uint8_t> b) {
  auto bad = [](std::string m) { return Status::Error(ErrorCode::kCorrupt, "frame: " + m); };
  if (b.size() < kFrameHeaderSize) return bad("truncated header");
  if (std::memcmp(b.data(), kFrameMagic, 4) != 0) return bad("bad magic");
  FrameHeader h;
  h.version = b[4];
  if (h.version < kFrameVersionMin || h.version > kFrameVersionMax)
    return Status::Error(ErrorCode::kUnsupported, "frame: unsupported version " + std::to_string(h.version));
  if (b[5] > static_cast<uint8_t>(CodecId::kNeural))
    return Status::Error(ErrorCode::kUnsupported, "frame: unknown codec id " + std::to_string(b[5]));
  h.codec = static_cast<CodecId>(b[5]);
  if (b[6] != 0) return bad("reserved flags set");
  h.header_len = h.codec == CodecId::kNeural ? kNeuralFrameHeaderSize : kFrameHeaderSize;
  if (b[7] != h.header_len) return bad("header length does not match codec");
  if (b.size() < h.header_len) return bad("truncated header");
  if (load_le32(b.data() + h.header_len - 4) != header_check(b.data(), h.header_len - 4))
    return bad("header check mismatch");
  h.raw_len = load_le32(b.data() + 8);
  h.payload_len = load_le32(b.data() + 12);
  h.raw_xxh64 = load_le64(b.data() + 16);
  if (h.codec == CodecId::kNeural) std::memcpy(h.model_id.bytes.data(), b.data() + 24, 16);
  if (h.raw_len > kMaxFrameRawLen) return Status::Error(ErrorCode::kTooLarge, "frame: raw length above format limit");
  if (h.codec == CodecId::kRaw && h.payload_len != h.raw_len) return bad("raw frame payload length != raw length");
  if (h.codec != CodecId::kRaw && h.raw_len == 0) return bad("empty chunk must be a raw frame");
  if (h.codec == CodecId::kNeural && h.payload_len < 4) return bad("neural payload shorter than 4 bytes");
  if (h.payload_len > ZSTD_compressBound(kMaxFrameRawLen)) return bad("payload length implausible");
  return h;
}

Result<std::vector<uint8_t>> encode_frame(CodecId codec, std::span<const uint8_t> raw, const Model* model,
                                          const EncodeOptions& opts) {
  if (raw.size() > kMaxFrameRawLen)
    return Status::Error(ErrorCode::kTooLarge, "encode: chunk larger than " + std::to_string(kMaxFrameRawLen));
  try {
    switch (codec) {
      case CodecId::kRaw: return assemble(codec, raw, raw, nullptr);
      case CodecId::kZstd: {
        if (raw.empty()) return Status::Error(ErrorCode::kInvalidArgument, "encode: empty chunk must be raw");
        auto z = zstd_payload(raw, opts.zstd_level);
        if (!z.ok()) return z.status();
        return assemble(codec, raw, *z, nullptr);
      }
      case CodecId::kNeural: {
        if (raw.empty()) return Status::Error(ErrorCode::kInvalidArgument, "encode: empty chunk must be raw");
        if (!neural_version_ok(opts)) return bad_version(opts);
        std::vector<uint8_t> p;
        auto r = detail::neural_encode(raw, model, opts.isa, SIZE_MAX, &p, nullptr, opts.frame_version);
        if (!r.ok()) return r.status();
        ModelId id = model ? model->id() : ModelId{};
        return assemble(codec, raw, p, &id, opts.frame_version);
      }
    }
  } catch (const std::bad_alloc&) {
    return Status::Error(ErrorCode::kInternal, "encode: out of memory");
  }
  return Status::Error(ErrorCode::kInvalidArgument, "encode: unknown codec id");
}

Result<std::vector<uint8_t>> choose_and_encode(std::span<const uint8_t> raw, const Model* model,
                                               const EncodeOptions& opts) {
  if (raw.size() > kMaxFrameRawLen)
    return Status::Error(ErrorCode::kTooLarge, "encode: chunk larger than " + std::to_string(kMaxFrameRawLen));
  if (raw.empty()) return encode_frame(CodecId::kRaw, raw, nullptr, opts);
  try {
    auto z = zstd_payload(raw, opts.zstd_level);
    if (!z.ok()) return z.status();
    // Best so far, as a total frame size.
    CodecId best = CodecId::kRaw;
    size_t best_size = kFrameHeaderSize + raw.size();
    if (kFrameHeaderSize + z->size() < best_size) {
      best = CodecId::kZstd;
      best_size = kFrameHeaderSize + z->size();
    }
    if (opts.try_neural && !neural_version_ok(opts)) return bad_version(opts);
    if (opts.try_neural && best_size > kNeuralFrameHeaderSize + 4) {
      // Neural wins only if strictly smaller: payload budget = best - header - 1.
      const size_t budget = best_size - kNeuralFrameHeaderSize - 1;
      std::vector<uint8_t> p;
      auto r = detail::neural_encode(raw, model, opts.isa, budget, &p, nullptr, opts.frame_version);
      if (!r.ok()) return r.status();
      if (*r) {
        ModelId id = model ? model->id() : ModelId{};
        return assemble(CodecId::kNeural, raw, p, &id, opts.frame_version);
      }
    }
    if (best == CodecId::kZstd) return assemble(CodecId::kZstd, raw, *z, nullptr);
    return assemble(CodecId::kRaw, raw, raw, nullptr);
  } catch (const std::bad_alloc&) {
    return Status::Error(ErrorCode::kInternal, "encode: out of memory");
  }
}

Result<std::vector<uint8_t>> decode_frame(std::span<const uint8_t> frame, const ModelSet& models,
                                          const DecodeOptions& opts) {
  auto hr = peek_frame_header(frame);
  if (!hr.ok()) return hr.status();
  const FrameHeader& h = *hr;
  if (frame.size() < h.frame_len()) return Status::Error(ErrorCode::kCorrupt, "frame: truncated payload");
  if (frame.size() > h.frame_len()) return Status::Error(ErrorCode::kCorrupt, "frame: trailing bytes after payload");
  if (h.raw_len > opts.max_raw_len)
    return Status::Error(ErrorCode::kTooLarge, "frame: raw length " + std::to_string(h.raw_len) + " above caller limit");
  const std::span<const uint8_t> payload = frame.subspan(h.header_len, h.payload_len);
  try {
    std::vector<uint8_t> out;
    switch (h.codec) {
      case CodecId::kRaw: out.assign(payload.begin(), payload.end()); break;
      case CodecId::kZstd: {
        const unsigned long long fcs = ZSTD_getFrameContentSize(payload.data(), payload.size());
        if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != h.raw_len)
          return Status::Error(ErrorCode::kCorrupt, "frame: zstd content size does not match raw length");
        if (!tl_zstd.d) tl_zstd.d = ZSTD_createDCtx();
        if (!tl_zstd.d) return Status::Error(ErrorCode::kInternal, "zstd: cannot create context");
        out.resize(h.raw_len);
        const size_t n = ZSTD_decompressDCtx(tl_zstd.d, out.data(), out.size(), payload.data(), payload.size());
        if (ZSTD_isError(n)) return Status::Error(ErrorCode::kCorrupt, std::string("frame: zstd: ") + ZSTD_getErrorName(n));
        if (n != h.raw_len) return Status::Error(ErrorCode::kCorrupt, "frame: zstd output length mismatch");
        break;
      }
      case CodecId::kNeural: {
        const Model* m = nullptr;
        if (!h.model_id.is_null()) {
          m = models.find(h.model_id);
          if (!m) return Status::Error(ErrorCode::kModelMismatch, "frame: needs model " + h.model_id.hex() + ", not loaded");
        }
        DZC_RETURN_IF_ERROR(detail::neural_decode(payload, h.raw_len, m, opts.isa, &out, h.version));
        break;
      }
    }
    if (raw_hash(out) != h.raw_xxh64) return Status::Error(ErrorCode::kChecksumMismatch, "frame: raw checksum mismatch");
    return out;
  } catch (const std::bad_alloc&) {
    return Status::Error(ErrorCode::kInternal, "decode: out of memory");
  }
}

Result<std::unique_ptr<FrameReader>> FrameReader::open(std::vector<uint8_t> frame, const ModelSet& models,
                                                      const DecodeOptions& opts) {
  auto hr = peek_frame_header(frame);
  if (!hr.ok()) return hr.status();
  if (frame.size() < hr->frame_len()) return Status::Error(ErrorCode::kCorrupt, "frame: truncated payload");
  if (frame.size() > hr->frame_len()) return Status::Error(ErrorCode::kCorrupt, "frame: trailing bytes after payload");
  if (hr->raw_len > opts.max_raw_len)
    return Status::Error(ErrorCode::kTooLarge, "frame: raw length " + std::to_string(hr->raw_len) + " above caller limit");
  std::unique_ptr<FrameReader> r(new FrameReader);
  r->h_ = *hr;
  r->isa_ = opts.isa;
  if (hr->codec == CodecId::kNeural && !hr->model_id.is_null()) {
    r->keep_ = models.get(hr->model_id);
    if (!r->keep_) return Status::Error(ErrorCode::kModelMismatch, "frame: needs model " + hr->model_id.hex() + ", not loaded");
    r->model_ = r->keep_.get();
  }
  r->frame_ = std::move(frame);
  return r;
}

FrameReader::~FrameReader() = default;

Status FrameReader::read_to(uint32_t end) {
  if (!error_.ok()) return error_;
  end = std::min(end, h_.raw_len);
  if (end <= decoded_) return Status::Ok();
  try {
    if (h_.codec != CodecId::kNeural) {  // not progressive: all at once
      ModelSet none;
      auto all = decode_frame(frame_, none, DecodeOptions{h_.raw_len, isa_});
      if (!all.ok()) return error_ = all.status();
      out_ = std::move(*all);
      decoded_ = h_.raw_len;
      return Status::Ok();
    }
    if (!stream_) {
      out_.assign(h_.raw_len, 0);
      auto s = detail::make_neural_stream(std::span<const uint8_t>(frame_).subspan(h_.header_len, h_.payload_len),
                                          h_.raw_len, model_, isa_, out_.data(), h_.version);
      if (!s.ok()) return error_ = s.status();
      stream_ = std::move(*s);
    }
    Status s = stream_->decode_to(end);
    decoded_ = stream_->decoded();
    if (!s.ok()) return error_ = s;
    if (decoded_ == h_.raw_len) {
      stream_.reset();  // the predictor's tables go; the raw bytes stay
      if (raw_hash(out_) != h_.raw_xxh64)
        return error_ = Status::Error(ErrorCode::kChecksumMismatch, "frame: raw checksum mismatch");
    }
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return error_ = Status::Error(ErrorCode::kInternal, "decode: out of memory");
  }
}

size_t FrameReader::memory() const {
  return frame_.capacity() + out_.capacity() + (stream_ ? stream_->state_bytes() : 0);
}

}  // namespace dzfs::codec
