#!/usr/bin/env bash
# POSIX semantics of dzfs compared against ext4 on the same machine (issue 15): posix_diff.py runs
# the same operations (every FUSE operation dzfs serves, with the errors their man pages list,
# as root and as other users) in an ext4 directory and in a dzfs mount and fails on any
# difference in results, errnos, stat fields, times changed, listings or xattrs that is not one
# of its listed deliberate differences.
# The reference is a fresh ext4 image on a loop device (256-byte inodes for nanosecond times,
# ea_inode for 64 KiB xattr values as on XFS/btrfs); where loop mounts are refused it falls back
# to the machine's own filesystem if that is ext4, else skips (a tmpfs reference would diverge
# on xattrs and ACLs for reasons of its own). The loop device goes with the unmount (autoclear);
# the end of the test checks that it did.
. "$(dirname "$0")/lib.sh"
it_init posix_ext4 220

STORE=$IT_TMP/store MNT=$IT_TMP/mnt REF=$IT_TMP/ref IMG=$IT_TMP/ext4.img
chmod 755 "$IT_TMP"   # mktemp -d made it 0700: uid 1234/1235 must reach both trees
mkdir -p "$REF"
REF_KIND=""
if command -v mkfs.ext4 >/dev/null 2>&1 && truncate -s 256M "$IMG" &&
   mkfs.ext4 -q -I 256 -O ea_inode "$IMG" 2>/dev/null; then
  echo "$REF" >>"$IT_TMP/.othermounts"
  if mount -o loop "$IMG" "$REF" 2>"$IT_TMP/loop.err"; then
    REF_KIND="ext4 image on $(findmnt -n -o SOURCE "$REF")"
  else
    log "loop mount refused: $(cat "$IT_TMP/loop.err")"
  fi
fi
if [ -z "$REF_KIND" ]; then
  rm -f "$IMG"
  [ "$(stat -f -c %T "$IT_TMP")" = ext2/ext3 ] || skip "no loop mounts here and $IT_TMP is not ext4: no reference filesystem"
  REF_KIND="the machine's own ext4 ($IT_TMP, no loop device)"
fi
chmod 755 "$REF"
log "reference: $REF_KIND"

dz_mkfs "$STORE"
dz_mount "$STORE" "$MNT" -o allow_other
chmod 755 "$MNT"

rc=0
run_to 150 "$PY" "$IT_DIR/posix_diff.py" "$REF" "$MNT" || rc=$?
[ "$rc" -eq 0 ] || fail "dzfs differs from ext4 (see the FAIL lines above)"

dz_umount "$MNT" "$STORE"
dz_fsck "$STORE"
if is_mounted "$REF"; then
  dev=$(findmnt -n -o SOURCE "$REF")
  umount "$REF"
  if [[ "$dev" == /dev/loop* ]]; then  # autoclear detaches it just after the unmount
    for _ in $(seq 50); do losetup "$dev" >/dev/null 2>&1 || break; sleep 0.1; done
    if losetup "$dev" >/dev/null 2>&1; then fail "loop device $dev still attached after the unmount"; fi
  fi
fi
log "reference was: $REF_KIND"
