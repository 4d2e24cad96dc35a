#!/usr/bin/env bash
# Concurrency on one mount, with every background thread busy (settle_secs=0, workers=1:
# recompression at once; gc_secs=1: a gc pass every second; commit_secs=1):
#  1. two rsyncs into different subtrees at the same time; both trees read back identical.
#  2. after a remount, a third tree (random data, most of the first pack) is deleted, so that
#     background gc compacts that pack — moving the records of the two trees — while readers
#     (sha256 of those files with their cached pages dropped, compared with the source) loop for
#     $DZFS_IT_READ_SECS, the workers recompress the same chunks to neural, and a churn (copies
#     written and deleted) keeps gc deleting chunks: zero mismatches, zero read errors; the
#     first pack must be gone (compacted), and chunks recompressed and deleted, meanwhile.
#  3. stress-ng filesystem stressors for $DZFS_IT_STRESS_SECS in a directory on the mount, with
#     --verify; exit status 0. Not run: fiemap (FUSE has no FIEMAP), chattr/inode-flags/
#     file-ioctl (FS_IOC_* ioctls: dzfs implements no ioctl), verity (fs-verity), handle
#     (name_to_handle_at needs an exportable fs), lease (FUSE refuses leases), dnotify/fanotify/
#     inotify (kernel notifications, not dzfs), bind-mount/binderfs/procfs/io/ioprio/fsize/dup/
#     eventfd/access/chdir/open/fstat (system-wide or not about file data or names).
# Then a remount: both trees identical again, and fsck clean. A hang anywhere trips the
# watchdog (a deadlock fails the test).
. "$(dirname "$0")/lib.sh"
it_init concurrency 200

READ_SECS=${DZFS_IT_READ_SECS:-25}
STRESS_SECS=${DZFS_IT_STRESS_SECS:-20}
STORE=$IT_TMP/store MNT=$IT_TMP/mnt
OPTS=settle_secs=0,workers=1,gc_secs=1,commit_secs=1
"$PY" "$TREECHECK" gen "$IT_TMP/x" --seed 31 --text-files 4 --text-size 400K --rand-files 2 --rand-size 1M --small-files 150
"$PY" "$TREECHECK" gen "$IT_TMP/y" --seed 32 --text-files 4 --text-size 400K --rand-files 2 --rand-size 1M --small-files 150
dz_mkfs "$STORE"
dz_mount "$STORE" "$MNT" -o "$OPTS"

fix_dir_times() { (cd "$1" && find . -type d -print0 | xargs -0 -I{} touch -h -r "{}" "$2/{}"); }

log "1. two rsyncs at once into /x and /y"
rsync -aHAX "$IT_TMP/x/" "$MNT/x/" >"$IT_TMP/rx.log" 2>&1 &
px=$!
rsync -aHAX "$IT_TMP/y/" "$MNT/y/" >"$IT_TMP/ry.log" 2>&1 &
py=$!
rcx=0 rcy=0
wait "$px" || rcx=$?
wait "$py" || rcy=$?
[ "$rcx" -eq 0 ] || fail "rsync into /x failed (exit $rcx): $(tail -c 2000 "$IT_TMP/rx.log")"
[ "$rcy" -eq 0 ] || fail "rsync into /y failed (exit $rcy): $(tail -c 2000 "$IT_TMP/ry.log")"
fix_dir_times "$IT_TMP/x" "$MNT/x"
fix_dir_times "$IT_TMP/y" "$MNT/y"
tree_compare "$IT_TMP/x" "$MNT/x"
tree_compare "$IT_TMP/y" "$MNT/y"
"$PY" "$TREECHECK" gen "$IT_TMP/z" --seed 33 --text-files 0 --rand-files 6 --rand-size 2M --small-files 0
run_to 120 rsync -aHAX "$IT_TMP/z/" "$MNT/z/"
dz_remount "$STORE" "$MNT" -o "$OPTS"
[ -e "$STORE/packs/00000001.pack" ] || fail "test setup: no first pack"
rm -rf "${MNT:?}/z"

log "2. readers for ${READ_SECS}s while recompression, background gc and a churn run"
neural_before=$(dz_stats "$MNT" | "$PY" -c 'import json,sys; c = json.load(sys.stdin)["chunks_by_codec"]; print(c.get("neural", 0) + c.get("group", 0))')
cat >"$IT_TMP/readers.py" <<'EOF'
import hashlib, os, shutil, sys, threading, time
mnt, tmp, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
def sha(p, drop=False):
    h = hashlib.sha256()
    with open(p, "rb", buffering=0) as f:
        # Drop the file's cached pages first, so that the read goes to the daemon.
        if drop: os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        while True:
            b = f.read(1 << 20)
            if not b: return h.hexdigest()
            h.update(b)
files = []
for sub in ("x", "y"):
    for root, _, names in os.walk(os.path.join(tmp, sub)):
        for n in names:
            src = os.path.join(root, n)
            if os.path.islink(src): continue
            files.append((os.path.join(mnt, os.path.relpath(src, tmp)), sha(src)))
errors, reads, churns = [], [0, 0], [0]
end = time.monotonic() + secs
def reader(k):
    i = k
    while time.monotonic() < end and len(errors) < 20:
        p, want = files[i % len(files)]
        i += 7
        try:
            got = sha(p, True)
            reads[k] += 1
            if got != want: errors.append("%s: sha256 %s, expected %s" % (p, got[:16], want[:16]))
        except OSError as e:
            errors.append("%s: %s" % (p, e))
