#!/usr/bin/env bash
# SIGKILL while solid groups are made, regrouped and collected.
#
# A volume of text files is drained into small groups (group_kb=128, so there are many), then
# most files are deleted, so that most groups are mostly dead. The maintenance sequence
#   dzfs gc (queues the live members of mostly dead groups), dzfs compress (codes them into new
#   groups), dzfs gc (deletes the old groups and compacts their packs)
# is run uninterrupted on a copy for its duration and result; then, for each of $DZFS_IT_KILLS
# rounds, on a fresh copy with a SIGKILL at a random moment of one of the three steps (round k
# picks step k mod 3). After every kill: fsck must find the volume clean, a mount must read the
# tree back identical, the sequence run again must complete, fsck clean, and the pack files must
# shrink to what the uninterrupted sequence leaves (within a pack header per pack: nothing lost,
# nothing leaked). Also a kill of the mount's own workers while they group (daemon.recompress
# covers the per-mount case with fewer groups).
. "$(dirname "$0")/lib.sh"
it_init crash_groups 240

KILLS=${DZFS_IT_KILLS:-6}
STORE0=$IT_TMP/store0 MIR=$IT_TMP/mirror MNT=$IT_TMP/mnt
mkdir -p "$MIR"

"$PY" - "$MIR" <<'EOF'
import os, random, sys
d = sys.argv[1]
r = random.Random(14)
words = [("w%d" % i).encode() for i in range(2000)]
for k in range(6):
    os.makedirs(os.path.join(d, "d%d" % k), exist_ok=True)
    for i in range(12):
        n = r.randrange(20000, 90000)
        data = b" ".join(r.choice(words) for _ in range(n // 5))[:n]
        open(os.path.join(d, "d%d" % k, "f%02d.txt" % i), "wb").write(data)
EOF

log "a volume drained into small groups, then most files deleted"
dz_mkfs "$STORE0" --group-kb 128
dz_mount "$STORE0" "$MNT" -o workers=0,gc_secs=0
run_to 120 rsync -aHAX "$MIR/" "$MNT/"
dz_umount "$MNT" "$STORE0"
run_to 300 "$DZFS" compress "$STORE0" >/dev/null 2>&1
groups0=$(dz_stat_key "$STORE0" chunks_by_codec | "$PY" -c 'import sys,ast; print(ast.literal_eval(sys.stdin.read()).get("group", 0))')
[ "$groups0" -ge 20 ] || fail "only $groups0 grouped chunks after the drain; the test needs groups"
dz_mount "$STORE0" "$MNT" -o workers=0,gc_secs=0
for k in 0 1 2 3 4 5; do
  for i in $(seq 0 11); do
    [ $(((i + k) % 4)) -ne 0 ] && rm "$MIR/d$k/f$(printf %02d "$i").txt"
  done
done
run_to 120 rsync -aHAX --delete "$MIR/" "$MNT/"
(cd "$MIR" && find . -type d -print0 | xargs -0 -I{} touch -h -r "{}" "$MNT/{}")
dz_umount "$MNT" "$STORE0"
dz_fsck "$STORE0"

step_cmd() { [ "$1" = 1 ] && echo compress || echo gc; }  # the steps: gc, compress, gc
step() { run_to 300 "$DZFS" "$(step_cmd "$1")" "$2"; }       # N STORE
maintain() { step 0 "$1" && step 1 "$1" && step 2 "$1"; }     # STORE: the whole sequence

log "the uninterrupted sequence on a copy, for its durations and its result"
REF=$IT_TMP/ref
cp -a "$STORE0" "$REF"
declare -a dur
for n in 0 1 2; do
  t0=$(date +%s.%N)
  out=$(step "$n" "$REF" 2>&1) || fail "step $n of the reference sequence failed: $out"
  dur[$n]=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.3f", a - b }')
  log "step $n took ${dur[$n]}s: $(tr '\n' ' ' <<<"$out" | cut -c1-200)"
done
regrouped=$("$PY" -c 'import sqlite3,sys; c=sqlite3.connect("file:"+sys.argv[1]+"?mode=ro", uri=True); print(c.execute("SELECT COUNT(*) FROM groups").fetchone()[0])' "$(dz_index_db "$REF")")
dz_fsck "$REF"
pack_ref=$(pack_files_bytes "$REF")
log "pack bytes $(pack_files_bytes "$STORE0") -> $pack_ref; $regrouped groups left"

RANDOM=${DZFS_IT_SEED:-14}
killed=0
S=$IT_TMP/s
for k in $(seq 1 "$KILLS"); do
  rm -rf "$S"
  cp -a "$STORE0" "$S"
  n=$((k % 3))
  for m in $(seq 0 $((n - 1))); do step "$m" "$S" >/dev/null 2>&1 || fail "step $m failed"; done
  delay=$(awk -v t="${dur[$n]}" -v r="$RANDOM" 'BEGIN { printf "%.3f", t * (0.05 + 0.9 * r / 32767) }')
  "$DZFS" "$(step_cmd "$n")" "$S" >"$IT_TMP/killed.out" 2>&1 &
  pid=$!
  sleep "$delay"
  kill -KILL "$pid" 2>/dev/null || true
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 137 ] && killed=$((killed + 1))
  log "round $k: step $n, kill at ${delay}s (exit $rc)"
  dz_fsck "$S"
  dz_mount "$S" "$MNT" -o workers=0,gc_secs=0
  tree_compare "$MIR" "$MNT"
  dz_umount "$MNT" "$S"
  out=$(maintain "$S" 2>&1) || fail "the sequence after the kill failed: $out"
  dz_fsck "$S"
  packs=$(pack_files_bytes "$S")
  slack=$((16 * $(ls "$S/packs" | wc -l) + 65536))
  [ "$packs" -le $((pack_ref + slack)) ] || fail "round $k: packs hold $packs bytes, $pack_ref after an uninterrupted sequence: space leaked"
  dz_mount "$S" "$MNT" -o workers=0,gc_secs=0
  tree_compare "$MIR" "$MNT"
  dz_umount "$MNT" "$S"
done
[ "$killed" -ge 2 ] || fail "only $killed of $KILLS rounds were killed mid-step; the test did not test"

log "a mount's workers killed while they group"
rm -rf "$S"
cp -a "$STORE0" "$S"
maintain "$S" >/dev/null 2>&1 || fail "maintenance failed"
mkdir -p "$MIR/new"
cp -a "$MIR/d0" "$MIR/new/"
for i in 1 2 3; do head -c 60000 /dev/urandom | base64 >"$MIR/new/b$i.txt"; done
dz_mount "$S" "$MNT" -o workers=0,gc_secs=0
run_to 120 rsync -aHAX "$MIR/" "$MNT/"
(cd "$MIR" && find . -type d -print0 | xargs -0 -I{} touch -h -r "{}" "$MNT/{}")
dz_umount "$MNT" "$S"
dz_mount "$S" "$MNT" -o settle_secs=0,workers=1,commit_secs=1
sleep 2
pids=$(dz_kill_daemon "$MNT")  # an assignment: a failure in it stops the test
log "killed dzfs $pids while it grouped"
dz_fsck "$S"
dz_mount "$S" "$MNT" -o workers=0,gc_secs=0
tree_compare "$MIR" "$MNT"
dz_umount "$MNT" "$S"
log "pass ($killed of $KILLS rounds killed mid-step)"
