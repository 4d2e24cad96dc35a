#!/usr/bin/env bash
# Snapshots as a demanding user meets them (issue 16): a read-only mount refuses snapshot, delete
# and prune with EROFS and changes nothing; `dzfs snapshot STORE` of a mounted volume goes through
# its daemon; odd names (spaces, unicode, a leading '-', 255 bytes) round-trip through
# `dzfs snapshots --json` and `dzfs diff --json`; a missing snapshot is named as such; a name
# given twice is deleted once; a prune of more than 64 snapshots works on a mount; the control
# socket survives clients that send garbage or nothing (an idle one holds it 5 s at most),
# a stale socket file, and a store path longer than sun_path; fsck is clean after all of it.
. "$(dirname "$0")/lib.sh"
it_init snapshots_user 240

STORE=$IT_TMP/store MNT=$IT_TMP/mnt
dz_mkfs "$STORE"
dz_mount "$STORE" "$MNT" -o workers=0
mkdir -p "$MNT/current/sub" "$MNT/other"
echo hello >"$MNT/current/a"
head -c 300000 /dev/urandom >"$MNT/current/sub/r.bin"
echo outside >"$MNT/other/o"
ln "$MNT/other/o" "$MNT/current/sub/hl"  # a hard link to a file outside the snapshotted tree

# expect_fail WANT_RC PATTERN CMD...: CMD must exit WANT_RC with PATTERN in its message.
expect_fail() {
  local want=$1 pat=$2 out rc=0
  shift 2
  out=$(run_to 60 "$@" 2>&1) || rc=$?
  [ "$rc" -eq "$want" ] || fail "$* exited $rc, expected $want: $out"
  grep -q -- "$pat" <<<"$out" || fail "$*: message lacks '$pat': $out"
}

# Odd names: each one is created, listed, and read back exactly through --json.
long=$(printf 'x%.0s' $(seq 255))
uni=$("$PY" -c 'print("é" * 127)')  # 254 bytes of two-byte characters
names=("with space" "ünïcødé ☃" "-dash" "$long" "$uni" 'quote"back\slash')
for n in "${names[@]}"; do run_to 60 "$DZFS" snapshot "$MNT/current" "$n" >/dev/null; done
expect_fail 1 "1 to 255 bytes" "$DZFS" snapshot "$MNT/current" "x$long"
run_to 60 "$DZFS" snapshots "$MNT" --json >"$IT_TMP/list.json"
"$PY" - "$IT_TMP/list.json" "${names[@]}" <<'EOF' || fail "dzfs snapshots --json: $(head -c 2000 "$IT_TMP/list.json")"
import json, sys
got = [s["name"] for s in json.load(open(sys.argv[1]))["snapshots"]]
want = sys.argv[2:]
if got != want:
    sys.exit("names %r, expected %r" % (got, want))
EOF
run_to 60 "$DZFS" snapshots "$MNT" >/dev/null
# The snapshot of a subdirectory keeps the link inside it, with the links it has there.
[ "$(stat -c %h "$MNT/.snapshots/with space/sub/hl")" = 1 ] || fail "a hard link from outside kept its outside count"
cmp "$MNT/.snapshots/with space/sub/hl" "$MNT/other/o"

# diff with odd names, by names and by paths, as JSON lines.
echo more >>"$MNT/current/a"
run_to 60 "$DZFS" diff "$STORE" "with space" "$uni" --json >/dev/null
# (Against the live tree itself, sub/hl would also show [links: 1 -> 2]: a snapshot counts only
# the names inside it, and the live file has one outside.)
run_to 60 "$DZFS" snapshot "$MNT/current" "après ☃" >/dev/null
run_to 60 "$DZFS" diff "$MNT/.snapshots/-dash" "$MNT/.snapshots/après ☃" --json >"$IT_TMP/diff.json"
"$PY" -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
if [r["path"] for r in rows] != ["a"]: sys.exit("diff: %r" % rows)
' "$IT_TMP/diff.json" || fail "dzfs diff --json: $(cat "$IT_TMP/diff.json")"
expect_fail 1 "not inside a mounted dzfs volume" "$DZFS" diff "$MNT/current" /tmp
expect_fail 1 "must both be directories" "$DZFS" diff "$MNT/.snapshots/-dash" "$MNT/current/a"

# A missing snapshot is named as missing, whichever way it is given; nothing is deleted.
expect_fail 1 "no snapshot named missing" "$DZFS" snapshot --delete "$MNT/.snapshots/missing"
expect_fail 1 "no snapshot named missing" "$DZFS" snapshot --delete "$STORE" -dash missing
[ -d "$MNT/.snapshots/-dash" ] || fail "a failed delete removed a snapshot"
expect_fail 1 "does not exist" "$DZFS" snapshot "$MNT/nonexistent"
expect_fail 1 "only a directory" "$DZFS" snapshot "$MNT/current/a"
# A name given twice is deleted once (the snapshots folder keeps its link count: fsck below).
out=$(run_to 60 "$DZFS" snapshot --delete "$MNT/.snapshots/-dash" "$MNT/.snapshots/-dash/")
[ "$(grep -c deleted <<<"$out")" = 1 ] || fail "a name given twice was reported twice: $out"

