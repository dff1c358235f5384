//! Classifies one finished run (exit status, timeout flag, output) into ok or a kind of fault:
//! crash by signal, CUDA error recognised from the text, compute-sanitizer report, timeout,
//! non-zero exit, NaN/inf in the results.
//!
//! The CUDA text patterns follow what CUDA's runtime and llama.cpp's ggml-cuda print; the op
//! name comes from llama.cpp's "GET_ROWS failed: ..." form, the function from its
//! "in function NAME at FILE" line.

use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::results::{signal_name, signal_of_shell_exit};

/// How a run ended.
#[derive(Debug, Clone, Default)]
pub struct RunOutput {
    /// Exit code, when the process exited.
    pub exit_code: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
    /// Killed by tessera after the time limit.
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    /// Wall seconds.
    pub seconds: f64,
}

/// The kind of a run's ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    Ok,
    /// Killed by SIGSEGV, SIGBUS, SIGILL, SIGABRT, SIGFPE (or another signal).
    Signal,
    CudaIllegalAddress,
    CudaNoKernelImage,
    CudaOutOfMemory,
    CudaError,
    /// compute-sanitizer reported errors.
    Sanitizer,
    Timeout,
    /// Non-zero exit without a recognised cause.
    Exit,
    /// NaN or inf in the results (stdout).
    NonFinite,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Ok => "ok",
            Class::Signal => "signal",
            Class::CudaIllegalAddress => "cuda-illegal-address",
            Class::CudaNoKernelImage => "cuda-no-kernel-image",
            Class::CudaOutOfMemory => "cuda-out-of-memory",
            Class::CudaError => "cuda-error",
            Class::Sanitizer => "sanitizer",
            Class::Timeout => "timeout",
            Class::Exit => "exit",
            Class::NonFinite => "nan",
        }
    }
}

/// A classified run, as recorded in the bisect log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub class: Class,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The failing op, when the output names one ("GET_ROWS").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// The function the error was raised in, when printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// One-line summary ("GET_ROWS failed: an illegal memory access was encountered").
    #[serde(default)]
    pub message: String,
}

impl Classification {
    pub fn is_ok(&self) -> bool {
        self.class == Class::Ok
    }

    /// Short label for tables and `--fault` matching: class, signal name, op and message
    /// ("signal SIGSEGV: killed by SIGSEGV", "exit code 3: bad thing", "exit code 1").
    pub fn label(&self) -> String {
        let mut parts = vec![self.class.as_str().to_string()];
        if let Some(sig) = self.signal {
            parts.push(signal_name(sig));
        }
        if let Some(code) = self.exit_code
            && self.class == Class::Exit
        {
            parts.push(format!("code {code}"));
        }
        if let Some(op) = &self.op {
            parts.push(format!("op {op}"));
        }
        let mut s = parts.join(" ");
        if !self.message.is_empty() {
            s.push_str(": ");
            s.push_str(&self.message);
        }
        s
    }
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    // The patterns are constants of this file; a typo fails every test, not a user.
    cell.get_or_init(|| Regex::new(pattern).expect("constant regex"))
}

/// Classifies a run. `check_results` enables the NaN/inf scan of stdout.
pub fn classify(out: &RunOutput, check_results: bool) -> Classification {
    let mut c = Classification {
        class: Class::Ok,
        signal: out.signal,
        exit_code: out.exit_code,
        op: None,
        function: None,
        message: String::new(),
    };
    if out.timed_out {
        c.class = Class::Timeout;
        c.signal = None;
        c.message = format!("killed after {:.0} s", out.seconds);
        return c;
    }
    let text = format!("{}\n{}", out.stderr, out.stdout);
    if let Some(cuda) = cuda_fault(&text) {
        c.class = cuda.0;
        c.message = cuda.1;
        c.op = cuda.2;
        c.function = cuda.3;
        return c;
    }
    if let Some(msg) = sanitizer_fault(&text) {
        c.class = Class::Sanitizer;
        c.message = msg.0;
        c.function = msg.1;
        return c;
    }
    // A shell reports its command's death by signal N as exit 128+N: the same crash.
    let shell_signal = out.exit_code.and_then(signal_of_shell_exit);
    if let Some(sig) = out.signal.or(shell_signal) {
        c.class = Class::Signal;
        c.signal = Some(sig);
        c.message = format!("killed by {}", signal_name(sig));
        return c;
    }
    match out.exit_code {
        Some(0) | None => {}
        Some(_) => {
            // The code is in `exit_code` (and the label); the message is what the run said.
            c.class = Class::Exit;
            c.message = last_line(&out.stderr).unwrap_or_default().to_string();
            return c;
        }
    }
    if check_results && let Some(tok) = non_finite(&out.stdout) {
        c.class = Class::NonFinite;
        c.message = format!("non-finite value '{tok}' in the results");
    }
    c
}

