// Solid groups: many chunks coded as one stream (docs/ARCHITECTURE.md "Group records").
//
// A group record is a pack record of codec kCodecGroup whose payload is a table of the chunks it
// holds (length and XXH3-128 of each, in stream order; its own XXH32) followed by one codec frame
// of their concatenation. The table is checked before any use, so a damaged frame never hides
// which chunks a group holds, and every chunk read from a group is verified against its own hash.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "index/chunk_store.h"
#include "index/status.h"

namespace dzfs {

constexpr uint32_t kMaxGroupChunks = 65536;
constexpr uint32_t kMaxGroupRawBytes = 64u << 20;  // the codec's frame limit

struct GroupMember {
  uint32_t raw_len = 0;
  ChunkHash hash{};
};

struct GroupPayload {
  std::vector<GroupMember> members;
  std::vector<uint64_t> offsets;  // of each member in the raw stream
  uint64_t raw_len = 0;           // sum of the members' lengths
  std::string_view table;         // the table bytes (what the record header's hash covers)
  std::string_view frame;         // the codec frame of the concatenated members
};

// The payload of a group record: table, then the frame.
std::string encode_group_payload(const std::vector<GroupMember>& members, std::span<const uint8_t> frame);
// Parses and checks the table (count, lengths, checksum); the frame is only located. The views
// point into `payload`.
Result<GroupPayload> parse_group_payload(std::string_view payload);
// Bytes of the table of n members (what group_table_hash covers).
inline size_t group_table_len(size_t n) { return 4 + 20 * n; }
// The record header's hash of a group: XXH3-128 of its table.
ChunkHash group_table_hash(std::string_view table);

}  // namespace dzfs
