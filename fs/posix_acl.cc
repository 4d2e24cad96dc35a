// POSIX ACL <-> mode: see posix_acl.h.
#include "fs/posix_acl.h"

namespace dzfs {

namespace {
constexpr uint32_t kVersion = 2;
constexpr uint16_t kUserObj = 0x01, kGroupObj = 0x04, kMask = 0x10, kOther = 0x20;

uint32_t le32(const char* p) {
  return uint32_t(uint8_t(p[0])) | uint32_t(uint8_t(p[1])) << 8 | uint32_t(uint8_t(p[2])) << 16 |
         uint32_t(uint8_t(p[3])) << 24;
}
uint16_t le16(const char* p) { return uint16_t(uint8_t(p[0]) | uint8_t(p[1]) << 8); }

bool valid(std::string_view a) { return a.size() >= 4 && (a.size() - 4) % 8 == 0 && le32(a.data()) == kVersion; }
}  // namespace

bool acl_permission_bits(std::string_view a, uint32_t& perm) {
  if (!valid(a)) return false;
  int user = -1, group = -1, mask = -1, other = -1;
  for (size_t i = 4; i < a.size(); i += 8) {
    uint16_t tag = le16(a.data() + i), p = le16(a.data() + i + 2) & 7;
    if (tag == kUserObj) user = p;
    else if (tag == kGroupObj) group = p;
    else if (tag == kMask) mask = p;
    else if (tag == kOther) other = p;
  }
  if (user < 0 || group < 0 || other < 0) return false;
  perm = uint32_t(user) << 6 | uint32_t(mask >= 0 ? mask : group) << 3 | uint32_t(other);
  return true;
}

bool acl_is_minimal(std::string_view a) {
  if (!valid(a) || a.size() != 4 + 3 * 8) return false;
  int seen = 0;
  for (size_t i = 4; i < a.size(); i += 8) {
    const uint16_t tag = le16(a.data() + i);
    seen |= tag == kUserObj ? 1 : tag == kGroupObj ? 2 : tag == kOther ? 4 : 8;
  }
  return seen == 7;
}

std::string acl_with_mode(std::string_view a, uint32_t mode) {
  std::string out(a);
  if (!valid(a)) return out;
  bool has_mask = false;
  for (size_t i = 4; i < a.size(); i += 8) has_mask |= le16(a.data() + i) == kMask;
  for (size_t i = 4; i < out.size(); i += 8) {
    uint16_t tag = le16(out.data() + i);
    int p = -1;
    if (tag == kUserObj) p = (mode >> 6) & 7;
    else if (tag == (has_mask ? kMask : kGroupObj)) p = (mode >> 3) & 7;
    else if (tag == kOther) p = mode & 7;
    if (p >= 0) {
      out[i + 2] = char(p);
      out[i + 3] = 0;
    }
  }
  return out;
}

bool acl_inherit(std::string_view dflt, uint32_t& mode, std::string& access) {
  uint32_t perm = 0;
  if (!acl_permission_bits(dflt, perm)) return false;
  perm &= mode & 0777;
  mode = (mode & ~0777u) | perm;
  access = acl_with_mode(dflt, perm);
  if (acl_is_minimal(access)) access.clear();
  return true;
}

}  // namespace dzfs
