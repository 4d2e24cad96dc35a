#!/usr/bin/env bash
# A full backing disk: the store lives on a 64 MiB tmpfs. Random (incompressible) 4 MiB files are
# written and fsynced one by one until something fails; the failure must be ENOSPC (at write,
# fsync or close). Then dzfs umount, remount: every file whose fsync succeeded reads back intact
# and nothing reads with an error. Delete everything, umount, gc: the tmpfs has its space back,
# and writing (and reading back after a remount) works again. Then the disk is filled once more
# without fsync: write or close must fail with ENOSPC, and every file closed without error must be
# intact after a remount.
. "$(dirname "$0")/lib.sh"
it_init enospc 150

DISK=$IT_TMP/disk STORE=$IT_TMP/disk/store MNT=$IT_TMP/mnt
mkdir -p "$DISK"
echo "$DISK" >>"$IT_TMP/.othermounts"
mount -t tmpfs -o size=64m tmpfs "$DISK" || skip "cannot mount a tmpfs"
dz_mkfs "$STORE"
dz_mount "$STORE" "$MNT"

log "filling the 64 MiB store with 4 MiB random files"
rc=0
run_to 90 "$PY" - "$MNT" "$IT_TMP/written.txt" <<'EOF' || rc=$?
import errno, hashlib, os, random, sys
mnt, record = sys.argv[1], sys.argv[2]
rng = random.Random(64)
ok = []
stage = None
total = 0
i = 0
err = None
while total < 256 << 20:
    name = "f%03d" % i
    data = rng.randbytes(4 << 20)
    fd = None
    try:
        stage = "open"
        fd = os.open(os.path.join(mnt, name), os.O_CREAT | os.O_WRONLY, 0o644)
        stage = "write"
        off = 0
        while off < len(data):
            off += os.write(fd, data[off:off + (1 << 20)])
        stage = "fsync"
        os.fsync(fd)
        stage = "close"
        fd, f = None, fd
        os.close(f)
    except OSError as e:
        err = e
        if fd is not None:
            try:
                os.close(fd)
            except OSError as e2:
                print("note: close after the %s error also failed: %s" % (stage, e2))
        break
    ok.append((name, hashlib.sha256(data).hexdigest()))
    total += len(data)
    i += 1
with open(record, "w") as f:
    for n, h in ok:
        f.write("%s %s\n" % (n, h))
print("%d files (%d MiB) written and fsynced before the failure" % (len(ok), total >> 20))
if err is None:
    sys.exit("FAIL: wrote %d MiB of random data to a store on a 64 MiB tmpfs without any error" % (total >> 20))
print("failure at %s of %s: %s" % (stage, name, err))
if err.errno != errno.ENOSPC:
    sys.exit("FAIL: the full disk gave %s at %s, expected ENOSPC" % (errno.errorcode.get(err.errno, err.errno), stage))
if len(ok) < 8:
    sys.exit("FAIL: ENOSPC after only %d MiB on a 64 MiB disk" % (total >> 20))
EOF
[ "$rc" -eq 0 ] || fail "filling the disk did not end in ENOSPC as required (see above)"
df -k "$DISK" | tail -n 1 | awk '{ print "tmpfs: used " $3 " KiB, free " $4 " KiB" }' >&2

# More metadata operations on the full disk must not wedge the daemon (errors are fine).
timeout 20 mkdir "$MNT/dir_on_full_disk" 2>/dev/null || true
timeout 20 sh -c "echo x > '$MNT/small_on_full_disk'" 2>/dev/null || true
timeout 20 ls "$MNT" >/dev/null || fail "ls of the mount on a full disk failed or hung"

log "umount on the full disk, fsck, remount"
dz_umount "$MNT" "$STORE"
dz_fsck "$STORE"
dz_mount "$STORE" "$MNT"
rc=0
out=$(run_to 60 "$PY" - "$MNT" "$IT_TMP/written.txt" <<'EOF'
import errno, hashlib, os, sys
mnt, record = sys.argv[1], sys.argv[2]
want = dict(l.split() for l in open(record))
bad = []
for n, h in sorted(want.items()):
    try:
        got = hashlib.sha256(open(os.path.join(mnt, n), "rb").read()).hexdigest()
        if got != h:
            bad.append("%s: fsynced before the disk filled, now reads different data" % n)
    except OSError as e:
        bad.append("%s: fsynced before the disk filled, now: %s" % (n, e))
for n in sorted(os.listdir(mnt)):
    if n in want:
        continue
    p = os.path.join(mnt, n)
    try:
        if os.path.isfile(p):
            sz = len(open(p, "rb").read())
            print("note: %s (not fsynced) has %d bytes after remount" % (n, sz))
    except OSError as e:
        bad.append("%s (the file being written when the disk filled) fails to read after remount: %s" % (n, e))
print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF
) || rc=$?
[ "$rc" -eq 0 ] || fail "after remount of the volume that filled its disk:
$out"
[ -z "$out" ] || log "$out"
log "fsynced files intact after remount"

