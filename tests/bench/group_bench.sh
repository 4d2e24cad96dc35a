#!/usr/bin/env bash
# Solid-group benchmark (issue 14; not a ctest test). For each class of the bench corpus and each
# group size: a fresh volume, `rsync -a` of the class into a mount, the backlog drained, unmounted,
# `dzfs gc`; then
#   - the store (du -sb of STORE less models/, whose shipped models are a fixed cost; the index
#     and packs also apart), against ../shared/bench/stores.sh (zpaq -m3/-m4/-m5, borg) run on the
#     same files in the same run (ANCHORS=1, the default; its figures are printed as it prints them);
#   - drain MB/s per worker (raw bytes / worker CPU time, from `dzfs stats`) and wall MB/s;
#   - sequential restore from the neural tier after a remount with caches dropped: `tar` of the
#     mount to /dev/null (1 reader) and 4 parallel readers (xargs -P4 cat);
#   - random 4 KiB reads of cold data (fresh mount, caches dropped): p50 and p99 latency.
# With OLD_DZFS=path (a dzfs built before groups), the same figures for it (per-chunk frames).
#
# usage: tests/bench/group_bench.sh [CORPUS_DIR] [WORK_DIR]
# Env: DZFS (default build/bin/dzfs), GROUP_KBS (default "1024 4096"), CLASSES (default
#      "src docs genomic bin"), WORKERS (default CPUs), ANCHORS (1/0), OLD_DZFS, RANDOM_READS (64).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CORPUS=${1:-/tmp/dzcorpus}
WORK=${2:-/var/tmp/dzgroupbench}
SHARED=${SHARED:-$repo/../shared/bench}
read -r -a CLASSES <<<"${CLASSES:-src docs genomic bin}"
read -r -a GROUP_KBS <<<"${GROUP_KBS:-1024 4096}"
WORKERS=${WORKERS:-$(nproc)}
ANCHORS=${ANCHORS:-1}
DZFS=${DZFS:-$repo/build/bin/dzfs}
OLD_DZFS=${OLD_DZFS:-}
RANDOM_READS=${RANDOM_READS:-64}

