#!/usr/bin/env bash
# dzfs gc: rsync a ~12 MB tree in; delete half of it, gc, and the rest must read back intact
# (compaction moves live chunks) while pack_bytes shrinks; then rm -rf everything, gc, and
# pack_bytes (and the pack files on disk) must fall below 5% of the full size. The volume
# remounts empty (mount.fuse3-style command line: dzfs STORE MNT) and stays usable.
. "$(dirname "$0")/lib.sh"
it_init gc_shrink 150

SRC=$IT_TMP/src STORE=$IT_TMP/store MNT=$IT_TMP/mnt
"$PY" "$TREECHECK" gen "$SRC" --seed 7 --text-files 6 --text-size 1M --rand-files 3 --rand-size 2M --small-files 60
dz_mkfs "$STORE"
dz_mount "$STORE" "$MNT"
run_to 120 rsync -a --modify-window=-1 "$SRC/" "$MNT/"
tree_compare "$SRC" "$MNT"
dz_umount "$MNT" "$STORE"

human=$(timeout 30 "$DZFS" stats "$STORE" 2>&1) || fail "dzfs stats $STORE (human form) failed: $human"
[ "$(grep -c . <<<"$human")" -ge 3 ] || fail "dzfs stats $STORE (human form) printed too little: $human"
p0=$(dz_stat_key "$STORE" pack_bytes)
d0=$(pack_files_bytes "$STORE")
log "full: pack_bytes=$p0, pack files on disk $d0 bytes"
[ "$p0" -gt 1000000 ] || fail "pack_bytes is only $p0 after storing $(du -sb "$SRC" | cut -f1) bytes"

gc() {
  local out rc=0
  out=$(timeout -k 5 120 "$DZFS" gc "$STORE" 2>&1) || rc=$?
  [ "$rc" -eq 0 ] || fail "dzfs gc $STORE: exit $rc: $out"
  [ -n "$out" ] || fail "dzfs gc printed nothing (the contract: it prints what it reclaimed)"
  log "gc: $out"
  dz_fsck "$STORE"
}

# ---- half: delete the text files and half the small ones; gc; the rest is intact
dz_mount "$STORE" "$MNT"
rm -rf "$MNT/text" "$MNT/small/s0" "$MNT/small/s2" "$MNT/small/s4"
rm -rf "$SRC/text" "$SRC/small/s0" "$SRC/small/s2" "$SRC/small/s4"
dz_umount "$MNT" "$STORE"
gc
p1=$(dz_stat_key "$STORE" pack_bytes)
log "after deleting half and gc: pack_bytes $p0 -> $p1"
[ "$p1" -lt "$p0" ] || fail "gc after deleting half of the files: pack_bytes did not shrink ($p0 -> $p1)"
[ "$p1" -eq "$(pack_files_bytes "$STORE")" ] || fail "after gc: pack_bytes $p1 but the pack files on disk total $(pack_files_bytes "$STORE")"
dz_mount "$STORE" "$MNT"
tree_compare "$SRC" "$MNT" --ignore mtime_ns   # the parent directories' mtimes changed with rm
# ---- all: rm -rf everything; gc; near zero
rm -rf "$MNT"/* "$MNT"/.[!.]* 2>/dev/null || true
left=$(ls -A "$MNT")
[ -z "$left" ] || fail "rm -rf of everything left: $left"
dz_umount "$MNT" "$STORE"
gc
p2=$(dz_stat_key "$STORE" pack_bytes)
d2=$(pack_files_bytes "$STORE")
log "after rm -rf and gc: pack_bytes $p0 -> $p2, pack files on disk $d0 -> $d2"
[ $((p2 * 100)) -lt $((p0 * 5)) ] || fail "after rm -rf + gc: pack_bytes $p2 is not < 5% of $p0"
[ $((d2 * 100)) -lt $((d0 * 5)) ] || fail "after rm -rf + gc: pack files on disk $d2 bytes, not < 5% of $d0: $(ls -l "$STORE/packs")"
for k in logical_bytes unique_chunk_bytes stored_bytes chunks; do
  v=$(dz_stat_key "$STORE" "$k")
  [ "$v" -eq 0 ] || fail "after rm -rf + gc: stats $k = $v, expected 0"
done

# ---- remount (mount.fuse3 style) and use it
mkdir -p "$MNT"
_it_register_mount "$MNT"
rc=0
out=$(timeout -k 5 60 "$DZFS" "$STORE" "$MNT" -o commit_secs=1 2>&1) || rc=$?
[ "$rc" -eq 0 ] || fail "dzfs STORE MNT -o commit_secs=1 (mount.fuse3 style): exit $rc: $out"
wait_mounted "$MNT" 10
[ -z "$(ls -A "$MNT")" ] || fail "the volume is not empty after rm -rf + gc + remount: $(ls -A "$MNT")"
head -c 3000000 "$SRC/rand/r00.bin" >"$IT_TMP/again"
cp "$IT_TMP/again" "$MNT/again"
mkdir "$MNT/dir" && echo hi >"$MNT/dir/f"
dz_remount "$STORE" "$MNT"
cmp "$IT_TMP/again" "$MNT/again" || fail "a file written after gc does not read back after remount"
[ "$(cat "$MNT/dir/f")" = hi ] || fail "dir/f written after gc"
dz_umount "$MNT" "$STORE"
dz_fsck "$STORE"
