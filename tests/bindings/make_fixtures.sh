#!/bin/sh
# Fixture of the binding tests (ctest FIXTURES_SETUP bindings_data): the inputs (gen_data.py),
# dzfs-codec's own .dzc of each (cli_NAME.dzc, the reference every binding must reproduce byte for
# byte and decode), a second model (other.dzm) and a file coded with it (wrongmodel.dzc).
# Usage: make_fixtures.sh DZFS_CODEC DIR
set -eu
codec=$1 dir=$2
here=$(dirname "$0")
rm -rf "$dir"
mkdir -p "$dir"
python3 "$here/gen_data.py" "$dir"
"$codec" make-model --seed 5 --window 8 --hidden 32 "$dir/other.dzm" >/dev/null
while read -r name; do
  "$codec" compress --threads 2 "$dir/$name" "$dir/cli_$name.dzc" 2>/dev/null
done <"$dir/names"
"$codec" compress --model "$dir/other.dzm" "$dir/chunk_p1" "$dir/wrongmodel.dzc" 2>/dev/null
echo "fixtures in $dir: $(ls "$dir" | wc -l) files"
