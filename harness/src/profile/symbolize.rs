//! Addresses to names: each sampled address is placed in the executable mapping its
//! process had (from MMAP2 records, or /proc/self/maps for this process), turned into a
//! file offset, and symbolized per file with blazesym from the ELF symbol tables. This
//! works after the process has exited, as long as its files are still on disk.
//!
//! Mappings are kept per process and per exec: a process that execs (a shell running the
//! engine) starts a new address space, and a forked process starts with its parent's.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use blazesym::symbolize::source::{Elf, Source};
use blazesym::symbolize::{Input, Symbolizer};

use super::sampler::{MapRec, Raw};

/// Where a sampled address is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Loc {
    /// In a file, at this offset.
    File { file: usize, offset: u64 },
    /// In a kernel-provided mapping such as `[vdso]`.
    Special(String),
    /// Anonymous executable memory (JIT code) or no mapping at all.
    Unknown,
}

/// A named frame: the symbol (or a placeholder) and the file name of its object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frame {
    pub symbol: String,
    pub dso: String,
}

/// The address spaces of the sampled processes.
pub struct Spaces<'a> {
    /// (pid, exec generation) → mappings, oldest first.
    maps: HashMap<(u32, usize), Vec<&'a MapRec>>,
    /// pid → exec times, ascending.
    execs: HashMap<u32, Vec<u64>>,
    /// pid → (parent pid, fork time).
    forks: HashMap<u32, (u32, u64)>,
    /// Distinct files (a mapping of each), indexed by `Loc::File::file`.
    pub files: Vec<&'a MapRec>,
    file_ids: HashMap<String, usize>,
}

impl<'a> Spaces<'a> {
    pub fn new(raw: &'a Raw, extra: &'a [MapRec]) -> Spaces<'a> {
        let mut execs: HashMap<u32, Vec<u64>> = HashMap::new();
        for &(pid, t) in &raw.execs {
            execs.entry(pid).or_default().push(t);
        }
        for v in execs.values_mut() {
            v.sort_unstable();
        }
        let mut s = Spaces {
            maps: HashMap::new(),
            forks: raw.forks.iter().map(|&(p, pp, t)| (p, (pp, t))).collect(),
            execs,
            files: Vec::new(),
            file_ids: HashMap::new(),
        };
        let mut all: Vec<&MapRec> = raw.maps.iter().chain(extra).collect();
        all.sort_by_key(|m| m.time);
        for m in all {
            let g = s.generation(m.pid, m.time);
            s.maps.entry((m.pid, g)).or_default().push(m);
        }
        s
    }

    /// How many execs `pid` had done by `time`.
    pub fn generation(&self, pid: u32, time: u64) -> usize {
        self.execs
            .get(&pid)
            .map_or(0, |v| v.partition_point(|&t| t <= time))
    }

    /// The mapping of `addr` in `pid`'s address space of generation `g`: the newest that
    /// covers it, else (for a forked process that has not exec'd) its parent's at the fork.
    fn mapping(&self, pid: u32, g: usize, addr: u64) -> Option<&'a MapRec> {
        let (mut pid, mut g) = (pid, g);
        // Bounded: a fork chain deeper than this is not a real process tree.
        for _ in 0..32 {
            if let Some(v) = self.maps.get(&(pid, g))
                && let Some(m) = v
                    .iter()
                    .rev()
                    .find(|m| addr >= m.start && addr - m.start < m.len)
            {
                return Some(m);
            }
            if g != 0 {
                return None;
            }
            let &(parent, t) = self.forks.get(&pid)?;
            g = self.generation(parent, t);
            pid = parent;
        }
        None
    }

    /// Where `addr` of `pid` (generation `g`) is.
    pub fn locate(&mut self, pid: u32, g: usize, addr: u64) -> Loc {
        let Some(m) = self.mapping(pid, g, addr) else {
            return Loc::Unknown;
        };
        if m.path.is_empty() || m.path.starts_with("//anon") {
            return Loc::Unknown;
        }
        if m.path.starts_with('[') {
            return Loc::Special(m.path.clone());
        }
        let next = self.files.len();
        let file = *self.file_ids.entry(m.path.clone()).or_insert(next);
        if file == next {
            self.files.push(m);
        }
        Loc::File {
            file,
            offset: addr - m.start + m.pgoff,
        }
    }
}

