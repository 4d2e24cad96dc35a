#!/usr/bin/env python3
"""Writes the inputs every binding test round-trips (deterministic, the same on every machine):
empty, one byte, a chunk boundary (65536) -1/0/+1 of text, and 10 MiB of mixed data (text,
random bytes, zeros, FASTQ-like records). Usage: gen_data.py DIR"""
import random
import sys

CHUNK = 65536


def text(r, n):
    words = ("the of and to in is for that with on as are this be by it from or at an codec frame "
             "chunk model stream index error buffer byte read write compress decompress data file "
             "return int size_t void const struct if else while for static").split()
    out, line = [], []
    total = 0
    while total < n:
        w = r.choice(words)
        line.append(w)
        if len(line) > r.randint(6, 14):
            s = " ".join(line) + (";\n" if r.random() < 0.3 else ".\n")
            out.append(s)
            total += len(s)
            line = []
    return "".join(out).encode()[:n]


def fastq(r, n):
    recs, total, i = [], 0, 0
    while total < n:
        seq = bytes(r.choice(b"ACGT") for _ in range(80))
        qual = bytes(r.choice(b"#%&*+-5:<>?@ABCDEFGHI") for _ in range(80))
        rec = b"@SRR1234.%d %d length=80\n%s\n+\n%s\n" % (i, i, seq, qual)
        recs.append(rec)
        total += len(rec)
        i += 1
    return b"".join(recs)[:n]


def main():
    d = sys.argv[1]
    r = random.Random(19)
    base = text(r, 3 * CHUNK)
    inputs = {
        "empty": b"",
        "one": b"x",
        "chunk_m1": base[:CHUNK - 1],
        "chunk": base[:CHUNK],
        "chunk_p1": base[:CHUNK + 1],
    }
    parts = [text(r, 3 << 20), r.randbytes(2 << 20), bytes(2 << 20), fastq(r, 3 << 20)]
    mixed = b"".join(parts)[:10 << 20]
    assert len(mixed) == 10 << 20
    inputs["mixed10m"] = mixed
    for name, data in inputs.items():
        with open(f"{d}/{name}", "wb") as f:
            f.write(data)
    with open(f"{d}/names", "w") as f:
        f.write("\n".join(inputs) + "\n")


if __name__ == "__main__":
    main()
