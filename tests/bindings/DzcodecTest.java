// DzcodecTest: tests of the Java binding (bindings/java). Usage: java DzcodecTest DATA_DIR OUT_DIR
// (round trips, other languages' files, bad input), or java DzcodecTest bigstream MIB (MIB MiB
// through a DzcodecOutputStream into a DzcodecInputStream, run by ctest with a heap far smaller
// than the stream). No test framework: each failed check is printed and the exit status is 1.
import java.io.*;
import java.nio.file.*;
import java.security.MessageDigest;
import java.util.*;
import org.dzfs.dzcodec.*;

public class DzcodecTest {
  static int failures = 0;

  static void check(boolean ok, String what) {
    if (!ok) {
      System.err.println("FAIL: " + what);
      failures++;
    }
  }

  static byte[] streamEncode(byte[] data, Dzcodec.Options o) throws IOException {
    ByteArrayOutputStream bo = new ByteArrayOutputStream();
    try (DzcodecOutputStream out = new DzcodecOutputStream(bo, o)) {
      int off = 0, step = 1;
      while (off < data.length) {
        int n = Math.min(step, data.length - off);
        if (n == 1) out.write(data[off]); else out.write(data, off, n);
        off += n;
        step = step < (1 << 20) ? step * 5 + 3 : 7;
      }
    }
    return bo.toByteArray();
  }

  static byte[] streamDecode(byte[] z, int bufSize) throws IOException {
    ByteArrayOutputStream bo = new ByteArrayOutputStream();
    try (DzcodecInputStream in = new DzcodecInputStream(new ByteArrayInputStream(z))) {
      byte[] b = new byte[bufSize];
      for (int n; (n = in.read(b, 0, b.length)) >= 0; ) bo.write(b, 0, n);
    }
    return bo.toByteArray();
  }