fn last_line(s: &str) -> Option<&str> {
    s.lines().map(str::trim).rfind(|l| !l.is_empty())
}

/// (class, message, op, function) of the first CUDA error in the text.
fn cuda_fault(text: &str) -> Option<(Class, String, Option<String>, Option<String>)> {
    static ILLEGAL: OnceLock<Regex> = OnceLock::new();
    static NO_IMAGE: OnceLock<Regex> = OnceLock::new();
    static OOM: OnceLock<Regex> = OnceLock::new();
    static GENERIC: OnceLock<Regex> = OnceLock::new();
    static OP: OnceLock<Regex> = OnceLock::new();
    static FUNC: OnceLock<Regex> = OnceLock::new();
    let kinds = [
        (
            re(
                &ILLEGAL,
                r"(?i)illegal memory access|CUDA_ERROR_ILLEGAL_ADDRESS|illegal address",
            ),
            Class::CudaIllegalAddress,
        ),
        (
            re(
                &NO_IMAGE,
                r"(?i)no kernel image is available|CUDA_ERROR_NO_BINARY_FOR_GPU",
            ),
            Class::CudaNoKernelImage,
        ),
        (
            re(
                &OOM,
                r"(?i)(cuda\w*[^\n]*out of memory|out of memory[^\n]*cuda|CUDA_ERROR_OUT_OF_MEMORY|cudaErrorMemoryAllocation)",
            ),
            Class::CudaOutOfMemory,
        ),
        (
            re(
                &GENERIC,
                r"(?i)\bCUDA error\b|\bCUDA_ERROR_\w+|\bcudaError\w+",
            ),
            Class::CudaError,
        ),
    ];
    let (class, m) = kinds
        .iter()
        .find_map(|(r, class)| r.find(text).map(|m| (*class, m)))?;
    // The message is the whole line the match is on.
    let start = text[..m.start()].rfind('\n').map_or(0, |i| i + 1);
    let end = text[m.end()..]
        .find('\n')
        .map_or(text.len(), |i| m.end() + i);
    let line = text[start..end].trim().to_string();
    let op = re(&OP, r"\b([A-Z][A-Z0-9_]*[A-Z0-9]) failed\b")
        .captures(text)
        .map(|c| c[1].to_string());
    let function = re(&FUNC, r"in function ([A-Za-z_][A-Za-z0-9_:]*)")
        .captures(text)
        .map(|c| c[1].to_string());
    Some((class, line, op, function))
}

/// (message, kernel) when compute-sanitizer reported errors.
fn sanitizer_fault(text: &str) -> Option<(String, Option<String>)> {
    static SUMMARY: OnceLock<Regex> = OnceLock::new();
    static INVALID: OnceLock<Regex> = OnceLock::new();
    static KERNEL: OnceLock<Regex> = OnceLock::new();
    let errors: u64 = re(&SUMMARY, r"ERROR SUMMARY: (\d+) error")
        .captures(text)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or(0);
    if errors == 0 {
        return None;
    }
    let first = re(&INVALID, r"=+ (Invalid [^\n]*|[A-Z][^\n]*error[^\n]*)")
        .captures(text)
        .map(|c| c[1].trim().to_string())
        .unwrap_or_else(|| format!("{errors} errors"));
    let kernel = re(
        &KERNEL,
        r"=+\s+at (?:0x[0-9a-f]+ in )?([A-Za-z_][A-Za-z0-9_:<>]*)",
    )
    .captures(text)
    .map(|c| c[1].to_string());
    Some((format!("compute-sanitizer: {first}"), kernel))
}

