//! Argument helpers shared by commands: comma lists and llama-bench-style values.

use std::str::FromStr;

use anyhow::{Result, bail};

/// Parses `"1,2,3"` into values, naming the bad element and the flag on error.
pub fn parse_list<T: FromStr>(flag: &str, s: &str) -> Result<Vec<T>>
where
    T::Err: std::fmt::Display,
{
    s.split(',')
        .map(|p| {
            let p = p.trim();
            p.parse::<T>()
                .map_err(|e| anyhow::anyhow!("{flag}: invalid value '{p}' in '{s}': {e}"))
        })
        .collect()
}

/// All values of a repeatable comma-list flag, or `default` when it was not given.
pub fn list_or<T: FromStr + Clone>(flag: &str, given: &[String], default: &[T]) -> Result<Vec<T>>
where
    T::Err: std::fmt::Display,
{
    if given.is_empty() {
        return Ok(default.to_vec());
    }
    let mut out = Vec::new();
    for g in given {
        out.extend(parse_list(flag, g)?);
    }
    Ok(out)
}

/// Token ids from `"1,2,3"`: non-negative integers.
pub fn parse_tokens(s: &str) -> Result<Vec<u32>> {
    let ids: Vec<i64> = parse_list("--prompt-tokens", s)?;
    ids.iter()
        .map(|&t| {
            u32::try_from(t)
                .map_err(|_| anyhow::anyhow!("--prompt-tokens: token id {t} is invalid: ids are integers from 0 to the vocabulary size - 1"))
        })
        .collect()
}

/// A positive thread count list entry.
pub fn positive(flag: &str, v: usize) -> Result<usize> {
    if v == 0 {
        bail!("{flag}: 0 is not valid; give a positive number");
    }
    Ok(v)
}

/// Physical cores by default, as llama-bench does; `available_parallelism` counts logical
/// CPUs, so halve it when /sys says SMT is active.
pub fn default_threads() -> usize {
    let logical = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let smt = std::fs::read_to_string("/sys/devices/system/cpu/smt/active")
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    if smt { (logical / 2).max(1) } else { logical }
}

/// llama-bench spells some long flags with one dash (`-ctk`, `-ub`, `-pg`), which clap reads
/// as clusters of short flags. They are rewritten to their `--long` names before parsing;
/// only exact matches (or `-ctk=VALUE`) are touched, so values are never rewritten.
pub fn llama_bench_aliases(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    const ALIASES: [(&str, &str); 5] = [
        ("-ctk", "--cache-type-k"),
        ("-ctv", "--cache-type-v"),
        ("-ub", "--ubatch-size"),
        ("-pg", "--pg"),
        ("-ngl", "--n-gpu-layers"),
    ];
    let mut prev_takes_value = false;
    args.into_iter()
        .map(|a| {
            let rewritten = match a.to_str() {
                Some(s) if !prev_takes_value => ALIASES.iter().find_map(|(short, long)| {
                    if s == *short {
                        Some(std::ffi::OsString::from(*long))
                    } else {
                        s.strip_prefix(short)
                            .and_then(|rest| rest.strip_prefix('='))
                            .map(|v| std::ffi::OsString::from(format!("{long}={v}")))
                    }
                }),
                _ => None,
            };
            // A value such as `--prompt-tokens -ub` stays as given: only flag positions change.
            prev_takes_value = rewritten
                .as_ref()
                .is_some_and(|r| !r.to_string_lossy().contains('='));
            rewritten.unwrap_or(a)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(v: &[&str]) -> Vec<String> {
        llama_bench_aliases(v.iter().map(std::ffi::OsString::from))
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn rewrites_llama_bench_single_dash_flags() {
        assert_eq!(
            run(&["t", "bench", "-ctk", "f16", "-ub=256", "-pg", "512,128"]),
            [
                "t",
                "bench",
                "--cache-type-k",
                "f16",
                "--ubatch-size=256",
                "--pg",
                "512,128"
            ]
        );
    }

    #[test]
    fn leaves_values_and_other_flags_alone() {
        assert_eq!(
            run(&["t", "-ctk", "-ub", "-p", "512"]),
            ["t", "--cache-type-k", "-ub", "-p", "512"]
        );
    }

    #[test]
    fn parse_list_names_the_bad_element() {
        let e = parse_list::<usize>("-p", "1,x,3").unwrap_err().to_string();
        assert!(e.contains("'x'") && e.contains("-p"), "{e}");
    }
}
