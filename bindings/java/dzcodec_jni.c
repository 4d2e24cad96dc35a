/* dzcodec_jni: the JNI glue of the Java binding (org.dzfs.dzcodec.Dzcodec's native methods) over
 * libdzcodec's C API. Handles are the C pointers as jlong. A failure throws
 * org.dzfs.dzcodec.DzcodecException(code, message); nothing else crosses into Java. Arrays are
 * copied in and out (Get/SetByteArrayRegion), never pinned, so the garbage collector is never
 * blocked for the seconds a neural chunk may take. */
#include <jni.h>
#include <stdlib.h>
#include <dzcodec.h>

static void throw_dz(JNIEnv* env, int code, const char* msg) {
  jclass cls = (*env)->FindClass(env, "org/dzfs/dzcodec/DzcodecException");
  if (!cls) return;
  jmethodID ctor = (*env)->GetMethodID(env, cls, "<init>", "(ILjava/lang/String;)V");
  if (!ctor) return;
  jstring s = (*env)->NewStringUTF(env, msg);
  if (!s) return;
  jobject ex = (*env)->NewObject(env, cls, ctor, (jint)code, s);
  if (ex) (*env)->Throw(env, (jthrowable)ex);
}

/* Throws for rc < 0; returns rc != DZC_OK. */
static int fail(JNIEnv* env, int rc) {
  if (rc == DZC_OK) return 0;
  throw_dz(env, rc, dzc_last_error());
  return 1;
}

static void* buf_of(JNIEnv* env, size_t n) {
  void* p = malloc(n ? n : 1);
  if (!p) throw_dz(env, DZC_E_NO_MEMORY, "out of memory");
  return p;
}

/* Copies a slice of a Java array into a fresh C buffer (NULL after throwing). */
static unsigned char* slice(JNIEnv* env, jbyteArray a, jint off, jint len) {
  if (!a || off < 0 || len < 0 || off > (*env)->GetArrayLength(env, a) - len) {
    throw_dz(env, DZC_E_INVALID_ARGUMENT, "array slice out of bounds");
    return NULL;
  }
  unsigned char* p = buf_of(env, (size_t)len);
  if (p) (*env)->GetByteArrayRegion(env, a, off, len, (jbyte*)p);
  return p;
}

static jbyteArray to_java(JNIEnv* env, const unsigned char* p, size_t n) {
  if (n > 0x7fffffff) {
    throw_dz(env, DZC_E_TOO_LARGE, "result larger than a Java array");
    return NULL;
  }
  jbyteArray a = (*env)->NewByteArray(env, (jsize)n);
  if (a) (*env)->SetByteArrayRegion(env, a, 0, (jsize)n, (const jbyte*)p);
  return a;
}

#define FN(name) Java_org_dzfs_dzcodec_Dzcodec_##name

JNIEXPORT jstring JNICALL FN(nVersion)(JNIEnv* env, jclass c) { return (*env)->NewStringUTF(env, dzc_version_string()); }

/* mode: 0 = embedded default model, 1 = no network, 2 = the given model file bytes.
 * extra: more model files for decoding (may be null). */
JNIEXPORT jlong JNICALL FN(nCtxNew)(JNIEnv* env, jclass c, jint threads, jint chunk, jint level, jint mode,
                                     jbyteArray model, jobjectArray extra) {
  dzc_ctx* ctx = dzc_ctx_new();
  if (!ctx) { throw_dz(env, DZC_E_NO_MEMORY, dzc_last_error()); return 0; }
  int rc = dzc_ctx_set_param(ctx, DZC_P_THREADS, threads);
  if (rc == DZC_OK && chunk > 0) rc = dzc_ctx_set_param(ctx, DZC_P_CHUNK_SIZE, chunk);
  if (rc == DZC_OK && level > 0) rc = dzc_ctx_set_param(ctx, DZC_P_ZSTD_LEVEL, level);
  if (rc == DZC_OK && mode == 1) rc = dzc_ctx_set_model(ctx, NULL);
  if (rc == DZC_OK && mode == 2) {
    jint n = model ? (*env)->GetArrayLength(env, model) : 0;
    unsigned char* p = slice(env, model, 0, n);
    if (!p) { dzc_ctx_free(ctx); return 0; }
    dzc_model* m = NULL;
    rc = dzc_model_load_memory(p, (size_t)n, &m);
    free(p);
    if (rc == DZC_OK) rc = dzc_ctx_set_model(ctx, m);
    dzc_model_free(m);
  }
  jsize k = extra ? (*env)->GetArrayLength(env, extra) : 0;
  for (jsize i = 0; rc == DZC_OK && i < k; ++i) {
    jbyteArray a = (jbyteArray)(*env)->GetObjectArrayElement(env, extra, i);
    jint n = a ? (*env)->GetArrayLength(env, a) : 0;
    unsigned char* p = slice(env, a, 0, n);
    if (!p) { dzc_ctx_free(ctx); return 0; }
    dzc_model* m = NULL;
    rc = dzc_model_load_memory(p, (size_t)n, &m);
    free(p);
    if (rc == DZC_OK) rc = dzc_ctx_add_model(ctx, m);
    dzc_model_free(m);
    (*env)->DeleteLocalRef(env, a);
  }
  if (fail(env, rc)) { dzc_ctx_free(ctx); return 0; }
  return (jlong)(intptr_t)ctx;
}

