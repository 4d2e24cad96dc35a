#!/usr/bin/env python3
"""Differential POSIX test (stdlib only): the same operations on a reference filesystem (ext4 on
the same machine) and in a dzfs mount, compared result by result.

  posix_diff.py REF DZ [--only CASE,...] [--list] [-v]

Each case runs twice, in REF/<case> and in DZ/<case>, as root (and, where it says so, partly as
uid 1234/1235 in a forked child: permission checks, sticky directories, privilege bits). A case
records observations: the outcome of each call (ok, a value, or the errno name), the stat fields
POSIX fixes (type, permission bits, link count, size of non-directories, owner, group), which of
atime/mtime/ctime an operation changed, sorted directory listings with types, xattrs. Anything
that differs between the two runs is a divergence; the exit status is 1 if any divergence is not
one of the deliberate differences listed in DELIBERATE below (those are printed, not failed).
Not compared, because POSIX leaves them to the filesystem: inode numbers, st_blocks, st_blksize,
a directory's st_size, readdir order, statfs sizes, the limit on the number of links (ext4 65000).
"""
import ctypes
import errno
import json
import os
import stat
import sys
import time
import traceback

libc = ctypes.CDLL(None, use_errno=True)
for _fn in ("getxattr", "lgetxattr", "listxattr", "llistxattr"):
    getattr(libc, _fn).restype = ctypes.c_ssize_t
libc.readlink.restype = ctypes.c_ssize_t
AT_FDCWD, AT_SYMLINK_NOFOLLOW, AT_SYMLINK_FOLLOW = -100, 0x100, 0x400
XATTR_CREATE, XATTR_REPLACE = 1, 2
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
FALLOC_KEEP_SIZE, FALLOC_PUNCH_HOLE, FALLOC_COLLAPSE, FALLOC_ZERO, FALLOC_INSERT = 1, 2, 8, 16, 32
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
USER, USER2 = 1234, 1235

# Differences that are deliberate, as "case: label" -> why. A divergence on any other label fails.
DELIBERATE = {
    "lseek: SEEK_HOLE in a sparse file": "SEEK_DATA/SEEK_HOLE are not supported (README, Limits): "
    "the whole file reads as data",
    "lseek: SEEK_DATA from a hole": "same: no SEEK_DATA/SEEK_HOLE",
    "fallocate: PUNCH_HOLE": "only fallocate modes 0 and KEEP_SIZE; others are EOPNOTSUPP, which "
    "fallocate(2) lists for a filesystem that lacks the mode",
    "fallocate: data after PUNCH_HOLE": "follows from the above",
    "fallocate: ZERO_RANGE": "as PUNCH_HOLE",
    "fallocate: COLLAPSE_RANGE": "as PUNCH_HOLE",
    "fallocate: INSERT_RANGE": "as PUNCH_HOLE",
    "times_of_ops: times: read: f": "no atime update on read: a backup restore would otherwise write the index "
    "for every file read (a FUSE mount has no lazytime); explicit atimes (utimensat, rsync -U) are kept",
    "times_of_ops: times: readdir: d": "as read: no atime update on readdir",
    "rename_whiteout: RENAME_WHITEOUT": "whiteouts are for overlayfs upper layers; dzfs refuses the flag (EINVAL)",
    "rename_whiteout: whiteout left behind": "follows from the above",
    "mknod: open a device node": "dzfs mounts nodev,nosuid, libfuse's defaults for FUSE mounts "
    "(a backup should not grant device access or privileges; mount.fuse3 as root, or -o dev,suid, lifts them)",
    "symlink: symlink target of 4095 bytes": "dzfs takes targets up to 4095 bytes (PATH_MAX - 1, the most the "
    "kernel passes); ext4's limit depends on its block size (4094 with 4 KiB blocks), XFS's is 1024",
    "symlink: 4095-byte target": "follows from the above",
    "symlink: its length read back": "follows from the above",
    "symlink: listing": "follows from the above (the 4095-byte symlink exists)",
    "privilege_bits: setgid without group exec after a write": "the FUSE kernel module clears setgid on "
    "a write by a non-member only when group exec is set (the rule before Linux 6.2); ext4 follows the VFS's "
    "newer rule. dzfs does not see the writer's groups to apply it (that would need HANDLE_KILLPRIV_V2)",
    "truncate: truncate to the same size changes": "POSIX marks mtime/ctime for update only when the size "
    "changes; ext4 updates them anyway, the FUSE kernel module (whose writeback cache owns a file's "
    "mtime/ctime) does not",
    "open_tmpfile: O_TMPFILE": "no FUSE tmpfile operation in the libfuse dzfs builds against: EOPNOTSUPP, "
    "which open(2) lists for a filesystem without O_TMPFILE",
    "open_tmpfile: linked tmpfile": "follows from the above",
}

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def errname(e):
    return errno.errorcode.get(e, str(e))


def cerr(rc):
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return rc


# ---- libc calls Python's os module does not expose (or not with every argument) ----------
def c_getxattr(path, name, size, follow=True):
    buf = ctypes.create_string_buffer(max(size, 1))
    f = libc.getxattr if follow else libc.lgetxattr
    n = cerr(f(os.fsencode(path), name.encode(), buf if size else None, ctypes.c_size_t(size)))
    return buf.raw[:n] if size else n


def c_listxattr(path, size, follow=True):
    buf = ctypes.create_string_buffer(max(size, 1))
    f = libc.listxattr if follow else libc.llistxattr
    n = cerr(f(os.fsencode(path), buf if size else None, ctypes.c_size_t(size)))
    return sorted(x.decode() for x in buf.raw[:n].split(b"\0") if x) if size else n


def c_setxattr(path, name, value, flags=0, follow=True):
    f = libc.setxattr if follow else libc.lsetxattr
    return cerr(f(os.fsencode(path), name.encode(), value, ctypes.c_size_t(len(value)), flags))


def renameat2(a, b, flags):
    return cerr(libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), ctypes.c_uint(flags)))


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def utimensat(path, atime, mtime, flags=0):
    """atime/mtime: (sec, nsec) or UTIME_NOW / UTIME_OMIT; both None means NULL (now)."""
    if atime is None and mtime is None:
        return cerr(libc.utimensat(AT_FDCWD, os.fsencode(path), None, flags))
    ts = (Timespec * 2)()
    for i, t in enumerate((atime, mtime)):
        ts[i] = Timespec(0, t) if isinstance(t, int) else Timespec(*t)
    return cerr(libc.utimensat(AT_FDCWD, os.fsencode(path), ts, flags))


def c_readlink(path, size):
    buf = ctypes.create_string_buffer(size)
    return buf.raw[:cerr(libc.readlink(os.fsencode(path), buf, ctypes.c_size_t(size)))]


def c_fallocate(fd, mode, off, length):
    return cerr(libc.fallocate(fd, mode, ctypes.c_long(off), ctypes.c_long(length)))


def c_copy_file_range(fdin, offin, fdout, offout, n, flags):
    a, b = ctypes.c_long(offin), ctypes.c_long(offout)
    libc.copy_file_range.restype = ctypes.c_ssize_t
    return cerr(libc.copy_file_range(fdin, ctypes.byref(a), fdout, ctypes.byref(b), ctypes.c_size_t(n),
                                     ctypes.c_uint(flags)))


def c_fchmodat(path, mode, flags):
    return cerr(libc.fchmodat(AT_FDCWD, os.fsencode(path), mode, flags))


def pattern(n, seed=1):
    """n deterministic, incompressible-looking bytes."""
    out, x = bytearray(), seed
    while len(out) < n:
        x = (x * 6364136223846793005 + 1442695040888963407) & ((1 << 64) - 1)
        out += x.to_bytes(8, "little")
    return bytes(out[:n])


# ---- one run of a case in one tree ------------------------------------------------------
class Run:
    def __init__(self, root):
        self.root = root
        self.obs = []  # [label, outcome]

    def p(self, *parts):
        return os.path.join(self.root, *parts)

    def rec(self, label, value):
        self.obs.append([label, value if isinstance(value, str) else repr(value)])

    def do(self, label, fn, *a, **kw):
        """fn(*a): records ok or the errno name; returns fn's result (None on error)."""
        try:
            r = fn(*a, **kw)
        except OSError as e:
            self.rec(label, errname(e.errno))
            return None
        self.rec(label, "ok")
        return r

    def val(self, label, fn, *a, **kw):
        """As do, but the result itself is recorded too."""
        try:
            r = fn(*a, **kw)
        except OSError as e:
            self.rec(label, errname(e.errno))
            return None
        self.rec(label, "ok %r" % (r,))
        return r

    def open(self, label, path, flags, mode=0o644, keep=False):
        fd = self.do(label, os.open, path, flags, mode)
        if fd is not None and not keep:
            os.close(fd)
        return fd

    def st(self, label, path, follow=True, fd=None):
        try:
            s = os.fstat(fd) if fd is not None else os.stat(path, follow_symlinks=follow)
        except OSError as e:
            return self.rec(label, errname(e.errno))
        self.rec(label, describe(s))

    def data(self, label, path):
        try:
            with open(path, "rb") as f:
                b = f.read()
        except OSError as e:
            return self.rec(label, errname(e.errno))
        self.rec(label, "%d bytes %s" % (len(b), b[:64] if len(b) <= 64 or len(set(b)) > 1 else b[:1] + b"*"))

    def ls(self, label, path):
        try:
            with os.scandir(path) as it:
                ents = sorted((e.name, kind(e)) for e in it)
        except OSError as e:
            return self.rec(label, errname(e.errno))
        self.rec(label, " ".join("%s:%s" % e for e in ents))

    def xattrs(self, label, path, follow=True):
        try:
            names = sorted(os.listxattr(path, follow_symlinks=follow))
            self.rec(label, ", ".join("%s=%r" % (n, os.getxattr(path, n, follow_symlinks=follow)[:40]) for n in names))
        except OSError as e:
            self.rec(label, errname(e.errno))

    def as_user(self, uid, fn, gid=None, groups=None):
        """fn(self) in a child process running as uid (gid uid, no other groups by default)."""
        gid = uid if gid is None else gid
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            code = 0
            try:
                os.setgroups(groups if groups is not None else [gid])
                os.setresgid(gid, gid, gid)
                os.setresuid(uid, uid, uid)
                self.obs = []
                fn(self)
                out = json.dumps(self.obs).encode()
            except BaseException:
                out = json.dumps([["harness error as uid %d" % uid, traceback.format_exc()]]).encode()
                code = 1
            with os.fdopen(w, "wb") as f:
                f.write(out)
            os._exit(code)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            got = json.loads(f.read().decode() or "[]")
        _, status = os.waitpid(pid, 0)
        self.obs += got
        if status != 0:
            raise RuntimeError("child as uid %d failed: %s" % (uid, got))


