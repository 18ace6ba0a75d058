//! Evaluation parameters, defaulting to pycocotools' `Params(iouType="bbox")`.

use super::error::EvalError;

/// An object-area bucket: a GT (or unmatched detection) counts in it when
/// `lo <= area <= hi` (both ends inclusive, as in COCOeval).
#[derive(Clone, Debug, PartialEq)]
pub struct AreaRange {
    /// The label the summary looks buckets up by (`all`, `small`, `medium`, `large`).
    pub label: String,
    /// Lower bound, inclusive.
    pub lo: f64,
    /// Upper bound, inclusive.
    pub hi: f64,
}

impl AreaRange {
    /// A bucket with the given label and inclusive bounds.
    pub fn new(label: impl Into<String>, lo: f64, hi: f64) -> Self {
        AreaRange {
            label: label.into(),
            lo,
            hi,
        }
    }

    /// Whether `area` falls outside `[lo, hi]`. NaN is never outside (both comparisons are false).
    #[inline]
    pub(crate) fn excludes(&self, area: f64) -> bool {
        area < self.lo || area > self.hi
    }
}

/// pycocotools' default `maxDets`: AR@1, AR@10, and AP/AR at 100 detections per image.
pub const COCO_MAX_DETS: MaxDets = MaxDets([1, 10, 100]);

/// `maxDets` for dense images (SKU-110K's protocol): AP and AR read up to 300 detections
/// per image.
pub const DENSE_MAX_DETS: MaxDets = MaxDets([1, 10, 300]);

/// A labelled set is dense when one of its images holds more than this many boxes: the
/// default `maxDets` would cap recall there.
pub const DENSE_BOXES_PER_IMAGE: usize = 100;

/// The three `maxDets` of the COCO summary (detections kept per image and category),
/// strictly increasing: AR reads each of them, AP the third.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxDets(pub [usize; 3]);

impl MaxDets {
    /// Three strictly increasing, positive counts.
    ///
    /// # Errors
    /// [`EvalError::InvalidParams`] naming what is wrong.
    pub fn new(v: [usize; 3]) -> Result<Self, EvalError> {
        if v[0] == 0 {
            return Err(EvalError::InvalidParams(format!(
                "maxDets {} {} {}: the counts must be positive",
                v[0], v[1], v[2]
            )));
        }
        if !(v[0] < v[1] && v[1] < v[2]) {
            return Err(EvalError::InvalidParams(format!(
                "maxDets {} {} {}: the three counts must be strictly increasing",
                v[0], v[1], v[2]
            )));
        }
        Ok(MaxDets(v))
    }

    /// [`DENSE_MAX_DETS`] when the densest labelled image holds more than
    /// [`DENSE_BOXES_PER_IMAGE`] boxes, else pycocotools' default [`COCO_MAX_DETS`].
    pub fn for_labels(max_boxes_on_one_image: usize) -> Self {
        if max_boxes_on_one_image > DENSE_BOXES_PER_IMAGE {
            DENSE_MAX_DETS
        } else {
            COCO_MAX_DETS
        }
    }

    /// The largest of the three: the cap AP is computed at.
    pub fn last(&self) -> usize {
        self.0[2]
    }
}

impl Default for MaxDets {
    fn default() -> Self {
        COCO_MAX_DETS
    }
}

impl std::fmt::Display for MaxDets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{}", self.0[0], self.0[1], self.0[2])
    }
}

impl std::str::FromStr for MaxDets {
    type Err = EvalError;

    /// Parses `1,10,300` (commas, optional spaces).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let bad = || {
            EvalError::InvalidParams(format!(
                "maxDets {s:?}: expected three increasing counts such as 1,10,300"
            ))
        };
        let [a, b, c] = parts.as_slice() else {
            return Err(bad());
        };
        let n = |x: &str| x.parse::<usize>().map_err(|_| bad());
        MaxDets::new([n(a)?, n(b)?, n(c)?])
    }
}

/// COCOeval parameters. `Default` gives pycocotools' bbox defaults bit for bit.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Images to evaluate; `None` means every GT image. Sorted and deduplicated before use.
    pub img_ids: Option<Vec<i64>>,
    /// Categories to evaluate; `None` means every GT category. Sorted and deduplicated.
    pub cat_ids: Option<Vec<i64>>,
    /// IoU thresholds `T` (default `np.linspace(.5, .95, 10)`).
    pub iou_thrs: Vec<f64>,
    /// Recall thresholds `R` for the interpolated precision (default `np.linspace(0, 1, 101)`).
    pub rec_thrs: Vec<f64>,
    /// Detections kept per image *per category* (default `[1, 10, 100]`); sorted before use,
    /// and matching runs once with the largest.
    pub max_dets: Vec<usize>,
    /// Area buckets (default all / small / medium / large).
    pub area_ranges: Vec<AreaRange>,
    /// `useCats`: when false, categories are pooled per image and reported as one category, id -1.
    pub use_cats: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            img_ids: None,
            cat_ids: None,
            iou_thrs: linspace(0.5, 0.95, 10),
            rec_thrs: linspace(0.0, 1.0, 101),
            max_dets: vec![1, 10, 100],
            area_ranges: vec![
                AreaRange::new("all", 0.0, 1e10),
                AreaRange::new("small", 0.0, 1024.0),
                AreaRange::new("medium", 1024.0, 9216.0),
                AreaRange::new("large", 9216.0, 1e10),
            ],
            use_cats: true,
        }
    }
}

