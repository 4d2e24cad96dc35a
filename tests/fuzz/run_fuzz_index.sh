#!/bin/sh
# Builds the fuzz_index target (tests/fuzz/fuzz_index.cc) with clang — libFuzzer + ASan + UBSan,
# over the store engine (index/), the filesystem layer it drives (fs/volume*.cc, file_state.cc,
# posix_acl.cc) and the codec — then replays every saved regression input in
# tests/fuzz/regressions/fuzz_index/ and fuzzes for a bounded time.
# Usage: run_fuzz_index.sh SECONDS OUTDIR. Exit 77 (ctest skip) without clang or the libFuzzer
# runtime. The build is cached in OUTDIR and redone when a source changes.
set -u
seconds=${1:-20}
out=${2:-/tmp/dzfs-index-fuzz}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
target=fuzz_index

. "$here/find_libfuzzer.sh"  # sets CXX or exits 77
CC=$(echo "$CXX" | sed 's/clang++/clang/')
for pc in sqlite3 libzstd libxxhash fuse3; do
  pkg-config --exists "$pc" || { echo "SKIP: pkg-config does not know $pc"; exit 77; }
done

san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
flags="-std=c++20 -O1 -g $san -I$src $(pkg-config --cflags fuse3)"
bin="$out/$target"
sources="$src/codec/*.cc $src/index/*.cc $src/fs/volume.cc $src/fs/volume_snapshots.cc $src/fs/volume_copy.cc $src/fs/file_state.cc $src/fs/posix_acl.cc"
(
  flock 9
  # The sanitized library: rebuilt when a source or header of those folders changes.
  lib="$out/libindex_fuzz.a"
  if [ ! -f "$lib" ] || [ -n "$(find "$src/codec" "$src/index" "$src/fs" \( -name '*.cc' -o -name '*.h' \) -newer "$lib" | head -1)" ]; then
    echo "building the sanitized store library with $CXX"
    rm -rf "$out/obj" && mkdir -p "$out/obj" || exit 1
    # No embedded models: mkfs then installs the codec's seeded random-init model.
    printf 'const unsigned char* const dzfs_embedded_models[1] = {0};\nconst unsigned long dzfs_embedded_model_sizes[1] = {0};\nconst unsigned long dzfs_embedded_model_count = 0;\n' > "$out/obj/no_models.c"
    "$CC" -c "$out/obj/no_models.c" -o "$out/obj/no_models.o" || exit 1
    for f in $sources; do
      "$CXX" $flags -fsanitize=fuzzer-no-link -c "$f" -o "$out/obj/$(basename "$(dirname "$f")")_$(basename "$f" .cc).o" || exit 1
    done
    rm -f "$lib" && ar rcs "$lib" "$out"/obj/*.o || exit 1
  fi
  if [ ! -x "$bin" ] || [ "$lib" -nt "$bin" ] || [ "$here/$target.cc" -nt "$bin" ]; then
    echo "building $target"
    "$CXX" $flags -fsanitize=fuzzer "$here/$target.cc" -Wl,--whole-archive "$lib" -Wl,--no-whole-archive \
      $(pkg-config --libs sqlite3 libzstd libxxhash fuse3) -lpthread -o "$bin.new" || exit 1
    mv "$bin.new" "$bin"
  fi
) 9>"$out/.lock" || { echo "FAIL: build of $target failed"; exit 1; }

regress="$here/regressions/$target"
if [ -d "$regress" ] && [ -n "$(ls -A "$regress" 2>/dev/null)" ]; then
  echo "replaying $(ls "$regress" | wc -l) saved inputs from $regress"
  "$bin" -timeout=20 -rss_limit_mb=2048 -artifact_prefix="$out/" "$regress"/* 2>"$out/replay.log" || {
    tail -n 60 "$out/replay.log"; echo "FAIL: a saved regression input of $target fails again"; exit 1; }
fi
corpus="$out/corpus"
mkdir -p "$corpus"
[ -d "$regress" ] && cp -n "$regress"/* "$corpus"/ 2>/dev/null
echo "running $target for ${seconds}s"
# A fixed seed by default: the test command is reproducible (a slower machine runs a prefix of the
# same inputs). DZFS_FUZZ_SEED=0 picks a random seed, for exploring.
exec "$bin" -error_exitcode=1 -seed="${DZFS_FUZZ_SEED:-1}" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=512 \
  -artifact_prefix="$out/" -print_final_stats=1 "$corpus"
