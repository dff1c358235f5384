//! Small file-system helpers shared by commands: today, [`write_atomically`].
//!
//! `bisect::state` (its `state.json`) and `merge` (`results.jsonl`) also write a temp file
//! and rename it, each with its own messages ("writing PATH" for the rename), which tests
//! and users see; they keep their own few lines rather than take this one's messages.

use std::io::Write;

use anyhow::{Context as _, Result};

/// Writes through `write` to `path.tmp` and renames, so an existing file is never left
/// half-written. The writer is buffered; the data is synced before the rename.
pub fn write_atomically(
    path: &std::path::Path,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut w = std::io::BufWriter::new(f);
    write(&mut w)
        .and_then(|()| Ok(w.flush()?))
        .with_context(|| format!("writing {}", tmp.display()))?;
    if let Ok(f) = w.into_inner() {
        f.sync_all().ok();
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}
