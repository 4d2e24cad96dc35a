#!/usr/bin/env bash
# Per-volume training and model adoption (issue 5): `dzfs train STORE` fine-tunes the volume's
# primary model on a sample of its chunks and adopts it only when it beats the active models on
# a held-back sample by the margin; on a mounted volume the daemon adopts it (model inbox); the
# daemon trains by itself with autotrain_mb; a damaged inbox order is rejected, not applied; a
# training killed half-way changes nothing. Every phase ends with the tree identical and fsck
# clean.
. "$(dirname "$0")/../integration/lib.sh"
it_init train_volume 460
[ -x "$(dirname "$DZFS")/dzfs-train" ] || command -v dzfs-train >/dev/null || skip "dzfs-train not built (no libtorch)"

src=$IT_TMP/src store=$IT_TMP/store mnt=$IT_TMP/mnt
mkdir -p "$src"
# Data unlike the default model's training corpus: web server logs (deterministic, ~2 MB).
"$PY" - "$src" <<'EOF'
import random, sys
random.seed(7)
hosts = ['web-%02d' % i for i in range(12)]
paths = ['/api/v1/users', '/api/v1/orders', '/static/app.js', '/login', '/api/v2/search?q=', '/health']
for f in range(3):
    with open('%s/access-%d.log' % (sys.argv[1], f), 'w') as o:
        t = 1700000000 + f * 86400
        for i in range(6500):
            t += random.randint(0, 3)
            p = random.choice(paths)
            if p.endswith('='): p += ''.join(random.choice('abcdefghij') for _ in range(random.randint(3, 9)))
            o.write('10.%d.%d.%d - - [%d] "%s %s HTTP/1.1" %d %d "%s" rt=%.3f\n' % (
                random.randint(0, 255), random.randint(0, 255), random.randint(1, 254), t,
                random.choice(['GET', 'GET', 'POST']), p, random.choice([200, 200, 304, 404, 500]),
                random.randint(100, 90000), random.choice(hosts), random.random() * 2))
EOF
# rsync (3.2.7) does not always re-set a directory's mtime: copy directory times explicitly.
rsync_in() {
  run_to 120 rsync -aHAX --numeric-ids "$1/" "$2/"
  (cd "$1" && find . -type d -print0 | xargs -0 -I{} touch -h -r "{}" "$2/{}")
}
current_model() { "$DZFS" models "$1" | awk '$2 == "yes" {print $1; exit}'; }
model_count() { "$DZFS" models "$1" | awk 'NR > 1' | wc -l; }
no_leftovers() {
  [ ! -e "$store/train.tmp" ] || fail "train.tmp left behind in the store"
  [ -z "$(ls "$store/inbox" 2>/dev/null | grep -v rejected)" ] || fail "inbox not empty: $(ls "$store/inbox")"
}

dz_mkfs "$store"
dz_mount "$store" "$mnt" -o codec=zstd
rsync_in "$src" "$mnt"
dz_umount "$mnt" "$store"
default=$(current_model "$store")
n0=$(model_count "$store")

log "1. unmounted, an unreachable margin: trained but not adopted (exit 3), nothing changes"
rc=0
out=$(run_to 240 "$DZFS" train "$store" --steps 60 --batch 4096 --margin 90 2>&1) || rc=$?
[ "$rc" -eq 3 ] || fail "dzfs train --margin 90: exit $rc, expected 3: $out"
grep -q "not adopted" <<<"$out" || fail "no 'not adopted' verdict: $out"
[ "$(current_model "$store")" = "$default" ] || fail "the current model changed although not adopted"
[ "$(model_count "$store")" -eq "$n0" ] || fail "a model was installed although not adopted"
no_leftovers

