#!/usr/bin/env python3
"""Tests of the Python binding (bindings/python/dzcodec). Environment: DZC_DATA (make_fixtures.sh's
directory), DZC_OUT (where py_NAME.dzc go), DZCODEC_LIBRARY and PYTHONPATH (set by ctest).
`test_python.py bigstream MIB` streams MIB MiB through a compressor and a decompressor in
lockstep (ctest runs it under `ulimit -v`)."""
import hashlib
import io
import os
import resource
import sys
import threading
import time
import unittest

import dzcodec

DATA = os.environ.get("DZC_DATA", "")
OUT = os.environ.get("DZC_OUT", "")


def names():
    with open(os.path.join(DATA, "names")) as f:
        return [n for n in f.read().split() if n]


def load(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


class RoundTrip(unittest.TestCase):
    def test_versions(self):
        self.assertEqual(dzcodec.library_version(), "0.1.0")
        self.assertEqual(dzcodec.container_version(), 1)
        self.assertGreaterEqual(dzcodec.embedded_model_count(), 1)
        self.assertEqual(len(dzcodec.Model.embedded(0).id), 32)

    def test_every_input(self):
        for name in names():
            with self.subTest(name=name):
                data, ref = load(name), load(f"cli_{name}.dzc")
                big = len(data) > (1 << 20)
                # Encode: the same bytes as dzfs-codec, one-shot and streamed in odd pieces.
                if not big:
                    self.assertEqual(dzcodec.compress(data, threads=2), ref)
                c = dzcodec.DzCompressor(threads=2)
                parts, off, step = [], 0, 1
                while off < len(data):
                    parts.append(c.compress(data[off:off + step]))
                    off += step
                    step = step * 5 + 3 if step < (1 << 20) else 7
                parts.append(c.flush())
                z = b"".join(parts)
                self.assertEqual(z, ref, "streamed bytes differ from dzfs-codec's")
                with open(os.path.join(OUT, f"py_{name}.dzc"), "wb") as f:
                    f.write(z)
                # Decode: one-shot, incremental with bounded output, and as a file object.
                self.assertEqual(dzcodec.decompress(z, threads=2), data)
                d = dzcodec.DzDecompressor()
                got, off = [], 0
                piece = 100003 if big else 1
                while not d.eof:
                    got.append(d.decompress(z[off:off + piece], max_length=65536))
                    off = min(len(z), off + piece)
                    self.assertLessEqual(len(got[-1]), 65536)
                self.assertEqual(b"".join(got), data)
                self.assertEqual(d.unused_data, b"")
                with dzcodec.open(io.BytesIO(z)) as f:
                    self.assertEqual(f.read(), data)

    def test_other_languages_decode_identically(self):
        # Whatever the C, Java and Rust tests wrote before this one (ctest runs them in order),
        # and dzfs-codec's files: each decodes to its input.
        seen = 0
        for fn in sorted(os.listdir(OUT)) + [f"cli_{n}.dzc" for n in names()]:
            if not fn.endswith(".dzc") or fn.startswith("py_"):
                continue
            lang, _, rest = fn.partition("_")
            name = rest[:-4]
            if name not in names():
                continue
            path = os.path.join(DATA if lang == "cli" else OUT, fn)
            with open(path, "rb") as f:
                self.assertEqual(dzcodec.decompress(f.read(), threads=2), load(name), fn)
            seen += 1
        self.assertGreaterEqual(seen, len(names()))

    def test_file_object(self):
        data = load("mixed10m")[:300000]
        path = os.path.join(OUT, "py_file.dzc")
        with dzcodec.open(path, "wb", threads=2) as f:
            for i in range(0, len(data), 4096):
                f.write(data[i:i + 4096])
        with dzcodec.open(path, "rb") as f:  # by name: the index
            self.assertTrue(f.seekable())
            f.seek(123456)
            self.assertEqual(f.read(1000), data[123456:124456])
            f.seek(-10, io.SEEK_END)
            self.assertEqual(f.read(), data[-10:])
            f.seek(5)
            self.assertEqual(f.read(5), data[5:10])
        with open(path, "rb") as raw, dzcodec.open(raw) as f:  # a file object: streamed
            f.seek(200000)
            self.assertEqual(f.read(100), data[200000:200100])
            f.seek(1)
            self.assertEqual(f.read(3), data[1:4])
        text = "line one\nline two é\n"
        with dzcodec.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
        with dzcodec.open(path, "rt", encoding="utf-8") as f:
            self.assertEqual(f.readlines(), ["line one\n", "line two é\n"])

    def test_gil_released_while_coding(self):
        data = load("mixed10m")[:600000]
        done = threading.Event()

        def work():
            dzcodec.compress(data)
            done.set()

        t = threading.Thread(target=work)
        spins = 0
        t.start()
        time.sleep(0.01)
        start = time.monotonic()
        while not done.is_set():
            spins += 1
        elapsed = time.monotonic() - start
        t.join()
        # With the GIL held for the whole call, this thread could not run at all meanwhile.
        self.assertGreater(elapsed, 0.05)
        self.assertGreater(spins, 10000, f"only {spins} iterations in {elapsed:.2f} s while compressing")


class BadInput(unittest.TestCase):
    def setUp(self):
        self.data, self.z = load("chunk_p1"), load("cli_chunk_p1.dzc")

    def test_truncated(self):
        for n in list(range(1, 80)) + list(range(80, len(self.z), 211)) + list(range(len(self.z) - 40, len(self.z))):
            with self.assertRaises(dzcodec.DzcodecError, msg=f"{n} bytes"):
                dzcodec.decompress(self.z[:n])
            d = dzcodec.DzDecompressor()
            with self.assertRaises(dzcodec.DzcodecError):
                with dzcodec.open(io.BytesIO(self.z[:n])) as f:
                    f.read()
            self.assertFalse(d.eof)

    def test_flipped_bytes(self):
        positions = list(range(0, 60, 3)) + [60 + k * (len(self.z) - 120) // 12 for k in range(1, 12)] + \
            list(range(len(self.z) - 60, len(self.z), 6))
        errors = 0
        for p in positions:
            bad = bytearray(self.z)
            bad[p] ^= 1 << (p % 8)
            try:
                out = dzcodec.decompress(bad)
            except dzcodec.DzcodecError as e:
                self.assertLess(e.code, 0)
                self.assertTrue(str(e))
                errors += 1
                continue
            self.assertEqual(out, self.data, f"flip at {p} decoded to wrong bytes")
        self.assertGreater(errors, len(positions) * 9 // 10)

    def test_wrong_model(self):
        z = load("wrongmodel.dzc")
        with self.assertRaises(dzcodec.DzcodecError) as cm:
            dzcodec.decompress(z)
        self.assertEqual(cm.exception.code, -4)
        self.assertIn("model", str(cm.exception))
        m = dzcodec.Model.from_file(os.path.join(DATA, "other.dzm"))
        self.assertEqual(dzcodec.decompress(z, models=[m]), self.data)
        with self.assertRaises(dzcodec.DzcodecError):
            dzcodec.Model.from_bytes(b"not a model" * 100)
        with self.assertRaises(dzcodec.DzcodecError):
            dzcodec.Model.from_file("/nonexistent.dzm")

    def test_tiny_output_and_misuse(self):
        d = dzcodec.DzDecompressor()
        out = []
        first = d.decompress(self.z, max_length=1)
        self.assertEqual(len(first), 1)
        while not d.eof:
            b = d.decompress(b"", max_length=1)
            self.assertLessEqual(len(b), 1)
            out.append(b)
        self.assertEqual(first + b"".join(out), self.data)
        with self.assertRaises(EOFError):
            d.decompress(b"x")
        with self.assertRaises(dzcodec.DzcodecError):
            dzcodec.decompress(self.z + b"trailing")
        with self.assertRaises(dzcodec.DzcodecError):
            dzcodec.compress(b"abc", chunk_size=0)
        with self.assertRaises(dzcodec.DzcodecError):
            dzcodec.compress(b"abc", threads=-1)
        c = dzcodec.DzCompressor()
        c.flush()
        with self.assertRaises(ValueError):
            c.compress(b"more")


def piece(k):
    return b"%015d\n" % (k % 10**15) + bytes((1 << 20) - 16)


def bigstream(mib):
    c = dzcodec.DzCompressor(threads=2)
    d = dzcodec.DzDecompressor(threads=2)
    coded = decoded = 0
    h_in, h_out = hashlib.sha256(), hashlib.sha256()
    for k in range(mib + 1):
        if k < mib:
            p = piece(k)
            h_in.update(p)
            z = c.compress(p)
        else:
            z = c.flush()
        coded += len(z)
        out = d.decompress(z)
        decoded += len(out)
        h_out.update(out)
    assert d.eof, "decompressor did not reach the end"
    assert decoded == mib << 20 and h_in.digest() == h_out.digest(), "big stream differs"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"bigstream: {mib} MiB -> {coded} bytes -> {decoded} bytes, max RSS {rss} KiB")
    assert rss < 200 * 1024, f"max RSS {rss} KiB"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "bigstream":
        bigstream(int(sys.argv[2]))
        sys.exit(0)
    unittest.main(verbosity=2)
