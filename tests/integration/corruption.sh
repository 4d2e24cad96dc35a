#!/usr/bin/env bash
# A flipped byte inside a pack file: reads of the affected file fail with EIO, never wrong data,
# and the other files read fine.
#  1. Incompressible random files are stored raw, so their bytes can be found in the pack with
#     bytes.find: flip one byte in the middle of b.bin's data. b.bin (and d.bin, a copy of it that
#     dedup stores once) must fail with EIO; a.bin, c.bin and a text file read back exactly.
#     If b.bin's bytes cannot be found verbatim, a byte in the middle of the largest pack is
#     flipped instead: then at least one file must fail with EIO and none may read wrong.
#  2. A volume holding one compressible (zstd-compressed) text file: flip a byte in the middle of
#     its pack; the file must fail with EIO.
. "$(dirname "$0")/lib.sh"
it_init corruption 120

STORE=$IT_TMP/store MNT=$IT_TMP/mnt REF=$IT_TMP/ref
mkdir -p "$REF"
"$PY" - "$REF" <<'EOF'
import os, random, sys, shutil
ref = sys.argv[1]
r = random.Random(4242)
for n in ("a", "b", "c"):
    open(os.path.join(ref, n + ".bin"), "wb").write(r.randbytes(256 * 1024))
shutil.copyfile(os.path.join(ref, "b.bin"), os.path.join(ref, "d.bin"))
words = [("w%d" % i).encode() for i in range(500)]
open(os.path.join(ref, "text.txt"), "wb").write(b" ".join(r.choice(words) for _ in range(120000)))
EOF
dz_mkfs "$STORE"
dz_mount "$STORE" "$MNT"
cp "$REF"/* "$MNT/"
dz_umount "$MNT" "$STORE"

# flip STORE [REFFILE]: flip a byte inside REFFILE's data as stored (or blind, in the middle of the
# largest pack); prints "raw|blind PACK OFFSET".
flip() {
  "$PY" - "$@" <<'EOF'
import glob, os, sys
store, ref = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None
packs = sorted(glob.glob(os.path.join(store, "packs", "*.pack")))
if not packs:
    sys.exit("no pack files in %s/packs" % store)
def flip_at(path, pos):
    with open(path, "r+b") as f:
        f.seek(pos); b = f.read(1); f.seek(pos); f.write(bytes([b[0] ^ 0xFF]))
if ref:
    data = open(ref, "rb").read()
    needle = data[100000:100064]
    hits = []
    for p in packs:
        blob = open(p, "rb").read()
        i = blob.find(needle)
        while i >= 0:
            hits.append((p, i)); i = blob.find(needle, i + 1)
    if len(hits) == 1:
        p, i = hits[0]
        flip_at(p, i + 32)
        print("raw %s %d" % (os.path.basename(p), i + 32))
        sys.exit(0)
    print("note: %d verbatim copies of b.bin's bytes 100000..100064 in the packs; flipping blind" % len(hits), file=sys.stderr)
p = max(packs, key=os.path.getsize)
if os.path.getsize(p) == 0:
    sys.exit("all pack files are empty")
pos = os.path.getsize(p) // 2
flip_at(p, pos)
print("blind %s %d" % (os.path.basename(p), pos))
EOF
}

# read_all MNT FILE...: per file "name ok|eio|wrong|<errno>" comparing with $REF.
read_all() {
  timeout -k 5 60 "$PY" - "$REF" "$@" <<'EOF'
import errno, os, sys
ref, mnt = sys.argv[1], sys.argv[2]
for n in sys.argv[3:]:
    want = open(os.path.join(ref, n), "rb").read()
    try:
        with open(os.path.join(mnt, n), "rb", buffering=0) as f:
            got = b""
            while True:
                b = f.read(1 << 20)
                if not b: break
                got += b
        print(n, "ok" if got == want else "WRONG_DATA(len %d vs %d, first diff at %s)" % (
            len(got), len(want), next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), "end")))
    except OSError as e:
        print(n, "eio" if e.errno == errno.EIO else "error:" + errno.errorcode.get(e.errno, str(e.errno)))
EOF
}

where=$(flip "$STORE" "$REF/b.bin") || fail "could not flip a byte in $STORE/packs: $(ls -l "$STORE/packs")"
log "case 1: flipped a byte: $where"
dz_mount "$STORE" "$MNT"
res=$(read_all "$MNT" a.bin b.bin c.bin d.bin text.txt)
log "case 1 reads: $(tr '\n' ';' <<<"$res")"
grep -q WRONG_DATA <<<"$res" && fail "case 1 ($where): a read returned wrong data instead of EIO: $res"
grep -q 'error:' <<<"$res" && fail "case 1 ($where): a read failed with an errno other than EIO: $res"
case "$where" in
  raw*)
    grep -qx 'b.bin eio' <<<"$res" || fail "case 1: byte flipped inside b.bin's stored data ($where): reading b.bin should fail with EIO; got: $(grep ^b.bin <<<"$res")"
    for f in a.bin c.bin text.txt; do
      grep -qx "$f ok" <<<"$res" || fail "case 1: $f does not share b.bin's chunks but did not read back intact: $(grep "^$f" <<<"$res")"
    done
    # cat reports the error too (non-zero exit, "Input/output error").
    rc=0; err=$(timeout 20 cat "$MNT/b.bin" 2>&1 >/dev/null) || rc=$?
    [ "$rc" -ne 0 ] && grep -qi 'input/output error' <<<"$err" || fail "case 1: cat b.bin: exit $rc, stderr '$err' (expected an Input/output error)"
    ;;
  *)
    grep -q ' eio$' <<<"$res" || fail "case 1 ($where): no file failed with EIO after a byte in the middle of the largest pack was flipped: $res"
    ;;
esac
# The daemon is still serving after the errors.
res2=$(read_all "$MNT" a.bin c.bin)
[ "$(grep -c ' ok$' <<<"$res2")" -eq 2 ] || fail "case 1: after the EIO, a.bin/c.bin no longer read: $res2"
dz_stats "$MNT" >/dev/null
dz_umount "$MNT" "$STORE"
dz_fsck "$STORE" 4   # fsck must find the flipped byte

# ---- case 2: one compressed text file
S2=$IT_TMP/store2
rm -rf "$REF"/*.bin
dz_mkfs "$S2"
dz_mount "$S2" "$MNT"
cp "$REF/text.txt" "$MNT/"
dz_umount "$MNT" "$S2"
tsize=$(stat -c %s "$REF/text.txt")
where=$(flip "$S2") || fail "could not flip a byte in $S2/packs: $(ls -l "$S2/packs")"
log "case 2: text file of $tsize bytes stored in $(pack_files_bytes "$S2") pack bytes; flipped $where"
dz_mount "$S2" "$MNT"
res=$(read_all "$MNT" text.txt)
log "case 2 reads: $res"
[ "$res" = "text.txt eio" ] || fail "case 2: a byte flipped in the middle of the only pack ($where), which holds only the compressed text.txt: reading it should fail with EIO; got: $res"
dz_umount "$MNT" "$S2"
dz_fsck "$S2" 4
