// Internal: the neural payload coder (context mixing + match model + network -> binary
// arithmetic coder). See codec/FORMAT.md "Neural payload" for the normative description.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "codec/isa.h"
#include "codec/model.h"
#include "codec/status.h"

namespace dzfs::codec::detail {

// Predictor versions = frame versions 1 to 5 (4 per chunk, 5 for solid groups). FORMAT.md 2.
inline constexpr int kNeuralPayloadVersion = 4;

// Optional measurement of the cost of probability quantization (tests / bench only).
struct CoderStats {
  double ideal_bits_hp = 0;   // sum -log2 P(bit) using the unquantized (float) final probability
  double ideal_bits_q = 0;    // sum -log2 P(bit) using the 12-bit probability actually coded
  uint64_t bits = 0;          // number of binary decisions coded
  uint64_t payload_bytes = 0; // arithmetic coder output
};

// Encodes raw into out. If the payload would exceed budget bytes, stops early and returns
// false (out is then unspecified). model may be null (network input is 0).
Result<bool> neural_encode(std::span<const uint8_t> raw, const Model* model, Isa isa, size_t budget,
                           std::vector<uint8_t>* out, CoderStats* stats = nullptr,
                           int version = kNeuralPayloadVersion);

// A payload decoded progressively into out[0, raw_len) (the caller keeps payload and out alive):
// decode_to(end) continues from decoded() to end. Errors are sticky; decoded() then counts the
// bytes written before the error (unverified: a damaged payload decodes to garbage first). Once all raw_len bytes are
// decoded, the payload must have been consumed exactly.
class NeuralStream {
 public:
  virtual ~NeuralStream() = default;
  virtual Status decode_to(uint32_t end) = 0;
  virtual uint32_t decoded() const = 0;
  virtual size_t state_bytes() const = 0;  // memory held by the predictor (not the output)
};
Result<std::unique_ptr<NeuralStream>> make_neural_stream(std::span<const uint8_t> payload, uint32_t raw_len,
                                                       const Model* model, Isa isa, uint8_t* out,
                                                       int version = kNeuralPayloadVersion);

// Decodes exactly raw_len bytes from payload. Errors if the payload is overrun or not consumed
// exactly (never returns wrong-length output).
Status neural_decode(std::span<const uint8_t> payload, uint32_t raw_len, const Model* model, Isa isa,
                     std::vector<uint8_t>* out, int version = kNeuralPayloadVersion);

}  // namespace dzfs::codec::detail
