#!/usr/bin/env bash
# Background neural recompression end to end (issue 5): rsync a tree in, drain the backlog,
# remount: identical and most chunks neural; SIGKILL the daemon during recompression, remount:
# clean; adopt a second model version: chunks under both decode; the first is retired only
# when no chunk uses it.
. "$(dirname "$0")/../integration/lib.sh"
it_init recompress 400
: "${DZFS_CODEC:?DZFS_CODEC must name the dzfs-codec tool}"

src=$IT_TMP/src
mkdir -p "$src"
# Real text that every Debian build machine has: libc headers (~1.7 MB; the drains run the
# neural encoder at about 1 MB/s, so the corpus stays small).
cp -a /usr/include/x86_64-linux-gnu/bits "$src/bits"
cp -a /usr/include/x86_64-linux-gnu/gnu "$src/gnu" 2>/dev/null || true
ls /usr/include/*.h | head -60 | xargs cp -a -t "$src"
[ "$(du -sk "$src" | cut -f1)" -ge 1000 ] || skip "not enough header files on this machine for a corpus"

store=$IT_TMP/store mnt=$IT_TMP/mnt
dz_mkfs "$store"
# rsync (3.2.7) does not always re-set a directory's mtime after creating entries in it (into a
# plain directory too): copy directory times explicitly so that trees compare exactly.
rsync_in() {
  run_to 120 rsync -aHAX --numeric-ids "$1/" "$2/"
  (cd "$1" && find . -type d -print0 | xargs -0 -I{} touch -h -r "{}" "$2/{}")
}
neural_share() {  # share of live chunks that are neural, in percent
  dz_stats "$1" | "$PY" -c 'import json,sys; o=json.load(sys.stdin); n=o["chunks_by_codec"].get("neural",0)+o["chunks_by_codec"].get("group",0); print(100*n//max(o["chunks"],1))'
}

log "1. ingest with codec=zstd, then drain the backlog on the mount"
dz_mount "$store" "$mnt" -o codec=zstd
rsync_in "$src" "$mnt"
dz_umount "$mnt" "$store"
zstd_bytes=$(dz_stat_key "$store" stored_bytes)
dz_mount "$store" "$mnt" -o settle_secs=0,workers=1
run_to 300 "$DZFS" compress "$mnt" --wait
dz_umount "$mnt" "$store"
share=$(neural_share "$store")
neural_bytes=$(dz_stat_key "$store" stored_bytes)
log "neural share ${share}%, stored bytes zstd $zstd_bytes -> after $neural_bytes"
[ "$share" -ge 50 ] || fail "only ${share}% of chunks are neural after draining the backlog"
[ "$neural_bytes" -lt "$zstd_bytes" ] || fail "recompression did not make the store smaller ($zstd_bytes -> $neural_bytes)"
dz_fsck "$store"
dz_mount "$store" "$mnt"
tree_compare "$src" "$mnt"
dz_umount "$mnt" "$store"

log "2. SIGKILL the daemon during recompression"
store2=$IT_TMP/store2 mnt2=$IT_TMP/mnt2
dz_mkfs "$store2"
dz_mount "$store2" "$mnt2" -o codec=zstd
rsync_in "$src" "$mnt2"
dz_umount "$mnt2" "$store2"
dz_mount "$store2" "$mnt2" -o settle_secs=0,workers=1,commit_secs=1
for i in $(seq 1 100); do
  n=$(dz_stat_key "$store2" chunks_by_codec 2>/dev/null | "$PY" -c 'import sys,ast; print((lambda d: d.get("neural",0)+d.get("group",0))(ast.literal_eval(sys.stdin.read())))' || echo 0)
  [ "$n" -ge 5 ] && break
  sleep 0.2
done
pids=$(dz_kill_daemon "$mnt2")  # an assignment: a failure in it stops the test
log "killed dzfs $pids with $n neural chunks committed"
dz_fsck "$store2"
dz_mount "$store2" "$mnt2" -o settle_secs=0,workers=1
tree_compare "$src" "$mnt2"
run_to 300 "$DZFS" compress "$mnt2" --wait
dz_umount "$mnt2" "$store2"
dz_fsck "$store2"

log "3. a second model version"
old_ids=$("$DZFS" models "$store" | awk 'NR > 1 && $4 + 0 > 0 {print $1}')
[ -n "$old_ids" ] || fail "no model has chunks after the first drain"
run_to 30 "$DZFS_CODEC" make-model --seed 7 "$IT_TMP/second.dzm" >/dev/null
second=$(run_to 30 "$DZFS" models "$store" --add "$IT_TMP/second.dzm" | awk '/is now current/ {print $2}')
mkdir -p "$src/new"
cp -a /usr/include/x86_64-linux-gnu/sys "$src/new/"
dz_mount "$store" "$mnt" -o settle_secs=0,workers=1
rsync_in "$src" "$mnt"
run_to 300 "$DZFS" compress "$mnt" --wait
dz_umount "$mnt" "$store"
"$DZFS" models "$store" >&2
in_use() { "$DZFS" models "$store" | awk -v id="$1" '$1 == id {print $4 + 0}'; }
[ "$(in_use "$second")" -gt 0 ] || fail "the new model $second compressed no chunk"
for id in $old_ids; do [ "$(in_use "$id")" -gt 0 ] || fail "chunks of the earlier model $id vanished"; done
run_to 30 "$DZFS" models "$store" --retire >/dev/null  # only models no chunk uses (an unused shipped one, say)
for id in $old_ids "$second"; do
  "$DZFS" models "$store" | grep -q "$id" || fail "model $id, in use, was retired"
done
dz_mount "$store" "$mnt"
tree_compare "$src" "$mnt"
dz_umount "$mnt" "$store"
run_to 300 "$DZFS" compress "$store" --migrate >/dev/null
n_old=$(echo $old_ids | wc -w)
run_to 30 "$DZFS" models "$store" --retire | grep -q "retired $n_old" || fail "the $n_old unused earlier model(s) were not all retired"
for id in $old_ids; do
  "$DZFS" models "$store" | grep -q "$id" && fail "model $id still listed after retiring"
  [ -e "$store/models/$id.dzm" ] && fail "model file of $id still present after retiring"
done
dz_fsck "$store"
dz_mount "$store" "$mnt"
tree_compare "$src" "$mnt"
dz_umount "$mnt" "$store"
log "pass"
