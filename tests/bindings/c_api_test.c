/* c_api_test: the C API of libdzcodec (codec/include/dzcodec.h), linked against the shared
 * library as an outside program would. Usage: c_api_test DATA_DIR OUT_DIR   (round trips, bad
 * input, random access; DATA_DIR from make_fixtures.sh), or c_api_test bigstream MIB (a stream of
 * MIB MiB through an encoder and a decoder in lockstep, run under `ulimit -v` by ctest: the
 * library's memory stays bounded whatever the input's size). Plain C, no test framework: every
 * CHECK that fails is printed and makes the exit status 1. */
#include <dzcodec.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int failures;
#define CHECK(c, ...)                                                            \
  do {                                                                           \
    if (!(c)) {                                                                  \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                       \
      fprintf(stderr, __VA_ARGS__);                                              \
      fprintf(stderr, " [last error: %s]\n", dzc_last_error());                 \
      failures++;                                                                \
    }                                                                            \
  } while (0)

static unsigned char* read_all(const char* path, size_t* n) {
  FILE* f = fopen(path, "rb");
  if (!f) { fprintf(stderr, "cannot open %s\n", path); exit(2); }
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char* b = malloc(len ? (size_t)len : 1);
  if (!b || fread(b, 1, (size_t)len, f) != (size_t)len) { fprintf(stderr, "cannot read %s\n", path); exit(2); }
  fclose(f);
  *n = (size_t)len;
  return b;
}

static void write_all(const char* path, const unsigned char* b, size_t n) {
  FILE* f = fopen(path, "wb");
  if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) { fprintf(stderr, "cannot write %s\n", path); exit(2); }
}

/* Streaming encode with irregular write sizes and a small read buffer. */
static unsigned char* stream_encode(dzc_ctx* ctx, const unsigned char* src, size_t n, size_t* out_n) {
  dzc_encoder* e = NULL;
  size_t cap = dzc_compress_bound(n, 0) + 1024, w = 0, off = 0, step = 1;
  unsigned char* out = malloc(cap);
  unsigned char buf[3000];
  CHECK(dzc_encoder_new(ctx, &e) == DZC_OK, "encoder_new");
  while (off < n) {
    size_t want = n - off < step ? n - off : step, used = 0;
    CHECK(dzc_encoder_write(e, src + off, want, &used) == DZC_OK, "encoder_write");
    off += used;
    step = step * 7 + 1;  /* 1, 8, 57, ... up to about 1 MiB, then again */
    if (step > (1u << 20)) step = 3;
    while (dzc_encoder_pending(e) > 0) {
      size_t got = 0;
      CHECK(dzc_encoder_read(e, buf, sizeof buf, &got) == DZC_OK && got > 0, "encoder_read");
      if (w + got > cap) { cap = 2 * cap + got; out = realloc(out, cap); }
      memcpy(out + w, buf, got);
      w += got;
    }
  }
  CHECK(dzc_encoder_finish(e) == DZC_OK, "encoder_finish");
  while (dzc_encoder_pending(e) > 0) {
    size_t got = 0;
    CHECK(dzc_encoder_read(e, buf, sizeof buf, &got) == DZC_OK, "encoder_read");
    if (w + got > cap) { cap = 2 * cap + got; out = realloc(out, cap); }
    memcpy(out + w, buf, got);
    w += got;
  }
  size_t used = 1;
  CHECK(dzc_encoder_write(e, "x", 1, &used) == DZC_E_STATE && used == 0, "write after finish must be refused");
  dzc_encoder_free(e);
  *out_n = w;
  return out;
}

