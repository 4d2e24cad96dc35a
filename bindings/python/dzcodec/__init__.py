"""dzcodec: the dzfs neural codec for Python, with the interface of the standard library's lzma
and bz2 modules: compress(), decompress(), DzCompressor / DzDecompressor objects, open()
returning a file object, and DzcodecError for every failure.

A thin layer over libdzcodec's C API (codec/include/dzcodec.h) through ctypes: every coding call
runs in the C library with the GIL released (ctypes releases it around each foreign call), so
other Python threads run while a buffer is coded. Output is the .dzc container that dzfs-codec
and the C, Java and Rust bindings write, byte for byte.

The library is found as libdzcodec.so.0 by the dynamic loader, or at $DZCODEC_LIBRARY.
"""

import builtins
import ctypes
import io
import os

__all__ = ["compress", "decompress", "DzCompressor", "DzDecompressor", "DzFile", "open", "Model",
           "DzcodecError", "CODEC_AUTO", "CODEC_RAW", "CODEC_ZSTD", "CODEC_NEURAL",
           "library_version", "container_version", "embedded_model_count"]

CODEC_AUTO, CODEC_RAW, CODEC_ZSTD, CODEC_NEURAL = 0, 1, 2, 3
_P_THREADS, _P_CHUNK_SIZE, _P_ZSTD_LEVEL, _P_CODEC, _P_ISA, _P_MAX_CHUNK = 1, 2, 3, 4, 5, 6
_E_DST_TOO_SMALL = -9
_BLOCK = 1 << 20  # bytes handed to the library per call; bounds what a stream holds


