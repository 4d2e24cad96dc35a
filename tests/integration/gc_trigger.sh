#!/usr/bin/env bash
# Background gc started by the amount of garbage, not only by the clock: with the timed pass a
# day away (gc_secs=86400), a file overwritten again and again (each version 4 MiB of random
# bytes, fsynced) leaves 80 MiB of garbage chunks; with gc_garbage_mb=8 the packs must fall back
# to a few versions' worth within a minute, while the file reads back as its last version. The
# volume then checks clean.
. "$(dirname "$0")/lib.sh"
it_init gc_trigger 110

STORE=$IT_TMP/store MNT=$IT_TMP/mnt
dz_mkfs "$STORE"
dz_mount "$STORE" "$MNT" -o gc_secs=86400,gc_garbage_mb=8,commit_secs=1,workers=0

run_to 60 "$PY" - "$MNT/f" "$IT_TMP/last" <<'EOF2' || fail "overwriting the file failed"
import os, random, sys
path, last = sys.argv[1], sys.argv[2]
for i in range(20):
    data = random.Random(i).randbytes(4 << 20)
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
open(last, "wb").write(data)
EOF2
written=$(( 20 * 4 << 20 ))
most=$(( 24 << 20 ))  # the last version, and what the two-pass deletion may still hold
t0=$(date +%s)
seen=$(poll_le 60 "$most" pack_files_bytes "$STORE")
log "FIGURE packs: $seen bytes after $written bytes written (bound $most), $(($(date +%s) - t0))s after the last write"
[ "$seen" -le "$most" ] || fail "garbage was not collected: packs hold $seen bytes > $most, with gc_garbage_mb=8 and no timed pass due"
cmp "$IT_TMP/last" "$MNT/f" || fail "the file does not read back as its last version"
dz_umount "$MNT" "$STORE"
dz_fsck "$STORE"
