#!/usr/bin/env bash
# A damaged (then a missing) model file on a volume with neural chunks. Text files are
# recompressed on a mount (settle_secs=0, workers=1, dzfs compress --wait); then one byte is
# flipped in the middle of the model file that compressed the most chunks.
#  - the volume still mounts; every file with a chunk of that model fails with EIO, never wrong
#    bytes; every other file reads back identical;
#  - dzfs fsck exits 4, names the damaged model file and exactly the affected files;
#  - dzfs fsck --repair writes the model file again from the copy built into dzfs (the shipped
#    models are embedded), byte-identical to the original, moves no file aside, and the volume
#    then checks clean and the whole tree reads back identical.
# The same once more with the model file deleted.
. "$(dirname "$0")/lib.sh"
it_init model_damage 200

SRC=$IT_TMP/src STORE=$IT_TMP/store MNT=$IT_TMP/mnt
mkdir -p "$SRC/h"
# Real text (libc headers, ~300 KB: the neural encoder runs at about 1 MB/s) and two files the
# neural codec does not take (random bytes stay raw; a tiny file).
hdrs=(/usr/include/x86_64-linux-gnu/bits/*.h)
[ "${#hdrs[@]}" -ge 50 ] || skip "not enough header files on this machine for a corpus"
cp "${hdrs[@]:0:50}" "$SRC/h/"
[ "$(du -sk "$SRC/h" | cut -f1)" -ge 150 ] || skip "not enough header files on this machine for a corpus"
head -c 300000 /dev/urandom >"$SRC/random.bin"
echo tiny >"$SRC/tiny.txt"
dz_mkfs "$STORE"
dz_mount "$STORE" "$MNT" -o settle_secs=0,workers=1
run_to 120 rsync -aHAX "$SRC/" "$MNT/"
(cd "$SRC" && find . -type d -print0 | xargs -0 -I{} touch -h -r "{}" "$MNT/{}")
run_to 300 "$DZFS" compress "$MNT" --wait 2>/dev/null
dz_umount "$MNT" "$STORE"
run_to 30 "$DZFS" models "$STORE" >&2
model=$("$DZFS" models "$STORE" | awk 'NR > 1 && $4 + 0 > best { best = $4 + 0; id = $1 } END { print id }')
[ -n "$model" ] || fail "no model compressed any chunk: the test needs neural chunks"
# The files that have a chunk of that model (from the index), one path per line.
"$PY" - "$(dz_index_db "$STORE")" "$model" >"$IT_TMP/affected" <<'EOF'
import sqlite3, sys
c = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
def path(ino):
    parts = []
    while ino != 1:
        parent, name = c.execute("SELECT parent, name FROM dirents WHERE ino = ?", (ino,)).fetchone()
        parts.append(bytes(name).decode()); ino = parent
    return "/".join(reversed(parts))
for (ino,) in c.execute("SELECT DISTINCT e.ino FROM extents e JOIN chunks k ON k.id = e.chunk WHERE k.model = ?", (sys.argv[2],)):
    print(path(ino))
EOF
n_aff=$(wc -l <"$IT_TMP/affected")
n_all=$(cd "$SRC" && find . -type f | wc -l)
log "model $model: $n_aff of $n_all files have chunks compressed with it"
[ "$n_aff" -ge 1 ] || fail "no file uses model $model"
[ "$n_aff" -lt "$n_all" ] || fail "every file uses model $model: nothing to check the other files with"
grep -qx random.bin "$IT_TMP/affected" && fail "random.bin (incompressible) has a neural chunk?"
cp "$STORE/models/$model.dzm" "$IT_TMP/model.orig"

# check_damaged WHAT: mount, reads, fsck naming the model and exactly the affected files.
check_damaged() {
  local what=$1 out rc
  dz_mount "$STORE" "$MNT" -o workers=0,gc_secs=0
  out=$(run_to 120 "$PY" - "$SRC" "$MNT" "$IT_TMP/affected" <<'EOF'
import errno, os, sys
src, mnt = sys.argv[1], sys.argv[2]
affected = set(open(sys.argv[3]).read().split("\n")) - {""}
bad, eio, ok = [], 0, 0
for root, _, names in os.walk(src):
    for n in names:
        rel = os.path.relpath(os.path.join(root, n), src)
        want = open(os.path.join(src, rel), "rb").read()
        try:
            with open(os.path.join(mnt, rel), "rb", buffering=0) as f:
                got = b""
                while True:
                    b = f.read(1 << 20)
                    if not b: break
                    got += b
            if rel in affected: bad.append("%s: needs the damaged model but read %s" % (rel, "its right bytes?!" if got == want else "WRONG BYTES"))
            elif got != want: bad.append("%s: does not need the damaged model but reads wrong" % rel)
            else: ok += 1
        except OSError as e:
            if rel in affected and e.errno == errno.EIO: eio += 1
            else: bad.append("%s: %s" % (rel, e))
print("%d files EIO, %d files identical" % (eio, ok))
if bad:
    print("\n".join(bad[:20])); sys.exit(1)
EOF
) || fail "$what: reads on the mount: $out"
  log "$what: mounted; $out"
  dz_umount "$MNT" "$STORE"
  rc=0
  out=$(run_to 120 "$DZFS" fsck "$STORE" 2>/dev/null) || rc=$?
  [ "$rc" -eq 4 ] || fail "$what: fsck exited $rc, expected 4: $(tail -n 5 <<<"$out")"
  grep -q "^problem: model $model: file models/$model.dzm is damaged or missing" <<<"$out" ||
    fail "$what: fsck did not name the model file: $(grep -v '^problem: chunk' <<<"$out" | head -n 20)"
  diff <(sed 's|^|/|' "$IT_TMP/affected" | sort) <(sed -n 's/^damaged file: //p' <<<"$out" | sort) >&2 ||
    fail "$what: the files fsck names as damaged (>) are not the files that use model $model (<)"
  log "$what: fsck names the model and the $n_aff affected files"
  out=$(run_to 120 "$DZFS" fsck "$STORE" --repair 2>/dev/null) || fail "$what: fsck --repair did not leave a clean volume: $(grep -v '^problem: chunk' <<<"$out" | head -n 30)"
  grep -q "^repair: restored model file models/$model.dzm" <<<"$out" || fail "$what: repair did not restore the model: $out"
  grep -q "^repair: moved" <<<"$out" && fail "$what: repair moved files aside although only the model file was damaged: $(grep '^repair:' <<<"$out")"
  cmp "$IT_TMP/model.orig" "$STORE/models/$model.dzm" || fail "$what: the restored model file differs from the original"
  dz_fsck "$STORE"
  dz_mount "$STORE" "$MNT" -o workers=0,gc_secs=0
  tree_compare "$SRC" "$MNT"
  [ -e "$MNT/lost+found" ] && fail "$what: a /lost+found appeared: $(ls "$MNT/lost+found")"
  dz_umount "$MNT" "$STORE"
}

log "1. one byte flipped in the middle of models/$model.dzm"
"$PY" -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0x10; open(p, "wb").write(b)' "$STORE/models/$model.dzm"
check_damaged "flipped byte"
log "2. models/$model.dzm deleted"
rm "$STORE/models/$model.dzm"
check_damaged "missing file"
log "FIGURE model damage: 2 of 2 model-file damages detected; $n_aff files EIO each time, 0 wrong"
