# Shared helpers for the dzfs integration tests. Source it first thing:
#
#   . "$(dirname "$0")/lib.sh"
#   it_init <name> <budget-seconds>
#
# Each test gets its own directory under /tmp ($IT_TMP), a watchdog that aborts hung FUSE
# requests and kills the test once its budget is spent, and an EXIT trap that always unmounts
# what the test mounted (dzfs umount, then fusermount3 -uz, then an abort of the FUSE
# connection) and removes $IT_TMP. Exit codes: 0 pass, 1 fail, 77 skip (ctest SKIP_RETURN_CODE).
# Needs root, /dev/fuse and fusermount3; python3 (stdlib only) does the precise checks.

set -Eeuo pipefail
shopt -s nullglob

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IT_NAME=${IT_NAME:-$(basename "$0" .sh)}
IT_TMP=""
IT_WATCHDOG=""
IT_T0=$(date +%s.%N)
PY=${PYTHON:-python3}
TREECHECK="$IT_DIR/treecheck.py"

log() { printf '[%s %6.1fs] %s\n' "$IT_NAME" "$(awk -v a="$(date +%s.%N)" -v b="$IT_T0" 'BEGIN { print a - b }')" "$*" >&2; }
fail() {
  printf '\nFAIL: %s: %s\n' "$IT_NAME" "$*" >&2
  exit 1
}
skip() {
  printf 'SKIP: %s: %s\n' "$IT_NAME" "$*" >&2
  exit 77
}
# An unexpected non-zero status under set -e: say where, then the EXIT trap cleans up.
_it_err() {
  local rc=$? line=${BASH_LINENO[0]} cmd=${BASH_COMMAND%%$'\n'*}
  ((${#cmd} <= 300)) || cmd="${cmd:0:300}..."
  printf '\nFAIL: %s: command failed (exit %d) at %s line %s: %s\n' "$IT_NAME" "$rc" "$(basename "$0")" "$line" "$cmd" >&2
  exit 1
}

# ---------------------------------------------------------------- environment and skips
_it_find_dzfs() {
  if [ -n "${DZFS:-}" ]; then return 0; fi
  local root; root=$(cd "$IT_DIR/../.." && pwd)
  local c
  for c in "$root/build-it/bin/dzfs" "$root/build/bin/dzfs"; do
    if [ -x "$c" ]; then DZFS=$c; return 0; fi
  done
  if command -v dzfs >/dev/null 2>&1; then DZFS=$(command -v dzfs); return 0; fi
  return 1
}

it_init() {
  IT_NAME=$1
  local budget=${2:-120}
  [ "$(id -u)" -eq 0 ] || skip "needs root (FUSE mounts, mknod, chown)"
  [ -c /dev/fuse ] || skip "no /dev/fuse"
  command -v fusermount3 >/dev/null 2>&1 || skip "no fusermount3"
  command -v "$PY" >/dev/null 2>&1 || skip "no python3"
  _it_find_dzfs || skip "no dzfs binary (set DZFS=/path/to/dzfs)"
  [ -x "$DZFS" ] || fail "DZFS=$DZFS is not an executable file"
  export DZFS
  IT_TMP=$(mktemp -d "/tmp/dzfs-it.$IT_NAME.XXXXXX")
  : >"$IT_TMP/.mounts"       # one path per line: FUSE mounts made by this test
  : >"$IT_TMP/.othermounts"  # tmpfs and the like, unmounted after the FUSE ones
  trap _it_cleanup EXIT
  trap _it_err ERR
  trap 'fail "interrupted (SIGINT)"' INT
  trap 'fail "terminated (SIGTERM): the test ran past its budget or was killed"' TERM
  _it_start_watchdog "$budget"
  log "dzfs=$DZFS tmp=$IT_TMP budget=${budget}s"
}

# The watchdog: once the budget is spent, abort every FUSE connection this test made (which
# unblocks any request stuck in the daemon), then SIGTERM the test so its trap cleans up.
_it_start_watchdog() {
  local budget=$1 main=$$ tmp=$IT_TMP
  (
    trap - EXIT ERR INT TERM
    sleep "$budget" &
    echo $! >"$tmp/.wdsleep"
    wait $! || exit 0
    printf '\nFAIL: %s: watchdog: still running after %ss, aborting its FUSE connections\n' "$IT_NAME" "$budget" >&2
    while read -r mp; do [ -n "$mp" ] && _it_abort_conn "$mp"; done <"$tmp/.mounts"
    kill -TERM "$main" 2>/dev/null
    sleep 15
    kill -KILL "$main" 2>/dev/null
  ) </dev/null &
  IT_WATCHDOG=$!
}

# Aborting a FUSE connection through fusectl makes every pending and future request on it fail
# with ENOTCONN: the only way to unstick a process blocked on a hung daemon.
_it_abort_conn() {
  local mp=$1 dev
  dev=$(awk -v m="$mp" "$_IT_FSTYPE"' $5 == m && fstype() ~ /^fuse/ { split($3, a, ":"); print a[2]; exit }' /proc/self/mountinfo 2>/dev/null || true)
  [ -n "$dev" ] || return 0
  if [ ! -e /sys/fs/fuse/connections/"$dev" ]; then
    mountpoint -q /sys/fs/fuse/connections 2>/dev/null || mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null || true
  fi
  [ -w /sys/fs/fuse/connections/"$dev"/abort ] && echo 1 >/sys/fs/fuse/connections/"$dev"/abort 2>/dev/null || true
}

# True if PATH is a mount point, judged from /proc/self/mountinfo so that it never touches a
# (possibly hung) FUSE mount. Paths with spaces are not used by these tests.
is_mounted() {
  awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo
}
is_fuse_mounted() {
  awk -v m="$1" "$_IT_FSTYPE"' $5 == m && fstype() ~ /^fuse/ { f = 1 } END { exit !f }' /proc/self/mountinfo
}
# awk: the filesystem type of a mountinfo line is the field after the "-" separator.
_IT_FSTYPE='function fstype(  i) { for (i = 7; i <= NF; i++) if ($i == "-") return $(i + 1); return "" }'


# PIDs of dzfs processes whose command line mentions PATH (a store or a mountpoint of this test).
dzfs_pids_for() {
  local path=$1 p exe
  for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null || true)
    case "$exe" in */dzfs|*/dzfs\ \(deleted\)) ;; *) continue ;; esac
    if tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qxF -- "$path"; then echo "${p#/proc/}"; fi
  done
}

