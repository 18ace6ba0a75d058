//! What an evaluation returns.

use super::params::Params;
use super::summary;

/// A dense `f64` array in C (row-major) order, like the numpy arrays COCOeval keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct NdArray<const N: usize> {
    shape: [usize; N],
    data: Vec<f64>,
}

impl<const N: usize> NdArray<N> {
    /// Wraps `data`; `None` unless its length is the product of `shape`.
    pub fn new(shape: [usize; N], data: Vec<f64>) -> Option<Self> {
        (shape.iter().product::<usize>() == data.len()).then_some(NdArray { shape, data })
    }

    /// Wraps data whose length is known to match (built by the evaluator itself).
    pub(crate) fn from_parts(shape: [usize; N], data: Vec<f64>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        NdArray { shape, data }
    }

    /// The dimensions.
    pub fn shape(&self) -> [usize; N] {
        self.shape
    }

    /// All values, C order.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// The value at `index`, or `None` if out of bounds.
    pub fn get(&self, index: [usize; N]) -> Option<f64> {
        let mut flat = 0usize;
        for (i, (&x, &n)) in index.iter().zip(self.shape.iter()).enumerate() {
            if x >= n {
                return None;
            }
            flat = if i == 0 { x } else { flat * n + x };
        }
        self.data.get(flat).copied()
    }
}

/// Headline numbers for one category (area `all`, the largest maxDets), -1 where undefined
/// (no non-ignored GT of that category).
#[derive(Clone, Debug, PartialEq)]
pub struct CategoryResult {
    /// Category id (-1 when categories are pooled, `use_cats = false`).
    pub id: i64,
    /// Category name.
    pub name: String,
    /// AP averaged over IoU .50:.95.
    pub ap: f64,
    /// AP at IoU .50 (-1 if .50 is not among the thresholds).
    pub ap50: f64,
    /// Recall averaged over IoU .50:.95 at the largest maxDets (100 by default).
    pub ar100: f64,
}

/// The result of [`super::evaluate`]: what COCOeval's `eval` dict and `stats` hold.
#[derive(Clone, Debug)]
pub struct EvalResult {
    /// The parameters used, resolved: `img_ids` and `cat_ids` filled in, sorted and
    /// deduplicated; `max_dets` sorted.
    pub params: Params,
    /// The 12 summary stats, in COCOeval's order: AP, AP50, AP75, APs, APm, APl,
    /// AR1, AR10, AR100, ARs, ARm, ARl (the AR names follow `params.max_dets`, see
    /// [`EvalResult::stat_names`]). -1 where undefined.
    pub stats: [f64; 12],
    /// One entry per evaluated category, in `params.cat_ids` order.
    pub per_category: Vec<CategoryResult>,
    /// Interpolated precision `[T, R, K, A, M]`: IoU threshold, recall threshold, category,
    /// area range, maxDets. -1 for categories without non-ignored GT.
    pub precision: NdArray<5>,
    /// Final recall `[T, K, A, M]`, -1 as for precision.
    pub recall: NdArray<4>,
}

/// Names of the 12 stats, in order, for the default `maxDets` (1, 10, 100).
pub const STAT_NAMES: [&str; 12] = [
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
];

impl EvalResult {
    /// The 12 lines `COCOeval.summarize()` prints, byte for byte, e.g.
    /// ` Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.505`.
    pub fn summary_text(&self) -> String {
        summary::summary_text(&self.stats, &self.params, &self.params.max_dets)
    }

    /// The short names of the 12 stats with the `maxDets` actually used (`AR300` rather
    /// than `AR100` when `maxDets = [1, 10, 300]`); [`STAT_NAMES`] for the defaults.
    pub fn stat_names(&self) -> [String; 12] {
        summary::stat_names(&self.params.max_dets)
    }

    /// The `maxDets` that AP and the per-category numbers are computed at (the largest).
    pub fn max_dets_last(&self) -> usize {
        self.params.max_dets.last().copied().unwrap_or(100)
    }

    /// The PR curve for one (IoU threshold, category, area range, maxDets) cell:
    /// `(recall threshold, precision)` pairs, or `None` if out of range or undefined.
    pub fn pr_curve(&self, t: usize, k: usize, a: usize, m: usize) -> Option<Vec<(f64, f64)>> {
        let curve: Option<Vec<(f64, f64)>> = self
            .params
            .rec_thrs
            .iter()
            .enumerate()
            .map(|(r, &thr)| self.precision.get([t, r, k, a, m]).map(|p| (thr, p)))
            .collect();
        curve.filter(|c| c.iter().all(|&(_, p)| p > -1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndarray_indexing_is_c_order() {
        let a = NdArray::new([2, 3], (0..6).map(f64::from).collect()).expect("shape");
        assert_eq!(a.get([1, 2]), Some(5.0));
        assert_eq!(a.get([0, 1]), Some(1.0));
        assert_eq!(a.get([2, 0]), None);
        assert!(NdArray::new([2, 2], vec![0.0]).is_none());
    }
}