/* Streaming decode in pieces of `piece` bytes; returns the status of the first failure. */
static int stream_decode(dzc_ctx* ctx, const unsigned char* src, size_t n, size_t piece, unsigned char** out, size_t* out_n) {
  dzc_decoder* d = NULL;
  size_t cap = 1 << 16, w = 0, off = 0;
  unsigned char* o = malloc(cap);
  unsigned char buf[5000];
  int rc = dzc_decoder_new(ctx, &d);
  while (rc == DZC_OK && off < n) {
    size_t want = n - off < piece ? n - off : piece, used = 0;
    rc = dzc_decoder_write(d, src + off, want, &used);
    off += used;
    while (rc == DZC_OK && dzc_decoder_pending(d) > 0) {
      size_t got = 0;
      rc = dzc_decoder_read(d, buf, sizeof buf, &got);
      if (w + got > cap) { cap = 2 * cap + got; o = realloc(o, cap); }
      memcpy(o + w, buf, got);
      w += got;
    }
    if (rc == DZC_OK && used == 0 && dzc_decoder_pending(d) == 0) {
      rc = DZC_E_CORRUPT; /* done with input left over: trailing bytes */
      break;
    }
  }
  if (rc == DZC_OK) rc = dzc_decoder_finish(d);
  while (rc == DZC_OK && dzc_decoder_pending(d) > 0) {
    size_t got = 0;
    rc = dzc_decoder_read(d, buf, sizeof buf, &got);
    if (w + got > cap) { cap = 2 * cap + got; o = realloc(o, cap); }
    memcpy(o + w, buf, got);
    w += got;
  }
  dzc_decoder_free(d);
  *out = o;
  *out_n = w;
  return rc;
}

static void test_versions(void) {
  CHECK(dzc_version_number() == DZC_VERSION_NUMBER, "version number %u", dzc_version_number());
  CHECK(strcmp(dzc_version_string(), DZC_VERSION_STRING) == 0, "version string %s", dzc_version_string());
  CHECK(dzc_container_version() == 1, "container version %u", dzc_container_version());
  CHECK(dzc_frame_version_max() >= 6, "frame version max %u", dzc_frame_version_max());
  CHECK(dzc_embedded_model_count() >= 1, "embedded models %u", dzc_embedded_model_count());
  for (int c = 0; c >= DZC_E_INTERNAL; --c) CHECK(strlen(dzc_error_name(c)) > 0, "error name %d", c);
  dzc_model* m = NULL;
  CHECK(dzc_model_embedded(0, &m) == DZC_OK && m, "embedded model 0");
  char id[33];
  dzc_model_id(m, id);
  CHECK(strlen(id) == 32 && strcmp(id, "00000000000000000000000000000000") != 0, "model id %s", id);
  dzc_model_free(m);
  CHECK(dzc_model_embedded(1000, &m) == DZC_E_INVALID_ARGUMENT && m == NULL, "model 1000 must not exist");
}

