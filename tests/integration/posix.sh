#!/usr/bin/env bash
# POSIX semantics of a dzfs mount, checked by posix_checks.py before and after a remount:
# unlink of an open file, rename over files and dirs (ENOTEMPTY, EISDIR, ...), link counts,
# O_APPEND/O_EXCL/O_TRUNC, truncate up/down (holes read as zeros), a 5 GiB sparse file,
# mmap write, fsync, utimens with nanoseconds, xattr ENODATA/ERANGE/EEXIST, statfs, chmod/chown,
# setgid directories, FIFO and device nodes, an fsx-style random I/O model, threads writing one
# file and one directory concurrently, and readdir of a large directory (create, list, unlink
# while listing). fsck of the store at the end.
# Then a read-only mount (-o ro) refuses writes with EROFS, and another user (setpriv uid 1234)
# on an allow_other mount meets the usual permission checks.
# DZFS_IT_READDIR_N sets the size of the large directory: default 20000 to keep the suite short
# (100000 took 43-83 s to create, as much again to unlink, on the shared 2-core machine).
. "$(dirname "$0")/lib.sh"
it_init posix 240

STORE=$IT_TMP/store MNT=$IT_TMP/mnt STATE=$IT_TMP/posix_state.json
N=${DZFS_IT_READDIR_N:-20000}
dz_mkfs "$STORE"
dz_mount "$STORE" "$MNT"

bad=""
log "phase 1 (readdir of $N entries)"
rc=0
run_to 180 "$PY" "$IT_DIR/posix_checks.py" phase1 "$MNT" "$STATE" --backing "$STORE" --readdir-n "$N" || rc=$?
[ "$rc" -eq 0 ] || bad="phase 1"
[ -s "$STATE" ] || fail "phase 1 wrote no state file"

log "umount + remount"
dz_remount "$STORE" "$MNT"
log "phase 2 (after remount)"
rc=0
run_to 60 "$PY" "$IT_DIR/posix_checks.py" phase2 "$MNT" "$STATE" || rc=$?
[ "$rc" -eq 0 ] || bad="${bad:+$bad, }phase 2"

log "read-only mount"
dz_umount "$MNT" "$STORE"
dz_mount "$STORE" "$MNT" -o ro
rc=0
out=$(timeout 20 "$PY" - "$MNT" <<'EOF'
import errno, os, sys
m = sys.argv[1]
problems = []
def want_erofs(what, fn):
    try:
        fn()
        problems.append("%s succeeded on a read-only mount" % what)
    except OSError as e:
        if e.errno != errno.EROFS:
            problems.append("%s: expected EROFS, got %s" % (what, errno.errorcode.get(e.errno)))
want_erofs("create", lambda: os.open(os.path.join(m, "p", "new"), os.O_CREAT | os.O_WRONLY, 0o644))
want_erofs("open O_WRONLY", lambda: os.open(os.path.join(m, "p", "append"), os.O_WRONLY))
want_erofs("mkdir", lambda: os.mkdir(os.path.join(m, "p", "newdir")))
want_erofs("unlink", lambda: os.unlink(os.path.join(m, "p", "append")))
want_erofs("chmod", lambda: os.chmod(os.path.join(m, "p", "append"), 0o600))
want_erofs("setxattr", lambda: os.setxattr(os.path.join(m, "p", "append"), "user.x", b"1"))
if open(os.path.join(m, "p", "append"), "rb").read() != b"abxyxyxy":
    problems.append("reading p/append on the read-only mount gave wrong data")
print("\n".join(problems))
sys.exit(1 if problems else 0)
EOF
) || rc=$?
[ "$rc" -eq 0 ] || bad="${bad:+$bad, }read-only mount: $out"
dz_umount "$MNT" "$STORE"

# Permissions for another user (allow_other): a 0600 root file is unreadable, a 0777 dir takes new
# files owned by that user, a 0755 root dir refuses them, a sticky dir protects root's file.
# (The user may not reach root's python3, e.g. a pyenv shim under /root: use the system one.)
SYSPY=$(command -v /usr/bin/python3 || true)
if command -v setpriv >/dev/null 2>&1 && [ -n "$SYSPY" ]; then
  log "permissions of uid 1234 on an allow_other mount"
  dz_mount "$STORE" "$MNT" -o allow_other
  chmod 755 "$IT_TMP" "$MNT" "$MNT/p"   # mktemp -d made $IT_TMP 0700: let uid 1234 reach the mount
  echo secret >"$MNT/p/secret" && chmod 600 "$MNT/p/secret"
  mkdir -m 777 "$MNT/p/open" && mkdir -m 1777 "$MNT/p/sticky" && echo r >"$MNT/p/sticky/rootfile"
  rc=0
  out=$(timeout 20 setpriv --reuid=1234 --regid=1234 --clear-groups "$SYSPY" - "$MNT/p" <<'EOF'
import errno, os, sys
p = sys.argv[1]
problems = []
def want(err, what, fn):
    try:
        fn()
        problems.append("uid 1234: %s succeeded, expected %s" % (what, errno.errorcode[err]))
    except OSError as e:
        if e.errno != err:
            problems.append("uid 1234: %s: expected %s, got %s" % (what, errno.errorcode[err], errno.errorcode.get(e.errno)))
want(errno.EACCES, "reading a root 0600 file", lambda: open(os.path.join(p, "secret")).read())
want(errno.EACCES, "creating a file in a root 0755 dir", lambda: open(os.path.join(p, "mine"), "w"))
want(errno.EPERM, "unlinking root's file in a sticky 1777 dir", lambda: os.unlink(os.path.join(p, "sticky", "rootfile")))
open(os.path.join(p, "open", "x"), "w").close()
want(errno.EPERM, "chown of its own file to root", lambda: os.chown(os.path.join(p, "open", "x"), 0, 0))
with open(os.path.join(p, "open", "mine"), "w") as f:
    f.write("mine\n")
st = os.stat(os.path.join(p, "open", "mine"))
if (st.st_uid, st.st_gid) != (1234, 1234):
    problems.append("uid 1234 created open/mine, owned by %d:%d (expected 1234:1234)" % (st.st_uid, st.st_gid))
print("\n".join(problems))
sys.exit(1 if problems else 0)
EOF
) || rc=$?
  [ "$rc" -eq 0 ] || bad="${bad:+$bad, }permissions: $out"
  dz_umount "$MNT" "$STORE"
fi
dz_fsck "$STORE"

[ -z "$bad" ] || fail "failed checks in: $bad (see the FAIL lines above)"
