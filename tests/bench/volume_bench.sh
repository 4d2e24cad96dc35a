#!/usr/bin/env bash
# Volume benchmark (not a ctest test): the shared corpus (../shared/bench/corpus.sh) copied with
# rsync -a into a dzfs mount and into a plain directory on the same disk, read back in full
# (tar | cat) after dropping caches, and stored size against du -sb of the source and
# borg create --compression zstd,3 of the same data. Prints one table.
#
# usage: tests/bench/volume_bench.sh [CORPUS_DIR] [WORK_DIR]
#   CORPUS_DIR  where corpus.sh builds the corpus (default /tmp/dzcorpus)
#   WORK_DIR    store, mountpoint, plain copy and borg repository (default /var/tmp/dzbench;
#               emptied first and removed at the end)
# Env: DZFS (binary; default build-it/bin/dzfs or build/bin/dzfs), DZFS_MOUNT_OPTS (-o options).
# Needs root (mount, drop_caches, apt-get for the corpus packages and borgbackup if missing).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CORPUS=${1:-/tmp/dzcorpus}
WORK=${2:-/var/tmp/dzbench}
CORPUS_SH=${CORPUS_SH:-$repo/../shared/bench/corpus.sh}
CLASSES=(src docs genomic bin)

die() { echo "volume_bench: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root"
if [ -z "${DZFS:-}" ]; then
  for c in "$repo/build-it/bin/dzfs" "$repo/build/bin/dzfs"; do [ -x "$c" ] && { DZFS=$c; break; }; done
fi
[ -x "${DZFS:-}" ] || die "no dzfs binary: build it or set DZFS"
[ -f "$CORPUS_SH" ] || die "no corpus script at $CORPUS_SH"

MNT=$WORK/mnt STORE=$WORK/store PLAIN=$WORK/plain BORG=$WORK/borg
cleanup() {
  set +e
  if mountpoint -q "$MNT" 2>/dev/null; then
    timeout 120 "$DZFS" umount "$MNT" || fusermount3 -uz "$MNT"
  fi
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
mbps() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", n / s / 1e6; else print "-" }'; }
drop_caches() {
  sync
  if echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then DROPPED=yes; else DROPPED=no; fi
}

echo "== corpus: $CORPUS_SH $CORPUS" >&2
bash "$CORPUS_SH" "$CORPUS" >&2
for c in "${CLASSES[@]}"; do [ -d "$CORPUS/$c" ] || die "corpus class $CORPUS/$c missing"; done
src_bytes=$(cd "$CORPUS" && du -scb "${CLASSES[@]}" | tail -n 1 | cut -f1)
src_files=$(cd "$CORPUS" && find "${CLASSES[@]}" -type f | wc -l)

if ! command -v borg >/dev/null 2>&1; then
  echo "== installing borgbackup" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq borgbackup >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq borgbackup >/dev/null; }
fi

rm -rf --one-file-system "$WORK"
mkdir -p "$MNT" "$PLAIN"
RSYNC=(rsync -a --exclude=/.ksrc)

# ---- write: dzfs
echo "== write: rsync -a into dzfs" >&2
"$DZFS" mkfs "$STORE" >&2
"$DZFS" mount "$STORE" "$MNT" ${DZFS_MOUNT_OPTS:+-o "$DZFS_MOUNT_OPTS"}
drop_caches
t0=$(now)
"${RSYNC[@]}" "$CORPUS/" "$MNT/"
t1=$(now)
"$DZFS" umount "$MNT"
t2=$(now)
dz_write=$(secs "$t0" "$t1") dz_write_commit=$(secs "$t0" "$t2")

# ---- write: plain directory on the same disk
echo "== write: rsync -a into a plain directory" >&2
drop_caches
t0=$(now)
"${RSYNC[@]}" "$CORPUS/" "$PLAIN/"
t1=$(now)
sync -f "$PLAIN"
t2=$(now)
pl_write=$(secs "$t0" "$t1") pl_write_commit=$(secs "$t0" "$t2")

# ---- read: full restore read of both
echo "== read: tar cf - . | cat >/dev/null" >&2
"$DZFS" mount "$STORE" "$MNT" ${DZFS_MOUNT_OPTS:+-o "$DZFS_MOUNT_OPTS"}
drop_caches
t0=$(now)
tar -C "$MNT" -cf - . | cat >/dev/null
t1=$(now)
dz_read=$(secs "$t0" "$t1")
# The restored bytes are the original ones (a benchmark of wrong data is worthless).
diff -r -q "$PLAIN" "$MNT" >&2 || die "the dzfs copy differs from the plain copy"
"$DZFS" umount "$MNT"
drop_caches
t0=$(now)
tar -C "$PLAIN" -cf - . | cat >/dev/null
t1=$(now)
pl_read=$(secs "$t0" "$t1")

# ---- sizes
stats=$("$DZFS" stats "$STORE" --json)
read -r dz_stored dz_packs dz_unique dz_codecs < <(printf '%s' "$stats" | python3 -c '
import json, sys
o = json.load(sys.stdin)
print(o["stored_bytes"], o["pack_bytes"], o["unique_chunk_bytes"],
      ",".join("%s=%d" % kv for kv in sorted(o["bytes_by_codec"].items())) or "-")')
dz_store_du=$(du -sb "$STORE" | cut -f1)
plain_du=$(du -sb "$PLAIN" | cut -f1)
plain_alloc=$(du -sB1 "$PLAIN" | cut -f1)

echo "== borg create --compression zstd,3" >&2
export BORG_REPO=$BORG BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
borg init -e none "$BORG" >&2
t0=$(now)
(cd "$CORPUS" && borg create --compression zstd,3 "::bench" "${CLASSES[@]}")
t1=$(now)
borg_secs=$(secs "$t0" "$t1")
borg_du=$(du -sb "$BORG" | cut -f1)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo
echo "volume_bench: corpus $CORPUS ($src_files files, $src_bytes bytes in ${CLASSES[*]}), work dir $WORK"
echo "dzfs: $DZFS ${DZFS_MOUNT_OPTS:+-o $DZFS_MOUNT_OPTS}; caches dropped: $DROPPED; $(nproc) cores; $(date -u +%FT%TZ)"
printf '%-34s %14s %14s %14s\n' "" "dzfs" "plain dir" "borg zstd,3"
printf '%-34s %14s %14s %14s\n' "write: rsync -a (s)" "$dz_write" "$pl_write" "$borg_secs"
printf '%-34s %14s %14s %14s\n' "write: MB/s" "$(mbps "$src_bytes" "$dz_write")" "$(mbps "$src_bytes" "$pl_write")" "$(mbps "$src_bytes" "$borg_secs")"
printf '%-34s %14s %14s %14s\n' "write incl. umount / sync (s)" "$dz_write_commit" "$pl_write_commit" "-"
printf '%-34s %14s %14s %14s\n' "read: tar | cat, cold (s)" "$dz_read" "$pl_read" "-"
printf '%-34s %14s %14s %14s\n' "read: MB/s" "$(mbps "$src_bytes" "$dz_read")" "$(mbps "$src_bytes" "$pl_read")" "-"
printf '%-34s %14s %14s %14s\n' "stored bytes" "$dz_stored" "$plain_du" "$borg_du"
printf '%-34s %14s %14s %14s\n' "  on disk (du -sb store/dir/repo)" "$dz_store_du" "$plain_alloc" "$borg_du"
printf '%-34s %14s %14s %14s\n' "source bytes / stored bytes" "$(ratio "$src_bytes" "$dz_stored")" "$(ratio "$src_bytes" "$plain_du")" "$(ratio "$src_bytes" "$borg_du")"
printf '%-34s %14s\n' "dzfs pack_bytes" "$dz_packs"
printf '%-34s %14s\n' "dzfs unique_chunk_bytes" "$dz_unique"
printf '%-34s %s\n' "dzfs bytes_by_codec" "$dz_codecs"
