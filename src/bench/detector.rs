//! CPU (and, when present, GPU) speed of the detector, in one run:
//!
//! * latency per image, end to end (EXIF-upright decode + letterbox + network + NMS) and
//!   network only, for D0@512 and Lite0@320 at each requested thread count, with and
//!   without BatchNorm folding;
//! * the network's achieved GFLOP/s (analytic conv FLOPs, [`super::detector_flops`])
//!   divided by libtorch's fp32 matmul GFLOP/s measured at the same thread count in the
//!   same run ("fraction of peak");
//! * on CUDA, images/s at batch 1 and 16 in fp32 and fp16.
//!
//! Weights are random (speed does not depend on them); 2 classes, as for cola-sprite.

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use super::detector_flops::efficientdet_macs;
use super::runtimes::{export_for_race, time_in, Contender};
use super::{time, Report};
use detlab::detector::checkpoint::ModelArch;
use detlab::detector::inference::{
    network_config, predict_files, Detector, DetectorOptions, DeviceChoice, PredictConfig,
};
use detlab::detector::precision::Precision;

/// What to measure.
#[derive(Clone, Debug)]
pub struct DetectorBenchOptions {
    pub threads: Vec<usize>,
    /// Images for the end-to-end timing (default: `../shared/datasets/cola-sprite/val`,
    /// else generated demo images).
    pub images: Option<PathBuf>,
    /// Timed repetitions per measurement (the median is reported).
    pub iterations: usize,
    /// Fail when libtorch sees no CUDA device (instead of leaving the GPU rows out).
    pub require_gpu: bool,
    /// The venv's Python, for the runtime race ([`super::runtimes`]); `None` leaves it
    /// out.
    pub python: Option<PathBuf>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Two random n × n fp32 matrices whose product measures libtorch's matmul speed.
struct MatmulProbe {
    a: Tensor,
    b: Tensor,
}

impl MatmulProbe {
    fn new(n: i64) -> Self {
        let probe = Self {
            a: Tensor::randn([n, n], (Kind::Float, Device::Cpu)),
            b: Tensor::randn([n, n], (Kind::Float, Device::Cpu)),
        };
        let _ = probe.a.matmul(&probe.b);
        probe
    }