_it_unmount_one() {
  local mp=$1
  is_mounted "$mp" || return 0
  timeout -k 2 15 "$DZFS" umount "$mp" >/dev/null 2>&1 || true
  if is_mounted "$mp"; then
    log "cleanup: dzfs umount $mp failed, falling back to fusermount3 -uz"
    _it_abort_conn "$mp"
    timeout -k 2 10 fusermount3 -uz "$mp" 2>/dev/null || timeout -k 2 10 umount -l "$mp" 2>/dev/null || true
  fi
}

_it_cleanup() {
  local rc=$?
  trap - ERR INT TERM
  set +e
  if [ -n "$IT_WATCHDOG" ]; then
    kill "$IT_WATCHDOG" 2>/dev/null
    [ -s "$IT_TMP/.wdsleep" ] && kill "$(cat "$IT_TMP/.wdsleep")" 2>/dev/null
    wait "$IT_WATCHDOG" 2>/dev/null
  fi
  if [ -n "$IT_TMP" ] && [ -d "$IT_TMP" ]; then
    local mp pid
    # Newest mounts first.
    while read -r mp; do [ -n "$mp" ] && _it_unmount_one "$mp"; done < <(tac "$IT_TMP/.mounts" 2>/dev/null)
    # Daemons of this test that outlived their mount: give them a moment, then kill by pid.
    for pid in $(dzfs_pids_for_tmp); do
      for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      if kill -0 "$pid" 2>/dev/null; then log "cleanup: killing leftover dzfs pid $pid"; kill -KILL "$pid" 2>/dev/null; fi
    done
    while read -r mp; do
      [ -n "$mp" ] && is_mounted "$mp" && { umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null; }
    done < <(tac "$IT_TMP/.othermounts" 2>/dev/null)
    # Never recurse into something still mounted.
    if grep -qF " $IT_TMP/" /proc/self/mountinfo; then
      log "cleanup: something is still mounted under $IT_TMP, leaving it in place"
    elif [ -z "${IT_KEEP:-}" ] || [ "$rc" -eq 0 ]; then
      rm -rf --one-file-system "$IT_TMP"
    else
      log "IT_KEEP set: left $IT_TMP"
    fi
  fi
  if [ "$rc" -eq 0 ]; then log "PASS"; fi
  exit "$rc"
}

