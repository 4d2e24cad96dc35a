// Instruction-set selection for the network kernels. Every path is bit-exact with the scalar
// reference (all arithmetic is exact int8 x int8 -> int32); the choice only changes speed.
#pragma once
#include <string_view>

namespace dzfs::codec {

enum class Isa : int { kAuto = 0, kScalar = 1, kAvx2 = 2, kAvx512Vnni = 3 };

const char* isa_name(Isa isa);
// Parses "auto", "scalar", "avx2", "avx512vnni". Returns false on an unknown name.
bool parse_isa(std::string_view s, Isa* out);
// Best ISA this CPU supports.
Isa detect_isa();
// Resolves a request to the ISA that will run: kAuto -> DZFS_CODEC_ISA env var if set, else
// detect_isa(); an explicit ISA the CPU lacks falls back to the best supported one below it.
Isa resolve_isa(Isa requested);
bool isa_supported(Isa isa);

}  // namespace dzfs::codec
