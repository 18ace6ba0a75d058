//! Reviewing a model's predictions (pure library: no tch, no egui).
//!
//! The review model, from network to decisions:
//!
//! 1. **Candidates cache** ([`cache`]): running the model once per image keeps every
//!    pre-NMS candidate above a low score floor; they are stored per image under
//!    `<labels_dir>/.detlab/candidates/<model id>/`, keyed by a hash of the model file and
//!    stamped with the image's size and modification time, so reopening a folder with the
//!    same model and unchanged images never runs the network again.
//! 2. **Re-filtering** ([`CachedPrediction::reselect`]): the score and NMS-IoU sliders
//!    and the class-agnostic toggle re-run only [`Candidates::select`] and the mapping to
//!    original-image pixels, in milliseconds.
//! 3. **States** ([`pending`]): each prediction is decided (accepted, rejected, fixed),
//!    already covered by a label of its class, or pending.
//! 4. **Decisions log** ([`decisions`]): verdicts are saved in
//!    `<labels_dir>/.detlab/review.json`, so review state survives restarts and a
//!    prediction that comes back when the model runs again is recognised as decided.
//!
//! Beside that, [`disagreement`] ranks labelled images where predictions and labels
//! disagree (missed, extra, wrong class, loose box), and [`crate::eval::evaluate_images`] scores predictions
//! against labels with the pycocotools-exact evaluator, and [`review_cost`] counts what
//! a model's predictions would cost a reviewer on an image whose labels are known.
//!
//! Everything lives in the sidecar folder `.detlab/` beside the label files; the VOC (or
//! other) label files themselves never carry review state.
//!
//! [`Candidates::select`]: crate::detector::maths::postprocess::Candidates::select

pub mod cache;
pub mod decisions;
pub mod disagreement;
mod model_id;
pub mod pending;
pub mod review_cost;

pub use cache::{CacheError, CachedPrediction, CandidateCache, ImageStamp};
pub use decisions::{Decision, ReviewLog, ReviewLogError, Verdict};
pub use disagreement::{compare, rank, DisagreementKind, ImageDisagreement, MatchSettings};
pub use model_id::ModelId;
pub use pending::{classify, matches_label, PredictionState};
pub use review_cost::{review_actions, NamedBox, ReviewTally};

/// The sidecar folder beside the labels that holds detlab's review state.
pub const SIDECAR_DIR: &str = ".detlab";
