//! Weights are resident once: loading drops the map's pages of each tensor it copied, and
//! repacking for a kernel table replaces each original instead of keeping a copy beside it.
//! (The bound on a whole bench's max RSS is measured in docs/performance.md.)

use tessera_engine::gguf::GgufFile;
use tessera_engine::model::Store;
use tessera_engine::synth::{Preset, SynthSpec, write_model};
use tessera_engine::{Context, ContextParams, Model};
use tessera_kernels::{GgmlType, Isa, IsaRequest, Kernels};

/// Resident KiB of this process's mappings of `path`, from /proc/self/smaps.
fn mapped_rss_kib(path: &std::path::Path) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let name = path.canonicalize().unwrap().display().to_string();
    let mut inside = false;
    let mut kib = 0;
    for line in smaps.lines() {
        // A mapping's header: "start-end perms offset dev inode [path]".
        let mut fields = line.split_whitespace();
        if fields.next().is_some_and(|f| f.contains('-')) && fields.count() >= 4 {
            inside = line.ends_with(&name);
        }
        if inside && let Some(v) = line.strip_prefix("Rss:") {
            kib += v
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .unwrap();
        }
    }
    kib
}

#[test]
fn released_tensors_leave_the_map_and_packed_weights_replace_originals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_model(&path, &SynthSpec::new(Preset::Tiny, GgmlType::Q8_0, 3)).unwrap();
    let f = GgufFile::open(&path).unwrap();
    let mut sum = 0u64;
    for t in &f.tensors {
        sum += f.tensor_data(t).iter().map(|&b| u64::from(b)).sum::<u64>();
    }
    let touched = mapped_rss_kib(&path);
    assert!(
        touched > 512,
        "reading every tensor makes the map resident: {touched} KiB"
    );
    for t in &f.tensors {
        f.release(t);
    }
    let after = mapped_rss_kib(&path);
    // Only the header pages and the partial pages at tensor edges may stay.
    assert!(
        after * 4 < touched,
        "{touched} KiB resident before release, {after} after"
    );
    // The map still reads the same bytes (faulted in again from the file).
    let again: u64 = f
        .tensors
        .iter()
        .map(|t| f.tensor_data(t).iter().map(|&b| u64::from(b)).sum::<u64>())
        .sum();
    assert_eq!(again, sum);
    drop(f);

    let mut model = Model::load(&path).unwrap();
    let plain = {
        let kernels = Kernels::new(IsaRequest::Named(Isa::Scalar), None).unwrap();
        let mut ctx = Context::new(&model, &kernels, ContextParams::default()).unwrap();
        ctx.eval(&[1, 2, 3]).unwrap().to_vec()
    };
    // amx-emu runs everywhere and repacks into the x16 layout.
    let kernels = Kernels::new(IsaRequest::Named(Isa::AmxEmu), None).unwrap();
    model.repack_for(&kernels, model.hp.n_layer, true);
    let packed = model
        .layers
        .iter()
        .flat_map(|l| [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down])
        .filter(|w| matches!(w.store, Store::Packed(_)))
        .count();
    assert_eq!(
        packed,
        7 * model.hp.n_layer,
        "every layer matrix replaced in place"
    );
    let ctx = Context::new(&model, &kernels, ContextParams::default()).unwrap();
    assert_eq!(
        ctx.repacked_len(),
        0,
        "a context over a repacked model copies nothing"
    );
    drop(ctx);
    let mut ctx = Context::new(&model, &kernels, ContextParams::default()).unwrap();
    let got = ctx.eval(&[1, 2, 3]).unwrap().to_vec();
    let worst = got
        .iter()
        .zip(&plain)
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "repacked model's logits differ by {worst}");
    // Back to the plain layout for a table without one: the same bytes as loaded.
    model.repack_for(
        &Kernels::new(IsaRequest::Named(Isa::Scalar), None).unwrap(),
        0,
        false,
    );
    let fresh = Model::load(&path).unwrap();
    for (a, b) in model.layers.iter().zip(&fresh.layers) {
        match (&a.w_down.store, &b.w_down.store) {
            (Store::Q8_0(x), Store::Q8_0(y)) => assert_eq!(x, y),
            other => panic!("not plain Q8_0 again: {other:?}"),
        }
    }
}
