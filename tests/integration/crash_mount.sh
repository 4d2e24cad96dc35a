#!/usr/bin/env bash
# SIGKILL of a mount's daemon in the middle of a commit and in the middle of a background gc pass.
#
# 1. Commits: a writer creates files and fsyncs each one (logging, outside the mount, which fsyncs
#    returned), with commit_secs=1, while the daemon is killed inside a commit. With strace the
#    kill lands exactly on a commit's system call: a daemon thread's 1st, 2nd or 3rd fdatasync
#    (Store::commit syncs pack data twice, then SQLite syncs its WAL: the commit point), or its
#    n-th pwrite64 (pack appends and WAL frames); without strace, when /proc shows a
#    daemon thread inside fdatasync/fsync. After each kill: fsck clean; every fsynced file reads
#    back exactly; any other file of the writer is absent, empty or complete (old or new state,
#    never torn); a tree copied in before the rounds reads back identical.
# 2. Background gc: a volume with garbage and three packs to compact is mounted with gc_secs=1 and
#    nothing else running; the daemon is killed at the n-th pread64 or pwrite64 (a record being
#    copied by compaction; n spread over the counts of an uninterrupted gc), at one of the first
#    fdatasyncs (the pass's commits) or at the 2nd or 3rd unlink (packs being removed); without
#    strace, 0-40 ms after compaction starts a new pack. After each kill: fsck clean, the tree
#    identical, and a mount with gc reclaims the space. DZFS_IT_NO_STRACE=1 forces the fallbacks.
. "$(dirname "$0")/lib.sh"
it_init crash_mount 200

ROUNDS=${DZFS_IT_KILLS:-4}
RANDOM=${DZFS_IT_SEED:-11}
MNT=$IT_TMP/mnt
HAVE_STRACE=0
[ -z "${DZFS_IT_NO_STRACE:-}" ] && command -v strace >/dev/null 2>&1 && strace -f -o /dev/null true 2>/dev/null && HAVE_STRACE=1
log "strace available: $HAVE_STRACE"

