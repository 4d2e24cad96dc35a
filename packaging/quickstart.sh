#!/usr/bin/env bash
# The README's first quick-start command: sets everything up and runs the main job on a fresh
# Debian 12 machine (as root): build dzfs, make a volume (with the embedded default models),
# mount it, rsync a tree into current/, snapshot it, let the background workers recompress it
# with the neural codec, read it back and compare, print the snapshots and the volume's stats.
#   usage: packaging/quickstart.sh [SOURCE_TREE]   (default: /usr/include/linux, ~6.6 MB of C)
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-/usr/include/linux}
bash packaging/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target dzfs
dzfs=$PWD/build/bin/dzfs
work=${DZFS_DEMO_DIR:-/var/tmp/dzfs-demo}
"$dzfs" umount "$work/mnt" 2>/dev/null || true
rm -rf "$work" && mkdir -p "$work/mnt"
"$dzfs" mkfs "$work/store"
"$dzfs" mount "$work/store" "$work/mnt"
trap '"$dzfs" umount "$work/mnt" 2>/dev/null || fusermount3 -uz "$work/mnt" 2>/dev/null || true' EXIT
echo "== rsync $src into the volume"
time rsync -aHAX --numeric-ids "$src/" "$work/mnt/current/"
echo "== a read-only snapshot of it (instant: it shares every chunk)"
"$dzfs" snapshot "$work/mnt/current"
echo "== neural recompression by the background workers (about 1 MB/s per core)"
time "$dzfs" compress "$work/mnt" --wait
echo "== read back and compare (rsync --checksum; no output means identical)"
diffs=$(rsync -aHAXn --numeric-ids --checksum --itemize-changes "$src/" "$work/mnt/current/")
diffs+=$(rsync -aHAXn --numeric-ids --checksum --itemize-changes "$src/" "$work/mnt/.snapshots/"*/)
[ -z "$diffs" ] || { echo "$diffs" | head; echo "MISMATCH"; exit 1; }
time tar -C "$work/mnt/current" -cf - . | wc -c
"$dzfs" snapshots "$work/mnt"
"$dzfs" umount "$work/mnt"
trap - EXIT
echo "== dzfs gc (reclaims the zstd records that recompression superseded)"
"$dzfs" gc "$work/store"
echo "== dzfs stats (after unmount: everything committed)"
"$dzfs" stats "$work/store"
echo "source: $(du -sb "$src" | cut -f1) bytes in $(find "$src" -type f | wc -l) files"
