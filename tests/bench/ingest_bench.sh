#!/usr/bin/env bash
# Ingest benchmark (issue 15; not a ctest test): many small files and one large file, copied
# into a dzfs mount and into a plain directory on the same disk, in one run. Prints one table.
#
#  - a tree of FILES small files (0-16 KiB, most small, text like source code, every file
#    unique) in DIRS directories, built deterministically once and kept in the cache dir;
#  - rsync -a of the tree into a plain directory and into a fresh dzfs volume (files/s, and the
#    dzfs figure as a multiple of the plain one); then `fsync` of the top directory (dzfs: the
#    index commit with its pack fsyncs; plain: the whole tree's sync) for the durable time;
#  - borg create --compression zstd,3 of the same tree into a new repository (files/s);
#  - a no-op incremental rsync -a into both: warm (right after the copy) and cold (dzfs
#    remounted; the plain directory after dropping dentries and inodes: echo 2 >drop_caches);
#  - cp of one BIG_MB file into both, alone and until durable (cp, then sync of the file);
#  - FUSE requests per small file for rsync's sequence, counted by the daemon
#    (DZFS_COUNT_REQUESTS, written at unmount; fs/fuse_ops.cc), and the daemon's time per file.
#
# usage: tests/bench/ingest_bench.sh [WORK_DIR]
#   WORK_DIR  store, mountpoint, plain copy, borg repository (default /var/tmp/dzingest/work;
#             emptied first and removed at the end). The tree and the big file are kept in
#             CACHE (default /var/tmp/dzingest) and rebuilt only when their parameters change.
# Env: DZFS (binary; default build-h5, build-it or build), DZFS_BASE (a second binary, e.g. a
#      build from before a change: measured in the same run as an extra column), DZFS_MOUNT_OPTS
#      (-o options), DZFS_ALT_OPTS (-o options of one more DZFS column, e.g. writeback=0),
#      FILES (60000), DIRS (300), BIG_MB (600), CACHE. Needs root (FUSE,
#      drop_caches); installs borgbackup with apt-get if missing, else skips borg with a message.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${CACHE:-/var/tmp/dzingest}
WORK=${1:-$CACHE/work}
FILES=${FILES:-60000}
DIRS=${DIRS:-300}
BIG_MB=${BIG_MB:-600}

die() { echo "ingest_bench: $*" >&2; exit 1; }
note() { echo "== $*" >&2; }
[ "$(id -u)" -eq 0 ] || die "needs root"
[ -c /dev/fuse ] || die "no /dev/fuse"
if [ -z "${DZFS:-}" ]; then
  for c in "$repo/build-h5/bin/dzfs" "$repo/build-it/bin/dzfs" "$repo/build/bin/dzfs"; do
    [ -x "$c" ] && { DZFS=$c; break; }
  done
fi
[ -x "${DZFS:-}" ] || die "no dzfs binary: build it or set DZFS"
[ -z "${DZFS_BASE:-}" ] || [ -x "$DZFS_BASE" ] || die "DZFS_BASE=$DZFS_BASE is not executable"
command -v rsync >/dev/null || die "needs rsync"

