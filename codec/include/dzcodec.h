/* dzcodec.h: the public C API of libdzcodec, the dzfs neural codec as a library.
 *
 * libdzcodec compresses buffers and streams into the .dzc container (codec/FORMAT.md section 8:
 * a header, self-describing frames of at most one chunk each, and an index so that a reader can
 * seek), and decompresses them again. It is the codec of the dzfs filesystem without the
 * filesystem: an integer-only next-byte predictor mixed with context models, driving a binary
 * arithmetic coder, with zstd and raw frames as fallbacks (the smallest frame wins, per chunk).
 * Output is a pure function of the input, the model and the chunk size: thread count, streaming
 * call sizes and the language binding never change a byte.
 *
 * Conventions (as in zstd.h / lzma.h):
 *   - Every function that can fail returns an int: DZC_OK (0) or a negative DZC_E_* code.
 *     dzc_last_error() then describes the failure (a thread-local message). Nothing throws and
 *     nothing aborts across this API; bad input gives an error code, never wrong output.
 *   - Objects are opaque and created/freed by the library. Nothing here is thread-safe on one
 *     object, but distinct objects may be used from distinct threads at once. A model may be
 *     shared by many contexts (it is immutable and reference counted).
 *   - Only symbols prefixed dzc_ are exported (versioned DZCODEC_0); the exported list is checked
 *     by a test (codec/capi/dzcodec.sym).
 * Full reference: codec/API.md. Link with `pkg-config --cflags --libs dzcodec`.
 */
#ifndef DZCODEC_H
#define DZCODEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(DZC_STATIC)
#define DZC_API __attribute__((visibility("default")))
#else
#define DZC_API
#endif

/* ------------------------------------------------------------------ versions */
#define DZC_VERSION_MAJOR 0
#define DZC_VERSION_MINOR 1
#define DZC_VERSION_PATCH 0
#define DZC_VERSION_NUMBER (DZC_VERSION_MAJOR * 10000 + DZC_VERSION_MINOR * 100 + DZC_VERSION_PATCH)
#define DZC_VERSION_STRING "0.1.0"

DZC_API unsigned dzc_version_number(void);       /* DZC_VERSION_NUMBER of the library linked */
DZC_API const char* dzc_version_string(void);    /* "0.1.0" */
DZC_API unsigned dzc_container_version(void);    /* .dzc container version written (1) */
DZC_API unsigned dzc_frame_version_max(void);    /* newest frame version decoded (6) */

/* ------------------------------------------------------------------ errors */
#define DZC_OK 0
#define DZC_E_INVALID_ARGUMENT (-1) /* caller misuse: NULL pointer, option out of range */
#define DZC_E_CORRUPT (-2)          /* input malformed or truncated */
#define DZC_E_CHECKSUM (-3)         /* decoded bytes (or a model file) fail their checksum */
#define DZC_E_MODEL_MISMATCH (-4)   /* a frame names a model the context does not have */
#define DZC_E_UNSUPPORTED (-5)      /* unknown container/frame version, codec or architecture */
#define DZC_E_TOO_LARGE (-6)        /* a declared size above a limit */
#define DZC_E_IO (-7)               /* file I/O failed */
#define DZC_E_NO_MEMORY (-8)        /* allocation failed */
#define DZC_E_DST_TOO_SMALL (-9)    /* one-shot output buffer too small (nothing useful written) */
#define DZC_E_STATE (-10)           /* call out of order (write after finish, use after an error) */
#define DZC_E_INTERNAL (-11)        /* library bug */

DZC_API const char* dzc_error_name(int code);   /* static text for a code, e.g. "corrupt input" */
/* The message of the last failure in the calling thread (never NULL; "" before any failure).
 * Valid until the next dzc_ call in this thread. */
DZC_API const char* dzc_last_error(void);

/* ------------------------------------------------------------------ models */
/* A model is the pretrained network of the neural frames (codec/FORMAT.md section 4). Frames name
 * their model by content hash, so a decoder needs the same model the encoder used. */
typedef struct dzc_model dzc_model;

DZC_API int dzc_model_load_file(const char* path, dzc_model** out);
DZC_API int dzc_model_load_memory(const void* data, size_t size, dzc_model** out); /* copies */
/* Models compiled into the library (index 0 = the default model, then the others by name). */
DZC_API unsigned dzc_embedded_model_count(void);
DZC_API int dzc_model_embedded(unsigned index, dzc_model** out);
DZC_API void dzc_model_free(dzc_model* model); /* NULL is fine */
DZC_API void dzc_model_id(const dzc_model* model, char hex_out[33]); /* 32 hex digits + NUL */

/* ------------------------------------------------------------------ contexts */
/* A context holds the settings of the calls that use it: the encoding model (default: embedded
 * model 0), the decoding models (default: every embedded model, plus the encoding model and any
 * added), and the parameters below. Encoders and decoders copy them when created. */
typedef struct dzc_ctx dzc_ctx;

#define DZC_P_THREADS 1     /* worker threads per call: 1 (default) .. 256; 0 = all CPUs */
#define DZC_P_CHUNK_SIZE 2  /* raw bytes per frame: 1 .. 64 MiB (default 65536) */
#define DZC_P_ZSTD_LEVEL 3  /* level of the zstd candidate frame: 1 .. 22 (default 3) */
#define DZC_P_CODEC 4       /* DZC_CODEC_AUTO (default) or a forced frame codec */
#define DZC_P_ISA 5         /* DZC_ISA_AUTO (default) or a kernel set; bytes never change */
#define DZC_P_MAX_CHUNK 6   /* decoding: refuse frames/containers with larger chunks (default 64 MiB) */