/// The first NaN or infinity written as a number in the text ("nan", "-nan", "inf", "NaN").
pub fn non_finite(text: &str) -> Option<String> {
    static NF: OnceLock<Regex> = OnceLock::new();
    re(
        &NF,
        r"(?i)(?:^|[^A-Za-z0-9_.])([-+]?(?:nan|inf|infinity))(?:$|[^A-Za-z0-9_])",
    )
    .captures(text)
    .map(|c| c[1].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(code: Option<i32>, sig: Option<i32>, stdout: &str, stderr: &str) -> RunOutput {
        RunOutput {
            exit_code: code,
            signal: sig,
            timed_out: false,
            stdout: stdout.into(),
            stderr: stderr.into(),
            seconds: 1.0,
        }
    }

    #[test]
    fn ok_and_plain_failures() {
        assert!(classify(&out(Some(0), None, "42\n", ""), true).is_ok());
        let c = classify(&out(Some(3), None, "", "bad thing\n"), true);
        assert_eq!(c.class, Class::Exit);
        assert_eq!(c.message, "bad thing");
        assert_eq!(c.label(), "exit code 3: bad thing");
        // Without stderr the code is said once, not three times ("exit exit 1: exit code 1").
        let c = classify(&out(Some(1), None, "", ""), true);
        assert_eq!(c.label(), "exit code 1");
    }

    #[test]
    fn signals_direct_and_through_a_shell() {
        for sig in [11, 7, 4, 6, 8, 2, 15, 64] {
            let c = classify(&out(None, Some(sig), "", ""), true);
            assert_eq!((c.class, c.signal), (Class::Signal, Some(sig)));
            let c = classify(&out(Some(128 + sig), None, "", ""), true);
            assert_eq!((c.class, c.signal), (Class::Signal, Some(sig)));
        }
        assert!(
            classify(&out(None, Some(11), "", ""), true)
                .label()
                .contains("SIGSEGV")
        );
        // Every valid signal through a shell maps, by the mapping sweep rows use too;
        // 128 and 193 are plain exits.
        assert!(
            classify(&out(Some(130), None, "", ""), true)
                .label()
                .starts_with("signal SIGINT")
        );
        for code in [128, 193, 255] {
            assert_eq!(
                classify(&out(Some(code), None, "", ""), true).class,
                Class::Exit
            );
        }
    }

    #[test]
    fn cuda_faults_with_op_and_function() {
        let stderr = "ggml_cuda_compute_forward: GET_ROWS failed\n\
            CUDA error: an illegal memory access was encountered\n  \
            current device: 0, in function ggml_cuda_compute_forward at ggml-cuda.cu:2313\n";
        let c = classify(&out(None, Some(6), "", stderr), true);
        assert_eq!(c.class, Class::CudaIllegalAddress);
        assert_eq!(c.op.as_deref(), Some("GET_ROWS"));
        assert_eq!(c.function.as_deref(), Some("ggml_cuda_compute_forward"));
        assert_eq!(c.signal, Some(6));
        let c = classify(
            &out(
                Some(1),
                None,
                "",
                "GET_ROWS failed: an illegal memory access was encountered\n",
            ),
            true,
        );
        assert_eq!(c.class, Class::CudaIllegalAddress);
        assert_eq!(c.op.as_deref(), Some("GET_ROWS"));
        assert_eq!(
            c.message,
            "GET_ROWS failed: an illegal memory access was encountered"
        );
        let c = classify(
            &out(
                Some(1),
                None,
                "",
                "CUDA error: no kernel image is available for execution on the device\n",
            ),
            true,
        );
        assert_eq!(c.class, Class::CudaNoKernelImage);
        let c = classify(&out(Some(1), None, "", "CUDA error: out of memory\n"), true);
        assert_eq!(c.class, Class::CudaOutOfMemory);
        let c = classify(
            &out(Some(1), None, "", "CUDA error: misaligned address\n"),
            true,
        );
        assert_eq!(c.class, Class::CudaError);
        // Plain host out-of-memory is not a CUDA fault.
        let c = classify(&out(Some(1), None, "", "malloc: out of memory\n"), true);
        assert_eq!(c.class, Class::Exit);
    }

    #[test]
    fn sanitizer_reports() {
        let text = "========= Invalid __global__ read of size 4 bytes\n\
            =========     at k_get_rows_float+0x2a0\n\
            ========= ERROR SUMMARY: 1 error\n";
        let c = classify(&out(Some(0), None, "", text), true);
        assert_eq!(c.class, Class::Sanitizer);
        assert_eq!(c.function.as_deref(), Some("k_get_rows_float"));
        assert!(c.message.contains("Invalid __global__ read"));
        let clean = "========= ERROR SUMMARY: 0 errors\n";
        assert!(classify(&out(Some(0), None, "", clean), true).is_ok());
    }

    #[test]
    fn timeouts_win() {
        let mut o = out(None, Some(9), "", "");
        o.timed_out = true;
        assert_eq!(classify(&o, true).class, Class::Timeout);
    }

    #[test]
    fn non_finite_values_in_results() {
        assert_eq!(non_finite("avg_ts: nan\n").as_deref(), Some("nan"));
        assert_eq!(non_finite("[1.0, -inf, 2]").as_deref(), Some("-inf"));
        assert_eq!(non_finite("{\"x\": NaN}").as_deref(), Some("NaN"));
        assert_eq!(non_finite("info: inference of nano models"), None);
        assert_eq!(non_finite("1e-5 0.5"), None);
        let c = classify(&out(Some(0), None, "-nan\n", ""), true);
        assert_eq!(c.class, Class::NonFinite);
        assert!(classify(&out(Some(0), None, "-nan\n", ""), false).is_ok());
    }
}