log "2. unmounted: adopted, current, parent recorded, chunks recompress to it"
out=$(run_to 240 "$DZFS" train "$store" --steps 150 --batch 4096 2>&1) || fail "dzfs train: $out"
log "$(grep 'held back' <<<"$out")"
first=$(current_model "$store")
[ -n "$first" ] && [ "$first" != "$default" ] || fail "no new current model after adoption: $out"
grep -q "adopted model $first" <<<"$out" || fail "verdict does not name the adopted model: $out"
"$DZFS" models "$store" | grep "^$first" | grep -q "trained on this volume" || fail "no training summary"
no_leftovers
run_to 240 "$DZFS" compress "$store" >/dev/null 2>&1
chunks_first=$("$DZFS" models "$store" | awk -v id="$first" '$1 == id {print $4}')
[ "${chunks_first:-0}" -gt 0 ] || fail "no chunk was recompressed with the volume's model"
[ "$(dz_stat_key "$store" recompress_chunks)" -gt 0 ] || fail "stats show no recompression work"
dz_fsck "$store"

log "3. a damaged inbox order is rejected at mount; the volume mounts and reads"
mkdir -p "$store/inbox"
bogus=0123456789abcdef0123456789abcdef
head -c 4096 /dev/urandom >"$store/inbox/$bogus.dzm"
printf 'parent=\nactive=%s\nmigrate=0\nsummary=x\n' "$bogus" >"$store/inbox/$bogus.adopt"
dz_mount "$store" "$mnt" -o settle_secs=0,workers=1
for i in $(seq 1 50); do [ -e "$store/inbox/rejected/$bogus.adopt" ] && break; sleep 0.2; done
[ -e "$store/inbox/rejected/$bogus.adopt" ] || fail "the damaged order was not rejected"
[ "$(current_model "$mnt")" = "$first" ] || fail "the damaged order changed the current model"

log "4. mounted: dzfs train MOUNTPOINT, the daemon adopts"
out=$(run_to 240 "$DZFS" train "$mnt" --steps 100 --batch 4096 --margin 0 2>&1) || fail "dzfs train MNT: $out"
second=$(current_model "$mnt")
[ "$second" != "$first" ] && grep -q "adopted model $second" <<<"$out" || fail "mounted adoption failed: $out"
tree_compare "$src" "$mnt"
dz_umount "$mnt" "$store"
dz_fsck "$store"

log "5. autotrain: the daemon trains and adopts by itself after autotrain_mb of new data"
mkdir -p "$src/more"
cp "$src"/access-*.log "$src/more/" && sed -i 's/HTTP\/1.1/HTTP\/2.0/' "$src"/more/*.log
dz_mount "$store" "$mnt" -o settle_secs=0,workers=1,autotrain_mb=1
rsync_in "$src" "$mnt"
for i in $(seq 1 200); do
  cur=$(current_model "$store")
  [ "$cur" != "$second" ] && break
  sleep 1
done
[ "$cur" != "$second" ] || fail "autotrain adopted no model within 200 s"
"$DZFS" models "$store" | grep "^$cur" | grep -q "trained on this volume" || fail "autotrained model lacks its summary"
run_to 240 "$DZFS" compress "$mnt" --wait >/dev/null 2>&1
tree_compare "$src" "$mnt"
dz_umount "$mnt" "$store"
no_leftovers
dz_fsck "$store"

log "6. a training killed half-way changes nothing; the next one cleans up after it"
before=$("$DZFS" models "$store" | md5sum)
"$DZFS" train "$store" --steps 100000 --batch 4096 >"$IT_TMP/killed.log" 2>&1 &
tp=$!
for i in $(seq 1 100); do grep -q 'step ' "$IT_TMP/killed.log" && break; sleep 0.2; done
grep -q 'step ' "$IT_TMP/killed.log" || fail "the training to kill did not start: $(cat "$IT_TMP/killed.log")"
pkill -9 -f "dzfs-train --config $store/train.tmp" || true
kill -9 "$tp" 2>/dev/null || true
wait "$tp" 2>/dev/null || true
[ "$("$DZFS" models "$store" | md5sum)" = "$before" ] || fail "a killed training changed the models"
dz_fsck "$store"
run_to 240 "$DZFS" train "$store" --steps 20 --batch 4096 --margin 90 >/dev/null 2>&1 || true
no_leftovers
dz_mount "$store" "$mnt"
tree_compare "$src" "$mnt"
dz_umount "$mnt" "$store"
log "pass"