def kind(e):
    if e.is_symlink():
        return "l"
    if e.is_dir(follow_symlinks=False):
        return "d"
    if e.is_file(follow_symlinks=False):
        return "f"
    return "o"


def describe(s):
    t = stat.S_IFMT(s.st_mode)
    out = "type=%o perm=%04o nlink=%d uid=%d gid=%d" % (t >> 12, stat.S_IMODE(s.st_mode), s.st_nlink, s.st_uid, s.st_gid)
    if not stat.S_ISDIR(s.st_mode):
        out += " size=%d" % s.st_size
    if stat.S_ISCHR(s.st_mode) or stat.S_ISBLK(s.st_mode):
        out += " rdev=%d,%d" % (os.major(s.st_rdev), os.minor(s.st_rdev))
    return out


def times(path, follow=True):
    s = os.stat(path, follow_symlinks=follow)
    return (s.st_atime_ns, s.st_mtime_ns, s.st_ctime_ns)


def changed(before, after):
    return "".join(k for k, b, a in zip("amc", before, after) if a != b) or "-"


def wfile(path, data, mode=0o644):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def write_once(path, data):
    fd = os.open(path, os.O_WRONLY)
    try:
        return os.write(fd, data)
    finally:
        os.close(fd)


def rbytes(path):
    with open(path, "rb") as f:
        return f.read()


