//! Errors of the label-file readers and writers: always naming the file and the reason.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid UTF-8")]
    NotUtf8 { path: PathBuf },
    #[error("{path} is not a valid {format} file: {reason}")]
    Invalid {
        path: PathBuf,
        format: &'static str,
        reason: String,
    },
}

impl FormatError {
    pub fn invalid(
        path: impl Into<PathBuf>,
        format: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            path: path.into(),
            format,
            reason: reason.into(),
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Self::Read { path, .. }
            | Self::Write { path, .. }
            | Self::NotUtf8 { path }
            | Self::Invalid { path, .. } => path,
        }
    }
}

/// Reads a whole text file (UTF-8, BOM allowed).
pub(crate) fn read_text(path: &std::path::Path) -> Result<String, FormatError> {
    let bytes = std::fs::read(path).map_err(|source| FormatError::Read {
        path: path.into(),
        source,
    })?;
    let bytes = bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .map(<[u8]>::to_vec)
        .unwrap_or(bytes);
    String::from_utf8(bytes).map_err(|_| FormatError::NotUtf8 { path: path.into() })
}

/// Writes a file atomically (temp file + rename).
pub(crate) fn write_file(path: &std::path::Path, content: &[u8]) -> Result<(), FormatError> {
    crate::atomic::write_atomic(path, content).map_err(|source| FormatError::Write {
        path: path.into(),
        source,
    })
}
