//! One preparation of a training run, for every front end: a [`TrainRequest`] (what the
//! user asked for, with the recipe's defaults) → [`prepare`]: check the settings → check
//! the run folder (never replace a run unless asked to) → load the data and set unreadable
//! images aside → check it can train → fit the anchors → create the run folder and open
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

use std::path::{Path, PathBuf};

use super::anchor_fit::{box_shapes, fit_ratios, FITTED_RATIOS};
use super::checkpoint::{METRICS, RESUME, RESUME_JSON, RUN_FILES};
use super::config::{one_value_batchnorm, ConfigError, Setting, TrainConfig, ONE_PIXEL_P7};
use super::data::{load_dataset, DataError, DataSource, Dataset, ValSplit};
use super::events::{CancelHandle, MetricsLog, TrainEvent};
use super::init::Init;
use super::trainer::{train, TrainError, TrainJob, TrainSummary};
use crate::detector::checkpoint::ModelArch;

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
    /// Start afresh in an `out_dir` that already holds a run, replacing its files (model,
    /// resume and log files); without it (and without `resume`), such a folder is refused
    /// ([`PrepareError::RunExists`]). Ignored when resuming.
    pub overwrite: bool,
    /// The anchor aspect ratios.
    pub anchors: AnchorChoice,
    /// Every other setting.
    pub config: TrainConfig,
    /// Adapt the recipe to a small training set ([`small_set_rule`]): on by default.
    pub small_set_rule: bool,
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
            overwrite: false,
            anchors: AnchorChoice::default(),
            config: TrainConfig::default(),
            small_set_rule: true,
        }
    }
}

/// Training sets with fewer images than this get the small-set settings
/// ([`small_set_rule`]).
pub const SMALL_SET_IMAGES: usize = 100;
/// The batch size of a small set's run.
pub const SMALL_SET_BATCH: usize = 4;
/// The learning rate of a small set's run, whose backbone stays frozen, against the
/// recipe's.
pub const SMALL_SET_LR_FACTOR: f64 = 3.0;

/// What the small-set rule changed.
#[derive(Clone, Debug, PartialEq)]
pub struct SmallSetSettings {
    /// The training images.
    pub train_images: usize,
    /// The batch size, when changed.
    pub batch_size: Option<usize>,
    /// Whether the backbone now stays frozen for the whole run.
    pub frozen_backbone: bool,
    /// The peak learning rate, when changed.
    pub lr: Option<f64>,
}

impl std::fmt::Display for SmallSetSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(b) = self.batch_size {
            parts.push(format!("batch {b}"));
        }
        if self.frozen_backbone {
            parts.push("the pretrained backbone frozen for the whole run".to_string());
        }
        if let Some(lr) = self.lr {
            parts.push(format!("learning rate {lr:e}"));
        }
        write!(
            f,
            "small training set ({} images, under {SMALL_SET_IMAGES}): {}",
            self.train_images,
            parts.join(", ")
        )
    }
}

/// The recipe adapted to a training set of fewer than [`SMALL_SET_IMAGES`] images; only
/// settings still at the recipe's value change (a setting the user chose is kept).
///
/// The recipe was made on 444 images: 56 steps an epoch, 1,848 in 33 epochs. A 35-image
/// set (the 40-image demo less its validation images) gets 5 steps an epoch and 165 in
/// all, and ends under-trained: its training loss stops falling only because the cosine
/// schedule has run out (issue 18). For such a set the rule makes each step cheaper and
/// each epoch longer in steps, within the same number of images seen:
/// - batch [`SMALL_SET_BATCH`] instead of 8: twice the optimiser steps per epoch;
/// - a Lite0 run from the ImageNet backbone keeps the backbone frozen for the whole run
///   (the classic small-data transfer: too few images to retrain it, and a step without
///   the backbone's backward pass costs 2.5 times less on the CPU), so only the new BiFPN
///   and heads train, at [`SMALL_SET_LR_FACTOR`] times the recipe's learning rate (which
///   was set for fine-tuning the whole pretrained network).
///
/// Only runs from the default start (new BiFPN and heads) change: larger sets, resumed
/// runs and fine-tunes of other weights (a trained model, or a fresh network) are left as
/// they are.
pub fn small_set_rule(
    config: &mut TrainConfig,
    init: &Init,
    train_images: usize,
) -> Option<SmallSetSettings> {
    if train_images >= SMALL_SET_IMAGES || *init != Init::Default {
        return None;
    }
    let recipe = TrainConfig::for_arch(config.arch);
    let mut changed = SmallSetSettings {
        train_images,
        batch_size: None,
        frozen_backbone: false,
        lr: None,
    };
    if config.batch_size == recipe.batch_size && SMALL_SET_BATCH < recipe.batch_size {
        config.batch_size = SMALL_SET_BATCH;
        changed.batch_size = Some(SMALL_SET_BATCH);
    }
    let pretrained_backbone = config.arch == ModelArch::Lite0;
    if pretrained_backbone && config.freeze_backbone_epochs == recipe.freeze_backbone_epochs {
        config.freeze_backbone_epochs = config.epochs;
        changed.frozen_backbone = true;
        if config.lr == recipe.lr {
            config.lr = recipe.lr * SMALL_SET_LR_FACTOR;
            changed.lr = Some(config.lr);
        }
    }
    (changed.batch_size.is_some() || changed.frozen_backbone).then_some(changed)
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
    /// The files of an earlier run that were removed (an overwrite).
    pub replaced: Vec<PathBuf>,
    /// What [`small_set_rule`] changed, if anything.
    pub small_set: Option<SmallSetSettings>,
    /// Training on whole photos whose boxes shrink too much: tiles are suggested.
    pub tile_hint: Option<super::tile_crop::TileHint>,
}

