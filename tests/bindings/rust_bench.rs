// dzc_bench (a cargo example of bindings/rust): compresses and decompresses FILE through the
// Rust binding N times and prints the best MB/s of process CPU time of each, for the throughput comparison of the
// bindings against the C API (tests/bindings/bench.sh).
#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}
extern "C" {
    fn clock_gettime(clock: i32, t: *mut Timespec) -> i32;
}
// Process CPU time (CLOCK_PROCESS_CPUTIME_ID = 2, from libc, which every Rust program links):
// the shared machine's wall clock mostly measures the other tenants.
fn cpu() -> f64 {
    let mut t = Timespec { sec: 0, nsec: 0 };
    unsafe { clock_gettime(2, &mut t) };
    t.sec as f64 + t.nsec as f64 / 1e9
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let data = std::fs::read(&args[1]).unwrap();
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let o = dzcodec::Options { threads: Some(1), ..Default::default() };
    let (mut best_c, mut best_d, mut size) = (f64::MAX, f64::MAX, 0);
    for _ in 0..reps {
        let t = cpu();
        let z = dzcodec::compress_with(&data, &o).unwrap();
        best_c = best_c.min(cpu() - t);
        let t = cpu();
        let back = dzcodec::decompress_with(&z, &o).unwrap();
        best_d = best_d.min(cpu() - t);
        assert!(back == data);
        size = z.len();
    }
    println!("rust {} {} {:.3} {:.3}", data.len(), size, data.len() as f64 / 1e6 / best_c, data.len() as f64 / 1e6 / best_d);
}