    /// GFLOP/s at the current thread count: the median of `iterations` products.
    fn gflops(&self, iterations: usize) -> f64 {
        let n = self.a.size()[0] as f64;
        let secs = (0..iterations.max(1))
            .map(|_| time(|| self.a.matmul(&self.b)).1)
            .collect();
        2.0 * n.powi(3) / median(secs) / 1e9
    }
}

fn bench_images(
    opt: &DetectorBenchOptions,
) -> anyhow::Result<(Vec<PathBuf>, Option<tempdir::Dir>)> {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/cola-sprite/val");
    let dir = opt.images.clone().unwrap_or(shared);
    if dir.is_dir() {
        let imgs = detlab::dataset::scan_images(&dir)?;
        if !imgs.is_empty() {
            return Ok((imgs, None));
        }
    }
    let tmp = tempdir::Dir::new()?;
    detlab::demo::generate(&detlab::demo::DemoOptions {
        out_dir: tmp.path().to_path_buf(),
        images: 8,
        seed: 0,
        width: 640,
        height: 480,
    })?;
    Ok((detlab::dataset::scan_images(tmp.path())?, Some(tmp)))
}

/// A scratch folder removed on drop (no dev-dependency on `tempfile` here).
mod tempdir {
    use std::path::{Path, PathBuf};
    pub struct Dir(PathBuf);
    impl Dir {
        pub fn new() -> std::io::Result<Self> {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("detlab-bench-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p)?;
            Ok(Self(p))
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs the benchmark.
pub fn run(opt: &DetectorBenchOptions) -> anyhow::Result<Report> {
    if opt.require_gpu && !tch::Cuda::is_available() {
        anyhow::bail!("--gpu-only: libtorch sees no CUDA device (see `detlab info`)");
    }
    let mut report = Report {
        title: "Detector inference".into(),
        ..Default::default()
    };
    let (images, _keep) = bench_images(opt)?;
    let iters = opt.iterations.max(1);
    let classes = vec!["Sprite".to_string(), "Cola".to_string()];
    for &threads in &opt.threads {
        tch::set_num_threads(threads as i32);
        let probe = MatmulProbe::new(1024);
        let peak = probe.gflops(2 * iters.max(3));
        report.row(format!("fp32 matmul 1024², {threads} thr"), peak, "GFLOP/s");
        for arch in [ModelArch::D0, ModelArch::Lite0] {
            let mut det = Detector::fresh(
                arch,
                classes.clone(),
                &DetectorOptions {
                    device: DeviceChoice::Cpu,
                    threads: None,
                    fold_batchnorm: false,
                    nhwc_engine: false,
                    precision: Default::default(),
                },
            )?;
            let model_file = det.to_model_file()?;
            // Network milliseconds per image of the engine rows, by (precision, batch).
            let mut engine_ms = Vec::new();
            let s = det.input_size() as usize;
            let cfg = network_config(det.meta())?;
            let gflop = 2.0 * efficientdet_macs(&cfg, classes.len(), s, s) / 1e9;
            let opts = (Kind::Float, Device::Cpu);
            for variant in ["", " BN folded", " NHWC engine", " NHWC engine bf16"] {
                match variant {
                    " BN folded" => det.fold_batchnorm(),
                    " NHWC engine" => det.set_nhwc_engine(true)?,
                    " NHWC engine bf16" => {
                        det.set_precision(Precision::Bf16)?;
                        if let Some(note) = det.precision_note() {
                            report.notes.push(format!("bf16 rows: {note}"));
                        }
                    }
                    _ => {}
                }
                let label = format!("{arch}@{s} {threads} thr{variant}");
                // With several threads the engine also runs a batch with one image per
                // thread side by side.
                let mut batches = vec![1];
                if variant.starts_with(" NHWC engine") && threads > 1 {
                    batches.push(threads);
                }
                for batch in batches {
                    let label = if batch == 1 {
                        label.clone()
                    } else {
                        format!("{label}, batch {batch}")
                    };
                    let xs = Tensor::randn([batch as i64, 3, s as i64, s as i64], opts);
                    // A warm-up pass; then each pass is paired with a matmul timed right
                    // before it, so that the fraction of peak compares the two under the
                    // same load (this machine's speed drifts by ±20 % over minutes).
                    det.forward(&xs)?;
                    let (mut times, mut fractions) = (Vec::new(), Vec::new());
                    for _ in 0..iters {
                        let peak_now = probe.gflops(1);
                        let t = time(|| det.forward(&xs)).1 / batch as f64;
                        times.push(t);
                        fractions.push(gflop / t / peak_now);
                    }
                    let net = median(times);
                    if let Some(p) = variant.strip_prefix(" NHWC engine") {
                        let precision = if p.is_empty() { "fp32" } else { "bf16" };
                        engine_ms.push((precision, batch, net * 1e3));
                    }
                    let n_img = images.len().min(iters.max(3).max(batch));
                    let cfg = PredictConfig {
                        batch_size: batch,
                        ..PredictConfig::default()
                    };
                    let (_, e2e) = time(|| predict_files(&det, &images[..n_img], &cfg, &|_| {}));
                    let achieved = gflop / net;
                    report.row(format!("{label}: network"), net * 1e3, "ms/img");
                    report.row(
                        format!("{label}: end to end"),
                        e2e * 1e3 / n_img as f64,
                        "ms/img",
                    );
                    report.row(format!("{label}: achieved"), achieved, "GFLOP/s");
                    report.row(
                        format!("{label}: fraction of peak"),
                        100.0 * median(fractions),
                        "%",
                    );
                }
            }
            if let Some(python) = &opt.python {
                race(
                    &mut report,
                    python,
                    &model_file,
                    &format!("{arch}@{s} {threads} thr"),
                    threads,
                    &engine_ms,
                    iters,
                )?;
            }
            let note =
                format!("{arch}@{s}: {gflop:.2} GFLOP per image (analytic conv count, 2 classes).");
            if !report.notes.contains(&note) {
                report.notes.push(note);
            }
        }
    }
    if !opt.threads.is_empty() {
        let n_img = images.len().min(iters.max(3));
        report.notes.push(format!(
            "End to end = decode (EXIF-upright) + letterbox + network + sigmoid/decode/NMS over {n_img} images, batch 1 unless a row names a batch (then the engine runs one image per thread side by side); \
             network = median of {iters} forward passes on a fixed input. \
             Peak = libtorch fp32 1024² matmul at the same thread count; fraction of peak = median over the passes of achieved / peak, each pass paired with a matmul timed right before it."
        ));
    }
    if tch::Cuda::is_available() {
        gpu_rows(&mut report, iters)?;
    }
    Ok(report)
}

/// The runtime race rows of one architecture at one thread count: each contender's
/// network time at the batches the engine was timed at, and detlab's time over the
/// contender's at the same precision (OpenVINO bf16 against detlab bf16; the others
/// against detlab fp32).
fn race(
    report: &mut Report,
    python: &Path,
    model_file: &detlab::detector::checkpoint::ModelFile,
    label: &str,
    threads: usize,
    engine_ms: &[(&str, usize, f64)],
    iters: usize,
) -> anyhow::Result<()> {
    let dir = tempdir::Dir::new()?;
    let mut batches: Vec<usize> = engine_ms.iter().map(|e| e.1).collect();
    batches.sort_unstable();
    batches.dedup();
    for batch in batches {
        let onnx = export_for_race(model_file, batch as u32, dir.path())?;
        let label = if batch == 1 {
            label.to_string()
        } else {
            format!("{label}, batch {batch}")
        };
        for who in Contender::ALL {
            let ms = match time_in(python, &onnx, who, threads, batch as u32, iters)? {
                Ok(ms) => ms,
                Err(why) => {
                    let note = format!("{} rows left out: {why}", who.label());
                    if !report.notes.contains(&note) {
                        report.notes.push(note);
                    }
                    continue;
                }
            };
            report.row(format!("{label} {}: network", who.label()), ms, "ms/img");
            let ours = engine_ms
                .iter()
                .find(|e| e.0 == who.precision.to_string() && e.1 == batch);
            if let Some((precision, _, detlab_ms)) = ours {
                report.row(
                    format!("{label}: detlab {precision} / {}", who.label()),
                    detlab_ms / ms,
                    "× time",
                );
            }
        }
    }
    Ok(())
}

/// Images/s on CUDA at batch 1 and 16, fp32 and fp16 (unfolded; fp16 via the VarStore).
fn gpu_rows(report: &mut Report, iters: usize) -> anyhow::Result<()> {
    let classes = vec!["Sprite".to_string(), "Cola".to_string()];
    for arch in [ModelArch::D0, ModelArch::Lite0] {
        for half in [false, true] {
            let mut det = Detector::fresh(
                arch,
                classes.clone(),
                &DetectorOptions {
                    device: DeviceChoice::Cuda(0),
                    threads: None,
                    fold_batchnorm: false,
                    nhwc_engine: true,
                    precision: Default::default(),
                },
            )?;
            if half {
                det.set_kind(Kind::Half)?;
            }
            let s = det.input_size() as i64;
            for batch in [1i64, 16] {
                let xs = Tensor::randn([batch, 3, s, s], (Kind::Float, Device::Cpu))
                    .to_device(det.device());
                for _ in 0..3 {
                    det.forward(&xs)?;
                }
                tch::Cuda::synchronize(0);
                let secs = median(
                    (0..iters.max(5))
                        .map(|_| {
                            time(|| {
                                let out = det.forward(&xs);
                                tch::Cuda::synchronize(0);
                                out
                            })
                            .1
                        })
                        .collect(),
                );
                report.row(
                    format!(
                        "GPU {arch}@{s} batch {batch} {}",
                        if half { "fp16" } else { "fp32" }
                    ),
                    batch as f64 / secs,
                    "img/s",
                );
            }
        }
    }
    report
        .notes
        .push("GPU rows: network only, inputs already on the device.".into());
    Ok(())
}
