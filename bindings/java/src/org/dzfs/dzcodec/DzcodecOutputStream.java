// DzcodecOutputStream: compresses what is written into one .dzc container on the underlying
// stream (as java.util.zip.GZIPOutputStream). close() (or finish()) writes the last frames, the
// index and the trailer. Memory stays bounded (about threads x chunk size) whatever is written.
package org.dzfs.dzcodec;

import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;

public class DzcodecOutputStream extends FilterOutputStream {
  private static final int BLOCK = 1 << 20;
  private long ctx, enc;
  private final byte[] buf = new byte[BLOCK];
  private boolean finished;

  public DzcodecOutputStream(OutputStream out) throws IOException { this(out, new Dzcodec.Options()); }

  public DzcodecOutputStream(OutputStream out, Dzcodec.Options o) throws IOException {
    super(out);
    ctx = o.newContext();
    try {
      enc = Dzcodec.nStreamNew(ctx, 0);
    } catch (DzcodecException e) {
      Dzcodec.nCtxFree(ctx);
      throw e;
    }
  }

  private void drain() throws IOException {
    while (Dzcodec.nStreamPending(enc, 0) > 0) {
      int n = Dzcodec.nStreamRead(enc, 0, buf, 0, buf.length);
      out.write(buf, 0, n);
    }
  }

  private void checkOpen() throws IOException {
    if (enc == 0) throw new IOException("stream closed");
    if (finished) throw new IOException("write after finish()");
  }

  @Override
  public void write(int b) throws IOException { write(new byte[] {(byte) b}, 0, 1); }

  @Override
  public void write(byte[] b, int off, int len) throws IOException {
    checkOpen();
    if (off < 0 || len < 0 || off > b.length - len) throw new IndexOutOfBoundsException();
    while (len > 0) {
      int used = Dzcodec.nStreamWrite(enc, 0, b, off, Math.min(len, BLOCK));
      off += used;
      len -= used;
      drain();
    }
  }

  /** Ends the container (last frames, index, trailer) without closing the underlying stream. */
  public void finish() throws IOException {
    if (enc == 0) throw new IOException("stream closed");
    if (finished) return;
    Dzcodec.nStreamFinish(enc, 0);
    drain();
    finished = true;
  }

  @Override
  public void close() throws IOException {
    if (enc == 0) return;
    try {
      finish();
    } finally {
      Dzcodec.nStreamFree(enc, 0);
      Dzcodec.nCtxFree(ctx);
      enc = 0;
      ctx = 0;
      out.close();
    }
  }
}
