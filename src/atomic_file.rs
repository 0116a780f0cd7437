//! Writing a file whole or not at all: through a temporary file and a rename, so a crash never
//! leaves a half-written key, CRL or index behind, and with the final permissions from the
//! first byte, so a private key is never readable by others even briefly.
//!
//! Shared by [`pki`](crate::pki) (the CA directory) and
//! [`audit::signing_key`](crate::audit::signing_key) (the checkpoint key), which is why it
//! belongs to neither. Callers turn the `io::Error` into their own error, naming the path.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Secrecy {
    /// Mode 0600: only the owner may read a private key.
    Private,
    Public,
}

/// Replaces `path` with `contents`; see the module documentation.
pub(crate) fn write(path: &Path, contents: &[u8], secrecy: Secrecy) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    // A leftover temporary file could carry looser permissions than we are about to set.
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secrecy == Secrecy::Private {
            0o600
        } else {
            0o644
        });
    }
    #[cfg(not(unix))]
    let _ = secrecy;
    let mut file = options.open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    // Best effort: make the rename itself durable.
    if let Some(parent) = path.parent()
        && let Ok(d) = fs::File::open(parent)
    {
        let _ = d.sync_all();
    }
    Ok(())
}
