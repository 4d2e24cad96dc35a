#!/usr/bin/env bash
# The daemon killed with SIGKILL in the middle of an rsync (twice, at different moments, with
# commit_secs=1 and rsync --bwlimit, so that some batches are committed and some are not): each
# time the store must be clean for dzfs fsck and mount again, and a second rsync (--delete, which
# also removes the temp file the killed rsync left) must complete the copy exactly.
. "$(dirname "$0")/lib.sh"
it_init crash 120

SRC=$IT_TMP/src STORE=$IT_TMP/store MNT=$IT_TMP/mnt
"$PY" "$TREECHECK" gen "$SRC" --seed 3 --text-files 6 --text-size 1M --rand-files 4 --rand-size 2M --small-files 300
dz_mkfs "$STORE"

for delay in 1.3 2.3; do
  dz_mount "$STORE" "$MNT" -o commit_secs=1
  rsync -a --bwlimit=6000 "$SRC/" "$MNT/" >/dev/null 2>&1 &   # ~3 s: the kill lands mid-copy
  rp=$!
  sleep "$delay"
  pids=$(dzfs_pids_for "$MNT")
  [ -n "$pids" ] || fail "cannot find the dzfs daemon of $MNT"
  kill -0 "$rp" 2>/dev/null && state="mid-rsync" || state="after rsync finished (the machine was fast)"
  log "SIGKILL to the daemon $(echo $pids) at ${delay}s, $state"
  kill -KILL $pids
  wait "$rp" 2>/dev/null || true
  timeout 10 fusermount3 -uz "$MNT" 2>/dev/null || true
  for _ in $(seq 50); do [ -z "$(dzfs_pids_for "$MNT")" ] && break; sleep 0.1; done
  dz_fsck "$STORE"
  dz_mount "$STORE" "$MNT"
  run_to 120 rsync -a --delete --modify-window=-1 "$SRC/" "$MNT/"
  tree_compare "$SRC" "$MNT"
  dz_umount "$MNT" "$STORE"
  # Start the next round from an empty volume again.
  dz_mount "$STORE" "$MNT"
  rm -rf "${MNT:?}"/*
  dz_umount "$MNT" "$STORE"
done
dz_fsck "$STORE"
