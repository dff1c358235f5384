//! `tessera model synth`: deterministic random llama models.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use tessera_engine::synth::{self, Preset, SynthSpec};
use tessera_kernels::GgmlType;

#[derive(clap::Subcommand, Debug)]
pub enum ModelCmd {
    /// Write a synthetic llama GGUF with seeded Gaussian weights.
    Synth(SynthArgs),
}

#[derive(clap::Args, Debug)]
pub struct SynthArgs {
    /// Shape preset: tiny, 150m, 1b, 8b.
    #[arg(long = "preset", default_value = "tiny")]
    pub preset: String,
    /// Type of the 2-D weights: f32, f16, q8_0, q4_0 (norms stay f32).
    #[arg(long = "type", default_value = "q4_0")]
    pub ty: String,
    /// Random seed.
    #[arg(long = "seed", default_value_t = 1)]
    pub seed: u64,
    /// Tie the output head to the token embedding (omit output.weight).
    #[arg(long = "tied")]
    pub tied: bool,
    /// Output file.
    #[arg(short = 'o', long = "output", required = true)]
    pub output: PathBuf,
}

pub fn parse_type(s: &str) -> Result<GgmlType> {
    match s {
        "f32" => Ok(GgmlType::F32),
        "f16" => Ok(GgmlType::F16),
        "q8_0" => Ok(GgmlType::Q8_0),
        "q4_0" => Ok(GgmlType::Q4_0),
        _ => bail!("--type: unknown weight type '{s}'; valid: f32, f16, q8_0, q4_0"),
    }
}

pub fn run_cli(cmd: &ModelCmd) -> Result<bool> {
    match cmd {
        ModelCmd::Synth(a) => {
            let preset: Preset = a
                .preset
                .parse()
                .map_err(|e| anyhow::anyhow!("--preset: {e}"))?;
            let ty = parse_type(&a.ty)?;
            let spec = SynthSpec {
                shape: preset.shape(),
                ty,
                seed: a.seed,
                tie_output: a.tied,
            };
            let t0 = Instant::now();
            synth::write_model(&a.output, &spec)
                .with_context(|| format!("writing {}", a.output.display()))?;
            let size = std::fs::metadata(&a.output).map(|m| m.len()).unwrap_or(0);
            eprintln!(
                "wrote {} ({} {}, seed {}, {:.2} MiB) in {:.1} s",
                a.output.display(),
                preset.name(),
                ty.name(),
                a.seed,
                size as f64 / (1024.0 * 1024.0),
                t0.elapsed().as_secs_f64()
            );
            Ok(true)
        }
    }
}
