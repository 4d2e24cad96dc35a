# Sourced by the fuzz run scripts (with $out set): finds clang++ with a working libFuzzer runtime
# and sets CXX, or exits 77 (ctest skip) naming what is missing.
CXX=""
for c in clang++ clang++-17 clang++-16 clang++-15 clang++-14; do
  if command -v "$c" >/dev/null 2>&1; then CXX=$(command -v "$c"); break; fi
done
if [ -z "$CXX" ]; then echo "SKIP: clang++ not found"; exit 77; fi
mkdir -p "$out" || exit 1
probe="$out/probe"
if [ ! -x "$probe" ]; then
  printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' > "$out/probe.cc"
  if ! "$CXX" -fsanitize=fuzzer "$out/probe.cc" -o "$probe" >/dev/null 2>&1; then
    echo "SKIP: $CXX cannot link -fsanitize=fuzzer (libFuzzer runtime missing)"; exit 77
  fi
fi
