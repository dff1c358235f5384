//! The cache directory and the default model: synthesized once on first use, so the main
//! job needs nothing downloaded.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use tessera_engine::synth::{self, Preset, SynthSpec};
use tessera_kernels::GgmlType;

/// The built-in default model: the 150m preset in Q4_0, the shape FACTS.md gives llama.cpp
/// reference numbers for, seed 1.
pub const DEFAULT_PRESET: Preset = Preset::M150;
pub const DEFAULT_TYPE: GgmlType = GgmlType::Q4_0;
pub const DEFAULT_SEED: u64 = 1;

/// `$TESSERA_CACHE`, else `$XDG_CACHE_HOME/tessera`, else `~/.cache/tessera` (the engine
/// keeps compiled CUDA kernels there too, so the rule lives in the engine).
pub fn cache_dir() -> PathBuf {
    tessera_engine::cache_dir::cache_dir()
}

/// Path of a synthetic model in the cache, written first if it is not there yet.
pub fn synth_model(preset: Preset, ty: GgmlType, seed: u64) -> Result<PathBuf> {
    let dir = cache_dir().join("models");
    let path = dir.join(format!(
        "synth-{}-{}-seed{seed}.gguf",
        preset.name(),
        ty.name()
    ));
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating cache directory {}", dir.display()))?;
    eprintln!(
        "tessera: synthesizing the {} {} model once into {}",
        preset.name(),
        ty.name(),
        path.display()
    );
    let spec = SynthSpec {
        shape: preset.shape(),
        ty,
        seed,
        tie_output: false,
    };
    synth::write_model(&path, &spec).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

pub fn default_model() -> Result<PathBuf> {
    synth_model(DEFAULT_PRESET, DEFAULT_TYPE, DEFAULT_SEED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthesizes_once_then_reuses_the_cached_file() {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY (of the test): this is the only test in the crate that reads or writes
        // TESSERA_CACHE.
        unsafe { std::env::set_var("TESSERA_CACHE", dir.path()) };
        let p1 = synth_model(Preset::Tiny, GgmlType::Q8_0, 3).unwrap();
        assert!(p1.starts_with(dir.path()) && p1.is_file());
        let before = std::fs::metadata(&p1).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let p2 = synth_model(Preset::Tiny, GgmlType::Q8_0, 3).unwrap();
        assert_eq!(p1, p2);
        assert_eq!(std::fs::metadata(&p2).unwrap().modified().unwrap(), before);
        tessera_engine::Model::load(&p2).unwrap();
    }
}
