#!/usr/bin/env bash
# Memory benchmark (issue 15; not a ctest test): a mount's RSS over a long random-I/O soak and
# over a full restore, printed next to the bound its options give (docs/ARCHITECTURE.md
# "Memory"), for default options and for small caches. Phases of the soak: random reads, writes,
# truncates and mmap writes on one 227 KiB file, as in the report that found the mount growing
# (303, 395, 502 MB after 50,000, 150,000 and 250,000 operations with default options); the
# restore: a tree copied in, drained by the recompressor, then tar of an `-o ro` mount with caches
# dropped.
#
# usage: tests/bench/memory_bench.sh [TREE] [OPS_PER_PHASE] [PHASES]
#   TREE           the tree to restore (default /usr/include; any directory)
#   OPS_PER_PHASE  random operations per soak phase (default 50000), PHASES (default 3)
# Env: DZFS (binary; default build/bin/dzfs). Needs root and /dev/fuse.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
TREE=${1:-/usr/include}
OPS=${2:-50000}
PHASES=${3:-3}
DZFS=${DZFS:-$repo/build/bin/dzfs}
[ -x "$DZFS" ] || { echo "memory_bench: no dzfs binary at $DZFS" >&2; exit 1; }
[ -d "$TREE" ] || { echo "memory_bench: no tree at $TREE" >&2; exit 1; }
WORK=$(mktemp -d /var/tmp/dzfs-membench.XXXXXX)
MNT=$WORK/mnt
cleanup() {
  set +e
  mountpoint -q "$MNT" 2>/dev/null && { timeout 120 "$DZFS" umount "$MNT" || fusermount3 -uz "$MNT"; }
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
mkdir -p "$MNT"

rss() { awk '$1 == "VmRSS:" { print int($2 / 1024) }' "/proc/$1/status"; }
hwm() { awk '$1 == "VmHWM:" { print int($2 / 1024) }' "/proc/$1/status"; }
daemon() { pgrep -f "dzfs mount $1 " | head -1; }
idle() {  # RSS after up to 20 s of idling (background threads finish, memory goes back)
  local p=$1 v i
  for i in $(seq 20); do v=$(rss "$p"); sleep 1; [ "$(rss "$p")" -ge "$v" ] && break; done
  rss "$p"
}
# bound CACHE GROUP_CACHE DIRTY WORKERS: base 80 + cache + decoded groups + live decoders
# (max(2, group_cache / 112) of 115 MiB) + dirty of one file being written + 115 per worker.
bound() { echo $((80 + $1 + $2 + ($2 / 112 > 2 ? $2 / 112 : 2) * 115 + $3 + $4 * 115)); }
row() { printf '%-34s %10s %10s %10s\n' "$@"; }

soak() {  # MNT OPS SEED
  python3 - "$1/f" "$2" "$3" <<'EOF'
import mmap, os, random, sys
path, ops, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
if not os.path.exists(path):
    with open(path, "wb") as f:
        f.write(rng.randbytes(116 * 1024) + b"text " * 23000)
fd = os.open(path, os.O_RDWR)
for i in range(ops):
    op, size = rng.random(), os.fstat(fd).st_size
    if op < 0.4:
        os.pread(fd, rng.randint(1, 65536), rng.randint(0, max(size, 1)))
    elif op < 0.8:
        data = rng.randbytes(rng.randint(1, 32768)) if rng.random() < 0.5 else b"abc" * rng.randint(1, 8000)
        os.pwrite(fd, data, rng.randint(0, 300 * 1024))
    elif op < 0.9:
        os.ftruncate(fd, rng.randint(0, 300 * 1024))
    elif size > 4096:
        m = mmap.mmap(fd, size)
        m[rng.randint(0, size - 1)] = 65
        m.flush()
        m.close()
os.close(fd)
EOF
}

run_config() {  # LABEL CACHE GROUP_CACHE DIRTY WORKERS
  local label=$1 cache=$2 gcache=$3 dirty=$4 workers=$5 store pid b
  local opts="cache_mb=$cache,group_cache_mb=$gcache,dirty_mb=$dirty,workers=$workers,settle_secs=1"
  store=$WORK/store-$label
  "$DZFS" mkfs "$store" >/dev/null
  "$DZFS" mount "$store" "$MNT" -o "$opts"
  pid=$(daemon "$store")
  b=$(bound "$cache" "$gcache" "$dirty" "$workers")
  echo
  echo "== $label: -o $opts (bound $b MB)"
  row "phase" "RSS MB" "peak MB" "bound MB"
  row "mounted" "$(rss "$pid")" "$(hwm "$pid")" "$b"
  local t0 t1
  for ph in $(seq "$PHASES"); do
    t0=$(date +%s.%N)
    soak "$MNT" "$OPS" "$ph"
    t1=$(date +%s.%N)
    row "soak $((ph * OPS)) ops ($(awk -v a="$t1" -v b="$t0" 'BEGIN{printf "%.0f", a-b}') s)" "$(rss "$pid")" "$(hwm "$pid")" "$b"
  done
  row "soak, then idle" "$(idle "$pid")" "$(hwm "$pid")" "$b"
  cp -a "$TREE" "$MNT/tree"
  "$DZFS" compress "$MNT" --wait >/dev/null 2>&1
  row "copy of $(du -sm "$TREE" | cut -f1) MB + drain" "$(rss "$pid")" "$(hwm "$pid")" "$b"
  row "drain, then idle" "$(idle "$pid")" "$(hwm "$pid")" "$b"
  "$DZFS" umount "$MNT"
  "$DZFS" mount "$store" "$MNT" -o "ro,$opts"
  pid=$(daemon "$store")
  b=$(bound "$cache" "$gcache" 0 0)
  sync
  echo 3 >/proc/sys/vm/drop_caches
  t0=$(date +%s.%N)
  tar -C "$MNT" -cf - . | wc -c >/dev/null
  t1=$(date +%s.%N)
  row "ro restore (tar, $(awk -v a="$t1" -v b="$t0" 'BEGIN{printf "%.0f", a-b}') s)" "$(rss "$pid")" "$(hwm "$pid")" "$b"
  row "restore, then idle" "$(idle "$pid")" "$(hwm "$pid")" "$b"
  "$DZFS" umount "$MNT"
}

echo "memory_bench: $PHASES x $OPS random operations, then $TREE copied, drained and restored; $(nproc) CPUs"
run_config defaults 256 448 64 1
run_config small 16 16 8 1