die() { echo "group_bench: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (FUSE mounts, drop_caches)"
[ -x "$DZFS" ] || die "no dzfs binary at $DZFS: build it or set DZFS"
[ -d "$CORPUS/src" ] || bash "$SHARED/corpus.sh" "$CORPUS" >&2

MNT=$WORK/mnt STORE=$WORK/store
cleanup() {
  set +e
  if mountpoint -q "$MNT" 2>/dev/null; then timeout 120 "$BIN" umount "$MNT" || fusermount3 -uz "$MNT"; fi
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
mbps() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.2f", n / s / 1e6; else print "-" }'; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
stat_key() { "$BIN" stats "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin).get('$2', 0))"; }

# Random 4 KiB reads at random offsets of random files: latency in ms, p50 and p99.
random_reads() {
  python3 - "$1" "$RANDOM_READS" <<'EOF'
import os, random, sys, time
root, n = sys.argv[1], int(sys.argv[2])
files = []
for d, _, fs in os.walk(root):
    for f in fs:
        p = os.path.join(d, f)
        s = os.lstat(p).st_size
        if s >= 4096: files.append((p, s))
rng = random.Random(14)
lat = []
for _ in range(n):
    p, s = rng.choice(files)
    off = rng.randrange(0, s - 4095)
    t = time.perf_counter()
    with open(p, 'rb', buffering=0) as f:
        f.seek(off); f.read(4096)
    lat.append((time.perf_counter() - t) * 1000)
lat.sort()
print("%.0f %.0f" % (lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]))
EOF
}

results=()
run_one() {  # BIN LABEL CLASS GROUP_KB(or -)
  BIN=$1; local label=$2 cls=$3 gkb=$4
  rm -rf --one-file-system "$WORK"; mkdir -p "$MNT"
  local in_bytes; in_bytes=$(find "$CORPUS/$cls" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
  if [ "$gkb" = - ]; then "$BIN" mkfs "$STORE" >/dev/null; else "$BIN" mkfs "$STORE" --group-kb "$gkb" >/dev/null; fi
  "$BIN" mount "$STORE" "$MNT" -o settle_secs=0,workers="$WORKERS"
  rsync -a "$CORPUS/$cls/" "$MNT/$cls/"
  python3 -c 'import os,sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$MNT"
  local t0 t1; t0=$(now)
  "$BIN" compress "$MNT" --wait >/dev/null 2>&1
  t1=$(now)
  local drain_wall; drain_wall=$(secs "$t0" "$t1")
  "$BIN" umount "$MNT"
  "$BIN" gc "$STORE" >/dev/null 2>&1
  local store idx packs models per_worker
  models=$(du -sb "$STORE/models" | cut -f1)
  store=$(( $(du -sb "$STORE" | cut -f1) - models ))
  idx=$(cat "$STORE"/index.db* 2>/dev/null | wc -c)  # index.db.zst at rest (index.db after a crash)
  packs=$(du -sb "$STORE/packs" | cut -f1)
  per_worker=$("$BIN" stats "$STORE" --json | python3 -c 'import json,sys; o=json.load(sys.stdin); b=o.get("recompress_raw_bytes",0); ns=o.get("recompress_busy_ns",0); print("%.2f" % (b/ns*1e3) if ns else "-")')
  "$BIN" mount "$STORE" "$MNT" -o ro
  drop_caches
  t0=$(now); (cd "$MNT" && tar -cf - .) | cat >/dev/null; t1=$(now)
  local r1; r1=$(mbps "$in_bytes" "$(secs "$t0" "$t1")")
  "$BIN" umount "$MNT"
  "$BIN" mount "$STORE" "$MNT" -o ro
  drop_caches
  t0=$(now); (cd "$MNT" && find . -type f -print0 | xargs -0 -n 8 -P 4 cat >/dev/null); t1=$(now)
  local r4; r4=$(mbps "$in_bytes" "$(secs "$t0" "$t1")")
  "$BIN" umount "$MNT"
  "$BIN" mount "$STORE" "$MNT" -o ro
  drop_caches
  local lat; lat=$(random_reads "$MNT")
  "$BIN" umount "$MNT"
  local row
  row=$(printf '%-8s %-14s %11s %11s %10s %10s %8s %8s %8s %8s %8s %8s' "$cls" "$label" "$in_bytes" "$store" "$idx" "$packs" \
        "$(mbps "$in_bytes" "$drain_wall")" "$per_worker" "$r1" "$r4" $lat)
  echo "$row" >&2
  results+=("$row")
}

for cls in "${CLASSES[@]}"; do
  [ -d "$CORPUS/$cls" ] || continue
  [ -n "$OLD_DZFS" ] && run_one "$OLD_DZFS" "per-chunk" "$cls" -
  for g in "${GROUP_KBS[@]}"; do run_one "$DZFS" "groups-${g}k" "$cls" "$g"; done
done

echo
echo "group_bench: $(nproc) CPUs, $WORKERS workers, load $(cut -d' ' -f1-3 /proc/loadavg); store = du -sb STORE less models/ ($(du -sb "$STORE/models" 2>/dev/null | cut -f1) bytes of shipped models)"
printf '%-8s %-14s %11s %11s %10s %10s %8s %8s %8s %8s %8s %8s\n' class dzfs input store index packs \
  "drainMB/s" "MB/s/wkr" "rest1" "rest4" "rnd-p50" "rnd-p99"
printf '%s\n' "${results[@]}"
echo "(drain: wall MB/s with all workers, and raw MB/s per worker CPU-second; rest1/rest4: restore MB/s, caches dropped; rnd: cold random 4 KiB reads, ms)"
if [ "$ANCHORS" = 1 ]; then
  echo
  echo "anchors, same files, same run (../shared/bench/stores.sh, every class of CORPUS: bytes/seconds):"
  bash "$SHARED/stores.sh" "$CORPUS" "$WORK/anchors"
fi
rm -rf --one-file-system "$WORK"