static void test_roundtrips(const char* dir, const char* outdir) {
  char path[4096], name[256];
  snprintf(path, sizeof path, "%s/names", dir);
  FILE* names = fopen(path, "r");
  if (!names) { fprintf(stderr, "no %s\n", path); exit(2); }
  dzc_ctx* ctx = dzc_ctx_new();
  CHECK(ctx && dzc_ctx_set_param(ctx, DZC_P_THREADS, 2) == DZC_OK, "ctx");
  while (fscanf(names, "%255s", name) == 1) {
    size_t n, ref_n;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unsigned char* in = read_all(path, &n);
    snprintf(path, sizeof path, "%s/cli_%s.dzc", dir, name);
    unsigned char* ref = read_all(path, &ref_n);
    const int big = n > (1u << 20);
    /* Encode: one-shot for the small inputs, streaming for all (the same bytes). */
    size_t z_n = 0;
    unsigned char* z = NULL;
    if (!big) {
      size_t cap = dzc_compress_bound(n, 0);
      z = malloc(cap);
      CHECK(dzc_compress(ctx, z, cap, &z_n, in, n) == DZC_OK, "%s: compress", name);
      CHECK(z_n == ref_n && memcmp(z, ref, z_n) == 0, "%s: one-shot bytes differ from dzfs-codec's", name);
      free(z);
    }
    z = stream_encode(ctx, in, n, &z_n);
    CHECK(z_n == ref_n && memcmp(z, ref, z_n) == 0, "%s: streamed bytes differ from dzfs-codec's (%zu vs %zu)", name, z_n, ref_n);
    snprintf(path, sizeof path, "%s/c_%s.dzc", outdir, name);
    write_all(path, z, z_n);
    /* Decode: size query, one-shot, streaming in odd pieces. */
    uint64_t declared = 0;
    CHECK(dzc_decompressed_size(z, z_n, &declared) == DZC_OK && declared == n, "%s: declared size", name);
    unsigned char* back = malloc(n + 1);
    size_t back_n = 0;
    CHECK(dzc_decompress(ctx, back, n, &back_n, z, z_n) == DZC_OK && back_n == n && memcmp(back, in, n) == 0,
          "%s: one-shot round trip", name);
    free(back);
    unsigned char* s = NULL;
    size_t s_n = 0;
    CHECK(stream_decode(ctx, z, z_n, big ? 100003 : 1, &s, &s_n) == DZC_OK && s_n == n && memcmp(s, in, n) == 0,
          "%s: streaming round trip", name);
    free(s);
    free(z);
    free(ref);
    free(in);
    printf("round trip %s (%zu bytes): ok\n", name, n);
  }
  fclose(names);
  dzc_ctx_free(ctx);
}

