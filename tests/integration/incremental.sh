#!/usr/bin/env bash
# Incremental backups: rsync a ~21 MB deterministic tree (text-like and random files) in, then
# change a few bytes in the middle of two large files, append to one, add a 1 MB file, and rsync
# again (rsync -a --modify-window=-1: times compared to the nanosecond), once with --inplace and once with rsync's default (temp file + rename). After each round
# the tree must be identical and stats' stored_bytes must grow by about the changed chunks only.
# Then three copies of a 5 MB file already stored must leave unique_chunk_bytes where it was.
# The volume is made with --chunk-min 16K --chunk-avg 64K --chunk-max 256K, so that "the changed
# chunks" has a known bound: 2 MB covers a few max-size chunks around each edit.
. "$(dirname "$0")/lib.sh"
it_init incremental 200

SRC=$IT_TMP/src STORE=$IT_TMP/store MNT=$IT_TMP/mnt
MB=1000000
log "generating the source tree"
"$PY" "$TREECHECK" gen "$SRC" --seed 1 --text-files 8 --text-size 1M --rand-files 4 --rand-size 2M --small-files 40
"$PY" -c 'import random,sys; open(sys.argv[1],"wb").write(random.Random(55).randbytes(5*1024*1024))' "$SRC/dedup5m.bin"
src_bytes=$(find "$SRC" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
src_files=$(find "$SRC" -type f | wc -l)
log "source: $src_files files, $src_bytes bytes"

dz_mkfs "$STORE" --chunk-min 16384 --chunk-avg 65536 --chunk-max 262144

# stats KEY... from the unmounted store, as "k=v" words; sets S_<key> variables.
snap() {
  local json
  json=$(dz_stats "$STORE")
  eval "$(printf '%s' "$json" | "$PY" -c '
import json, sys
o = json.load(sys.stdin)
for k in ("logical_bytes", "unique_chunk_bytes", "stored_bytes", "pack_bytes", "chunks", "files"):
    v = o[k]
    if not isinstance(v, int) or v < 0:
        sys.exit("stats key %s is not a non-negative integer: %r" % (k, v))
    print("S_%s=%d" % (k, v))
codec = sum(o["bytes_by_codec"].values())
print("S_codec_sum=%d" % codec)
print("S_dedup_ratio=%s" % o["dedup_ratio"])
print("S_compression_ratio=%s" % o["compression_ratio"])
')"
  [ "$S_stored_bytes" -le "$S_pack_bytes" ] || fail "stats: stored_bytes $S_stored_bytes > pack_bytes $S_pack_bytes"
  local onDisk; onDisk=$(pack_files_bytes "$STORE")
  [ "$S_pack_bytes" -eq "$onDisk" ] || fail "stats: pack_bytes $S_pack_bytes but the pack files on disk total $onDisk bytes"
  [ "$S_unique_chunk_bytes" -le "$S_logical_bytes" ] || fail "stats: unique_chunk_bytes $S_unique_chunk_bytes > logical_bytes $S_logical_bytes"
  [ "$S_codec_sum" -eq "$S_stored_bytes" ] || log "note: sum of bytes_by_codec ($S_codec_sum) != stored_bytes ($S_stored_bytes)"
  log "stats: logical=$S_logical_bytes unique=$S_unique_chunk_bytes stored=$S_stored_bytes packs=$S_pack_bytes chunks=$S_chunks files=$S_files dedup=$S_dedup_ratio compression=$S_compression_ratio"
}

sync_round() {
  local what=$1; shift
  dz_mount "$STORE" "$MNT" ${MOUNT_OPTS:+-o "$MOUNT_OPTS"}
  local rc=0
  run_to 120 rsync -a --modify-window=-1 "$@" "$SRC/" "$MNT/" 2>"$IT_TMP/rsync.err" || rc=$?
  [ "$rc" -eq 0 ] || fail "$what: rsync -a --modify-window=-1 $* src/ mnt/: exit $rc: $(head -c 2000 "$IT_TMP/rsync.err")"
  tree_compare "$SRC" "$MNT"
  dz_umount "$MNT" "$STORE"
}

# ---- full backup
log "round 0: full rsync"
sync_round "round 0"
snap
[ "$S_logical_bytes" -eq "$src_bytes" ] || fail "round 0: logical_bytes $S_logical_bytes, but the $src_files files hold $src_bytes bytes"
[ "$S_files" -ge "$src_files" ] || fail "round 0: stats files=$S_files < $src_files regular files stored"
s0=$S_stored_bytes u0=$S_unique_chunk_bytes

# ---- round A: --inplace; a few bytes in the middle of r00.bin, an append to t03.txt, a new 1 MB file
"$PY" - "$SRC" <<'EOF'
import os, random, sys
root = sys.argv[1]
r = random.Random(99)
with open(os.path.join(root, "rand/r00.bin"), "r+b") as f:
    f.seek(1 << 20); f.write(r.randbytes(16))
with open(os.path.join(root, "text/t03.txt"), "ab") as f:
    f.write(b"appended line of text number %d.\n" % 1 * 1 + b"".join(b"more appended text %06d\n" % i for i in range(4000)))
os.makedirs(os.path.join(root, "new"), exist_ok=True)
open(os.path.join(root, "new/new1m.bin"), "wb").write(r.randbytes(1000000))
EOF
log "round A: rsync --inplace after 3 changes and a new 1 MB random file"
# This round runs with a 1 MiB cache: rsync's reads and the tree compare go through evictions.
MOUNT_OPTS=cache_mb=1 sync_round "round A" --inplace
snap
gA=$((S_stored_bytes - s0))
log "round A: stored_bytes $s0 -> $S_stored_bytes (+$gA); bound 2 MB + 1.05 MB for the new incompressible file"
[ "$gA" -ge $((900 * 1000)) ] || fail "round A: stored_bytes grew by only $gA bytes, but a new 1 MB random file was added"
[ "$gA" -le $((2 * MB + 1050000)) ] || fail "round A (rsync --inplace): stored_bytes grew by $gA bytes ($s0 -> $S_stored_bytes); expected < 3.05 MB (changed chunks + the new 1 MB file)"
s1=$S_stored_bytes

# ---- round B: default rsync (temp file + rename); a few bytes in the middle of r01.bin and t05.txt
"$PY" - "$SRC" <<'EOF'
import os, sys
root = sys.argv[1]
for name, off, new in (("rand/r01.bin", 1000003, b"\x00CHANGED\xff" * 2), ("text/t05.txt", 524288, b"EDITED")):
    with open(os.path.join(root, name), "r+b") as f:
        f.seek(off); f.write(new)
EOF
log "round B: default rsync (whole-file temp + rename) after 2 small in-place edits"
# This round runs with dirty_mb=4 (the least allowed): writes are flushed under memory pressure.
MOUNT_OPTS=dirty_mb=4 sync_round "round B"
snap
gB=$((S_stored_bytes - s1))
log "round B: stored_bytes $s1 -> $S_stored_bytes (+$gB); bound 2 MB"
[ "$gB" -le $((2 * MB)) ] || fail "round B (default rsync): stored_bytes grew by $gB bytes ($s1 -> $S_stored_bytes); expected < 2 MB for two edits of <= 16 bytes"
s2=$S_stored_bytes u2=$S_unique_chunk_bytes l2=$S_logical_bytes d2=$S_dedup_ratio

# ---- dedup: three more copies of dedup5m.bin, which the volume already holds
dz_mount "$STORE" "$MNT"
for i in 1 2 3; do run_to 60 cp "$SRC/dedup5m.bin" "$MNT/copy$i.bin"; done
dz_stats "$MNT" >/dev/null   # stats on a mountpoint works while mounted
for i in 1 2 3; do cmp "$SRC/dedup5m.bin" "$MNT/copy$i.bin" || fail "copy$i.bin differs from its source"; done
dz_umount "$MNT" "$STORE"
dz_fsck "$STORE"
snap
five=$(stat -c %s "$SRC/dedup5m.bin")
du_=$((S_unique_chunk_bytes - u2)) ds=$((S_stored_bytes - s2)) dl=$((S_logical_bytes - l2))
d3=$S_dedup_ratio u3=$S_unique_chunk_bytes
log "dedup: 3 copies of a stored ${five}-byte file: unique_chunk_bytes +$du_, stored_bytes +$ds, logical_bytes +$dl, dedup_ratio $d2 -> $d3"
# For comparison (reported, not asserted): the same with the kernel's writeback cache off.
dz_mount "$STORE" "$MNT" -o writeback=0
for i in 4 5 6; do run_to 60 cp "$SRC/dedup5m.bin" "$MNT/copy$i.bin"; done
dz_umount "$MNT" "$STORE"
snap
log "dedup with -o writeback=0: 3 more copies: unique_chunk_bytes +$((S_unique_chunk_bytes - u3))"
[ "$du_" -le 65536 ] || fail "dedup: unique_chunk_bytes grew by $du_ bytes ($u2 -> $S_unique_chunk_bytes) for 3 copies of a file already stored; expected ~0 (<= 64 KiB)"
[ "$ds" -le 65536 ] || fail "dedup: stored_bytes grew by $ds bytes for 3 copies of a file already stored; expected ~0 (<= 64 KiB)"
[ "$dl" -eq $((3 * five)) ] || fail "dedup: logical_bytes grew by $dl, expected $((3 * five)) (3 x $five)"
"$PY" -c 'import sys; sys.exit(0 if float(sys.argv[2]) > float(sys.argv[1]) else 1)' "$d2" "$d3" \
  || fail "dedup: dedup_ratio did not rise ($d2 -> $d3) after adding 15 MB of duplicate data"
