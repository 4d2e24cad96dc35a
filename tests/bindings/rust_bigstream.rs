// bigstream (a cargo example of bindings/rust): MIB MiB through an Encoder (one thread) into a
// Decoder (this thread) over a bounded channel, in bounded memory; ctest runs it under
// `ulimit -v` smaller than the stream.
use dzcodec::{Decoder, Encoder, Options};
use std::io::{Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

fn piece(k: u64) -> Vec<u8> {
    let mut p = vec![0u8; 1 << 20];
    p[..16].copy_from_slice(format!("{:015}\n", k % 1_000_000_000_000_000).as_bytes());
    p
}

struct Tx(SyncSender<Vec<u8>>, u64);
impl Write for Tx {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.1 += b.len() as u64;
        self.0.send(b.to_vec()).map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "closed"))?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
struct Rx(Receiver<Vec<u8>>, Vec<u8>, usize);
impl Read for Rx {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        while self.2 == self.1.len() {
            match self.0.recv() {
                Ok(v) => {
                    self.1 = v;
                    self.2 = 0;
                }
                Err(_) => return Ok(0), // the encoder finished and hung up
            }
        }
        let n = b.len().min(self.1.len() - self.2);
        b[..n].copy_from_slice(&self.1[self.2..self.2 + n]);
        self.2 += n;
        Ok(n)
    }
}

fn main() {
    let mib: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).expect("usage: bigstream MIB");
    let (tx, rx) = sync_channel(4);
    let producer = std::thread::spawn(move || {
        let o = Options { threads: Some(2), ..Default::default() };
        let mut enc = Encoder::with_options(Tx(tx, 0), &o).unwrap();
        for k in 0..mib {
            enc.write_all(&piece(k)).unwrap();
        }
        enc.finish().unwrap().1
    });
    let o = Options { threads: Some(2), ..Default::default() };
    let mut dec = Decoder::with_options(Rx(rx, Vec::new(), 0), &o).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut decoded = 0u64;
    loop {
        // Fill one whole piece (reads return what is ready), then compare it.
        let mut n = 0;
        while n < buf.len() {
            let r = dec.read(&mut buf[n..]).unwrap();
            if r == 0 {
                break;
            }
            n += r;
        }
        if n == 0 {
            break;
        }
        assert!(n == buf.len() && buf == piece(decoded >> 20), "piece {} differs", decoded >> 20);
        decoded += n as u64;
    }
    let coded = producer.join().unwrap();
    assert_eq!(decoded, mib << 20);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status.lines().find(|l| l.starts_with("VmHWM")).unwrap_or("VmHWM: ?").split_whitespace().collect::<Vec<_>>().join(" ");
    println!("bigstream: {} MiB -> {} bytes -> {} bytes, {}", mib, coded, decoded, hwm);
}
