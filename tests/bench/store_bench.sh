#!/usr/bin/env bash
# Whole-store benchmark (issue 5; not a ctest test): the shared corpus rsynced into a dzfs mount,
# the recompression backlog drained, garbage collected; then
#   - whole-store bytes (packs + index + models + config) against the input, against per-chunk
#     xz -9e and zstd -19 (64 KiB pieces, as a block store must) and against
#     `borg create --compression lzma,9` and `zstd,19` repositories of the same data;
#   - restore throughput from the neural tier after a remount with caches dropped: one reader
#     (tar | cat) and 4 parallel readers (xargs -P4 cat);
#   - optionally (TRAIN=1, the default) a per-volume model: `dzfs train STORE` then
#     `dzfs compress STORE --migrate`, and the store bytes again.
# Prints one table.
#
# usage: tests/bench/store_bench.sh [CORPUS_DIR] [WORK_DIR]
# Env: DZFS (binary; default build/bin/dzfs), WORKERS (recompression threads; default CPUs),
#      TRAIN (1/0), CLASSES (default "src docs genomic bin").
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CORPUS=${1:-/tmp/dzcorpus}
WORK=${2:-/var/tmp/dzstorebench}
CORPUS_SH=${CORPUS_SH:-$repo/../shared/bench/corpus.sh}
read -r -a CLASSES <<<"${CLASSES:-src docs genomic bin}"
WORKERS=${WORKERS:-$(nproc)}
TRAIN=${TRAIN:-1}
DZFS=${DZFS:-$repo/build/bin/dzfs}

