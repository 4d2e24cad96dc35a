#!/usr/bin/env bash
# copy_file_range(2) inside a mount shares chunks instead of copying data: cp --reflink=auto of a
# 64 MiB file is fast (timed against a plain cp into the mount) and dzfs stats' unique bytes do
# not grow; python3's os.copy_file_range at odd offsets and lengths (partial chunks at both ends,
# a hole before the destination range, lengths past the source's end, same-file copies, an
# overlapping one refused with EINVAL) matches a reference computed in Python and also adds no
# unique bytes (a read/write fallback would: a shifted byte stream makes new first chunks).
# Writing the copy leaves the original as it was. Everything is compared again after a remount,
# and dzfs fsck (refcount = extents rows naming the chunk, every chunk's bytes) is clean.
. "$(dirname "$0")/lib.sh"
it_init copy_range 170

STORE=$IT_TMP/store MNT=$IT_TMP/mnt BIG=$IT_TMP/big
dz_mkfs "$STORE"
dz_mount "$STORE" "$MNT"

now() { date +%s.%N; }
# Rows of the chunks table, live and garbage: a copy that shares chunks adds none.
chunk_rows() { dz_stats "$MNT" | "$PY" -c 'import json,sys; o = json.load(sys.stdin); print(o["chunks"] + o["garbage_chunks"])'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

log "64 MiB of random bytes, then a plain cp into the mount"
head -c $((64 << 20)) /dev/urandom >"$BIG"
t0=$(now)
run_to 120 cp "$BIG" "$MNT/big"
t_plain=$(secs "$t0" "$(now)")
cmp "$BIG" "$MNT/big" || fail "the plain cp into the mount differs from its source"
unique0=$(dz_stat_key "$MNT" unique_chunk_bytes)
log "plain cp: ${t_plain}s; unique_chunk_bytes $unique0"

t0=$(now)
run_to 60 cp --reflink=auto "$MNT/big" "$MNT/big.copy"
t_reflink=$(secs "$t0" "$(now)")
cmp "$BIG" "$MNT/big.copy" || fail "cp --reflink=auto inside the mount: the copy differs"
unique1=$(dz_stat_key "$MNT" unique_chunk_bytes)
log "cp --reflink=auto inside the mount: ${t_reflink}s (plain cp into it: ${t_plain}s); unique_chunk_bytes $unique1"
[ "$unique1" -eq "$unique0" ] || fail "cp --reflink=auto grew unique_chunk_bytes from $unique0 to $unique1: data was copied, not shared"
# A copy that moves no data takes index rows only; a read/write copy of 64 MiB through FUSE costs
# at least what the plain cp did. Generous for a loaded machine: under a second or half the cp.
awk -v r="$t_reflink" -v p="$t_plain" 'BEGIN { exit !(r < 1.0 || r < p / 2) }' ||
  fail "cp --reflink=auto took ${t_reflink}s, the plain cp into the mount ${t_plain}s: not a copy without data"

log "os.copy_file_range at odd offsets against a Python reference"
# d2 gets its own random content first, so that the copies' effect on unique bytes is exact.
head -c 3000000 /dev/urandom >"$IT_TMP/d2.init"
cp "$IT_TMP/d2.init" "$MNT/d2"
unique_d2=$(dz_stat_key "$MNT" unique_chunk_bytes)
rows_d2=$(chunk_rows)
run_to 120 "$PY" - "$MNT" "$IT_TMP" <<'EOF'
import errno, os, sys

mnt, tmp = sys.argv[1], sys.argv[2]
ref_big = open(os.path.join(tmp, "big"), "rb").read()

def copy(fi, fo, n, oi, oo):
    """copy_file_range until n bytes are done or it returns 0 (the source's end)."""
    done = 0
    while done < n:
        k = os.copy_file_range(fi, fo, n - done, oi + done, oo + done)
        if k == 0:
            break
        done += k
    return done

def model(src, oi, dst, oo, n):
    if oi >= len(src):
        return 0
    k = min(n, len(src) - oi)
    piece = bytes(src[oi:oi + k])  # before dst changes: src may be dst
    if len(dst) < oo + k:
        dst.extend(b"\0" * (oo + k - len(dst)))
    dst[oo:oo + k] = piece
    return k

def check(path, want, what):
    got = open(path, "rb").read()
    if got != bytes(want):
        i = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        sys.exit("%s: %s differs from the reference (sizes %d, %d; first difference at %d)" % (what, path, len(got), len(want), i))

big = os.open(os.path.join(mnt, "big"), os.O_RDONLY)
d1_path, d2_path = os.path.join(mnt, "d1"), os.path.join(mnt, "d2")
d1 = bytearray()
d2 = bytearray(open(os.path.join(tmp, "d2.init"), "rb").read())
with open(d1_path, "wb"):
    pass
fd1 = os.open(d1_path, os.O_RDWR)
fd2 = os.open(d2_path, os.O_RDWR)
n = len(ref_big)
cases = [  # (off_in, off_out, len)
    (0, 0, 1),
    (1, 1, 65_535),
    (65_535, 3, 131_073),
    (12_345, 2_000_001, 1_000_003),  # past the destination's end: a hole before it
    (33_554_431, 777, 5_000_001),
    (n - 10, 5, 1000),               # clipped at the source's end
    (n, 0, 10),                      # at the source's end: nothing
    (n + 4096, 0, 10),               # past it: nothing
    (7, 4_100_000, 9_999_999),
]
for i, (oi, oo, ln) in enumerate(cases):
    fd, dst = (fd1, d1) if i % 2 == 0 else (fd2, d2)
    got = copy(big, fd, ln, oi, oo)
    want = model(ref_big, oi, dst, oo, ln)
    if got != want:
        sys.exit("case %d %r: copy_file_range copied %d bytes, expected %d" % (i, (oi, oo, ln), got, want))
# Within one file: ranges that touch but do not overlap, then one past the end.
for oi, oo, ln in [(0, 1_000_000, 1_000_000), (5, len(d2) + 4097, 777_777)]:
    got = copy(fd2, fd2, ln, oi, oo)
    want = model(d2, oi, d2, oo, ln)
    if got != want:
        sys.exit("same-file copy %r: copied %d, expected %d" % ((oi, oo, ln), got, want))
try:
    os.copy_file_range(fd2, fd2, 10_000, 0, 5_000)
    sys.exit("an overlapping same-file copy_file_range succeeded (expected EINVAL)")
except OSError as e:
    if e.errno != errno.EINVAL:
        sys.exit("overlapping same-file copy_file_range: %s (expected EINVAL)" % e)
for fd in (fd1, fd2, big):
    os.close(fd)
check(d1_path, d1, "after the copies")
check(d2_path, d2, "after the copies")
open(os.path.join(tmp, "d1.ref"), "wb").write(d1)
open(os.path.join(tmp, "d2.ref"), "wb").write(d2)
EOF
cmp "$BIG" "$MNT/big" || fail "the source changed during the copies"
# The copies overwrote parts of d2, so its own chunks may have become garbage (unique bytes fall);
# a copy that moved data would store the shifted streams' first chunks anew (rows and bytes grow).
unique2=$(dz_stat_key "$MNT" unique_chunk_bytes)
rows2=$(chunk_rows)
[ "$unique2" -le "$unique_d2" ] && [ "$rows2" -le "$rows_d2" ] ||
  fail "odd-offset copies grew the chunks: unique_chunk_bytes $unique_d2 -> $unique2, chunk rows $rows_d2 -> $rows2: copied, not shared"
log "odd-offset copies ok; unique_chunk_bytes $unique_d2 -> $unique2, chunk rows $rows_d2 -> $rows2"

log "writing the copy leaves the original alone"
cp "$BIG" "$IT_TMP/big.copy.ref"
"$PY" - "$MNT/big.copy" "$IT_TMP/big.copy.ref" <<'EOF'
import os, sys
patch = os.urandom(100_001)
for path in sys.argv[1:]:
    with open(path, "r+b") as f:
        for off in (0, 1_000_003, 40 << 20):
            f.seek(off)
            f.write(patch)
        f.seek(0, 2)
        f.write(patch)
EOF
cmp "$IT_TMP/big.copy.ref" "$MNT/big.copy" || fail "the modified copy differs from its reference"
cmp "$BIG" "$MNT/big" || fail "writing the copy changed the original"

check_all() {
  cmp "$BIG" "$MNT/big" || fail "$1: big differs"
  cmp "$IT_TMP/big.copy.ref" "$MNT/big.copy" || fail "$1: big.copy differs"
  cmp "$IT_TMP/d1.ref" "$MNT/d1" || fail "$1: d1 differs"
  cmp "$IT_TMP/d2.ref" "$MNT/d2" || fail "$1: d2 differs"
}
log "umount + remount"
dz_remount "$STORE" "$MNT"
check_all "after remount"
dz_umount "$MNT" "$STORE"
dz_fsck "$STORE"
log "timings: plain cp of 64 MiB into the mount ${t_plain}s, cp --reflink=auto inside it ${t_reflink}s"
