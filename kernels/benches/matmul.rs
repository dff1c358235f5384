//! GEMV and GEMM per ISA and tile at the 150m model's shapes, one thread, through the same
//! dispatch table the engine uses. GEMV throughput is weight bytes/s (it is memory-bound),
//! GEMM throughput is multiply-adds × 2 per second ("elements" = ops).
//!
//! `cargo bench -p tessera-kernels --bench matmul` runs every available ISA at its default
//! tile; `TESSERA_BENCH_TILES=all` adds a sweep of every valid tile on one GEMM shape and
//! one GEMV shape. amx-emu results are emulated: its benchmark ids say so. `q4_0x8` ids are
//! the Q4_0 weights repacked at load (`Kernels::repack`), where the table has that kernel.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use half::f16;
use tessera_kernels::quant::{BlockQ4_0, BlockQ8_0, q4_0, q8_0};
use tessera_kernels::{ActBuf, GgmlType, Isa, IsaRequest, Kernels, OutMat, WeightData, WeightMat};

/// Weights of the 150m preset's matmuls: (k, n).
const SHAPES: [(usize, usize); 4] = [(1024, 1024), (1024, 2816), (1024, 32000), (2816, 1024)];
const GEMM_M: usize = 64;

enum Owned {
    F16(Vec<f16>),
    Q8(Vec<BlockQ8_0>),
    Q4(Vec<BlockQ4_0>),
}

fn weights(ty: GgmlType, n: usize, k: usize) -> Owned {
    let x: Vec<f32> = (0..n * k)
        .map(|i| ((i.wrapping_mul(2654435761) >> 7) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    match ty {
        GgmlType::F16 => Owned::F16(x.iter().map(|&v| f16::from_f32(v)).collect()),
        GgmlType::Q8_0 => {
            let mut b = vec![BlockQ8_0::default(); n * k / 32];
            q8_0::quantize_row(&x, &mut b);
            Owned::Q8(b)
        }
        _ => {
            let mut b = vec![BlockQ4_0::default(); n * k / 32];
            q4_0::quantize_row(&x, &mut b);
            Owned::Q4(b)
        }
    }
}

fn mat(o: &Owned, n: usize, k: usize) -> WeightMat<'_> {
    let d = match o {
        Owned::F16(v) => WeightData::F16(v),
        Owned::Q8(v) => WeightData::Q8_0(v),
        Owned::Q4(v) => WeightData::Q4_0(v),
    };
    WeightMat::new(d, n, k).expect("bench shapes are whole blocks")
}

fn weight_bytes(ty: GgmlType, n: usize, k: usize) -> u64 {
    ty.row_bytes(k as u64).expect("whole blocks") * n as u64
}

fn run_one(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: BenchmarkId,
    kernels: &Kernels,
    w: &WeightMat,
    m: usize,
) {
    let k = w.k();
    let x: Vec<f32> = (0..m * k)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let mut buf = ActBuf::with_capacity(m, k);
    buf.convert(w.act_kind(), &x, k);
    let acts = buf.view(w.act_kind(), &x);
    let mut out = vec![0.0f32; m * w.n()];
    let kern = kernels.matmul("bench", w, m);
    c.bench_function(id, |b| {
        b.iter(|| {
            let o = OutMat::new(&mut out, m, w.n());
            // SAFETY: one thread writes all columns; acts were converted for this matrix.
            unsafe { kern.run(w, acts, &o, 0..w.n()) };
            black_box(&out);
        })
    });
}

fn isa_label(isa: Isa) -> String {
    if isa == Isa::AmxEmu {
        "amx-emu(emulated)".into()
    } else {
        isa.name().into()
    }
}

fn gemv(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemv");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for ty in [GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::F16] {
        for (k, n) in SHAPES {
            let o = weights(ty, n, k);
            let w = mat(&o, n, k);
            g.throughput(Throughput::Bytes(weight_bytes(ty, n, k)));
            for isa in Isa::available() {
                if matches!(isa, Isa::Amx | Isa::AmxEmu) {
                    continue; // GEMV on the AMX tables is their fallback's kernel
                }
                let kernels = Kernels::new(IsaRequest::Named(isa), None).expect("available");
                let id = BenchmarkId::new(
                    format!("{ty}/{}/{}", isa_label(isa), kernels.tile().for_gemv()),
                    format!("k{k}_n{n}"),
                );
                run_one(&mut g, id, &kernels, &w, 1);
                // The same weights repacked at load, where the table has a kernel for it.
                let rp = kernels.repack([w]);
                if !rp.is_empty() {
                    let id = BenchmarkId::new(
                        format!("{ty}x8/{}/{}", isa_label(isa), kernels.tile().for_gemv()),
                        format!("k{k}_n{n}"),
                    );
                    run_one(&mut g, id, &kernels, &rp.view(w), 1);
                }
            }
        }
    }
    g.finish();
}

