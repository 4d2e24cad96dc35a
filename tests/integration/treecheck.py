#!/usr/bin/env python3
"""Tree builder and comparison walker for the dzfs integration tests (stdlib only).

  treecheck.py build-rich DIR        every kind of entry rsync -aHAX can carry (needs root)
  treecheck.py gen DIR [options]     a deterministic text-like + random data tree
  treecheck.py snapshot DIR          the walker's record of DIR as JSON on stdout
  treecheck.py compare EXPECTED GOT [--ignore f1,f2] [--strict-dir-nlink]
                                     walk both and print every difference; exit 1 if any

The walker records, per entry (relative path, no symlinks followed): type, mode, uid, gid,
nlink, size, mtime_ns, rdev, xattrs (every namespace, raw values), symlink target, SHA-256 of
regular file contents and the hard link group (the other paths sharing the inode).
Directory sizes are not compared (fs-specific); directory nlink only warns unless
--strict-dir-nlink (POSIX does not fix it; btrfs reports 1).
"""
import argparse
import errno
import hashlib
import json
import os
import random
import stat
import subprocess
import sys

FIELDS = ["type", "mode", "uid", "gid", "nlink", "size", "mtime_ns", "rdev", "xattrs", "target",
          "sha256", "links"]


# ------------------------------------------------------------------------------------ walker
def ftype(m):
    for t, f in (("dir", stat.S_ISDIR), ("file", stat.S_ISREG), ("symlink", stat.S_ISLNK),
                 ("fifo", stat.S_ISFIFO), ("chr", stat.S_ISCHR), ("blk", stat.S_ISBLK),
                 ("sock", stat.S_ISSOCK)):
        if f(m):
            return t
    return "?"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def xattrs_of(path):
    out = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return out
        raise
    for n in sorted(names):
        try:
            out[n] = os.getxattr(path, n, follow_symlinks=False).hex()
        except OSError as e:
            out[n] = "<error %s>" % errno.errorcode.get(e.errno, e.errno)
    return out


