#!/usr/bin/env bash
# rsync -aHAX of a tree holding every kind of entry into dzfs: regular files of several sizes
# (3 MB random and compressible text, empty), hard links across directories, symlinks (dangling
# too), user/trusted/security xattrs, POSIX ACLs, a FIFO and device nodes, sparse files, unicode
# and 255-byte names, 40 levels of nesting, odd modes and owners, nanosecond mtimes.
# Checked right after the copy and again after dzfs umount + remount: rsync -n --checksum
# --itemize-changes (nanosecond times) finds nothing to do, the python walker finds no difference,
# getfacl/getfattr/stat agree. A cp --sparse=always copy has a small st_blocks and copies back out
# intact. Then the store layout (dzfs.conf format_version, index.db.zst, packs/NNNNNNNN.pack, models/)
# and dzfs fsck. Every check runs; the differences are listed together at the end.
. "$(dirname "$0")/lib.sh"
it_init rsync_tree 150

SRC=$IT_TMP/src STORE=$IT_TMP/store MNT=$IT_TMP/mnt
DST=$MNT/tree   # the copy; the mount root also holds sparse_copy
log "building the source tree"
"$PY" "$TREECHECK" build-rich "$SRC"

dz_mkfs "$STORE"
dz_mount "$STORE" "$MNT"

log "rsync -aHAX --numeric-ids into the mount"
rc=0
run_to 120 rsync -aHAX --numeric-ids "$SRC/" "$DST/" 2>"$IT_TMP/rsync.err" || rc=$?
[ "$rc" -eq 0 ] || fail "rsync -aHAX --numeric-ids $SRC/ $DST/: exit $rc: $(head -c 3000 "$IT_TMP/rsync.err")"

problems=()
problem() { problems+=("$*"); printf 'PROBLEM: %s\n' "$*" >&2; }

# check_tree WHEN: every check runs; what differs is collected and failed on at the end.
check_tree() {
  local when=$1 out rc=0
  out=$(run_to 120 rsync -aHAXn --numeric-ids --checksum --itemize-changes --delete --modify-window=-1 "$SRC/" "$DST/" 2>&1) || rc=$?
  if [ "$rc" -ne 0 ]; then
    problem "$when: rsync -aHAXn --checksum --itemize-changes: exit $rc: $(head -c 3000 <<<"$out")"
  elif [ -n "$out" ]; then
    problem "$when: rsync -aHAXn --numeric-ids --checksum --itemize-changes --delete --modify-window=-1 src/ mnt/tree/ wants to change (expected no output):
$(head -n 60 <<<"$out")"
  fi
  rc=0
  out=$(run_to 300 "$PY" "$TREECHECK" compare "$SRC" "$DST" 2>&1) || rc=$?
  if [ "$rc" -ne 0 ]; then problem "$when: the walker finds differences (expected vs got):
$out"; else log "$out"; fi
  # Spot checks with the standard tools, for readable messages.
  [ "$(getfattr --absolute-names --only-values -n user.comment "$DST/xattr/f" 2>&1)" = hello ] || problem "$when: getfattr user.comment on xattr/f: $(getfattr --absolute-names -n user.comment "$DST/xattr/f" 2>&1)"
  local want got
  want=$(cd "$SRC" && getfacl -cn acl/f acl/d 2>&1)
  got=$(cd "$DST" && getfacl -cn acl/f acl/d 2>&1)
  [ "$want" = "$got" ] || problem "$when: getfacl differs: expected
$want
got
$got"
  want=$(cd "$SRC" && stat -c '%A %n' acl/f acl/d)
  got=$(cd "$DST" && stat -c '%A %n' acl/f acl/d)
  [ "$want" = "$got" ] || problem "$when: modes of the ACL'd entries: expected [$(echo $want)] got [$(echo $got)]"
  got=$(stat -c '%h %i' "$DST/hl/a/one" "$DST/hl/b/c/two" "$DST/files/hl_three" | sort -u)
  [ "$(wc -l <<<"$got")" -eq 1 ] && [ "${got%% *}" -eq 3 ] || problem "$when: hard link group hl/a/one hl/b/c/two files/hl_three: want one inode with nlink 3, got (nlink ino): $got"
  [ "$(readlink "$DST/sym/dangling")" = nowhere/none ] || problem "$when: readlink sym/dangling = '$(readlink "$DST/sym/dangling")'"
  [ "$(cat "$DST/deep/$(printf 'd%02d/' $(seq 0 39))leaf.txt")" = "forty levels down" ] || problem "$when: deep/.../leaf.txt"
  log "$when: checked"
}

check_tree "after rsync"

# A sparse copy made by cp --sparse=always: its holes must cost no chunk and st_blocks must
# reflect only the two 4 KiB extents (checked before and after remount).
run_to 60 cp --sparse=always "$SRC/sparse/holes" "$MNT/sparse_copy"
cmp "$SRC/sparse/holes" "$MNT/sparse_copy" || problem "cp --sparse=always copy of sparse/holes differs"
check_sparse() {
  local b
  b=$(stat -c %b "$MNT/sparse_copy")
  [ "$b" -le 512 ] || problem "$1: sparse_copy (16 MiB, 8 KiB of data) has st_blocks=$b (> 512, i.e. > 256 KiB): holes are stored or st_blocks does not reflect stored extents"
}
check_sparse "after cp --sparse"
# Copying it back out (cp --sparse=auto uses SEEK_DATA/SEEK_HOLE) must lose no data.
run_to 60 cp --sparse=auto "$MNT/sparse_copy" "$IT_TMP/sparse_out"
cmp "$SRC/sparse/holes" "$IT_TMP/sparse_out" || problem "cp --sparse=auto of sparse_copy out of the mount differs from the original (SEEK_DATA/SEEK_HOLE?)"

log "umount + remount"
dz_remount "$STORE" "$MNT"
check_tree "after remount"
cmp "$SRC/sparse/holes" "$MNT/sparse_copy" || problem "after remount: sparse_copy differs"
check_sparse "after remount"
rm -f "$MNT/sparse_copy"

# The store layout of the contract.
dz_umount "$MNT" "$STORE"
grep -Eq '^[[:space:]]*format_version[[:space:]]*=[[:space:]]*2[[:space:]]*$' "$STORE/dzfs.conf" || fail "$STORE/dzfs.conf lacks 'format_version = 2': $(cat "$STORE/dzfs.conf")"
[ -f "$STORE/index.db.zst" ] || fail "no $STORE/index.db.zst (the index packed at rest)"
[ -d "$STORE/models" ] || fail "no $STORE/models/"
packs=("$STORE"/packs/*.pack)
((${#packs[@]} > 0)) || fail "no $STORE/packs/*.pack after storing data: $(ls -la "$STORE" "$STORE/packs" 2>&1)"
for p in "${packs[@]}"; do
  [[ $(basename "$p") =~ ^[0-9]{8}\.pack$ ]] || fail "pack file name $(basename "$p") is not NNNNNNNN.pack"
done
log "store layout ok: ${#packs[@]} pack(s)"
dz_fsck "$STORE"

((${#problems[@]} == 0)) || fail "${#problems[@]} problem(s):
$(printf '  - %s\n' "${problems[@]}")"
