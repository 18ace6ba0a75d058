//! COCOeval's `summarize`: the 12 stats, per-category numbers and the printed table.
//!
//! Each stat is `np.mean(s[s > -1])` over a slice of the precision (AP) or recall (AR) array,
//! or -1 if the slice has no defined cell. That is a macro average over categories that have
//! non-ignored GT. For bit equality the mean uses numpy's summation order
//! ([`numpy_sum`]) rather than a left fold.

use super::params::Params;

/// `np.add.reduce` of a contiguous `f64` array: `0.0 + pairwise(a)`, where `pairwise`
/// sums fewer than 8 values left to right, up to 128 values with 8 interleaved accumulators
/// combined as `((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))` plus a left-to-right tail, and splits
/// longer arrays at `n/2` rounded down to a multiple of 8.
pub fn numpy_sum(a: &[f64]) -> f64 {
    0.0 + pairwise(a)
}

fn pairwise(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for (j, rj) in r.iter_mut().enumerate() {
                *rj += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[i..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise(&a[..n2]) + pairwise(&a[n2..])
    }
}

/// `np.mean` of the values: [`numpy_sum`] divided by the count; -1 when empty (COCOeval's
/// convention for "undefined").
pub fn numpy_mean_or_minus_one(a: &[f64]) -> f64 {
    if a.is_empty() {
        -1.0
    } else {
        numpy_sum(a) / a.len() as f64
    }
}

/// Which `maxDets` a summary line reads.
///
/// pycocotools computes stats[0] with a literal `maxDets=100` (`_summarize(1)`), so with
/// `maxDets = [1, 10, 300]` it finds no such column and prints `-1` for AP (cocoapi issue
/// #558, torchmetrics #2560). detlab keeps the literal 100 whenever `maxDets` holds 100
/// (identical to pycocotools), and only where pycocotools has no answer reads stats[0] at
/// `maxDets[2]`, like the other AP lines: pycocotools' own `_summarize(1,
/// maxDets=maxDets[2])` on the same precision array, labelled `maxDets=300`.
#[derive(Clone, Copy)]
enum MaxDetSel {
    /// This literal when `maxDets` holds it, else `maxDets[2]` (if there is one).
    LiteralOrThird(usize),
    /// `maxDets[i]` after sorting.
    Index(usize),
}

impl MaxDetSel {
    /// The `maxDets` value this line reads, if any.
    fn resolve(self, max_dets: &[usize]) -> Option<usize> {
        match self {
            MaxDetSel::LiteralOrThird(v) if max_dets.contains(&v) => Some(v),
            MaxDetSel::LiteralOrThird(_) => max_dets.get(2).copied(),
            MaxDetSel::Index(i) => max_dets.get(i).copied(),
        }
    }

    /// The value printed in the summary line's `maxDets=` label.
    fn label(self, max_dets: &[usize]) -> usize {
        match self {
            MaxDetSel::Index(j) => self.resolve(max_dets).unwrap_or(DEFAULT_MAX_DETS[j.min(2)]),
            MaxDetSel::LiteralOrThird(v) => self.resolve(max_dets).unwrap_or(v),
        }
    }
}

/// One of the 12 summary lines: AP or AR, IoU (None = all thresholds), area label, maxDets.
struct StatSpec {
    ap: bool,
    iou: Option<f64>,
    area: &'static str,
    max_det: MaxDetSel,
}

const fn spec(ap: bool, iou: Option<f64>, area: &'static str, max_det: MaxDetSel) -> StatSpec {
    StatSpec {
        ap,
        iou,
        area,
        max_det,
    }
}

const SPECS: [StatSpec; 12] = [
    spec(true, None, "all", MaxDetSel::LiteralOrThird(100)),
    spec(true, Some(0.5), "all", MaxDetSel::Index(2)),
    spec(true, Some(0.75), "all", MaxDetSel::Index(2)),
    spec(true, None, "small", MaxDetSel::Index(2)),
    spec(true, None, "medium", MaxDetSel::Index(2)),
    spec(true, None, "large", MaxDetSel::Index(2)),
    spec(false, None, "all", MaxDetSel::Index(0)),
    spec(false, None, "all", MaxDetSel::Index(1)),
    spec(false, None, "all", MaxDetSel::Index(2)),
    spec(false, None, "small", MaxDetSel::Index(2)),
    spec(false, None, "medium", MaxDetSel::Index(2)),
    spec(false, None, "large", MaxDetSel::Index(2)),
];

/// Default `maxDets` shown when the list is too short for `Index(i)` (pycocotools would
/// raise an IndexError; detlab reports -1 for that line instead).
const DEFAULT_MAX_DETS: [usize; 3] = [1, 10, 100];

/// Shapes and data the summary reads.
pub(crate) struct Arrays<'a> {
    pub precision: &'a [f64],
    pub recall: &'a [f64],
    /// `[T, R, K, A, M]`.
    pub shape: [usize; 5],
}