TREE=$CACHE/tree-$FILES-$DIRS BIG=$CACHE/big-$BIG_MB.bin
MNT=$WORK/mnt
mounted=()
cleanup() {
  set +e
  for m in "${mounted[@]}"; do
    mountpoint -q "$m" 2>/dev/null && { timeout 120 "$DZFS" umount "$m" || fusermount3 -uz "$m"; }
  done
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }'; }
times_plain() { awk -v p="$1" -v d="$2" 'BEGIN { if (d > 0) printf "%.2f", p / d; else print "-" }'; }
fsync_path() { python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$1"; }

# ---- the tree and the big file (deterministic; built once)
build_inputs() {
  python3 - "$TREE" "$FILES" "$DIRS" "$BIG" "$BIG_MB" <<'EOF'
import os, random, sys
tree, nfiles, ndirs, big, big_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
rng = random.Random(15)
words = ["static", "int", "return", "const", "struct", "if", "else", "for", "while", "void", "char",
         "unsigned", "size_t", "uint64_t", "buf", "len", "err", "ctx", "node", "list", "next", "prev",
         "lock", "unlock", "alloc", "free", "init", "read", "write", "open", "close", "data", "key",
         "value", "index", "count", "flags", "mode", "state", "result", "status", "self", "def",
         "import", "class", "public", "private", "namespace", "template", "auto", "=", "==", "+=",
         "->", "(", ")", "{", "}", ";", ",", "0", "1", "NULL", "true", "false", "//", "#include"]
def text(n, tag):
    # Lines of code-like words; every line numbered by `tag` so no two files or blocks share
    # a chunk (dedup would flatter the figures).
    out, size, line = [], 0, 0
    while size < n:
        s = "%s:%d " % (tag, line) + " ".join(rng.choice(words) for _ in range(rng.randint(2, 12))) + "\n"
        out.append(s); size += len(s); line += 1
    return "".join(out).encode()[:n]
if not os.path.exists(tree + "/.done"):
    os.makedirs(tree, exist_ok=True)
    exts = [".c", ".h", ".py", ".cc", ".md", ".txt", ".js", ".rs", ".go", ".json"]
    per_dir = (nfiles + ndirs - 1) // ndirs
    made = 0
    for d in range(ndirs):
        dpath = os.path.join(tree, "pkg%02d" % (d // 10), "mod%03d" % d)
        os.makedirs(dpath, exist_ok=True)
        for i in range(per_dir):
            if made == nfiles: break
            # 0-16 KiB, most files small as in source trees (median about 4 KiB), 2% empty.
            size = 0 if rng.random() < 0.02 else int(16384 * rng.random() ** 2)
            name = os.path.join(dpath, "file%04d%s" % (i, rng.choice(exts)))
            with open(name, "wb") as f: f.write(text(size, "%d/%d" % (d, i)))
            os.utime(name, (1700000000 + made, 1700000000 + made))
            made += 1
    open(tree + "/.done", "w").close()
if not os.path.exists(big):
    # Half code-like text (compresses about 4:1), half pseudo-random bytes (does not), in
    # alternating 1 MiB pieces, like a tarball of sources and binaries.
    with open(big + ".tmp", "wb") as f:
        for mb in range(big_mb):
            f.write(text(1 << 20, "b%d" % mb) if mb % 2 == 0 else rng.randbytes(1 << 20))
    os.rename(big + ".tmp", big)
EOF
}
note "inputs: $TREE, $BIG"
mkdir -p "$CACHE"
build_inputs
[ "$(find "$TREE" -type f ! -name .done | wc -l)" -eq "$FILES" ] || die "$TREE does not hold $FILES files"
tree_bytes=$(du -sb --exclude=.done "$TREE" | cut -f1)
cat "$BIG" >/dev/null  # every run reads its sources from the page cache
tar -C "$TREE" -cf - . | cat >/dev/null

rm -rf --one-file-system "$WORK"
mkdir -p "$WORK"
RSYNC=(rsync -a --exclude=/.done)

# ---- plain directory
note "plain: rsync -a"
PLAIN=$WORK/plain
mkdir -p "$PLAIN"
t0=$(now); "${RSYNC[@]}" "$TREE/" "$PLAIN/tree/"; t1=$(now); sync -f "$PLAIN"; t2=$(now)
pl_rsync=$(secs "$t0" "$t1") pl_rsync_sync=$(secs "$t0" "$t2")
t0=$(now); "${RSYNC[@]}" "$TREE/" "$PLAIN/tree/"; t1=$(now)
pl_noop_warm=$(secs "$t0" "$t1")
sync; echo 2 >/proc/sys/vm/drop_caches
t0=$(now); "${RSYNC[@]}" "$TREE/" "$PLAIN/tree/"; t1=$(now)
pl_noop_cold=$(secs "$t0" "$t1")
note "plain: cp of $BIG_MB MB"
t0=$(now); cp "$BIG" "$PLAIN/big"; t1=$(now); sync "$PLAIN/big"; t2=$(now)
pl_cp=$(secs "$t0" "$t1") pl_cp_sync=$(secs "$t0" "$t2")
cmp "$BIG" "$PLAIN/big" || die "plain copy differs"
rm -rf --one-file-system "$PLAIN"

# ---- dzfs: run_dzfs NAME BINARY sets NAME_* figures and writes request counts to WORK/NAME.*
run_dzfs() {
  local name=$1 bin=$2 opts=$3 store=$WORK/store-$1 mnt=$WORK/mnt-$1 t0 t1 t2
  mkdir -p "$mnt"
  "$bin" mkfs "$store" >/dev/null
  mount_dz() { DZFS_COUNT_REQUESTS=$WORK/$name.$1 "$bin" mount "$store" "$mnt" ${opts:+-o "$opts"}; mounted+=("$mnt"); }
  note "$name: rsync -a"
  mount_dz rsync
  t0=$(now); "${RSYNC[@]}" "$TREE/" "$mnt/tree/"; t1=$(now); fsync_path "$mnt"; t2=$(now)
  eval "${name}_rsync=$(secs "$t0" "$t1") ${name}_rsync_sync=$(secs "$t0" "$t2")"
  "$bin" umount "$mnt"
  note "$name: no-op rsync -a, cold (remounted) then warm"
  mount_dz noop
  t0=$(now); "${RSYNC[@]}" "$TREE/" "$mnt/tree/"; t1=$(now)
  eval "${name}_noop_cold=$(secs "$t0" "$t1")"
  t0=$(now); "${RSYNC[@]}" "$TREE/" "$mnt/tree/"; t1=$(now)
  eval "${name}_noop_warm=$(secs "$t0" "$t1")"
  "$bin" umount "$mnt"
  note "$name: cp of $BIG_MB MB"
  mount_dz big
  t0=$(now); cp "$BIG" "$mnt/big"; t1=$(now); sync "$mnt/big"; t2=$(now)
  eval "${name}_cp=$(secs "$t0" "$t1") ${name}_cp_sync=$(secs "$t0" "$t2")"
  cmp "$BIG" "$mnt/big" || die "$name: the big file reads back different"
  "$bin" umount "$mnt"
  mount_dz check
  # The copy is the tree (a benchmark of wrong data is worthless): names, sizes, times, bytes.
  rsync -a --checksum --dry-run --itemize-changes --exclude=/.done "$TREE/" "$mnt/tree/" >"$WORK/$name.diff"
  [ ! -s "$WORK/$name.diff" ] || die "$name: the mount differs from the tree: $(head -5 "$WORK/$name.diff")"
  "$bin" umount "$mnt"
  rm -rf --one-file-system "$store"
}
cols=()
if [ -n "${DZFS_BASE:-}" ]; then run_dzfs base "$DZFS_BASE" "${DZFS_MOUNT_OPTS:-}"; cols+=(base); fi
run_dzfs dz "$DZFS" "${DZFS_MOUNT_OPTS:-}"
cols+=(dz)
if [ -n "${DZFS_ALT_OPTS:-}" ]; then
  run_dzfs alt "$DZFS" "${DZFS_MOUNT_OPTS:+$DZFS_MOUNT_OPTS,}$DZFS_ALT_OPTS"; cols+=(alt)
fi

# ---- borg
borg_secs=-
if ! command -v borg >/dev/null 2>&1; then
  note "installing borgbackup"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq borgbackup >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq borgbackup >/dev/null 2>&1; } ||
    note "no borg (apt-get install borgbackup failed): borg column skipped"
fi
if command -v borg >/dev/null 2>&1; then
  note "borg create --compression zstd,3"
  export BORG_REPO=$WORK/borg BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
  export BORG_BASE_DIR=$WORK/borg-home  # its own files cache: every file is read and chunked
  borg init -e none "$BORG_REPO" >&2
  t0=$(now); (cd "$TREE" && borg create --compression zstd,3 --exclude ./.done ::bench .); t1=$(now)
  borg_secs=$(secs "$t0" "$t1")
fi

# ---- the table
label() { case $1 in dz) echo "dzfs";; base) echo "DZFS_BASE";; alt) echo "-o $DZFS_ALT_OPTS";; esac; }
row() { printf '%-40s' "$1"; shift; printf ' %14s' "$@"; printf '\n'; }
get() { eval "echo \${$1_$2}"; }
echo
echo "ingest_bench: $FILES files in $DIRS dirs, $tree_bytes bytes ($TREE); big file $BIG_MB MiB; work dir $WORK"
echo "dzfs: $DZFS${DZFS_BASE:+; DZFS_BASE: $DZFS_BASE}${DZFS_MOUNT_OPTS:+; -o $DZFS_MOUNT_OPTS}${DZFS_ALT_OPTS:+; last column: dzfs -o $DZFS_ALT_OPTS}; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $(uname -r); $(date -u +%FT%TZ)"
hdr=(); for c in "${cols[@]}"; do hdr+=("$(label "$c")"); done
row "" "plain dir" "${hdr[@]}" "borg zstd,3"
r=(); for c in "${cols[@]}"; do r+=("$(rate "$FILES" "$(get "$c" rsync)")"); done
row "small files: rsync -a, files/s" "$(rate "$FILES" "$pl_rsync")" "${r[@]}" "$(rate "$FILES" "$borg_secs")"
r=(); for c in "${cols[@]}"; do r+=("$(times_plain "$pl_rsync" "$(get "$c" rsync)")"); done
row "  x plain" "1.00" "${r[@]}" "$(times_plain "$pl_rsync" "$borg_secs")"
r=(); for c in "${cols[@]}"; do r+=("$(get "$c" rsync)"); done
row "  seconds" "$pl_rsync" "${r[@]}" "$borg_secs"
r=(); for c in "${cols[@]}"; do r+=("$(get "$c" rsync_sync)"); done
row "  seconds until durable (+ fsync/sync)" "$pl_rsync_sync" "${r[@]}" "-"
for k in noop_warm noop_cold; do
  r=(); for c in "${cols[@]}"; do r+=("$(get "$c" "$k")"); done
  row "no-op rsync -a, ${k#noop_} (s)" "$(eval echo \$pl_$k)" "${r[@]}" "-"
  r=(); for c in "${cols[@]}"; do r+=("$(times_plain "$(eval echo \$pl_$k)" "$(get "$c" "$k")")"); done
  row "  x plain" "1.00" "${r[@]}" "-"