# `dzfs snapshot STORE` while mounted: through the daemon, a snapshot of the whole volume.
out=$(run_to 60 "$DZFS" snapshot "$STORE" by-store) || fail "dzfs snapshot STORE of a mounted volume: $out"
[ -f "$MNT/.snapshots/by-store/current/a" ] || fail "the snapshot made by STORE is not visible in the mount"
[ -e "$MNT/.snapshots/by-store/.snapshots" ] && fail "a snapshot of the root holds .snapshots"

# The control socket: garbage, nothing, an idle client; the daemon answers and serves on.
"$PY" - "$STORE/control.sock" <<'EOF' || fail "control socket misbehaved"
import socket, struct, sys, time
path = sys.argv[1]
def ask(data, shut=True):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    s.sendall(data)
    if shut: s.shutdown(socket.SHUT_WR)
    d = b""
    while True:
        try: x = s.recv(65536)
        except ConnectionResetError: break
        if not x: break
        d += x
    s.close()
    return d
def req(*fields):
    return struct.pack("<I", len(fields)) + b"".join(struct.pack("<I", len(f)) + f for f in fields)
for data in [b"", b"\xff" * 64, struct.pack("<I", 0), struct.pack("<II", 1, 0xffffffff),
             struct.pack("<II", 1, 100) + b"abc", req(b"rm"), req(b"snapshot"), req(b"delete"),
             req(b"snapshot", b"/current", b"a/b"), req(b"snapshot", b"/../x", b"y")]:
    r = ask(data)
    if len(r) >= 8 and struct.unpack("<i", r[:4])[0] == 0:
        sys.exit("request %r succeeded" % data)
# A client that connects and sends nothing holds the socket for a bounded time only.
idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
idle.connect(path)
t = time.time()
r = ask(req(b"snapshot", b"/current", b"after-idle"))
idle.close()
if struct.unpack("<i", r[:4])[0] != 0: sys.exit("a request after an idle client failed: %r" % r)
if time.time() - t > 8: sys.exit("an idle client held the socket %.1f s" % (time.time() - t))
EOF
[ -d "$MNT/.snapshots/after-idle" ] || fail "the request after garbage was not served"

# A prune that deletes more than 64 snapshots goes to the daemon in one request, all or nothing.
mkdir "$MNT/tiny"
t0=$(date +%s.%N)
for i in $(seq 70); do run_to 60 "$DZFS" snapshot "$MNT/tiny" "p-$i" >/dev/null; done
log "70 snapshots of a 1-inode directory in a $(ls "$MNT/.snapshots" | wc -l)-snapshot volume: $(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { print a - b }') s"
out=$(run_to 60 "$DZFS" prune "$MNT" --prefix p- --keep-last 1) || fail "prune of 69 snapshots: $out"
[ "$(ls "$MNT/.snapshots" | grep -c '^p-')" = 1 ] || fail "prune left $(ls "$MNT/.snapshots" | grep -c '^p-') p- snapshots: $out"

# A read-only mount: snapshot, delete and prune are EROFS and change nothing.
dz_umount "$MNT" "$STORE"
dz_mount "$STORE" "$MNT" -o ro,workers=0
before=$(run_to 60 "$DZFS" snapshots "$STORE" --json)
expect_fail 1 "read-only" "$DZFS" snapshot "$MNT/current" ro-snap
expect_fail 1 "read-only" "$DZFS" snapshot "$STORE" ro-snap
expect_fail 1 "read-only" "$DZFS" snapshot --delete "$MNT/.snapshots/by-store"
expect_fail 1 "read-only" "$DZFS" prune "$MNT" --keep-last 1
[ "$(run_to 60 "$DZFS" snapshots "$STORE" --json)" = "$before" ] || fail "a read-only mount's snapshots changed"
run_to 60 "$DZFS" prune "$MNT" --keep-last 1 --dry-run >/dev/null || fail "prune --dry-run on a read-only mount failed"
dz_umount "$MNT" "$STORE"
dz_fsck "$STORE"

# A stale control.sock (a daemon killed with -9) does not stop the next mount; a store path
# longer than sun_path's 108 bytes reaches its daemon through /proc/self/fd.
deep=$IT_TMP/$(printf 'd%.0s' $(seq 60))/$(printf 'e%.0s' $(seq 60))
mkdir -p "$deep"
mv "$STORE" "$deep/store"
STORE=$deep/store
dz_mount "$STORE" "$MNT" -o workers=0
run_to 60 "$DZFS" snapshot "$MNT/current" deep >/dev/null
dz_kill_daemon "$MNT" >/dev/null
[ -S "$STORE/control.sock" ] || log "no stale control.sock left (nothing to check)"
dz_mount "$STORE" "$MNT" -o workers=0
run_to 60 "$DZFS" snapshot "$MNT/current" after-kill >/dev/null
run_to 60 "$DZFS" snapshot --delete "$STORE" deep after-kill >/dev/null
dz_umount "$MNT" "$STORE"
dz_fsck "$STORE"
log "ok"
