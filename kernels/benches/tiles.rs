//! Tile sweep with robust timing: every valid tile of every available SIMD ISA (and scalar at
//! its default tile, as the yardstick), GEMV (m = 1) and GEMM (m = 64) on one 150m shape,
//! one thread. Variants run round-robin and each reports its fastest of many rounds, so a
//! busy shared machine skews all of them alike and the ranking survives; it prints a table.
//!
//! `cargo bench -p tessera-kernels --bench tiles` (`TESSERA_TILES_SHAPE=KxN`, default
//! 1024x2816; `TESSERA_TILES_ROUNDS`, default 15; `TESSERA_TILES_TYPE=q4_0|q8_0`).

use std::hint::black_box;
use std::time::Instant;

use tessera_kernels::quant::{BlockQ4_0, BlockQ8_0, q4_0, q8_0};
use tessera_kernels::{
    ActBuf, GgmlType, Isa, IsaRequest, Kernels, OutMat, TileConfig, WeightData, WeightMat,
};

struct Variant {
    isa: Isa,
    tile: TileConfig,
    m: usize,
    best: f64,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` from other harnesses
    }
    let shape = std::env::var("TESSERA_TILES_SHAPE").unwrap_or_else(|_| "1024x2816".into());
    let (k, n) = shape
        .split_once('x')
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
        .filter(|(k, n)| k % 32 == 0 && *n > 0)
        .unwrap_or_else(|| {
            eprintln!("TESSERA_TILES_SHAPE '{shape}' is not KxN with K a multiple of 32");
            std::process::exit(2)
        });
    let rounds: usize = std::env::var("TESSERA_TILES_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let q8 = std::env::var("TESSERA_TILES_TYPE").as_deref() == Ok("q8_0");
    let x: Vec<f32> = (0..n * k)
        .map(|i| ((i.wrapping_mul(2654435761) >> 7) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    let (mut b4, mut b8) = (Vec::new(), Vec::new());
    if q8 {
        b8 = vec![BlockQ8_0::default(); n * k / 32];
        q8_0::quantize_row(&x, &mut b8);
    } else {
        b4 = vec![BlockQ4_0::default(); n * k / 32];
        q4_0::quantize_row(&x, &mut b4);
    }
    let (data, ty) = if q8 {
        (WeightData::Q8_0(&b8), GgmlType::Q8_0)
    } else {
        (WeightData::Q4_0(&b4), GgmlType::Q4_0)
    };
    let w = WeightMat::new(data, n, k).expect("whole blocks");
    let mut vs = Vec::new();
    for isa in Isa::available() {
        let tiles = match isa {
            Isa::Scalar => vec![isa.default_tile()],
            Isa::AmxEmu => continue, // emulated: timings mean nothing for tile choice
            _ => isa.valid_tiles(),
        };
        for tile in tiles {
            for m in [1, 64] {
                if m == 1 && tile.m != 1 && isa != Isa::Scalar {
                    continue; // GEMV uses only the 1 × n × k form of a tile
                }
                vs.push(Variant {
                    isa,
                    tile,
                    m,
                    best: f64::INFINITY,
                });
            }
        }
    }
    let xa: Vec<f32> = (0..64 * k)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let mut buf = ActBuf::with_capacity(64, k);
    buf.convert(w.act_kind(), &xa, k);
    let acts = buf.view(w.act_kind(), &xa);
    let mut out = vec![0.0f32; 64 * n];
    for _ in 0..rounds {
        for v in vs.iter_mut() {
            let kernels = Kernels::new(IsaRequest::Named(v.isa), Some(v.tile)).expect("valid");
            let kern = kernels.matmul("tiles", &w, v.m);
            let t = Instant::now();
            {
                let o = OutMat::new(&mut out[..v.m * n], v.m, n);
                // SAFETY: one thread writes every column; acts hold 64 >= m rows for w.
                unsafe { kern.run(&w, acts, &o, 0..n) };
            }
            black_box(&out);
            v.best = v.best.min(t.elapsed().as_secs_f64());
        }
    }
    let bytes = ty.row_bytes(k as u64).expect("whole blocks") as f64 * n as f64;
    // Yardstick: streaming the same number of bytes through a plain sum (a memory-bound
    // GEMV cannot beat it by much).
    let stream: Vec<u64> = (0..bytes as usize / 8).map(|i| i as u64).collect();
    let mut best_stream = f64::INFINITY;
    for _ in 0..rounds {
        let t = Instant::now();
        black_box(stream.iter().fold(0u64, |a, &v| a.wrapping_add(v)));
        best_stream = best_stream.min(t.elapsed().as_secs_f64());
    }
    println!("{ty} k={k} n={n}, best of {rounds} rounds, one thread");
    println!(
        "{:<8} {:<12} {:>4} {:>10} {:>10}",
        "isa", "tile", "m", "GB/s", "GOP/s"
    );
    println!(
        "{:<8} {:<12} {:>4} {:>10.2} {:>10}",
        "stream",
        "-",
        "-",
        bytes / best_stream / 1e9,
        "-"
    );
    for v in &vs {
        let ops = 2.0 * (v.m * n * k) as f64;
        println!(
            "{:<8} {:<12} {:>4} {:>10.2} {:>10.2}",
            v.isa.name(),
            v.tile.to_string(),
            v.m,
            bytes / v.best / 1e9,
            ops / v.best / 1e9
        );
    }
}
