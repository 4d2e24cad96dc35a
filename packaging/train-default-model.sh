#!/usr/bin/env bash
# Trains the shipped default model (train/models/default.dzm) on the training split of the dzfs
# benchmark corpus, evaluates it on the held-back split and prints the comparison table.
#
#   packaging/train-default-model.sh [--no-train] [--no-peers]
#
# Environment (defaults in brackets):
#   DZFS_TRAIN   the dzfs-train binary                       [build/train/dzfs-train]
#   CORPUS       benchmark corpus (built if missing)          [/tmp/dzcorpus]
#   WORK         split directory: WORK/train, WORK/heldback   [/tmp/dzfs-train-split]
#   CONFIG       training config                              [train/configs/default.conf]
#   OUT          model file                                   [train/models/default.dzm]
#   DOCS_OUT     docs domain model (default model fine-tuned on docs/; tried per chunk beside
#                the default one, the smaller frame wins)     [train/models/docs.dzm]
#   THREADS      threads for the codec evaluation             [2]
# The split is by file: FNV-1a64(path relative to the corpus root) % 100 < 20 is held back
# (never trained on); both directories are hard links (or copies) of the corpus files.
set -euo pipefail
cd "$(dirname "$0")/.."
DZFS_TRAIN=${DZFS_TRAIN:-build/train/dzfs-train}
CORPUS=${CORPUS:-/tmp/dzcorpus}
WORK=${WORK:-/tmp/dzfs-train-split}
CONFIG=${CONFIG:-train/configs/default.conf}
OUT=${OUT:-train/models/default.dzm}
DOCS_OUT=${DOCS_OUT:-train/models/docs.dzm}
THREADS=${THREADS:-2}
PEERS=${PEERS:-/work/shared/bench/peers.py}
CORPUS_SH=${CORPUS_SH:-/work/shared/bench/corpus.sh}
train=1 peers=1
for a in "$@"; do
  case $a in
    --no-train) train=0 ;;
    --no-peers) peers=0 ;;
    *) echo "usage: $0 [--no-train] [--no-peers]" >&2; exit 2 ;;
  esac
done
[ -x "$DZFS_TRAIN" ] || { echo "$0: $DZFS_TRAIN not built (cmake --build build --target dzfs-train)" >&2; exit 1; }

if [ ! -d "$CORPUS/src" ] || [ ! -d "$CORPUS/genomic" ]; then
  bash "$CORPUS_SH" "$CORPUS"
fi
rm -rf "$WORK/train" "$WORK/heldback"
"$DZFS_TRAIN" split --corpus "$CORPUS" --out "$WORK" --held-percent 20

if [ $train = 1 ]; then
  # One thread: on a small shared machine torch's OpenMP pool and OpenBLAS oversubscribe.
  "$DZFS_TRAIN" --config "$CONFIG" --data "$WORK/train" --valid "$WORK/heldback" --out "$OUT" 2>&1 |
    tee "$WORK/train.log"
  "$DZFS_TRAIN" --config train/configs/docs.conf --data "$WORK/train/docs" --valid "$WORK/heldback/docs" \
    --set init="$(realpath "$OUT")" --out "$DOCS_OUT" 2>&1 | tee "$WORK/train-docs.log"
fi

also=()
[ -f "$DOCS_OUT" ] && also=(--also "$DOCS_OUT")
"$DZFS_TRAIN" --eval "$OUT" "${also[@]}" --data "$WORK/heldback" --threads "$THREADS" --null | tee "$WORK/eval.txt"

[ $peers = 1 ] || exit 0
peers=$PEERS
if ! command -v brotli >/dev/null; then  # peers.py runs brotli; skip that row when it is missing
  grep -v brotli "$PEERS" > "$WORK/peers-nobrotli.py"
  peers=$WORK/peers-nobrotli.py
fi
python3 "$peers" "$WORK/heldback" 65536 --dict "$WORK/train" | tee "$WORK/peers.txt"

python3 - "$WORK/eval.txt" "$WORK/peers.txt" <<'EOF'
import sys
ev, pe = {}, {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 12 and f[1].isdigit() and f[2].isdigit():
        ev[f[0]] = dict(inb=int(f[1]), neural=int(f[3]), auto=int(f[5]), null=int(f[6]), best=int(f[7]))
for line in open(sys.argv[2]):
    f = line.split()
    if len(f) >= 6 and f[-4].isdigit() and f[-3].isdigit():
        pe.setdefault(f[0], {})[' '.join(f[1:-4])] = int(f[-3])
print('\nheld-back split, per 64 KiB chunk, bytes. neural = default model only; best = per chunk the smaller')
print('neural frame of the default and domain models; no-net = neural coder without a network;')
print('ratios and targets use best:')
print(f'{"class":8} {"in":>10} {"neural":>9} {"best":>9} {"auto":>9} {"no-net":>9} {"xz-9e":>9} {"zstd-19":>9} {"zstd19+dict":>11}'
      f' {"b/xz":>6} {"b/dict":>6}  target')
for c in sorted(ev):
    if c == 'TOTAL' or c not in pe: continue
    e, p = ev[c], pe[c]
    xz, z19, zd = p.get('xz-9e', 0), p.get('zstd-19', 0), p.get('zstd-19+dict1M', 0)
    ok = (e['best'] <= xz) if c == 'bin' else (e['best'] <= 0.8 * xz and e['best'] < zd)
    tgt = '<= xz-9e' if c == 'bin' else '<= 0.80 xz-9e and < zstd+dict'
    print(f'{c:8} {e["inb"]:10d} {e["neural"]:9d} {e["best"]:9d} {e["auto"]:9d} {e["null"]:9d} {xz:9d} {z19:9d} {zd:11d}'
          f' {e["best"] / max(1, xz):6.3f} {e["best"] / max(1, zd):6.3f}  {tgt}: {"met" if ok else "NOT met"}')
EOF