#define DZC_CODEC_AUTO 0    /* per chunk the smallest of neural, zstd and raw */
#define DZC_CODEC_RAW 1
#define DZC_CODEC_ZSTD 2
#define DZC_CODEC_NEURAL 3  /* always neural: output may exceed dzc_compress_bound() */

#define DZC_ISA_AUTO 0
#define DZC_ISA_SCALAR 1
#define DZC_ISA_AVX2 2
#define DZC_ISA_AVX512VNNI 3

DZC_API dzc_ctx* dzc_ctx_new(void); /* NULL only when out of memory */
DZC_API void dzc_ctx_free(dzc_ctx* ctx);
DZC_API int dzc_ctx_set_param(dzc_ctx* ctx, int param, long long value);
DZC_API int dzc_ctx_get_param(const dzc_ctx* ctx, int param, long long* value);
/* The model new neural frames use (NULL = no network: the adaptive models alone). The context
 * keeps its own reference; the caller may free its handle at once. Also added for decoding. */
DZC_API int dzc_ctx_set_model(dzc_ctx* ctx, const dzc_model* model);
DZC_API int dzc_ctx_add_model(dzc_ctx* ctx, const dzc_model* model); /* one more decoding model */

/* ------------------------------------------------------------------ one-shot */
/* Upper bound of dzc_compress's output for src_size bytes in chunks of chunk_size (0 = the
 * default 65536), for DZC_CODEC_AUTO, RAW and ZSTD. 0 when the bound overflows size_t. */
DZC_API size_t dzc_compress_bound(size_t src_size, size_t chunk_size);
/* Compresses src into one .dzc container in dst. *dst_size = bytes written. */
DZC_API int dzc_compress(dzc_ctx* ctx, void* dst, size_t dst_capacity, size_t* dst_size,
                         const void* src, size_t src_size);
/* The decompressed size that a whole .dzc container (or a legacy concatenation of frames)
 * declares, from its index or frame headers; nothing is decoded or verified beyond them. */
DZC_API int dzc_decompressed_size(const void* src, size_t src_size, uint64_t* size);
/* Decompresses one whole .dzc container (or legacy frames) into dst; every frame is verified.
 * DZC_E_DST_TOO_SMALL when the output does not fit (checked from the index before decoding). */
DZC_API int dzc_decompress(dzc_ctx* ctx, void* dst, size_t dst_capacity, size_t* dst_size,
                           const void* src, size_t src_size);

/* ------------------------------------------------------------------ streaming */
/* Inputs of any size in bounded memory (about threads x chunk size in and out). Write input,
 * read output, repeat; then finish and read the rest:
 *
 *   while (n > 0) { dzc_encoder_write(e, p, n, &used); p += used; n -= used;
 *                   while (dzc_encoder_pending(e)) { dzc_encoder_read(e, buf, cap, &got); emit(buf, got); } }
 *   dzc_encoder_finish(e); then read until dzc_encoder_pending(e) == 0.
 *
 * write takes no input while a batch of coded output waits to be read (used may then be 0).
 * Errors are sticky: after one, every call returns DZC_E_STATE (read still drains what was
 * produced before it). The decoder mirrors the encoder; its finish reports a truncated input. */
typedef struct dzc_encoder dzc_encoder;
DZC_API int dzc_encoder_new(const dzc_ctx* ctx, dzc_encoder** out);
DZC_API int dzc_encoder_write(dzc_encoder* enc, const void* src, size_t size, size_t* consumed);
DZC_API int dzc_encoder_finish(dzc_encoder* enc); /* codes the rest, appends index and trailer */
DZC_API int dzc_encoder_read(dzc_encoder* enc, void* dst, size_t capacity, size_t* got);
DZC_API size_t dzc_encoder_pending(const dzc_encoder* enc);
DZC_API void dzc_encoder_free(dzc_encoder* enc);

typedef struct dzc_decoder dzc_decoder;
DZC_API int dzc_decoder_new(const dzc_ctx* ctx, dzc_decoder** out);
DZC_API int dzc_decoder_write(dzc_decoder* dec, const void* src, size_t size, size_t* consumed);
/* End of input: decodes what is buffered; DZC_E_CORRUPT if the container is incomplete. */
DZC_API int dzc_decoder_finish(dzc_decoder* dec);
DZC_API int dzc_decoder_read(dzc_decoder* dec, void* dst, size_t capacity, size_t* got);
DZC_API size_t dzc_decoder_pending(const dzc_decoder* dec);
/* 1 once the container's trailer was read and verified (more input would be an error). */
DZC_API int dzc_decoder_done(const dzc_decoder* dec);
DZC_API void dzc_decoder_free(dzc_decoder* dec);

/* ------------------------------------------------------------------ random access */
/* A .dzc file opened by its index: reads at any offset decode only the frames they touch (the
 * last frame decoded is kept). Legacy files without an index are refused (DZC_E_UNSUPPORTED). */
typedef struct dzc_reader dzc_reader;
DZC_API int dzc_reader_open(const dzc_ctx* ctx, const char* path, dzc_reader** out);
DZC_API uint64_t dzc_reader_size(const dzc_reader* reader); /* decompressed size */
/* Reads up to n bytes at offset; *got < n only at the end of the data. */
DZC_API int dzc_reader_pread(dzc_reader* reader, void* dst, size_t n, uint64_t offset, size_t* got);
DZC_API void dzc_reader_free(dzc_reader* reader);

#ifdef __cplusplus
}
#endif
#endif /* DZCODEC_H */