# Bytes in STORE's pack files (a running gc may remove one while we look).
packs_bytes() { find "$1/packs" -name '*.pack' -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
daemon_pid() {
  local p
  p=$(dzfs_pids_for "$MNT")
  [ -n "$p" ] || fail "cannot find the dzfs daemon of $MNT"
  echo "$p" | head -n 1
}
# after_kill STORE: the mount is dead; take it away and wait for the process to be gone.
after_kill() {
  timeout 10 fusermount3 -uz "$MNT" 2>/dev/null || true
  for _ in $(seq 100); do [ -z "$(dzfs_pids_for "$MNT")" ] && [ -z "$(dzfs_pids_for "$1")" ] && break; sleep 0.1; done
  [ -z "$(dzfs_pids_for "$MNT")" ] || fail "the killed daemon of $MNT is still there"
}
# kill_in PID SYSCALL N: SIGKILL PID when one of its threads makes its N-th SYSCALL (strace), or
# (no strace) when /proc shows a thread in fdatasync/fsync. Prints what happened.
kill_in() {
  local pid=$1 call=$2 n=$3 rc=0
  if [ "$HAVE_STRACE" = 1 ]; then
    timeout -k 2 40 strace -f -p "$pid" -o "$IT_TMP/strace.out" -e trace="$call" -e inject="$call":signal=KILL:when="$n" >/dev/null 2>&1 || rc=$?
    if grep -q 'killed by SIGKILL' "$IT_TMP/strace.out"; then echo "killed at its $call call $n"; else echo "NOT killed (strace exit $rc)"; fi
    return 0
  fi
  local t
  for ((t = 0; t < 20000; t++)); do
    if cat /proc/"$pid"/task/*/syscall 2>/dev/null | awk '$1 == 74 || $1 == 75 { f = 1 } END { exit !f }'; then
      kill -KILL "$pid"; echo "killed while a thread was in fsync/fdatasync"; return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
  done
  kill -KILL "$pid" 2>/dev/null; echo "killed at a random moment (no thread seen in a sync call)"
}

# ------------------------------------------------------------------------------ 1. commits
log "1. SIGKILL inside commits, $ROUNDS rounds"
STORE=$IT_TMP/store BASE=$IT_TMP/base
"$PY" "$TREECHECK" gen "$BASE" --seed 5 --text-files 3 --text-size 300K --rand-files 2 --rand-size 500K --small-files 40
dz_mkfs "$STORE"
dz_mount "$STORE" "$MNT" -o workers=0,gc_secs=0
run_to 120 rsync -aHAX "$BASE/" "$MNT/base/"
(cd "$BASE" && find . -type d -print0 | xargs -0 -I{} touch -h -r "{}" "$MNT/base/{}")
dz_umount "$MNT" "$STORE"

WRITER='
import hashlib, os, random, sys, time
mnt, durable, rnd = sys.argv[1], sys.argv[2], int(sys.argv[3])
def content(i):
    r = random.Random(rnd * 100000 + i)
    n = r.randrange(1, 200000)
    return (b"round %d file %d " % (rnd, i)) * (n // 20) + r.randbytes(n % 5000)
log = open(durable, "a")
os.makedirs(os.path.join(mnt, "w"), exist_ok=True)
i = 0
try:
    while True:
        p = os.path.join(mnt, "w", "r%d_%05d" % (rnd, i))
        with open(p, "wb") as f:
            f.write(content(i))
            if i % 4 != 3:          # one file in four is closed without fsync
                f.flush(); os.fsync(f.fileno())
                log.write("r%d_%05d\n" % (rnd, i)); log.flush(); os.fsync(log.fileno())
        i += 1
except OSError:
    pass                            # the daemon died under us
'
CHECK='
import os, random, sys
mnt, durable, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
def content(rnd, i):
    r = random.Random(rnd * 100000 + i)
    n = r.randrange(1, 200000)
    return (b"round %d file %d " % (rnd, i)) * (n // 20) + r.randbytes(n % 5000)
want = set(open(durable).read().split())
bad, n_ok, n_empty, n_absent = [], 0, 0, 0
have = set(os.listdir(os.path.join(mnt, "w"))) if os.path.isdir(os.path.join(mnt, "w")) else set()
for name in sorted(want | have):
    rnd, i = int(name[1:name.index("_")]), int(name[name.index("_") + 1:])
    p = os.path.join(mnt, "w", name)
    if name not in have:
        if name in want: bad.append("%s: fsync returned but the file is gone" % name)
        else: n_absent += 1
        continue
    got = open(p, "rb").read()
    if got == content(rnd, i): n_ok += 1
    elif name in want: bad.append("%s: fsync returned but it reads %d bytes, not the %d written" % (name, len(got), len(content(rnd, i))))
    elif len(got) == 0: n_empty += 1
    else: bad.append("%s: not fsynced, and neither empty nor complete: %d bytes (torn)" % (name, len(got)))
print("%d fsynced files, %d files intact, %d empty (not yet applied), %d absent" % (len(want), n_ok, n_empty, n_absent))
if bad:
    print("\n".join(bad[:20])); sys.exit(1)
'
commit_calls=(fdatasync pwrite64 fdatasync pwrite64 fdatasync pwrite64)
commit_killed=0
: >"$IT_TMP/durable"
for k in $(seq 1 "$ROUNDS"); do
  dz_mount "$STORE" "$MNT" -o workers=0,gc_secs=0,commit_secs=1
  "$PY" -c "$WRITER" "$MNT" "$IT_TMP/durable" "$k" &
  wp=$!
  sleep 0.$((3 + RANDOM % 6))   # some files first
  call=${commit_calls[$(((k - 1) % ${#commit_calls[@]}))]}
  n=$((1 + RANDOM % 3))              # fdatasync 1, 2: pack data; 3: the WAL (SQLite's commit point)
  [ "$call" = pwrite64 ] && n=$((5 + RANDOM % 200))
  pid=$(daemon_pid)
  what=$(kill_in "$pid" "$call" "$n")
  case "$what" in killed*) commit_killed=$((commit_killed + 1)) ;; *) kill -KILL "$pid" 2>/dev/null || true ;; esac
  wait "$wp" || true
  after_kill "$STORE"
  log "commit round $k: $what; $(wc -l <"$IT_TMP/durable") fsyncs returned so far"
  dz_fsck "$STORE"
  dz_mount "$STORE" "$MNT" -o workers=0,gc_secs=0
  out=$(run_to 120 "$PY" -c "$CHECK" "$MNT" "$IT_TMP/durable" "$k" 2>&1) || fail "commit round $k: after the kill ($what):
$out"
  log "commit round $k: $out"
  tree_compare "$BASE" "$MNT/base"
  dz_umount "$MNT" "$STORE"
done
[ "$commit_killed" -ge $((ROUNDS - 1)) ] || fail "only $commit_killed of $ROUNDS commit kills landed where aimed"
log "FIGURE commit: $commit_killed kills inside commits survived ($ROUNDS rounds)"

# ------------------------------------------------------------------------------ 2. background gc
log "2. SIGKILL during background gc passes, $ROUNDS rounds"
G0=$IT_TMP/g0 MIR=$IT_TMP/mirror
dz_mkfs "$G0" --chunk-min 2048 --chunk-avg 4096 --chunk-max 16384
seed=21
for s in a b c; do
  "$PY" - "$MIR/$s" $((seed++)) <<'EOF'
import os, random, sys
d, r = sys.argv[1], random.Random(int(sys.argv[2]))
os.makedirs(d)
for i in range(10):
    open(os.path.join(d, "f%02d" % i), "wb").write(r.randbytes(600000))
EOF
  dz_mount "$G0" "$MNT" -o workers=0,gc_secs=0
  run_to 120 rsync -aHAX "$MIR/$s" "$MNT/"
  dz_umount "$MNT" "$G0"
done
for s in a b c; do rm "$MIR/$s"/f0[0-6]; done   # 70% garbage in each pack
dz_mount "$G0" "$MNT" -o workers=0,gc_secs=0
run_to 120 rsync -aHAX --delete "$MIR/" "$MNT/"
(cd "$MIR" && find . -type d -print0 | xargs -0 -I{} touch -h -r "{}" "$MNT/{}")
dz_umount "$MNT" "$G0"
pack0=$(packs_bytes "$G0")
if [ "$HAVE_STRACE" = 1 ]; then
  cp -a "$G0" "$IT_TMP/count"
  run_to 120 strace -f -c -o "$IT_TMP/gc.calls" -e trace=pread64,pwrite64,unlink "$DZFS" gc "$IT_TMP/count" >/dev/null
  log "system calls of an offline gc of the same volume: $(awk '$NF ~ /^(pread64|pwrite64|unlink)$/ { print $NF, $4 }' "$IT_TMP/gc.calls" | tr '\n' ' ')"
fi
gc_calls=(pread64 unlink pwrite64 fdatasync pread64 unlink)
gc_killed=0
S=$IT_TMP/s
for k in $(seq 1 "$ROUNDS"); do
  rm -rf "$S"
  cp -a "$G0" "$S"
  dz_mount "$S" "$MNT" -o workers=0,gc_secs=1,commit_secs=1
  pid=$(daemon_pid)
  if [ "$HAVE_STRACE" = 1 ]; then
    call=${gc_calls[$(((k - 1) % ${#gc_calls[@]}))]}
    total=$(awk -v c="$call" '$NF == c { print $4 }' "$IT_TMP/gc.calls")
    case $call in
      unlink) n=$((2 + RANDOM % 2)) ;;      # the 2nd or 3rd pack removal: an earlier one is gone
      fdatasync) n=$((1 + RANDOM % 6)) ;;   # a commit of the pass (deletions, then the moves)
      *) n=$((1 + RANDOM % (${total:-100} * 9 / 10))) ;;
    esac
    what=$(kill_in "$pid" "$call" "$n")
  else
    # No strace: wait until compaction starts writing a new pack, then kill 0-40 ms later.
    before=$(ls "$S/packs" | sort | tail -n 1)
    for _ in $(seq 1000); do
      [ "$(ls "$S/packs" | sort | tail -n 1)" != "$before" ] && break
      sleep 0.01
    done
    sleep "0.0$((RANDOM % 5))"
    kill -KILL "$pid"
    old_left=$(cd "$S/packs" && ls | awk -v b="$before" '$0 <= b' | wc -l)
    if [ "$old_left" -gt 0 ]; then what="killed while the pass ran ($old_left of the old packs not yet removed)"
    else what="gc pass had already finished at the kill"; fi
  fi
  case "$what" in killed*) gc_killed=$((gc_killed + 1)) ;; *) kill -KILL "$pid" 2>/dev/null || true ;; esac
  after_kill "$S"
  log "gc round $k: $what; pack files: $(cd "$S/packs" && ls | tr '\n' ' ')"
  dz_fsck "$S"
  dz_mount "$S" "$MNT" -o workers=0,gc_secs=1,commit_secs=1
  tree_compare "$MIR" "$MNT"
  # Let background gc finish the job on this mount: two passes delete, then compaction.
  for _ in $(seq 100); do
    [ "$(packs_bytes "$S")" -lt $((pack0 / 2)) ] && break
    sleep 0.2
  done
  sleep 1.2
  dz_umount "$MNT" "$S"
  after=$(packs_bytes "$S")
  [ "$after" -lt $((pack0 / 2)) ] || fail "gc round $k: background gc after the kill left $after of $pack0 pack bytes"
  dz_fsck "$S"
done
want=$((ROUNDS - 1))
[ "$HAVE_STRACE" = 1 ] || want=1   # timing alone lands less surely
[ "$gc_killed" -ge "$want" ] || fail "only $gc_killed of $ROUNDS gc kills landed where aimed"
log "FIGURE background gc: $gc_killed kills inside gc passes survived ($ROUNDS rounds)"
