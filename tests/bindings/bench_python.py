#!/usr/bin/env python3
"""Python side of tests/bindings/bench.sh: dzcodec's best compress/decompress MB/s of process CPU time over
REPS runs (one thread), and the sizes of lzma (xz, preset 9e) and zstandard (level 19, if installed) on the
same file. Usage: bench_python.py FILE REPS"""
import lzma
import sys
import time

import dzcodec

data = open(sys.argv[1], "rb").read()
reps = int(sys.argv[2])
bc = bd = float("inf")
for _ in range(reps):
    t = time.process_time()
    z = dzcodec.compress(data)
    t2 = time.process_time()
    assert dzcodec.decompress(z) == data
    t3 = time.process_time()
    bc, bd = min(bc, t2 - t), min(bd, t3 - t2)
print(f"python {len(data)} {len(z)} {len(data) / 1e6 / bc:.3f} {len(data) / 1e6 / bd:.3f}")
print(f"python-lzma-9e {len(data)} {len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))}")
try:
    import zstandard
    print(f"python-zstandard-19 {len(data)} {len(zstandard.ZstdCompressor(level=19).compress(data))}")
except ImportError:
    print("python-zstandard-19 - (python3-zstandard not installed)")
