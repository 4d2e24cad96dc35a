// Group record payloads: see group_record.h; the layout is in docs/ARCHITECTURE.md.
#include "index/group_record.h"

#include <xxhash.h>

#include <cstring>

namespace dzfs {

static void put32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(char(v >> (8 * i)));
}
static uint32_t get32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | uint8_t(p[i]);
  return v;
}

constexpr size_t kEntrySize = 20;  // u32 raw length + XXH3-128

std::string encode_group_payload(const std::vector<GroupMember>& members, std::span<const uint8_t> frame) {
  std::string out;
  out.reserve(8 + members.size() * kEntrySize + frame.size());
  put32(out, uint32_t(members.size()));
  for (const GroupMember& m : members) {
    put32(out, m.raw_len);
    out.append(reinterpret_cast<const char*>(m.hash.b), 16);
  }
  put32(out, XXH32(out.data(), out.size(), 0));
  out.append(reinterpret_cast<const char*>(frame.data()), frame.size());
  return out;
}

Result<GroupPayload> parse_group_payload(std::string_view p) {
  auto bad = [](const std::string& why) { return Status::Error(EIO, "group record: " + why); };
  if (p.size() < 8) return bad("truncated table");
  const uint32_t n = get32(p.data());
  if (n == 0 || n > kMaxGroupChunks) return bad("implausible chunk count " + std::to_string(n));
  const size_t table_len = group_table_len(n);
  if (p.size() < table_len + 4) return bad("truncated table");
  if (XXH32(p.data(), table_len, 0) != get32(p.data() + table_len)) return bad("table checksum mismatch");
  GroupPayload g;
  g.members.resize(n);
  g.offsets.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    const char* e = p.data() + 4 + size_t(i) * kEntrySize;
    g.members[i].raw_len = get32(e);
    memcpy(g.members[i].hash.b, e + 4, 16);
    g.offsets[i] = g.raw_len;
    g.raw_len += g.members[i].raw_len;
    if (g.members[i].raw_len == 0 || g.raw_len > kMaxGroupRawBytes) return bad("implausible chunk length");
  }
  g.table = p.substr(0, table_len);
  g.frame = p.substr(table_len + 4);
  return g;
}

ChunkHash group_table_hash(std::string_view table) { return hash_chunk(table.data(), table.size()); }

}  // namespace dzfs
