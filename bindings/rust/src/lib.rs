//! dzcodec: the dzfs neural codec for Rust. Safe wrappers of libdzcodec's C API
//! (codec/include/dzcodec.h): [`compress`] / [`decompress`] of whole buffers, and the streaming
//! adapters [`Encoder`] (a [`Write`]) and [`Decoder`] (a [`Read`]) for inputs of any size in
//! bounded memory. The output is the .dzc container that dzfs-codec and the C, Python and Java
//! bindings write, byte for byte. Every failure is an [`Error`] (`Err`), never a panic or abort.
//!
//! ```no_run
//! let z = dzcodec::compress(b"hello hello hello").unwrap();
//! assert_eq!(dzcodec::decompress(&z).unwrap(), b"hello hello hello");
//! ```
use std::ffi::{CStr, CString};
use std::fmt;
use std::io::{self, Read, Write};
use std::os::raw::{c_char, c_int, c_longlong, c_uint, c_void};
use std::ptr;

#[allow(non_camel_case_types)]
mod ffi {
    use super::*;
    pub enum dzc_model {}
    pub enum dzc_ctx {}
    pub enum dzc_encoder {}
    pub enum dzc_decoder {}
    extern "C" {
        pub fn dzc_version_string() -> *const c_char;
        pub fn dzc_last_error() -> *const c_char;
        pub fn dzc_model_load_file(path: *const c_char, out: *mut *mut dzc_model) -> c_int;
        pub fn dzc_model_load_memory(data: *const c_void, size: usize, out: *mut *mut dzc_model) -> c_int;
        pub fn dzc_model_embedded(index: c_uint, out: *mut *mut dzc_model) -> c_int;
        pub fn dzc_model_free(m: *mut dzc_model);
        pub fn dzc_model_id(m: *const dzc_model, hex: *mut c_char);
        pub fn dzc_ctx_new() -> *mut dzc_ctx;
        pub fn dzc_ctx_free(c: *mut dzc_ctx);
        pub fn dzc_ctx_set_param(c: *mut dzc_ctx, p: c_int, v: c_longlong) -> c_int;
        pub fn dzc_ctx_set_model(c: *mut dzc_ctx, m: *const dzc_model) -> c_int;
        pub fn dzc_ctx_add_model(c: *mut dzc_ctx, m: *const dzc_model) -> c_int;
        pub fn dzc_compress_bound(n: usize, chunk: usize) -> usize;
        pub fn dzc_compress(c: *mut dzc_ctx, dst: *mut c_void, cap: usize, n: *mut usize, src: *const c_void, len: usize) -> c_int;
        pub fn dzc_decompressed_size(src: *const c_void, len: usize, size: *mut u64) -> c_int;
        pub fn dzc_decompress(c: *mut dzc_ctx, dst: *mut c_void, cap: usize, n: *mut usize, src: *const c_void, len: usize) -> c_int;
        pub fn dzc_encoder_new(c: *const dzc_ctx, out: *mut *mut dzc_encoder) -> c_int;
        pub fn dzc_encoder_write(e: *mut dzc_encoder, src: *const c_void, n: usize, used: *mut usize) -> c_int;
        pub fn dzc_encoder_finish(e: *mut dzc_encoder) -> c_int;
        pub fn dzc_encoder_read(e: *mut dzc_encoder, dst: *mut c_void, cap: usize, got: *mut usize) -> c_int;
        pub fn dzc_encoder_pending(e: *const dzc_encoder) -> usize;
        pub fn dzc_encoder_free(e: *mut dzc_encoder);
        pub fn dzc_decoder_new(c: *const dzc_ctx, out: *mut *mut dzc_decoder) -> c_int;
        pub fn dzc_decoder_write(d: *mut dzc_decoder, src: *const c_void, n: usize, used: *mut usize) -> c_int;
        pub fn dzc_decoder_finish(d: *mut dzc_decoder) -> c_int;
        pub fn dzc_decoder_read(d: *mut dzc_decoder, dst: *mut c_void, cap: usize, got: *mut usize) -> c_int;
        pub fn dzc_decoder_pending(d: *const dzc_decoder) -> usize;
        pub fn dzc_decoder_done(d: *const dzc_decoder) -> c_int;
        pub fn dzc_decoder_free(d: *mut dzc_decoder);
    }
}

