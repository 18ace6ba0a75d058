//! COCOeval's `accumulate`: precision at each recall threshold and final recall, per
//! (IoU threshold, category, area range, maxDet).
//!
//! For category `k`, area range `a` and cap `m`, take the category's detections in accumulate
//! order (see [`super::evaluate`]) with in-cell rank `< m`. Ignored detections change neither
//! count, so only TPs and FPs are walked. After the `i`-th of them, with `tp`/`fp` running counts
//! and `npig` the number of non-ignored GTs:
//!
//! * `rc[i] = tp / npig`
//! * `pr[i] = tp / ((fp + tp) + eps)`, `eps = 2^-52` (so one lone TP has precision
//!   `1/(1+eps) = 0.9999999999999998`),
//!
//! then `pr` is made non-increasing from the right (`pr[i-1] = max(pr[i-1], pr[i])`), and the
//! precision at recall threshold `r` is `pr[j]` for the first `j` with `rc[j] >= r` (numpy's
//! `searchsorted(side="left")`), or 0 if recall never gets there. Recall is the last `rc`
//! (0 with no detections). Cells with `npig == 0` stay -1 and are left out of the means.
//!
//! # Computing only what is read
//!
//! Ignored detections change neither count, and they and FPs never raise recall, so the first
//! entry to reach a threshold `r > 0` is always a TP: the `n`-th TP, for the smallest `n` with
//! `n / npig >= r` (the same division numpy does, so the same comparison). A threshold
//! `r <= 0` is reached by the very first entry, whose enveloped precision is the maximum over
//! all entries. Past a TP, FP entries have lower precision than that TP, so the envelope at a
//! TP is the maximum over TPs from there on. Hence only the precision at each TP,
//! `n / ((fp_before_n + n) + eps)`, is computed, and pycocotools' numbers come out unchanged.

use rayon::prelude::*;

use super::evaluate::{Matched, Prepared, FP, IGNORED, TP};
use super::params::Params;

/// The smallest `n >= 1` with `n / npig >= thr` (`thr > 0`), compared exactly as numpy
/// compares `rc = tp / npig` with the threshold; `n_tp + 1` if no `n <= n_tp` reaches it.
fn first_tp_reaching(thr: f64, npig: f64, n_tp: usize) -> usize {
    let reaches = |n: usize| n as f64 / npig >= thr;
    // ceil(thr * npig) is within a step of the answer; walk to it with exact comparisons.
    let guess = (thr * npig).ceil();
    let mut n = if guess >= 1.0 {
        guess.min(n_tp as f64 + 1.0) as usize
    } else {
        1
    };
    while n > 1 && reaches(n - 1) {
        n -= 1;
    }
    while n <= n_tp && !reaches(n) {
        n += 1;
    }
    n
}

/// Precision `[T, R, K, A, M]` and recall `[T, K, A, M]`, C order, -1 where undefined.
pub(crate) struct Accumulated {
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
}

