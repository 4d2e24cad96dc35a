#!/usr/bin/env bash
# Bad input: each case of the CLI contract's error list must give a non-zero exit and a one-line
# message on stderr starting with "dzfs:", within 30 s, and leave nothing mounted or running:
#   mount of a directory that is not a volume (empty, holding files, missing), a dzfs.conf with
#   format_version = 999, a mountpoint that is already a mount, unknown or bad -o options, a store
#   already mounted elsewhere, gc of a mounted store, mkfs into a non-empty non-volume directory.
# Positive controls: mount (daemonized and -f), and a volume whose daemon was killed with SIGKILL
# mounts again with its committed and its fsynced data, and fsck finds it clean.
. "$(dirname "$0")/lib.sh"
it_init bad_input 150

T=$IT_TMP
problems=()
problem() { problems+=("$*"); printf 'PROBLEM: %s\n' "$*" >&2; }

# expect_refusal DESC MNT-OR-"" CMD...: non-zero exit, one "dzfs:" line on stderr, MNT not mounted.
expect_refusal() {
  local desc=$1 mp=$2; shift 2
  local rc=0 err
  timeout -k 5 30 "$@" >"$T/out" 2>"$T/err" </dev/null || rc=$?
  err=$(cat "$T/err")
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    problem "$desc: \`$*\` hung (killed after 30 s)"
  elif [ "$rc" -eq 0 ]; then
    problem "$desc: \`$*\` succeeded (exit 0), expected a refusal; stdout: $(head -c 300 "$T/out") stderr: $err"
  elif ! head -n 1 <<<"$err" | grep -q '^dzfs:'; then
    problem "$desc: \`$*\` exit $rc but stderr does not start with 'dzfs:': '$err'"
  elif [ "$(grep -c . <<<"$err")" -ne 1 ]; then
    problem "$desc: \`$*\` exit $rc, stderr is not one line: '$err'"
  else
    log "ok: $desc: exit $rc: $err"
  fi
  if [ -n "$mp" ] && is_mounted "$mp"; then
    problem "$desc: $mp is mounted after the refused command"
    _it_unmount_one "$mp"
  fi
  if [ -n "$mp" ]; then
    sleep 0.2
    local pids; pids=$(dzfs_pids_for "$mp")
    [ -z "$pids" ] || problem "$desc: dzfs process(es) $(echo $pids) for $mp still running after the refusal"
  fi
}

# informational: behaviour outside the contract's list, reported but not failed on.
inform() {
  local desc=$1; shift
  local rc=0
  timeout -k 5 30 "$@" >"$T/out" 2>"$T/err" </dev/null || rc=$?
  log "info: $desc: exit $rc, stderr: $(head -c 300 "$T/err" | tr '\n' ' ')"
}

S1=$T/s1 S2=$T/s2 M1=$T/m1 M2=$T/m2
dz_mkfs "$S1"
dz_mkfs "$S2"
mkdir -p "$M2"
_it_register_mount "$M2"

# ---- positive controls
dz_mount "$S1" "$M1"
echo "keep me" >"$M1/keep"
log "foreground mount (-f)"
M3=$T/m3 S3=$T/s3
dz_mkfs "$S3"
mkdir -p "$M3"
_it_register_mount "$M3"
timeout -k 5 60 "$DZFS" mount "$S3" "$M3" -f >"$T/fg.out" 2>&1 &
fg=$!
wait_mounted "$M3" 15
echo fg >"$M3/f"
dz_umount "$M3" "$S3"
rc=0
for _ in $(seq 50); do kill -0 "$fg" 2>/dev/null || break; sleep 0.1; done
kill -0 "$fg" 2>/dev/null && problem "dzfs mount -f: still running 5 s after dzfs umount"
wait "$fg" || rc=$?
[ "$rc" -eq 0 ] || problem "dzfs mount -f: exit $rc after dzfs umount (expected 0): $(cat "$T/fg.out")"

# ---- not a volume
mkdir -p "$T/empty" "$T/junk"
echo data >"$T/junk/file"
expect_refusal "mount of an empty non-volume directory" "$M2" "$DZFS" mount "$T/empty" "$M2"
expect_refusal "mount of a non-volume directory holding files" "$M2" "$DZFS" mount "$T/junk" "$M2"
expect_refusal "mount of a missing store" "$M2" "$DZFS" mount "$T/no_such_store" "$M2"
expect_refusal "mount.fuse3-style mount of a non-volume" "$M2" "$DZFS" "$T/junk" "$M2"

# ---- format_version newer than supported
S4=$T/s4
dz_mkfs "$S4"
sed -i -E 's/^([[:space:]]*format_version[[:space:]]*=[[:space:]]*).*/\1999/' "$S4/dzfs.conf"
grep -Eq 'format_version[[:space:]]*=[[:space:]]*999' "$S4/dzfs.conf" || fail "could not set format_version = 999 in $S4/dzfs.conf: $(cat "$S4/dzfs.conf")"
expect_refusal "mount of a volume with format_version = 999" "$M2" "$DZFS" mount "$S4" "$M2"
grep -Eq 'format_version[[:space:]]*=[[:space:]]*999' "$S4/dzfs.conf" || problem "the refused mount rewrote format_version in dzfs.conf: $(cat "$S4/dzfs.conf")"
expect_refusal "gc of a volume with format_version = 999" "" "$DZFS" gc "$S4"