def walk(root):
    """{relpath: record}. Reads every regular file in full."""
    recs = {}
    inodes = {}

    def visit(rel):
        p = os.path.join(root, rel) if rel else root
        st = os.lstat(p)
        t = ftype(st.st_mode)
        r = {"type": t, "mode": oct(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
             "nlink": st.st_nlink, "mtime_ns": st.st_mtime_ns, "xattrs": xattrs_of(p)}
        if t in ("file", "symlink"):
            r["size"] = st.st_size
        if t in ("chr", "blk"):
            r["rdev"] = "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
        if t == "symlink":
            r["target"] = os.fsencode(os.readlink(p)).hex()
        if t == "file":
            try:
                r["sha256"] = sha256_file(p)
            except OSError as e:
                r["sha256"] = "<read error %s>" % errno.errorcode.get(e.errno, e.errno)
        if t != "dir":
            inodes.setdefault((st.st_dev, st.st_ino), []).append(rel or ".")
        recs[rel or "."] = r
        if t == "dir":
            with os.scandir(p) as it:
                names = sorted(e.name for e in it)
            for n in names:
                visit(os.path.join(rel, n) if rel else n)

    visit("")
    for paths in inodes.values():
        for p in paths:
            recs[p]["links"] = sorted(q for q in paths if q != p)
    return recs


def show(v, field):
    if field == "target" and isinstance(v, str):
        try:
            return repr(bytes.fromhex(v).decode("utf-8", "surrogateescape"))
        except ValueError:
            return v
    if field == "xattrs" and isinstance(v, dict):
        return "{" + ", ".join("%s=%s" % (k, (x[:40] + "..") if len(x) > 40 else x) for k, x in v.items()) + "}"
    return repr(v)


def compare(a, b, ignore=(), strict_dir_nlink=False, limit=60):
    ra, rb = walk(a), walk(b)
    diffs, warns = [], []
    for p in sorted(set(ra) | set(rb)):
        if p not in rb:
            diffs.append("%r: missing (expected %s)" % (p, ra[p]["type"]))
            continue
        if p not in ra:
            diffs.append("%r: unexpected extra %s" % (p, rb[p]["type"]))
            continue
        x, y = ra[p], rb[p]
        for f in FIELDS:
            if f in ignore:
                continue
            vx, vy = x.get(f), y.get(f)
            if vx == vy:
                continue
            if f == "nlink" and x["type"] == "dir" and not strict_dir_nlink:
                warns.append("%r: directory nlink expected %s got %s (warning only)" % (p, vx, vy))
                continue
            if f == "xattrs" and isinstance(vx, dict) and isinstance(vy, dict):
                for k in sorted(set(vx) | set(vy)):
                    if vx.get(k) != vy.get(k):
                        diffs.append("%r: xattr %s expected %s got %s" % (
                            p, k, show(vx.get(k), "") if k in vx else "<absent>",
                            show(vy.get(k), "") if k in vy else "<absent>"))
                continue
            diffs.append("%r: %s expected %s got %s" % (p, f, show(vx, f), show(vy, f)))
    for w in warns[:10]:
        print("warning: " + w)
    if len(warns) > 10:
        print("warning: ... %d more directory nlink warnings" % (len(warns) - 10))
    for d in diffs[:limit]:
        print(d)
    if len(diffs) > limit:
        print("... and %d more differences" % (len(diffs) - limit))
    print("compared %d entries: %d differences" % (len(ra), len(diffs)), file=sys.stderr)
    return not diffs


# ---------------------------------------------------------------------------------- builders
WORDS = None
CUM = None


def text_bytes(rng, n):
    """Compressible, text-like bytes (a Zipf-ish vocabulary of pseudo-words in lines)."""
    global WORDS, CUM
    if WORDS is None:
        r = random.Random(12345)
        WORDS = ["".join(r.choice("etaoinshrdlucmfwypvbgkqjxz") for _ in range(r.randint(2, 10)))
                 for _ in range(3000)]
        CUM, acc = [], 0.0
        for i in range(len(WORDS)):
            acc += 1.0 / (i + 1)
            CUM.append(acc)
    words = rng.choices(WORDS, cum_weights=CUM, k=n // 5 + 16)
    parts, i = [], 0
    while i < len(words):
        k = 4 + (len(words[i]) * 7 + i) % 11
        parts.append(" ".join(words[i:i + k]).capitalize() + ".\n")
        i += k
    out = "".join(parts).encode()
    while len(out) < n:
        out += out
    return out[:n]


def write(path, data, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)


def run(*cmd):
    subprocess.run(cmd, check=True)


def build_rich(root):
    rng = random.Random(20260101)
    j = lambda *p: os.path.join(root, *p)
    os.makedirs(root, exist_ok=True)

    # Regular files of several sizes.
    write(j("files", "empty"), b"")
    write(j("files", "small.txt"), b"hello, dzfs\n")
    write(j("files", "4k.bin"), rng.randbytes(4096))
    write(j("files", "64k_plus_1.bin"), rng.randbytes(65537))
    write(j("files", "random_3m.bin"), rng.randbytes(3 * 1024 * 1024 + 17))
    write(j("files", "text_3m.txt"), text_bytes(rng, 3 * 1024 * 1024 - 5))
    write(j("files", "zeros_1m.bin"), bytes(1 << 20))           # written zeros, not a hole
    # Same content twice under different names (dedup), not linked.
    dup = rng.randbytes(300000)
    write(j("files", "dup_a.bin"), dup)
    write(j("files", "dup_b.bin"), dup)

    # Hard links across directories: a group of 3 and a group of 2.
    write(j("hl", "a", "one"), rng.randbytes(100000))
    os.makedirs(j("hl", "b", "c"), exist_ok=True)
    os.link(j("hl", "a", "one"), j("hl", "b", "c", "two"))
    os.link(j("hl", "a", "one"), j("files", "hl_three"))
    write(j("hl", "x"), b"two names\n")
    os.link(j("hl", "x"), j("hl", "b", "y"))

    # Symlinks: relative, absolute, dangling, to a directory, a long target, a loop.
    os.makedirs(j("sym"), exist_ok=True)
    os.symlink("../files/small.txt", j("sym", "rel"))
    os.symlink("/etc/hostname", j("sym", "abs"))
    os.symlink("nowhere/none", j("sym", "dangling"))
    os.symlink("../files", j("sym", "dir"))
    os.symlink("long/" * 200 + "end", j("sym", "long_target"))
    os.symlink("loop", j("sym", "loop"))

    # Extended attributes in several namespaces (user, trusted, security), on a file and a dir.
    write(j("xattr", "f"), b"file with xattrs\n")
    p = j("xattr", "f")
    os.setxattr(p, "user.comment", b"hello")
    os.setxattr(p, "user.binary", b"\x00\x01\xfe\xff" * 8)
    os.setxattr(p, "user.empty", b"")
    os.setxattr(p, "user.big", rng.randbytes(2000))
    os.setxattr(p, "trusted.dzfs_test", b"root only")
    os.setxattr(p, "security.dzfs_test", b"sec")
    os.makedirs(j("xattr", "d"), exist_ok=True)
    os.setxattr(j("xattr", "d"), "user.on_dir", b"dir value")
    os.setxattr(j("xattr", "d"), "trusted.on_dir", b"t")

    # POSIX ACLs: an access ACL on a file, access + default ACL on a directory.
    write(j("acl", "f"), b"acl file\n")
    run("setfacl", "-m", "u:1234:rwx,g:4321:r-x,m::rwx", j("acl", "f"))
    os.makedirs(j("acl", "d"), exist_ok=True)
    run("setfacl", "-m", "u:1234:rx", j("acl", "d"))
    run("setfacl", "-d", "-m", "u:1234:rwx,g::r-x,o::---", j("acl", "d"))

    # FIFO and device nodes (a minor number over 255 tests the new dev_t encoding).
    os.makedirs(j("special"), exist_ok=True)
    os.mkfifo(j("special", "fifo"), 0o640)
    os.mknod(j("special", "null_c"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(j("special", "loop_b"), 0o660 | stat.S_IFBLK, os.makedev(7, 200))
    os.mknod(j("special", "big_minor_c"), 0o600 | stat.S_IFCHR, os.makedev(250, 70000))
    # trusted.* xattrs on a symlink and a FIFO (user.* is not allowed there)
    os.setxattr(j("sym", "rel"), "trusted.on_link", b"link xattr", follow_symlinks=False)
    os.setxattr(j("special", "fifo"), "trusted.on_fifo", b"fifo xattr", follow_symlinks=False)

    # Sparse files: data, hole, data, hole at the end; and one that is all hole.
    os.makedirs(j("sparse"), exist_ok=True)
    with open(j("sparse", "holes"), "wb") as f:
        f.write(rng.randbytes(4096))
        f.seek(8 << 20)
        f.write(rng.randbytes(4096))
        f.truncate(16 << 20)
    with open(j("sparse", "all_hole"), "wb") as f:
        f.truncate(5 << 20)

    # Names: unicode, 255-byte names (ASCII and multibyte), odd characters.
    names = ["héllo wörld.txt", "日本語のファイル名", "🚀 rocket.bin", "new\nline", "-dash", " lead and trail ",
             "back\\slash", "*?[glob]", ".hidden", "tab\there", "n" * 255, "é" * 127 + "x"]
    for n in names:
        assert len(os.fsencode(n)) <= 255
        write(j("names", n), ("name: %s\n" % n).encode())
    os.makedirs(j("names", "d" * 255), exist_ok=True)
    write(j("names", "d" * 255, "inside"), b"inside a 255-byte dir name\n")

    # 40 levels of nesting.
    deep = j("deep", *["d%02d" % i for i in range(40)])
    write(os.path.join(deep, "leaf.txt"), b"forty levels down\n")

    # Odd permissions and owners.
    write(j("perms", "mode000"), b"nobody may read\n", 0o000)
    write(j("perms", "setuid"), b"#!/bin/sh\n", 0o4755)
    write(j("perms", "setgid_file"), b"x\n", 0o2710)
    os.makedirs(j("perms", "setgid_dir"), exist_ok=True)
    os.chmod(j("perms", "setgid_dir"), 0o2775)
    os.makedirs(j("perms", "sticky"), exist_ok=True)
    os.chmod(j("perms", "sticky"), 0o1777)
    write(j("perms", "ro_dir", "inside"), b"in a read-only dir\n")
    os.chmod(j("perms", "ro_dir"), 0o555)
    write(j("perms", "owned"), b"owned by 1234\n", 0o640)
    os.chown(j("perms", "owned"), 1234, 5678)
    os.makedirs(j("perms", "owned_dir"), exist_ok=True)
    os.chown(j("perms", "owned_dir"), 1234, 1234)
    os.symlink("owned", j("perms", "owned_link"))
    os.lchown(j("perms", "owned_link"), 1234, 4321)
    write(j("perms", "nobody"), b"65534\n")
    os.chown(j("perms", "nobody"), 65534, 65534)
    write(j("perms", "big_ids"), b"ids over 2^31\n")
    os.chown(j("perms", "big_ids"), 3000000000, 3000000001)
    # chown clears set-id bits: set them again afterwards.
    write(j("perms", "setuid_owned"), b"#!/bin/sh\n")
    os.chown(j("perms", "setuid_owned"), 1234, 1234)
    os.chmod(j("perms", "setuid_owned"), 0o6755)

    # Nanosecond mtimes (touch -d), past and beyond 2038, on files, a symlink and directories.
    os.makedirs(j("times"), exist_ok=True)
    for name, when in (("t2001", "2001-02-03 04:05:06.123456789 UTC"),
                       ("t2040", "2040-06-07 08:09:10.987654321 UTC"),
                       ("t1970", "1970-01-01 00:00:01.000000001 UTC"),
                       ("tnow", None)):
        write(j("times", name), name.encode())
        if when:
            run("touch", "-m", "-d", when, j("times", name))
    os.symlink("t2001", j("times", "link"))
    run("touch", "-h", "-m", "-d", "2005-05-05 05:05:05.555555555 UTC", j("times", "link"))

    # Give every other entry a distinct past time with nanoseconds: rsync does not copy a time it
    # sees as equal to the new entry's, and entries made this second would look equal to it.
    # Directory times last (children change them), deepest first.
    entries, dirs = [], []
    for dp, dn, fn in os.walk(root):
        dirs.append(dp)
        entries += [os.path.join(dp, n) for n in fn + [d for d in dn if os.path.islink(os.path.join(dp, d))]]
    for i, e in enumerate(sorted(entries)):
        if os.path.dirname(e) != j("times"):
            os.utime(e, ns=(1500000000_000000000 + i * 1000003, 1500000000_000000000 + i * 999983 + 11),
                     follow_symlinks=False)
    for i, d in enumerate(sorted(dirs, key=lambda d: -d.count(os.sep))):
        os.utime(d, ns=(1600000000_000000000 + i, 1600000000_000000000 + i * 1000 + 7), follow_symlinks=False)


def gen(root, seed, text_files, text_size, rand_files, rand_size, small_files):
    """Deterministic tree: text-like files, random files, small files."""
    rng = random.Random(seed)
    for i in range(text_files):
        write(os.path.join(root, "text", "t%02d.txt" % i), text_bytes(rng, text_size))
    for i in range(rand_files):
        write(os.path.join(root, "rand", "r%02d.bin" % i), rng.randbytes(rand_size))
    for i in range(small_files):
        d = os.path.join(root, "small", "s%d" % (i % 5))
        n = rng.randint(0, 20000)
        data = text_bytes(rng, n) if i % 2 else rng.randbytes(n)
        write(os.path.join(d, "f%03d" % i), data)


def size_arg(s):
    s = s.strip().upper()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1:], 1)
    return int(float(s.rstrip("KMG")) * mult)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build-rich")
    b.add_argument("dir")
    g = sub.add_parser("gen")
    g.add_argument("dir")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--text-files", type=int, default=8)
    g.add_argument("--text-size", type=size_arg, default=1 << 20)
    g.add_argument("--rand-files", type=int, default=4)
    g.add_argument("--rand-size", type=size_arg, default=2 << 20)
    g.add_argument("--small-files", type=int, default=40)
    s = sub.add_parser("snapshot")
    s.add_argument("dir")
    c = sub.add_parser("compare")
    c.add_argument("expected")
    c.add_argument("got")
    c.add_argument("--ignore", default="")
    c.add_argument("--strict-dir-nlink", action="store_true")
    a = ap.parse_args()
    if a.cmd == "build-rich":
        build_rich(a.dir)
    elif a.cmd == "gen":
        gen(a.dir, a.seed, a.text_files, a.text_size, a.rand_files, a.rand_size, a.small_files)
    elif a.cmd == "snapshot":
        json.dump(walk(a.dir), sys.stdout, indent=1, sort_keys=True)
        print()
    elif a.cmd == "compare":
        ign = [f for f in a.ignore.split(",") if f]
        bad = [f for f in ign if f not in FIELDS]
        if bad:
            sys.exit("unknown field(s) %s; fields: %s" % (bad, FIELDS))
        sys.exit(0 if compare(a.expected, a.got, ign, a.strict_dir_nlink) else 1)


if __name__ == "__main__":
    main()
