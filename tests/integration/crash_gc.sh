#!/usr/bin/env bash
# SIGKILL in the middle of the offline maintenance commands: `dzfs gc` and `dzfs fsck --repair`.
#
# A volume is built over four mount sessions (three packs of ~9 MiB in small chunks, then 70% of
# those files deleted, a dedup copy of a deleted file kept, small files added), so that gc has
# garbage chunks to delete and three packs to compact. An uninterrupted gc on a copy gives the
# reference result; then, for each of $DZFS_IT_KILLS rounds, a fresh copy is gc'ed and killed.
# With strace the kill lands exactly at a chosen system call: the N-th pwrite64 (a record copied
# by compaction, or an index write), the N-th fdatasync/fsync (a commit), or the N-th unlink (a
# pack removal), N spread over the counts of the reference run; without strace, at a random
# moment of the reference run's duration. After every kill: fsck must find the volume clean, a
# mount must read the tree back identical (treecheck: contents, modes, times, links, xattrs), gc
# run again must complete, fsck clean, and the pack files must shrink to what an uninterrupted gc
# leaves (nothing leaked). Same for `fsck --repair` on a copy with a flipped data byte and a
# wrong reference count (killed at the N-th pread64, pwrite64 or fsync): run again, the repair
# must leave a clean volume, every undamaged file identical, the damaged one in /lost+found.
# DZFS_IT_NO_STRACE=1 forces the timing fallback; DZFS_IT_KILLS, DZFS_IT_SEED vary the rounds.
. "$(dirname "$0")/lib.sh"
it_init crash_gc 200

KILLS=${DZFS_IT_KILLS:-5}
STORE0=$IT_TMP/store0 MIR=$IT_TMP/mirror MNT=$IT_TMP/mnt
mkdir -p "$MIR"

