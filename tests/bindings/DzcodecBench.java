// Java side of tests/bindings/bench.sh: Dzcodec's best compress/decompress MB/s over REPS runs
// (one thread), and the sizes of XZ for Java (preset 9, libxz-java) and zstd-jni (level 19,
// libzstd-jni-java) on the same file, each only when its jar is on the class path.
// Usage: java DzcodecBench FILE REPS
import java.io.ByteArrayOutputStream;
import java.nio.file.*;
import java.util.Arrays;
import org.dzfs.dzcodec.Dzcodec;

public class DzcodecBench {
  public static void main(String[] args) throws Exception {
    byte[] data = Files.readAllBytes(Paths.get(args[0]));
    int reps = Integer.parseInt(args[1]);
    // Thread CPU time (one coding thread: the calling one); wall time measures the other tenants.
    java.lang.management.ThreadMXBean cpu = java.lang.management.ManagementFactory.getThreadMXBean();
    double bc = Double.MAX_VALUE, bd = Double.MAX_VALUE;
    byte[] z = null;
    for (int r = 0; r < reps; ++r) {
      long t = cpu.getCurrentThreadCpuTime();
      z = Dzcodec.compress(data);
      long t2 = cpu.getCurrentThreadCpuTime();
      if (!Arrays.equals(Dzcodec.decompress(z), data)) throw new AssertionError("round trip");
      long t3 = cpu.getCurrentThreadCpuTime();
      bc = Math.min(bc, (t2 - t) / 1e9);
      bd = Math.min(bd, (t3 - t2) / 1e9);
    }
    System.out.printf("java %d %d %.3f %.3f%n", data.length, z.length, data.length / 1e6 / bc, data.length / 1e6 / bd);
    // By reflection, so that this compiles and runs without the two jars.
    try {
      Class<?> opts = Class.forName("org.tukaani.xz.LZMA2Options");
      Class<?> filter = Class.forName("org.tukaani.xz.FilterOptions");
      ByteArrayOutputStream bo = new ByteArrayOutputStream();
      java.io.OutputStream x = (java.io.OutputStream) Class.forName("org.tukaani.xz.XZOutputStream")
          .getConstructor(java.io.OutputStream.class, filter).newInstance(bo, opts.getConstructor(int.class).newInstance(9));
      x.write(data);
      x.close();
      System.out.printf("java-xz-9 %d %d%n", data.length, bo.size());
    } catch (ReflectiveOperationException e) {
      System.out.println("java-xz-9 - (libxz-java not on the class path: " + e + ")");
    }
    try {
      byte[] zz = (byte[]) Class.forName("com.github.luben.zstd.Zstd").getMethod("compress", byte[].class, int.class)
          .invoke(null, data, 19);
      System.out.printf("java-zstd-jni-19 %d %d%n", data.length, zz.length);
    } catch (ReflectiveOperationException | LinkageError e) {
      System.out.println("java-zstd-jni-19 - (" + e + ")");
    }
  }
}
