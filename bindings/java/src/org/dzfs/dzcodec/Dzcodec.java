// Dzcodec: the dzfs neural codec for Java, a JNI binding of libdzcodec's C API
// (codec/include/dzcodec.h). Dzcodec.compress / decompress code whole arrays into and out of the
// .dzc container; DzcodecOutputStream / DzcodecInputStream stream inputs of any size. The bytes
// are those of dzfs-codec and of the C, Python and Rust bindings. Loads libdzcodec_jni.so from
// java.library.path (or the path in the system property dzcodec.jni).
package org.dzfs.dzcodec;

public final class Dzcodec {
  static {
    String p = System.getProperty("dzcodec.jni");
    if (p != null) System.load(p);
    else System.loadLibrary("dzcodec_jni");
  }

  private Dzcodec() {}

  /** Settings of a call or a stream; the defaults are the library's (embedded model, 1 thread, 64 KiB chunks). */
  public static final class Options {
    int threads = 1, chunkSize = 0, level = 0, mode = 0;
    byte[] model;
    java.util.List<byte[]> decodeModels = new java.util.ArrayList<>();

    public Options threads(int n) { threads = n; return this; }
    public Options chunkSize(int n) { chunkSize = n; return this; }
    public Options zstdLevel(int n) { level = n; return this; }
    /** Codes new frames with this model file (bytes of a .dzm). */
    public Options model(byte[] file) { model = file; mode = 2; return this; }
    /** No network: the adaptive models alone. */
    public Options noModel() { model = null; mode = 1; return this; }
    /** One more model for decoding (frames name their model by content hash). */
    public Options addDecodeModel(byte[] file) { decodeModels.add(file); return this; }

    long newContext() throws DzcodecException {
      return nCtxNew(threads, chunkSize, level, mode, model, decodeModels.toArray(new byte[0][]));
    }
  }

  public static String version() { return nVersion(); }

  public static byte[] compress(byte[] data) throws DzcodecException { return compress(data, 0, data.length, new Options()); }

  public static byte[] compress(byte[] data, Options o) throws DzcodecException { return compress(data, 0, data.length, o); }

  public static byte[] compress(byte[] data, int off, int len, Options o) throws DzcodecException {
    long ctx = o.newContext();
    try {
      return nCompress(ctx, data, off, len);
    } finally {
      nCtxFree(ctx);
    }
  }

  public static byte[] decompress(byte[] data) throws DzcodecException { return decompress(data, 0, data.length, new Options()); }

  public static byte[] decompress(byte[] data, Options o) throws DzcodecException { return decompress(data, 0, data.length, o); }

  public static byte[] decompress(byte[] data, int off, int len, Options o) throws DzcodecException {
    long ctx = o.newContext();
    try {
      return nDecompress(ctx, data, off, len);
    } finally {
      nCtxFree(ctx);
    }
  }

  static native String nVersion();
  static native long nCtxNew(int threads, int chunk, int level, int mode, byte[] model, byte[][] extra) throws DzcodecException;
  static native void nCtxFree(long ctx);
  static native byte[] nCompress(long ctx, byte[] src, int off, int len) throws DzcodecException;
  static native byte[] nDecompress(long ctx, byte[] src, int off, int len) throws DzcodecException;
  static native long nStreamNew(long ctx, int kind) throws DzcodecException;
  static native int nStreamWrite(long s, int kind, byte[] src, int off, int len) throws DzcodecException;
  static native void nStreamFinish(long s, int kind) throws DzcodecException;
  static native int nStreamRead(long s, int kind, byte[] dst, int off, int len) throws DzcodecException;
  static native long nStreamPending(long s, int kind);
  static native boolean nStreamDone(long s);
  static native void nStreamFree(long s, int kind);
}