/// The file name of a path, for `dso`.
pub fn file_name(path: &str) -> String {
    Path::new(path.trim_end_matches(" (deleted)"))
        .file_name()
        .map_or_else(|| path.to_string(), |f| f.to_string_lossy().into_owned())
}

/// The path to open for a mapped file: a deleted file (a rebuilt binary) of a live process
/// through /proc's `map_files`, else the path as it was mapped.
fn open_path(m: &MapRec, live: Option<u32>) -> PathBuf {
    let path = m.path.as_str();
    if let Some(stripped) = path.strip_suffix(" (deleted)") {
        if let Some(pid) = live {
            let p = PathBuf::from(format!(
                "/proc/{pid}/map_files/{:x}-{:x}",
                m.start,
                m.start + m.len
            ));
            if p.exists() {
                return p;
            }
        }
        return PathBuf::from(stripped);
    }
    PathBuf::from(path)
}

/// Names every located address; `live` is the pid when the process still runs (this
/// process). Returns the frames and the errors of files that could not be read at all
/// (each "path: error").
pub fn symbolize(
    files: &[&MapRec],
    locs: &[Loc],
    live: Option<u32>,
) -> (HashMap<Loc, Frame>, Vec<String>) {
    let symbolizer = Symbolizer::builder()
        .enable_code_info(false)
        .enable_inlined_fns(false)
        .build();
    let mut by_file: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    let mut out = HashMap::new();
    for l in locs {
        match l {
            Loc::File { file, offset } => by_file.entry(*file).or_default().push(*offset),
            Loc::Special(name) => {
                out.insert(
                    l.clone(),
                    Frame {
                        symbol: name.clone(),
                        dso: name.clone(),
                    },
                );
            }
            Loc::Unknown => {
                out.insert(
                    l.clone(),
                    Frame {
                        symbol: "[unknown]".into(),
                        dso: String::new(),
                    },
                );
            }
        }
    }
    let mut errors = Vec::new();
    for (file, mut offsets) in by_file {
        offsets.sort_unstable();
        offsets.dedup();
        let path = &files[file].path;
        let dso = file_name(path);
        let mut elf = Elf::new(open_path(files[file], live));
        elf.debug_syms = false;
        let names = match symbolizer.symbolize(&Source::Elf(elf), Input::FileOffset(&offsets)) {
            Ok(syms) => syms
                .iter()
                .map(|s| s.as_sym().map(|s| short_name(&s.name)))
                .collect::<Vec<_>>(),
            Err(e) => {
                errors.push(format!("{path}: {e}"));
                vec![None; offsets.len()]
            }
        };
        for (offset, name) in offsets.into_iter().zip(names) {
            out.insert(
                Loc::File { file, offset },
                Frame {
                    symbol: name.unwrap_or_else(|| format!("[{dso}]")),
                    dso: dso.clone(),
                },
            );
        }
    }
    (out, errors)
}

