// Tests of the Rust binding (bindings/rust), run by `cargo test` from ctest. Environment:
// DZC_DATA (make_fixtures.sh's directory), DZC_OUT (where rust_NAME.dzc go).
use dzcodec::{code, compress, compress_with, decompress, decompress_with, Decoder, Encoder, Model, Options};
use std::fs;
use std::io::{Read, Write};
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    PathBuf::from(std::env::var("DZC_DATA").expect("DZC_DATA"))
}
fn out_dir() -> PathBuf {
    PathBuf::from(std::env::var("DZC_OUT").expect("DZC_OUT"))
}
fn names() -> Vec<String> {
    fs::read_to_string(data_dir().join("names")).unwrap().split_whitespace().map(String::from).collect()
}
fn load(name: &str) -> Vec<u8> {
    fs::read(data_dir().join(name)).unwrap()
}
fn two<'a>() -> Options<'a> {
    Options { threads: Some(2), ..Default::default() }
}

fn stream_encode(data: &[u8]) -> Vec<u8> {
    let mut e = Encoder::with_options(Vec::new(), &two()).unwrap();
    let (mut off, mut step) = (0usize, 1usize);
    while off < data.len() {
        let n = step.min(data.len() - off);
        e.write_all(&data[off..off + n]).unwrap();
        off += n;
        step = if step < (1 << 20) { step * 5 + 3 } else { 7 };
    }
    e.finish().unwrap()
}

fn stream_decode(z: &[u8], piece: usize) -> std::io::Result<Vec<u8>> {
    let mut d = Decoder::new(z)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; piece];
    loop {
        let n = d.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn versions_and_models() {
    assert_eq!(dzcodec::version(), "0.1.0");
    assert_eq!(Model::embedded(0).unwrap().id().len(), 32);
    assert_eq!(Model::embedded(1000).err().unwrap().code, code::INVALID_ARGUMENT);
}

#[test]
fn round_trips_match_dzfs_codec() {
    for name in names() {
        let (data, reference) = (load(&name), load(&format!("cli_{}.dzc", name)));
        let big = data.len() > (1 << 20);
        if !big {
            assert_eq!(compress_with(&data, &two()).unwrap(), reference, "{}: compress", name);
        }
        let z = stream_encode(&data);
        assert!(z == reference, "{}: Encoder bytes differ from dzfs-codec's", name);
        fs::write(out_dir().join(format!("rust_{}.dzc", name)), &z).unwrap();
        assert!(decompress_with(&z, &two()).unwrap() == data, "{}: decompress", name);
        assert!(stream_decode(&z, if big { 65536 } else { 1 }).unwrap() == data, "{}: Decoder", name);
    }
}

#[test]
fn other_writers_decode() {
    let mut seen = 0;
    let mut files: Vec<PathBuf> = fs::read_dir(out_dir()).unwrap().map(|e| e.unwrap().path()).collect();
    files.extend(names().iter().map(|n| data_dir().join(format!("cli_{}.dzc", n))));
    for p in files {
        let fname = p.file_name().unwrap().to_string_lossy().into_owned();
        if !fname.ends_with(".dzc") || fname.starts_with("rust_") {
            continue;
        }
        let us = match fname.find('_') {
            Some(i) => i,
            None => continue,
        };
        let src = &fname[us + 1..fname.len() - 4];
        if !names().iter().any(|n| n == src) {
            continue;
        }
        assert!(decompress(&fs::read(&p).unwrap()).unwrap() == load(src), "{} decodes", fname);
        seen += 1;
    }
    assert!(seen >= names().len(), "decoded only {} files", seen);
}

#[test]
fn bad_input_is_err() {
    let (data, z) = (load("chunk_p1"), load("cli_chunk_p1.dzc"));
    let mut n = 1;
    while n < z.len() {
        assert!(decompress(&z[..n]).is_err(), "truncated to {}", n);
        if n % 7 == 0 || n + 20 > z.len() {
            let e = stream_decode(&z[..n], 4096).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "stream truncated to {}: {}", n, e);
        }
        n += if n < 80 || n + 40 > z.len() { 1 } else { 211 };
    }
    let (mut flips, mut errors) = (0, 0);
    let mut p = 0;
    while p < z.len() {
        let mut bad = z.clone();
        bad[p] ^= 1 << (p % 8);
        flips += 1;
        match decompress(&bad) {
            Err(e) => {
                assert!(e.code < 0 && !e.message.is_empty());
                errors += 1
            }
            Ok(out) => assert!(out == data, "flip at {} decoded to wrong bytes", p),
        }
        p += if p < 60 { 3 } else if p + 60 > z.len() { 6 } else { z.len() / 12 };
    }
    assert!(errors > flips * 9 / 10, "{} of {} flips were errors", errors, flips);
    let wz = load("wrongmodel.dzc");
    assert_eq!(decompress(&wz).unwrap_err().code, code::MODEL_MISMATCH);
    let other = Model::from_file(data_dir().join("other.dzm").to_str().unwrap()).unwrap();
    let o = Options { decode_models: vec![&other], ..Default::default() };
    assert!(decompress_with(&wz, &o).unwrap() == data);
    assert!(Model::from_bytes(&[7u8; 500]).is_err());
    assert_eq!(Model::from_file("/nonexistent.dzm").err().unwrap().code, code::IO);
    let mut trailing = z.clone();
    trailing.extend_from_slice(b"xyz");
    assert_eq!(decompress(&trailing).unwrap_err().code, code::CORRUPT);
    assert!(stream_decode(&trailing, 100).is_err());
    assert_eq!(compress_with(b"abc", &Options { chunk_size: Some(0), ..Default::default() }).unwrap_err().code, code::INVALID_ARGUMENT);
    // A one-byte output buffer: one byte per read, all right.
    assert!(stream_decode(&z, 1).unwrap() == data);
    let _ = compress(b"").unwrap();
}
