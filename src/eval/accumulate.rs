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
//! Dropping ignored detections from the walk gives the same numbers as pycocotools, which
//! keeps them: an ignored entry repeats the previous `(rc, pr)` (or `(0, 0)` before any TP/FP),
//! so it is never the first to reach a threshold except at recall 0, where the envelope
//! makes its value equal to that of the first kept entry.

use rayon::prelude::*;

use super::evaluate::{Matched, Prepared, FP, IGNORED, TP};
use super::params::Params;

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
            let mut rc: Vec<f64> = Vec::with_capacity(ranks.len());
            let mut pr: Vec<f64> = Vec::with_capacity(ranks.len());
            for (m, &max_det) in prep.max_dets.iter().enumerate() {
                for t in 0..n_t {
                    rc.clear();
                    pr.clear();
                    let (mut tp, mut fp) = (0u64, 0u64);
                    for (j, &rank) in ranks.iter().enumerate() {
                        if rank >= max_det {
                            continue;
                        }
                        match st[j * n_t + t] {
                            TP => tp += 1,
                            FP => fp += 1,
                            _ => continue,
                        }
                        let (tpf, fpf) = (tp as f64, fp as f64);
                        rc.push(tpf / npig);
                        pr.push(tpf / ((fpf + tpf) + f64::EPSILON));
                    }
                    rec[t * n_m + m] = rc.last().copied().unwrap_or(0.0);
                    for i in (1..pr.len()).rev() {
                        if pr[i] > pr[i - 1] {
                            pr[i - 1] = pr[i];
                        }
                    }
                    for (r, &thr) in params.rec_thrs.iter().enumerate() {
                        let i = rc.partition_point(|&x| x < thr);
                        if let Some(&p) = pr.get(i) {
                            prec[(t * n_r + r) * n_m + m] = p;
                        }
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