JNIEXPORT void JNICALL FN(nCtxFree)(JNIEnv* env, jclass c, jlong ctx) { dzc_ctx_free((dzc_ctx*)(intptr_t)ctx); }

JNIEXPORT jbyteArray JNICALL FN(nCompress)(JNIEnv* env, jclass c, jlong ctx, jbyteArray src, jint off, jint len) {
  unsigned char* in = slice(env, src, off, len);
  if (!in) return NULL;
  long long chunk = 0;
  dzc_ctx_get_param((dzc_ctx*)(intptr_t)ctx, DZC_P_CHUNK_SIZE, &chunk);
  size_t cap = dzc_compress_bound((size_t)len, (size_t)chunk);
  unsigned char* out = buf_of(env, cap);
  jbyteArray r = NULL;
  size_t n = 0;
  if (out && !fail(env, dzc_compress((dzc_ctx*)(intptr_t)ctx, out, cap, &n, in, (size_t)len))) r = to_java(env, out, n);
  free(in);
  free(out);
  return r;
}

JNIEXPORT jbyteArray JNICALL FN(nDecompress)(JNIEnv* env, jclass c, jlong ctx, jbyteArray src, jint off, jint len) {
  unsigned char* in = slice(env, src, off, len);
  if (!in) return NULL;
  uint64_t size = 0;
  jbyteArray r = NULL;
  if (!fail(env, dzc_decompressed_size(in, (size_t)len, &size))) {
    if (size > 0x7fffffff) {
      throw_dz(env, DZC_E_TOO_LARGE, "decompressed size larger than a Java array; use DzcodecInputStream");
    } else {
      unsigned char* out = buf_of(env, (size_t)size);
      size_t n = 0;
      if (out && !fail(env, dzc_decompress((dzc_ctx*)(intptr_t)ctx, out, (size_t)size, &n, in, (size_t)len))) r = to_java(env, out, n);
      free(out);
    }
  }
  free(in);
  return r;
}

/* Streams: kind 0 = encoder, 1 = decoder. */
JNIEXPORT jlong JNICALL FN(nStreamNew)(JNIEnv* env, jclass c, jlong ctx, jint kind) {
  void* s = NULL;
  int rc = kind == 0 ? dzc_encoder_new((dzc_ctx*)(intptr_t)ctx, (dzc_encoder**)&s)
                     : dzc_decoder_new((dzc_ctx*)(intptr_t)ctx, (dzc_decoder**)&s);
  if (fail(env, rc)) return 0;
  return (jlong)(intptr_t)s;
}

JNIEXPORT jint JNICALL FN(nStreamWrite)(JNIEnv* env, jclass c, jlong s, jint kind, jbyteArray src, jint off, jint len) {
  unsigned char* in = slice(env, src, off, len);
  if (!in) return 0;
  size_t used = 0;
  int rc = kind == 0 ? dzc_encoder_write((dzc_encoder*)(intptr_t)s, in, (size_t)len, &used)
                     : dzc_decoder_write((dzc_decoder*)(intptr_t)s, in, (size_t)len, &used);
  free(in);
  if (fail(env, rc)) return 0;
  return (jint)used;
}

JNIEXPORT void JNICALL FN(nStreamFinish)(JNIEnv* env, jclass c, jlong s, jint kind) {
  fail(env, kind == 0 ? dzc_encoder_finish((dzc_encoder*)(intptr_t)s) : dzc_decoder_finish((dzc_decoder*)(intptr_t)s));
}

JNIEXPORT jint JNICALL FN(nStreamRead)(JNIEnv* env, jclass c, jlong s, jint kind, jbyteArray dst, jint off, jint len) {
  if (!dst || off < 0 || len < 0 || off > (*env)->GetArrayLength(env, dst) - len) {
    throw_dz(env, DZC_E_INVALID_ARGUMENT, "array slice out of bounds");
    return 0;
  }
  unsigned char* out = buf_of(env, (size_t)len);
  if (!out) return 0;
  size_t got = 0;
  int rc = kind == 0 ? dzc_encoder_read((dzc_encoder*)(intptr_t)s, out, (size_t)len, &got)
                     : dzc_decoder_read((dzc_decoder*)(intptr_t)s, out, (size_t)len, &got);
  if (!fail(env, rc) && got > 0) (*env)->SetByteArrayRegion(env, dst, off, (jsize)got, (const jbyte*)out);
  free(out);
  return (jint)got;
}

JNIEXPORT jlong JNICALL FN(nStreamPending)(JNIEnv* env, jclass c, jlong s, jint kind) {
  return (jlong)(kind == 0 ? dzc_encoder_pending((dzc_encoder*)(intptr_t)s) : dzc_decoder_pending((dzc_decoder*)(intptr_t)s));
}

JNIEXPORT jboolean JNICALL FN(nStreamDone)(JNIEnv* env, jclass c, jlong s) {
  return dzc_decoder_done((dzc_decoder*)(intptr_t)s) ? JNI_TRUE : JNI_FALSE;
}

JNIEXPORT void JNICALL FN(nStreamFree)(JNIEnv* env, jclass c, jlong s, jint kind) {
  if (kind == 0) dzc_encoder_free((dzc_encoder*)(intptr_t)s);
  else dzc_decoder_free((dzc_decoder*)(intptr_t)s);
}