dzfs_pids_for_tmp() {
  local p exe
  for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null || true)
    case "$exe" in */dzfs|*/dzfs\ \(deleted\)) ;; *) continue ;; esac
    if tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qF -- "$IT_TMP/"; then echo "${p#/proc/}"; fi
  done
}

# ---------------------------------------------------------------- running things
# run_to SECS CMD...: CMD with a hard time limit; a time-out is a test failure, never a hang.
run_to() {
  local secs=$1; shift
  local rc=0
  timeout -k 5 "$secs" "$@" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then fail "timed out after ${secs}s: $*"; fi
  return "$rc"
}

# ---------------------------------------------------------------- dzfs helpers
# dz_mkfs STORE [mkfs options...]
dz_mkfs() {
  local store=$1; shift
  local out rc=0
  out=$(timeout -k 5 60 "$DZFS" mkfs "$store" "$@" 2>&1) || rc=$?
  [ "$rc" -eq 0 ] || fail "dzfs mkfs $store $*: exit $rc: $out"
  [ -f "$store/dzfs.conf" ] || fail "dzfs mkfs $store: no $store/dzfs.conf afterwards"
}

# wait_mounted MNT [SECS]: wait until MNT is a live FUSE mount that answers stat.
wait_mounted() {
  local mp=$1 secs=${2:-20} i
  for ((i = 0; i < secs * 10; i++)); do
    if is_fuse_mounted "$mp" && timeout 5 stat "$mp" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  fail "$mp did not become a live FUSE mount within ${secs}s"
}

_it_register_mount() { grep -qxF -- "$1" "$IT_TMP/.mounts" || echo "$1" >>"$IT_TMP/.mounts"; }

# dz_mount STORE MNT [args...]: mount (daemonized) and require it to be live when dzfs returns.
dz_mount() {
  local store=$1 mp=$2; shift 2
  mkdir -p "$mp"
  _it_register_mount "$mp"
  local out rc=0
  out=$(timeout -k 5 60 "$DZFS" mount "$store" "$mp" "$@" 2>&1) || rc=$?
  [ "$rc" -eq 0 ] || fail "dzfs mount $store $mp $*: exit $rc: $out"
  # The contract: without -f, dzfs returns once the mount is live.
  is_fuse_mounted "$mp" || fail "dzfs mount $store $mp returned 0 but $mp is not a FUSE mount yet"
  wait_mounted "$mp" 10
}

