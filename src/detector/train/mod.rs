//! Fine-tuning EfficientDet: data loading and augmentation, anchor assignment, focal and
//! box losses, the optimiser and schedule, validation with the COCO evaluator,
//! checkpoints and resume, and a stream of typed events.
//!
//! Front ends start a run through [`prepare()`] (a [`TrainRequest`] whose defaults are the
//! recipe of `models/README.md`); [`train`] runs an already prepared [`TrainJob`].
//!
//! ```no_run
//! use detlab::detector::train::{data, train, CancelHandle, Init, TrainConfig, TrainJob};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let source = data::DataSource::from_path("shelf_photos".as_ref(), None);
//! let split = data::ValSplit::Fraction { fraction: 0.1, seed: 0 };
//! let job = TrainJob {
//!     config: TrainConfig::default(),
//!     data: data::load_dataset(&source, &split)?,
//!     out_dir: "runs/shelf".into(),
//!     init: Init::Default,
//!     resume: false,
//! };
//! let summary = train(&job, &mut |e| println!("{e:?}"), &CancelHandle::new())?;
//! println!("best AP {:?}", summary.best);
//! # Ok(()) }
//! ```

pub mod anchor_fit;
pub mod assign;
pub mod augment;
pub mod autocast;
pub mod bn_warmup;
pub mod checkpoint;
pub mod config;
pub mod cross_val;
pub mod cross_val_run;
pub mod cv_progress;
pub mod cv_table;
pub mod data;
pub mod ema;
pub mod events;
pub mod flat;
pub mod grad_scaler;
pub mod init;
pub mod loss;
pub mod loss_preset;
pub mod optimizer;
pub mod prepare;
pub mod schedule;
pub mod tile_crop;
pub mod trainer;
pub mod validate;

pub use config::{
    AugmentConfig, ConfigError, DeviceChoice, EarlyStopping, LossPreset, OptimizerKind, Setting,
    TrainConfig,
};
pub use cross_val_run::{run_cross_validation, CvError, CvEvent, CvOptions, CvOutcome, CvStage};
pub use events::{CancelHandle, CheckpointKind, ClassAp, MetricsLog, TrainEvent, ValMetrics};
pub use init::Init;
pub use prepare::{
    prepare, prepare_loaded, small_set_rule, AnchorChoice, NoResumePoint, PrepareError,
    PreparedRun, SmallSetSettings, TrainRequest, SMALL_SET_IMAGES,
};
pub use trainer::{load_trained, resolve_device, train, TrainError, TrainJob, TrainSummary};
