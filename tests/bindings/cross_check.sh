#!/bin/sh
# bindings.cross: after the language tests wrote LANG_NAME.dzc for every input, each is
# byte-identical to dzfs-codec's cli_NAME.dzc, and dzfs-codec decodes each back to the input.
# Every language that was built must have written all its files (a missing one fails).
# Usage: cross_check.sh DZFS_CODEC DATA_DIR OUT_DIR
set -eu
codec=$1 data=$2 out=$3
langs=""
for l in c py java rust; do
  if ls "$out/${l}_"*.dzc >/dev/null 2>&1; then langs="$langs $l"; fi
done
[ -n "$langs" ] || { echo "no language wrote anything into $out"; exit 1; }
n=0
while read -r name; do
  for l in $langs; do
    f=$out/${l}_$name.dzc
    [ -f "$f" ] || { echo "FAIL: $l did not write $f"; exit 1; }
    cmp "$f" "$data/cli_$name.dzc" || { echo "FAIL: $l's $name.dzc differs from dzfs-codec's"; exit 1; }
    "$codec" decompress "$f" "$out/.back" || { echo "FAIL: dzfs-codec cannot decode $f"; exit 1; }
    cmp "$out/.back" "$data/$name" || { echo "FAIL: dzfs-codec decodes $f to other bytes"; exit 1; }
    n=$((n + 1))
  done
done <"$data/names"
rm -f "$out/.back"
echo "cross check: $n files from:$langs, all identical to dzfs-codec's and decoded by it"
