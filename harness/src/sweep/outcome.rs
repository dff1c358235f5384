//! What one unit's child process left behind (its exit, its signal, its stdout) as result
//! rows: the engine's own rows stamped with the unit's identity, or one row saying why
//! there are none (`fault`, `timeout`, `error`).

use super::plan::Unit;
use super::{Config, child, engine};
use crate::probe::RowPeaks;
use crate::results::{BenchRow, Fault, Status};

/// The row describing a point before anything is known about its outcome: the grid's
/// starting row ([`crate::grid::row`]) plus what identifies it in this run.
pub(super) fn template_row(u: &Unit, cfg: &Config, fingerprint: &str) -> BenchRow {
    BenchRow {
        run_id: cfg.run_id.clone(),
        point_key: u.key.clone(),
        repeat_index: u.repeat as u32,
        fingerprint: fingerprint.to_string(),
        ..crate::grid::row(&u.point, &crate::probe::cpu_info())
    }
}

/// Turns a child's outcome into rows.
pub(super) fn rows_for(
    u: &Unit,
    cfg: &Config,
    fingerprint: &str,
    peaks: &RowPeaks,
    outcome: std::io::Result<child::ChildResult>,
) -> Vec<BenchRow> {
    let base = template_row(u, cfg, fingerprint);
    let r = match outcome {
        Ok(r) => r,
        Err(e) => {
            return vec![BenchRow {
                status: Status::Error,
                error: Some(format!("cannot start the engine: {e}")),
                ..base
            }];
        }
    };
    if r.timed_out {
        return vec![BenchRow {
            status: Status::Timeout,
            fault: Some(Fault {
                class: "timeout".into(),
                signal: r.signal,
                exit_code: None,
                message: format!("killed after the {} s time limit", cfg.plan.timeout),
                stderr_tail: r.stderr_tail,
            }),
            ..base
        }];
    }
    // A signal, direct or as a shell reports it (`cmd=` runs under `sh -c`, which exits
    // 128+N when its command was killed by signal N): a crash, even if rows came first.
    let code = r.exit_code.unwrap_or(-1);
    let shell_signal = r.exit_code.and_then(crate::results::signal_of_shell_exit);
    if let Some(sig) = r.signal.or(shell_signal) {
        let name = crate::results::signal_name(sig);
        return vec![BenchRow {
            status: Status::Fault,
            fault: Some(Fault {
                class: "signal".into(),
                signal: Some(sig),
                exit_code: r.exit_code,
                message: match r.exit_code {
                    Some(code) => format!("killed by {name} (shell exit {code})"),
                    None => format!("killed by {name}"),
                },
                stderr_tail: r.stderr_tail,
            }),
            ..base
        }];
    }
    let last_line = r.stderr_tail.lines().last().unwrap_or("").to_string();
    let parsed = engine::parse_rows(&r.stdout);
    // The built-in engine exits 1 when a row it printed is not ok and 2 on a usage or input
    // error; its rows carry their own status.
    let builtin = u.point.is_builtin();
    match parsed {
        Ok(rows) if code == 0 || (builtin && code == 1) => rows
            .into_iter()
            .map(|mut row| {
                row.run_id = base.run_id.clone();
                row.point_key = base.point_key.clone();
                row.repeat_index = base.repeat_index;
                row.fingerprint = base.fingerprint.clone();
                if !builtin {
                    row.engine = base.engine.clone();
                    row.numa = base.numa.clone();
                    row.pin = base.pin.clone();
                    if let Some(c) = &r.counters {
                        row.counters = c.clone();
                        row.counters_scope = crate::counters::Scope::Child.name().into();
                    }
                }
                row.derived = crate::counters::derive(&row, &peaks.for_row(&row));
                row
            })
            .collect(),
        _ if builtin && code == 2 => vec![BenchRow {
            status: Status::Error,
            error: Some(if last_line.is_empty() {
                "tessera bench exited with code 2".into()
            } else {
                last_line
            }),
            ..base
        }],
        _ if code != 0 => vec![BenchRow {
            status: Status::Fault,
            fault: Some(Fault {
                class: "exit".into(),
                signal: None,
                exit_code: Some(code),
                message: format!(
                    "exited with code {code}{}",
                    if last_line.is_empty() {
                        String::new()
                    } else {
                        format!(": {last_line}")
                    }
                ),
                stderr_tail: r.stderr_tail,
            }),
            ..base
        }],
        Err(e) => vec![BenchRow {
            status: Status::Error,
            error: Some(format!("unparsable engine output: {e:#}")),
            fault: (!r.stderr_tail.is_empty()).then(|| Fault {
                class: "garbage".into(),
                signal: None,
                exit_code: Some(code),
                message: "the engine exited 0 but printed no result rows".into(),
                stderr_tail: r.stderr_tail,
            }),
            ..base
        }],
        Ok(_) => unreachable!("code 0 is handled by the first arm"),
    }
}
