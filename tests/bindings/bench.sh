#!/bin/sh
# Figures of issue 19: throughput of each binding against the C API on the same file in one run
# (one thread, one-shot compress and decompress, MB/s of CPU time, best of REPS), and the sizes of the xz and zstd
# modules of each language on it (Python: lzma, zstandard; Java: libxz-java, zstd-jni; C and
# Rust: none here, the container is the same bytes; xz/zstd CLIs as the reference). Not a test
# (timings on a shared machine); run by hand after a build:
#   sh tests/bindings/bench.sh BUILD_DIR [FILE] [REPS]
# FILE defaults to 2 MiB of the binding tests' mixed data (1 MiB of text, 1 MiB of FASTQ).
set -eu
b=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
reps=${3:-1}
data=$b/tests/bindings/data
if [ -n "${2:-}" ]; then f=$2; else
  [ -f "$data/mixed10m" ] || sh "$src/tests/bindings/make_fixtures.sh" "$b/codec/dzfs-codec" "$data" >/dev/null
  f=$b/tests/bindings/bench.in
  { head -c 1048576 "$data/mixed10m"; tail -c +$((7 * 1048576 + 1)) "$data/mixed10m" | head -c 1048576; } >"$f"
fi
lib=$b/codec
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3  # Debian's, where python3-zstandard is
jcp=""
if [ -f "$b/bindings/dzcodec.jar" ]; then
  tc=$b/tests/bindings/java-bench-classes
  mkdir -p "$tc"
  javac --release 11 -cp "$b/bindings/dzcodec.jar" -d "$tc" "$src/tests/bindings/DzcodecBench.java"
  jcp=$b/bindings/dzcodec.jar:$tc
  for j in /usr/share/java/xz.jar /usr/share/java/zstd-jni.jar; do [ -f "$j" ] && jcp=$jcp:$j; done
fi
rustb=$b/bindings/rust-target/release/examples/dzc_bench
# Rounds interleave the languages (the shared machine's speed drifts within minutes); each line
# is one run's best of REPS; compare the best per language over the rounds.
for round in 1 2 3; do
  echo "# round $round"
  "$b/tests/bindings/c_api_test" bench "$f" "$reps"
  DZCODEC_LIBRARY=$lib/libdzcodec.so.0 PYTHONPATH=$src/bindings/python "$py" "$src/tests/bindings/bench_python.py" "$f" "$reps"
  [ -z "$jcp" ] || java -Djava.library.path="$b/bindings:/usr/lib/x86_64-linux-gnu" -cp "$jcp" DzcodecBench "$f" "$reps"
  [ ! -x "$rustb" ] || LD_LIBRARY_PATH=$lib "$rustb" "$f" "$reps"
done
echo "xz-9e-cli $(wc -c <"$f") $(xz -9e -c "$f" | wc -c)"
echo "zstd-19-cli $(wc -c <"$f") $(zstd -19 -c "$f" 2>/dev/null | wc -c)"