/// Error codes of the C API (`DZC_E_*`).
pub mod code {
    pub const INVALID_ARGUMENT: i32 = -1;
    pub const CORRUPT: i32 = -2;
    pub const CHECKSUM: i32 = -3;
    pub const MODEL_MISMATCH: i32 = -4;
    pub const UNSUPPORTED: i32 = -5;
    pub const TOO_LARGE: i32 = -6;
    pub const IO: i32 = -7;
    pub const NO_MEMORY: i32 = -8;
    pub const DST_TOO_SMALL: i32 = -9;
    pub const STATE: i32 = -10;
    pub const INTERNAL: i32 = -11;
}

/// A libdzcodec failure: the `DZC_E_*` code and the library's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: i32,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dzcodec error {}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e.code {
            code::CORRUPT | code::CHECKSUM => io::ErrorKind::InvalidData,
            code::INVALID_ARGUMENT => io::ErrorKind::InvalidInput,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

fn check(rc: c_int) -> Result<()> {
    if rc == 0 {
        return Ok(());
    }
    // Read in the same thread right after the failing call: the message is thread-local.
    let msg = unsafe { CStr::from_ptr(ffi::dzc_last_error()) }.to_string_lossy().into_owned();
    Err(Error { code: rc, message: msg })
}

/// The library's version ("0.1.0").
pub fn version() -> String {
    unsafe { CStr::from_ptr(ffi::dzc_version_string()) }.to_string_lossy().into_owned()
}

/// A codec model (the network of the neural frames). Immutable, so shareable between threads.
pub struct Model(*mut ffi::dzc_model);
unsafe impl Send for Model {}
unsafe impl Sync for Model {}

impl Model {
    pub fn from_file(path: &str) -> Result<Model> {
        let p = CString::new(path).map_err(|_| Error { code: code::INVALID_ARGUMENT, message: "NUL in path".into() })?;
        let mut m = ptr::null_mut();
        check(unsafe { ffi::dzc_model_load_file(p.as_ptr(), &mut m) })?;
        Ok(Model(m))
    }
    pub fn from_bytes(file: &[u8]) -> Result<Model> {
        let mut m = ptr::null_mut();
        check(unsafe { ffi::dzc_model_load_memory(file.as_ptr() as *const c_void, file.len(), &mut m) })?;
        Ok(Model(m))
    }
    /// A model compiled into the library (0 = the default).
    pub fn embedded(index: u32) -> Result<Model> {
        let mut m = ptr::null_mut();
        check(unsafe { ffi::dzc_model_embedded(index, &mut m) })?;
        Ok(Model(m))
    }
    /// The model's content hash (32 hex digits), which frames name.
    pub fn id(&self) -> String {
        let mut b = [0 as c_char; 33];
        unsafe { ffi::dzc_model_id(self.0, b.as_mut_ptr()) };
        unsafe { CStr::from_ptr(b.as_ptr()) }.to_string_lossy().into_owned()
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        unsafe { ffi::dzc_model_free(self.0) }
    }
}

/// Settings of a call or a stream (the defaults are the library's: embedded default model, one
/// thread, 64 KiB chunks, zstd level 3, the smallest frame per chunk).
#[derive(Default)]
pub struct Options<'a> {
    pub threads: Option<u32>,
    pub chunk_size: Option<u32>,
    pub zstd_level: Option<i32>,
    /// `Some(None)`: no network; `Some(Some(m))`: code with m; `None`: the embedded default.
    pub model: Option<Option<&'a Model>>,
    /// More models for decoding.
    pub decode_models: Vec<&'a Model>,
}

struct Ctx(*mut ffi::dzc_ctx);