/// Why a run folder has nothing to resume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoResumePoint {
    /// The folder does not exist.
    NoFolder,
    /// No epoch of the run in it completed (a run can be continued after its first).
    NoEpochCompleted,
    /// Its log reports complete epochs, but the resume file is gone (deleted or moved,
    /// or the run was made by a detlab that reported an epoch before saving it).
    Missing {
        /// The last complete epoch the log reports.
        epochs_logged: usize,
    },
}

impl std::fmt::Display for NoResumePoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoFolder => f.write_str("the folder does not exist"),
            Self::NoEpochCompleted => f.write_str(
                "no epoch of its run completed (a run can be continued once its first epoch is done); start it again, overwriting it",
            ),
            Self::Missing { epochs_logged } => write!(
                f,
                "{METRICS} reports {epochs_logged} complete epoch(s), but {RESUME} is missing (deleted or moved?); the run cannot continue: start it again, overwriting it"
            ),
        }
    }
}

/// Why a run could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// A setting is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Resume was asked for, but the run folder has no resume file.
    #[error("nothing to continue in {}: {why}", path.display())]
    NothingToResume {
        /// The run folder.
        path: PathBuf,
        /// Why.
        why: NoResumePoint,
    },
    /// The run folder already holds a run, and neither resume nor overwrite was asked for.
    #[error("the run folder {} already holds a run ({}; {}): resume it, overwrite it, or choose another run folder", path.display(), files.join(", "), match epochs_completed {
        Some(n) => format!("{n} epoch(s) complete"),
        None => "no epoch complete".to_string(),
    })]
    RunExists {
        /// The run folder.
        path: PathBuf,
        /// The run files in it.
        files: Vec<String>,
        /// The epochs its resume file says are complete, if it has one.
        epochs_completed: Option<usize>,
    },
    /// A file of the run being overwritten could not be removed.
    #[error("cannot remove {} (overwriting the run): {source}", path.display())]
    Overwrite {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
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

/// Checks the settings and the run folder (resume needs a resume point; a folder that
/// already holds a run is refused unless resuming or overwriting), loads the data and
/// sets unreadable images aside ([`super::data::Dataset::drop_unreadable`]), checks it can
/// train, fits the anchors, creates the run folder (removing the old run's files when
/// overwriting) and opens its metrics log.
pub fn prepare(request: &TrainRequest) -> Result<PreparedRun, PrepareError> {
    prepare_with(request, None)
}

/// [`prepare`] on data already loaded and split (`request.data`, `request.val` and the
/// validation fraction are not read): the folds of a cross-validation, each a training
/// set and a held-out set of one pool of images.
pub fn prepare_loaded(request: &TrainRequest, data: Dataset) -> Result<PreparedRun, PrepareError> {
    prepare_with(request, Some(data))
}

fn prepare_with(
    request: &TrainRequest,
    loaded: Option<Dataset>,
) -> Result<PreparedRun, PrepareError> {
    let mut config = request.config.clone();
    if request.val.is_some() {
        config.val_fraction = 0.0;
    }
    config.anchor_ratios = match &request.anchors {
        AnchorChoice::Ratios(r) => Some(r.clone()),
        AnchorChoice::Reference | AnchorChoice::Fitted => None,
    };
    config.validate()?;
    let out_dir = request.out_dir.clone();
    let existing = existing_run_files(&out_dir);
    if request.resume {
        if !out_dir.join(RESUME).is_file() {
            let why = if !out_dir.is_dir() {
                NoResumePoint::NoFolder
            } else {
                match epochs_logged(&out_dir) {
                    0 => NoResumePoint::NoEpochCompleted,
                    n => NoResumePoint::Missing { epochs_logged: n },
                }
            };
            return Err(PrepareError::NothingToResume { path: out_dir, why });
        }
    } else if !request.overwrite && !existing.is_empty() {
        let epochs_completed = resume_epochs(&out_dir);
        return Err(PrepareError::RunExists {
            path: out_dir,
            files: existing,
            epochs_completed,
        });
    }
    let mut data = match loaded {
        Some(data) => data,
        None => {
            let split = match &request.val {
                Some(v) => ValSplit::Source(v.clone()),
                None => ValSplit::Fraction {
                    fraction: config.val_fraction,
                    seed: config.seed,
                },
            };
            load_dataset(&request.data, &split)?
        }
    };
    data.drop_unreadable();
    data.check_trainable()?;
    if data.train.len() == 1 && config.input_size <= ONE_PIXEL_P7 {
        return Err(ConfigError::invalid(
            Setting::BatchSize,
            one_value_batchnorm("one training image"),
        )
        .into());
    }
    let small_set = if request.small_set_rule && !request.resume {
        small_set_rule(&mut config, &request.init, data.train.len())
    } else {
        None
    };
    config.validate()?;
    let mut anchors_fitted_to = None;
    if request.anchors == AnchorChoice::Fitted {
        let shapes = box_shapes(&data.train);
        let ratios = fit_ratios(&shapes, FITTED_RATIOS).ok_or(PrepareError::NoBoxesToFit)?;
        config.anchor_ratios = Some(ratios);
        anchors_fitted_to = Some(shapes.len());
        config.validate()?;
    }
    let tile_hint = match config.tile {
        None => super::tile_crop::tile_hint(&data.train, config.input_size),
        Some(_) => None,
    };
    std::fs::create_dir_all(&out_dir).map_err(|source| PrepareError::OutDir {
        path: out_dir.clone(),
        source,
    })?;
    // Replaced only now, once the new run is known to be able to start.
    let mut replaced = Vec::new();
    if !request.resume && request.overwrite {
        for name in &existing {
            let path = out_dir.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => replaced.push(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(PrepareError::Overwrite { path, source }),
            }
        }
    }
    let log_path = out_dir.join(METRICS);
    if !request.resume && !existing.iter().any(|f| f == METRICS) {
        // A log without a complete epoch: the new run's starts afresh.
        let _ = std::fs::remove_file(&log_path);
    }
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
        replaced,
        small_set,
        tile_hint,
    })
}

