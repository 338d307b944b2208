//! Reading a source file: regular files only, and no more than a limit. A FIFO, a device or a
//! socket where a source was is named, never opened (a FIFO would block the reader for ever,
//! `/dev/zero` never ends); a file larger than the limit is not read whole.

use std::io::Read;
use std::path::Path;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not a regular file: what it is.
    #[error("is a {0}, not a regular file: not opened")]
    NotRegular(&'static str),
    /// Larger than the limit.
    #[error("is larger than {0} bytes")]
    TooLarge(u64),
    /// The file system's error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What a file is, when it is not a regular file (`FIFO`, `socket`, …).
pub fn special(t: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("folder")
    } else if t.is_fifo() {
        Some("FIFO")
    } else if t.is_char_device() {
        Some("character device")
    } else if t.is_block_device() {
        Some("block device")
    } else if t.is_socket() {
        Some("socket")
    } else {
        Some("special file")
    }
}

/// The bytes of the regular file at `path` (a link is followed), at most `limit` of them: a
/// longer file is [`ReadError::TooLarge`].
pub fn read_regular(path: &Path, limit: Option<u64>) -> Result<Vec<u8>, ReadError> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(what) = special(std::fs::metadata(path)?.file_type()) {
        return Err(ReadError::NotRegular(what));
    }
    // What was checked may be replaced before it is opened: opening does not wait (a FIFO
    // without a writer opens at once), and what was opened is checked again.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if let Some(what) = special(meta.file_type()) {
        return Err(ReadError::NotRegular(what));
    }
    let cap = limit.unwrap_or(u64::MAX);
    if meta.len() > cap {
        return Err(ReadError::TooLarge(cap));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One byte more than the limit tells a file that grew since it was looked at.
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge(cap));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_files_are_named_and_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Opening it for reading would block until a writer came.
        assert!(matches!(
            read_regular(&fifo, None),
            Err(ReadError::NotRegular("FIFO"))
        ));
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(matches!(
            read_regular(&zero, Some(10)),
            Err(ReadError::NotRegular("character device"))
        ));
        assert!(matches!(
            read_regular(dir.path(), None),
            Err(ReadError::NotRegular("folder"))
        ));
        let file = dir.path().join("file");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_regular(&file, Some(10)).unwrap(), b"0123456789");
        assert!(matches!(
            read_regular(&file, Some(9)),
            Err(ReadError::TooLarge(9))
        ));
        assert!(matches!(
            read_regular(&dir.path().join("gone"), None),
            Err(ReadError::Io(_))
        ));
    }
}

/// The name a file is known by in the index, its ledger and its records: its path when that is
/// UTF-8, else a `file://` URI with every byte other than ASCII letters, digits, `/`, `.`, `-`
/// and `_` percent-encoded. Either way [`path_of`] gives the path back, byte for byte, so that
/// `verify` finds the file again (a replacement character would name another file).
pub fn name_of(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    match path.to_str() {
        Some(s) if !s.starts_with(URI) => s.to_string(),
        _ => {
            let mut out = String::from(URI);
            for &b in path.as_os_str().as_bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'-' | b'_') {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            out
        }
    }
}

/// What a name of [`name_of`] was the name of.
pub fn path_of(name: &str) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let Some(rest) = name.strip_prefix(URI) else {
        return std::path::PathBuf::from(name);
    };
    let b = rest.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| rest.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    std::path::PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// The prefix of a name that stands for a path that is not UTF-8.
const URI: &str = "file://";

#[cfg(test)]
mod names {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn every_path_is_named_losslessly() {
        let plain = Path::new("/evidence/세션/jiwoo-de2414f130f6d253c.log");
        assert_eq!(name_of(plain), plain.to_str().unwrap());
        assert_eq!(path_of(&name_of(plain)), plain);
        let raw = Path::new(std::ffi::OsStr::from_bytes(
            b"/evidence/ops\xff\xfe 100%.log",
        ));
        let name = name_of(raw);
        assert_eq!(name, "file:///evidence/ops%FF%FE%20100%25.log");
        assert_eq!(path_of(&name), raw);
        // A UTF-8 path that looks like such a name is encoded too: names never collide.
        let odd = Path::new("file://x%41");
        assert_ne!(path_of(&name_of(odd)), Path::new("file://xA"));
        assert_eq!(path_of(&name_of(odd)), odd);
    }
}
