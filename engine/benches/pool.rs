//! Thread-pool barrier strategies measured side by side, interleaved: the cost of one `run`
//! of an empty job (pure dispatch + completion), and of a job shaped like a token's matmul
//! (each thread busy `WORK` µs, then a serial gap of `GAP` µs on the caller as between two
//! matmuls). Pools are built and dropped inside each round so a spinning pool never steals
//! the cores from another one.
//!
//! `cargo bench -p tessera-engine --bench pool` (env: `POOL_ROUNDS`, default 15).

use std::time::{Duration, Instant};

use tessera_engine::pool::{Barrier, ThreadPool};

const WORK: Duration = Duration::from_micros(20);
const GAP: Duration = Duration::from_micros(2);

fn busy(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Median ns per `run` over `iters` runs of `job`, with `gap` of serial work between runs.
fn per_run(pool: &ThreadPool, iters: u32, work: Duration, gap: Duration) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        pool.run(&|_, _| {
            if !work.is_zero() {
                busy(work)
            }
        });
        if !gap.is_zero() {
            busy(gap);
        }
    }
    t.elapsed().as_nanos() as f64 / f64::from(iters)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let rounds: usize = std::env::var("POOL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let barriers = [
        Barrier::Condvar,
        Barrier::SpinPark(200),
        Barrier::SpinPark(Barrier::DEFAULT_SPIN),
        Barrier::SpinPark(20_000),
        Barrier::Spin,
    ];
    let mut empty = vec![Vec::new(); barriers.len()];
    let mut shaped = vec![Vec::new(); barriers.len()];
    for _ in 0..rounds {
        for (i, &b) in barriers.iter().enumerate() {
            let pool = ThreadPool::with_barrier(threads, None, b).expect("starting the pool");
            per_run(&pool, 200, Duration::ZERO, Duration::ZERO); // warm-up
            empty[i].push(per_run(&pool, 5_000, Duration::ZERO, Duration::ZERO));
            shaped[i].push(per_run(&pool, 2_000, WORK, GAP));
        }
    }
    let ideal = (WORK + GAP).as_nanos() as f64;
    println!(
        "threads {threads}, {rounds} interleaved rounds; median over rounds of the mean ns per run"
    );
    println!("| barrier | empty job ns | {WORK:?} job + {GAP:?} gap ns | overhead over ideal ns |");
    println!("| --- | ---: | ---: | ---: |");
    for (i, b) in barriers.iter().enumerate() {
        let (e, s) = (median(&mut empty[i]), median(&mut shaped[i]));
        println!("| {b} | {e:.0} | {s:.0} | {:.0} |", s - ideal);
    }
}
