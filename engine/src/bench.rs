//! llama-bench's timing semantics on the built-in engine: `pp` = a prompt of random tokens
//! from an empty cache in `n_batch` chunks; `tg` = single-token decodes from an empty cache;
//! `pp+tg` = both under one timer; one warm-up run before the timed repetitions. The kernel
//! table's record (calls, per-op time and work) is reset after the warm-up, so it covers the
//! timed repetitions only.

use std::time::Instant;

use crate::context::Context;
use crate::error::Result;
use crate::rng::Rng;

/// One llama-bench test: `n_prompt` prompt tokens then `n_gen` generated tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TestSpec {
    pub n_prompt: usize,
    pub n_gen: usize,
}

impl TestSpec {
    /// Tokens per repetition, the numerator of tokens/s.
    pub fn n_tokens(&self) -> usize {
        self.n_prompt + self.n_gen
    }
}

/// Beginning-of-sequence token of the synthetic and llama vocabularies.
pub const BOS: u32 = 1;

/// Called around each timed repetition (not the warm-up), right inside the timer, so a
/// measurement such as hardware counters covers exactly what the clock covers.
pub trait TimedHook {
    fn start(&mut self) {}
    fn stop(&mut self) {}
}

/// The hook that does nothing.
pub struct NoHook;
impl TimedHook for NoHook {}

/// Runs `spec` `reps` times after one warm-up and returns each repetition's nanoseconds.
/// The context must hold `n_prompt + n_gen` positions.
pub fn run_test(ctx: &mut Context, spec: TestSpec, reps: usize, seed: u64) -> Result<Vec<u64>> {
    run_test_with_hook(ctx, spec, reps, seed, &mut NoHook)
}

/// [`run_test`] with `hook.start()` / `hook.stop()` around every timed repetition.
pub fn run_test_with_hook(
    ctx: &mut Context,
    spec: TestSpec,
    reps: usize,
    seed: u64,
    hook: &mut dyn TimedHook,
) -> Result<Vec<u64>> {
    let mut rng = Rng::new(seed);
    let n_vocab = ctx.n_vocab();
    // Prompt tokens drawn once, outside the timer; llama-bench also draws them before timing.
    let prompt: Vec<u32> = (0..spec.n_prompt)
        .map(|i| {
            if i == 0 {
                BOS
            } else {
                (rng.next_u64() % n_vocab as u64) as u32
            }
        })
        .collect();
    let gen_tokens: Vec<u32> = (0..spec.n_gen.max(1))
        .map(|_| (rng.next_u64() % n_vocab as u64) as u32)
        .collect();

    // Warm-up: the prompt once and one generated token, as llama-bench does.
    ctx.clear();
    if spec.n_prompt > 0 {
        prompt_pass(ctx, &prompt)?;
    }
    if spec.n_gen > 0 {
        gen_pass(ctx, &gen_tokens[..1])?;
    }
    // The record (calls, op times) covers the timed repetitions only.
    ctx.kernels().reset_record();

    let mut samples = Vec::with_capacity(reps);
    for _ in 0..reps {
        ctx.clear();
        hook.start();
        let t0 = Instant::now();
        let r = (|| -> Result<()> {
            if spec.n_prompt > 0 {
                prompt_pass(ctx, &prompt)?;
            }
            if spec.n_gen > 0 {
                gen_pass(ctx, &gen_tokens[..spec.n_gen])?;
            }
            Ok(())
        })();
        let dt = t0.elapsed().as_nanos() as u64;
        hook.stop();
        r?;
        samples.push(dt);
    }
    Ok(samples)
}

fn prompt_pass(ctx: &mut Context, tokens: &[u32]) -> Result<()> {
    let nb = ctx.params().n_batch;
    for chunk in tokens.chunks(nb) {
        ctx.eval(chunk)?;
    }
    Ok(())
}

fn gen_pass(ctx: &mut Context, tokens: &[u32]) -> Result<()> {
    for t in tokens {
        ctx.eval(std::slice::from_ref(t))?;
    }
    Ok(())
}

/// Greedy decoding: the index of the largest logit (the first on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}
