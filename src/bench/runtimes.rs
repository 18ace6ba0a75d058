//! The runtime race of `detlab bench detector`: the network detlab times, exported to ONNX
//! (`detector::onnx`, the `raw` variant: network and box decoding, no NMS) and timed in
//! ONNX Runtime and OpenVINO on the CPU by `scripts/bench_runtimes.py`, at the same thread
//! counts and batch sizes, in the same run.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

use detlab::detector::checkpoint::ModelFile;
use detlab::detector::onnx::{onnx_bytes, ExportOptions, Layout, Variant};
use detlab::detector::precision::Precision;

/// A runtime and precision the race times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contender {
    /// `onnxruntime` or `openvino` (the script's names).
    pub runtime: &'static str,
    pub precision: Precision,
}

impl Contender {
    /// ONNX Runtime fp32, OpenVINO fp32, OpenVINO bf16.
    pub const ALL: [Contender; 3] = [
        Contender {
            runtime: "onnxruntime",
            precision: Precision::Fp32,
        },
        Contender {
            runtime: "openvino",
            precision: Precision::Fp32,
        },
        Contender {
            runtime: "openvino",
            precision: Precision::Bf16,
        },
    ];

    /// "ONNX Runtime fp32", "OpenVINO bf16".
    pub fn label(self) -> String {
        let name = match self.runtime {
            "onnxruntime" => "ONNX Runtime",
            _ => "OpenVINO",
        };
        format!("{name} {}", self.precision)
    }
}

/// Writes `file` as a `raw` NCHW float32 ONNX model with a fixed `batch` into `dir`.
pub fn export_for_race(
    file: &ModelFile,
    batch: u32,
    dir: &Path,
) -> anyhow::Result<std::path::PathBuf> {
    let opts = ExportOptions {
        variant: Variant::Raw,
        layout: Layout::Nchw,
        batch: Some(batch),
        ..ExportOptions::default()
    };
    let (bytes, _) = onnx_bytes(file, &opts)?;
    let path = dir.join(format!(
        "{}-{}-b{batch}.onnx",
        file.meta.arch, file.meta.input_size
    ));
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Milliseconds per image of `onnx` in `who` (median of `iterations` calls), or `Ok(None)`
/// with the reason when the runtime is not installed.
pub fn time_in(
    python: &Path,
    onnx: &Path,
    who: Contender,
    threads: usize,
    batch: u32,
    iterations: usize,
) -> anyhow::Result<Result<f64, String>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench_runtimes.py");
    let out = Command::new(python)
        .arg(&script)
        .arg("--onnx")
        .arg(onnx)
        .args(["--runtime", who.runtime])
        .args(["--precision", &who.precision.to_string()])
        .args(["--threads", &threads.to_string()])
        .args(["--batch", &batch.to_string()])
        .args(["--iterations", &iterations.to_string()])
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{} printed no JSON", script.display()))?;
    if let Some(why) = v["skipped"].as_str() {
        return Ok(Err(why.to_string()));
    }
    v["ms_per_image"]
        .as_f64()
        .map(Ok)
        .context("no ms_per_image in the script's output")
}
