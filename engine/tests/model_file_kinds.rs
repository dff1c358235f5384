//! A model path that is not a regular file (a FIFO, a directory, a device, a socket, a
//! dangling link) is refused by `stat` with a message saying what it is, and never opened:
//! opening a FIFO for reading blocks until a writer comes, which used to hang `generate`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use tessera_engine::gguf::{GgufError, GgufFile, check_regular_file};
use tessera_engine::{EngineError, Model};

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Runs `f` on a thread and fails the test if it has not returned in 10 s (a blocked open).
fn within_10s<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what} did not return within 10 s (blocked in open?)"))
}

/// (path, what the message must call it) for every kind of non-regular file.
fn hostile_paths(
    dir: &Path,
) -> (
    Vec<(PathBuf, &'static str)>,
    std::os::unix::net::UnixListener,
) {
    let fifo = dir.join("fifo.gguf");
    mkfifo(&fifo);
    let sub = dir.join("dir.gguf");
    std::fs::create_dir(&sub).unwrap();
    let sock = dir.join("sock.gguf");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let link_to_fifo = dir.join("link.gguf");
    std::os::unix::fs::symlink(&fifo, &link_to_fifo).unwrap();
    (
        vec![
            (fifo, "(a FIFO)"),
            (sub, "(a directory)"),
            (PathBuf::from("/dev/zero"), "(a character device)"),
            (sock, "(a socket)"),
            // Links are followed: what counts is what they point to.
            (link_to_fifo, "(a FIFO)"),
        ],
        listener,
    )
}

#[test]
fn non_regular_files_are_refused_by_stat_naming_their_kind() {
    let dir = tempfile::tempdir().unwrap();
    let (paths, _listener) = hostile_paths(dir.path());
    for (path, kind) in paths {
        let e = check_regular_file(&path).unwrap_err();
        assert!(matches!(e, GgufError::NotRegularFile { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "model '{}' is not a regular file {kind}; give a GGUF file",
                path.display()
            )
        );

        // The reader and the model loader refuse it the same way, without blocking, and
        // name the path once.
        let p = path.clone();
        let e = within_10s("GgufFile::open", move || GgufFile::open(&p).unwrap_err());
        assert!(matches!(e, GgufError::NotRegularFile { .. }), "{e}");
        let p = path.clone();
        let e = within_10s("Model::load", move || Model::load(&p).unwrap_err());
        assert!(
            matches!(&e, EngineError::Gguf(GgufError::NotRegularFile { .. })),
            "{e}"
        );
        assert_eq!(
            e.to_string().matches(&*path.display().to_string()).count(),
            1,
            "{e}"
        );
    }
}

#[test]
fn missing_files_and_dangling_links_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.gguf");
    let e = check_regular_file(&missing).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("model file '{}' does not exist", missing.display())
    );
    let link = dir.path().join("dangling.gguf");
    std::os::unix::fs::symlink("nowhere.gguf", &link).unwrap();
    let e = Model::load(&link).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "model file '{}' is a symbolic link to 'nowhere.gguf', which does not exist",
            link.display()
        )
    );
    // A regular file passes (and then fails as what it is: not GGUF).
    let f = dir.path().join("text.gguf");
    std::fs::write(&f, b"hello").unwrap();
    check_regular_file(&f).unwrap();
    let e = GgufFile::open(&f).unwrap_err();
    assert!(matches!(e, GgufError::BadMagic { .. }), "{e}");
}
