//! What the reviewer decided about each prediction, persisted in
//! `<labels_dir>/.detlab/review.json` so that review state survives restarts.
//!
//! The file is versioned JSON, written atomically:
//!
//! ```json
//! { "version": 1,
//!   "images": { "sub/a.jpg": [ { "model": "0123456789abcdef", "class_name": "cola",
//!       "predicted": [10.0, 12.0, 110.0, 230.0], "score": 0.87, "verdict": "fixed",
//!       "label": [11.0, 12.0, 108.0, 231.0], "label_class": "cola" } ] } }
//! ```
//!
//! Image keys are paths relative to the image root with `/` separators. A prediction that
//! comes back when the same model runs again is recognised by [`ReviewLog::find`] (same
//! model, same class, predicted boxes with IoU ≥ [`SAME_PREDICTION_IOU`]); a label box that
//! came from a prediction is traced back by [`ReviewLog::provenance`].

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::dataset::LabelBox;
use crate::geometry::BoxXyxy;

/// The file version this code writes and reads.
pub const REVIEW_LOG_VERSION: u64 = 1;

/// Two predictions of the same model and class are the same one when their boxes overlap
/// at least this much.
pub const SAME_PREDICTION_IOU: f64 = 0.9;

/// A label box is the one a decision produced when every corner is within this many
/// pixels of the decision's `label`.
pub const PROVENANCE_TOLERANCE_PX: f64 = 0.5;

/// The reviewer's verdict on one prediction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Taken as a label unchanged.
    Accepted,
    /// Discarded: the prediction is wrong.
    Rejected,
    /// Taken as a label after moving its box or changing its class.
    Fixed,
}

/// One decision about one prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The [`super::ModelId`] of the model that made the prediction.
    pub model: String,
    /// The predicted class.
    pub class_name: String,
    /// The predicted box, `[x1, y1, x2, y2]` in original-image pixels.
    pub predicted: [f64; 4],
    /// The predicted score.
    pub score: f32,
    pub verdict: Verdict,
    /// The label box the prediction became (accepted or fixed), `[x1, y1, x2, y2]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<[f64; 4]>,
    /// The class of that label box, when it differs from or confirms `class_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_class: Option<String>,
}

impl Decision {
    /// The predicted box.
    pub fn predicted_box(&self) -> BoxXyxy {
        let [x1, y1, x2, y2] = self.predicted;
        BoxXyxy::new(x1, y1, x2, y2)
    }

    /// The label box it became, if any.
    pub fn label_box(&self) -> Option<BoxXyxy> {
        self.label
            .map(|[x1, y1, x2, y2]| BoxXyxy::new(x1, y1, x2, y2))
    }

    fn is_finite(&self) -> bool {
        self.score.is_finite()
            && self.predicted.iter().all(|v| v.is_finite())
            && self.label.is_none_or(|l| l.iter().all(|v| v.is_finite()))
    }

    /// Whether this decision is about a prediction of `model` and `class_name` at `bbox`
    /// (IoU ≥ [`SAME_PREDICTION_IOU`]); returns the IoU when it is.
    fn same_prediction(&self, model: &str, class_name: &str, bbox: &BoxXyxy) -> Option<f64> {
        if self.model != model || self.class_name != class_name {
            return None;
        }
        let iou = self.predicted_box().iou(bbox);
        (iou >= SAME_PREDICTION_IOU).then_some(iou)
    }
}

/// `[x1, y1, x2, y2]` of a box, as stored in a [`Decision`].
pub fn box_array(b: &BoxXyxy) -> [f64; 4] {
    [b.x1, b.y1, b.x2, b.y2]
}

/// A review log that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReviewLogError {
    #[error("cannot read review log {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write review log {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("review log {} is corrupt ({reason}); fix or move it away", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "review log {} has version {found}, but this detlab reads version {supported}; \
         it was written by a newer detlab",
        path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error("a decision on {image} has a non-finite score or coordinate")]
    NonFinite { image: String },
}

/// The file's shape when writing.
#[derive(Serialize)]
struct FileOut<'a> {
    version: u64,
    images: &'a BTreeMap<String, Vec<Decision>>,
}

/// The file's shape when reading (after the version check).
#[derive(Deserialize)]
struct FileIn {
    images: BTreeMap<String, Vec<Decision>>,
}

/// Just the version, read first so a newer file is reported as such.
#[derive(Deserialize)]
struct VersionProbe {
    version: Option<serde_json::Value>,
}

