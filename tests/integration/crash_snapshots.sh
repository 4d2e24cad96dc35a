#!/usr/bin/env bash
# kill -9 of the mount daemon in the middle of a snapshot, a snapshot deletion and a prune
# (issue 16): each time dzfs fsck is clean (refcounts exact, link counts right), and every
# snapshot is either whole (equal to its source) or absent; a prune deletes all it chose or
# nothing. The tree has 12,000 files; kills land at moments spread over each operation, and, to be
# sure that some land inside its transaction, also while the daemon is held there
# (DZFS_TEST_PAUSE=POINT:MS, a pause inside the operation's savepoint).
. "$(dirname "$0")/lib.sh"
it_init crash_snapshots 300

SRC=$IT_TMP/src STORE=$IT_TMP/store MNT=$IT_TMP/mnt
"$PY" - "$SRC" <<'EOF'
import os, random, sys
rng = random.Random(7)
for d in range(120):
    p = os.path.join(sys.argv[1], "d%03d" % d)
    os.makedirs(p)
    for f in range(100):
        with open(os.path.join(p, "f%03d" % f), "w") as fh:
            fh.write("file %d/%d %s\n" % (d, f, rng.random()) * rng.randint(1, 4))
os.symlink("d000/f000", os.path.join(sys.argv[1], "link"))
os.link(os.path.join(sys.argv[1], "d001/f001"), os.path.join(sys.argv[1], "hard"))
EOF
dz_mkfs "$STORE"
dz_mount "$STORE" "$MNT" -o workers=0
mkdir "$MNT/current"
run_to 180 rsync -aH "$SRC/" "$MNT/current/"
t0=$(date +%s.%N)
run_to 60 "$DZFS" snapshot "$MNT/current" timing >/dev/null
took=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')
log "a snapshot of $(find "$SRC" | wc -l) entries takes ${took}s here"
run_to 60 "$DZFS" snapshot --delete "$MNT/.snapshots/timing" >/dev/null
dz_umount "$MNT" "$STORE"

# whole_or_absent NAME: the snapshot is equal to SRC, or does not exist.
whole_or_absent() {
  if [ -e "$MNT/.snapshots/$1" ]; then
    local out
    out=$(run_to 120 rsync -aHn --checksum --itemize-changes --delete "$SRC/" "$MNT/.snapshots/$1/")
    [ -z "$out" ] || fail "snapshot $1 is not whole after the crash: $(head -20 <<<"$out")"
    echo whole
  else
    echo absent
  fi
}

# crash_during DELAY CMD...: runs a dzfs command against the mount and kills the daemon DELAY
# seconds after it starts; then fsck, and mount again.
crash_during() {
  local delay=$1; shift
  DZFS_TEST_PAUSE=${PAUSE:-} dz_mount "$STORE" "$MNT" -o workers=0,commit_secs=1
  "$@" >/dev/null 2>&1 &
  local cp=$!
  sleep "$delay"
  dz_kill_daemon "$MNT" >/dev/null
  wait "$cp" 2>/dev/null || true
  dz_fsck "$STORE"
  dz_mount "$STORE" "$MNT" -o workers=0
}

declare -A seen=()
i=0
for delay in 0.02 0.3; do
  i=$((i + 1))
  crash_during "$delay" "$DZFS" snapshot "$MNT/current" "s$i"
  r=$(whole_or_absent "s$i")
  seen[$r]=1
  log "snapshot cut at ${delay}s: $r"
  dz_umount "$MNT" "$STORE"
done
PAUSE=snapshot:30000 crash_during 0.8 "$DZFS" snapshot "$MNT/current" held
[ "$(whole_or_absent held)" = absent ] || fail "a snapshot killed inside its transaction exists"
dz_umount "$MNT" "$STORE"
log "snapshot outcomes: ${!seen[*]}, and absent when killed inside the transaction"

# Deletion: the snapshot is whole (not deleted) or gone, never half.
for delay in 0.05; do
  dz_mount "$STORE" "$MNT" -o workers=0
  run_to 60 "$DZFS" snapshot "$MNT/current" victim >/dev/null
  dz_umount "$MNT" "$STORE"
  crash_during "$delay" "$DZFS" snapshot --delete "$MNT/.snapshots/victim"
  log "delete cut at ${delay}s: $(whole_or_absent victim)"
  [ -e "$MNT/.snapshots/victim" ] && run_to 60 "$DZFS" snapshot --delete "$MNT/.snapshots/victim" >/dev/null
  dz_umount "$MNT" "$STORE"
done
dz_mount "$STORE" "$MNT" -o workers=0
run_to 60 "$DZFS" snapshot "$MNT/current" victim >/dev/null
dz_umount "$MNT" "$STORE"
PAUSE=delete:30000 crash_during 0.8 "$DZFS" snapshot --delete "$MNT/.snapshots/victim"
[ "$(whole_or_absent victim)" = whole ] || fail "a deletion killed inside its transaction took the snapshot"
dz_umount "$MNT" "$STORE"

# Prune: one change for all it deletes.
dz_mount "$STORE" "$MNT" -o workers=0
for n in p1 p2 p3; do run_to 60 "$DZFS" snapshot "$MNT/current" "$n" >/dev/null; sleep 1.1; done
dz_umount "$MNT" "$STORE"
PAUSE=delete:30000 crash_during 0.8 "$DZFS" prune "$MNT" --keep-last 1 --prefix p
left=$(ls "$MNT/.snapshots" | grep '^p' | tr '\n' ' ')
[ "$left" = "p1 p2 p3 " ] || fail "a prune killed inside its change left a part of it: $left"
dz_umount "$MNT" "$STORE"
crash_during 0.1 "$DZFS" prune "$MNT" --keep-last 1 --prefix p
left=$(ls "$MNT/.snapshots" | grep '^p' | tr '\n' ' ')
case "$left" in
  "p1 p2 p3 " | "p3 ") log "prune cut at 0.1s left: $left" ;;
  *) fail "a cut prune left a part of its change: $left" ;;
esac
for n in $left; do [ "$(whole_or_absent "$n")" = whole ] || fail "$n is not whole"; done
dz_umount "$MNT" "$STORE"
dz_fsck "$STORE"
log "ok"
