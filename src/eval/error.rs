//! The one error type of the evaluator: every malformed input names the record and why.

use std::fmt;
use std::path::PathBuf;

/// Which input a problem was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// The COCO ground-truth dataset (`images`, `annotations`, `categories`).
    GroundTruth,
    /// The detection results list (`[{image_id, category_id, bbox, score}, ...]`).
    Detections,
}

impl fmt::Display for InputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputKind::GroundTruth => "ground truth",
            InputKind::Detections => "detections",
        })
    }
}

/// Everything that can go wrong when loading inputs or evaluating.
///
/// Evaluation itself never fails on valid inputs; errors come from malformed data or
/// parameters and always say where (section and 0-based index of the record) and why.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read (the I/O error is the [`std::error::Error::source`]).
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An error in a file: the path, with the error itself as the
    /// [`std::error::Error::source`] (anyhow's `{:#}` prints both).
    #[error("{}", path.display())]
    InFile {
        /// The file the error was found in.
        path: PathBuf,
        /// What was wrong with it.
        #[source]
        source: Box<EvalError>,
    },
    /// The bytes are not JSON of the expected overall shape.
    #[error("{kind} is not valid JSON: {message}")]
    Json {
        /// Which input.
        kind: InputKind,
        /// serde_json's message (with line and column), plus a hint where one helps.
        message: String,
    },
    /// One record is malformed or inconsistent with the ground truth.
    #[error("{kind}: {section}[{index}]{}: {reason}", id.map(|i| format!(" (id {i})")).unwrap_or_default())]
    InvalidRecord {
        /// Which input.
        kind: InputKind,
        /// The JSON section (`annotations`, `images`, `categories`, `results`).
        section: &'static str,
        /// 0-based position of the record in that section.
        index: usize,
        /// The record's own `id`, when it has one.
        id: Option<i64>,
        /// What is wrong with it.
        reason: String,
    },
    /// Evaluation parameters that COCOeval could not run with either.
    #[error("invalid evaluation parameters: {0}")]
    InvalidParams(String),
}

impl EvalError {
    /// Wraps `self` with the path of the file it came from.
    pub fn in_file(self, path: impl Into<PathBuf>) -> EvalError {
        EvalError::InFile {
            path: path.into(),
            source: Box::new(self),
        }
    }
}