/// A demangled name without what only clutters a flamegraph: a C++ parameter list and
/// return type (`void f<T>(int, float*)` → `f<T>`). Rust names carry neither.
pub fn short_name(name: &str) -> String {
    let mut s = name.trim();
    // GCC's clones (`f(int) [clone .constprop.0]`, `[clone .isra.0] [clone .cold]`) are the
    // same function for a reader: drop the suffixes.
    while let Some(i) = s.rfind(" [clone ") {
        if !s.ends_with(']') {
            break;
        }
        s = s[..i].trim_end();
    }
    // Cut a trailing parameter list, with any qualifiers after it (" const").
    let trimmed = s.trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == ' ' || c == '&');
    if trimmed.ends_with(')') {
        let mut depth = 0i32;
        for (i, c) in trimmed.char_indices().rev() {
            match c {
                ')' => depth += 1,
                '(' => {
                    depth -= 1;
                    if depth == 0 {
                        if i > 0 {
                            s = &trimmed[..i];
                        }
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    // Drop a return type: the text before the last space outside <> and ().
    let mut depth = 0i32;
    let mut cut = None;
    for (i, c) in s.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ' ' if depth == 0 => cut = Some(i),
            _ => {}
        }
    }
    if let Some(i) = cut
        && !s[..i].ends_with("operator")
    {
        s = &s[i + 1..];
    }
    s.replace(';', ":").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(
            short_name(
                "void gemm_q4_b32_8x8_q8_0_lut_avx<block<4, 8> >(int, float*, unsigned long, void const*, void const*, int, int, long long __vector(4))"
            ),
            "gemm_q4_b32_8x8_q8_0_lut_avx<block<4, 8> >"
        );
        assert_eq!(
            short_name(
                "(anonymous namespace)::tinygemm_kernel_vnni<block_q8_0, block_q4_0, float, 1, 32, 32>::apply(int, void const*, void const*, float*, int)"
            ),
            "(anonymous namespace)::tinygemm_kernel_vnni<block_q8_0, block_q4_0, float, 1, 32, 32>::apply"
        );
        assert_eq!(
            short_name("ggml_vec_dot_q4_0_q8_0"),
            "ggml_vec_dot_q4_0_q8_0"
        );
        assert_eq!(
            short_name("tessera_kernels::cpu::avx2::matmul"),
            "tessera_kernels::cpu::avx2::matmul"
        );
        assert_eq!(
            short_name("<alloc::vec::Vec<T> as core::ops::Drop>::drop"),
            "<alloc::vec::Vec<T> as core::ops::Drop>::drop"
        );
        assert_eq!(short_name("foo::bar() const"), "foo::bar");
        assert_eq!(
            short_name(
                "void gemv_q4_b32_8x8_q8_0_lut_avx<block<4, 8> >(int, float*, unsigned long, void const*, void const*, int, int, long long __vector(4)) [clone .constprop.0]"
            ),
            "gemv_q4_b32_8x8_q8_0_lut_avx<block<4, 8> >"
        );
        assert_eq!(short_name("f(int) [clone .isra.0] [clone .cold]"), "f");
        assert_eq!(short_name("a;b"), "a:b");
    }

    fn map(pid: u32, time: u64, start: u64, path: &str) -> MapRec {
        MapRec {
            pid,
            time,
            start,
            len: 0x1000,
            pgoff: 0x200,
            path: path.into(),
        }
    }

    #[test]
    fn exec_starts_a_new_address_space_and_fork_inherits_one() {
        let mut raw = Raw::default();
        raw.maps = vec![
            map(10, 5, 0x1000, "/bin/sh"),
            map(10, 50, 0x1000, "/usr/bin/engine"),
            map(11, 60, 0x8000, "/usr/lib/libx.so"),
            map(12, 70, 0x9000, "[vdso]"),
        ];
        raw.execs = vec![(10, 40)];
        raw.forks = vec![(11, 10, 55), (12, 10, 30)];
        let mut s = Spaces::new(&raw, &[]);
        let g = s.generation(10, 45);
        assert_eq!(g, 1);
        assert_eq!(
            s.locate(10, g, 0x1010),
            Loc::File {
                file: 0,
                offset: 0x210
            }
        );
        assert_eq!(s.files[0].path, "/usr/bin/engine");
        assert_eq!(
            s.locate(10, 0, 0x1010),
            Loc::File {
                file: 1,
                offset: 0x210
            }
        );
        assert_eq!(s.files[1].path, "/bin/sh");
        // pid 11 forked after the exec: its own library, and its parent's engine.
        assert!(matches!(s.locate(11, 0, 0x8004), Loc::File { file: 2, .. }));
        assert!(matches!(s.locate(11, 0, 0x1004), Loc::File { file: 0, .. }));
        // pid 12 forked before it: the shell.
        assert!(matches!(s.locate(12, 0, 0x1004), Loc::File { file: 1, .. }));
        assert_eq!(s.locate(12, 0, 0x9004), Loc::Special("[vdso]".into()));
        assert_eq!(s.locate(13, 0, 0x1004), Loc::Unknown);
    }

    #[test]
    fn this_binary_is_symbolized() {
        // The test binary's own text mapping, from /proc/self/maps.
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let me = std::fs::read_link("/proc/self/exe").unwrap();
        let pid = std::process::id();
        let recs = super::super::parse_proc_maps(&maps, pid);
        let f = short_names as fn() as usize as u64;
        let m = recs
            .iter()
            .find(|m| f >= m.start && f - m.start < m.len)
            .expect("the text mapping");
        assert_eq!(Path::new(&m.path), me);
        let raw = Raw::default();
        let mut s = Spaces::new(&raw, &recs);
        let loc = s.locate(pid, 0, f);
        let (frames, errors) = symbolize(&s.files, std::slice::from_ref(&loc), Some(pid));
        assert!(errors.is_empty(), "{errors:?}");
        let name = &frames[&loc].symbol;
        assert!(name.ends_with("short_names"), "{name}");
    }
}