class DzcodecError(Exception):
    """A libdzcodec failure: .code is the DZC_E_* code (negative), str() the library's message."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _load():
    path = os.environ.get("DZCODEC_LIBRARY") or "libdzcodec.so.0"
    lib = ctypes.CDLL(path)
    c_size_p = ctypes.POINTER(ctypes.c_size_t)
    vp = ctypes.c_void_p
    sigs = {
        "dzc_version_string": (ctypes.c_char_p, []),
        "dzc_container_version": (ctypes.c_uint, []),
        "dzc_last_error": (ctypes.c_char_p, []),
        "dzc_embedded_model_count": (ctypes.c_uint, []),
        "dzc_model_load_file": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(vp)]),
        "dzc_model_load_memory": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(vp)]),
        "dzc_model_embedded": (ctypes.c_int, [ctypes.c_uint, ctypes.POINTER(vp)]),
        "dzc_model_free": (None, [vp]),
        "dzc_model_id": (None, [vp, ctypes.c_char_p]),
        "dzc_ctx_new": (vp, []),
        "dzc_ctx_free": (None, [vp]),
        "dzc_ctx_set_param": (ctypes.c_int, [vp, ctypes.c_int, ctypes.c_longlong]),
        "dzc_ctx_set_model": (ctypes.c_int, [vp, vp]),
        "dzc_ctx_add_model": (ctypes.c_int, [vp, vp]),
        "dzc_compress_bound": (ctypes.c_size_t, [ctypes.c_size_t, ctypes.c_size_t]),
        "dzc_compress": (ctypes.c_int, [vp, vp, ctypes.c_size_t, c_size_p, ctypes.c_char_p, ctypes.c_size_t]),
        "dzc_decompressed_size": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_uint64)]),
        "dzc_decompress": (ctypes.c_int, [vp, vp, ctypes.c_size_t, c_size_p, ctypes.c_char_p, ctypes.c_size_t]),
        "dzc_encoder_new": (ctypes.c_int, [vp, ctypes.POINTER(vp)]),
        "dzc_encoder_write": (ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_size_t, c_size_p]),
        "dzc_encoder_finish": (ctypes.c_int, [vp]),
        "dzc_encoder_read": (ctypes.c_int, [vp, vp, ctypes.c_size_t, c_size_p]),
        "dzc_encoder_pending": (ctypes.c_size_t, [vp]),
        "dzc_encoder_free": (None, [vp]),
        "dzc_decoder_new": (ctypes.c_int, [vp, ctypes.POINTER(vp)]),
        "dzc_decoder_write": (ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_size_t, c_size_p]),
        "dzc_decoder_finish": (ctypes.c_int, [vp]),
        "dzc_decoder_read": (ctypes.c_int, [vp, vp, ctypes.c_size_t, c_size_p]),
        "dzc_decoder_pending": (ctypes.c_size_t, [vp]),
        "dzc_decoder_done": (ctypes.c_int, [vp]),
        "dzc_decoder_free": (None, [vp]),
        "dzc_reader_open": (ctypes.c_int, [vp, ctypes.c_char_p, ctypes.POINTER(vp)]),
        "dzc_reader_size": (ctypes.c_uint64, [vp]),
        "dzc_reader_pread": (ctypes.c_int, [vp, vp, ctypes.c_size_t, ctypes.c_uint64, c_size_p]),
        "dzc_reader_free": (None, [vp]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    return lib


_lib = _load()


def _check(rc):
    if rc != 0:
        raise DzcodecError(rc, _lib.dzc_last_error().decode("utf-8", "replace"))


def library_version():
    return _lib.dzc_version_string().decode()


def container_version():
    return _lib.dzc_container_version()


def embedded_model_count():
    return _lib.dzc_embedded_model_count()


def _as_bytes(data):
    """bytes are passed to C without a copy; other buffers (bytearray, memoryview) are copied."""
    if isinstance(data, bytes):
        return data
    return bytes(memoryview(data))


class Model:
    """A codec model (the network of the neural frames): Model.from_file(path),
    Model.from_bytes(b), Model.embedded(i) (0 = the default). .id is its content hash (hex)."""

    def __init__(self, handle):
        self._h = ctypes.c_void_p(handle)

    @classmethod
    def from_file(cls, path):
        h = ctypes.c_void_p()
        _check(_lib.dzc_model_load_file(os.fsencode(path), ctypes.byref(h)))
        return cls(h.value)

    @classmethod
    def from_bytes(cls, data):
        data = _as_bytes(data)
        h = ctypes.c_void_p()
        _check(_lib.dzc_model_load_memory(data, len(data), ctypes.byref(h)))
        return cls(h.value)

    @classmethod
    def embedded(cls, index=0):
        h = ctypes.c_void_p()
        _check(_lib.dzc_model_embedded(index, ctypes.byref(h)))
        return cls(h.value)

    @property
    def id(self):
        buf = ctypes.create_string_buffer(33)
        _lib.dzc_model_id(self._h, buf)
        return buf.value.decode()

    def __del__(self):
        if getattr(self, "_h", None) is not None and _lib is not None:
            _lib.dzc_model_free(self._h)
            self._h = None


_DEFAULT = object()


class _Ctx:
    """Owns a dzc_ctx. model: a Model for new frames, None for no network, default the embedded
    default; models: more Models for decoding."""

    def __init__(self, model=_DEFAULT, models=(), threads=1, chunk_size=None, level=None, codec=None, max_chunk=None):
        self.h = ctypes.c_void_p(_lib.dzc_ctx_new())
        if not self.h.value:
            raise DzcodecError(-8, _lib.dzc_last_error().decode() or "out of memory")
        if model is None:
            _check(_lib.dzc_ctx_set_model(self.h, None))
        elif model is not _DEFAULT:
            _check(_lib.dzc_ctx_set_model(self.h, model._h))
        for m in models:
            _check(_lib.dzc_ctx_add_model(self.h, m._h))
        for p, v in ((_P_THREADS, threads), (_P_CHUNK_SIZE, chunk_size), (_P_ZSTD_LEVEL, level),
                     (_P_CODEC, codec), (_P_MAX_CHUNK, max_chunk)):
            if v is not None:
                _check(_lib.dzc_ctx_set_param(self.h, p, int(v)))

    def __del__(self):
        if getattr(self, "h", None) is not None and _lib is not None:
            _lib.dzc_ctx_free(self.h)
            self.h = None


def compress(data, *, model=_DEFAULT, threads=1, chunk_size=None, level=None, codec=None):
    """Compresses a bytes-like object into one .dzc container (bytes)."""
    data = _as_bytes(data)
    ctx = _Ctx(model, (), threads, chunk_size, level, codec)
    cap = _lib.dzc_compress_bound(len(data), chunk_size or 0)
    while True:
        out = ctypes.create_string_buffer(cap)
        n = ctypes.c_size_t()
        rc = _lib.dzc_compress(ctx.h, out, cap, ctypes.byref(n), data, len(data))
        if rc == _E_DST_TOO_SMALL and codec == CODEC_NEURAL:  # forced neural may exceed the bound
            cap *= 2
            continue
        _check(rc)
        return out.raw[:n.value]


def decompress(data, *, models=(), threads=1, max_chunk=None):
    """Decompresses one whole .dzc container (or legacy frames); every frame is verified.
    Raises DzcodecError on truncated, damaged or trailing input and on a missing model."""
    data = _as_bytes(data)
    ctx = _Ctx(_DEFAULT, models, threads, max_chunk=max_chunk)
    size = ctypes.c_uint64()
    _check(_lib.dzc_decompressed_size(data, len(data), ctypes.byref(size)))
    out = ctypes.create_string_buffer(max(1, size.value))
    n = ctypes.c_size_t()
    _check(_lib.dzc_decompress(ctx.h, out, size.value, ctypes.byref(n), data, len(data)))
    return out.raw[:n.value]


class DzCompressor:
    """Incremental compression, as lzma.LZMACompressor: compress(data) returns what is ready,
    flush() the rest (index and trailer included); one container per object."""

    def __init__(self, *, model=_DEFAULT, threads=1, chunk_size=None, level=None, codec=None):
        self._ctx = _Ctx(model, (), threads, chunk_size, level, codec)
        self._e = ctypes.c_void_p()
        _check(_lib.dzc_encoder_new(self._ctx.h, ctypes.byref(self._e)))
        self._buf = ctypes.create_string_buffer(_BLOCK)
        self._flushed = False

    def _drain(self, parts):
        got = ctypes.c_size_t()
        while _lib.dzc_encoder_pending(self._e):
            _check(_lib.dzc_encoder_read(self._e, self._buf, _BLOCK, ctypes.byref(got)))
            parts.append(self._buf.raw[:got.value])

    def compress(self, data):
        if self._flushed:
            raise ValueError("compressor has been flushed")
        data = _as_bytes(data)
        parts, off, used = [], 0, ctypes.c_size_t()
        mv = memoryview(data)
        while off < len(data):
            piece = data if off == 0 and len(data) <= _BLOCK else bytes(mv[off:off + _BLOCK])
            _check(_lib.dzc_encoder_write(self._e, piece, len(piece), ctypes.byref(used)))
            off += used.value
            self._drain(parts)
        self._drain(parts)
        return b"".join(parts)

    def flush(self):
        if self._flushed:
            raise ValueError("repeated call to flush()")
        self._flushed = True
        _check(_lib.dzc_encoder_finish(self._e))
        parts = []
        self._drain(parts)
        return b"".join(parts)

    def __del__(self):
        if getattr(self, "_e", None) is not None and _lib is not None:
            _lib.dzc_encoder_free(self._e)
            self._e = None


class DzDecompressor:
    """Incremental decompression, as lzma.LZMADecompressor: decompress(data, max_length=-1),
    .eof (the container's end was read), .unused_data (bytes after it), .needs_input."""

    def __init__(self, *, models=(), threads=1, max_chunk=None):
        self._ctx = _Ctx(_DEFAULT, models, threads, max_chunk=max_chunk)
        self._d = ctypes.c_void_p()
        _check(_lib.dzc_decoder_new(self._ctx.h, ctypes.byref(self._d)))
        self._buf = ctypes.create_string_buffer(_BLOCK)
        self._in = b""       # input not yet taken by the library
        self._out = b""      # decoded bytes beyond max_length of an earlier call
        self.eof = False
        self._ended = False
        self.unused_data = b""
        self.needs_input = True

    def _pull(self, parts, limit):
        got = ctypes.c_size_t()
        total = sum(len(p) for p in parts)
        while _lib.dzc_decoder_pending(self._d) and (limit < 0 or total < limit):
            _check(_lib.dzc_decoder_read(self._d, self._buf, _BLOCK, ctypes.byref(got)))
            parts.append(self._buf.raw[:got.value])
            total += got.value
        return total

    def decompress(self, data, max_length=-1):
        if self.eof:
            raise EOFError("already at end of stream")
        data = _as_bytes(data)
        if self._ended:  # the container ended: later bytes are unused data
            self.unused_data += data
        else:
            self._in += data
        parts = [self._out] if self._out else []
        self._out = b""
        used = ctypes.c_size_t()
        total = self._pull(parts, max_length)
        while self._in and not self._ended and (max_length < 0 or total < max_length):
            piece = self._in[:_BLOCK]
            _check(_lib.dzc_decoder_write(self._d, piece, len(piece), ctypes.byref(used)))
            self._in = self._in[used.value:]
            total = self._pull(parts, max_length)
            if _lib.dzc_decoder_done(self._d):
                break
            if used.value == 0 and not _lib.dzc_decoder_pending(self._d):
                raise DzcodecError(-11, "decoder took no input")
        if not self._ended and _lib.dzc_decoder_done(self._d) and not _lib.dzc_decoder_pending(self._d):
            _check(_lib.dzc_decoder_finish(self._d))
            self._ended = True
            self.unused_data, self._in = self._in, b""
        out = b"".join(parts)
        if max_length >= 0 and len(out) > max_length:
            out, self._out = out[:max_length], out[max_length:]
        self.eof = self._ended and not self._out
        self.needs_input = (not self._ended and not self._in and not self._out
                            and not _lib.dzc_decoder_pending(self._d))
        return out

    def _finish(self):
        """End of input (for DzFile): raises DzcodecError when the container is incomplete."""
        if not self.eof:
            _check(_lib.dzc_decoder_finish(self._d))
            parts = []
            self._pull(parts, -1)
            self._out += b"".join(parts)

    def __del__(self):
        if getattr(self, "_d", None) is not None and _lib is not None:
            _lib.dzc_decoder_free(self._d)
            self._d = None


class DzFile(io.BufferedIOBase):
    """A .dzc file as a binary file object (as lzma.LZMAFile). Reading streams through a
    decoder; seek() forward decodes and discards, backward restarts (as lzma does), except for
    files opened by name, which are read through the container's index: seek and read decode only
    the frames they touch."""

    def __init__(self, filename, mode="r", *, model=_DEFAULT, models=(), threads=1, chunk_size=None, level=None):
        self._fp, self._close_fp, self._pos = None, False, 0
        self._reader = None
        if mode in ("r", "rb"):
            self._mode = "r"
        elif mode in ("w", "wb", "a", "ab", "x", "xb"):
            self._mode = "w"
        else:
            raise ValueError(f"invalid mode: {mode!r}")
        self._models, self._threads = tuple(models), threads
        if isinstance(filename, (str, bytes, os.PathLike)):
            if self._mode == "r":
                self._reader = self._try_reader(filename)
            if self._reader is None:
                self._fp = builtins.open(filename, mode if "b" in mode else mode + "b")
                self._close_fp = True
        elif hasattr(filename, "read") or hasattr(filename, "write"):
            self._fp = filename
        else:
            raise TypeError("filename must be a str, bytes, os.PathLike or file object")
        if self._mode == "w":
            self._comp = DzCompressor(model=model, threads=threads, chunk_size=chunk_size, level=level)
        elif self._reader is None:
            self._dec = DzDecompressor(models=models, threads=threads)
            self._eof_in = False

    def _try_reader(self, filename):
        ctx = _Ctx(_DEFAULT, self._models, self._threads)
        r = ctypes.c_void_p()
        rc = _lib.dzc_reader_open(ctx.h, os.fsencode(filename), ctypes.byref(r))
        if rc == -5:  # a legacy file without index: streamed instead
            return None
        _check(rc)
        self._rctx, self._size = ctx, _lib.dzc_reader_size(r)
        return r

    # -- io.BufferedIOBase
    def readable(self):
        self._check_open()
        return self._mode == "r"

    def writable(self):
        self._check_open()
        return self._mode == "w"

    def seekable(self):
        self._check_open()
        return self._mode == "r" and (self._reader is not None or self._fp.seekable())

    def _check_open(self):
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def read(self, size=-1):
        self._check_open()
        if self._mode != "r":
            raise io.UnsupportedOperation("not open for reading")
        if size is None or size < 0:
            parts = []
            while True:
                b = self.read(_BLOCK)
                if not b:
                    return b"".join(parts)
                parts.append(b)
        if self._reader is not None:
            n = max(0, min(size, self._size - self._pos))
            buf = ctypes.create_string_buffer(max(1, n))
            got = ctypes.c_size_t()
            _check(_lib.dzc_reader_pread(self._reader, buf, n, self._pos, ctypes.byref(got)))
            self._pos += got.value
            return buf.raw[:got.value]
        out = b""
        while len(out) < size:
            dec = self._dec
            if dec.eof or self._eof_in:
                # No more input: what the decoder still holds, then the end.
                b = dec._out[:size - len(out)]
                dec._out = dec._out[len(b):]
                if not b:
                    break
                out += b
                continue
            data = b""
            if dec.needs_input:
                data = self._fp.read(_BLOCK)
                if not data:
                    self._eof_in = True
                    dec._finish()  # DzcodecError when the container is incomplete
                    continue
            out += dec.decompress(data, size - len(out))
        self._pos += len(out)
        return out

    read1 = read

    def readinto(self, b):
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def write(self, data):
        self._check_open()
        if self._mode != "w":
            raise io.UnsupportedOperation("not open for writing")
        data = _as_bytes(data)
        out = self._comp.compress(data)
        if out:
            self._fp.write(out)
        self._pos += len(data)
        return len(data)

    def tell(self):
        self._check_open()
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        self._check_open()
        if self._mode != "r":
            raise io.UnsupportedOperation("seek on a file open for writing")
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence == io.SEEK_END:
            if self._reader is None:
                while self.read(_BLOCK):
                    pass
                offset += self._pos
            else:
                offset += self._size
        if offset < 0:
            raise ValueError("negative seek position")
        if self._reader is not None:
            self._pos = offset
            return offset
        if offset < self._pos:  # restart the stream, as lzma does
            self._fp.seek(0)
            self._dec = DzDecompressor(models=self._models, threads=self._threads)
            self._eof_in, self._pos = False, 0
        while self._pos < offset:
            if not self.read(min(_BLOCK, offset - self._pos)):
                break
        return self._pos

    def close(self):
        if self.closed:
            return
        try:
            if self._mode == "w":
                self._fp.write(self._comp.flush())
        finally:
            try:
                if self._reader is not None:
                    _lib.dzc_reader_free(self._reader)
                    self._reader = None
                if self._close_fp and self._fp is not None:
                    self._fp.close()
            finally:
                super().close()


def open(filename, mode="rb", *, model=_DEFAULT, models=(), threads=1, chunk_size=None, level=None,
         encoding=None, errors=None, newline=None):
    """Opens a .dzc file as lzma.open does: binary modes "r", "rb", "w", "wb", "x", "xb", "a",
    "ab" (a/x open the underlying file so; each DzFile writes one container), and text modes
    "rt", "wt", ... wrapped in io.TextIOWrapper."""
    if "t" in mode:
        if "b" in mode:
            raise ValueError(f"invalid mode: {mode!r}")
        f = DzFile(filename, mode.replace("t", ""), model=model, models=models, threads=threads,
                   chunk_size=chunk_size, level=level)
        return io.TextIOWrapper(f, encoding, errors, newline)
    if encoding is not None or errors is not None or newline is not None:
        raise ValueError("encoding, errors and newline are for text mode only")
    return DzFile(filename, mode, model=model, models=models, threads=threads, chunk_size=chunk_size, level=level)
