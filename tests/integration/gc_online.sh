#!/usr/bin/env bash
# Background gc (-o gc_secs=1) racing with dedup: two threads create, overwrite, delete and read
# files whose contents come from a small pool of blobs, so that new writes keep deduplicating
# against chunks that deletions just made garbage, the case a gc can get wrong (deleting a chunk
# a new file has just started to reference). Every read must return the expected blob, during the
# churn and after a remount; fsck must find the store clean. Lasts about 20 s of churn.
. "$(dirname "$0")/lib.sh"
it_init gc_online 120

STORE=$IT_TMP/store MNT=$IT_TMP/mnt
CHURN_SECS=${DZFS_IT_GC_CHURN_SECS:-20}
dz_mkfs "$STORE"
dz_mount "$STORE" "$MNT" -o "${DZFS_IT_GC_OPTS:-gc_secs=1,commit_secs=1}"

rc=0
run_to $((CHURN_SECS + 60)) "$PY" - "$MNT" "$IT_TMP/expect.json" "$CHURN_SECS" <<'EOF' || rc=$?
import errno, hashlib, json, os, random, sys, threading, time
mnt, record, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
# Equal sizes: an overwrite (O_TRUNC + write) replaces every byte, so this test does not depend on
# O_TRUNC being committed (posix.sh checks that); it is about gc.
pool = [random.Random(1000 + k).randbytes(200000) for k in range(6)]
digest = [hashlib.sha256(b).hexdigest() for b in pool]
expect = {}          # name -> blob index (None while deleted)
errors = []
counts = {"write": 0, "overwrite": 0, "delete": 0, "read": 0}
lock = threading.Lock()

def read(path):
    with open(path, "rb", buffering=0) as f:
        out = bytearray()
        while True:
            b = f.read(1 << 20)
            if not b:
                return bytes(out)
            out += b

def worker(tid):
    rng = random.Random(tid)
    names = ["t%d_f%02d" % (tid, i) for i in range(15)]
    mine = {}
    end = time.monotonic() + secs
    while time.monotonic() < end and not errors:
        n = rng.choice(names)
        p = os.path.join(mnt, n)
        op = rng.random()
        try:
            if n not in mine or op < 0.25:
                k = rng.randrange(len(pool))
                with open(p, "wb") as f:
                    f.write(pool[k])
                counts["overwrite" if n in mine else "write"] += 1
                mine[n] = k
            elif op < 0.45:
                os.unlink(p)
                del mine[n]
                counts["delete"] += 1
            else:
                got = read(p)
                counts["read"] += 1
                if got != pool[mine[n]]:
                    errors.append("%s: read %d bytes (sha256 %s), expected blob %d (%d bytes)" % (
                        n, len(got), hashlib.sha256(got).hexdigest()[:16], mine[n], len(pool[mine[n]])))
        except OSError as e:
            errors.append("%s: %s during the churn" % (n, e))
        if rng.random() < 0.05:
            time.sleep(0.2)     # let a gc pass run between operations now and then
    with lock:
        expect.update(mine)

ts = [threading.Thread(target=worker, args=(t,)) for t in (1, 2)]
for t in ts: t.start()
for t in ts: t.join()
print("churn: %s" % counts)
for n, k in sorted(expect.items()):
    try:
        if read(os.path.join(mnt, n)) != pool[k]:
            errors.append("%s: wrong data after the churn" % n)
    except OSError as e:
        errors.append("%s: %s after the churn" % (n, e))
json.dump({n: [digest[k], k, len(pool[k])] for n, k in expect.items()}, open(record, "w"))
if errors:
    print("\n".join(errors[:20]))
    sys.exit(1)
EOF
[ "$rc" -eq 0 ] || fail "reads went wrong while background gc ran (see above)"
log "pack_bytes while mounted after the churn: $(dz_stat_key "$MNT" pack_bytes)"

dz_remount "$STORE" "$MNT"
rc=0
out=$(run_to 60 "$PY" - "$MNT" "$IT_TMP/expect.json" <<'EOF'
import hashlib, json, os, sys
mnt, want = sys.argv[1], json.load(open(sys.argv[2]))
bad = []
for n, (h, k, size) in sorted(want.items()):
    try:
        got = open(os.path.join(mnt, n), "rb").read()
        if hashlib.sha256(got).hexdigest() != h:
            bad.append("%s: wrong data after remount: %d bytes (sha256 %s), expected blob %d of %d bytes" % (n, len(got), hashlib.sha256(got).hexdigest()[:16], k, size))
    except OSError as e:
        bad.append("%s: %s after remount" % (n, e))
extra = sorted(set(os.listdir(mnt)) - set(want))
if extra:
    bad.append("deleted files are back after remount: %s" % extra[:10])
print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF
) || rc=$?
[ "$rc" -eq 0 ] || fail "after the churn with background gc and a remount:
$out"
log "$(ls "$MNT" | wc -l) files intact after remount"
dz_umount "$MNT" "$STORE"
dz_fsck "$STORE"