static void test_bad_input(const char* dir) {
  char path[4096];
  size_t n, in_n;
  snprintf(path, sizeof path, "%s/cli_chunk_p1.dzc", dir);
  unsigned char* z = read_all(path, &n);
  snprintf(path, sizeof path, "%s/chunk_p1", dir);
  unsigned char* in = read_all(path, &in_n);
  dzc_ctx* ctx = dzc_ctx_new();
  unsigned char* out = malloc(in_n + 16);
  size_t out_n;
  /* Truncated: every length from 1 to n-1 fails (one-shot; streaming at a sample of them). */
  int truncated_ok = 0;
  for (size_t len = 1; len < n; ++len) {
    int rc = dzc_decompress(ctx, out, in_n + 16, &out_n, z, len);
    if (rc == DZC_OK) truncated_ok++;
    if (len % 97 == 0 || len + 20 > n) {
      unsigned char* s = NULL;
      size_t s_n;
      CHECK(stream_decode(ctx, z, len, 4096, &s, &s_n) != DZC_OK, "streaming decode of %zu of %zu bytes succeeded", len, n);
      free(s);
    }
  }
  CHECK(truncated_ok == 0, "%d truncations decoded", truncated_ok);
  /* Flipped bits: an error, or (the coder's provably unused last bits) the original. */
  unsigned char* bad = malloc(n);
  int flips = 0, wrong = 0, errors = 0;
  /* Each flip decodes a whole 64 KiB neural frame (~50 ms), so a sample: the container header
   * and the first frame header byte by byte, 40 places spread over the payloads, and the index
   * and trailer every third byte. */
  size_t positions[200], np = 0;
  for (size_t p = 0; p < 60; ++p) positions[np++] = p;
  for (size_t k = 1; k < 40; ++k) positions[np++] = 60 + k * (n - 120) / 40;
  for (size_t p = n - 60; p < n; p += 3) positions[np++] = p;
  for (size_t i = 0; i < np; ++i) {
    const size_t pos = positions[i];
    for (int bit = (int)(pos % 8); bit < 8; bit += 8) {
      memcpy(bad, z, n);
      bad[pos] ^= (unsigned char)(1u << bit);
      int rc = dzc_decompress(ctx, out, in_n + 16, &out_n, bad, n);
      flips++;
      if (rc != DZC_OK) errors++;
      else if (out_n != in_n || memcmp(out, in, in_n) != 0) wrong++;
    }
  }
  CHECK(wrong == 0, "%d of %d flipped inputs decoded to wrong bytes", wrong, flips);
  CHECK(errors > flips * 9 / 10, "only %d of %d flipped inputs were errors", errors, flips);
  free(bad);
  /* Trailing bytes and garbage. */
  unsigned char* two = malloc(2 * n);
  memcpy(two, z, n);
  memcpy(two + n, z, n);
  CHECK(dzc_decompress(ctx, out, in_n + 16, &out_n, two, 2 * n) == DZC_E_CORRUPT, "trailing bytes accepted");
  free(two);
  unsigned char garbage[4096];
  for (size_t i = 0; i < sizeof garbage; ++i) garbage[i] = (unsigned char)(i * 2654435761u >> 13);
  CHECK(dzc_decompress(ctx, out, in_n + 16, &out_n, garbage, sizeof garbage) == DZC_E_CORRUPT, "garbage accepted");
  dzc_model* m = NULL;
  CHECK(dzc_model_load_memory(garbage, sizeof garbage, &m) != DZC_OK && m == NULL, "garbage model accepted");
  /* Tiny output buffers. */
  CHECK(dzc_decompress(ctx, out, in_n - 1, &out_n, z, n) == DZC_E_DST_TOO_SMALL, "decompress into too small a buffer");
  unsigned char small[10];
  size_t small_n;
  CHECK(dzc_compress(ctx, small, sizeof small, &small_n, in, in_n) == DZC_E_DST_TOO_SMALL, "compress into 10 bytes");
  /* Wrong model: the frames name other.dzm, which the default context lacks. */
  size_t wn;
  snprintf(path, sizeof path, "%s/wrongmodel.dzc", dir);
  unsigned char* wz = read_all(path, &wn);
  int rc = dzc_decompress(ctx, out, in_n + 16, &out_n, wz, wn);
  CHECK(rc == DZC_E_MODEL_MISMATCH, "wrong model: rc %d", rc);
  CHECK(strstr(dzc_last_error(), "model") != NULL, "wrong model message: %s", dzc_last_error());
  snprintf(path, sizeof path, "%s/other.dzm", dir);
  CHECK(dzc_model_load_file(path, &m) == DZC_OK, "load other.dzm");
  CHECK(dzc_ctx_add_model(ctx, m) == DZC_OK, "add model");
  dzc_model_free(m);
  CHECK(dzc_decompress(ctx, out, in_n + 16, &out_n, wz, wn) == DZC_OK && out_n == in_n && memcmp(out, in, in_n) == 0,
        "decode with the right model added");
  free(wz);
  /* Misuse: NULL arguments and out-of-range parameters are errors, never crashes. */
  CHECK(dzc_compress(NULL, out, 1, &out_n, in, 1) == DZC_E_INVALID_ARGUMENT, "NULL ctx");
  CHECK(dzc_decompress(ctx, NULL, 5, &out_n, z, n) == DZC_E_INVALID_ARGUMENT, "NULL dst");
  CHECK(dzc_ctx_set_param(ctx, DZC_P_CHUNK_SIZE, 0) == DZC_E_INVALID_ARGUMENT, "chunk 0");
  CHECK(dzc_ctx_set_param(ctx, DZC_P_CHUNK_SIZE, (64 << 20) + 1) == DZC_E_INVALID_ARGUMENT, "chunk 64 MiB + 1");
  CHECK(dzc_ctx_set_param(ctx, DZC_P_THREADS, -1) == DZC_E_INVALID_ARGUMENT, "threads -1");
  CHECK(dzc_ctx_set_param(ctx, 999, 1) == DZC_E_INVALID_ARGUMENT, "unknown param");
  CHECK(dzc_model_load_file("/nonexistent/model.dzm", &m) == DZC_E_IO, "missing model file");
  /* A container whose frames hold more than its own chunk size is refused. */
  dzc_ctx* c2 = dzc_ctx_new();
  CHECK(dzc_ctx_set_param(c2, DZC_P_MAX_CHUNK, 4096) == DZC_OK, "max chunk");
  CHECK(dzc_decompress(c2, out, in_n + 16, &out_n, z, n) == DZC_E_TOO_LARGE, "chunk size above the caller's limit");
  dzc_ctx_free(c2);
  free(out);
  free(in);
  free(z);
  dzc_ctx_free(ctx);
  printf("bad input: %d truncations, %d bit flips (%d errors, the rest decoded exactly): ok\n", (int)n - 1, flips, errors);
}