impl Ctx {
    fn new(o: &Options) -> Result<Ctx> {
        let c = unsafe { ffi::dzc_ctx_new() };
        if c.is_null() {
            return Err(Error { code: code::NO_MEMORY, message: "cannot create a context".into() });
        }
        let ctx = Ctx(c);
        if let Some(t) = o.threads {
            check(unsafe { ffi::dzc_ctx_set_param(c, 1, t as c_longlong) })?;
        }
        if let Some(s) = o.chunk_size {
            check(unsafe { ffi::dzc_ctx_set_param(c, 2, s as c_longlong) })?;
        }
        if let Some(l) = o.zstd_level {
            check(unsafe { ffi::dzc_ctx_set_param(c, 3, l as c_longlong) })?;
        }
        if let Some(m) = o.model {
            check(unsafe { ffi::dzc_ctx_set_model(c, m.map_or(ptr::null(), |m| m.0 as *const _)) })?;
        }
        for m in &o.decode_models {
            check(unsafe { ffi::dzc_ctx_add_model(c, m.0) })?;
        }
        Ok(ctx)
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        unsafe { ffi::dzc_ctx_free(self.0) }
    }
}

/// Compresses `data` into one .dzc container with the default options.
pub fn compress(data: &[u8]) -> Result<Vec<u8>> {
    compress_with(data, &Options::default())
}

pub fn compress_with(data: &[u8], o: &Options) -> Result<Vec<u8>> {
    let ctx = Ctx::new(o)?;
    let cap = unsafe { ffi::dzc_compress_bound(data.len(), o.chunk_size.unwrap_or(0) as usize) };
    let mut out = vec![0u8; cap];
    let mut n = 0usize;
    check(unsafe {
        ffi::dzc_compress(ctx.0, out.as_mut_ptr() as *mut c_void, cap, &mut n, data.as_ptr() as *const c_void, data.len())
    })?;
    out.truncate(n);
    Ok(out)
}

/// Decompresses one whole .dzc container; every frame is verified.
pub fn decompress(data: &[u8]) -> Result<Vec<u8>> {
    decompress_with(data, &Options::default())
}

pub fn decompress_with(data: &[u8], o: &Options) -> Result<Vec<u8>> {
    let ctx = Ctx::new(o)?;
    let mut size = 0u64;
    check(unsafe { ffi::dzc_decompressed_size(data.as_ptr() as *const c_void, data.len(), &mut size) })?;
    if size > usize::MAX as u64 {
        return Err(Error { code: code::TOO_LARGE, message: "decompressed size exceeds memory".into() });
    }
    let mut out = vec![0u8; size as usize];
    let mut n = 0usize;
    check(unsafe {
        ffi::dzc_decompress(ctx.0, out.as_mut_ptr() as *mut c_void, out.len(), &mut n, data.as_ptr() as *const c_void, data.len())
    })?;
    out.truncate(n);
    Ok(out)
}

const BLOCK: usize = 1 << 20;

/// A [`Write`] adapter: what is written is compressed into one container on `inner`.
/// [`Encoder::finish`] ends the container and returns `inner`; dropping an unfinished encoder
/// finishes it too but cannot report errors.
pub struct Encoder<W: Write> {
    inner: Option<W>,
    enc: *mut ffi::dzc_encoder,
    _ctx: Ctx,
    buf: Vec<u8>,
}

impl<W: Write> Encoder<W> {
    pub fn new(inner: W) -> Result<Encoder<W>> {
        Encoder::with_options(inner, &Options::default())
    }
    pub fn with_options(inner: W, o: &Options) -> Result<Encoder<W>> {
        let ctx = Ctx::new(o)?;
        let mut e = ptr::null_mut();
        check(unsafe { ffi::dzc_encoder_new(ctx.0, &mut e) })?;
        Ok(Encoder { inner: Some(inner), enc: e, _ctx: ctx, buf: vec![0u8; BLOCK] })
    }
    fn drain(&mut self) -> io::Result<()> {
        let w = self.inner.as_mut().ok_or_else(|| io::Error::new(io::ErrorKind::Other, "encoder finished"))?;
        while unsafe { ffi::dzc_encoder_pending(self.enc) } > 0 {
            let mut got = 0usize;
            check(unsafe { ffi::dzc_encoder_read(self.enc, self.buf.as_mut_ptr() as *mut c_void, self.buf.len(), &mut got) })?;
            w.write_all(&self.buf[..got])?;
        }
        Ok(())
    }
    /// Codes the rest, writes index and trailer, returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        check(unsafe { ffi::dzc_encoder_finish(self.enc) })?;
        self.drain()?;
        Ok(self.inner.take().unwrap())
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.inner.is_none() {
            return Err(io::Error::new(io::ErrorKind::Other, "encoder finished"));
        }
        let mut off = 0;
        while off < data.len() {
            let n = (data.len() - off).min(BLOCK);
            let mut used = 0usize;
            check(unsafe { ffi::dzc_encoder_write(self.enc, data[off..].as_ptr() as *const c_void, n, &mut used) })?;
            off += used;
            self.drain()?;
        }
        Ok(data.len())
    }
    /// Frames are complete only at chunk boundaries: flush passes on what is coded so far.
    fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        self.inner.as_mut().map_or(Ok(()), |w| w.flush())
    }
}

