//! This binary's build as rows record it (`build_commit`, `build_dirty`, `build_number`),
//! from the environment that `harness/build.rs` sets at compile time.

/// This binary's build: `(commit, dirty, number)` = short git hash of HEAD ("unknown"
/// outside git), whether tracked files differed from HEAD at build time, and the
/// commit count of HEAD (0 when unknown). Set by `harness/build.rs`.
pub fn build_info() -> (&'static str, bool, i64) {
    let commit = option_env!("TESSERA_BUILD_COMMIT").unwrap_or("unknown");
    let dirty = option_env!("TESSERA_BUILD_DIRTY") == Some("true");
    let number = option_env!("TESSERA_BUILD_NUMBER")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (commit, dirty, number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_info_is_set_by_build_script() {
        let (commit, _dirty, number) = build_info();
        assert!(!commit.is_empty());
        assert!(number >= 0);
        assert_eq!(
            option_env!("TESSERA_BUILD_DIRTY").is_some(),
            option_env!("TESSERA_BUILD_COMMIT").is_some()
        );
    }
}
