// DzcodecInputStream: decompresses a .dzc container read from the underlying stream (as
// java.util.zip.GZIPInputStream). Every frame is verified; damage, a missing model or an input
// that ends early throws DzcodecException, never wrong bytes. Memory stays bounded.
package org.dzfs.dzcodec;

import java.io.IOException;
import java.io.InputStream;

public class DzcodecInputStream extends InputStream {
  private static final int BLOCK = 1 << 20;
  private final InputStream in;
  private long ctx, dec;
  private final byte[] inBuf = new byte[BLOCK];
  private int inPos, inLen;
  private boolean inEof, finished;

  public DzcodecInputStream(InputStream in) throws IOException { this(in, new Dzcodec.Options()); }

  public DzcodecInputStream(InputStream in, Dzcodec.Options o) throws IOException {
    this.in = in;
    ctx = o.newContext();
    try {
      dec = Dzcodec.nStreamNew(ctx, 1);
    } catch (DzcodecException e) {
      Dzcodec.nCtxFree(ctx);
      throw e;
    }
  }

  @Override
  public int read() throws IOException {
    byte[] b = new byte[1];
    int n = read(b, 0, 1);
    return n < 0 ? -1 : b[0] & 0xff;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    if (dec == 0) throw new IOException("stream closed");
    if (off < 0 || len < 0 || off > b.length - len) throw new IndexOutOfBoundsException();
    if (len == 0) return 0;
    for (;;) {
      if (Dzcodec.nStreamPending(dec, 1) > 0) return Dzcodec.nStreamRead(dec, 1, b, off, len);
      if (finished) return -1;
      if (Dzcodec.nStreamDone(dec)) {
        if (inPos < inLen || in.read() >= 0) throw new DzcodecException(-2, "trailing bytes after the end of the container");
        Dzcodec.nStreamFinish(dec, 1);
        finished = true;
        continue;
      }
      if (inPos == inLen && !inEof) {
        inLen = in.read(inBuf, 0, inBuf.length);
        inPos = 0;
        if (inLen < 0) {
          inLen = 0;
          inEof = true;
        }
      }
      if (inPos < inLen) {
        inPos += Dzcodec.nStreamWrite(dec, 1, inBuf, inPos, inLen - inPos);
      } else if (inEof) {
        Dzcodec.nStreamFinish(dec, 1);  // throws when the container is incomplete
        finished = true;
      }
    }
  }

  @Override
  public int available() throws IOException {
    return dec == 0 ? 0 : (int) Math.min(Integer.MAX_VALUE, Dzcodec.nStreamPending(dec, 1));
  }

  @Override
  public void close() throws IOException {
    if (dec == 0) return;
    Dzcodec.nStreamFree(dec, 1);
    Dzcodec.nCtxFree(ctx);
    dec = 0;
    ctx = 0;
    in.close();
  }
}