impl Params {
    /// The default parameters with `maxDets` set to `max_dets` (as setting
    /// `COCOeval.params.maxDets` does).
    pub fn with_max_dets(max_dets: MaxDets) -> Self {
        Params {
            max_dets: max_dets.0.to_vec(),
            ..Params::default()
        }
    }

    /// Checks what COCOeval would crash on or silently mis-handle: non-finite thresholds,
    /// no `max_dets`, NaN area bounds.
    pub fn validate(&self) -> Result<(), EvalError> {
        if let Some(t) = self.iou_thrs.iter().find(|t| !t.is_finite()) {
            return Err(EvalError::InvalidParams(format!(
                "IoU threshold {t} is not finite"
            )));
        }
        if let Some(r) = self.rec_thrs.iter().find(|r| r.is_nan()) {
            return Err(EvalError::InvalidParams(format!(
                "recall threshold {r} is NaN"
            )));
        }
        if self.max_dets.is_empty() {
            return Err(EvalError::InvalidParams(
                "max_dets is empty (COCOeval needs at least one)".into(),
            ));
        }
        if let Some(a) = self
            .area_ranges
            .iter()
            .find(|a| a.lo.is_nan() || a.hi.is_nan())
        {
            return Err(EvalError::InvalidParams(format!(
                "area range {:?} has a NaN bound",
                a.label
            )));
        }
        Ok(())
    }

    /// `max_dets` sorted ascending, as COCOeval does on entry to `evaluate()`.
    pub(crate) fn sorted_max_dets(&self) -> Vec<usize> {
        let mut m = self.max_dets.clone();
        m.sort_unstable();
        m
    }
}

/// `numpy.linspace(start, stop, num)` (endpoint included), bit for bit.
///
/// numpy computes `step = (stop - start) / (num - 1)` and `y[i] = i * step + start`, then
/// overwrites the last element with `stop`. So `linspace(.5, .95, 10)[8]` is
/// `0.8999999999999999`, not `0.9`, and `linspace(0, 1, 101)[35]` is `0.35000000000000003`;
/// both matter because COCOeval compares them for exact equality.
pub fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 0 {
        return Vec::new();
    }
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut y: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    y[num - 1] = stop;
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_iou_thresholds_match_numpy() {
        let t = Params::default().iou_thrs;
        assert_eq!(t.len(), 10);
        assert_eq!(t[0], 0.5);
        assert_eq!(t[5], 0.75);
        assert_eq!(t[8], 0.8999999999999999);
        assert_eq!(t[9], 0.95);
    }

    #[test]
    fn default_recall_thresholds_match_numpy() {
        let r = Params::default().rec_thrs;
        assert_eq!(r.len(), 101);
        assert_eq!(r[35], 0.35000000000000003);
        assert_eq!(r[57], 0.5700000000000001);
        assert_eq!(r[100], 1.0);
        for (i, v) in r.iter().enumerate().take(100) {
            assert_eq!(*v, i as f64 * 0.01, "recThrs[{i}]");
        }
    }

    #[test]
    fn validate_rejects_bad_params() {
        let mut small_nan = Params::default();
        small_nan.area_ranges[1].hi = f64::NAN;
        // Each flaw is reported as invalid parameters, naming that flaw.
        for (p, reason) in [
            (
                Params {
                    max_dets: vec![],
                    ..Params::default()
                },
                "max_dets is empty (COCOeval needs at least one)",
            ),
            (
                Params {
                    iou_thrs: vec![0.5, f64::NAN],
                    ..Params::default()
                },
                "IoU threshold NaN is not finite",
            ),
            (
                Params {
                    iou_thrs: vec![f64::INFINITY],
                    ..Params::default()
                },
                "IoU threshold inf is not finite",
            ),
            (
                Params {
                    rec_thrs: vec![0.0, f64::NAN],
                    ..Params::default()
                },
                "recall threshold NaN is NaN",
            ),
            (small_nan, "area range \"small\" has a NaN bound"),
        ] {
            match p.validate() {
                Err(EvalError::InvalidParams(msg)) => assert_eq!(msg, reason),
                other => panic!("{reason}: got {other:?}"),
            }
        }
        assert!(Params::default().validate().is_ok());
    }

    #[test]
    fn max_dets_parse_and_dense_choice() {
        let m: MaxDets = "1,10,300".parse().expect("parses");
        assert_eq!(m, DENSE_MAX_DETS);
        assert_eq!(
            " 5, 50 ,400".parse::<MaxDets>().expect("spaces").0,
            [5, 50, 400]
        );
        assert_eq!(m.to_string(), "1,10,300");
        for bad in [
            "1,10",
            "1,10,100,300",
            "10,1,300",
            "1,10,10",
            "0,10,100",
            "a,b,c",
            "",
        ] {
            assert!(bad.parse::<MaxDets>().is_err(), "{bad:?} should be refused");
        }
        assert_eq!(MaxDets::for_labels(100), COCO_MAX_DETS);
        assert_eq!(MaxDets::for_labels(101), DENSE_MAX_DETS);
        assert_eq!(
            Params::with_max_dets(DENSE_MAX_DETS).max_dets,
            vec![1, 10, 300]
        );
        assert_eq!(Params::with_max_dets(MaxDets::default()), Params::default());
    }

    #[test]
    fn area_bounds_are_inclusive() {
        let a = AreaRange::new("small", 0.0, 1024.0);
        assert!(!a.excludes(1024.0));
        assert!(!a.excludes(0.0));
        assert!(a.excludes(1024.0000001));
        assert!(!a.excludes(f64::NAN));
    }
}