static void test_reader(const char* dir) {
  char path[4096];
  size_t n;
  snprintf(path, sizeof path, "%s/mixed10m", dir);
  unsigned char* in = read_all(path, &n);
  snprintf(path, sizeof path, "%s/cli_mixed10m.dzc", dir);
  dzc_ctx* ctx = dzc_ctx_new();
  dzc_reader* r = NULL;
  CHECK(dzc_reader_open(ctx, path, &r) == DZC_OK, "reader_open");
  if (!r) return;
  CHECK(dzc_reader_size(r) == n, "reader size %llu", (unsigned long long)dzc_reader_size(r));
  unsigned char buf[200000];
  unsigned long long x = 88172645463325252ull;
  for (int i = 0; i < 40; ++i) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    uint64_t off = x % n;
    size_t want = (size_t)(x >> 40) % sizeof buf, got = 0;
    CHECK(dzc_reader_pread(r, buf, want, off, &got) == DZC_OK, "pread");
    size_t expect = off + want > n ? n - off : want;
    CHECK(got == expect && memcmp(buf, in + off, got) == 0, "pread %zu at %llu", want, (unsigned long long)off);
  }
  size_t got = 1;
  CHECK(dzc_reader_pread(r, buf, 10, n, &got) == DZC_OK && got == 0, "pread at the end");
  dzc_reader_free(r);
  /* A truncated file is refused at open. */
  snprintf(path, sizeof path, "%s/cli_mixed10m.dzc", dir);
  size_t zn;
  unsigned char* z = read_all(path, &zn);
  char tpath[4096];
  snprintf(tpath, sizeof tpath, "%s/.truncated.dzc", dir);
  write_all(tpath, z, zn - 5);
  r = NULL;
  CHECK(dzc_reader_open(ctx, tpath, &r) == DZC_E_CORRUPT && r == NULL, "truncated file opened");
  remove(tpath);
  free(z);
  free(in);
  dzc_ctx_free(ctx);
  printf("random access: ok\n");
}

/* Piece k of the big stream: a 16-byte counter line, then zeros (1 MiB in all). The bindings
 * generate the same pieces. */
static void piece(unsigned char* p, unsigned long k) {
  memset(p, 0, 1 << 20);
  char head[32];
  snprintf(head, sizeof head, "%015lu\n", k % 1000000000000000ul);
  memcpy(p, head, 16);
}

