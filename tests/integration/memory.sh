#!/usr/bin/env bash
# A mount's memory stays within what its options allow, and goes back when the work is done:
#  1. 20,000 random reads, writes, truncates and mmap writes on one 227 KiB file: peak RSS within
#     the bound the options give (cache_mb + group decoders + dirty_mb + a base), generously;
#  2. the kernel's UAPI headers (about 6 MiB) drained by the recompressor: once idle, RSS falls back near the base (before
#     a fixed mmap threshold, glibc kept the freed codec tables: 204 MB after a 23 MB drain);
#  3. a read-only mount restores the tree with tar: peak within the bound, and once idle RSS falls
#     back (it stayed at the peak, 346 MB, before).
# The files read back intact, and the volume checks clean.
. "$(dirname "$0")/lib.sh"
it_init memory 200

STORE=$IT_TMP/store MNT=$IT_TMP/mnt SRC=$IT_TMP/src
OPTS=cache_mb=16,group_cache_mb=16,dirty_mb=8,workers=1,settle_secs=1,commit_secs=1
BASE_MB=80   # binary, libraries, SQLite, thread stacks, FUSE buffers
DECODER_MB=115  # one live group decoder (4 MiB groups, frame version 6); at least 2 may live
ENCODER_MB=115  # one recompression worker's encoder
rss_mb() { awk '$1 == "VmRSS:" { print int($2 / 1024) }' "/proc/$1/status"; }
hwm_mb() { awk '$1 == "VmHWM:" { print int($2 / 1024) }' "/proc/$1/status"; }
daemon_pid() {
  local p
  p=$(dzfs_pids_for "$STORE" | head -1)
  [ -n "$p" ] || fail "no dzfs daemon for $STORE"
  echo "$p"
}
# idle_rss PID BOUND: waits (up to 20 s) for RSS to fall to BOUND MB; prints the last RSS.
idle_rss() { poll_le 20 "$2" rss_mb "$1"; }

dz_mkfs "$STORE"
dz_mount "$STORE" "$MNT" -o "$OPTS"
pid=$(daemon_pid)

# ---- 1. random I/O soak
run_to 120 "$PY" - "$MNT/f" "$IT_TMP/f.model" <<'EOF2' || fail "the random I/O soak failed"
import mmap, os, random, sys
path, model_path = sys.argv[1], sys.argv[2]
rng = random.Random(5)
model = bytearray(rng.randbytes(116 * 1024) + b"text " * 23000)
with open(path, "wb") as f:
    f.write(model)
fd = os.open(path, os.O_RDWR)
for i in range(20000):
    op = rng.random()
    if op < 0.4:
        off, n = rng.randint(0, len(model)), rng.randint(1, 65536)
        got = os.pread(fd, n, off)
        if got != bytes(model[off:off + n]):
            sys.exit(f"op {i}: pread({n}, {off}) differs from the model")
    elif op < 0.8:
        off = rng.randint(0, 300 * 1024)
        data = rng.randbytes(rng.randint(1, 32768)) if rng.random() < 0.5 else b"abc" * rng.randint(1, 8000)
        os.pwrite(fd, data, off)
        if off > len(model):
            model.extend(bytes(off - len(model)))
        model[off:off + len(data)] = data
    elif op < 0.9:
        n = rng.randint(0, 300 * 1024)
        os.ftruncate(fd, n)
        model = model[:n] if n <= len(model) else model + bytes(n - len(model))
    elif len(model) > 4096:
        m = mmap.mmap(fd, len(model))
        o = rng.randint(0, len(model) - 1)
        m[o] = 65
        model[o] = 65
        m.flush()
        m.close()
os.close(fd)
open(model_path, "wb").write(model)
EOF2
cmp "$IT_TMP/f.model" "$MNT/f" || fail "after the soak the file differs from its model"
bound=$((BASE_MB + 16 + 16 + 2 * DECODER_MB + 8 + ENCODER_MB))
peak=$(hwm_mb "$pid")
log "FIGURE soak: peak RSS $peak MB (bound $bound MB), now $(rss_mb "$pid") MB"
[ "$peak" -le "$bound" ] || fail "20,000 random operations: peak RSS $peak MB > $bound MB that the options allow"

# ---- 2. a drain, then idle
# Real sources (the generated text of treecheck is so repetitive that zstd does as well): the
# kernel's UAPI headers, which the build's libc6-dev brings.
[ -d /usr/include/linux ] || skip "no /usr/include/linux (linux-libc-dev) to drain"
mkdir -p "$SRC"
cp -a /usr/include/linux "$SRC/"
run_to 60 cp -a "$SRC" "$MNT/src"
run_to 150 "$DZFS" compress "$MNT" --wait >/dev/null 2>&1 || fail "dzfs compress $MNT --wait failed"
idle_bound=$((BASE_MB + 16 + 16 + 8))
idle=$(idle_rss "$pid" "$idle_bound")
log "FIGURE drain: peak RSS $(hwm_mb "$pid") MB; idle after it $idle MB (bound $idle_bound MB)"
[ "$idle" -le "$idle_bound" ] || fail "idle after the drain, RSS is $idle MB > $idle_bound MB: freed memory is not returned"
grouped=$(timeout 30 "$DZFS" stats "$MNT" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["chunks_by_codec"].get("group", 0))') ||
  fail "dzfs stats $MNT --json"
[ "$grouped" -gt 0 ] || fail "the drain grouped no chunk: $(timeout 30 "$DZFS" stats "$MNT")"
dz_umount "$MNT" "$STORE"

# ---- 3. a read-only restore
dz_mount "$STORE" "$MNT" -o "ro,$OPTS"
pid=$(daemon_pid)
sync
echo 3 >/proc/sys/vm/drop_caches
run_to 120 tar -C "$MNT" -cf - . | wc -c >/dev/null
peak=$(hwm_mb "$pid")
bound=$((BASE_MB + 16 + 16 + 2 * DECODER_MB))
idle=$(idle_rss "$pid" "$idle_bound")
log "FIGURE restore: peak RSS $peak MB (bound $bound MB); idle after it $idle MB (bound $idle_bound MB)"
[ "$peak" -le "$bound" ] || fail "a read-only restore: peak RSS $peak MB > $bound MB"
[ "$idle" -le "$idle_bound" ] || fail "idle after the restore, RSS is $idle MB > $idle_bound MB"
tree_compare "$SRC" "$MNT/src"
cmp "$IT_TMP/f.model" "$MNT/f" || fail "after remount the soaked file differs from its model"
dz_umount "$MNT" "$STORE"
dz_fsck "$STORE"