/// The run files in `dir` that hold something: any model or resume file, and a
/// `metrics.jsonl` that logs a complete epoch (one without is what a run that failed to
/// start, or was stopped in its first epoch, leaves: nothing to resume or keep).
fn existing_run_files(dir: &Path) -> Vec<String> {
    RUN_FILES
        .iter()
        .filter(|name| match **name {
            METRICS => epochs_logged(dir) > 0,
            _ => std::fs::symlink_metadata(dir.join(name)).is_ok(),
        })
        .map(|name| name.to_string())
        .collect()
}

/// The complete epochs `dir`'s resume file records, if it can be read.
fn resume_epochs(dir: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(dir.join(RESUME_JSON)).ok()?;
    let state: serde_json::Value = serde_json::from_str(&text).ok()?;
    state["epochs_completed"].as_u64().map(|n| n as usize)
}

/// The last complete epoch `dir/metrics.jsonl` reports (0 for none; lines that do not
/// parse, such as one cut by a kill, are passed over).
fn epochs_logged(dir: &Path) -> usize {
    let Ok(text) = std::fs::read_to_string(dir.join(METRICS)) else {
        return 0;
    };
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v["event"] == "epoch")
        .filter_map(|v| v["epoch"].as_u64())
        .max()
        .unwrap_or(0) as usize
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
