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

/// What a file is, when it is not a regular file.
fn special(meta: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
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
    if let Some(what) = special(&std::fs::metadata(path)?) {
        return Err(ReadError::NotRegular(what));
    }
    // What was checked may be replaced before it is opened: opening does not wait (a FIFO
    // without a writer opens at once), and what was opened is checked again.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if let Some(what) = special(&meta) {
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
