//! The export itself: a detlab model file in, an `.onnx` file out (written atomically).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use prost::Message;

use super::efficientdet::{build_graph, GraphError, GraphSummary};
use super::metadata::metadata_props;
use super::options::{ExportOptions, OptionError};
use super::proto::{ModelProto, OperatorSetIdProto};
use crate::detector::checkpoint::{ModelFile, ModelFileError};

/// The ONNX operator set the graph uses (Resize-free; `ReduceMax` with axes as an input).
pub const OPSET: i64 = 18;
/// The IR version of that operator set (`IR_VERSION_2021_7_30`).
pub const IR_VERSION: i64 = 8;

/// Why an export failed. Every message names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The model file cannot be read (missing, corrupt, not a detlab model…).
    #[error(transparent)]
    Model(#[from] ModelFileError),
    /// The model file is a backbone-only import.
    #[error("model file {}: a partial (backbone-only) model has no detector to export", .0.display())]
    Partial(PathBuf),
    /// A weight is NaN or infinite, or does not fit the architecture.
    #[error("model file {}: {source}", path.display())]
    Graph {
        /// The model file.
        path: PathBuf,
        /// What is wrong with it.
        source: GraphError,
    },
    /// An export setting is out of range.
    #[error(transparent)]
    Options(#[from] OptionError),
    /// The output would replace the model file.
    #[error("{}: the output would replace the model file itself; choose another --out", .0.display())]
    SameFile(PathBuf),
    /// The output cannot be written (nothing is left behind).
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The output path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportReport {
    /// The file written.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: usize,
    /// Graph statistics.
    pub summary: GraphSummary,
    /// Time taken (read, build, encode, write).
    pub elapsed: Duration,
}

/// The ONNX model of a model file already in memory.
pub fn onnx_model(
    file: &ModelFile,
    opts: &ExportOptions,
) -> Result<(ModelProto, GraphSummary), GraphError> {
    let (graph, summary) = build_graph(file, opts)?;
    let model = ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        producer_name: Some("detlab".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        domain: Some("detlab".into()),
        model_version: Some(1),
        doc_string: Some(format!(
            "EfficientDet exported by detlab {}; see metadata_props for the input recipe",
            env!("CARGO_PKG_VERSION")
        )),
        graph: Some(graph),
        metadata_props: metadata_props(&file.meta, opts),
        ..Default::default()
    };
    Ok((model, summary))
}

/// The encoded `.onnx` bytes of a model file already in memory (no file is touched).
pub fn onnx_bytes(
    file: &ModelFile,
    opts: &ExportOptions,
) -> Result<(Vec<u8>, GraphSummary), GraphError> {
    let (model, summary) = onnx_model(file, opts)?;
    Ok((model.encode_to_vec(), summary))
}

/// Exports the detlab model file at `model` to ONNX at `out`, atomically: on any error
/// `out` is left as it was (absent or the old file) and no temporary file remains.
pub fn export_model(
    model: &Path,
    out: &Path,
    opts: &ExportOptions,
) -> Result<ExportReport, ExportError> {
    let start = Instant::now();
    opts.check()?;
    if crate::file_id::FileId::of(model).is(&crate::file_id::FileId::of(out)) {
        return Err(ExportError::SameFile(out.to_path_buf()));
    }
    let file = ModelFile::read(model)?;
    if file.meta.partial {
        return Err(ExportError::Partial(model.to_path_buf()));
    }
    file.check_finite().map_err(|kind| ModelFileError {
        path: model.to_path_buf(),
        kind,
    })?;
    let (bytes, summary) = onnx_bytes(&file, opts).map_err(|source| ExportError::Graph {
        path: model.to_path_buf(),
        source,
    })?;
    drop(file);
    crate::atomic::write_atomic(out, &bytes).map_err(|source| ExportError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    Ok(ExportReport {
        path: out.to_path_buf(),
        bytes: bytes.len(),
        summary,
        elapsed: start.elapsed(),
    })
}