die() { echo "store_bench: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root"
[ -x "$DZFS" ] || die "no dzfs binary at $DZFS: build it or set DZFS"

MNT=$WORK/mnt STORE=$WORK/store SRC=$WORK/src
cleanup() {
  set +e
  if mountpoint -q "$MNT" 2>/dev/null; then timeout 120 "$DZFS" umount "$MNT" || fusermount3 -uz "$MNT"; fi
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
mbps() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.2f", n / s / 1e6; else print "-" }'; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
store_bytes() { du -sb --apparent-size "$STORE" | cut -f1; }

[ -d "$CORPUS/src" ] || bash "$CORPUS_SH" "$CORPUS" >&2
rm -rf --one-file-system "$WORK"
mkdir -p "$MNT" "$SRC"
for c in "${CLASSES[@]}"; do cp -al "$CORPUS/$c" "$SRC/$c" 2>/dev/null || cp -a "$CORPUS/$c" "$SRC/$c"; done
in_bytes=$(find "$SRC" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
in_files=$(find "$SRC" -type f | wc -l)

echo "== dzfs: rsync, drain the backlog with $WORKERS workers, gc" >&2
"$DZFS" mkfs "$STORE" >&2
"$DZFS" mount "$STORE" "$MNT" -o settle_secs=0,workers="$WORKERS"
rsync -a "$SRC/" "$MNT/"
python3 -c 'import os,sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$MNT"  # the daemon commits
zstd_tier=$("$DZFS" stats "$MNT" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stored_bytes"])')
t0=$(now)
"$DZFS" compress "$MNT" --wait >&2
t1=$(now)
drain_s=$(secs "$t0" "$t1")
"$DZFS" umount "$MNT"
"$DZFS" gc "$STORE" >&2
dz_bytes=$(store_bytes)
"$DZFS" stats "$STORE" >&2

echo "== restore from the neural tier" >&2
"$DZFS" mount "$STORE" "$MNT"
drop_caches
t0=$(now); (cd "$MNT" && tar -cf - .) | cat >/dev/null; t1=$(now)
r1_s=$(secs "$t0" "$t1")
"$DZFS" umount "$MNT"
"$DZFS" mount "$STORE" "$MNT"
drop_caches
t0=$(now); (cd "$MNT" && find . -type f -print0 | xargs -0 -n 8 -P 4 cat >/dev/null); t1=$(now)
r4_s=$(secs "$t0" "$t1")
"$DZFS" umount "$MNT"

trained_bytes=- train_s=-
if [ "$TRAIN" = 1 ]; then
  echo "== per-volume model: dzfs train, compress --migrate, gc" >&2
  t0=$(now)
  "$DZFS" train "$STORE" --migrate >&2 || echo "(not adopted)" >&2
  "$DZFS" compress "$STORE" >&2
  "$DZFS" gc "$STORE" >&2
  t1=$(now)
  train_s=$(secs "$t0" "$t1")
  trained_bytes=$(store_bytes)
  "$DZFS" models "$STORE" >&2
fi

echo "== per-chunk xz -9e and zstd -19 (64 KiB pieces)" >&2
read -r xz_bytes zstd19_bytes < <(python3 - "$SRC" <<'EOF'
import lzma, os, pathlib, subprocess, sys
xz = zs = 0
for p in sorted(pathlib.Path(sys.argv[1]).rglob('*')):
    if not p.is_file(): continue
    b = p.read_bytes()
    for i in range(0, len(b), 65536):
        c = b[i:i + 65536]
        xz += len(lzma.compress(c, preset=9 | lzma.PRESET_EXTREME))
        zs += len(subprocess.run(['zstd', '-q', '-19', '-c'], input=c, stdout=subprocess.PIPE, check=True).stdout)
print(xz, zs)
EOF
)

command -v borg >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq borgbackup >/dev/null
declare -A borg_bytes borg_s
for comp in lzma,9 zstd,19; do
  echo "== borg create --compression $comp" >&2
  repo_dir=$WORK/borg-${comp%%,*}
  BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes borg init -e none "$repo_dir" >&2
  t0=$(now)
  (cd "$SRC" && borg create --compression "$comp" "$repo_dir::a" .) >&2
  t1=$(now)
  borg_s[$comp]=$(secs "$t0" "$t1")
  borg_bytes[$comp]=$(du -sb --apparent-size "$repo_dir" | cut -f1)
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo
echo "store_bench: $in_files files, $in_bytes bytes ($(echo "${CLASSES[@]}")), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %14s %10s %10s\n' "what" "bytes" "of input" "seconds"
printf '%-34s %14s %10s %10s\n' "input" "$in_bytes" "1.000" "-"
printf '%-34s %14s %10s %10s\n' "dzfs zstd tier (before draining)" "$zstd_tier" "$(ratio "$zstd_tier" "$in_bytes")" "-"
printf '%-34s %14s %10s %10s\n' "dzfs whole store, drained" "$dz_bytes" "$(ratio "$dz_bytes" "$in_bytes")" "$drain_s"
[ "$TRAIN" = 1 ] && printf '%-34s %14s %10s %10s\n' "dzfs whole store, volume model" "$trained_bytes" "$(ratio "$trained_bytes" "$in_bytes")" "$train_s"
printf '%-34s %14s %10s %10s\n' "per-chunk xz -9e" "$xz_bytes" "$(ratio "$xz_bytes" "$in_bytes")" "-"
printf '%-34s %14s %10s %10s\n' "per-chunk zstd -19" "$zstd19_bytes" "$(ratio "$zstd19_bytes" "$in_bytes")" "-"
for comp in lzma,9 zstd,19; do
  printf '%-34s %14s %10s %10s\n' "borg --compression $comp" "${borg_bytes[$comp]}" "$(ratio "${borg_bytes[$comp]}" "$in_bytes")" "${borg_s[$comp]}"
done
echo "recompression drain: $(mbps "$in_bytes" "$drain_s") MB/s with $WORKERS workers"
echo "restore from the neural tier (caches dropped): 1 reader $(mbps "$in_bytes" "$r1_s") MB/s ($r1_s s), 4 readers $(mbps "$in_bytes" "$r4_s") MB/s ($r4_s s)"
