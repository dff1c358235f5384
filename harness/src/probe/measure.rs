//! Measured machine rates: memory bandwidth (STREAM-style read, copy, triad over 1..N
//! threads, best of several passes) and peak compute (int8 multiply-add and f32 FMA on
//! data that stays in L1, one core and all cores).
//!
//! The loops are plain Rust that the compiler vectorises; the peak loops are compiled
//! again with AVX2 and AVX-512 enabled and picked at run time, so the numbers reflect the
//! widest vectors this CPU has. They are a roofline yardstick, not a kernel benchmark.
//!
//! The roofline's inputs are measured here too ([`read_curve`], [`isa_peak`]): read
//! bandwidth by working-set size with the widest vector loads the CPU has, and the peak
//! int8 and f32 rate of each kernel ISA's own multiply-add instructions, in dependency
//! chains that stay in registers. [`super::roofline`] turns them into levels and roofs.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tessera_kernels::Isa;

/// Bandwidth with one thread count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bandwidth {
    pub threads: usize,
    /// Bytes read / s, 1e9 units (8 bytes per element).
    pub read_gbps: f64,
    /// `a[i] = b[i]`, counted as 16 bytes per element as STREAM does.
    pub copy_gbps: f64,
    /// `a[i] = b[i] + s * c[i]`, counted as 24 bytes per element.
    pub triad_gbps: f64,
}

/// Peak arithmetic rates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Peak {
    /// Which compiled variant ran: "avx512", "avx2" or "baseline".
    pub variant: String,
    /// i8 × i8 multiply-adds into i32, 2 ops each, G ops/s.
    pub int8_gops_1: f64,
    pub int8_gops_all: f64,
    /// f32 fused multiply-adds, 2 flops each, GFLOP/s.
    pub f32_gflops_1: f64,
    pub f32_gflops_all: f64,
    pub threads_all: usize,
}

/// Thread counts 1, 2, 4, ... up to and including `max`.
pub fn thread_steps(max: usize) -> Vec<usize> {
    let max = max.max(1);
    let mut v = Vec::new();
    let mut t = 1;
    while t < max {
        v.push(t);
        t *= 2;
    }
    v.push(max);
    v
}

