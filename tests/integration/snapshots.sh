#!/usr/bin/env bash
# Snapshots on a real mount (issue 16): rsync a tree with every entry kind into current/, snapshot
# it, change the live tree, and the snapshot still equals the old tree by rsync -aHAXn --checksum
# (also after a remount); every change inside a snapshot is EROFS, for root; a snapshot made after
# a failed lookup of its name is visible at once; dzfs snapshots announces what only a snapshot
# holds and deleting it frees exactly that; diff lists what changed; prune keeps the newest;
# a user other than root cannot reach the control socket; an unmounted volume works too.
. "$(dirname "$0")/lib.sh"
it_init snapshots 200

SRC=$IT_TMP/src REF=$IT_TMP/ref STORE=$IT_TMP/store MNT=$IT_TMP/mnt
"$PY" "$TREECHECK" build-rich "$SRC"
"$PY" "$TREECHECK" gen "$SRC/data" --seed 5 --text-files 3 --text-size 300K --rand-files 2 --rand-size 400K --small-files 30
# rsync 3.2.7 does not keep the mtime of a directory changed less than a second before it runs
# (seen on a plain local copy too), so the tree settles before anything copies it.
sleep 1.5
cp -a "$SRC" "$REF"
dz_mkfs "$STORE"
dz_mount "$STORE" "$MNT" -o workers=0
mkdir "$MNT/current"
run_to 120 rsync -aHAX --numeric-ids "$SRC/" "$MNT/current/"

# checksum_equal A B: rsync's own check that B holds exactly A (contents, attributes, links).
checksum_equal() {
  local out
  out=$(run_to 120 rsync -aHAXn --numeric-ids --checksum --itemize-changes --delete "$1/" "$2/")
  [ -z "$out" ] || fail "$2 differs from $1 (rsync -aHAXn --checksum):
$(head -40 <<<"$out")"
}

# A lookup of the name before the snapshot exists: the kernel caches the negative answer.
stat "$MNT/.snapshots/night1" >/dev/null 2>&1 && fail ".snapshots/night1 exists before the snapshot"
out=$(run_to 60 "$DZFS" snapshot "$MNT/current" night1)
log "$out"
grep -q "$MNT/.snapshots/night1" <<<"$out" || fail "dzfs snapshot did not name the snapshot's path: $out"
[ -d "$MNT/.snapshots/night1" ] || fail "the new snapshot is not visible at once (a cached negative entry?)"
checksum_equal "$REF" "$MNT/.snapshots/night1"
tree_compare "$REF" "$MNT/.snapshots/night1"

# Change the live tree: edits, a deletion, attributes, a new file; the snapshot stays as it was.
echo "changed" >>"$SRC/files/small.txt"
rm -rf "$SRC/hl/b"
chmod 600 "$SRC/files/4k.bin"
setfattr -n user.comment -v changed "$SRC/xattr/f"
head -c 500000 /dev/urandom >"$SRC/data/new.bin"
"$PY" -c 'import sys; open(sys.argv[1], "r+b").write(b"X" * 70000)' "$SRC/files/random_3m.bin"
run_to 120 rsync -aHAX --numeric-ids --delete "$SRC/" "$MNT/current/"
checksum_equal "$REF" "$MNT/.snapshots/night1"
checksum_equal "$SRC" "$MNT/current"

# Read-only inside a snapshot, for root, whatever the call.
"$PY" - "$MNT" <<'EOF' || fail "a change inside a snapshot was not refused with EROFS"
import errno, os, sys
mnt = sys.argv[1]
s = mnt + "/.snapshots/night1"
f = s + "/files/small.txt"
calls = {
    "open O_WRONLY": lambda: os.open(f, os.O_WRONLY),
    "open O_RDWR": lambda: os.open(f, os.O_RDWR),
    "open O_TRUNC": lambda: os.open(f, os.O_RDONLY | os.O_TRUNC),
    "create": lambda: os.open(s + "/files/new", os.O_WRONLY | os.O_CREAT, 0o644),
    "truncate": lambda: os.truncate(f, 0),
    "chmod": lambda: os.chmod(f, 0o777),
    "chown": lambda: os.chown(f, 1, 1),
    "lchown": lambda: os.lchown(s + "/sym/rel", 1, 1),
    "utime": lambda: os.utime(f, (1, 1)),
    "setxattr": lambda: os.setxattr(f, "user.x", b"y"),
    "removexattr": lambda: os.removexattr(s + "/xattr/f", "user.comment"),
    "unlink": lambda: os.unlink(f),
    "rmdir": lambda: os.rmdir(s + "/hl/b/c"),
    "mkdir": lambda: os.mkdir(s + "/newdir"),
    "symlink": lambda: os.symlink("x", s + "/newlink"),
    "link into": lambda: os.link(mnt + "/current/files/small.txt", s + "/files/l"),
    "link out": lambda: os.link(f, mnt + "/current/stolen"),
    "rename inside": lambda: os.rename(f, s + "/files/renamed"),
    "rename out": lambda: os.rename(f, mnt + "/current/renamed"),
    "rename in": lambda: os.rename(mnt + "/current/files/empty", s + "/files/x"),
    "mknod": lambda: os.mkfifo(s + "/fifo2"),
    "rename snapshot": lambda: os.rename(s, mnt + "/.snapshots/other"),
    "rmdir snapshot": lambda: os.rmdir(s),
    "rename folder": lambda: os.rename(mnt + "/.snapshots", mnt + "/snaps"),
    "rmdir folder": lambda: os.rmdir(mnt + "/.snapshots"),
    "mkdir in folder": lambda: os.mkdir(mnt + "/.snapshots/fake"),
}
bad = []
for name, call in calls.items():
    try:
        r = call()
        if isinstance(r, int): os.close(r)
        bad.append(name + ": succeeded")
    except OSError as e:
        if e.errno != errno.EROFS: bad.append("%s: %s instead of EROFS" % (name, errno.errorcode.get(e.errno)))