log "delete everything, gc"
rm -rf "$MNT"/* || fail "rm -rf on the remounted volume failed"
dz_umount "$MNT" "$STORE"
rc=0
out=$(timeout -k 5 60 "$DZFS" gc "$STORE" 2>&1) || rc=$?
[ "$rc" -eq 0 ] || fail "dzfs gc after deleting everything on the (full) disk: exit $rc: $out"
log "gc: $out"
free_kb=$(df -k --output=avail "$DISK" | tail -n 1 | tr -d ' ')
log "tmpfs free after gc: $free_kb KiB"
[ "$free_kb" -gt $((48 * 1024)) ] || fail "after deleting everything and gc, only $free_kb KiB of the 64 MiB tmpfs are free (expected > 48 MiB): $(ls -la "$STORE" "$STORE/packs")"

dz_mount "$STORE" "$MNT"
head -c $((16 << 20)) /dev/urandom >"$IT_TMP/again"
run_to 30 cp "$IT_TMP/again" "$MNT/again" || fail "writing 16 MiB after gc failed"
run_to 30 "$PY" -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.close(fd)' "$MNT/again"
dz_remount "$STORE" "$MNT"
cmp "$IT_TMP/again" "$MNT/again" || fail "the 16 MiB file written after gc does not read back after remount"
dz_umount "$MNT" "$STORE"
dz_fsck "$STORE"

# ---- the same without fsync: the error must surface at write or close, and every file whose
# close succeeded must be intact after a remount (no silent loss in a later flush).
log "filling again without fsync"
dz_mount "$STORE" "$MNT"
rc=0
run_to 90 "$PY" - "$MNT" "$IT_TMP/closed.txt" <<'EOF' || rc=$?
import errno, hashlib, os, random, sys
mnt, record = sys.argv[1], sys.argv[2]
rng = random.Random(65)
ok, err, stage = [], None, None
for i in range(64):
    name = "g%03d" % i
    data = rng.randbytes(4 << 20)
    fd = None
    try:
        stage = "open"
        fd = os.open(os.path.join(mnt, name), os.O_CREAT | os.O_WRONLY, 0o644)
        stage = "write"
        off = 0
        while off < len(data):
            off += os.write(fd, data[off:off + (1 << 20)])
        stage = "close"
        fd, f = None, fd
        os.close(f)
    except OSError as e:
        err = e
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
        break
    ok.append((name, hashlib.sha256(data).hexdigest()))
open(record, "w").write("".join("%s %s\n" % x for x in ok))
print("%d files closed without error; then %s at %s" % (len(ok), err, stage))
if err is None:
    sys.exit("FAIL: 256 MiB written without fsync to a store on a 64 MiB tmpfs, and no write or close failed")
if err.errno != errno.ENOSPC:
    sys.exit("FAIL: the full disk gave %s at %s (no fsync), expected ENOSPC" % (errno.errorcode.get(err.errno, err.errno), stage))
EOF
[ "$rc" -eq 0 ] || fail "filling the disk without fsync did not end in ENOSPC at write or close (see above)"
dz_umount "$MNT" "$STORE"
dz_mount "$STORE" "$MNT"
rc=0
out=$(run_to 60 "$PY" - "$MNT" "$IT_TMP/closed.txt" <<'EOF'
import hashlib, os, sys
bad = []
for line in open(sys.argv[2]):
    n, h = line.split()
    try:
        if hashlib.sha256(open(os.path.join(sys.argv[1], n), "rb").read()).hexdigest() != h:
            bad.append("%s: closed without error before the disk filled, reads different data after remount" % n)
    except OSError as e:
        bad.append("%s: closed without error before the disk filled, after remount: %s" % (n, e))
print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF
) || rc=$?
[ "$rc" -eq 0 ] || fail "after the fill without fsync and a remount:
$out"
dz_umount "$MNT" "$STORE"
dz_fsck "$STORE"
