//! NUMA memory policy for the process: `none|local|interleave|bind:N`, applied with the
//! `set_mempolicy` system call before the model is loaded and buffers are allocated, so
//! every page touched afterwards follows it.
//!
//! Why the process policy and not `mbind` per buffer: the model and the context allocate
//! through the ordinary allocator and a file mapping; a process policy set first covers
//! all of them without threading a policy through every allocation. A file page that is
//! already in the page cache stays where it is (the kernel does not migrate it); run with
//! a cold cache, or with anonymous copies, when that matters.

use std::fmt;
use std::str::FromStr;

/// Linux `MPOL_*` modes (include/uapi/linux/mempolicy.h).
const MPOL_DEFAULT: i32 = 0;
const MPOL_BIND: i32 = 2;
const MPOL_INTERLEAVE: i32 = 3;
const MPOL_LOCAL: i32 = 4;

/// A memory placement request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum NumaPolicy {
    /// Leave the kernel's default (first touch).
    #[default]
    None,
    /// Allocate on the node of the CPU that touches the page (explicit `MPOL_LOCAL`).
    Local,
    /// Spread pages round-robin over every online node.
    Interleave,
    /// Allocate only on node N.
    Bind(u32),
}

impl FromStr for NumaPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "none" | "" => Ok(NumaPolicy::None),
            "local" => Ok(NumaPolicy::Local),
            "interleave" => Ok(NumaPolicy::Interleave),
            other => match other.strip_prefix("bind:").map(|n| n.parse::<u32>()) {
                Some(Ok(n)) => Ok(NumaPolicy::Bind(n)),
                _ => Err(format!(
                    "'{other}' is not a NUMA policy; valid: none, local, interleave, bind:N"
                )),
            },
        }
    }
}

impl fmt::Display for NumaPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NumaPolicy::None => f.write_str("none"),
            NumaPolicy::Local => f.write_str("local"),
            NumaPolicy::Interleave => f.write_str("interleave"),
            NumaPolicy::Bind(n) => write!(f, "bind:{n}"),
        }
    }
}

/// Parses a kernel CPU/node list such as "0-3,8,10-11".
pub fn parse_id_list(s: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if b < a || b - a > 1 << 16 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().ok()?),
        }
    }
    Some(out)
}

/// Formats ids as the kernel does: "0-3,8".
pub fn format_id_list(ids: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            ids[i].to_string()
        } else {
            format!("{}-{}", ids[i], ids[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// Online NUMA nodes from /sys; a machine without that file (no NUMA support) has node 0.
pub fn online_nodes() -> Vec<usize> {
    std::fs::read_to_string("/sys/devices/system/node/online")
        .ok()
        .and_then(|s| parse_id_list(&s))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec![0])
}

/// Checks that the policy names nodes that exist; the error lists the valid ones.
pub fn validate(policy: &NumaPolicy, nodes: &[usize]) -> Result<(), String> {
    if let NumaPolicy::Bind(n) = policy
        && !nodes.contains(&(*n as usize))
    {
        return Err(format!(
            "--numa: node {n} does not exist; valid nodes: {}",
            format_id_list(nodes)
        ));
    }
    Ok(())
}

/// Sets the calling thread's memory policy (threads spawned later inherit it) and returns
/// the effective placement as recorded in result rows, e.g. "interleave:0-1".
pub fn apply(policy: &NumaPolicy) -> Result<String, String> {
    let nodes = online_nodes();
    validate(policy, &nodes)?;
    let (mode, mask_nodes): (i32, Vec<usize>) = match policy {
        NumaPolicy::None => return Ok("none".to_string()),
        NumaPolicy::Local => (MPOL_LOCAL, Vec::new()),
        NumaPolicy::Interleave => (MPOL_INTERLEAVE, nodes.clone()),
        NumaPolicy::Bind(n) => (MPOL_BIND, vec![*n as usize]),
    };
    set_mempolicy(mode, &mask_nodes)?;
    Ok(match policy {
        NumaPolicy::Interleave => format!("interleave:{}", format_id_list(&nodes)),
        other => other.to_string(),
    })
}

/// Restores the default policy (used by tests and after a measurement).
pub fn reset() -> Result<(), String> {
    set_mempolicy(MPOL_DEFAULT, &[])
}

fn set_mempolicy(mode: i32, nodes: &[usize]) -> Result<(), String> {
    let max = nodes.iter().copied().max().map_or(0, |m| m + 1);
    let words = max.div_ceil(64).max(1);
    let mut mask = vec![0u64; words];
    for &n in nodes {
        mask[n / 64] |= 1 << (n % 64);
    }
    let (ptr, maxnode) = if nodes.is_empty() {
        (std::ptr::null::<u64>(), 0usize)
    } else {
        // maxnode counts bits; the kernel ignores the last one on some versions, so add one.
        (mask.as_ptr(), words * 64 + 1)
    };
    // SAFETY: `mask` outlives the call and holds `maxnode - 1` bits; a null mask with
    // maxnode 0 is the documented form for MPOL_DEFAULT and MPOL_LOCAL.
    let rc = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    if rc != 0 {
        return Err(format!(
            "set_mempolicy failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_policies() {
        for s in ["none", "local", "interleave", "bind:0", "bind:3"] {
            assert_eq!(s.parse::<NumaPolicy>().unwrap().to_string(), s);
        }
        for bad in ["bind:", "bind:x", "spread", "bind:-1"] {
            let e = bad.parse::<NumaPolicy>().unwrap_err();
            assert!(e.contains("valid: none, local, interleave, bind:N"), "{e}");
        }
    }

    #[test]
    fn id_lists_round_trip() {
        assert_eq!(
            parse_id_list("0-3,8,10-11\n").unwrap(),
            [0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(format_id_list(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert!(parse_id_list("3-1").is_none());
        assert!(parse_id_list("a").is_none());
    }

    #[test]
    fn a_missing_node_is_refused_with_the_valid_list() {
        let e = validate(&NumaPolicy::Bind(7), &[0, 1]).unwrap_err();
        assert_eq!(e, "--numa: node 7 does not exist; valid nodes: 0-1");
        assert!(validate(&NumaPolicy::Bind(1), &[0, 1]).is_ok());
    }

    #[test]
    fn applying_on_this_machine_works_and_resets() {
        // Node 0 exists everywhere Linux runs; the policies must be accepted by the kernel.
        for p in [
            NumaPolicy::Local,
            NumaPolicy::Interleave,
            NumaPolicy::Bind(0),
        ] {
            let placed = apply(&p).unwrap();
            assert!(placed.starts_with(p.to_string().split(':').next().unwrap()));
            let v = vec![1u8; 1 << 20];
            assert_eq!(v.iter().map(|&x| x as usize).sum::<usize>(), 1 << 20);
            reset().unwrap();
        }
    }
}
