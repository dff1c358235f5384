//! `tessera probe`: prints the machine fingerprint and measured bandwidth and peak rates,
//! as a table or JSON.

use anyhow::{Result, bail};

use crate::probe::{self, MeasureOpts};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output: table or json.
    #[arg(short = 'o', long = "output", default_value = "table")]
    pub output: String,
    /// Skip the measurements (bandwidth, peak rates): the description only.
    #[arg(long = "no-measure")]
    pub no_measure: bool,
    /// Bytes per bandwidth array in MiB; default 4 × the last-level cache, at least 64.
    #[arg(long = "array-mib")]
    pub array_mib: Option<u64>,
    /// Highest thread count for the measurements; default: all logical CPUs.
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
}

pub fn run_cli(a: &Args) -> Result<bool> {
    let json = match a.output.as_str() {
        "json" => true,
        "table" | "md" => false,
        other => bail!("-o: '{other}' is not valid; give table or json"),
    };
    if a.threads == Some(0) {
        bail!("-t: 0 is not valid; give a positive number");
    }
    if a.array_mib == Some(0) {
        bail!("--array-mib: 0 is not valid; give a positive number of MiB");
    }
    let opts = if a.no_measure {
        None
    } else {
        let d = probe::describe();
        let mut o = MeasureOpts::default_for(&d);
        if let Some(m) = a.array_mib {
            o.array_bytes = m << 20;
        }
        if let Some(t) = a.threads {
            o.max_threads = t;
        }
        Some(o)
    };
    let p = probe::probe(opts);
    if json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        print!("{}", probe::table(&p));
    }
    Ok(true)
}