/// Every decision on every image of one dataset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReviewLog {
    images: BTreeMap<String, Vec<Decision>>,
}

impl ReviewLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the log of the labels in `labels_dir` lives: `<labels_dir>/.detlab/review.json`.
    pub fn path(labels_dir: &Path) -> PathBuf {
        labels_dir.join(super::SIDECAR_DIR).join("review.json")
    }

    /// The key of an image path relative to the image root: its normal components joined
    /// with `/` (`.` and `..` components are dropped; non-UTF-8 names are converted lossily).
    pub fn image_key(image_rel: &Path) -> String {
        image_rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Reads the log of `labels_dir`; an empty log when there is no file yet.
    ///
    /// # Errors
    /// Naming the file: [`ReviewLogError::Read`], [`ReviewLogError::Corrupt`] and
    /// [`ReviewLogError::UnsupportedVersion`]. The app must then warn and not save over
    /// the file.
    pub fn load(labels_dir: &Path) -> Result<Self, ReviewLogError> {
        let path = Self::path(labels_dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::new()),
            Err(source) => return Err(ReviewLogError::Read { path, source }),
        };
        Self::from_json(&bytes).map_err(|e| match e {
            ParseError::Corrupt(reason) => ReviewLogError::Corrupt { path, reason },
            ParseError::Version(found) => ReviewLogError::UnsupportedVersion {
                path,
                found,
                supported: REVIEW_LOG_VERSION,
            },
        })
    }

    fn from_json(bytes: &[u8]) -> Result<Self, ParseError> {
        let probe: VersionProbe =
            serde_json::from_slice(bytes).map_err(|e| ParseError::Corrupt(e.to_string()))?;
        match probe.version {
            None => return Err(ParseError::Corrupt("no \"version\" field".into())),
            Some(v) => match v.as_u64() {
                Some(REVIEW_LOG_VERSION) => {}
                Some(found) => return Err(ParseError::Version(found)),
                None => return Err(ParseError::Corrupt(format!("\"version\" is {v}"))),
            },
        }
        let file: FileIn =
            serde_json::from_slice(bytes).map_err(|e| ParseError::Corrupt(e.to_string()))?;
        Ok(Self {
            images: file.images,
        })
    }

    /// Writes the log atomically to [`ReviewLog::path`], creating `.detlab/` if needed.
    pub fn save(&self, labels_dir: &Path) -> Result<(), ReviewLogError> {
        let path = Self::path(labels_dir);
        let write_err = |source| ReviewLogError::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_err)?;
        }
        let mut json = serde_json::to_vec_pretty(&FileOut {
            version: REVIEW_LOG_VERSION,
            images: &self.images,
        })
        .map_err(|e| write_err(io::Error::other(e)))?;
        json.push(b'\n');
        write_atomic(&path, &json).map_err(write_err)
    }

    /// Records a decision on `image_rel`. A decision on the same prediction (what
    /// [`ReviewLog::find`] would return for it) is replaced, so the latest verdict wins.
    ///
    /// # Errors
    /// [`ReviewLogError::NonFinite`] for a NaN or infinite score or coordinate (JSON
    /// cannot hold them); the log is unchanged.
    pub fn record(&mut self, image_rel: &Path, decision: Decision) -> Result<(), ReviewLogError> {
        let key = Self::image_key(image_rel);
        if !decision.is_finite() {
            return Err(ReviewLogError::NonFinite { image: key });
        }
        let list = self.images.entry(key).or_default();
        let (model, class, bbox) = (
            decision.model.clone(),
            decision.class_name.clone(),
            decision.predicted_box(),
        );
        match best_match(list, &model, &class, &bbox) {
            Some(i) => list[i] = decision,
            None => list.push(decision),
        }
        Ok(())
    }

    /// Removes and returns the decision [`ReviewLog::find`] would return (to undo it).
    pub fn remove(
        &mut self,
        image_rel: &Path,
        model: &str,
        class_name: &str,
        bbox: &BoxXyxy,
    ) -> Option<Decision> {
        let key = Self::image_key(image_rel);
        let list = self.images.get_mut(&key)?;
        let i = best_match(list, model, class_name, bbox)?;
        let d = list.remove(i);
        if list.is_empty() {
            self.images.remove(&key);
        }
        Some(d)
    }

    /// The decisions on `image_rel`, in the order they were first made.
    pub fn decisions(&self, image_rel: &Path) -> &[Decision] {
        self.images
            .get(&Self::image_key(image_rel))
            .map_or(&[], Vec::as_slice)
    }

    /// The decision on a prediction of `model` and `class_name` at `bbox` (original-image
    /// pixels): the one of that model and class whose predicted box overlaps `bbox` most,
    /// if that IoU is ≥ [`SAME_PREDICTION_IOU`].
    pub fn find(
        &self,
        image_rel: &Path,
        model: &str,
        class_name: &str,
        bbox: &BoxXyxy,
    ) -> Option<&Decision> {
        let list = self.decisions(image_rel);
        best_match(list, model, class_name, bbox).map(|i| &list[i])
    }

    /// The accepted or fixed decision that produced `label`: its `label` box is within
    /// [`PROVENANCE_TOLERANCE_PX`] of `label.bbox` on every coordinate and its class
    /// (`label_class`, else `class_name`) is `label.class_name`.
    pub fn provenance(&self, image_rel: &Path, label: &LabelBox) -> Option<&Decision> {
        let target = box_array(&label.bbox);
        self.decisions(image_rel).iter().find(|d| {
            d.verdict != Verdict::Rejected
                && d.label_class.as_deref().unwrap_or(&d.class_name) == label.class_name
                && d.label.is_some_and(|l| {
                    l.iter()
                        .zip(&target)
                        .all(|(a, b)| (a - b).abs() <= PROVENANCE_TOLERANCE_PX)
                })
        })
    }

    /// Every image with decisions, by key, with its decisions.
    pub fn images(&self) -> impl Iterator<Item = (&str, &[Decision])> {
        self.images.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Whether there are no decisions at all.
    pub fn is_empty(&self) -> bool {
        self.images.values().all(Vec::is_empty)
    }

    /// Three-way merge per decision, for two writers of one log (two windows, two
    /// labellers on a shared folder): `base` is the log as this writer last read or wrote
    /// it, `ours` its log now, `theirs` the file now. A decision (one prediction, as
    /// [`ReviewLog::find`] recognises it) made or changed on one side only takes that
    /// side; removed (undone) on one side and unchanged on the other, it is removed;
    /// changed on both sides, ours wins (the latest verdict here). Nobody's decisions are
    /// lost to the other's save.
    pub fn merge(base: &Self, ours: &Self, theirs: &Self) -> Self {
        let empty: &[Decision] = &[];
        let find = |list: &[Decision], d: &Decision| -> Option<usize> {
            best_match(list, &d.model, &d.class_name, &d.predicted_box())
        };
        let mut images = BTreeMap::new();
        let keys: std::collections::BTreeSet<&String> =
            ours.images.keys().chain(theirs.images.keys()).collect();
        for key in keys {
            let b = base.images.get(key).map_or(empty, Vec::as_slice);
            let o = ours.images.get(key).map_or(empty, Vec::as_slice);
            let t = theirs.images.get(key).map_or(empty, Vec::as_slice);
            let mut list: Vec<Decision> = Vec::new();
            let mut theirs_used = vec![false; t.len()];
            for d in o {
                let in_base = find(b, d).map(|i| &b[i]);
                match find(t, d) {
                    Some(j) => {
                        theirs_used[j] = true;
                        // Changed by them only: theirs; else ours.
                        let pick = if in_base == Some(d) && t[j] != *d {
                            &t[j]
                        } else {
                            d
                        };
                        list.push(pick.clone());
                    }
                    // Removed by them: gone, unless changed here since.
                    None if in_base == Some(d) => {}
                    None => list.push(d.clone()),
                }
            }
            for (j, td) in t.iter().enumerate() {
                if theirs_used[j] || find(o, td).is_some() {
                    continue;
                }
                // Removed here (undone): gone, unless they changed it since.
                let in_base = find(b, td).map(|i| &b[i]);
                if in_base != Some(td) {
                    list.push(td.clone());
                }
            }
            if !list.is_empty() {
                images.insert(key.clone(), list);
            }
        }
        Self { images }
    }
}

/// Index of the decision in `list` about the prediction (`model`, `class_name`, `bbox`).
fn best_match(list: &[Decision], model: &str, class_name: &str, bbox: &BoxXyxy) -> Option<usize> {
    list.iter()
        .enumerate()
        .filter_map(|(i, d)| {
            d.same_prediction(model, class_name, bbox)
                .map(|iou| (i, iou))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(i, _)| i)
}

enum ParseError {
    Corrupt(String),
    Version(u64),
}

#[cfg(test)]
mod tests;
