//! GPU runs under test: each CUDA bench point runs in a child process (after an illegal
//! address the CUDA context is unusable, and a crash must not take the run with it), and
//! whatever it leaves behind (an error line such as "GET_ROWS failed: an illegal memory access
//! was encountered", a signal, a timeout) becomes a classified `fault` row with the same classes
//! and patterns as `tessera bisect` (bisect::classify), not a second copy of them.

use std::process::Command;
use std::time::Duration;

use crate::bisect::classify::{self, Class, Classification, RunOutput};
use crate::results::{BenchRow, Fault, Status};

/// Longest a child bench point may run before it counts as hung.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(1800);

/// The fault record for a classification that is not ok. `class` is the classifier's name
/// ("cuda-illegal-address"); the message keeps the op ("GET_ROWS failed: ...").
pub fn fault_of(c: &Classification, stderr_tail: String) -> Fault {
    let mut message = c.message.clone();
    if let Some(op) = &c.op
        && !message.contains(op.as_str())
    {
        message = format!("{op}: {message}");
    }
    Fault {
        class: c.class.as_str().to_string(),
        signal: c.signal,
        exit_code: c.exit_code,
        message,
        stderr_tail,
    }
}

/// An in-process error text classified as a CUDA fault, or `None` when it is not one (an
/// ordinary error such as a full context).
pub fn cuda_fault_in(error_text: &str) -> Option<Fault> {
    let out = RunOutput {
        exit_code: Some(1),
        stderr: error_text.to_string(),
        ..RunOutput::default()
    };
    let c = classify::classify(&out, false);
    matches!(
        c.class,
        Class::CudaIllegalAddress
            | Class::CudaNoKernelImage
            | Class::CudaOutOfMemory
            | Class::CudaError
    )
    .then(|| fault_of(&c, error_text.to_string()))
}

/// Marks `row` as a CUDA fault when its error text is one.
pub fn classify_row_error(row: &mut BenchRow) {
    if let Some(text) = &row.error
        && let Some(f) = cuda_fault_in(text)
    {
        row.status = Status::Fault;
        row.fault = Some(f);
    }
}

/// Runs `args` (a `tessera bench ... -o jsonl --no-isolate` for one point) as a child of this
/// executable and returns its rows, or one row built from `template` describing the fault.
pub fn run_child(args: &[String], template: &BenchRow) -> Vec<BenchRow> {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            return vec![error_row(
                template,
                format!("cannot find the tessera executable: {e}"),
            )];
        }
    };
    let mut cmd = Command::new(exe);
    cmd.args(args);
    let r = match crate::sweep::child::run(&mut cmd, CHILD_TIMEOUT, &[]) {
        Ok(r) => r,
        Err(e) => {
            return vec![error_row(
                template,
                format!("cannot start the child process: {e}"),
            )];
        }
    };
    let parsed = crate::sweep::engine::parse_rows(&r.stdout);
    // The child exits 0 (all ok) or 1 (a row not ok, e.g. a CUDA fault it caught and
    // classified itself); its rows then say everything.
    if let (Ok(rows), Some(0 | 1), false) = (&parsed, r.exit_code, r.timed_out) {
        return rows.clone();
    }
    let out = RunOutput {
        exit_code: r.exit_code,
        signal: r.signal,
        timed_out: r.timed_out,
        stdout: String::from_utf8_lossy(&r.stdout).into_owned(),
        stderr: r.stderr_tail.clone(),
        seconds: r.elapsed.as_secs_f64(),
    };
    let c = classify::classify(&out, false);
    let mut row = template.clone();
    if c.is_ok() {
        // Exit 0 without rows.
        row.status = Status::Error;
        row.error = Some(match parsed {
            Err(e) => format!("unparsable child output: {e:#}"),
            Ok(_) => "the child printed rows but exited abnormally".into(),
        });
        return vec![row];
    }
    if c.class == Class::Exit && r.exit_code == Some(2) {
        // A usage or input error of the child: an error row with its last line.
        row.status = Status::Error;
        row.error = Some(c.message.clone());
        return vec![row];
    }
    row.status = if c.class == Class::Timeout {
        Status::Timeout
    } else {
        Status::Fault
    };
    row.fault = Some(fault_of(&c, r.stderr_tail));
    vec![row]
}

fn error_row(template: &BenchRow, msg: String) -> BenchRow {
    let mut row = template.clone();
    row.status = Status::Error;
    row.error = Some(msg);
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn illegal_address_names_the_op() {
        let f = cuda_fault_in(
            "GET_ROWS failed: an illegal memory access was encountered (CUDA_ERROR_ILLEGAL_ADDRESS, code 700)",
        )
        .expect("a CUDA fault");
        assert_eq!(f.class, "cuda-illegal-address");
        assert!(
            f.message
                .starts_with("GET_ROWS failed: an illegal memory access"),
            "{}",
            f.message
        );
    }

    #[test]
    fn other_cuda_errors_are_classified() {
        let f = cuda_fault_in("MUL_MAT failed: out of memory (CUDA_ERROR_OUT_OF_MEMORY, code 2)")
            .unwrap();
        assert_eq!(f.class, "cuda-out-of-memory");
        let f = cuda_fault_in(
            "LOAD failed: no kernel image is available for execution on the device (CUDA_ERROR_NO_BINARY_FOR_GPU, code 209)",
        )
        .unwrap();
        assert_eq!(f.class, "cuda-no-kernel-image");
        let f = cuda_fault_in(
            "ROPE failed: unspecified launch failure (CUDA_ERROR_LAUNCH_FAILED, code 719)",
        )
        .unwrap();
        assert_eq!(f.class, "cuda-error");
        assert!(f.message.contains("ROPE failed"));
    }

    #[test]
    fn ordinary_errors_are_not_faults() {
        assert!(cuda_fault_in("context full: 9 tokens do not fit a context of 8").is_none());
        let mut row = BenchRow {
            status: Status::Error,
            error: Some("context full".into()),
            ..BenchRow::default()
        };
        classify_row_error(&mut row);
        assert_eq!(row.status, Status::Error);
        row.error = Some("FLASH_ATTN_EXT failed: an illegal memory access was encountered".into());
        classify_row_error(&mut row);
        assert_eq!(row.status, Status::Fault);
        assert_eq!(row.fault.as_ref().unwrap().class, "cuda-illegal-address");
    }

    #[test]
    fn crashed_child_becomes_a_fault_row() {
        // A stand-in child: the test binary is not tessera, so run `sh` through the same
        // classification by hand, as run_child does after the child ends.
        let out = RunOutput {
            exit_code: None,
            signal: Some(6),
            stderr: "CUDA error: an illegal memory access was encountered\nGET_ROWS failed".into(),
            ..RunOutput::default()
        };
        let c = classify::classify(&out, false);
        let f = fault_of(&c, out.stderr.clone());
        assert_eq!(f.class, "cuda-illegal-address");
        assert!(f.message.contains("GET_ROWS"), "{}", f.message);
    }
}
