#!/usr/bin/env bash
# dzfs fsck --repair: a flipped byte in one file's data and a damaged index row are found
# (fsck names exactly the damaged file, exit 4); --repair moves that file into /lost+found with
# its unreadable part as a hole, fixes the counts, and the volume then checks clean; every other
# file reads back intact. Then page-level damage of index.db (a wrong free-list count, which no
# row query sees) is found by SQLite's quick_check and repaired by rebuilding the file (VACUUM).
. "$(dirname "$0")/lib.sh"
it_init fsck_repair 150

store=$IT_TMP/store mnt=$IT_TMP/mnt src=$IT_TMP/src
mkdir -p "$src"
for i in 1 2 3; do head -c 300000 /dev/urandom > "$src/file$i"; done   # random: stored raw
seq 1 20000 > "$src/text"
dz_mkfs "$store"
dz_mount "$store" "$mnt" -o codec=zstd
cp -a "$src/." "$mnt/"
dz_umount "$mnt" "$store"

log "flip one byte of file2's data inside its pack"
"$PY" - "$store" "$src/file2" <<'PY'
import glob, sys
store, victim = sys.argv[1], open(sys.argv[2], 'rb').read()
needle = victim[100000:100064]
for p in glob.glob(store + '/packs/*.pack'):
    b = bytearray(open(p, 'rb').read())
    i = b.find(needle)
    if i >= 0:
        b[i + 10] ^= 0xFF
        open(p, 'wb').write(bytes(b))
        sys.exit(0)
sys.exit("data of file2 not found in any pack")
PY
log "damage an index row: a wrong reference count"
"$PY" -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('UPDATE chunks SET refcount = refcount + 5 WHERE id = (SELECT MIN(id) FROM chunks)'); c.commit()" "$(dz_index_db "$store")"

out=$(timeout 120 "$DZFS" fsck "$store" 2>&1) && fail "fsck of a damaged volume exited 0: $out"
grep -q "damaged file: /file2$" <<<"$out" || fail "fsck did not name /file2 as damaged: $out"
[ "$(grep -c '^damaged file:' <<<"$out")" -eq 1 ] || fail "fsck named other files as damaged: $out"
grep -q "refcount" <<<"$out" || fail "fsck did not report the wrong reference count: $out"

out=$(timeout 120 "$DZFS" fsck "$store" --repair 2>&1) || fail "fsck --repair did not leave a clean volume: $out"
log "$(grep '^repair:' <<<"$out" | tr '\n' ' ')"
dz_fsck "$store"

dz_mount "$store" "$mnt"
for f in file1 file3 text; do cmp "$src/$f" "$mnt/$f" || fail "$f changed by the repair"; done
[ -e "$mnt/file2" ] && fail "damaged file2 still in place"
moved=$(ls "$mnt/lost+found/" | grep -- '-file2$') || fail "file2 not moved into /lost+found"
size=$(stat -c %s "$mnt/lost+found/$moved")
[ "$size" -eq 300000 ] || fail "moved file2 has size $size, expected 300000"
# Its readable chunks are intact; the damaged chunk reads as zeros (a hole), never as wrong bytes.
"$PY" - "$src/file2" "$mnt/lost+found/$moved" <<'PY'
import sys
a, b = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read()
same = sum(1 for i in range(0, len(a), 4096) if a[i:i+4096] == b[i:i+4096])
bad = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y and y != 0), None)
if bad is not None: sys.exit("byte %d is neither the original nor zero (a hole)" % bad)
if same == 0: sys.exit("no block of the moved file survived")
PY
dz_umount "$mnt" "$store"

log "page-level damage of index.db: a wrong free-list count in its header"
"$PY" - "$(dz_index_db "$store")" <<'PY'
import sqlite3, struct, sys
c = sqlite3.connect(sys.argv[1])
c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
c.close()
b = bytearray(open(sys.argv[1], 'rb').read())
n = struct.unpack('>I', b[36:40])[0]
b[36:40] = struct.pack('>I', n + 7)  # the header's free-list page count
open(sys.argv[1], 'wb').write(bytes(b))
PY
rc=0; out=$(timeout 120 "$DZFS" fsck "$store" 2>&1) || rc=$?
[ "$rc" -eq 4 ] || fail "fsck of an index with a wrong free-list count exited $rc, expected 4: $out"
grep -q "index file: .*freelist" <<<"$out" || fail "fsck did not report the free-list damage: $out"
out=$(timeout 120 "$DZFS" fsck "$store" --repair 2>&1) || fail "fsck --repair did not fix the free-list damage: $out"
grep -q "VACUUM" <<<"$out" || fail "fsck --repair did not say it rebuilt index.db: $out"
dz_fsck "$store"
dz_mount "$store" "$mnt"
for f in file1 file3 text; do cmp "$src/$f" "$mnt/$f" || fail "$f changed by rebuilding index.db"; done
dz_umount "$mnt" "$store"
log "pass"