/// Measures bandwidth with arrays of `elems` 8-byte elements each (three arrays), `passes`
/// timed passes per kernel, for each thread count.
pub fn bandwidth(elems: usize, passes: usize, threads: &[usize]) -> Vec<Bandwidth> {
    let elems = elems.max(1024);
    let mut a = vec![0u64; elems];
    let mut b = vec![0u64; elems];
    let mut c = vec![0u64; elems];
    // Touch every page first so page faults are not timed.
    for (i, ((x, y), z)) in a.iter_mut().zip(&mut b).zip(&mut c).enumerate() {
        *x = i as u64;
        *y = (i as u64) ^ 0x55;
        *z = 3;
    }
    threads
        .iter()
        .map(|&t| {
            let t = t.max(1);
            let read = best_secs(t, passes, &mut a, &mut b, &mut c, Kernel::Read);
            let copy = best_secs(t, passes, &mut a, &mut b, &mut c, Kernel::Copy);
            let triad = best_secs(t, passes, &mut a, &mut b, &mut c, Kernel::Triad);
            let gb = |bytes_per: f64, secs: f64| elems as f64 * bytes_per / secs / 1e9;
            Bandwidth {
                threads: t,
                read_gbps: gb(8.0, read),
                copy_gbps: gb(16.0, copy),
                triad_gbps: gb(24.0, triad),
            }
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Kernel {
    Read,
    Copy,
    Triad,
}

/// Runs `kernel` over the arrays split into `t` parts, `passes` times; every pass starts
/// and ends at a barrier, so the time covers all threads. Returns the best pass in seconds.
fn best_secs(
    t: usize,
    passes: usize,
    a: &mut [u64],
    b: &mut [u64],
    c: &mut [u64],
    kernel: Kernel,
) -> f64 {
    let chunk = a.len().div_ceil(t);
    let barrier = Barrier::new(t);
    let mut best = f64::INFINITY;
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for ((a, b), c) in a
            .chunks_mut(chunk)
            .zip(b.chunks_mut(chunk))
            .zip(c.chunks_mut(chunk))
        {
            let barrier = &barrier;
            handles.push(s.spawn(move || {
                let mut times = Vec::with_capacity(passes);
                for _ in 0..passes.max(1) {
                    barrier.wait();
                    let t0 = Instant::now();
                    match kernel {
                        Kernel::Read => {
                            // Eight independent sums, so the loop is bound by loads even
                            // when the compiler does not vectorise it.
                            let mut acc = [0u64; 8];
                            let chunks = b.chunks_exact(8);
                            let rest = chunks.remainder();
                            for c in chunks {
                                for j in 0..8 {
                                    acc[j] = acc[j].wrapping_add(c[j]);
                                }
                            }
                            for &x in rest {
                                acc[0] = acc[0].wrapping_add(x);
                            }
                            black_box(acc);
                        }
                        Kernel::Copy => {
                            for (x, &y) in a.iter_mut().zip(b.iter()) {
                                *x = y;
                            }
                            black_box(&a);
                        }
                        Kernel::Triad => {
                            // Integer triad: the same traffic as STREAM's f64 triad, and
                            // no FP latency chain can hide the memory time.
                            for ((x, &y), &z) in a.iter_mut().zip(b.iter()).zip(c.iter()) {
                                *x = y.wrapping_add(z.wrapping_mul(3));
                            }
                            black_box(&a);
                        }
                    }
                    barrier.wait();
                    times.push(t0.elapsed().as_secs_f64());
                }
                times
            }));
        }
        // The slowest thread of a pass bounds that pass; the best pass wins.
        let all: Vec<Vec<f64>> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
        for p in 0..passes.max(1) {
            let worst = all
                .iter()
                .filter_map(|v| v.get(p))
                .fold(0.0f64, |m, &x| m.max(x));
            if worst > 0.0 {
                best = best.min(worst);
            }
        }
    });
    best
}

const DOT_LEN: usize = 4096;
const FMA_LANES: usize = 128;

#[inline(always)]
fn dot_i8_body(a: &[u8], b: &[i8], reps: usize) -> i32 {
    let mut total = 0i32;
    for r in 0..reps {
        let mut acc = [0i32; 16];
        for (ca, cb) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
            for j in 0..16 {
                acc[j] = acc[j].wrapping_add(i32::from(ca[j]) * i32::from(cb[j]));
            }
        }
        total = total.wrapping_add(acc.iter().fold(0i32, |x, &y| x.wrapping_add(y)));
        std::hint::black_box(r);
    }
    total
}