impl Arrays<'_> {
    fn p(&self, t: usize, r: usize, k: usize, a: usize, m: usize) -> f64 {
        let [_, n_r, n_k, n_a, n_m] = self.shape;
        self.precision[(((t * n_r + r) * n_k + k) * n_a + a) * n_m + m]
    }

    fn r(&self, t: usize, k: usize, a: usize, m: usize) -> f64 {
        let [_, _, n_k, n_a, n_m] = self.shape;
        self.recall[((t * n_k + k) * n_a + a) * n_m + m]
    }

    /// `np.mean(s[s > -1])` over the selected thresholds, categories and (area, maxDet) pairs,
    /// visiting cells in C order as numpy does.
    fn mean(&self, ap: bool, ts: &[usize], ks: &[usize], pairs: &[(usize, usize)]) -> f64 {
        let n_r = self.shape[1];
        let mut vals = Vec::new();
        for &t in ts {
            if ap {
                for r in 0..n_r {
                    for &k in ks {
                        for &(a, m) in pairs {
                            vals.push(self.p(t, r, k, a, m));
                        }
                    }
                }
            } else {
                for &k in ks {
                    for &(a, m) in pairs {
                        vals.push(self.r(t, k, a, m));
                    }
                }
            }
        }
        vals.retain(|&v| v > -1.0);
        numpy_mean_or_minus_one(&vals)
    }
}

/// Index lists combined as numpy's advanced indexing broadcasts them; `None` where numpy
/// would raise (two lists of different lengths > 1).
fn broadcast(a: &[usize], m: &[usize]) -> Option<Vec<(usize, usize)>> {
    match (a.len(), m.len()) {
        (x, y) if x == y => Some(a.iter().copied().zip(m.iter().copied()).collect()),
        (1, _) => Some(m.iter().map(|&mm| (a[0], mm)).collect()),
        (_, 1) => Some(a.iter().map(|&aa| (aa, m[0])).collect()),
        _ => None,
    }
}

/// The 12 COCO stats; `max_dets` must already be sorted (as COCOeval sorts `params.maxDets`).
pub(crate) fn stats(arr: &Arrays<'_>, params: &Params, max_dets: &[usize]) -> [f64; 12] {
    let mut out = [-1.0; 12];
    let ks: Vec<usize> = (0..arr.shape[2]).collect();
    for (o, s) in out.iter_mut().zip(SPECS.iter()) {
        let Some(md) = s.max_det.resolve(max_dets) else {
            continue;
        };
        let ts: Vec<usize> = match s.iou {
            Some(v) => (0..params.iou_thrs.len())
                .filter(|&t| params.iou_thrs[t] == v)
                .collect(),
            None => (0..params.iou_thrs.len()).collect(),
        };
        let a_idx: Vec<usize> = (0..params.area_ranges.len())
            .filter(|&a| params.area_ranges[a].label == s.area)
            .collect();
        let m_idx: Vec<usize> = (0..max_dets.len()).filter(|&m| max_dets[m] == md).collect();
        let Some(pairs) = broadcast(&a_idx, &m_idx) else {
            continue;
        };
        *o = arr.mean(s.ap, &ts, &ks, &pairs);
    }
    out
}

/// The short names of the 12 stats for `max_dets` (sorted): `AR1`, `AR10`, `AR100` by
/// default, `AR300` for `maxDets = [1, 10, 300]`.
pub(crate) fn stat_names(max_dets: &[usize]) -> [String; 12] {
    let md = |i: usize| MaxDetSel::Index(i).label(max_dets);
    [
        "AP".into(),
        "AP50".into(),
        "AP75".into(),
        "APs".into(),
        "APm".into(),
        "APl".into(),
        format!("AR{}", md(0)),
        format!("AR{}", md(1)),
        format!("AR{}", md(2)),
        "ARs".into(),
        "ARm".into(),
        "ARl".into(),
    ]
}