# ---- busy mountpoint, store mounted elsewhere, gc of a mounted store
expect_refusal "mount onto a mountpoint that is already a mount" "" "$DZFS" mount "$S2" "$M1"
[ "$(timeout 10 cat "$M1/keep" 2>&1)" = "keep me" ] || problem "after the refused mount over $M1, $M1/keep no longer reads 'keep me': $(timeout 10 cat "$M1/keep" 2>&1)"
grep -c " $M1 " /proc/self/mountinfo | grep -qx 1 || problem "$M1 is mounted $(grep -c " $M1 " /proc/self/mountinfo) times after the refused mount over it"
expect_refusal "mount of a store already mounted elsewhere" "$M2" "$DZFS" mount "$S1" "$M2"
expect_refusal "gc of a mounted store" "" "$DZFS" gc "$S1"
[ "$(timeout 10 cat "$M1/keep" 2>&1)" = "keep me" ] || problem "after the refused gc, $M1/keep no longer reads"

# ---- bad -o options
for o in bogus_option commit_secs=abc commit_secs=-1 commit_secs= cache_mb=lots cache_mb=-5 "commit_secs=5,nonsense=1"; do
  expect_refusal "mount -o $o" "$M2" "$DZFS" mount "$S2" "$M2" -o "$o"
done

# ---- mkfs
mkdir -p "$T/full"
echo precious >"$T/full/precious.txt"
expect_refusal "mkfs into a non-empty non-volume directory" "" "$DZFS" mkfs "$T/full"
[ "$(cat "$T/full/precious.txt")" = precious ] && [ "$(ls -A "$T/full")" = precious.txt ] || problem "the refused mkfs changed $T/full: $(ls -A "$T/full")"
echo x >"$T/afile"
expect_refusal "mkfs onto a regular file" "" "$DZFS" mkfs "$T/afile"

# ---- outside the list: reported only
inform "mkfs onto an existing volume" "$DZFS" mkfs "$S2"
inform "mount onto a missing mountpoint" "$DZFS" mount "$S2" "$T/no_such_mnt"
is_mounted "$T/no_such_mnt" && _it_register_mount "$T/no_such_mnt" && _it_unmount_one "$T/no_such_mnt"
inform "stats of a non-volume" "$DZFS" stats "$T/junk"
inform "umount of a directory that is not mounted" "$DZFS" umount "$T/empty"
inform "unknown subcommand" "$DZFS" frobnicate
inform "mkfs --chunk-min 0" "$DZFS" mkfs "$T/s_bad_chunk" --chunk-min 0

# ---- the store survives a killed daemon: committed data is there, the store mounts again
dz_umount "$M1" "$S1"
dz_mount "$S1" "$M1" -o commit_secs=1
echo "after kill" >"$M1/committed"
sync -f "$M1/committed" 2>/dev/null || true
dz_umount "$M1" "$S1"
dz_mount "$S1" "$M1" -o commit_secs=1
echo "uncommitted maybe" >"$M1/maybe"
# fsync is durability: an fsynced file (and its directory entry) survives a daemon crash.
"$PY" - "$M1" "$T/fsynced.ref" <<'EOF2'
import os, random, sys
data = random.Random(77).randbytes(1 << 20)
open(sys.argv[2], "wb").write(data)
os.mkdir(os.path.join(sys.argv[1], "fsdir"))
fd = os.open(os.path.join(sys.argv[1], "fsdir", "fsynced.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, data)
os.fsync(fd)
os.close(fd)
for d in (os.path.join(sys.argv[1], "fsdir"), sys.argv[1]):
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)
EOF2
pids=$(dzfs_pids_for "$M1")
[ -n "$pids" ] || fail "cannot find the dzfs daemon of $M1 (looked for a dzfs process whose argv holds $M1)"
log "SIGKILL to the daemon of $M1: pid(s) $(echo $pids)"
kill -KILL $pids
sleep 0.5
timeout 10 fusermount3 -uz "$M1" 2>/dev/null || true
rc=0
out=$(timeout -k 5 30 "$DZFS" mount "$S1" "$M1" 2>&1) || rc=$?
if [ "$rc" -ne 0 ]; then
  problem "after SIGKILL of the daemon and fusermount3 -uz, dzfs mount $S1 $M1 is refused (exit $rc): $out"
else
  wait_mounted "$M1" 10
  [ "$(cat "$M1/keep" 2>&1)" = "keep me" ] || problem "after a daemon crash, keep reads: $(cat "$M1/keep" 2>&1)"
  [ "$(cat "$M1/committed" 2>&1)" = "after kill" ] || problem "after a daemon crash, committed reads: $(cat "$M1/committed" 2>&1)"
  cmp "$T/fsynced.ref" "$M1/fsdir/fsynced.bin" >/dev/null 2>&1 || problem "a 1 MiB file written, fsynced (file and directories) and then the daemon SIGKILLed: after remount fsdir/fsynced.bin is $(stat -c '%s bytes' "$M1/fsdir/fsynced.bin" 2>&1) and differs from what was written"
  log "after the crash: 'maybe' is $( [ -e "$M1/maybe" ] && echo "present: $(cat "$M1/maybe" 2>&1)" || echo absent)"
  dz_umount "$M1" "$S1"
  dz_fsck "$S1"
fi

((${#problems[@]} == 0)) || fail "${#problems[@]} problem(s):
$(printf '  - %s\n' "${problems[@]}")"
