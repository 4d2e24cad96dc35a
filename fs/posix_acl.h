// POSIX ACLs kept as opaque xattrs (system.posix_acl_access) still tie into the mode, as on
// every Linux filesystem: setting the access ACL sets the mode's permission bits (owner = the
// user entry, group = the mask entry if any else the group entry, other = the other entry), and
// chmod rewrites those entries. Format: linux/posix_acl_xattr.h (version 2, 8-byte entries).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace dzfs {

inline constexpr std::string_view kAclAccessXattr = "system.posix_acl_access";
inline constexpr std::string_view kAclDefaultXattr = "system.posix_acl_default";

// The permission bits (0777) the ACL implies; false if the value is not a valid ACL.
bool acl_permission_bits(std::string_view acl, uint32_t& perm);
// True for a valid ACL of only the owner, group and other entries: it says no more than the
// mode, so Linux filesystems store none (posix_acl_equiv_mode) and neither does dzfs.
bool acl_is_minimal(std::string_view acl);
// The ACL with its owner, group-or-mask and other entries set from mode; unchanged if invalid.
std::string acl_with_mode(std::string_view acl, uint32_t mode);
// A new node under a directory with default ACL `dflt` (the kernel's posix_acl_create): its
// access ACL is the default one with the owner, mask-or-group and other entries limited by the
// permission bits asked for, and those bits in `mode` become the ACL's. `access` is left empty
// when the result says no more than the mode. False (nothing changed) if dflt is not valid.
bool acl_inherit(std::string_view dflt, uint32_t& mode, std::string& access);

}  // namespace dzfs