/// Runs the accumulation, in parallel over (category group, area range).
pub(crate) fn accumulate(prep: &Prepared, matched: &Matched, params: &Params) -> Accumulated {
    let n_t = params.iou_thrs.len();
    let n_r = params.rec_thrs.len();
    let n_k = prep.n_groups;
    let n_a = params.area_ranges.len();
    let n_m = prep.max_dets.len();
    let stride = n_a * n_t;

    // One task per (k, a); each returns its [T][R][M] precision and [T][M] recall block.
    let blocks: Vec<Option<(Vec<f64>, Vec<f64>)>> = (0..n_k * n_a)
        .into_par_iter()
        .map(|ka| {
            let (k, a) = (ka / n_a, ka % n_a);
            let npig = matched.npig[ka];
            if npig == 0 {
                return None;
            }
            let npig = npig as f64;
            let group = &prep.order[prep.group_start[k]..prep.group_start[k + 1]];
            // Statuses for this area range, in accumulate order, with their ranks.
            let mut ranks = Vec::with_capacity(group.len());
            let mut st = Vec::with_capacity(group.len() * n_t);
            for r in group {
                let base = r.cell_pos as usize * stride + a * n_t;
                let s = &matched.status[base..base + n_t];
                if s.iter().all(|&x| x == IGNORED) {
                    continue;
                }
                ranks.push(r.rank as usize);
                st.extend_from_slice(s);
            }
            let mut prec = vec![0.0; n_t * n_r * n_m];
            let mut rec = vec![0.0; n_t * n_m];
            // fps[t][n]: false positives before the (n+1)-th TP at threshold t.
            let mut fps: Vec<Vec<u32>> = vec![Vec::with_capacity(ranks.len()); n_t];
            let mut fp = vec![0u32; n_t];
            let mut env: Vec<f64> = Vec::with_capacity(ranks.len());
            for (m, &max_det) in prep.max_dets.iter().enumerate() {
                for t in 0..n_t {
                    fps[t].clear();
                    fp[t] = 0;
                }
                for (j, &rank) in ranks.iter().enumerate() {
                    if rank >= max_det {
                        continue;
                    }
                    for (t, &s) in st[j * n_t..(j + 1) * n_t].iter().enumerate() {
                        match s {
                            TP => fps[t].push(fp[t]),
                            FP => fp[t] += 1,
                            _ => {}
                        }
                    }
                }
                for t in 0..n_t {
                    let n_tp = fps[t].len();
                    rec[t * n_m + m] = n_tp as f64 / npig;
                    env.clear();
                    env.extend(fps[t].iter().enumerate().map(|(i, &f)| {
                        let tp = (i + 1) as f64;
                        tp / ((f64::from(f) + tp) + f64::EPSILON)
                    }));
                    for i in (1..n_tp).rev() {
                        if env[i] > env[i - 1] {
                            env[i - 1] = env[i];
                        }
                    }
                    for (r, &thr) in params.rec_thrs.iter().enumerate() {
                        let q = if thr <= 0.0 {
                            env.first().copied().unwrap_or(0.0)
                        } else {
                            let n = first_tp_reaching(thr, npig, n_tp);
                            env.get(n.wrapping_sub(1)).copied().unwrap_or(0.0)
                        };
                        prec[(t * n_r + r) * n_m + m] = q;
                    }
                }
            }
            Some((prec, rec))
        })
        .collect();

    let mut precision = vec![-1.0; n_t * n_r * n_k * n_a * n_m];
    let mut recall = vec![-1.0; n_t * n_k * n_a * n_m];
    for (ka, block) in blocks.into_iter().enumerate() {
        let Some((prec, rec)) = block else { continue };
        let (k, a) = (ka / n_a, ka % n_a);
        for t in 0..n_t {
            for m in 0..n_m {
                recall[((t * n_k + k) * n_a + a) * n_m + m] = rec[t * n_m + m];
                for r in 0..n_r {
                    precision[(((t * n_r + r) * n_k + k) * n_a + a) * n_m + m] =
                        prec[(t * n_r + r) * n_m + m];
                }
            }
        }
    }
    Accumulated { precision, recall }
}

#[cfg(test)]
mod tests {
    use super::first_tp_reaching;

    #[test]
    fn first_tp_reaching_matches_a_linear_scan() {
        let thrs = crate::eval::linspace(0.0, 1.0, 101);
        for npig in 1..60u32 {
            let npig = f64::from(npig);
            for n_tp in 0..70usize {
                for &thr in thrs.iter().skip(1) {
                    let scan = (1..=n_tp)
                        .find(|&n| n as f64 / npig >= thr)
                        .unwrap_or(n_tp + 1);
                    assert_eq!(
                        first_tp_reaching(thr, npig, n_tp),
                        scan,
                        "{thr} {npig} {n_tp}"
                    );
                }
            }
        }
    }
}