  static void roundTrips(Path data, Path outDir) throws IOException {
    Dzcodec.Options two = new Dzcodec.Options().threads(2);
    check(Dzcodec.version().equals("0.1.0"), "version " + Dzcodec.version());
    for (String name : Files.readAllLines(data.resolve("names"))) {
      if (name.isEmpty()) continue;
      byte[] in = Files.readAllBytes(data.resolve(name));
      byte[] ref = Files.readAllBytes(data.resolve("cli_" + name + ".dzc"));
      boolean big = in.length > (1 << 20);
      if (!big) check(Arrays.equals(Dzcodec.compress(in, two), ref), name + ": compress() bytes differ from dzfs-codec's");
      byte[] z = streamEncode(in, two);
      check(Arrays.equals(z, ref), name + ": stream bytes differ from dzfs-codec's");
      Files.write(outDir.resolve("java_" + name + ".dzc"), z);
      check(Arrays.equals(Dzcodec.decompress(z, two), in), name + ": decompress()");
      check(Arrays.equals(streamDecode(z, big ? 65536 : 1), in), name + ": DzcodecInputStream");
      System.out.println("round trip " + name + " (" + in.length + " bytes): ok");
    }
    // Every other language's files (written before this test) and dzfs-codec's decode here.
    int seen = 0;
    List<Path> files = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(outDir, "*.dzc")) { for (Path p : ds) files.add(p); }
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(data, "cli_*.dzc")) { for (Path p : ds) files.add(p); }
    for (Path p : files) {
      String fn = p.getFileName().toString();
      int us = fn.indexOf('_');
      if (fn.startsWith("java_") || us < 0) continue;
      Path src = data.resolve(fn.substring(us + 1, fn.length() - 4));
      if (!Files.exists(src) || fn.contains("wrongmodel")) continue;
      check(Arrays.equals(Dzcodec.decompress(Files.readAllBytes(p), two), Files.readAllBytes(src)), fn + " decodes");
      seen++;
    }
    check(seen >= 6, "decoded only " + seen + " files of other writers");
    System.out.println("decoded " + seen + " files of other writers: ok");
  }

  static void expectError(String what, int code, Callable c) {
    try {
      c.run();
      check(false, what + ": no exception");
    } catch (DzcodecException e) {
      check(code == 0 || e.getCode() == code, what + ": code " + e.getCode() + " (" + e.getMessage() + "), expected " + code);
      check(e.getMessage() != null && !e.getMessage().isEmpty(), what + ": empty message");
    } catch (Throwable t) {
      check(false, what + ": " + t);
    }
  }

  interface Callable { void run() throws Exception; }

  static void badInput(Path data) throws IOException {
    byte[] in = Files.readAllBytes(data.resolve("chunk_p1"));
    byte[] z = Files.readAllBytes(data.resolve("cli_chunk_p1.dzc"));
    for (int n = 1; n < z.length; n += n < 80 ? 1 : n > z.length - 40 ? 1 : 211) {
      final byte[] t = Arrays.copyOf(z, n);
      expectError("truncated to " + n, 0, () -> Dzcodec.decompress(t));
      if (n % 7 == 0 || n > z.length - 20) expectError("stream truncated to " + n, -2, () -> streamDecode(t, 4096));
    }
    int errors = 0, flips = 0;
    for (int p = 0; p < z.length; p += p < 60 ? 3 : p > z.length - 60 ? 6 : z.length / 12) {
      byte[] bad = z.clone();
      bad[p] ^= (byte) (1 << (p % 8));
      flips++;
      try {
        check(Arrays.equals(Dzcodec.decompress(bad), in), "flip at " + p + " decoded to wrong bytes");
      } catch (DzcodecException e) {
        errors++;
      }
    }
    check(errors > flips * 9 / 10, "only " + errors + " of " + flips + " flips were errors");
    byte[] wz = Files.readAllBytes(data.resolve("wrongmodel.dzc"));
    expectError("wrong model", -4, () -> Dzcodec.decompress(wz));
    byte[] other = Files.readAllBytes(data.resolve("other.dzm"));
    check(Arrays.equals(Dzcodec.decompress(wz, new Dzcodec.Options().addDecodeModel(other)), in), "right model added");
    expectError("garbage model", 0, () -> Dzcodec.compress(in, new Dzcodec.Options().model(new byte[100])));
    expectError("trailing bytes", -2, () -> {
      byte[] two = Arrays.copyOf(z, z.length + 3);
      Dzcodec.decompress(two);
    });
    expectError("stream trailing bytes", -2, () -> {
      byte[] two = Arrays.copyOf(z, z.length + 3);
      streamDecode(two, 100);
    });
    expectError("chunk size 0", -1, () -> Dzcodec.compress(in, new Dzcodec.Options().chunkSize(-5).threads(-1)));
    // A one-byte output buffer: the stream hands out one byte per read, all of them right.
    check(Arrays.equals(streamDecode(z, 1), in), "one-byte reads");
    System.out.println("bad input: ok (" + errors + " of " + flips + " flips were errors, the rest exact)");
  }

  static byte[] piece(long k) {
    byte[] p = new byte[1 << 20];
    byte[] h = String.format("%015d\n", k % 1000000000000000L).getBytes();
    System.arraycopy(h, 0, p, 0, 16);
    return p;
  }

  static void bigstream(int mib) throws Exception {
    // Producer thread -> DzcodecOutputStream -> pipe -> DzcodecInputStream -> digest.
    PipedInputStream pin = new PipedInputStream(1 << 16);
    PipedOutputStream pout = new PipedOutputStream(pin);
    MessageDigest hin = MessageDigest.getInstance("SHA-256"), hout = MessageDigest.getInstance("SHA-256");
    long[] coded = {0};
    Thread producer = new Thread(() -> {
      try (DzcodecOutputStream out = new DzcodecOutputStream(new FilterOutputStream(pout) {
             @Override public void write(byte[] b, int off, int len) throws IOException { coded[0] += len; out.write(b, off, len); }
           }, new Dzcodec.Options().threads(2))) {
        for (int k = 0; k < mib; ++k) {
          byte[] p = piece(k);
          hin.update(p);
          out.write(p);
        }
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    });
    producer.start();
    long decoded = 0;
    try (DzcodecInputStream in = new DzcodecInputStream(pin, new Dzcodec.Options().threads(2))) {
      byte[] b = new byte[1 << 16];
      for (int n; (n = in.read(b, 0, b.length)) >= 0; ) {
        hout.update(b, 0, n);
        decoded += n;
      }
    }
    producer.join();
    check(decoded == ((long) mib << 20), "decoded " + decoded + " bytes");
    check(Arrays.equals(hin.digest(), hout.digest()), "big stream differs");
    System.out.println("bigstream: " + mib + " MiB -> " + coded[0] + " bytes -> " + decoded + " bytes, max heap "
                       + (Runtime.getRuntime().maxMemory() >> 20) + " MiB");
  }

  public static void main(String[] args) throws Exception {
    if (args.length == 2 && args[0].equals("bigstream")) {
      bigstream(Integer.parseInt(args[1]));
    } else {
      roundTrips(Paths.get(args[0]), Paths.get(args[1]));
      badInput(Paths.get(args[0]));
    }
    if (failures > 0) {
      System.err.println(failures + " check(s) failed");
      System.exit(1);
    }
    System.out.println("DzcodecTest: all checks passed");
  }
}
