#!/bin/sh
# Builds one codec fuzz target with clang (libFuzzer + ASan + UBSan) and runs it for a bounded
# time. Usage: run_fuzz.sh TARGET SECONDS OUTDIR. Exit 77 (ctest skip) if clang or the libFuzzer
# runtime is unavailable. The build is cached in OUTDIR and redone when a source changes.
set -u
target=$1
seconds=${2:-20}
out=${3:-/tmp/dzfs-codec-fuzz}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)

. "$here/find_libfuzzer.sh"  # sets CXX or exits 77

flags="-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I$src"
bin="$out/$target"
lib="$out/libcodec_fuzz.a"
(
  flock 9
  # Sanitized codec library (shared by the targets; rebuilt when a codec source changes).
  if [ ! -f "$lib" ] || [ -n "$(find "$src/codec" \( -name '*.cc' -o -name '*.h' \) -newer "$lib" | head -1)" ]; then
    echo "building sanitized codec library with $CXX"
    rm -rf "$out/obj" && mkdir -p "$out/obj"
    for f in "$src"/codec/*.cc; do
      "$CXX" $(echo "$flags" | sed 's/-fsanitize=fuzzer,/-fsanitize=fuzzer-no-link,/') -c "$f" \
        -o "$out/obj/$(basename "$f" .cc).o" || exit 1
    done
    rm -f "$lib" && ar rcs "$lib" "$out"/obj/*.o || exit 1
  fi
  if [ ! -x "$bin" ] || [ "$lib" -nt "$bin" ] || [ "$here/$target.cc" -nt "$bin" ]; then
    echo "building $target"
    "$CXX" $flags "$here/$target.cc" "$lib" -lzstd -lxxhash -o "$bin" || exit 1
  fi
) 9>"$out/.lock" || { echo "FAIL: build of $target failed"; exit 1; }

corpus="$out/corpus_$target"
mkdir -p "$corpus"
maxlen=4096
[ "$target" = fuzz_model ] && maxlen=40000
echo "running $target for ${seconds}s"
# A fixed seed by default (reproducible test command); DZFS_FUZZ_SEED=0 picks a random one.
exec "$bin" -error_exitcode=1 -seed="${DZFS_FUZZ_SEED:-1}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=$maxlen \
  -print_final_stats=1 "$corpus"