impl<W: Write> Drop for Encoder<W> {
    fn drop(&mut self) {
        if self.inner.is_some() && unsafe { ffi::dzc_encoder_finish(self.enc) } == 0 {
            let _ = self.drain();
        }
        unsafe { ffi::dzc_encoder_free(self.enc) }
    }
}

/// A [`Read`] adapter: decompresses the container read from `inner`. Damage, a missing model or
/// an input that ends early is an `Err` (kind InvalidData for damage), never wrong bytes.
pub struct Decoder<R: Read> {
    inner: R,
    dec: *mut ffi::dzc_decoder,
    _ctx: Ctx,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof_in: bool,
    finished: bool,
}

impl<R: Read> Decoder<R> {
    pub fn new(inner: R) -> Result<Decoder<R>> {
        Decoder::with_options(inner, &Options::default())
    }
    pub fn with_options(inner: R, o: &Options) -> Result<Decoder<R>> {
        let ctx = Ctx::new(o)?;
        let mut d = ptr::null_mut();
        check(unsafe { ffi::dzc_decoder_new(ctx.0, &mut d) })?;
        Ok(Decoder { inner, dec: d, _ctx: ctx, buf: vec![0u8; BLOCK], pos: 0, len: 0, eof_in: false, finished: false })
    }
    /// The inner reader (positioned after what the decoder consumed, up to 1 MiB past it).
    pub fn into_inner(self) -> R {
        let mut me = std::mem::ManuallyDrop::new(self);
        unsafe {
            ffi::dzc_decoder_free(me.dec);
            ptr::drop_in_place(&mut me._ctx);
            ptr::drop_in_place(&mut me.buf);
            ptr::read(&me.inner)
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if unsafe { ffi::dzc_decoder_pending(self.dec) } > 0 {
                let mut got = 0usize;
                check(unsafe { ffi::dzc_decoder_read(self.dec, out.as_mut_ptr() as *mut c_void, out.len(), &mut got) })?;
                return Ok(got);
            }
            if self.finished {
                return Ok(0);
            }
            if unsafe { ffi::dzc_decoder_done(self.dec) } != 0 {
                let mut one = [0u8; 1];
                if self.pos < self.len || self.inner.read(&mut one)? > 0 {
                    return Err(Error { code: code::CORRUPT, message: "trailing bytes after the end of the container".into() }.into());
                }
                check(unsafe { ffi::dzc_decoder_finish(self.dec) })?;
                self.finished = true;
                continue;
            }
            if self.pos == self.len && !self.eof_in {
                self.len = self.inner.read(&mut self.buf)?;
                self.pos = 0;
                self.eof_in = self.len == 0;
            }
            if self.pos < self.len {
                let mut used = 0usize;
                check(unsafe {
                    ffi::dzc_decoder_write(self.dec, self.buf[self.pos..].as_ptr() as *const c_void, self.len - self.pos, &mut used)
                })?;
                self.pos += used;
            } else if self.eof_in {
                check(unsafe { ffi::dzc_decoder_finish(self.dec) })?; // Err when the input ended early
                self.finished = true;
            }
        }
    }
}

impl<R: Read> Drop for Decoder<R> {
    fn drop(&mut self) {
        unsafe { ffi::dzc_decoder_free(self.dec) }
    }
}
