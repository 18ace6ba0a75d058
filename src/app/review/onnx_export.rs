//! "Export model…" in the Review panel: the loaded model to ONNX, on a background thread,
//! reported in the status bar (`detector::onnx`, as `detlab export-model`).

use std::path::{Path, PathBuf};

use crate::app::jobs::{repaint, Job};
use crate::app::AppState;
use crate::detector::onnx::{export_model, ExportOptions, Variant};

/// The "Export model to ONNX" form.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxExportForm {
    /// The model file to export.
    pub model: PathBuf,
    /// Where to write the `.onnx` file.
    pub out: String,
    /// End before NMS (decoded boxes and scores of every anchor).
    pub raw: bool,
}

impl OnnxExportForm {
    /// The form for `model`, writing `<model>.onnx` beside it.
    pub fn for_model(model: &Path) -> Self {
        Self {
            model: model.to_path_buf(),
            out: model.with_extension("onnx").display().to_string(),
            raw: false,
        }
    }
}

impl AppState {
    /// Exports `form.model` to ONNX on a thread; [`AppState::poll_onnx_export`] reports.
    pub fn export_onnx(&mut self, form: OnnxExportForm) {
        if self.review.onnx_export_job.is_some() {
            self.info("an ONNX export is already running");
            return;
        }
        let out = PathBuf::from(form.out.trim());
        if out.as_os_str().is_empty() {
            self.fail("choose where to write the ONNX file");
            return;
        }
        let opts = ExportOptions {
            variant: if form.raw { Variant::Raw } else { Variant::Nms },
            ..ExportOptions::default()
        };
        self.info(format!("exporting {} to ONNX…", form.model.display()));
        let model = form.model;
        self.review.onnx_export_job = Some(Job::spawn(
            "onnx-export",
            repaint(self.ctx.clone()),
            move |_| {
                export_model(&model, &out, &opts)
                    .map(|r| {
                        format!(
                            "exported {} to {} ({:.1} MB, {:.1} s)",
                            model.display(),
                            r.path.display(),
                            r.bytes as f64 / 1e6,
                            r.elapsed.as_secs_f64()
                        )
                    })
                    .map_err(|e| format!("ONNX export failed: {e}"))
            },
        ));
    }

    /// Reports a finished ONNX export in the status bar; returns whether one finished.
    pub(crate) fn poll_onnx_export(&mut self) -> bool {
        let Some(result) = self.review.onnx_export_job.as_ref().and_then(Job::outcome) else {
            return false;
        };
        self.review.onnx_export_job = None;
        match result {
            Ok(message) => self.info(message),
            Err(e) => self.fail(e),
        }
        true
    }
}