for b in bad: print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
rm -rf "$MNT/.snapshots/night1" 2>/dev/null && fail "rm -rf of a snapshot succeeded"
checksum_equal "$REF" "$MNT/.snapshots/night1"

# The second snapshot, then what only each holds, then diff.
run_to 60 "$DZFS" snapshot "$MNT/current" night2 >/dev/null
snaps=$(run_to 60 "$DZFS" snapshots "$MNT" --json)
log "snapshots: $snaps"
read -r n1_only n2_only <<<"$("$PY" -c '
import json, sys
s = {x["name"]: x for x in json.loads(sys.argv[1])["snapshots"]}
assert set(s) == {"night1", "night2"}, s
assert s["night1"]["source"] == "/current", s
print(s["night1"]["exclusive_stored_bytes"], s["night2"]["exclusive_stored_bytes"])' "$snaps")"
[ "$n1_only" -gt 50000 ] || fail "night1 should hold the overwritten and deleted data alone: $n1_only bytes"
[ "$n2_only" -eq 0 ] || fail "night2 shares everything with the live tree, yet holds $n2_only bytes alone"
diff_out=$(run_to 60 "$DZFS" diff "$MNT/.snapshots/night1" "$MNT/.snapshots/night2")
log "diff night1 night2: $(wc -l <<<"$diff_out") lines"
for p in files/small.txt hl/b data/new.bin files/random_3m.bin files/4k.bin xattr/f; do
  grep -q "$p" <<<"$diff_out" || fail "dzfs diff does not list $p:
$diff_out"
done
grep -q "files/text_3m.txt" <<<"$diff_out" && fail "dzfs diff lists an unchanged file:
$diff_out"
[ -z "$(run_to 60 "$DZFS" diff "$MNT" night2 /current)" ] || fail "dzfs diff of night2 and the live tree is not empty"
run_to 60 "$DZFS" diff "$MNT/.snapshots/night1" "$MNT/.snapshots/night2" --json | "$PY" -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin if l.strip()]
assert lines, "no JSON lines"' || fail "dzfs diff --json is not JSON lines"

dz_remount "$STORE" "$MNT" -o workers=0
checksum_equal "$REF" "$MNT/.snapshots/night1"
checksum_equal "$SRC" "$MNT/.snapshots/night2"

# Delete night1: stored bytes fall by exactly what was announced.
before=$(dz_stat_key "$MNT" stored_bytes)
run_to 60 "$DZFS" snapshot --delete "$MNT/.snapshots/night1" >/dev/null
after=$(dz_stat_key "$MNT" stored_bytes)
[ $((before - after)) -eq "$n1_only" ] || fail "deleting night1 freed $((before - after)) stored bytes, dzfs snapshots announced $n1_only"
[ -e "$MNT/.snapshots/night1" ] && fail "night1 is still visible after its deletion"
checksum_equal "$SRC" "$MNT/.snapshots/night2"

# Prune keeps the newest; a dry run deletes nothing.
run_to 60 "$DZFS" snapshot "$MNT/current" night3 >/dev/null
out=$(run_to 60 "$DZFS" prune "$MNT" --keep-last 1 --dry-run)
log "$out"
[ "$(ls "$MNT/.snapshots" | wc -l)" -eq 2 ] || fail "prune --dry-run deleted something"
run_to 60 "$DZFS" prune "$MNT" --keep-last 1 --list >/dev/null
[ "$(ls "$MNT/.snapshots")" = night3 ] || fail "prune --keep-last 1 left: $(ls "$MNT/.snapshots")"

# Only root (or the mount's owner) may use the control socket.
if command -v setpriv >/dev/null; then
  rc=0
  setpriv --reuid 65534 --regid 65534 --clear-groups "$DZFS" snapshot "$MNT/current" nobody >/dev/null 2>&1 || rc=$?
  [ "$rc" -ne 0 ] || fail "an unprivileged user made a snapshot"
  [ -e "$MNT/.snapshots/nobody" ] && fail "an unprivileged user's snapshot exists"
fi
dz_umount "$MNT" "$STORE"

# Unmounted: list, snapshot the whole volume, delete; fsck clean throughout.
dz_fsck "$STORE"
run_to 60 "$DZFS" snapshots "$STORE" | grep -q night3 || fail "dzfs snapshots STORE does not list night3"
run_to 60 "$DZFS" snapshot "$STORE" offline >/dev/null
run_to 60 "$DZFS" snapshot --delete "$STORE" night3 >/dev/null
dz_fsck "$STORE"
dz_mount "$STORE" "$MNT" -o ro
checksum_equal "$SRC" "$MNT/.snapshots/offline/current"
[ -e "$MNT/.snapshots/offline/.snapshots" ] && fail "a snapshot of the root holds the snapshots folder"
dz_umount "$MNT" "$STORE"
log "ok"