# gen DIR PREFIX N SIZE SEED: N files, alternately random (stored raw) and text-like (zstd).
gen() {
  "$PY" - "$@" <<'EOF'
import os, random, sys
d, prefix, n, size, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
os.makedirs(d, exist_ok=True)
r = random.Random(seed)
words = [("w%d" % i).encode() for i in range(3000)]
for i in range(n):
    if i % 2 == 0:
        data = r.randbytes(size)
    else:
        data = b" ".join(r.choice(words) for _ in range(size // 5))[:size]
    open(os.path.join(d, "%s%02d" % (prefix, i)), "wb").write(data)
EOF
}

# calls_of FILE: "syscall count" lines from an `strace -c` summary.
calls_of() { awk '$NF ~ /^[a-z0-9_]+$/ && $(NF-1) ~ /^[0-9]+$/ && $NF != "syscall" && $NF != "total" { print $NF, ($(NF-2) ~ /^[0-9]+$/ && NF == 6) ? $(NF-2) : $(NF-1) }' "$1"; }
count_of() { calls_of "$1" | awk -v s="$2" '$1 == s { print $2; f = 1 } END { if (!f) print 0 }'; }

log "build a volume with garbage and packs to compact (4 mount sessions)"
dz_mkfs "$STORE0" --chunk-min 2048 --chunk-avg 4096 --chunk-max 16384
seed=1
for s in a b c; do
  gen "$MIR/$s" f 12 786432 $((seed++))
  dz_mount "$STORE0" "$MNT" -o workers=0,gc_secs=0
  run_to 120 rsync -aHAX "$MIR/$s" "$MNT/"
  dz_umount "$MNT" "$STORE0"
done
dz_mount "$STORE0" "$MNT" -o workers=0,gc_secs=0
mkdir -p "$MIR/d"
cp -a "$MIR/a/f00" "$MIR/d/dup-of-a-f00"      # its chunks stay live in pack 1 after a/f00 goes
for s in a b c; do
  for i in $(seq 0 11); do
    if [ $((i % 10)) -lt 7 ]; then rm "$MIR/$s/f$(printf %02d "$i")"; fi
  done
done
gen "$MIR/d/small" s 30 5000 9
run_to 120 rsync -aHAX --delete "$MIR/" "$MNT/"
# rsync does not always set a directory's time again after changing entries in it.
(cd "$MIR" && find . -type d -print0 | xargs -0 -I{} touch -h -r "{}" "$MNT/{}")
dz_umount "$MNT" "$STORE0"
dz_fsck "$STORE0"
pack0=$(pack_files_bytes "$STORE0")

log "an uninterrupted gc on a copy, for its duration and its result"
REF=$IT_TMP/ref
cp -a "$STORE0" "$REF"
HAVE_STRACE=0
[ -z "${DZFS_IT_NO_STRACE:-}" ] && command -v strace >/dev/null 2>&1 && strace -f -o /dev/null true 2>/dev/null && HAVE_STRACE=1
TRACED="pwrite64,fdatasync,fsync,unlink,pread64"
t0=$(date +%s.%N)
out=$(run_to 120 "$DZFS" gc "$REF" 2>&1) || fail "dzfs gc of the reference copy failed: $out"
t_gc=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.3f", a - b }')
log "gc took ${t_gc}s: $(tr '\n' ' ' <<<"$out")"
if [ "$HAVE_STRACE" = 1 ]; then
  rm -rf "$IT_TMP/count" && cp -a "$STORE0" "$IT_TMP/count"
  run_to 120 strace -f -c -o "$IT_TMP/gc.calls" -e trace="$TRACED" "$DZFS" gc "$IT_TMP/count" >/dev/null
  log "system calls of an uninterrupted gc: $(calls_of "$IT_TMP/gc.calls" | tr '\n' ' ')"
fi
compacted=$(sed -n 's/.*compacted \([0-9]*\) packs.*/\1/p' <<<"$out")
[ "${compacted:-0}" -ge 2 ] || fail "the reference gc compacted ${compacted:-0} packs; the test needs at least 2 to be meaningful: $out"
pack_ref=$(pack_files_bytes "$REF")
log "pack bytes $pack0 -> $pack_ref after an uninterrupted gc"
dz_fsck "$REF"

# kill_point K N CALLS SECS CLASSES CMD...: runs CMD and SIGKILLs it in round K of N. With
# strace: at the n-th call of one syscall of CLASSES (the round picks which, in turn), n spread
# over that call's count in CALLS (an strace -c summary of an uninterrupted run); else at a
# random moment of the K-th of N slices of SECS. Prints what happened.
kill_point() {
  local k=$1 n=$2 calls=$3 secs=$4 classes=$5; shift 5
  local rc=0
  if [ "$HAVE_STRACE" = 1 ]; then
    local list=() c total
    for c in ${classes//,/ }; do [ "$(count_of "$calls" "$c")" -gt 0 ] && list+=("$c"); done
    [ "${#list[@]}" -gt 0 ] || fail "none of $classes was called in the reference run"
    c=${list[$(((k - 1) % ${#list[@]}))]}
    total=$(count_of "$calls" "$c")
    local at=$(awk -v k="$k" -v n="$n" -v t="$total" -v r="$RANDOM" 'BEGIN { x = int(t * (k - 1 + r / 32768) / n) + 1; if (x > t) x = t; print x }')
    strace -f -o /dev/null -e trace="$c" -e inject="$c":signal=KILL:when="$at" "$@" >"$IT_TMP/killed.out" 2>&1 || rc=$?
    if [ "$rc" -eq 137 ]; then echo "killed at $c call $at of $total"; else echo "finished (exit $rc) before $c call $at of $total"; fi
    return 0
  fi
  local delay
  delay=$(awk -v k="$k" -v n="$n" -v t="$secs" -v r="$RANDOM" 'BEGIN { printf "%.3f", t * (k - 1 + 0.1 + 0.8 * r / 32767) / n }')
  "$@" >"$IT_TMP/killed.out" 2>&1 &
  local pid=$!
  sleep "$delay"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" || rc=$?
  if [ "$rc" -eq 137 ]; then echo "killed at ${delay}s"; else echo "finished (exit $rc) before the kill at ${delay}s"; fi
}

RANDOM=${DZFS_IT_SEED:-7}
gc_killed=0
S=$IT_TMP/s
for k in $(seq 1 "$KILLS"); do
  rm -rf "$S"
  cp -a "$STORE0" "$S"
  what=$(kill_point "$k" "$KILLS" "$IT_TMP/gc.calls" "$t_gc" pwrite64,fdatasync,pwrite64,unlink,fsync "$DZFS" gc "$S")
  log "gc round $k: $what; packs now: $(cd "$S/packs" && ls | tr '\n' ' ')"
  case "$what" in killed*) gc_killed=$((gc_killed + 1)) ;; esac
  dz_fsck "$S"
  dz_mount "$S" "$MNT" -o workers=0,gc_secs=0
  tree_compare "$MIR" "$MNT"
  dz_umount "$MNT" "$S"
  out=$(run_to 120 "$DZFS" gc "$S" 2>&1) || fail "gc round $k: dzfs gc after the kill failed: $out"
  dz_fsck "$S"
  after=$(pack_files_bytes "$S")
  [ "$after" -le $((pack_ref + pack_ref / 20 + 65536)) ] ||
    fail "gc round $k: pack files hold $after bytes after gc, an uninterrupted gc leaves $pack_ref: the kill leaked space"
  if [ $((k % 2)) -eq 1 ]; then
    dz_mount "$S" "$MNT" -o workers=0,gc_secs=0
    tree_compare "$MIR" "$MNT"
    dz_umount "$MNT" "$S"
  fi
done
[ "$gc_killed" -ge 2 ] || fail "only $gc_killed of $KILLS gc runs were still running at their kill: the kills did not land mid-gc"
log "FIGURE gc: $gc_killed kills mid-gc survived ($KILLS rounds)"

log "fsck --repair killed half-way"
D0=$IT_TMP/damaged0
cp -a "$REF" "$D0"
victim=c/f08   # a random-data file that survived the deletions (stored raw: findable in the pack)
[ -f "$MIR/$victim" ] || fail "test setup: $MIR/$victim does not exist"
"$PY" - "$D0" "$MIR/$victim" <<'PY' || fail "could not flip a byte of $victim's data"
import glob, sys
store, victim = sys.argv[1], open(sys.argv[2], 'rb').read()
needle = victim[500000:500064]
hits = []
for p in glob.glob(store + '/packs/*.pack'):
    b = open(p, 'rb').read()
    i = b.find(needle)
    while i >= 0:
        hits.append((p, i)); i = b.find(needle, i + 1)
if len(hits) != 1: sys.exit("found %d copies of the victim's bytes in the packs" % len(hits))
p, i = hits[0]
with open(p, 'r+b') as f:
    f.seek(i + 10); c = f.read(1); f.seek(i + 10); f.write(bytes([c[0] ^ 0x5A]))
PY
"$PY" -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('UPDATE chunks SET refcount = refcount + 3 WHERE id = (SELECT MAX(id) FROM chunks WHERE refcount > 0)'); c.commit()" "$(dz_index_db "$D0")"
out=$(timeout 120 "$DZFS" fsck "$D0" 2>&1) && fail "fsck of the damaged copy exited 0: $out"
grep -q "^damaged file: /$victim\$" <<<"$out" || fail "fsck did not name /$victim as damaged: $out"
grep -q "refcount" <<<"$out" || fail "fsck did not report the wrong reference count: $out"
R=$IT_TMP/r
cp -a "$D0" "$R"
t0=$(date +%s.%N)
out=$(run_to 120 "$DZFS" fsck "$R" --repair 2>&1) || fail "the reference fsck --repair did not leave a clean volume: $out"
t_rep=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.3f", a - b }')
log "fsck --repair took ${t_rep}s"
if [ "$HAVE_STRACE" = 1 ]; then
  rm -rf "$IT_TMP/count" && cp -a "$D0" "$IT_TMP/count"
  strace -f -c -o "$IT_TMP/rep.calls" -e trace="$TRACED" "$DZFS" fsck "$IT_TMP/count" --repair >/dev/null 2>&1 || true
  log "system calls of an uninterrupted repair: $(calls_of "$IT_TMP/rep.calls" | tr '\n' ' ')"
fi

# check_repaired STORE: clean; every file but the victim identical; the victim in /lost+found.
check_repaired() {
  local st=$1
  dz_fsck "$st"
  dz_mount "$st" "$MNT" -o workers=0,gc_secs=0
  local f n=0
  while read -r f; do
    [ "$f" = "$victim" ] && continue
    cmp -s "$MIR/$f" "$MNT/$f" || fail "$st: $f differs from the original after the repair"
    n=$((n + 1))
  done < <(cd "$MIR" && find . -type f | sed 's|^\./||')
  [ -e "$MNT/$victim" ] && fail "$st: the damaged $victim is still in place after the repair"
  ls "$MNT/lost+found/" | grep -q -- "-$(basename "$victim")\$" || fail "$st: $victim was not moved into /lost+found"
  dz_umount "$MNT" "$st"
  log "$st: $n undamaged files identical, $victim in /lost+found"
}
check_repaired "$R"

rep_killed=0
for k in $(seq 1 "$KILLS"); do
  rm -rf "$S"
  cp -a "$D0" "$S"
  what=$(kill_point "$k" "$KILLS" "$IT_TMP/rep.calls" "$t_rep" pread64,pwrite64,fdatasync "$DZFS" fsck "$S" --repair)
  log "repair round $k: $what"
  case "$what" in killed*) rep_killed=$((rep_killed + 1)) ;; esac
  out=$(run_to 120 "$DZFS" fsck "$S" --repair 2>&1) || fail "repair round $k: fsck --repair after the kill did not leave a clean volume: $out"
  check_repaired "$S"
done
[ "$rep_killed" -ge 2 ] || fail "only $rep_killed of $KILLS repairs were still running at their kill"
log "FIGURE repair: $rep_killed kills mid-repair survived ($KILLS rounds)"
