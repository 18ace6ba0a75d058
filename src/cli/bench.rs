//! `detlab bench`: the benchmarks recorded in BENCHMARKS.md.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub which: Bench,
    /// Python with the reference tools (default: $DETLAB_PYTHON).
    #[arg(long, global = true)]
    pub python: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Bench {
    /// COCO export of N synthetic VOC files vs a single-threaded Python conversion.
    Export {
        #[arg(long, default_value_t = 100_000)]
        files: usize,
    },
    /// Labelling-app responsiveness: 10,000-image folder, 12 MP photos, 2,000 boxes.
    Gui,
    /// The crop gallery with 5,000 crops: reading and grouping them, and the frame time.
    Gallery,
    /// EfficientDet D0@512 and Lite0@320 inference latency and fraction of matmul peak, in
    /// fp32 and bf16, raced against ONNX Runtime and OpenVINO on the same network (with
    /// --python or $DETLAB_PYTHON).
    Detector {
        /// Comma-separated CPU thread counts (each from 1 to four per CPU thread).
        #[arg(long, value_delimiter = ',', default_value = "1,2", value_parser = super::detect_args::parse_threads)]
        threads: Vec<usize>,
        /// Images for the end-to-end timing (default: ../shared/datasets/cola-sprite/val).
        #[arg(long)]
        images: Option<PathBuf>,
        /// Timed repetitions per measurement.
        #[arg(long, default_value_t = 5)]
        iterations: usize,
        /// Only the CUDA rows (fails without a GPU).
        #[arg(long)]
        gpu_only: bool,
    },
    /// Review sliders: re-filtering 20,000 cached candidates, and loading one cache file.
    Review,
    /// Human actions per labelled box: a simulated labeller labels a labelled folder from
    /// zero through the app's commands (with and without the assistants), against
    /// LabelImg's manual count.
    Labelling {
        /// The labelled folder (its labels are the oracle; the app never sees them).
        #[arg(long)]
        images: PathBuf,
        /// Where the oracle's label files are (default: beside the images).
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Review model (default: the shipped model).
        #[arg(long, conflicts_with_all = ["no_model", "from_scratch"])]
        model: Option<PathBuf>,
        /// No model: the assistants work from the pixels alone.
        #[arg(long, conflicts_with = "from_scratch")]
        no_model: bool,
        /// No model at first: the app trains one after the first --retrain-every images
        /// (default 50) and keeps retraining it.
        #[arg(long)]
        from_scratch: bool,
        /// Retrain the model in the background after every N labelled images, as the
        /// Review panel's "Retrain every N" does (0: never).
        #[arg(long, value_name = "N")]
        retrain_every: Option<usize>,
        /// Where retraining computes (auto, cpu, cuda, cuda:N).
        #[arg(long, default_value = "auto")]
        device: detlab::detector::train::DeviceChoice,
        /// Only the run with the assistants (skip the review-only comparison).
        #[arg(long)]
        assistants_only: bool,
        /// The Review panel's test-time augmentation for the model's predictions
        /// [default: the panel's "auto": off until the flip measures cheaper on the
        /// images labelled so far].
        #[arg(long, value_enum)]
        tta: Option<super::predict::TtaChoice>,
        /// The Review panel's score threshold (predictions shown for review).
        #[arg(long, default_value_t = detlab::app::settings::Settings::default().review_score)]
        score: f32,
        /// The hold-out AP a folder's first model needs before it is shown (the app's
        /// bar; 0: any first model is shown).
        #[arg(long, value_name = "AP", default_value_t = detlab::app::auto_retrain::MIN_FIRST_MODEL_AP)]
        first_model_ap: f64,
        /// Newly labelled images a retrained model's trial waits for before it may be
        /// shown [default: the app's, a fifth of --retrain-every, at least 3]; 0: no
        /// trial, a model that beats the hold-out is shown at once.
        #[arg(long, value_name = "N")]
        trial_images: Option<usize>,
        /// Write both runs' reports here as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let python = args
        .python
        .or_else(|| std::env::var_os("DETLAB_PYTHON").map(PathBuf::from))
        .filter(|p| !p.as_os_str().is_empty());
    let report = match args.which {
        Bench::Export { files } => crate::bench::export::run(files, python.as_deref())?,
        Bench::Gui => crate::bench::gui::run()?,
        Bench::Gallery => crate::bench::gallery::run()?,
        Bench::Review => crate::bench::review::run()?,
        Bench::Labelling {
            images,
            labels,
            model,
            no_model,
            from_scratch,
            retrain_every,
            device,
            assistants_only,
            tta,
            score,
            first_model_ap,
            trial_images,
            json,
        } => crate::bench::labelling::run(&crate::bench::labelling::LabellingBenchOptions {
            images,
            labels,
            model: if no_model || from_scratch {
                None
            } else {
                model.or_else(detlab::detector::inference::default_model_path)
            },
            retrain_every: retrain_every.unwrap_or(if from_scratch { 50 } else { 0 }),
            device,
            assistants_only,
            tta: tta.map(|t| t.tta()),
            review_score: score,
            first_model_min_ap: first_model_ap,
            trial_images,
            json,
        })?,
        Bench::Detector {
            threads,
            images,
            iterations,
            gpu_only,
        } => crate::bench::detector::run(&crate::bench::detector::DetectorBenchOptions {
            threads: if gpu_only { Vec::new() } else { threads },
            images,
            iterations,
            require_gpu: gpu_only,
            python,
        })?,
    };
    println!("{}", report.markdown());
    Ok(())
}