/// Per-category `(AP@[.5:.95], AP@.5, AR)` at the first area range and the largest maxDets
/// (area `all`, 100 detections by default), -1 where undefined.
pub(crate) fn per_category(arr: &Arrays<'_>, params: &Params, k: usize) -> (f64, f64, f64) {
    let [n_t, _, _, n_a, n_m] = arr.shape;
    if n_a == 0 || n_m == 0 {
        return (-1.0, -1.0, -1.0);
    }
    let pairs = [(0, n_m - 1)];
    let all_t: Vec<usize> = (0..n_t).collect();
    let t50: Vec<usize> = (0..n_t).filter(|&t| params.iou_thrs[t] == 0.5).collect();
    (
        arr.mean(true, &all_t, &[k], &pairs),
        arr.mean(true, &t50, &[k], &pairs),
        arr.mean(false, &all_t, &[k], &pairs),
    )
}

/// The 12 lines `COCOeval.summarize()` prints, each ending in `\n`; every `maxDets=` label
/// shows the value that line was computed at (see [`MaxDetSel`] for the first line).
pub(crate) fn summary_text(stats: &[f64; 12], params: &Params, max_dets: &[usize]) -> String {
    let mut out = String::new();
    for (s, v) in SPECS.iter().zip(stats.iter()) {
        let (title, kind) = if s.ap {
            ("Average Precision", "(AP)")
        } else {
            ("Average Recall", "(AR)")
        };
        let iou = match s.iou {
            Some(v) => format!("{v:.2}"),
            None => match (params.iou_thrs.first(), params.iou_thrs.last()) {
                (Some(a), Some(b)) => format!("{a:.2}:{b:.2}"),
                _ => "-".to_string(),
            },
        };
        let md = s.max_det.label(max_dets);
        out.push_str(&format!(
            " {title:<18} {kind} @[ IoU={iou:<9} | area={:>6} | maxDets={md:>3} ] = {v:.3}\n",
            s.area
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_small_is_left_fold() {
        let v = [0.1, 0.2, 0.3];
        assert_eq!(numpy_sum(&v), (0.1 + 0.2) + 0.3);
    }

    #[test]
    fn pairwise_blocks_of_eight() {
        // Values where association order changes the bits.
        let v: Vec<f64> = (0..20).map(|i| 1.0 / (i as f64 + 3.0)).collect();
        let mut r = [0.0; 8];
        r.copy_from_slice(&v[..8]);
        for j in 0..8 {
            r[j] += v[8 + j];
        }
        let want = (((r[0] + r[1]) + (r[2] + r[3]))
            + ((r[4] + r[5]) + (r[6] + r[7]))
            + v[16]
            + v[17]
            + v[18])
            + v[19];
        assert_eq!(numpy_sum(&v), want);
    }

    #[test]
    fn mean_of_empty_is_minus_one() {
        assert_eq!(numpy_mean_or_minus_one(&[]), -1.0);
    }

    #[test]
    fn stat_names_follow_max_dets() {
        assert_eq!(stat_names(&[1, 10, 100])[6..9], ["AR1", "AR10", "AR100"]);
        assert_eq!(stat_names(&[1, 10, 300])[8], "AR300");
        assert_eq!(stat_names(&[5])[6..9], ["AR5", "AR10", "AR100"]);
    }

    #[test]
    fn first_line_reads_100_else_the_third_max_dets() {
        let first = MaxDetSel::LiteralOrThird(100);
        assert_eq!(first.resolve(&[1, 10, 300]), Some(300));
        assert_eq!(first.resolve(&[10, 100, 1000]), Some(100));
        assert_eq!(first.resolve(&[5, 100]), Some(100));
        assert_eq!(first.resolve(&[5, 20]), None);
        assert_eq!(first.label(&[5, 20]), 100);
        assert_eq!(MaxDetSel::Index(2).resolve(&[5, 100]), None);
        assert_eq!(MaxDetSel::Index(2).label(&[5, 100]), 100);
    }

    #[test]
    fn broadcast_rules() {
        assert_eq!(broadcast(&[0], &[2]), Some(vec![(0, 2)]));
        assert_eq!(broadcast(&[], &[2]), Some(vec![]));
        assert_eq!(broadcast(&[0, 1], &[2]), Some(vec![(0, 2), (1, 2)]));
        assert_eq!(broadcast(&[0, 1], &[1, 2, 3]), None);
    }
}
