//! `detlab export-model`: a detlab model file → an ONNX file (`detector::onnx`).

use std::path::PathBuf;

use anyhow::{bail, Context};

use detlab::detector::inference::default_model_path;
use detlab::detector::onnx::{export_model, ExportOptions, InputDtype, Layout, Variant};

/// The export formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// ONNX (opset 18), for ONNX Runtime, Triton, TensorRT.
    Onnx,
}

/// Export a detlab model to ONNX.
#[derive(clap::Args, Debug)]
pub struct ExportModelArgs {
    /// The detlab model file (default: the shipped models/cola-sprite-lite0.safetensors,
    /// or $DETLAB_MODEL).
    #[arg(long, value_name = "M.safetensors")]
    pub model: Option<PathBuf>,
    /// The file format to write.
    #[arg(long, value_enum, default_value = "onnx")]
    pub format: Format,
    /// The file to write (atomically).
    #[arg(long, value_name = "M.onnx")]
    pub out: PathBuf,
    /// End with ONNX NonMaxSuppression: per image `boxes` [B,K,4], `scores` [B,K],
    /// `class_ids` [B,K] (−1 in padding) and `num_detections` [B] (the default).
    #[arg(long, conflicts_with = "raw")]
    pub nms: bool,
    /// End before NMS: decoded `boxes` [B,N,4] and class probabilities `scores` [B,N,C]
    /// of every anchor.
    #[arg(long)]
    pub raw: bool,
    /// Input axis order: nhwc ([B,S,S,3]) or nchw ([B,3,S,S]).
    #[arg(long, default_value = "nhwc")]
    pub layout: Layout,
    /// Input element type: float32 (pixel values 0–255) or uint8.
    #[arg(long, default_value = "float32")]
    pub input_dtype: InputDtype,
    /// Fix the batch size (default: a free `batch` axis).
    #[arg(long)]
    pub batch: Option<u32>,
    /// Score threshold of the NMS (keep scores above it).
    #[arg(long, default_value_t = 0.05)]
    pub score: f32,
    /// NMS IoU threshold.
    #[arg(long, default_value_t = 0.5)]
    pub iou: f32,
    /// Detections per image (K, the padded size of the outputs).
    #[arg(long, default_value_t = 100)]
    pub max_det: usize,
    /// NMS across classes instead of within each class.
    #[arg(long)]
    pub class_agnostic: bool,
}

impl ExportModelArgs {
    /// The library's export settings.
    pub fn options(&self) -> ExportOptions {
        ExportOptions {
            variant: if self.raw { Variant::Raw } else { Variant::Nms },
            layout: self.layout,
            input_dtype: self.input_dtype,
            batch: self.batch,
            score_threshold: self.score,
            iou_threshold: self.iou,
            max_detections: self.max_det,
            class_agnostic: self.class_agnostic,
        }
    }
}

/// Runs the command.
pub fn run(args: ExportModelArgs) -> anyhow::Result<()> {
    let Format::Onnx = args.format;
    let Some(model) = args.model.clone().or_else(default_model_path) else {
        bail!("a model is needed: pass --model M.safetensors");
    };
    let opts = args.options();
    if let Err(e) = opts.check() {
        bail!("{e}");
    }
    let report = export_model(&model, &args.out, &opts)
        .with_context(|| format!("exporting {} to ONNX", model.display()))?;
    println!(
        "exported {} → {} ({:.1} MB, {} nodes, {} anchors, {} variant, {:.1} s)",
        model.display(),
        report.path.display(),
        report.bytes as f64 / 1e6,
        report.summary.nodes,
        report.summary.anchors,
        opts.variant,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}
