// dzfs codec: self-describing frames (one chunk each). Format: codec/FORMAT.md "Frame".
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "codec/isa.h"
#include "codec/model.h"
#include "codec/status.h"

namespace dzfs::codec {

enum class CodecId : uint8_t { kRaw = 0, kZstd = 1, kNeural = 2 };
const char* codec_name(CodecId id);

// Frame versions 1, 2 and 3 share the layout; they differ only in the neural payload's predictor
// (FORMAT.md 2). Neural frames are written as kFrameVersion (4) unless EncodeOptions asks for an
// older one; raw and zstd frames are written as version 1 (unchanged bytes). All versions decode.
inline constexpr uint8_t kFrameVersion = 4;
inline constexpr uint8_t kGroupFrameVersion = 6;  // solid groups: many chunks, one stream (5 decodes)
inline constexpr uint8_t kFrameVersionMax = 6;
inline constexpr uint8_t kFrameVersionMin = 1;
inline constexpr size_t kFrameHeaderSize = 28;        // raw, zstd
inline constexpr size_t kNeuralFrameHeaderSize = 44;  // + 16-byte model id
inline constexpr uint32_t kMaxFrameRawLen = 64u << 20;  // format limit (callers may set lower)

struct FrameHeader {
  uint8_t version = kFrameVersion;
  CodecId codec = CodecId::kRaw;
  uint32_t raw_len = 0;
  uint32_t payload_len = 0;
  uint64_t raw_xxh64 = 0;   // XXH3-64 (seed 0) of the raw bytes
  ModelId model_id;         // neural only; all-zero = no network
  size_t header_len = 0;    // bytes of header
  size_t frame_len() const { return header_len + payload_len; }
};

// Models available to the decoder, looked up by id.
class ModelSet {
 public:
  void add(std::shared_ptr<const Model> m);
  const Model* find(const ModelId& id) const;
  std::shared_ptr<const Model> get(const ModelId& id) const;
  size_t size() const { return models_.size(); }

 private:
  std::vector<std::shared_ptr<const Model>> models_;
};

struct EncodeOptions {
  int zstd_level = 3;      // level of the zstd candidate (and of kZstd frames)
  bool try_neural = true;  // choose_and_encode: also try the neural codec
  Isa isa = Isa::kAuto;
  uint8_t frame_version = kFrameVersion;  // of neural frames: 1..4 (older = legacy predictors)
};

struct DecodeOptions {
  uint32_t max_raw_len = kMaxFrameRawLen;  // refuse frames declaring more (decompression bombs)
  Isa isa = Isa::kAuto;
};

// Parses and checks the header at the start of `bytes` (which may hold more than one frame).
// Checks magic, version, codec id, reserved fields, header check word, size limits.
Result<FrameHeader> peek_frame_header(std::span<const uint8_t> bytes);

// Encodes raw with exactly this codec. For kNeural, model may be null (adaptive parts only).
Result<std::vector<uint8_t>> encode_frame(CodecId codec, std::span<const uint8_t> raw, const Model* model,
                                          const EncodeOptions& opts = {});

// Fallback policy: neural only if its frame is smaller than the zstd frame; zstd only if smaller
// than the raw frame; raw otherwise. model may be null (see EncodeOptions::try_neural).
Result<std::vector<uint8_t>> choose_and_encode(std::span<const uint8_t> raw, const Model* model,
                                               const EncodeOptions& opts = {});

// Decodes one whole frame (frame.size() must equal the frame length) and verifies the raw
// checksum. Any damage gives an error, never wrong output.
Result<std::vector<uint8_t>> decode_frame(std::span<const uint8_t> frame, const ModelSet& models,
                                          const DecodeOptions& opts = {});

namespace detail { class NeuralStream; }

// Decodes one frame progressively: read_to(end) makes raw bytes [0, end) available, resuming
// where the last call stopped, so the early chunks of a solid group cost only their prefix and
// a sequential reader decodes the group once. The raw checksum is verified when the last byte is
// decoded (callers verify each chunk's own hash before that). Errors are sticky; decoded() still
// counts what was decoded before one, unverified. Not thread-safe.
class FrameReader {
 public:
  // Checks the frame like decode_frame (exactly one frame, header, limits, model); decodes nothing.
  static Result<std::unique_ptr<FrameReader>> open(std::vector<uint8_t> frame, const ModelSet& models,
                                                  const DecodeOptions& opts = {});
  ~FrameReader();
  const FrameHeader& header() const { return h_; }
  Status read_to(uint32_t end);
  uint32_t decoded() const { return decoded_; }
  std::span<const uint8_t> raw() const { return {out_.data(), decoded_}; }
  bool done() const { return decoded_ == h_.raw_len; }
  // Memory held now: the frame, the raw buffer and, while decoding, the predictor's tables.
  size_t memory() const;

 private:
  FrameReader() = default;
  FrameHeader h_;
  std::vector<uint8_t> frame_, out_;
  std::shared_ptr<const Model> keep_;
  const Model* model_ = nullptr;
  Isa isa_ = Isa::kAuto;
  std::unique_ptr<detail::NeuralStream> stream_;
  uint32_t decoded_ = 0;
  Status error_ = Status::Ok();
};

}  // namespace dzfs::codec
