#!/usr/bin/env bash
# Concurrency under load: fio jobs write and verify (crc32c) many files at once — sequential
# and random writes, several jobs in parallel — while background recompression and gc passes run
# on the same volume; then the data is verified again after a remount. Zero verify errors.
. "$(dirname "$0")/lib.sh"
it_init fio_verify 240
command -v fio >/dev/null || skip "fio is not installed"

store=$IT_TMP/store mnt=$IT_TMP/mnt
dz_mkfs "$store"
dz_mount "$store" "$mnt" -o settle_secs=0,workers=1,gc_secs=1,commit_secs=1
mkdir -p "$mnt/fio"
common=(--directory="$mnt/fio" --ioengine=psync --verify=crc32c --verify_fatal=1 --do_verify=1
        --buffer_compress_percentage=60 --refill_buffers --group_reporting --minimal --verify_state_save=0)
log "fio: 4 sequential writers + 2 random writers, 6 files each, verified as written"
run_to 180 fio "${common[@]}" \
  --name=seq --rw=write --bs=128k --size=8m --nrfiles=6 --numjobs=4 \
  --name=rnd --rw=randwrite --bs=4k --size=4m --nrfiles=6 --numjobs=2 > "$IT_TMP/fio1.out" \
  || fail "fio verify failed while writing: $(tail -c 2000 "$IT_TMP/fio1.out")"
bytes=$(awk -F';' '{s += $6 * 1024} END {print s}' "$IT_TMP/fio1.out")
log "fio wrote and verified $bytes bytes"
sleep 3  # let recompression and a gc pass run over the fresh chunks
log "re-verify the same files after a remount (recompression and gc ran meanwhile)"
dz_umount "$mnt" "$store"
dz_fsck "$store"
dz_mount "$store" "$mnt" -o settle_secs=0,workers=1,gc_secs=1
run_to 180 fio "${common[@]}" --verify_only \
  --name=seq --rw=write --bs=128k --size=8m --nrfiles=6 --numjobs=4 \
  --name=rnd --rw=randwrite --bs=4k --size=4m --nrfiles=6 --numjobs=2 > "$IT_TMP/fio2.out" \
  || fail "fio verify failed after remount: $(tail -c 2000 "$IT_TMP/fio2.out")"
dz_umount "$mnt" "$store"
dz_fsck "$store"
log "pass"