done
for k in cp cp_sync; do
  r=(); for c in "${cols[@]}"; do r+=("$(get "$c" "$k")"); done
  row "$BIG_MB MiB file: $( [ $k = cp ] && echo "cp (s)" || echo "cp + sync FILE (s)")" "$(eval echo \$pl_$k)" "${r[@]}" "-"
  r=(); for c in "${cols[@]}"; do r+=("$(awk -v s="$(get "$c" "$k")" -v m="$BIG_MB" 'BEGIN { printf "%.0f", m * 1.048576 / s }')"); done
  row "  MB/s" "$(awk -v s="$(eval echo \$pl_$k)" -v m="$BIG_MB" 'BEGIN { printf "%.0f", m * 1.048576 / s }')" "${r[@]}" "-"
  r=(); for c in "${cols[@]}"; do r+=("$(times_plain "$(eval echo \$pl_$k)" "$(get "$c" "$k")")"); done
  row "  x plain" "1.00" "${r[@]}" "-"
done
# FUSE requests per small file (the daemon's counts over the whole phase, divided by FILES) and
# the daemon's time per file in each request type.
for phase in rsync noop; do
  echo
  echo "FUSE requests per file, $( [ $phase = rsync ] && echo "rsync -a into an empty volume" || echo "no-op rsync -a, cold then warm" ) (count / $FILES; daemon us per file)"
  ops=$(cat "$WORK"/*."$phase" 2>/dev/null | awk '{ print $1 }' | sort -u)
  hdr=(); for c in "${cols[@]}"; do hdr+=("$(label "$c")" "us"); done
  row "" "${hdr[@]}"
  for op in $ops total; do
    r=()
    for c in "${cols[@]}"; do
      r+=($(awk -v op="$op" -v n="$FILES" '$1 == op || op == "total" { c += $2; us += $3 } END { printf "%.2f %.1f", c / n, us / n }' "$WORK/$c.$phase"))
    done
    row "  $op" "${r[@]}"
  done
done