# dz_umount MNT [STORE]: dzfs umount must commit, unmount and wait for the daemon to exit.
dz_umount() {
  local mp=$1 store=${2:-}
  local out rc=0
  out=$(timeout -k 5 120 "$DZFS" umount "$mp" 2>&1) || rc=$?
  [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "dzfs umount $mp: timed out after 120s"
  [ "$rc" -eq 0 ] || fail "dzfs umount $mp: exit $rc: $out"
  is_mounted "$mp" && fail "dzfs umount $mp returned 0 but $mp is still mounted"
  local pids
  pids=$(dzfs_pids_for "$mp")
  if [ -n "$store" ]; then pids="$pids $(dzfs_pids_for "$store")"; fi
  pids=$(echo $pids)
  if [ -n "$pids" ]; then
    ps -o pid,stat,args -p "${pids// /,}" >&2 || true
    fail "dzfs umount $mp returned but dzfs process(es) $pids for it are still running (contract: umount waits until the daemon has exited)"
  fi
}

dz_remount() { dz_umount "$2" "$1"; dz_mount "$@"; }

# poll_le SECONDS BOUND CMD...: runs CMD (which prints a number) once a second until the number
# is at most BOUND or SECONDS have passed; prints the last number.
poll_le() {
  local secs=$1 bound=$2 v i
  shift 2
  for i in $(seq 1 "$secs"); do
    v=$("$@")
    [ "$v" -le "$bound" ] && break
    [ "$i" -lt "$secs" ] && sleep 1
  done
  echo "$v"
}

# dz_stats STORE|MNT: the --json object, validated to hold the contract's keys.
dz_stats() {
  local out rc=0
  out=$(timeout -k 5 60 "$DZFS" stats "$1" --json 2>"$IT_TMP/.stats.err") || rc=$?
  [ "$rc" -eq 0 ] || fail "dzfs stats $1 --json: exit $rc: $(cat "$IT_TMP/.stats.err")"
  printf '%s' "$out" | "$PY" -c '
import json, sys
try:
    o = json.loads(sys.stdin.read())
except ValueError as e:
    sys.exit("dzfs stats --json did not print one JSON object: %s" % e)
need = ["logical_bytes", "unique_chunk_bytes", "stored_bytes", "pack_bytes", "chunks", "files",
        "dedup_ratio", "compression_ratio", "bytes_by_codec"]
miss = [k for k in need if k not in o]
if miss: sys.exit("dzfs stats --json lacks keys %s: %s" % (miss, json.dumps(o)))
if not isinstance(o["bytes_by_codec"], dict): sys.exit("bytes_by_codec is not an object: %r" % o["bytes_by_codec"])
' || fail "dzfs stats $1 --json: bad output: $out"
  printf '%s\n' "$out"
}

# dz_stat_key STORE|MNT KEY: one number from stats --json.
dz_stat_key() {
  dz_stats "$1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

# dz_fsck STORE [WANT_RC]: dzfs fsck (index invariants and every chunk's bytes) of an unmounted
# store must exit WANT_RC (default 0: clean; 4: problems found).
dz_fsck() {
  local store=$1 want=${2:-0} out rc=0
  out=$(timeout -k 5 120 "$DZFS" fsck "$store" 2>&1) || rc=$?
  [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "dzfs fsck $store: timed out after 120s"
  [ "$rc" -eq "$want" ] || fail "dzfs fsck $store: exit $rc, expected $want: $(head -c 3000 <<<"$out")"
  log "fsck (exit $rc): $(tail -n 3 <<<"$out" | tr '\n' ' ')"
}

# dz_kill_daemon MNT: SIGKILL to the dzfs daemon of MNT (a crash), then the lazy unmount a user
# would do; waits until the daemon is gone. Prints its pids.
# The plain SQLite index of an unmounted STORE, for a test to read or damage: a clean close leaves
# it packed (index.db.zst), so this unpacks it first. Prints the path.
dz_index_db() {
  local out
  out=$(timeout -k 5 120 "$DZFS" unpack-index "$1" 2>&1) || fail "dzfs unpack-index $1: $out"
  echo "$1/index.db"
}

dz_kill_daemon() {
  local mnt=$1 pids
  pids=$(dzfs_pids_for "$mnt")
  [ -n "$pids" ] || fail "no dzfs daemon for $mnt"
  kill -KILL $pids
  timeout 10 fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
  for _ in $(seq 50); do [ -z "$(dzfs_pids_for "$mnt")" ] && break; sleep 0.1; done
  echo $pids
}

# Sum of the sizes of STORE/packs/*.pack as they lie on disk.
pack_files_bytes() {
  local s=0 f
  for f in "$1"/packs/*.pack; do s=$((s + $(stat -c %s "$f"))); done
  echo "$s"
}

# treecheck: compare two trees (see treecheck.py); prints the differences and fails on any.
tree_compare() {
  local a=$1 b=$2; shift 2
  local out rc=0
  out=$(run_to 300 "$PY" "$TREECHECK" compare "$a" "$b" "$@" 2>&1) || rc=$?
  [ "$rc" -eq 0 ] || fail "trees differ: $a (expected) vs $b (got):
$out"
  [ -z "$out" ] || log "$out"
}