// The vector variants use intrinsics rather than relying on the auto-vectoriser, which
// does not run at the dev profile's opt-level 1 and would make "peak" a fraction of what
// the kernels reach. The int8 loop is the u8 × i8 → i16 pairs → i32 pattern that
// quantized dot products use (vpmaddubsw + vpmaddwd), four independent accumulators.

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn dot_i8_avx512(a: &[u8], b: &[i8], reps: usize) -> i32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len()) / 256 * 256;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let ones = _mm512_set1_epi16(1);
    let mut total = 0i32;
    for _ in 0..reps {
        // Separate variables, not an array: they stay in registers even at opt-level 1.
        let (mut c0, mut c1, mut c2, mut c3) = (
            _mm512_setzero_si512(),
            _mm512_setzero_si512(),
            _mm512_setzero_si512(),
            _mm512_setzero_si512(),
        );
        let mut i = 0;
        while i < n {
            // SAFETY: i + 256 <= n <= the length of both slices; unaligned loads.
            unsafe {
                let l = |o: usize| {
                    _mm512_madd_epi16(
                        _mm512_maddubs_epi16(
                            _mm512_loadu_si512(pa.wrapping_add(i.wrapping_add(o)).cast()),
                            _mm512_loadu_si512(pb.wrapping_add(i.wrapping_add(o)).cast()),
                        ),
                        ones,
                    )
                };
                c0 = _mm512_add_epi32(c0, l(0));
                c1 = _mm512_add_epi32(c1, l(64));
                c2 = _mm512_add_epi32(c2, l(128));
                c3 = _mm512_add_epi32(c3, l(192));
            }
            i += 256;
        }
        let s = _mm512_add_epi32(_mm512_add_epi32(c0, c1), _mm512_add_epi32(c2, c3));
        total = total.wrapping_add(_mm512_reduce_add_epi32(s));
    }
    total
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_i8_avx2(a: &[u8], b: &[i8], reps: usize) -> i32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len()) / 128 * 128;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let ones = _mm256_set1_epi16(1);
    let mut total = 0i32;
    for _ in 0..reps {
        let (mut c0, mut c1, mut c2, mut c3) = (
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
        );
        let mut i = 0;
        while i < n {
            // SAFETY: i + 128 <= n <= the length of both slices; unaligned loads.
            unsafe {
                let l = |o: usize| {
                    _mm256_madd_epi16(
                        _mm256_maddubs_epi16(
                            _mm256_loadu_si256(pa.wrapping_add(i.wrapping_add(o)).cast()),
                            _mm256_loadu_si256(pb.wrapping_add(i.wrapping_add(o)).cast()),
                        ),
                        ones,
                    )
                };
                c0 = _mm256_add_epi32(c0, l(0));
                c1 = _mm256_add_epi32(c1, l(32));
                c2 = _mm256_add_epi32(c2, l(64));
                c3 = _mm256_add_epi32(c3, l(96));
            }
            i += 128;
        }
        let s = _mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3));
        let mut lanes = [0i32; 8];
        // SAFETY: `lanes` holds exactly 32 bytes.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), s) };
        total = total.wrapping_add(lanes.iter().fold(0i32, |x, &y| x.wrapping_add(y)));
    }
    total
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_f32_avx512(x: f32, y: f32, iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let (vx, vy) = (_mm512_set1_ps(x), _mm512_set1_ps(y));
    // Eight independent chains cover the FMA latency on two ports.
    let mut acc = [_mm512_setzero_ps(); 8];
    for _ in 0..iters * FMA_LANES / 128 {
        for a in acc.iter_mut() {
            *a = _mm512_fmadd_ps(*a, vx, vy);
        }
    }
    let mut sum = 0.0;
    for a in acc {
        sum += _mm512_reduce_add_ps(a);
    }
    sum
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_f32_avx2(x: f32, y: f32, iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let (vx, vy) = (_mm256_set1_ps(x), _mm256_set1_ps(y));
    let mut acc = [_mm256_setzero_ps(); 16];
    for _ in 0..iters * FMA_LANES / 128 {
        for a in acc.iter_mut() {
            *a = _mm256_fmadd_ps(*a, vx, vy);
        }
    }
    let mut sum = 0.0;
    for a in acc {
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` holds exactly 32 bytes.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), a) };
        sum += lanes.iter().sum::<f32>();
    }
    sum
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    Baseline,
    Avx2,
    Avx512,
}

fn variant() -> Variant {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("fma")
        {
            return Variant::Avx512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Variant::Avx2;
        }
    }
    Variant::Baseline
}

fn dot_i8(v: Variant, a: &[u8], b: &[i8], reps: usize) -> i32 {
    match v {
        // SAFETY: `variant()` returned these only after detecting the features.
        #[cfg(target_arch = "x86_64")]
        Variant::Avx512 => unsafe { dot_i8_avx512(a, b, reps) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Variant::Avx2 => unsafe { dot_i8_avx2(a, b, reps) },
        _ => dot_i8_body(a, b, reps),
    }
}

fn fma_f32(v: Variant, x: f32, y: f32, iters: usize) -> f32 {
    match v {
        // SAFETY: `variant()` returned these only after detecting the features.
        #[cfg(target_arch = "x86_64")]
        Variant::Avx512 => unsafe { fma_f32_avx512(x, y, iters) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Variant::Avx2 => unsafe { fma_f32_avx2(x, y, iters) },
        // Without FMA hardware `mul_add` is a slow library call; a multiply and an add do
        // the same two flops.
        _ => {
            let mut acc = [0.0f32; FMA_LANES];
            for _ in 0..iters {
                for a in acc.iter_mut() {
                    *a = *a * x + y;
                }
            }
            acc.iter().sum()
        }
    }
}

/// Measures peak rates; `scale` multiplies the work (1 = about 0.1 s per measurement on a
/// recent core).
pub fn peak(threads_all: usize, scale: f64) -> Peak {
    let v = variant();
    // Activations below 128 keep vpmaddubsw's i16 pair sums from saturating.
    let a: Vec<u8> = (0..DOT_LEN).map(|i| ((i * 7) % 128) as u8).collect();
    let b: Vec<i8> = (0..DOT_LEN).map(|i| ((i * 13) % 251) as i8).collect();
    let dot_reps = ((20_000.0 * scale) as usize).max(1);
    let fma_iters = ((400_000.0 * scale) as usize).max(1);
    let run = |t: usize, f: &(dyn Fn() + Sync)| -> f64 {
        // Best of three, all threads started together.
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let barrier = Barrier::new(t);
            let t0 = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..t {
                    s.spawn(|| {
                        barrier.wait();
                        f();
                    });
                }
            });
            best = best.min(t0.elapsed().as_secs_f64());
        }
        best
    };
    let dot = || {
        black_box(dot_i8(v, black_box(&a), black_box(&b), dot_reps));
    };
    let fma = || {
        black_box(fma_f32(v, black_box(1.000_001), black_box(1e-7), fma_iters));
    };
    let dot_ops = 2.0 * DOT_LEN as f64 * dot_reps as f64;
    let fma_ops = 2.0 * FMA_LANES as f64 * fma_iters as f64;
    let t = threads_all.max(1);
    Peak {
        variant: match v {
            Variant::Avx512 => "avx512",
            Variant::Avx2 => "avx2",
            Variant::Baseline => "baseline",
        }
        .to_string(),
        int8_gops_1: dot_ops / run(1, &dot) / 1e9,
        int8_gops_all: dot_ops * t as f64 / run(t, &dot) / 1e9,
        f32_gflops_1: fma_ops / run(1, &fma) / 1e9,
        f32_gflops_all: fma_ops * t as f64 / run(t, &fma) / 1e9,
        threads_all: t,
    }
}

// ---- The roofline's inputs: read bandwidth by working set, peak rate per kernel ISA ----

/// One point of a read-bandwidth curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// The working set: bytes all threads read together (each its own slice).
    pub bytes: u64,
    /// Bytes read / s, 1e9 units.
    pub gbps: f64,
}

/// u64 elements per iteration of every read loop (256 bytes: four 64-byte vectors), so each
/// thread's slice is a whole number of iterations.
pub const READ_STEP: usize = 32;

/// The vector width of the read loops, the widest this CPU has: the roofline's bandwidths are
/// what that width reads, an upper bound for narrower kernels.
#[derive(Clone, Copy, Debug, PartialEq)]
enum ReadWidth {
    Scalar,
    Avx2,
    Avx512,
}

fn read_width() -> ReadWidth {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return ReadWidth::Avx512;
        }
        if is_x86_feature_detected!("avx2") {
            return ReadWidth::Avx2;
        }
    }
    ReadWidth::Scalar
}

/// The name of the read loop [`read_curve`] uses here: "avx512", "avx2" or "scalar".
pub fn read_isa() -> &'static str {
    match read_width() {
        ReadWidth::Avx512 => "avx512",
        ReadWidth::Avx2 => "avx2",
        ReadWidth::Scalar => "scalar",
    }
}

fn read_scalar(buf: &[u64], reps: usize) -> u64 {
    let mut acc = [0u64; 8];
    for _ in 0..reps {
        for c in black_box(buf).chunks_exact(8) {
            for j in 0..8 {
                acc[j] = acc[j].wrapping_add(c[j]);
            }
        }
    }
    acc.iter().fold(0u64, |a, &x| a.wrapping_add(x))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn read_avx512(buf: &[u64], reps: usize) -> u64 {
    use std::arch::x86_64::*;
    let n = buf.len() / READ_STEP * READ_STEP;
    let (mut a0, mut a1, mut a2, mut a3) = (
        _mm512_setzero_si512(),
        _mm512_setzero_si512(),
        _mm512_setzero_si512(),
        _mm512_setzero_si512(),
    );
    for _ in 0..reps {
        // Opaque per pass, so the passes cannot be folded into one.
        let p = black_box(buf.as_ptr());
        let mut i = 0;
        while i < n {
            // SAFETY: i + READ_STEP <= n <= buf.len(); unaligned loads.
            unsafe {
                a0 = _mm512_add_epi64(a0, _mm512_loadu_si512(p.add(i).cast()));
                a1 = _mm512_add_epi64(a1, _mm512_loadu_si512(p.add(i + 8).cast()));
                a2 = _mm512_add_epi64(a2, _mm512_loadu_si512(p.add(i + 16).cast()));
                a3 = _mm512_add_epi64(a3, _mm512_loadu_si512(p.add(i + 24).cast()));
            }
            i += READ_STEP;
        }
    }
    let s = _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3));
    _mm512_reduce_add_epi64(s) as u64
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn read_avx2(buf: &[u64], reps: usize) -> u64 {
    use std::arch::x86_64::*;
    let n = buf.len() / READ_STEP * READ_STEP;
    let (mut a0, mut a1, mut a2, mut a3) = (
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
    );
    for _ in 0..reps {
        let p = black_box(buf.as_ptr());
        let mut i = 0;
        while i < n {
            // SAFETY: i + READ_STEP <= n <= buf.len(); unaligned loads.
            unsafe {
                let l = |o: usize| _mm256_loadu_si256(p.add(i + o).cast());
                a0 = _mm256_add_epi64(a0, _mm256_add_epi64(l(0), l(4)));
                a1 = _mm256_add_epi64(a1, _mm256_add_epi64(l(8), l(12)));
                a2 = _mm256_add_epi64(a2, _mm256_add_epi64(l(16), l(20)));
                a3 = _mm256_add_epi64(a3, _mm256_add_epi64(l(24), l(28)));
            }
            i += READ_STEP;
        }
    }
    let s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    let mut lanes = [0u64; 4];
    // SAFETY: `lanes` holds exactly 32 bytes.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), s) };
    lanes.iter().fold(0u64, |a, &x| a.wrapping_add(x))
}

/// The wrapping sum of `reps` passes over `buf`'s whole [`READ_STEP`]s.
fn read_sum(w: ReadWidth, buf: &[u64], reps: usize) -> u64 {
    match w {
        // SAFETY: `read_width()` returns these only after detecting the features.
        #[cfg(target_arch = "x86_64")]
        ReadWidth::Avx512 => unsafe { read_avx512(buf, reps) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        ReadWidth::Avx2 => unsafe { read_avx2(buf, reps) },
        _ => read_scalar(&buf[..buf.len() / READ_STEP * READ_STEP], reps),
    }
}

/// Read bandwidth at each working set of `sizes` (bytes), `threads` threads reading
/// together. Each thread reads its own contiguous slice, 1/`threads` of the set (rounded
/// down to whole 256-byte steps, at least one), as the kernels' threads read their own weight
/// rows; so with private caches the all-thread curve stays on a level up to the sum of the
/// threads' caches. A pass reads each slice often enough to move `pass_bytes` per thread
/// (at least once); after one untimed pass that brings the slice into cache, the best of
/// `passes` passes counts, a pass lasting as long as its slowest thread. `buf` must hold the
/// largest set; a larger one is cut to it.
pub fn read_curve(
    buf: &[u64],
    sizes: &[u64],
    threads: usize,
    passes: usize,
    pass_bytes: u64,
) -> Vec<CurvePoint> {
    let t = threads.max(1);
    let passes = passes.max(1);
    let w = read_width();
    let cap = buf.len() / t / READ_STEP * READ_STEP;
    if cap == 0 {
        return Vec::new();
    }
    // (elements per thread, passes over it per timed pass)
    let plan: Vec<(usize, usize)> = sizes
        .iter()
        .map(|&s| {
            let per = ((s / 8) as usize / t / READ_STEP * READ_STEP).clamp(READ_STEP, cap);
            let reps = pass_bytes.div_ceil(per as u64 * 8).max(1) as usize;
            (per, reps)
        })
        .collect();
    let barrier = Barrier::new(t);
    let per_thread: Vec<Vec<Vec<f64>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..t)
            .map(|i| {
                let (plan, barrier) = (&plan, &barrier);
                s.spawn(move || {
                    plan.iter()
                        .map(|&(per, reps)| {
                            let slice = &buf[i * per..(i + 1) * per];
                            barrier.wait();
                            black_box(read_sum(w, slice, reps));
                            (0..passes)
                                .map(|_| {
                                    barrier.wait();
                                    let t0 = Instant::now();
                                    black_box(read_sum(w, slice, reps));
                                    t0.elapsed().as_secs_f64()
                                })
                                .collect()
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    plan.iter()
        .enumerate()
        .map(|(j, &(per, reps))| {
            let best = (0..passes)
                .map(|p| {
                    per_thread
                        .iter()
                        .filter_map(|v| v.get(j).and_then(|x| x.get(p)))
                        .fold(0.0f64, |m, &x| m.max(x))
                })
                .fold(f64::INFINITY, f64::min)
                .max(1e-9);
            let bytes = (per * t * 8) as u64;
            CurvePoint {
                bytes,
                gbps: (bytes * reps as u64) as f64 / best / 1e9,
            }
        })
        .collect()
}

/// Which multiply-add a peak loop runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeakKind {
    /// i8 × i8 (or u8 × i8) products summed into i32, 2 ops each.
    Int8,
    /// f32 multiply-adds, 2 flops each.
    F32,
}

/// `$c` chains of `$c = $step` (`$v` names the chain's value in `$step`), run `$iters` times;
/// evaluates to the chains' values. Separate variables, not an array, so they stay in
/// registers at opt-level 1; each starts from an opaque copy of `$init`, so the compiler
/// cannot merge identical chains into one.
macro_rules! chains {
    ($iters:expr, $init:expr, |$v:ident| $step:expr, $($c:ident)+) => {{
        $(let mut $c = black_box($init);)+
        for _ in 0..$iters {
            $($c = { let $v = $c; $step };)+
        }
        [$($c),+]
    }};
}

/// A peak loop: `run(iters)` does `ops_per_iter` operations per iteration and returns a
/// checksum. Only [`peak_loop`] hands them out, after checking the CPU can run them.
#[derive(Clone, Copy)]
struct PeakLoop {
    ops_per_iter: f64,
    run: fn(usize) -> f64,
}

// The scalar table is compiled for the baseline target, which on x86-64 includes SSE2: its
// peak is SSE2's (pmaddwd for int8, mulps + addps for f32, no FMA), the best the compiler
// can vectorise the scalar kernels to.
#[cfg(target_arch = "x86_64")]
fn peak_i8_scalar(iters: usize) -> f64 {
    // SAFETY: SSE2 is part of the x86-64 baseline.
    unsafe { peak_i8_sse2(iters) }
}

#[cfg(target_arch = "x86_64")]
fn peak_f32_scalar(iters: usize) -> f64 {
    // SAFETY: SSE2 is part of the x86-64 baseline.
    unsafe { peak_f32_sse2(iters) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
unsafe fn peak_i8_sse2(iters: usize) -> f64 {
    use std::arch::x86_64::*;
    let b = _mm_set1_epi16(black_box(3));
    let r = chains!(iters, _mm_set1_epi32(1), |v| _mm_add_epi32(v, _mm_madd_epi16(v, b)),
        c0 c1 c2 c3 c4 c5 c6 c7 c8 c9);
    r.iter().map(|&v| f64::from(_mm_cvtsi128_si32(v))).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
unsafe fn peak_f32_sse2(iters: usize) -> f64 {
    use std::arch::x86_64::*;
    let (x, y) = (
        _mm_set1_ps(black_box(0.999_99)),
        _mm_set1_ps(black_box(1e-7)),
    );
    let r = chains!(iters, _mm_set1_ps(1.0), |v| _mm_add_ps(_mm_mul_ps(v, x), y),
        c0 c1 c2 c3 c4 c5 c6 c7 c8 c9 c10 c11);
    r.iter().map(|&v| f64::from(_mm_cvtss_f32(v))).sum()
}

#[cfg(not(target_arch = "x86_64"))]
fn peak_i8_scalar(iters: usize) -> f64 {
    let b = black_box(3i32);
    let r = chains!(iters, 1i32, |v| v.wrapping_add(v.wrapping_mul(b)), c0 c1 c2 c3 c4 c5 c6 c7);
    r.iter().map(|&v| f64::from(v)).sum()
}

#[cfg(not(target_arch = "x86_64"))]
fn peak_f32_scalar(iters: usize) -> f64 {
    let (x, y) = (black_box(0.999_99f32), black_box(1e-7f32));
    let r = chains!(iters, 1.0f32, |v| v * x + y, c0 c1 c2 c3 c4 c5 c6 c7);
    r.iter().map(|&v| f64::from(v)).sum()
}

/// The avx2 kernels' int8 pattern: vpmaddubsw, then vpmaddwd by ones, then an add.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn peak_i8_avx2(iters: usize) -> f64 {
    use std::arch::x86_64::*;
    let (b, ones) = (_mm256_set1_epi8(black_box(3)), _mm256_set1_epi16(1));
    let r = chains!(iters, _mm256_set1_epi32(1),
        |v| _mm256_add_epi32(v, _mm256_madd_epi16(_mm256_maddubs_epi16(v, b), ones)),
        c0 c1 c2 c3 c4 c5 c6 c7 c8 c9);
    r.iter()
        .map(|&v| f64::from(_mm_cvtsi128_si32(_mm256_castsi256_si128(v))))
        .sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn peak_f32_avx2(iters: usize) -> f64 {
    use std::arch::x86_64::*;
    let (x, y) = (
        _mm256_set1_ps(black_box(0.999_99)),
        _mm256_set1_ps(black_box(1e-7)),
    );
    let r = chains!(iters, _mm256_set1_ps(1.0), |v| _mm256_fmadd_ps(v, x, y),
        c0 c1 c2 c3 c4 c5 c6 c7 c8 c9 c10 c11);
    r.iter().map(|&v| f64::from(_mm256_cvtss_f32(v))).sum()
}

/// The avx512 kernels' int8 instruction: vpdpbusd (the `avx512` table requires VNNI).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn peak_i8_avx512(iters: usize) -> f64 {
    use std::arch::x86_64::*;
    let (a, b) = (
        _mm512_set1_epi8(black_box(3)),
        _mm512_set1_epi8(black_box(-2)),
    );
    let r = chains!(iters, _mm512_set1_epi32(1), |v| _mm512_dpbusd_epi32(v, a, b),
        c0 c1 c2 c3 c4 c5 c6 c7 c8 c9 c10 c11);
    r.iter()
        .map(|&v| f64::from(_mm512_reduce_add_epi32(v)))
        .sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn peak_f32_avx512(iters: usize) -> f64 {
    use std::arch::x86_64::*;
    let (x, y) = (
        _mm512_set1_ps(black_box(0.999_99)),
        _mm512_set1_ps(black_box(1e-7)),
    );
    let r = chains!(iters, _mm512_set1_ps(1.0), |v| _mm512_fmadd_ps(v, x, y),
        c0 c1 c2 c3 c4 c5 c6 c7 c8 c9 c10 c11);
    r.iter().map(|&v| f64::from(_mm512_reduce_add_ps(v))).sum()
}

/// The peak loop of `isa`'s `kind`, or why this CPU cannot run it. `amx` has no f32 tiles:
/// its float matmuls run on the avx512 table, so its f32 loop is avx512's. `amx-emu` is
/// emulated and has none.
fn peak_loop(isa: Isa, kind: PeakKind) -> Result<PeakLoop, String> {
    if let Some(why) = isa.unavailable_reason() {
        return Err(why);
    }
    let lp = |ops_per_iter: f64, run: fn(usize) -> f64| Ok(PeakLoop { ops_per_iter, run });
    match (isa, kind) {
        (Isa::Scalar, PeakKind::Int8) => {
            let macs = if cfg!(target_arch = "x86_64") {
                10 * 8
            } else {
                8
            };
            lp(2.0 * f64::from(macs), peak_i8_scalar)
        }
        (Isa::Scalar, PeakKind::F32) => {
            let lanes = if cfg!(target_arch = "x86_64") {
                12 * 4
            } else {
                8
            };
            lp(2.0 * f64::from(lanes), peak_f32_scalar)
        }
        // SAFETY (every unsafe call below): `unavailable_reason` returned None above, so
        // the CPU has the ISA's features (avx2: AVX2/FMA/F16C; avx512 and amx: AVX-512
        // F/BW/VL/VNNI).
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, PeakKind::Int8) => lp(2.0 * 10.0 * 32.0, |n| unsafe { peak_i8_avx2(n) }),
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, PeakKind::F32) => lp(2.0 * 12.0 * 8.0, |n| unsafe { peak_f32_avx2(n) }),
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, PeakKind::Int8) => lp(2.0 * 12.0 * 64.0, |n| unsafe { peak_i8_avx512(n) }),
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512 | Isa::Amx, PeakKind::F32) => {
            lp(2.0 * 12.0 * 16.0, |n| unsafe { peak_f32_avx512(n) })
        }
        (Isa::Amx, PeakKind::Int8) => lp(
            2.0 * tessera_kernels::cpu::amx::TDPBSSD_ROUND_MACS as f64,
            |n| tessera_kernels::cpu::amx::tdpbssd_peak_loop(n).map_or(0.0, |s| s as f64),
        ),
        (Isa::AmxEmu, _) => Err("emulated: its timings are not the hardware's".into()),
        #[allow(unreachable_patterns)]
        _ => Err("not an x86-64 build".into()),
    }
}

/// Peak rate, 1e9 operations per second, of `isa`'s `kind` loop on `threads` threads
/// together (each running the loop, sized to about `secs` on one thread; best of three), or
/// why it cannot run here.
pub fn isa_peak(isa: Isa, kind: PeakKind, threads: usize, secs: f64) -> Result<f64, String> {
    let lp = peak_loop(isa, kind)?;
    let t = threads.max(1);
    // Size the loop on one thread: grow until a run is long enough to time, then scale.
    let mut iters = 16usize;
    loop {
        let t0 = Instant::now();
        black_box((lp.run)(black_box(iters)));
        let e = t0.elapsed().as_secs_f64();
        if e >= secs / 8.0 || iters >= 1 << 40 {
            iters = ((iters as f64 * secs / e.max(1e-9)) as usize).max(1);
            break;
        }
        iters *= 4;
    }
    let barrier = Barrier::new(t);
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let worst = std::thread::scope(|s| {
            let hs: Vec<_> = (0..t)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        let t0 = Instant::now();
                        black_box((lp.run)(black_box(iters)));
                        t0.elapsed().as_secs_f64()
                    })
                })
                .collect();
            hs.into_iter()
                .filter_map(|h| h.join().ok())
                .fold(0.0f64, f64::max)
        });
        if worst > 0.0 {
            best = best.min(worst);
        }
    }
    Ok(lp.ops_per_iter * iters as f64 * t as f64 / best / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_steps_are_powers_of_two_then_max() {
        assert_eq!(thread_steps(1), [1]);
        assert_eq!(thread_steps(2), [1, 2]);
        assert_eq!(thread_steps(6), [1, 2, 4, 6]);
        assert_eq!(thread_steps(0), [1]);
    }

    #[test]
    fn every_variant_computes_the_same_dot_product() {
        let a: Vec<u8> = (0..DOT_LEN).map(|i| (i % 128) as u8).collect();
        let b: Vec<i8> = (0..DOT_LEN).map(|i| (i % 97) as i8 - 40).collect();
        let want: i32 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| i32::from(x) * i32::from(y))
            .sum();
        assert_eq!(dot_i8(Variant::Baseline, &a, &b, 1), want);
        assert_eq!(dot_i8(variant(), &a, &b, 1), want);
        assert_eq!(dot_i8(variant(), &a, &b, 3), want.wrapping_mul(3));
        // The FMA variants agree with the scalar loop on a value exact in f32.
        let want = fma_f32(Variant::Baseline, 1.0, 1.0, 4);
        assert_eq!(want, FMA_LANES as f32 * 4.0);
        assert_eq!(fma_f32(variant(), 1.0, 1.0, 4), want);
    }

    #[test]
    fn bandwidth_reports_every_thread_count() {
        let bw = bandwidth(1 << 16, 2, &[1, 2]);
        assert_eq!(bw.iter().map(|b| b.threads).collect::<Vec<_>>(), [1, 2]);
        for b in &bw {
            for v in [b.read_gbps, b.copy_gbps, b.triad_gbps] {
                assert!(v.is_finite() && v > 0.0, "{b:?}");
            }
        }
    }
}