fn gemm(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for ty in [GgmlType::Q4_0, GgmlType::Q8_0] {
        for (k, n) in SHAPES {
            if n == 32000 {
                continue; // the output head runs once per batch, as GEMV in pp
            }
            let o = weights(ty, n, k);
            let w = mat(&o, n, k);
            g.throughput(Throughput::Elements((2 * GEMM_M * n * k) as u64));
            for isa in Isa::available() {
                if isa == Isa::Scalar && n > 1024 {
                    continue; // slow and uninteresting beyond one shape
                }
                if isa == Isa::AmxEmu && (n, k) != (1024, 1024) {
                    continue;
                }
                let kernels = Kernels::new(IsaRequest::Named(isa), None).expect("available");
                let id = BenchmarkId::new(
                    format!("{ty}/{}/{}", isa_label(isa), kernels.tile()),
                    format!("m{GEMM_M}_k{k}_n{n}"),
                );
                run_one(&mut g, id, &kernels, &w, GEMM_M);
                let rp = kernels.repack([w]);
                if !rp.is_empty() {
                    let id = BenchmarkId::new(
                        format!("{ty}x8/{}/{}", isa_label(isa), kernels.tile()),
                        format!("m{GEMM_M}_k{k}_n{n}"),
                    );
                    run_one(&mut g, id, &kernels, &rp.view(w), GEMM_M);
                }
            }
        }
    }
    g.finish();
}

/// Every valid tile of every SIMD ISA on one GEMM and one GEMV shape (opt-in: it is long).
fn tiles(c: &mut Criterion) {
    if std::env::var("TESSERA_BENCH_TILES").as_deref() != Ok("all") {
        return;
    }
    let mut g = c.benchmark_group("tiles");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(800));
    let (k, n) = (1024, 2816);
    let o = weights(GgmlType::Q4_0, n, k);
    let w = mat(&o, n, k);
    for isa in Isa::available() {
        if matches!(isa, Isa::Scalar | Isa::AmxEmu) {
            continue;
        }
        for tile in isa.valid_tiles() {
            let kernels = Kernels::new(IsaRequest::Named(isa), Some(tile)).expect("valid");
            g.throughput(Throughput::Elements((2 * GEMM_M * n * k) as u64));
            let id = BenchmarkId::new(format!("q4_0/{isa}/{tile}"), format!("m{GEMM_M}_k{k}_n{n}"));
            run_one(&mut g, id, &kernels, &w, GEMM_M);
            if tile.m == 1 {
                g.throughput(Throughput::Bytes(weight_bytes(GgmlType::Q4_0, n, k)));
                let id = BenchmarkId::new(format!("q4_0/{isa}/{tile}"), format!("m1_k{k}_n{n}"));
                run_one(&mut g, id, &kernels, &w, 1);
            }
        }
    }
    g.finish();
}

criterion_group!(benches, gemv, gemm, tiles);
criterion_main!(benches);