static int bigstream(unsigned long mib) {
  dzc_ctx* ctx = dzc_ctx_new();
  CHECK(ctx && dzc_ctx_set_param(ctx, DZC_P_THREADS, 2) == DZC_OK, "ctx");
  dzc_encoder* e = NULL;
  dzc_decoder* d = NULL;
  CHECK(dzc_encoder_new(ctx, &e) == DZC_OK && dzc_decoder_new(ctx, &d) == DZC_OK, "new");
  unsigned char* p = malloc(1 << 20);
  unsigned char* expect = malloc(1 << 20);
  unsigned char zbuf[65536], obuf[65536];
  unsigned long long coded = 0, decoded = 0, next_piece = 0;
  size_t have = 0; /* bytes of expect[] already compared for piece next_piece */
  for (unsigned long k = 0; k <= mib && !failures; ++k) {
    size_t off = 0, n = 0;
    if (k < mib) { piece(p, k); n = 1 << 20; } else CHECK(dzc_encoder_finish(e) == DZC_OK, "finish");
    do {
      size_t used = 0;
      if (off < n) CHECK(dzc_encoder_write(e, p + off, n - off, &used) == DZC_OK, "enc write");
      off += used;
      while (dzc_encoder_pending(e) > 0 && !failures) {
        size_t got = 0, zo = 0;
        CHECK(dzc_encoder_read(e, zbuf, sizeof zbuf, &got) == DZC_OK, "enc read");
        coded += got;
        while (zo < got && !failures) {
          size_t u = 0;
          CHECK(dzc_decoder_write(d, zbuf + zo, got - zo, &u) == DZC_OK, "dec write");
          zo += u;
          while (dzc_decoder_pending(d) > 0 && !failures) {
            size_t g = 0, o = 0;
            CHECK(dzc_decoder_read(d, obuf, sizeof obuf, &g) == DZC_OK, "dec read");
            while (o < g) {
              if (have == 0) piece(expect, next_piece);
              size_t m = g - o < (1u << 20) - have ? g - o : (1u << 20) - have;
              CHECK(memcmp(obuf + o, expect + have, m) == 0, "decoded bytes differ in piece %llu", next_piece);
              o += m;
              have += m;
              decoded += m;
              if (have == 1u << 20) { have = 0; next_piece++; }
            }
          }
        }
      }
    } while (off < n && !failures);
  }
  CHECK(dzc_decoder_finish(d) == DZC_OK && dzc_decoder_done(d) == 1, "decoder finish");
  CHECK(decoded == (unsigned long long)mib << 20, "decoded %llu bytes", decoded);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("bigstream: %lu MiB -> %llu bytes -> %llu bytes, max RSS %ld KiB\n", mib, coded, decoded, ru.ru_maxrss);
  CHECK(ru.ru_maxrss < 200 * 1024, "max RSS %ld KiB", ru.ru_maxrss);
  dzc_encoder_free(e);
  dzc_decoder_free(d);
  dzc_ctx_free(ctx);
  free(p);
  free(expect);
  return failures ? 1 : 0;
}

/* bench FILE REPS: best one-shot compress and decompress MB/s of process CPU time over REPS runs, one thread (the
 * baseline of tests/bindings/bench.sh). */
#include <time.h>
/* Process CPU time: the shared machine's wall clock mostly measures the other tenants. */
static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}
static int bench(const char* path, int reps) {
  size_t n, zn = 0, bn = 0;
  unsigned char* in = read_all(path, &n);
  size_t cap = dzc_compress_bound(n, 0);
  unsigned char* z = malloc(cap);
  unsigned char* back = malloc(n + 1);
  dzc_ctx* ctx = dzc_ctx_new();
  double bc = 1e30, bd = 1e30;
  for (int r = 0; r < reps; ++r) {
    double t = now_s();
    if (dzc_compress(ctx, z, cap, &zn, in, n) != DZC_OK) return 1;
    double t2 = now_s();
    if (dzc_decompress(ctx, back, n, &bn, z, zn) != DZC_OK || bn != n || memcmp(back, in, n)) return 1;
    double t3 = now_s();
    if (t2 - t < bc) bc = t2 - t;
    if (t3 - t2 < bd) bd = t3 - t2;
  }
  printf("c %zu %zu %.3f %.3f\n", n, zn, n / 1e6 / bc, n / 1e6 / bd);
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 4 && strcmp(argv[1], "bench") == 0) return bench(argv[2], atoi(argv[3]));
  if (argc == 3 && strcmp(argv[1], "bigstream") == 0) return bigstream(strtoul(argv[2], NULL, 10));
  if (argc != 3) {
    fprintf(stderr, "usage: c_api_test DATA_DIR OUT_DIR | c_api_test bigstream MIB\n");
    return 2;
  }
  test_versions();
  test_roundtrips(argv[1], argv[2]);
  test_bad_input(argv[1]);
  test_reader(argv[1]);
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  else printf("c_api_test: all checks passed\n");
  return failures ? 1 : 0;
}