def churn():
    # Garbage for gc: copies of the big files written, deleted, written again.
    big = [p for p, _ in files if os.path.getsize(p) > 300000]
    d = os.path.join(mnt, "churn")
    os.makedirs(d, exist_ok=True)
    i = 0
    while time.monotonic() < end and len(errors) < 20:
        src = big[i % len(big)]
        dst = os.path.join(d, "c%d" % (i % 3))
        try:
            data = open(src, "rb").read()
            # a changed copy: new chunks, which become garbage at the next round
            with open(dst, "wb") as f: f.write(data[:1000] + b"churn %d" % i + data[1000:])
            if i % 2: os.unlink(dst)
            churns[0] += 1
        except OSError as e:
            errors.append("churn %s: %s" % (dst, e))
        i += 1
        time.sleep(2.0)   # the workers pause while the volume saw writes in the last second
ts = [threading.Thread(target=reader, args=(0,)), threading.Thread(target=reader, args=(1,)), threading.Thread(target=churn)]
for t in ts: t.start()
for t in ts: t.join()
print("%d files, %d verified reads, %d churn writes, %d errors" % (len(files), sum(reads), churns[0], len(errors)))
if errors:
    print("\n".join(errors)); sys.exit(1)
if sum(reads) < len(files): sys.exit("too few reads: %d" % sum(reads))
EOF
# Chunk rows deleted so far (ids are never reused): only gc deletes chunk rows on a mount.
gc_deleted() { "$PY" -c 'import sqlite3,sys; c=sqlite3.connect("file:"+sys.argv[1]+"?mode=ro", uri=True); print(c.execute("SELECT COALESCE(MAX(id),0)-COUNT(*) FROM chunks").fetchone()[0])' "$STORE/index.db"; }
deleted_before=$(gc_deleted)
rc=0
out=$(run_to $((READ_SECS + 60)) "$PY" "$IT_TMP/readers.py" "$MNT" "$IT_TMP" "$READ_SECS" 2>&1) || rc=$?
[ "$rc" -eq 0 ] || fail "readers saw wrong data or errors while recompression and gc ran:
$out"
log "readers: $out"
echo "$out" | sed -n 's/.* \([0-9]*\) verified reads.*/\1/p' >"$IT_TMP/reads"
# Make the last commits visible to stats, then require that both background jobs did work.
sleep 2
stats=$(dz_stats "$MNT")
neural_after=$("$PY" -c 'import json,sys; print(sum(json.loads(sys.argv[1])["chunks_by_codec"].get(k, 0) for k in ("neural", "group")))' "$stats")
log "neural chunks: $neural_before before the readers, $neural_after after"
[ "$neural_after" -gt "$neural_before" ] || fail "no chunk was recompressed while the readers ran (neural $neural_before -> $neural_after): the test did not race recompression"
[ -e "$STORE/packs/00000001.pack" ] && fail "background gc did not compact the first pack while the readers ran"
deleted_after=$(gc_deleted)
log "chunk rows deleted by background gc: $deleted_before before the readers, $deleted_after after"
[ "$deleted_after" -gt "$deleted_before" ] || fail "background gc deleted no chunk while the readers ran: the test did not race gc"

log "3. stress-ng filesystem stressors for ${STRESS_SECS}s"
if command -v stress-ng >/dev/null 2>&1; then
  mkdir -p "$MNT/stress"
  stressors=(hdd dentry dir dirdeep dirmany link symlink rename chmod chown utime touch xattr fallocate fpunch copy-file filename mknod flock lockf getdent iomix seek readahead sync-file)
  args=()
  for s in "${stressors[@]}"; do args+=("--$s" 1); done
  rc=0
  run_to $((STRESS_SECS + 120)) stress-ng "${args[@]}" -t "${STRESS_SECS}s" --verify --temp-path "$MNT/stress" \
    --metrics-brief >"$IT_TMP/stress.log" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || fail "stress-ng exited $rc: $(grep -i 'fail\|error' "$IT_TMP/stress.log" | head -20; tail -n 20 "$IT_TMP/stress.log")"
  grep -q 'successful run completed' "$IT_TMP/stress.log" || fail "stress-ng did not report a successful run: $(tail -n 20 "$IT_TMP/stress.log")"
  log "stress-ng: ${#stressors[@]} stressors: $(grep 'successful run completed' "$IT_TMP/stress.log" | cut -c1-120)"
  rm -rf "${MNT:?}/stress"
else
  log "stress-ng is not installed: part 3 not run"
fi
rm -rf "${MNT:?}/churn"

dz_umount "$MNT" "$STORE"
dz_fsck "$STORE"
dz_mount "$STORE" "$MNT" -o workers=0,gc_secs=0
tree_compare "$IT_TMP/x" "$MNT/x"
tree_compare "$IT_TMP/y" "$MNT/y"
extra=$(ls -A "$MNT" | grep -vx 'x\|y' || true)
[ -z "$extra" ] || fail "unexpected entries left at the root after the stressors: $extra"
dz_umount "$MNT" "$STORE"
log "FIGURE concurrency: $(cat "$IT_TMP/reads") verified reads, 0 mismatches"
