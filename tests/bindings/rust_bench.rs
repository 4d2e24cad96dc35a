// dzc_bench (a cargo example of bindings/rust): compresses and decompresses FILE through the
// Rust binding N times and prints the best MB/s of each, for the throughput comparison of the
// bindings against the C API (tests/bindings/bench.sh).
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let data = std::fs::read(&args[1]).unwrap();
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let o = dzcodec::Options { threads: Some(1), ..Default::default() };
    let (mut best_c, mut best_d, mut size) = (f64::MAX, f64::MAX, 0);
    for _ in 0..reps {
        let t = Instant::now();
        let z = dzcodec::compress_with(&data, &o).unwrap();
        best_c = best_c.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let back = dzcodec::decompress_with(&z, &o).unwrap();
        best_d = best_d.min(t.elapsed().as_secs_f64());
        assert!(back == data);
        size = z.len();
    }
    println!("rust {} {} {:.3} {:.3}", data.len(), size, data.len() as f64 / 1e6 / best_c, data.len() as f64 / 1e6 / best_d);
}
