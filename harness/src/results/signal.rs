//! Signal names and numbers as rows record them (`Fault::signal` and its label), and the one
//! mapping of a shell's exit code to a signal that every classifier uses (sweep rows, bisect
//! runs). Kept with the row schema rather than in `bisect/exec` or `sweep/child`: both of
//! those classify, and the names are the row's.

/// Linux signal number → name ("SIGSEGV", from the `nix` crate's table; real-time
/// signals "SIGRTMIN" and "SIGRTMIN+N", which nix does not name); other numbers give
/// "signal N" (32 and 33, which glibc keeps for itself, among them).
pub fn signal_name(sig: i32) -> String {
    match sig {
        34 => "SIGRTMIN".to_string(),
        35..=MAX_SIGNAL => format!("SIGRTMIN+{}", sig - 34),
        _ => nix::sys::signal::Signal::try_from(sig)
            .map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_string()),
    }
}

/// The highest Linux signal number (SIGRTMAX).
pub const MAX_SIGNAL: i32 = 64;

/// The signal a shell reports as exit code 128+N: `sh -c CMD` whose command was killed by
/// signal N exits 128+N, and so do most wrappers. `None` outside 129..=192. Every
/// classifier (sweep rows, bisect runs) maps exit codes through this one function.
pub fn signal_of_shell_exit(code: i32) -> Option<i32> {
    let sig = code.checked_sub(128)?;
    (1..=MAX_SIGNAL).contains(&sig).then_some(sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_exit_codes_map_to_every_valid_signal() {
        assert_eq!(signal_of_shell_exit(139), Some(11));
        assert_eq!(signal_of_shell_exit(130), Some(2));
        assert_eq!(signal_of_shell_exit(129), Some(1));
        assert_eq!(signal_of_shell_exit(192), Some(64));
        for code in [-1, 0, 1, 2, 127, 128, 193, 255, i32::MIN, i32::MAX] {
            assert_eq!(signal_of_shell_exit(code), None, "{code}");
        }
        assert_eq!(signal_name(11), "SIGSEGV");
        assert_eq!(signal_name(34), "SIGRTMIN");
        assert_eq!(signal_name(64), "SIGRTMIN+30");
        assert_eq!(signal_name(65), "signal 65");
        // Every standard Linux signal has its name; glibc's own 32 and 33 do not.
        for sig in 1..=31 {
            assert!(signal_name(sig).starts_with("SIG"), "{sig}");
        }
        assert_eq!(signal_name(16), "SIGSTKFLT");
        assert_eq!(signal_name(30), "SIGPWR");
        assert_eq!(signal_name(32), "signal 32");
    }
}
