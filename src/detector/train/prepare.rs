//! One preparation of a training run, for every front end: a [`TrainRequest`] (what the
//! user asked for, with the recipe's defaults) → [`prepare`]: check the settings → load
//! the data → check it can train → fit the anchors → create the run folder and open
//! `metrics.jsonl` → a [`PreparedRun`] whose [`PreparedRun::run`] trains.
//!
//! `detlab train` and the app's Train page both build a [`TrainRequest`] and call
//! [`prepare`]; they differ only in how they show progress. Errors speak of settings
//! ([`PrepareError::setting`]), and each front end names its own control for them.
//!
//! ```no_run
//! use detlab::detector::train::{data::DataSource, prepare, CancelHandle, TrainRequest};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data = DataSource::from_path("shelf_photos".as_ref(), None);
//! let request = TrainRequest::new(data, "runs/shelf".into()); // the recipe
//! let run = prepare(&request)?;
//! let summary = run.run(&mut |e| println!("{e:?}"), &CancelHandle::new())?;
//! println!("best AP {:?}", summary.best);
//! # Ok(()) }
//! ```

use std::path::PathBuf;

use super::anchor_fit::{box_shapes, fit_ratios, FITTED_RATIOS};
use super::checkpoint::RESUME;
use super::config::{ConfigError, Setting, TrainConfig};
use super::data::{load_dataset, DataError, DataSource, ValSplit};
use super::events::{CancelHandle, MetricsLog, TrainEvent};
use super::init::Init;
use super::trainer::{train, TrainError, TrainJob, TrainSummary};

/// How a run's anchor aspect ratios are chosen.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum AnchorChoice {
    /// The architecture's reference ratios `(1,1), (1.4,0.7), (0.7,1.4)`.
    Reference,
    /// [`FITTED_RATIOS`] ratios fitted to the training boxes (the recipe: tall bottles get
    /// anchors of their shape).
    #[default]
    Fitted,
    /// These `(x, y)` multipliers.
    Ratios(Vec<(f64, f64)>),
}

/// What a front end asks of a training run. [`TrainRequest::new`] gives the recipe.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainRequest {
    /// The training images and labels.
    pub data: DataSource,
    /// A separate validation set; `None` holds out the settings' validation fraction of
    /// `data` (seeded by the settings' seed), or uses its `train/` and `val/` sub-folders.
    pub val: Option<DataSource>,
    /// The run folder: `metrics.jsonl`, `last` / `best` model files, resume files.
    pub out_dir: PathBuf,
    /// The starting weights.
    pub init: Init,
    /// Continue the run in `out_dir` from its last complete epoch.
    pub resume: bool,
    /// The anchor aspect ratios.
    pub anchors: AnchorChoice,
    /// Every other setting.
    pub config: TrainConfig,
}

impl TrainRequest {
    /// The recipe ([`TrainConfig::default`], fitted anchors, the default start) on `data`,
    /// writing into `out_dir`.
    pub fn new(data: DataSource, out_dir: PathBuf) -> Self {
        Self {
            data,
            val: None,
            out_dir,
            init: Init::default(),
            resume: false,
            anchors: AnchorChoice::default(),
            config: TrainConfig::default(),
        }
    }
}

/// A run ready to train: the job, and its open metrics log.
#[derive(Debug)]
pub struct PreparedRun {
    /// The settings (fitted anchors included), the data, the run folder, the start.
    pub job: TrainJob,
    /// `out_dir/metrics.jsonl`, opened for appending.
    pub metrics: MetricsLog,
    /// How many boxes the anchor ratios were fitted to, when they were.
    pub anchors_fitted_to: Option<usize>,
}

/// Why a run could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// A setting is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Resume was asked for, but the run folder has no resume file.
    #[error("{} has no {RESUME} to continue from (no epoch completed yet?)", .0.display())]
    NothingToResume(PathBuf),
    /// The data could not be loaded, or cannot train.
    #[error("loading the data: {0}")]
    Data(#[from] DataError),
    /// Fitting the anchors found no usable box.
    #[error("cannot fit the anchor ratios: no training box has a positive width and height")]
    NoBoxesToFit,
    /// The run folder could not be created.
    #[error("cannot create the run folder {}: {source}", path.display())]
    OutDir {
        /// The run folder.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// `metrics.jsonl` could not be opened.
    #[error("cannot open {}: {source}", path.display())]
    Metrics {
        /// The log file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
}

impl PrepareError {
    /// The setting to change, when a setting is at fault.
    pub fn setting(&self) -> Option<Setting> {
        match self {
            Self::Config(e) => Some(e.setting()),
            Self::NoBoxesToFit => Some(Setting::AnchorRatios),
            _ => None,
        }
    }
}

/// Checks the settings, loads and checks the data, fits the anchors, creates the run
/// folder and opens its metrics log.
pub fn prepare(request: &TrainRequest) -> Result<PreparedRun, PrepareError> {
    let mut config = request.config.clone();
    if request.val.is_some() {
        config.val_fraction = 0.0;
    }
    config.anchor_ratios = match &request.anchors {
        AnchorChoice::Ratios(r) => Some(r.clone()),
        AnchorChoice::Reference | AnchorChoice::Fitted => None,
    };
    config.validate()?;
    if request.resume && !request.out_dir.join(RESUME).is_file() {
        return Err(PrepareError::NothingToResume(request.out_dir.clone()));
    }
    let split = match &request.val {
        Some(v) => ValSplit::Source(v.clone()),
        None => ValSplit::Fraction {
            fraction: config.val_fraction,
            seed: config.seed,
        },
    };
    let data = load_dataset(&request.data, &split)?;
    data.check_trainable()?;
    let mut anchors_fitted_to = None;
    if request.anchors == AnchorChoice::Fitted {
        let shapes = box_shapes(&data.train);
        let ratios = fit_ratios(&shapes, FITTED_RATIOS).ok_or(PrepareError::NoBoxesToFit)?;
        config.anchor_ratios = Some(ratios);
        anchors_fitted_to = Some(shapes.len());
        config.validate()?;
    }
    let out_dir = request.out_dir.clone();
    std::fs::create_dir_all(&out_dir).map_err(|source| PrepareError::OutDir {
        path: out_dir.clone(),
        source,
    })?;
    let log_path = out_dir.join("metrics.jsonl");
    let metrics = MetricsLog::open(&log_path).map_err(|source| PrepareError::Metrics {
        path: log_path,
        source,
    })?;
    Ok(PreparedRun {
        job: TrainJob {
            config,
            data,
            out_dir,
            init: request.init.clone(),
            resume: request.resume,
        },
        metrics,
        anchors_fitted_to,
    })
}

impl PreparedRun {
    /// Trains, writing every event to `metrics.jsonl` before `sink` sees it. A failed
    /// write does not stop the run: it is reported once, as a `Warning` event.
    pub fn run(
        mut self,
        sink: &mut dyn FnMut(&TrainEvent),
        cancel: &CancelHandle,
    ) -> Result<TrainSummary, TrainError> {
        let mut log_failed = false;
        let metrics = &mut self.metrics;
        train(
            &self.job,
            &mut |e| {
                if let Err(err) = metrics.write(e) {
                    if !log_failed {
                        log_failed = true;
                        sink(&TrainEvent::Warning {
                            epoch: 0,
                            step: 0,
                            message: format!("could not write {}: {err}", metrics.path().display()),
                        });
                    }
                }
                sink(e);
            },
            cancel,
        )
    }
}
