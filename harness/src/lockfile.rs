//! An exclusive lock on a directory that one tessera process writes (a sweep run
//! directory, a merge's output, the bisect state): a second writer is refused with a line
//! naming the holder's pid instead of measuring concurrently and interleaving rows.
//!
//! The lock is `flock(2)` on a file `DIR/.tessera.lock` holding the holder's pid and what
//! it is doing. The kernel drops an flock when its process dies, however it dies, so a
//! lock left by a killed process (SIGKILL, a reboot) is never in force: the next process
//! takes it and says that it took over from that pid. A reused pid cannot keep a dead
//! holder's lock alive, which a pid check alone could. The guard removes the file when
//! dropped — on success, on an error return and on Ctrl-C (which tessera turns into an
//! error) — while still holding the lock, and a process that locked the file it just
//! removed notices (the path no longer names its file) and tries again.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

/// Name of the lock file inside the locked directory.
pub const LOCK_FILE: &str = ".tessera.lock";

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct DirLock {
    path: PathBuf,
    file: File,
}

impl DirLock {
    /// Locks `dir` (created if missing) for `what` (e.g. "tessera sweep"). Refuses with
    /// one line naming the pid and command of a live holder; takes over, with a note on
    /// stderr, a lock file whose writer died without removing it.
    pub fn acquire(dir: &Path, what: &str) -> Result<DirLock> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        // Bounded: each retry means another process removed the file between our open and
        // our lock, which cannot go on for long.
        for _ in 0..100 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("opening lock file {}", path.display()))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    let holder = read_holder(&mut file);
                    bail!(
                        "{} is in use by {}; wait for it to finish or stop it, then run this again",
                        dir.display(),
                        holder.describe()
                    );
                }
                Err(TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("locking {}", path.display()));
                }
            }
            // The previous holder may have removed the file after we opened it: then we
            // hold a lock on a file nobody else can see; start over.
            let same = match (file.metadata(), std::fs::metadata(&path)) {
                (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                _ => false,
            };
            if !same {
                continue;
            }
            let stale = read_holder(&mut file);
            if let Some(pid) = stale.pid
                && pid != std::process::id()
            {
                eprintln!(
                    "tessera: note: took over the lock on {} left by {}, which is no longer running",
                    dir.display(),
                    stale.describe()
                );
            }
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            writeln!(file, "{} {what}", std::process::id())
                .and_then(|()| file.flush())
                .with_context(|| format!("writing lock file {}", path.display()))?;
            return Ok(DirLock { path, file });
        }
        bail!(
            "could not lock {}: its lock file keeps being replaced",
            dir.display()
        )
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Remove while still holding the lock; closing the file then releases it.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// What a lock file says about its holder.
struct Holder {
    pid: Option<u32>,
    what: String,
}

impl Holder {
    fn describe(&self) -> String {
        match (self.pid, self.what.is_empty()) {
            (Some(pid), false) => format!("pid {pid} ({})", self.what),
            (Some(pid), true) => format!("pid {pid}"),
            (None, _) => "another process (its lock file names no pid)".to_string(),
        }
    }
}

fn read_holder(file: &mut File) -> Holder {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    // A lock file is one short line; more is not ours to read.
    let _ = file.take(4096).read_to_string(&mut text);
    let line = text.lines().next().unwrap_or("").trim();
    let (pid, what) = line.split_once(' ').unwrap_or((line, ""));
    Holder {
        pid: pid.parse().ok(),
        what: what.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_pid() {
        let dir = tempfile::tempdir().unwrap();
        let lock = DirLock::acquire(dir.path(), "tessera sweep").unwrap();
        let text = std::fs::read_to_string(lock.path()).unwrap();
        assert_eq!(text, format!("{} tessera sweep\n", std::process::id()));
        // flock locks belong to the open file, so a second open in this process conflicts
        // just as another process would.
        let err = DirLock::acquire(dir.path(), "tessera sweep")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "in use by pid {} (tessera sweep)",
                std::process::id()
            )),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1);
        drop(lock);
        assert!(!dir.path().join(LOCK_FILE).exists(), "released on drop");
        DirLock::acquire(dir.path(), "again").unwrap();
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        // A pid that exited: our own finished child.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        std::fs::write(
            dir.path().join(LOCK_FILE),
            format!("{dead} tessera bisect\n"),
        )
        .unwrap();
        let lock = DirLock::acquire(dir.path(), "tessera bisect").unwrap();
        let text = std::fs::read_to_string(lock.path()).unwrap();
        assert!(
            text.starts_with(&format!("{} ", std::process::id())),
            "{text}"
        );
    }
}
