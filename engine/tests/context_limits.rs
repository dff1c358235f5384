//! A context's size is checked before anything is allocated: at most `MAX_CTX` positions,
//! at most `MAX_THREADS` threads, and a KV cache plus buffers that fit the memory available.

use tessera_engine::context::{Footprint, MAX_CTX};
use tessera_engine::pool::MAX_THREADS;
use tessera_engine::{ContextParams, EngineError, Hparams, KvType};

fn tiny() -> Hparams {
    Hparams {
        n_vocab: 512,
        n_embd: 256,
        n_layer: 2,
        n_head: 8,
        n_head_kv: 4,
        n_ff: 768,
        n_rot: 32,
        n_ctx_train: 4096,
        rope_freq_base: 10000.0,
        rms_eps: 1e-5,
    }
}

fn params(n_ctx: usize) -> ContextParams {
    ContextParams {
        n_ctx,
        ..ContextParams::default()
    }
}

#[test]
fn footprint_counts_the_kv_cache_and_buffers_exactly() {
    let hp = tiny();
    // n_embd_kv = 4 heads x 32 = 128; 2 layers; K f16 (2 B) + V f32 (4 B).
    let p = ContextParams {
        n_ctx: 1000,
        n_batch: 64,
        n_ubatch: 16,
        n_threads: 3,
        type_k: KvType::F16,
        type_v: KvType::F32,
        ..ContextParams::default()
    };
    let f = p.footprint(&hp);
    assert_eq!(f.kv_cache, 2 * 1000 * 128 * (2 + 4));
    let f32s = 5 * 16 * 256 + 2 * 16 * 128 + 2 * 16 * 768 + 3 * 1000 + 16 * 768 + 512;
    assert_eq!(f.buffers, 4 * f32s);
    assert_eq!(f.total(), f.kv_cache + f.buffers);

    // The micro-batch never exceeds the context: a 4-position context allocates 4 rows.
    let short = ContextParams {
        n_ctx: 4,
        ..p.clone()
    };
    let f4 = short.footprint(&hp);
    let f32s4 = 5 * 4 * 256 + 2 * 4 * 128 + 2 * 4 * 768 + 3 * 4 + 4 * 768 + 512;
    assert_eq!(f4.buffers, 4 * f32s4);

    // Absurd sizes saturate instead of overflowing.
    let huge = Hparams {
        n_layer: usize::MAX,
        ..hp
    };
    assert_eq!(
        params(MAX_CTX).footprint(&huge),
        Footprint {
            kv_cache: u64::MAX,
            buffers: params(MAX_CTX).footprint(&tiny()).buffers
        }
    );
}

#[test]
fn longer_than_the_limit_is_refused_naming_both() {
    params(MAX_CTX).footprint(&tiny()); // at the limit: only memory can refuse it
    let e = params(MAX_CTX + 1).validate(&tiny()).unwrap_err();
    assert!(matches!(e, EngineError::ContextTooLarge { n_ctx } if n_ctx == MAX_CTX + 1));
    assert_eq!(
        e.to_string(),
        "a context of 16777217 positions is more than the limit of 16777216"
    );
    let e = ContextParams {
        n_threads: MAX_THREADS + 1,
        ..params(8)
    }
    .validate(&tiny())
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot start 1025 threads: more than the limit of 1024"),
        "{e}"
    );
    // Longer than the model's training context (4096) is allowed, as in llama-bench.
    params(8192).validate(&tiny()).unwrap();
}

#[test]
fn more_than_the_memory_available_is_refused_before_allocating() {
    if tessera_engine::memory::available().is_none() {
        eprintln!("skipped: this system reports no available memory");
        return;
    }
    // 2^24 positions x 2^20 layers: exabytes, refused by the check, not by an abort.
    let hp = Hparams {
        n_layer: 1 << 20,
        ..tiny()
    };
    let e = params(MAX_CTX).validate(&hp).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, EngineError::OutOfMemory { .. }), "{msg}");
    assert!(
        msg.starts_with("a context of 16777216 positions (KV cache ")
            && msg.contains(" as K f16 + V f16, buffers ")
            && msg.contains(") needs 8.0 PiB, more than the ")
            && msg.contains(" available ("),
        "{msg}"
    );
    assert_eq!(msg.lines().count(), 1);
}