# =================================================================================== cases
@case
def open_create(c):
    f = c.p("f")
    c.open("O_CREAT|O_EXCL new", f, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640)
    c.st("new file", f)
    c.open("O_CREAT|O_EXCL existing", f, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    c.open("O_EXCL without O_CREAT", f, os.O_EXCL | os.O_RDONLY)
    os.symlink("target", c.p("dangling"))
    c.open("O_CREAT|O_EXCL on a dangling symlink", c.p("dangling"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    c.open("O_CREAT through a dangling symlink", c.p("dangling"), os.O_CREAT | os.O_WRONLY, 0o600)
    c.st("symlink's target created", c.p("target"))
    c.open("O_CREAT in a missing dir", c.p("missing", "x"), os.O_CREAT | os.O_WRONLY)
    c.open("O_CREAT under a file", c.p("f", "x"), os.O_CREAT | os.O_WRONLY)
    c.open("open missing", c.p("nope"), os.O_RDONLY)
    c.open("O_CREAT with a trailing slash", c.p("g/"), os.O_CREAT | os.O_WRONLY)
    c.open("mode 0777 under umask 022", c.p("m"), os.O_CREAT | os.O_WRONLY, 0o777)
    c.st("umask applied", c.p("m"))
    c.open("mode 07777", c.p("m2"), os.O_CREAT | os.O_WRONLY, 0o7777)
    c.st("special bits kept", c.p("m2"))
    os.mkdir(c.p("d"))
    c.open("O_CREAT on a dir", c.p("d"), os.O_CREAT | os.O_WRONLY)
    c.open("O_CREAT|O_RDONLY on a dir", c.p("d"), os.O_CREAT | os.O_RDONLY)
    c.ls("listing", c.root)


@case
def open_trunc(c):
    f = c.p("f")
    wfile(f, b"hello")
    c.open("O_WRONLY|O_TRUNC", f, os.O_WRONLY | os.O_TRUNC)
    c.st("after O_WRONLY|O_TRUNC", f)
    wfile(f, b"hello")
    c.open("O_RDONLY|O_TRUNC", f, os.O_RDONLY | os.O_TRUNC)
    c.st("after O_RDONLY|O_TRUNC", f)
    wfile(f, b"hello")
    c.open("O_RDWR|O_TRUNC|O_CREAT existing", f, os.O_RDWR | os.O_TRUNC | os.O_CREAT)
    c.st("after O_RDWR|O_TRUNC|O_CREAT", f)
    os.mkfifo(c.p("fifo"))
    c.open("O_TRUNC on a FIFO", c.p("fifo"), os.O_RDWR | os.O_TRUNC | os.O_NONBLOCK)
    os.mkdir(c.p("d"))
    c.open("O_TRUNC on a dir", c.p("d"), os.O_RDONLY | os.O_TRUNC)
    c.open("O_TRUNC on a dir, O_WRONLY", c.p("d"), os.O_WRONLY | os.O_TRUNC)


@case
def open_flags(c):
    f, d = c.p("f"), c.p("d")
    wfile(f, b"x")
    os.mkdir(d)
    os.symlink("f", c.p("lf"))
    os.symlink("d", c.p("ld"))
    os.symlink("loop2", c.p("loop1"))
    os.symlink("loop1", c.p("loop2"))
    c.open("O_DIRECTORY on a file", f, os.O_RDONLY | os.O_DIRECTORY)
    c.open("O_DIRECTORY on a dir", d, os.O_RDONLY | os.O_DIRECTORY)
    c.open("O_DIRECTORY on a symlink to a dir", c.p("ld"), os.O_RDONLY | os.O_DIRECTORY)
    c.open("O_DIRECTORY|O_CREAT new", c.p("new"), os.O_RDONLY | os.O_DIRECTORY | os.O_CREAT)
    c.open("O_NOFOLLOW on a symlink", c.p("lf"), os.O_RDONLY | os.O_NOFOLLOW)
    c.open("O_NOFOLLOW|O_PATH on a symlink", c.p("lf"), os.O_PATH | os.O_NOFOLLOW)
    c.open("O_NOFOLLOW on a file", f, os.O_RDONLY | os.O_NOFOLLOW)
    c.open("O_WRONLY on a dir", d, os.O_WRONLY)
    c.open("O_RDWR on a dir", d, os.O_RDWR)
    c.open("O_RDONLY on a dir", d, os.O_RDONLY)
    c.open("symlink loop", c.p("loop1"), os.O_RDONLY)
    c.open("file as a path component", c.p("f", "x"), os.O_RDONLY)
    c.open("trailing slash on a file", f + "/", os.O_RDONLY)
    c.open("O_NOATIME by the owner", f, os.O_RDONLY | os.O_NOATIME)
    c.open("O_PATH on a file", f, os.O_PATH)


@case
def open_tmpfile(c):
    fd = c.open("O_TMPFILE", c.root, os.O_TMPFILE | os.O_RDWR, 0o600, keep=True)
    if fd is not None:
        os.write(fd, b"tmp")
        c.do("linked tmpfile", os.link, "/proc/self/fd/%d" % fd, c.p("linked"), follow_symlinks=True)
        os.close(fd)
    else:
        c.rec("linked tmpfile", "no fd")
    c.ls("listing", c.root)


@case
def append(c):
    f = c.p("f")
    wfile(f, b"abc")
    fd = os.open(f, os.O_WRONLY | os.O_APPEND)
    os.lseek(fd, 0, os.SEEK_SET)
    c.val("write after seeking to 0", os.write, fd, b"de")
    c.val("offset after the write", os.lseek, fd, 0, os.SEEK_CUR)
    c.val("pwrite at 0 (Linux appends)", os.pwrite, fd, b"X", 0)
    os.close(fd)
    c.data("content", f)
    fd = os.open(f, os.O_RDWR | os.O_APPEND)
    c.val("read at 0 of O_APPEND|O_RDWR", os.pread, fd, 3, 0)
    c.do("ftruncate of an O_APPEND fd", os.ftruncate, fd, 2)
    os.close(fd)
    c.data("content after ftruncate", f)


@case
def read_write(c):
    f = c.p("f")
    wfile(f, b"0123456789")
    fd = os.open(f, os.O_RDWR)
    c.val("pread at EOF", os.pread, fd, 10, 10)
    c.val("pread after EOF", os.pread, fd, 10, 100)
    c.val("pread across EOF", os.pread, fd, 20, 5)
    c.val("pwrite after EOF", os.pwrite, fd, b"Z", 20)
    c.st("size after pwrite after EOF", None, fd=fd)
    c.val("the gap reads as zeros", os.pread, fd, 20, 5)
    c.val("write of 0 bytes", os.write, fd, b"")
    c.do("pread at a negative offset", os.pread, fd, 1, -1)
    c.do("pwrite at a negative offset", os.pwrite, fd, b"x", -1)
    c.val("pwrite at 1 TiB", os.pwrite, fd, b"T", 1 << 40)
    c.st("size after pwrite at 1 TiB", None, fd=fd)
    c.val("read after the 1 TiB byte", os.pread, fd, 4, 1 << 40)
    os.close(fd)
    fd = os.open(f, os.O_WRONLY)
    c.do("read from an O_WRONLY fd", os.read, fd, 1)
    os.close(fd)
    fd = os.open(f, os.O_RDONLY)
    c.do("write to an O_RDONLY fd", os.write, fd, b"x")
    os.close(fd)
    os.mkdir(c.p("d"))
    fd = os.open(c.p("d"), os.O_RDONLY)
    c.do("read from a dir fd", os.read, fd, 1)
    os.close(fd)
    # Two open file descriptions see each other's writes at once.
    a, b = os.open(f, os.O_RDWR), os.open(f, os.O_RDONLY)
    os.pwrite(a, b"shared", 0)
    c.val("a write seen through another fd", os.pread, b, 6, 0)
    os.close(a)
    os.close(b)


@case
def truncate(c):
    f = c.p("f")
    wfile(f, b"abcdef")
    c.do("truncate to -1", os.truncate, f, -1)
    fd = os.open(f, os.O_RDWR)
    c.do("ftruncate to -1", os.ftruncate, fd, -1)
    c.do("ftruncate up to 100", os.ftruncate, fd, 100)
    c.val("extended bytes are zeros", os.pread, fd, 8, 4)
    c.do("ftruncate down to 3", os.ftruncate, fd, 3)
    c.val("content after shrinking", os.pread, fd, 10, 0)
    os.close(fd)
    c.do("truncate up again", os.truncate, f, 6)
    c.data("shrunk bytes do not come back", f)
    fd = os.open(f, os.O_RDONLY)
    c.do("ftruncate of an O_RDONLY fd", os.ftruncate, fd, 0)
    os.close(fd)
    os.mkdir(c.p("d"))
    c.do("truncate a dir", os.truncate, c.p("d"), 0)
    c.do("truncate a missing file", os.truncate, c.p("nope"), 0)
    os.mkfifo(c.p("fifo"))
    c.do("truncate a FIFO", os.truncate, c.p("fifo"), 0)
    os.symlink("f", c.p("lf"))
    c.do("truncate through a symlink", os.truncate, c.p("lf"), 1)
    c.st("target truncated", f)
    c.st("symlink unchanged", c.p("lf"), follow=False)
    os.utime(f, ns=(10**18, 10**18))
    t0 = times(f)
    time.sleep(0.01)
    os.truncate(f, 1)
    c.rec("truncate to the same size changes", changed(t0, times(f)))
    t0 = times(f)
    time.sleep(0.01)
    os.truncate(f, 50)
    c.rec("truncate up changes", changed(t0, times(f)))


@case
def stat_kinds(c):
    wfile(c.p("f"), b"12345")
    os.mkdir(c.p("d"))
    os.mkdir(c.p("d", "sub"))
    os.symlink("f", c.p("lf"))
    os.symlink("missing", c.p("dangling"))
    os.mkfifo(c.p("fifo"), 0o640)
    for n in ("f", "d", "lf", "dangling", "fifo"):
        c.st("stat " + n, c.p(n))
        c.st("lstat " + n, c.p(n), follow=False)
    fd = os.open(c.p("f"), os.O_RDONLY)
    c.st("fstat f", None, fd=fd)
    os.close(fd)
    fd = os.open(c.p("lf"), os.O_PATH | os.O_NOFOLLOW)
    c.st("fstat of an O_PATH symlink fd", None, fd=fd)
    os.close(fd)
    c.st("trailing slash on a file", c.p("f") + "/")
    c.st("trailing slash on a dir", c.p("d") + "/")
    c.st("missing", c.p("nope"))
    c.st("file as a component", c.p("f", "x"))
    c.rec("d/sub/.. is d", os.stat(c.p("d", "sub", "..")).st_ino == os.stat(c.p("d")).st_ino)
    c.rec("d/. is d", os.stat(c.p("d", ".")).st_ino == os.stat(c.p("d")).st_ino)
    c.rec("lstat and fstat agree", os.lstat(c.p("f")).st_ino == os.stat(c.p("lf")).st_ino)


@case
def mkdir(c):
    c.do("mkdir 0777 under umask 022", os.mkdir, c.p("d"), 0o777)
    c.st("new dir", c.p("d"))
    c.st("parent nlink +1", c.root)
    c.do("mkdir 01777", os.mkdir, c.p("sticky"), 0o1777)
    c.st("sticky bit kept", c.p("sticky"))
    c.do("mkdir 02777 (setgid dropped)", os.mkdir, c.p("sgid"), 0o2777)
    c.st("mkdir's setgid", c.p("sgid"))
    c.do("mkdir existing dir", os.mkdir, c.p("d"))
    wfile(c.p("f"), b"")
    c.do("mkdir over a file", os.mkdir, c.p("f"))
    os.symlink("nowhere", c.p("dangling"))
    c.do("mkdir over a dangling symlink", os.mkdir, c.p("dangling"))
    c.do("mkdir in a missing dir", os.mkdir, c.p("missing", "x"))
    c.do("mkdir under a file", os.mkdir, c.p("f", "x"))
    c.do("mkdir with a trailing slash", os.mkdir, c.p("t") + "/")
    os.mkdir(c.p("gone"))
    fd = os.open(c.p("gone"), os.O_RDONLY)
    os.rmdir(c.p("gone"))
    c.do("mkdir in a removed dir", os.mkdir, "x", dir_fd=fd)
    c.do("create in a removed dir", os.open, "x", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)
    c.ls("readdir of a removed dir", fd)
    os.close(fd)
    os.chmod(c.p("sgid"), 0o2775)
    os.chown(c.p("sgid"), 0, 4321)
    os.mkdir(c.p("sgid", "child"))
    wfile(c.p("sgid", "file"), b"")
    c.st("subdir of a setgid dir", c.p("sgid", "child"))
    c.st("file in a setgid dir", c.p("sgid", "file"))
    c.ls("listing", c.root)


@case
def rmdir(c):
    os.makedirs(c.p("full", "x"))
    os.mkdir(c.p("empty"))
    wfile(c.p("f"), b"")
    os.symlink("empty", c.p("ld"))
    c.do("rmdir a non-empty dir", os.rmdir, c.p("full"))
    c.do("rmdir a file", os.rmdir, c.p("f"))
    c.do("rmdir d/.", os.rmdir, c.p("empty", "."))
    c.do("rmdir d/..", os.rmdir, c.p("full", "x", ".."))
    c.do("rmdir missing", os.rmdir, c.p("nope"))
    c.do("rmdir a symlink to a dir", os.rmdir, c.p("ld"))
    c.do("rmdir under a file", os.rmdir, c.p("f", "x"))
    c.st("parent before", c.root)
    fd = os.open(c.p("empty"), os.O_RDONLY)
    c.do("rmdir an empty dir (open)", os.rmdir, c.p("empty"))
    c.st("parent nlink -1", c.root)
    c.st("fstat of the removed dir", None, fd=fd)
    os.close(fd)
    c.do("rmdir the emptied dir", os.rmdir, c.p("full", "x"))
    c.st("full after its subdir went", c.p("full"))
    c.ls("listing", c.root)


@case
def unlink(c):
    os.mkdir(c.p("d"))
    wfile(c.p("f"), b"data")
    os.link(c.p("f"), c.p("f2"))
    os.symlink("f", c.p("lf"))
    c.do("unlink a dir", os.unlink, c.p("d"))
    c.do("unlink missing", os.unlink, c.p("nope"))
    c.do("unlink under a file", os.unlink, c.p("f", "x"))
    c.do("unlink with a trailing slash", os.unlink, c.p("f") + "/")
    c.do("unlink a symlink", os.unlink, c.p("lf"))
    c.st("its target stays", c.p("f"))
    c.do("unlink one of two links", os.unlink, c.p("f2"))
    c.st("nlink after", c.p("f"))
    fd = os.open(c.p("f"), os.O_RDWR)
    c.do("unlink an open file", os.unlink, c.p("f"))
    c.st("fstat of the unlinked open file", None, fd=fd)
    c.val("read it", os.pread, fd, 10, 0)
    c.val("write it", os.pwrite, fd, b"more", 4)
    c.do("fchmod it", os.fchmod, fd, 0o600)
    c.do("ftruncate it", os.ftruncate, fd, 2)
    c.st("fstat after changes", None, fd=fd)
    c.do("link it back from /proc", os.link, "/proc/self/fd/%d" % fd, c.p("back"), follow_symlinks=True)
    os.close(fd)
    c.ls("listing", c.root)


@case
def rename(c):
    wfile(c.p("a"), b"A")
    wfile(c.p("b"), b"B")
    os.makedirs(c.p("full", "x"))
    os.mkdir(c.p("empty"))
    os.mkdir(c.p("empty2"))
    os.mkdir(c.p("d"))
    os.mkdir(c.p("d", "sub"))
    fd_b = os.open(c.p("b"), os.O_RDONLY)
    c.do("file over file", os.rename, c.p("a"), c.p("b"))
    c.data("replaced content", c.p("b"))
    c.st("old name", c.p("a"))
    c.st("the replaced file, still open", None, fd=fd_b)
    os.close(fd_b)
    c.do("file over an empty dir", os.rename, c.p("b"), c.p("empty"))
    c.do("dir over a file", os.rename, c.p("empty"), c.p("b"))
    c.do("dir over a non-empty dir", os.rename, c.p("empty"), c.p("full"))
    c.do("dir over an empty dir", os.rename, c.p("empty"), c.p("empty2"))
    c.st("parent nlink after dir over dir", c.root)
    c.do("dir into its own subdir", os.rename, c.p("d"), c.p("d", "sub", "x"))
    c.do("dir onto its own subdir", os.rename, c.p("d"), c.p("d", "sub"))
    c.do("dir onto itself", os.rename, c.p("d"), c.p("d"))
    c.do("file onto itself", os.rename, c.p("b"), c.p("b"))
    os.link(c.p("b"), c.p("b2"))
    c.do("one hard link over another", os.rename, c.p("b"), c.p("b2"))
    c.st("both names stay: b", c.p("b"))
    c.st("both names stay: b2", c.p("b2"))
    c.do("missing source", os.rename, c.p("nope"), c.p("x"))
    c.do("into a missing dir", os.rename, c.p("b"), c.p("nope", "x"))
    c.do("under a file", os.rename, c.p("b"), c.p("b2", "x"))
    c.do("file to a name with a trailing slash", os.rename, c.p("b"), c.p("new") + "/")
    c.do("source d/.", os.rename, c.p("d", "."), c.p("x"))
    c.do("dir to a name with a trailing slash", os.rename, c.p("empty2"), c.p("e3") + "/")
    c.do("dir across dirs", os.rename, c.p("e3"), c.p("full", "e3"))
    c.st("old parent", c.root)
    c.st("new parent", c.p("full"))
    c.rec("moved dir's .. is the new parent",
          os.stat(c.p("full", "e3", "..")).st_ino == os.stat(c.p("full")).st_ino)
    c.do("dir over an ancestor", os.rename, c.p("full", "x"), c.p("full"))
    c.ls("listing", c.root)
    c.ls("listing full", c.p("full"))


@case
def rename_times(c):
    os.mkdir(c.p("d1"))
    os.mkdir(c.p("d2"))
    wfile(c.p("d1", "f"), b"x")
    for p in (c.p("d1"), c.p("d2"), c.p("d1", "f")):
        os.utime(p, ns=(10**18, 10**18))
    t = {n: times(c.p(*n.split("/"))) for n in ("d1", "d2", "d1/f")}
    time.sleep(0.01)
    os.rename(c.p("d1", "f"), c.p("d2", "g"))
    c.rec("rename across dirs: source dir", changed(t["d1"], times(c.p("d1"))))
    c.rec("rename across dirs: target dir", changed(t["d2"], times(c.p("d2"))))
    c.rec("rename across dirs: the file", changed(t["d1/f"], times(c.p("d2", "g"))))


@case
def renameat2_flags(c):
    wfile(c.p("a"), b"A")
    wfile(c.p("b"), b"B")
    os.mkdir(c.p("d"))
    os.mkdir(c.p("d", "sub"))
    os.mkdir(c.p("e"))
    c.do("RENAME_NOREPLACE onto an existing name", renameat2, c.p("a"), c.p("b"), RENAME_NOREPLACE)
    c.do("RENAME_NOREPLACE to a new name", renameat2, c.p("a"), c.p("a2"), RENAME_NOREPLACE)
    c.do("RENAME_EXCHANGE file and dir", renameat2, c.p("a2"), c.p("d"), RENAME_EXCHANGE)
    c.st("a2 after exchange", c.p("a2"))
    c.st("d after exchange", c.p("d"))
    c.do("RENAME_EXCHANGE with a missing target", renameat2, c.p("b"), c.p("nope"), RENAME_EXCHANGE)
    c.do("RENAME_EXCHANGE with a missing source", renameat2, c.p("nope"), c.p("b"), RENAME_EXCHANGE)
    c.do("RENAME_EXCHANGE|RENAME_NOREPLACE", renameat2, c.p("b"), c.p("a2"), RENAME_EXCHANGE | RENAME_NOREPLACE)
    c.do("RENAME_EXCHANGE a dir with its subdir", renameat2, c.p("a2"), c.p("a2", "sub"), RENAME_EXCHANGE)
    c.do("RENAME_EXCHANGE dir and dir across parents", renameat2, c.p("a2", "sub"), c.p("e"), RENAME_EXCHANGE)
    c.st("root nlink after exchanges", c.root)
    c.st("a2 nlink after exchanges", c.p("a2"))
    c.do("unknown flag", renameat2, c.p("b"), c.p("c"), 1 << 7)
    c.ls("listing", c.root)


@case
def rename_whiteout(c):
    wfile(c.p("b"), b"B")
    c.do("RENAME_WHITEOUT", renameat2, c.p("b"), c.p("c"), RENAME_WHITEOUT)
    c.st("whiteout left behind", c.p("b"), follow=False)


@case
def link(c):
    wfile(c.p("f"), b"data")
    os.mkdir(c.p("d"))
    os.symlink("f", c.p("lf"))
    c.do("link a dir", os.link, c.p("d"), c.p("d2"))
    c.do("link onto an existing name", os.link, c.p("f"), c.p("lf"))
    c.do("link a missing file", os.link, c.p("nope"), c.p("x"))
    c.do("link into a missing dir", os.link, c.p("f"), c.p("nope", "x"))
    os.utime(c.p("f"), ns=(10**18, 10**18))
    t0 = times(c.p("f"))
    time.sleep(0.01)
    c.do("link a file", os.link, c.p("f"), c.p("f2"))
    c.rec("link changes the file's", changed(t0, times(c.p("f"))))
    c.st("nlink 2", c.p("f"))
    c.do("link into a subdir", os.link, c.p("f"), c.p("d", "f3"))
    c.st("nlink 3", c.p("f2"))
    c.do("link a symlink (no follow)", os.link, c.p("lf"), c.p("lf2"), follow_symlinks=False)
    c.st("the new name is a symlink", c.p("lf2"), follow=False)
    c.do("link a symlink (follow)", os.link, c.p("lf"), c.p("f4"), follow_symlinks=True)
    c.st("the new name is the file", c.p("f4"), follow=False)
    os.mkfifo(c.p("fifo"))
    c.do("link a FIFO", os.link, c.p("fifo"), c.p("fifo2"))
    c.st("FIFO nlink", c.p("fifo"), follow=False)
    c.do("link with a trailing slash", os.link, c.p("f"), c.p("f5") + "/")
    c.ls("listing", c.root)


@case
def symlink(c):
    c.do("symlink", os.symlink, "some/target", c.p("l"))
    c.st("lstat", c.p("l"), follow=False)
    c.val("readlink", os.readlink, c.p("l"))
    c.val("readlink into a 3-byte buffer", c_readlink, c.p("l"), 3)
    wfile(c.p("f"), b"")
    os.mkdir(c.p("d"))
    c.do("readlink a file", os.readlink, c.p("f"))
    c.do("readlink a dir", os.readlink, c.p("d"))
    c.do("readlink missing", os.readlink, c.p("nope"))
    c.do("symlink onto an existing name", os.symlink, "x", c.p("f"))
    c.do("symlink with an empty target", os.symlink, "", c.p("empty"))
    c.do("symlink in a missing dir", os.symlink, "x", c.p("nope", "l"))
    c.do("symlink target of 4095 bytes", os.symlink, "t" * 4095, c.p("long"))
    c.st("4095-byte target", c.p("long"), follow=False)
    c.val("its length read back", lambda: len(os.readlink(c.p("long"))))
    c.do("symlink target of 4096 bytes", os.symlink, "t" * 4096, c.p("toolong"))
    os.symlink("self", c.p("self"))
    c.st("stat of a self loop", c.p("self"))
    c.do("symlink with a trailing slash on the name", os.symlink, "x", c.p("ts") + "/")
    os.symlink("d", c.p("ld"))
    c.st("trailing slash follows a symlink to a dir", c.p("ld") + "/", follow=False)
    c.ls("listing", c.root)


@case
def mknod(c):
    c.do("mkfifo", os.mkfifo, c.p("fifo"), 0o666)
    c.st("fifo", c.p("fifo"))
    c.do("mkfifo existing", os.mkfifo, c.p("fifo"))
    c.do("mknod char 1,3", os.mknod, c.p("chr"), stat.S_IFCHR | 0o600, os.makedev(1, 3))
    c.st("char device", c.p("chr"))
    c.do("mknod block 7,200", os.mknod, c.p("blk"), stat.S_IFBLK | 0o640, os.makedev(7, 200))
    c.st("block device", c.p("blk"))
    c.do("mknod socket", os.mknod, c.p("sock"), stat.S_IFSOCK | 0o755)
    c.st("socket", c.p("sock"))
    c.do("mknod regular", os.mknod, c.p("reg"), stat.S_IFREG | 0o600)
    c.st("regular", c.p("reg"))
    c.do("mknod type 0", os.mknod, c.p("zero"), 0o644)
    c.st("type 0 is regular", c.p("zero"))
    c.do("mknod dir", os.mknod, c.p("dir"), stat.S_IFDIR | 0o755)
    c.do("mknod bad type", os.mknod, c.p("bad"), 0o170000 | 0o644)
    c.do("mknod in a missing dir", os.mknod, c.p("nope", "x"), stat.S_IFIFO | 0o644)
    c.open("FIFO O_WRONLY|O_NONBLOCK without a reader", c.p("fifo"), os.O_WRONLY | os.O_NONBLOCK)
    fd = os.open(c.p("fifo"), os.O_RDWR)
    os.write(fd, b"pipe")
    c.val("FIFO write then read", os.read, fd, 10)
    os.close(fd)
    c.st("FIFO size stays 0", c.p("fifo"))
    c.do("open a device node", rbytes, c.p("chr"))


@case
def chmod(c):
    wfile(c.p("f"), b"x")
    os.mkdir(c.p("d"))
    os.symlink("f", c.p("lf"))
    for m in (0o4755, 0o2755, 0o1755, 0o7777, 0):
        c.do("chmod %04o" % m, os.chmod, c.p("f"), m)
        c.st("file after chmod %04o" % m, c.p("f"))
    c.do("chmod dir 03777", os.chmod, c.p("d"), 0o3777)
    c.st("dir after chmod", c.p("d"))
    c.do("chmod through a symlink", os.chmod, c.p("lf"), 0o640)
    c.st("target", c.p("f"))
    c.st("link", c.p("lf"), follow=False)
    c.do("fchmodat AT_SYMLINK_NOFOLLOW on a symlink", c_fchmodat, c.p("lf"), 0o600, AT_SYMLINK_NOFOLLOW)
    c.do("chmod missing", os.chmod, c.p("nope"), 0o600)
    fd = os.open(c.p("f"), os.O_RDONLY)
    c.do("fchmod", os.fchmod, fd, 0o604)
    os.close(fd)
    c.st("after fchmod", c.p("f"))
    os.utime(c.p("f"), ns=(10**18, 10**18))
    t0 = times(c.p("f"))
    time.sleep(0.01)
    os.chmod(c.p("f"), 0o644)
    c.rec("chmod changes", changed(t0, times(c.p("f"))))


@case
def chown(c):
    wfile(c.p("f"), b"x")
    os.mkdir(c.p("d"))
    os.symlink("f", c.p("lf"))
    c.do("chown 1234:1235", os.chown, c.p("f"), USER, USER2)
    c.st("after chown", c.p("f"))
    c.do("chown -1:42", os.chown, c.p("f"), -1, 42)
    c.st("after chgrp", c.p("f"))
    os.utime(c.p("f"), ns=(10**18, 10**18))
    t0 = times(c.p("f"))
    time.sleep(0.01)
    c.do("chown -1:-1", os.chown, c.p("f"), -1, -1)
    c.rec("chown -1:-1 changes", changed(t0, times(c.p("f"))))
    os.chmod(c.p("f"), 0o6755)
    c.do("chown of a setuid/setgid file", os.chown, c.p("f"), 0, 0)
    c.st("setuid and setgid cleared", c.p("f"))
    os.chmod(c.p("f"), 0o2644)
    os.chown(c.p("f"), USER, USER)
    c.st("setgid without group exec kept", c.p("f"))
    os.chmod(c.p("d"), 0o6755)
    c.do("chown of a setuid/setgid dir", os.chown, c.p("d"), USER, USER)
    c.st("dir keeps its bits", c.p("d"))
    c.do("lchown a symlink", os.lchown, c.p("lf"), USER2, USER2)
    c.st("symlink owner", c.p("lf"), follow=False)
    c.st("target owner unchanged", c.p("f"))
    c.do("chown through a symlink", os.chown, c.p("lf"), 7, 8)
    c.st("target owner", c.p("f"))
    fd = os.open(c.p("f"), os.O_RDONLY)
    c.do("fchown", os.fchown, fd, 9, 10)
    os.close(fd)
    c.st("after fchown", c.p("f"))
    c.do("chown missing", os.chown, c.p("nope"), 1, 1)


@case
def utimens(c):
    f = c.p("f")
    wfile(f, b"x")
    c.do("explicit times with nanoseconds", os.utime, f, ns=(1_500_000_000_123_456_789, 1_600_000_000_987_654_321))
    c.val("read back", lambda: times(f)[:2])
    c.do("times before 1970", os.utime, f, ns=(-1_000_000_000, -5))
    c.val("read back before 1970", lambda: times(f)[:2])
    c.do("times in 2100", os.utime, f, ns=(4_102_444_800_000_000_000, 4_102_444_800_000_000_001))
    c.val("read back 2100", lambda: times(f)[:2])
    os.utime(f, ns=(10**18, 10**18))
    t0 = times(f)
    time.sleep(0.01)
    c.do("UTIME_OMIT both", utimensat, f, UTIME_OMIT, UTIME_OMIT)
    c.rec("UTIME_OMIT both changes", changed(t0, times(f)))
    c.do("atime UTIME_OMIT, mtime set", utimensat, f, UTIME_OMIT, (2000, 5))
    c.val("atime kept, mtime set", lambda: times(f)[:2])
    c.do("atime set, mtime UTIME_OMIT", utimensat, f, (3000, 7), UTIME_OMIT)
    c.val("atime set, mtime kept", lambda: times(f)[:2])
    t0 = times(f)
    time.sleep(0.01)
    c.do("UTIME_NOW both", utimensat, f, UTIME_NOW, UTIME_NOW)
    c.rec("UTIME_NOW changes", changed(t0, times(f)))
    t0 = times(f)
    time.sleep(0.01)
    c.do("atime UTIME_NOW, mtime UTIME_OMIT", utimensat, f, UTIME_NOW, UTIME_OMIT)
    c.rec("atime-only UTIME_NOW changes", changed(t0, times(f)))
    c.val("times NULL is now (mtime moved)", lambda: (utimensat(f, None, None), abs(times(f)[1] - time.time_ns()) < 5 * 10**9))
    c.do("tv_nsec out of range", utimensat, f, (0, 1_000_000_000), (0, 0))
    os.symlink("f", c.p("lf"))
    c.do("utimensat AT_SYMLINK_NOFOLLOW", utimensat, c.p("lf"), (100, 1), (200, 2), AT_SYMLINK_NOFOLLOW)
    c.val("symlink times", lambda: times(c.p("lf"), follow=False)[:2])
    c.val("target times unchanged", lambda: times(f)[:2] != (100_000_000_001, 200_000_000_002))
    c.do("utime missing", os.utime, c.p("nope"), ns=(1, 1))


@case
def access_root(c):
    wfile(c.p("none"), b"")
    os.chmod(c.p("none"), 0)
    wfile(c.p("x"), b"")
    os.chmod(c.p("x"), 0o100)
    os.mkdir(c.p("d"), 0)
    for n in ("none", "x", "d"):
        for m, mn in ((os.R_OK, "R"), (os.W_OK, "W"), (os.X_OK, "X"), (os.F_OK, "F")):
            c.rec("root access %s_OK %s" % (mn, n), os.access(c.p(n), m))
    c.rec("access missing", os.access(c.p("nope"), os.F_OK))
    c.do("root reads a 0000 file", rbytes, c.p("none"))
    c.do("root lists a 0000 dir", os.listdir, c.p("d"))


@case
def xattr(c):
    f = c.p("f")
    wfile(f, b"")
    c.do("get missing", os.getxattr, f, "user.a")
    c.do("set user.a", os.setxattr, f, "user.a", b"hello")
    c.val("size query", c_getxattr, f, "user.a", 0)
    c.do("2-byte buffer", c_getxattr, f, "user.a", 2)
    c.val("exact buffer", c_getxattr, f, "user.a", 5)
    c.do("XATTR_CREATE existing", os.setxattr, f, "user.a", b"x", XATTR_CREATE)
    c.do("XATTR_REPLACE missing", os.setxattr, f, "user.b", b"x", XATTR_REPLACE)
    c.do("XATTR_REPLACE existing", os.setxattr, f, "user.a", b"bye", XATTR_REPLACE)
    c.do("XATTR_CREATE new", os.setxattr, f, "user.b", b"", XATTR_CREATE)
    c.val("empty value", os.getxattr, f, "user.b")
    c.do("flags 3", c_setxattr, f, "user.c", b"x", 3)
    c.do("flags 4", c_setxattr, f, "user.c", b"x", 4)
    c.val("list size query", c_listxattr, f, 0)
    c.do("list into a 3-byte buffer", c_listxattr, f, 3)
    c.val("list", c_listxattr, f, 1024)
    c.do("remove missing", os.removexattr, f, "user.zz")
    c.do("remove user.b", os.removexattr, f, "user.b")
    c.do("get removed", os.getxattr, f, "user.b")
    c.do("name of 255 bytes", os.setxattr, f, "user." + "n" * 250, b"v")
    c.do("name of 256 bytes", os.setxattr, f, "user." + "n" * 251, b"v")
    c.do("get a name of 256 bytes", os.getxattr, f, "user." + "n" * 251)
    c.do("remove a name of 256 bytes", os.removexattr, f, "user." + "n" * 251)
    c.do("value of 65536 bytes", os.setxattr, f, "user.big", b"v" * 65536)
    c.val("its size", c_getxattr, f, "user.big", 0)
    c.do("value of 65537 bytes", os.setxattr, f, "user.big2", b"v" * 65537)
    c.do("empty name", c_setxattr, f, "", b"v")
    c.do("name user. alone", os.setxattr, f, "user.", b"v")
    c.do("get user. alone", os.getxattr, f, "user.")
    c.do("name without a namespace", os.setxattr, f, "plain", b"v")
    c.do("unknown namespace", os.setxattr, f, "foo.bar", b"v")
    c.do("get in an unknown namespace", os.getxattr, f, "foo.bar")
    c.do("remove in an unknown namespace", os.removexattr, f, "foo.bar")
    c.do("system.other", os.setxattr, f, "system.other", b"v")
    c.do("trusted.t as root", os.setxattr, f, "trusted.t", b"tv")
    c.do("security.s as root", os.setxattr, f, "security.s", b"sv")
    c.xattrs("all xattrs", f)
    os.utime(f, ns=(10**18, 10**18))
    t0 = times(f)
    time.sleep(0.01)
    os.setxattr(f, "user.t", b"1")
    c.rec("setxattr changes", changed(t0, times(f)))
    t0 = times(f)
    time.sleep(0.01)
    os.removexattr(f, "user.t")
    c.rec("removexattr changes", changed(t0, times(f)))
    c.do("set on a missing file", os.setxattr, c.p("nope"), "user.a", b"v")
    c.do("list a missing file", os.listxattr, c.p("nope"))
    fd = os.open(f, os.O_RDONLY)
    c.do("fsetxattr on an O_RDONLY fd", os.setxattr, fd, "user.fd", b"1")
    c.val("fgetxattr", os.getxattr, fd, "user.fd")
    os.close(fd)


@case
def xattr_kinds(c):
    os.mkdir(c.p("d"))
    wfile(c.p("f"), b"")
    os.symlink("f", c.p("l"))
    os.mkfifo(c.p("fifo"))
    c.do("user.* on a dir", os.setxattr, c.p("d"), "user.d", b"1")
    c.xattrs("dir xattrs", c.p("d"))
    c.do("lsetxattr user.* on a symlink", os.setxattr, c.p("l"), "user.l", b"1", follow_symlinks=False)
    c.do("lgetxattr user.* on a symlink", os.getxattr, c.p("l"), "user.l", follow_symlinks=False)
    c.do("lsetxattr trusted.* on a symlink", os.setxattr, c.p("l"), "trusted.l", b"1", follow_symlinks=False)
    c.xattrs("symlink xattrs", c.p("l"), follow=False)
    c.do("setxattr through a symlink", os.setxattr, c.p("l"), "user.via", b"1")
    c.xattrs("target xattrs", c.p("f"))
    c.do("user.* on a FIFO", os.setxattr, c.p("fifo"), "user.p", b"1")
    c.do("trusted.* on a FIFO", os.setxattr, c.p("fifo"), "trusted.p", b"1")
    c.xattrs("FIFO xattrs", c.p("fifo"))
    # Writing a file drops its file capability (security.capability), as the kernel asks.
    # VFS_CAP_REVISION_2 with CAP_NET_BIND_SERVICE permitted
    cap = (0x02000001).to_bytes(4, "little") + (1 << 10).to_bytes(4, "little") + bytes(12)
    c.do("set security.capability", os.setxattr, c.p("f"), "security.capability", cap)
    fd = os.open(c.p("f"), os.O_WRONLY)
    os.write(fd, b"w")
    os.close(fd)
    c.do("security.capability after a write", os.getxattr, c.p("f"), "security.capability")


def acl(*entries):
    """A system.posix_acl_* value: entries (tag, perm, id)."""
    out = (2).to_bytes(4, "little")
    for tag, perm, ident in entries:
        out += tag.to_bytes(2, "little") + perm.to_bytes(2, "little") + (ident & 0xFFFFFFFF).to_bytes(4, "little")
    return out


ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = 1, 2, 4, 8, 0x10, 0x20
NOID = -1


@case
def posix_acl(c):
    f = c.p("f")
    wfile(f, b"secret")
    os.chmod(f, 0o600)
    full = acl((ACL_USER_OBJ, 6, NOID), (ACL_USER, 4, USER), (ACL_GROUP_OBJ, 0, NOID), (ACL_MASK, 4, NOID),
               (ACL_OTHER, 0, NOID))
    c.do("set an access ACL with a named user", os.setxattr, f, "system.posix_acl_access", full)
    c.st("mode follows the ACL", f)
    c.val("the ACL reads back", os.getxattr, f, "system.posix_acl_access")
    c.as_user(USER, lambda u: u.do("the named user reads", rbytes, f))
    c.as_user(USER2, lambda u: u.do("another user reads", rbytes, f))
    c.do("chmod 0640", os.chmod, f, 0o640)
    c.val("chmod rewrote the mask", os.getxattr, f, "system.posix_acl_access")
    c.do("minimal ACL", os.setxattr, f, "system.posix_acl_access",
         acl((ACL_USER_OBJ, 7, NOID), (ACL_GROUP_OBJ, 5, NOID), (ACL_OTHER, 1, NOID)))
    c.st("mode from the minimal ACL", f)
    c.do("a minimal ACL is no xattr", os.getxattr, f, "system.posix_acl_access")
    c.do("invalid ACL", os.setxattr, f, "system.posix_acl_access", b"\x02\0\0\0garbage!")
    c.do("default ACL on a file", os.setxattr, f, "system.posix_acl_default", full)
    os.mkdir(c.p("d"))
    dflt = acl((ACL_USER_OBJ, 7, NOID), (ACL_USER, 5, USER), (ACL_GROUP_OBJ, 5, NOID), (ACL_MASK, 5, NOID),
               (ACL_OTHER, 0, NOID))
    c.do("default ACL on a dir", os.setxattr, c.p("d"), "system.posix_acl_default", dflt)
    fd = os.open(c.p("d", "new"), os.O_CREAT | os.O_WRONLY, 0o666)
    os.close(fd)
    c.st("a new file under a default ACL", c.p("d", "new"))
    c.xattrs("its ACLs", c.p("d", "new"))
    os.mkdir(c.p("d", "sub"), 0o777)
    c.st("a new dir under a default ACL", c.p("d", "sub"))
    c.xattrs("its ACLs", c.p("d", "sub"))
    c.do("remove the default ACL", os.removexattr, c.p("d"), "system.posix_acl_default")
    fd = os.open(c.p("d", "plain"), os.O_CREAT | os.O_WRONLY, 0o666)
    os.close(fd)
    c.st("without one, umask applies", c.p("d", "plain"))


@case
def readdir(c):
    os.mkdir(c.p("d"))
    os.mkdir(c.p("d", "sub"))
    wfile(c.p("d", "f"), b"")
    os.symlink("f", c.p("d", "l"))
    os.mkfifo(c.p("d", "p"))
    c.ls("listing with types", c.p("d"))
    c.do("readdir a file", os.listdir, c.p("d", "f"))
    c.do("readdir missing", os.listdir, c.p("nope"))
    c.do("readdir through a symlink", os.listdir, c.p("d", "l"))
    n = 1500
    for i in range(n):
        wfile(c.p("d", "entry-%04d-%s" % (i, "x" * 50)), b"")
    names = set(os.listdir(c.p("d")))
    seen, dup, removed, created = [], 0, set(), set()
    with os.scandir(c.p("d")) as it:
        for k, e in enumerate(it):
            seen.append(e.name)
            if k == 300:
                left = sorted(names - set(seen))
                removed = set(left[::5][:200])
                for r in removed:
                    os.unlink(c.p("d", r))
                for j in range(200):
                    nm = "new-%04d-%s" % (j, "y" * 50)
                    wfile(c.p("d", nm), b"")
                    created.add(nm)
    dup = len(seen) - len(set(seen))
    untouched = names - removed
    c.rec("readdir while changing: duplicates", dup)
    c.rec("readdir while changing: untouched entries missed", len(untouched - set(seen)))
    c.rec("readdir while changing: unknown names", sorted(set(seen) - names - created - removed))
    c.rec("readdir after the changes", sorted(set(os.listdir(c.p("d")))) == sorted(untouched | created))


@case
def lseek(c):
    f = c.p("f")
    wfile(f, b"0123456789")
    fd = os.open(f, os.O_RDWR)
    c.val("SEEK_END", os.lseek, fd, 0, os.SEEK_END)
    c.val("SEEK_CUR -3", os.lseek, fd, -3, os.SEEK_CUR)
    c.do("SEEK_SET -1", os.lseek, fd, -1, os.SEEK_SET)
    c.do("SEEK_END -100", os.lseek, fd, -100, os.SEEK_END)
    c.val("SEEK_SET past EOF", os.lseek, fd, 100, os.SEEK_SET)
    c.val("a write there", os.write, fd, b"E")
    c.st("size", None, fd=fd)
    c.do("bad whence", os.lseek, fd, 0, 99)
    c.val("SEEK_DATA at 0", os.lseek, fd, 0, os.SEEK_DATA)
    c.do("SEEK_DATA past EOF", os.lseek, fd, 1000, os.SEEK_DATA)
    c.do("SEEK_HOLE past EOF", os.lseek, fd, 1000, os.SEEK_HOLE)
    os.close(fd)
    sp = c.p("sparse")
    fd = os.open(sp, os.O_CREAT | os.O_RDWR, 0o644)
    os.pwrite(fd, pattern(4096), 0)
    os.pwrite(fd, pattern(4096, 2), 1 << 20)
    os.fsync(fd)
    c.val("SEEK_HOLE in a sparse file", os.lseek, fd, 0, os.SEEK_HOLE)
    c.val("SEEK_DATA from a hole", os.lseek, fd, 8192, os.SEEK_DATA)
    c.val("SEEK_HOLE at the last byte", os.lseek, fd, (1 << 20) + 4095, os.SEEK_HOLE)
    os.close(fd)
    fd = os.open(c.root, os.O_RDONLY)
    c.do("lseek on a dir", os.lseek, fd, 0, os.SEEK_SET)
    os.close(fd)


@case
def fallocate(c):
    f = c.p("f")
    fd = os.open(f, os.O_CREAT | os.O_RDWR, 0o644)
    c.do("mode 0", c_fallocate, fd, 0, 0, 8192)
    c.st("size after mode 0", None, fd=fd)
    c.val("allocated bytes read as zeros", lambda: os.pread(fd, 8192, 0) == bytes(8192))
    c.do("KEEP_SIZE past EOF", c_fallocate, fd, FALLOC_KEEP_SIZE, 8192, 8192)
    c.st("size after KEEP_SIZE", None, fd=fd)
    c.do("mode 0 inside the file", c_fallocate, fd, 0, 0, 100)
    c.st("size unchanged", None, fd=fd)
    os.pwrite(fd, pattern(8192), 0)
    c.do("PUNCH_HOLE", c_fallocate, fd, FALLOC_PUNCH_HOLE | FALLOC_KEEP_SIZE, 4096, 4096)
    c.val("data after PUNCH_HOLE", lambda: os.pread(fd, 4096, 4096) == bytes(4096))
    c.do("PUNCH_HOLE without KEEP_SIZE", c_fallocate, fd, FALLOC_PUNCH_HOLE, 0, 4096)
    c.do("ZERO_RANGE", c_fallocate, fd, FALLOC_ZERO, 0, 4096)
    c.do("COLLAPSE_RANGE", c_fallocate, fd, FALLOC_COLLAPSE, 0, 4096)
    c.do("INSERT_RANGE", c_fallocate, fd, FALLOC_INSERT, 0, 4096)
    c.do("length 0", c_fallocate, fd, 0, 0, 0)
    c.do("negative offset", c_fallocate, fd, 0, -1, 10)
    c.do("unknown mode", c_fallocate, fd, 0x4000, 0, 10)
    os.utime(f, ns=(10**18, 10**18))
    t0 = times(f)
    time.sleep(0.01)
    c_fallocate(fd, 0, 0, 20000)
    c.rec("extending mode 0 changes", changed(t0, os.fstat(fd) and times(f)))
    os.close(fd)
    fd = os.open(f, os.O_RDONLY)
    c.do("on an O_RDONLY fd", c_fallocate, fd, 0, 0, 10)
    os.close(fd)
    os.mkfifo(c.p("fifo"))
    fd = os.open(c.p("fifo"), os.O_RDWR)
    c.do("on a FIFO", c_fallocate, fd, 0, 0, 10)
    os.close(fd)


@case
def copy_range(c):
    src, dst = c.p("src"), c.p("dst")
    wfile(src, pattern(100_000))
    wfile(dst, b"")
    a, b = os.open(src, os.O_RDONLY), os.open(dst, os.O_RDWR)
    c.val("copy 50000 from 1000 to 0", os.copy_file_range, a, b, 50_000, 1000, 0)
    c.val("copy at the source's EOF", os.copy_file_range, a, b, 10, 100_000, 0)
    c.val("copy past the source's EOF", os.copy_file_range, a, b, 10, 200_000, 0)
    c.val("copy across the source's EOF", os.copy_file_range, a, b, 100, 99_950, 60_000)
    c.st("destination size (a hole before the tail)", None, fd=b)
    c.val("destination content", lambda: os.pread(b, 50_000, 0) == pattern(100_000)[1000:51_000])
    c.val("the hole reads as zeros", lambda: os.pread(b, 10, 50_000) == bytes(10))
    c.do("flags 1", c_copy_file_range, a, 0, b, 0, 10, 1)
    c.do("destination opened O_RDONLY", os.copy_file_range, b, a, 10, 0, 0)
    os.close(a)
    a = os.open(src, os.O_RDWR)
    c.do("overlapping ranges in one file", os.copy_file_range, a, a, 100, 0, 50)
    c.val("disjoint ranges in one file", os.copy_file_range, a, a, 100, 0, 1000)
    c.val("content after the in-file copy", lambda: os.pread(a, 100, 1000) == pattern(100)[:100])
    os.close(a)
    a = os.open(src, os.O_WRONLY)
    c.do("source opened O_WRONLY", os.copy_file_range, a, b, 10, 0, 0)
    os.close(a)
    d = os.open(c.root, os.O_RDONLY)
    c.do("source is a dir", os.copy_file_range, d, b, 10, 0, 0)
    os.close(d)
    os.close(b)
    b = os.open(dst, os.O_WRONLY | os.O_APPEND)
    a = os.open(src, os.O_RDONLY)
    c.do("destination opened O_APPEND", os.copy_file_range, a, b, 10, 0, 0)
    os.close(a)
    os.close(b)


@case
def statfs(c):
    s = os.statvfs(c.root)
    c.rec("f_namemax", s.f_namemax)
    c.rec("sane counts", s.f_bfree <= s.f_blocks and s.f_bavail <= s.f_bfree and s.f_ffree <= s.f_files
          and s.f_bsize > 0 and s.f_frsize > 0)
    c.rec("read-only flag", bool(s.f_flag & os.ST_RDONLY))
    c.do("statvfs missing", os.statvfs, c.p("nope"))
    wfile(c.p("f"), b"")
    c.do("statvfs of a file", os.statvfs, c.p("f"))


@case
def long_names(c):
    n255, n256 = "a" * 255, "b" * 256
    c.open("create 255", c.p(n255), os.O_CREAT | os.O_WRONLY)
    c.st("stat 255", c.p(n255))
    c.do("mkdir 255", os.mkdir, c.p("c" * 255))
    c.do("symlink named 255", os.symlink, n255, c.p("l" * 255))
    c.do("link to 255", os.link, c.p(n255), c.p("k" * 255))
    c.do("rename to 255", os.rename, c.p("k" * 255), c.p("r" * 255))
    c.do("setxattr on 255", os.setxattr, c.p(n255), "user.x", b"1")
    c.rec("readdir shows 255", sorted(len(x) for x in os.listdir(c.root)))
    wfile(c.p("f"), b"")
    calls = [
        ("open", lambda p: os.open(p, os.O_RDONLY)),
        ("create", lambda p: os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)),
        ("stat", os.stat), ("lstat", os.lstat), ("mkdir", os.mkdir), ("rmdir", os.rmdir),
        ("unlink", os.unlink), ("rename from", lambda p: os.rename(p, c.p("g"))),
        ("rename to", lambda p: os.rename(c.p("f"), p)), ("link from", lambda p: os.link(p, c.p("g"))),
        ("link to", lambda p: os.link(c.p("f"), p)), ("symlink named", lambda p: os.symlink("x", p)),
        ("symlink to it (ok: a target is not looked up)", lambda p: os.symlink(p, c.p("s256"))),
        ("mkfifo", os.mkfifo), ("mknod", lambda p: os.mknod(p, stat.S_IFIFO | 0o644)),
        ("truncate", lambda p: os.truncate(p, 0)), ("chmod", lambda p: os.chmod(p, 0o600)),
        ("chown", lambda p: os.chown(p, 1, 1)), ("utime", lambda p: os.utime(p, ns=(1, 1))),
        ("access", lambda p: os.access(p, os.F_OK) or os.stat(p)), ("readlink", os.readlink),
        ("getxattr", lambda p: os.getxattr(p, "user.x")), ("setxattr", lambda p: os.setxattr(p, "user.x", b"1")),
        ("listxattr", os.listxattr), ("removexattr", lambda p: os.removexattr(p, "user.x")),
        ("opendir", os.listdir), ("statvfs", os.statvfs),
        ("renameat2 exchange", lambda p: renameat2(c.p("f"), p, RENAME_EXCHANGE)),
        ("renameat2 noreplace", lambda p: renameat2(c.p("f"), p, RENAME_NOREPLACE)),
    ]
    for what, fn in calls:
        c.do("256: " + what, fn, c.p(n256))
    c.do("256 as a middle component", os.stat, c.p(n256, "x"))
    c.ls("listing", c.root)


@case
def long_paths(c):
    d = os.open(c.root, os.O_RDONLY)
    comp, path = "p" * 250, ""
    for _ in range(16):
        path = os.path.join(path, comp) if path else comp
        os.mkdir(path, dir_fd=d)
    rest = 4095 - len(path) - 1
    c.rec("relative path length", len(path) + 1 + rest)
    c.open("create at PATH_MAX - 1", path + "/" + "q" * rest, os.O_CREAT | os.O_WRONLY)
    c.do("stat at PATH_MAX - 1", os.stat, path + "/" + "q" * rest, dir_fd=d)
    c.do("path of PATH_MAX", os.stat, path + "/" + "q" * (rest + 1), dir_fd=d)
    c.do("mkdir at PATH_MAX", os.mkdir, path + "/" + "q" * (rest + 1), dir_fd=d)
    c.do("symlink at PATH_MAX - 1", os.symlink, "x", path + "/" + "s" * rest, dir_fd=d)
    os.close(d)


@case
def sticky(c):
    s = c.p("s")
    os.mkdir(s)
    os.chmod(s, 0o1777)
    wfile(c.p("s", "rootf"), b"r")
    os.mkdir(c.p("s", "rootd"))
    o = c.p("o")  # a sticky dir owned by USER2
    os.mkdir(o)
    os.chmod(o, 0o1777)
    os.chown(o, USER2, USER2)

    def user1(u):
        wfile(u.p("s", "u1"), b"1")
        wfile(u.p("o", "u1"), b"1")
    c.as_user(USER, user1)

    def user2(u):
        u.do("unlink root's file in a sticky dir", os.unlink, u.p("s", "rootf"))
        u.do("rename root's file in a sticky dir", os.rename, u.p("s", "rootf"), u.p("s", "mine"))
        u.do("rmdir root's dir in a sticky dir", os.rmdir, u.p("s", "rootd"))
        u.do("unlink another user's file in a sticky dir", os.unlink, u.p("s", "u1"))
        wfile(u.p("s", "own"), b"2")
        u.do("rename own file over another user's", os.rename, u.p("s", "own"), u.p("s", "u1"))
        u.do("unlink own file", os.unlink, u.p("s", "own"))
        u.do("the dir's owner unlinks another user's file", os.unlink, u.p("o", "u1"))
    c.as_user(USER2, user2)
    c.do("root unlinks a user's file", os.unlink, c.p("s", "u1"))
    c.ls("listing s", s)
    c.ls("listing o", o)


@case
def permissions(c):
    def mk(name, mode, data=b"x", uid=0, gid=0):
        wfile(c.p(name), data)
        os.chown(c.p(name), uid, gid)
        os.chmod(c.p(name), mode)

    def mkd(name, mode, uid=0, gid=0):
        os.mkdir(c.p(name))
        wfile(c.p(name, "inner"), b"in")
        os.chown(c.p(name), uid, gid)
        os.chmod(c.p(name), mode)
    mkd("priv", 0o700)
    mkd("ronly", 0o744)
    mkd("xonly", 0o711)
    mkd("open", 0o777)
    mkd("root755", 0o755)
    mk("secret", 0o600)
    mk("pub", 0o644)
    mk("world", 0o666)
    mk("suid", 0o6777)
    mk("grp", 0o640, gid=USER)
    mk("own0444", 0o444, uid=USER, gid=USER)
    mk("own0070", 0o070, uid=USER, gid=USER)
    mk("ownroot", 0o755, uid=USER, gid=0)

    def user(u):
        u.do("list a 0700 root dir", os.listdir, u.p("priv"))
        u.do("stat inside a 0700 root dir", os.stat, u.p("priv", "inner"))
        u.val("list a 0744 root dir (r, no x)", os.listdir, u.p("ronly"))
        u.do("stat inside a 0744 root dir", os.stat, u.p("ronly", "inner"))
        u.do("list a 0711 root dir", os.listdir, u.p("xonly"))
        u.val("read inside a 0711 root dir", rbytes, u.p("xonly", "inner"))
        u.do("read a 0600 root file", rbytes, u.p("secret"))
        u.do("open a 0644 root file for writing", os.open, u.p("pub"), os.O_WRONLY)
        u.do("O_TRUNC a 0644 root file", os.open, u.p("pub"), os.O_RDONLY | os.O_TRUNC)
        u.do("truncate a 0644 root file", os.truncate, u.p("pub"), 0)
        u.do("create in a 0755 root dir", os.open, u.p("root755", "new"), os.O_CREAT | os.O_WRONLY, 0o644)
        u.do("mkdir in a 0755 root dir", os.mkdir, u.p("root755", "newd"))
        u.do("unlink in a 0755 root dir", os.unlink, u.p("root755", "inner"))
        u.do("rename out of a 0755 root dir", os.rename, u.p("root755", "inner"), u.p("open", "stolen"))
        u.do("write to an own 0444 file", os.open, u.p("own0444"), os.O_WRONLY)
        u.do("chmod an own file", os.chmod, u.p("own0444"), 0o644)
        u.do("then write to it", os.open, u.p("own0444"), os.O_WRONLY)
        u.do("read an own 0070 file (owner bits apply)", rbytes, u.p("own0070"))
        u.val("read a 0640 root file of its group", rbytes, u.p("grp"))
        u.do("chmod a root file", os.chmod, u.p("pub"), 0o666)
        u.do("chown an own file to root", os.chown, u.p("own0444"), 0, -1)
        u.do("chgrp an own file to a group it is not in", os.chown, u.p("own0444"), -1, USER2)
        u.do("chgrp an own file to its group", os.chown, u.p("ownroot"), -1, USER)
        u.do("chown an own file to itself", os.chown, u.p("own0444"), USER, USER)
        u.do("chmod g+s on an own file of another group", os.chmod, u.p("own0070"), 0o2755)
        u.do("utime now on a 0666 root file", os.utime, u.p("world"))
        u.do("utime explicit on a 0666 root file", os.utime, u.p("world"), ns=(1, 1))
        u.do("utime now on a 0644 root file", os.utime, u.p("pub"))
        u.do("utime UTIME_OMIT on a 0644 root file", utimensat, u.p("pub"), UTIME_OMIT, UTIME_OMIT)
        u.rec("access W_OK on a 0644 root file", os.access(u.p("pub"), os.W_OK))
        u.rec("access R_OK on a 0644 root file", os.access(u.p("pub"), os.R_OK))
        u.rec("access X_OK on a 0644 root file", os.access(u.p("pub"), os.X_OK))
        u.rec("access W_OK on a 0666 root file", os.access(u.p("world"), os.W_OK))
        u.do("O_NOATIME on a root file", os.open, u.p("pub"), os.O_RDONLY | os.O_NOATIME)
        u.do("setxattr user.* on a 0644 root file", os.setxattr, u.p("pub"), "user.u", b"1")
        u.do("setxattr user.* on a 0666 root file", os.setxattr, u.p("world"), "user.u", b"1")
        u.do("setxattr trusted.* on an own file", os.setxattr, u.p("own0444"), "trusted.u", b"1")
        u.do("setxattr security.* on an own file", os.setxattr, u.p("own0444"), "security.u", b"1")
        u.do("getxattr trusted.* of a root file", os.getxattr, u.p("world"), "trusted.r")
        u.val("listxattr of a root file", lambda p: sorted(os.listxattr(p)), u.p("world"))
        u.do("write to a 06777 root file", write_once, u.p("suid"), b"u")
    os.setxattr(c.p("world"), "trusted.r", b"t")
    os.setxattr(c.p("world"), "user.r", b"u")
    c.as_user(USER, user)
    for n in ("pub", "world", "suid", "own0444", "own0070", "ownroot"):
        c.st("after the user: " + n, c.p(n))
    c.ls("listing open", c.p("open"))
    c.ls("listing root755", c.p("root755"))
    c.xattrs("xattrs of world", c.p("world"))


@case
def privilege_bits(c):
    os.chmod(c.root, 0o777)
    wfile(c.p("f"), b"data")
    os.chmod(c.p("f"), 0o6777)
    wfile(c.p("g"), b"data")
    os.chmod(c.p("g"), 0o6777)
    wfile(c.p("h"), b"data")
    os.chmod(c.p("h"), 0o2767)
    c.as_user(USER, lambda u: u.do("truncate a 06777 root file", os.truncate, u.p("f"), 1))
    c.st("truncate by another user clears setuid/setgid", c.p("f"))
    fd = os.open(c.p("g"), os.O_WRONLY)
    os.write(fd, b"root")
    os.close(fd)
    c.st("a write by root keeps them", c.p("g"))
    c.as_user(USER, lambda u: u.do("write to a 02767 root file", write_once, u.p("h"), b"u"))
    c.st("setgid without group exec after a write", c.p("h"))


@case
def times_of_ops(c):
    d, f = c.p("d"), c.p("d", "f")
    os.mkdir(d)
    wfile(f, b"0123456789")

    def op(label, fn, *paths):
        for p in paths:
            os.utime(p, ns=(10**18, 10**18))
        before = [times(p) for p in paths]
        time.sleep(0.012)
        fn()
        c.rec("times: " + label, " ".join("%s:%s" % (os.path.basename(p), changed(b, times(p)))
                                          for p, b in zip(paths, before)))

    def write():
        fd = os.open(f, os.O_WRONLY)
        os.pwrite(fd, b"w", 3)
        os.close(fd)
    op("create", lambda: wfile(c.p("d", "new"), b""), d)
    op("write", write, f, d)
    op("read: f", lambda: rbytes(f), f)
    op("read: d", lambda: rbytes(f), d)
    op("chmod", lambda: os.chmod(f, 0o600), f, d)
    op("link", lambda: os.link(f, c.p("d", "f2")), f, d)
    op("rename", lambda: os.rename(c.p("d", "f2"), c.p("d", "f3")), f, d)
    op("unlink", lambda: os.unlink(c.p("d", "f3")), f, d)
    op("truncate", lambda: os.truncate(f, 2), f, d)
    op("mkdir", lambda: os.mkdir(c.p("d", "sub")), d)
    op("rmdir", lambda: os.rmdir(c.p("d", "sub")), d)
    op("symlink", lambda: os.symlink("f", c.p("d", "l")), d)
    op("mkfifo", lambda: os.mkfifo(c.p("d", "p")), d)
    op("readdir: d", lambda: os.listdir(d), d)
    op("setxattr on a dir", lambda: os.setxattr(d, "user.x", b"1"), d)
    op("O_TRUNC of an empty file", lambda: os.close(os.open(c.p("d", "new"), os.O_WRONLY | os.O_TRUNC)),
       c.p("d", "new"))
    op("chown to the same owner", lambda: os.chown(f, 0, 0), f)


@case
def locks(c):
    import fcntl
    wfile(c.p("f"), b"x")
    a, b = os.open(c.p("f"), os.O_RDWR), os.open(c.p("f"), os.O_RDWR)
    c.do("flock LOCK_EX", fcntl.flock, a, fcntl.LOCK_EX)
    c.do("a second flock LOCK_EX|LOCK_NB", fcntl.flock, b, fcntl.LOCK_EX | fcntl.LOCK_NB)
    c.do("fcntl F_SETLK write lock", fcntl.lockf, a, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(a)
    os.close(b)


@case
def sync_calls(c):
    wfile(c.p("f"), b"x")
    fd = os.open(c.p("f"), os.O_RDWR)
    c.do("fsync", os.fsync, fd)
    c.do("fdatasync", os.fdatasync, fd)
    os.close(fd)
    fd = os.open(c.root, os.O_RDONLY)
    c.do("fsync of a dir", os.fsync, fd)
    os.close(fd)
    fd = os.open(c.p("f"), os.O_RDONLY)
    c.do("fsync of an O_RDONLY fd", os.fsync, fd)
    os.close(fd)


# =================================================================================== driver
def run_case(fn, root):
    d = os.path.join(root, fn.__name__)
    os.mkdir(d, 0o755)
    os.chmod(d, 0o755)
    r = Run(d)
    try:
        fn(r)
    except Exception:
        r.rec("HARNESS ERROR", traceback.format_exc())
    return r.obs


def compare(name, ref, dz, verbose):
    """Returns (failures, deliberate) as lists of lines."""
    fails, known = [], []
    for o in ref + dz:
        if o[0] == "HARNESS ERROR" or o[0].startswith("harness error"):
            fails.append("  %s: %s" % (o[0], o[1]))
    n = max(len(ref), len(dz))
    for i in range(n):
        r = ref[i] if i < len(ref) else ["<missing>", ""]
        z = dz[i] if i < len(dz) else ["<missing>", ""]
        if r == z:
            if verbose:
                print("    same  %s: %s" % (r[0], r[1]))
            continue
        key = "%s: %s" % (name, r[0])
        line = "  %s\n      ext4: %s\n      dzfs: %s" % (r[0] if r[0] == z[0] else "%s / %s" % (r[0], z[0]), r[1], z[1])
        if r[0] == z[0] and key in DELIBERATE:
            known.append(line + "\n      (deliberate: %s)" % DELIBERATE[key])
        else:
            fails.append(line)
    return fails, known


def main():
    args = sys.argv[1:]
    verbose = "-v" in args
    args = [a for a in args if a != "-v"]
    if "--list" in args:
        print("\n".join(f.__name__ for f in CASES))
        return 0
    only = None
    if "--only" in args:
        i = args.index("--only")
        only = set(args[i + 1].split(","))
        del args[i:i + 2]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    ref, dz = args
    os.umask(0o022)
    total = bad = deliberate = 0
    failed = []
    t0 = time.time()
    for fn in CASES:
        if only and fn.__name__ not in only:
            continue
        t = time.time()
        a = run_case(fn, ref)
        b = run_case(fn, dz)
        fails, known = compare(fn.__name__, a, b, verbose)
        total += len(a)
        bad += len(fails)
        deliberate += len(known)
        status = "FAIL" if fails else "PASS"
        print("%s %s (%d observations, %.2fs)" % (status, fn.__name__, len(a), time.time() - t))
        for line in fails:
            print(line)
        for line in known:
            print(line)
        if fails:
            failed.append(fn.__name__)
    print("%d cases, %d observations, %d divergences, %d deliberate differences, %.1fs" %
          (len([f for f in CASES if not only or f.__name__ in only]), total, bad, deliberate, time.time() - t0))
    if failed:
        print("failed cases: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
