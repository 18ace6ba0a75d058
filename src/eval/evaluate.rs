//! Per image × category matching: COCOeval's `evaluateImg`, run once per (image, category)
//! "cell" with every area range and IoU threshold.
//!
//! # Ordering (the part that must be exact)
//!
//! * Within a cell, detections are stable-sorted by descending score and cut to the largest
//!   `max_dets` (per image *per category*). Ties keep results-file order.
//! * `accumulate` later concatenates cells in image order and stable-sorts by score again,
//!   so for each category the global order is `(-score, image position, file position)`.
//!   [`prepare`] computes that order once; a detection's *rank* within its cell is its
//!   position among the cell's detections in that same order, and the per-`maxDet` cut of
//!   `accumulate` becomes `rank < maxDet`.
//! * With `use_cats = false` a cell is a whole image and its lists are concatenated by
//!   category position first, so category position joins the sort keys before file order.
//!
//! # Matching (per area range `a`, threshold `t`)
//!
//! GTs are stable-sorted with non-ignored first (ignored = crowd, or `area` outside the
//! range). Each detection, in rank order, scans the GTs keeping the best IoU `>=` the current
//! best (starting at `min(t, 1 - 1e-10)`), so IoU equal to `t` matches and a later GT wins a
//! tie. Already-matched non-crowd GTs are skipped; the scan stops at the first ignored GT
//! once a non-ignored match is held. A matched detection inherits the GT's ignore flag; it is
//! a true positive only if that GT's id is non-zero (pycocotools stores ids with 0 meaning
//! "none"). An unmatched detection (or one "matched" to id 0) whose own area is outside the
//! range is ignored; otherwise it is a false positive.

use rayon::prelude::*;

use super::data::{sorted_unique, CocoGroundTruth, Detection, GtAnnotation};
use super::idmap::IdMap;
use super::iou::bbox_iou;
use super::params::Params;

/// Status of a detection for one (area range, IoU threshold): neither TP nor FP.
pub(crate) const IGNORED: u8 = 0;
/// Status: true positive.
pub(crate) const TP: u8 = 1;
/// Status: false positive.
pub(crate) const FP: u8 = 2;

/// One non-empty (category group, image) pair with its GT and detection ranges.
#[derive(Clone, Debug)]
pub(crate) struct Cell {
    /// Category group (category position, or 0 when categories are pooled).
    pub k: u32,
    /// Range into [`Prepared::gts`].
    pub gt: (u32, u32),
    /// Range into [`Prepared::dts`].
    pub dt: (u32, u32),
}

/// A detection in accumulate order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ranked {
    /// Position of the detection in [`Prepared::dts`] (cell order).
    pub cell_pos: u32,
    /// Rank within its cell (0 = best).
    pub rank: u32,
}

/// Inputs indexed and ordered for matching and accumulation.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// Resolved image ids (sorted, unique).
    pub img_ids: Vec<i64>,
    /// Resolved category ids (sorted, unique).
    pub cat_ids: Vec<i64>,
    /// `max_dets` sorted ascending.
    pub max_dets: Vec<usize>,
    /// Number of category groups `K`.
    pub n_groups: usize,
    /// Non-empty cells sorted by (group, image).
    pub cells: Vec<Cell>,
    /// GT annotation indices in cell order (file order within a cell).
    pub gts: Vec<u32>,
    /// Detection indices in cell order (rank order within a cell), already cut to the
    /// largest `max_dets`.
    pub dts: Vec<u32>,
    /// Kept detections in accumulate order, grouped by category group.
    pub order: Vec<Ranked>,
    /// `order[group_start[k]..group_start[k + 1]]` is group `k`.
    pub group_start: Vec<usize>,
}

/// An integer key that sorts scores descending like numpy's `argsort(-score)`: `-0.0` and
/// `0.0` tie, NaN sorts last.
#[inline]
fn desc_score_key(s: f64) -> u64 {
    if s.is_nan() {
        return u64::MAX;
    }
    let bits = (s + 0.0).to_bits(); // -0.0 + 0.0 == +0.0
    let ascending = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    !ascending
}

/// Resolves parameters, drops records outside `img_ids`/`cat_ids` (as `_prepare` does),
/// and computes cell and accumulate orders.
pub(crate) fn prepare(gt: &CocoGroundTruth, dets: &[Detection], params: &Params) -> Prepared {
    let img_ids = match &params.img_ids {
        Some(ids) => sorted_unique(ids.iter().copied()),
        None => gt.sorted_image_ids(),
    };
    let cat_ids = match &params.cat_ids {
        Some(ids) => sorted_unique(ids.iter().copied()),
        None => gt.sorted_category_ids(),
    };
    let max_dets = params.sorted_max_dets();
    let max_det = max_dets.last().copied().unwrap_or(0);
    let mut img_pos = IdMap::with_capacity(img_ids.len());
    for (i, &id) in img_ids.iter().enumerate() {
        img_pos.insert(id, i as u32);
    }
    let mut cat_pos = IdMap::with_capacity(cat_ids.len());
    for (i, &id) in cat_ids.iter().enumerate() {
        cat_pos.insert(id, i as u32);
    }
    let group = |c: u32| if params.use_cats { c } else { 0 };
    let n_groups = if params.use_cats { cat_ids.len() } else { 1 };

    // GT: (group, image, category position), stable so file order is kept within a cell.
    let mut g_keys: Vec<(u32, u32, u32, u32)> = gt
        .annotations()
        .iter()
        .enumerate()
        .filter_map(|(j, a)| {
            let i = img_pos.get(a.image_id)?;
            let c = cat_pos.get(a.category_id)?;
            Some((group(c), i, c, j as u32))
        })
        .collect();
    g_keys.par_sort_by_key(|&(k, i, c, _)| (k, i, c));

    // Detections: (group, -score, image, category position), stable (file order last).
    struct DtKey {
        k: u32,
        img: u32,
        cat: u32,
        idx: u32,
        score: u64,
    }
    let mut d_keys: Vec<DtKey> = dets
        .iter()
        .enumerate()
        .filter_map(|(j, d)| {
            let img = img_pos.get(d.image_id)?;
            let cat = cat_pos.get(d.category_id)?;
            Some(DtKey {
                k: group(cat),
                img,
                cat,
                idx: j as u32,
                score: desc_score_key(d.score),
            })
        })
        .collect();
    d_keys.par_sort_by_key(|d| (d.k, d.score, (u64::from(d.img) << 32) | u64::from(d.cat)));

    // Rank within cell; keep rank < max_det. `kept` is in accumulate order.
    let mut counters = vec![0u32; img_ids.len()];
    let mut kept: Vec<(u32, u32, u32, u32)> = Vec::with_capacity(d_keys.len()); // (k, img, rank, idx)
    let mut group_start = vec![0usize; n_groups + 1];
    let mut s = 0;
    while s < d_keys.len() {
        let k = d_keys[s].k;
        let mut e = s;
        while e < d_keys.len() && d_keys[e].k == k {
            let dk = &d_keys[e];
            let r = counters[dk.img as usize];
            counters[dk.img as usize] = r + 1;
            if (r as usize) < max_det {
                kept.push((k, dk.img, r, dk.idx));
            }
            e += 1;
        }
        for dk in &d_keys[s..e] {
            counters[dk.img as usize] = 0;
        }
        group_start[k as usize + 1] = kept.len();
        s = e;
    }
    for k in 0..n_groups {
        group_start[k + 1] = group_start[k + 1].max(group_start[k]);
    }
    drop(d_keys);

    // Cell order of kept detections: stable by (group, image), so rank order within a cell.
    let mut by_cell: Vec<u32> = (0..kept.len() as u32).collect();
    by_cell.par_sort_by_key(|&p| {
        let (k, img, _, _) = kept[p as usize];
        (u64::from(k) << 32) | u64::from(img)
    });
    let mut order: Vec<Ranked> = vec![
        Ranked {
            cell_pos: 0,
            rank: 0
        };
        kept.len()
    ];
    let mut dts = Vec::with_capacity(kept.len());
    for (cell_pos, &p) in by_cell.iter().enumerate() {
        let (_, _, rank, idx) = kept[p as usize];
        dts.push(idx);
        order[p as usize] = Ranked {
            cell_pos: cell_pos as u32,
            rank,
        };
    }

    // Merge GT runs and detection runs into cells.
    let gts: Vec<u32> = g_keys.iter().map(|t| t.3).collect();
    let mut cells = Vec::new();
    let (mut gi, mut di) = (0usize, 0usize);
    let dkey = |p: usize| {
        let (k, img, _, _) = kept[by_cell[p] as usize];
        (k, img)
    };
    let gkey = |p: usize| (g_keys[p].0, g_keys[p].1);
    while gi < g_keys.len() || di < by_cell.len() {
        let key = match (gi < g_keys.len(), di < by_cell.len()) {
            (true, true) => gkey(gi).min(dkey(di)),
            (true, false) => gkey(gi),
            _ => dkey(di),
        };
        let g0 = gi;
        while gi < g_keys.len() && gkey(gi) == key {
            gi += 1;
        }
        let d0 = di;
        while di < by_cell.len() && dkey(di) == key {
            di += 1;
        }
        cells.push(Cell {
            k: key.0,
            gt: (g0 as u32, gi as u32),
            dt: (d0 as u32, di as u32),
        });
    }

    Prepared {
        img_ids,
        cat_ids,
        max_dets,
        n_groups,
        cells,
        gts,
        dts,
        order,
        group_start,
    }
}

/// Per-detection statuses and per-group GT counts after matching.
#[derive(Debug)]
pub(crate) struct Matched {
    /// `status[(cell_pos * A + a) * T + t]`: [`IGNORED`], [`TP`] or [`FP`].
    pub status: Vec<u8>,
    /// `npig[k * A + a]`: non-ignored GTs of group `k` in range `a`.
    pub npig: Vec<u64>,
}

/// Reusable per-thread buffers for [`match_cell`].
#[derive(Default)]
struct Scratch {
    /// IoU, detections × GTs in cell order.
    ious: Vec<f64>,
    /// GTs of the cell, in cell order.
    gts: Vec<GtInfo>,
    /// Per area range, the GTs non-ignored first (each part in cell order): `A × G`.
    sorted: Vec<SortedGt>,
    /// Per area range, detection and threshold, the matched position in `sorted`
    /// ([`NO_MATCH`] if none): `A × D × T`.
    matches: Vec<u32>,
    /// Whether each sorted GT is matched at the current threshold.
    taken: Vec<bool>,
}

/// "No GT matched" in [`Scratch::matches`].
const NO_MATCH: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct GtInfo {
    area: f64,
    crowd: bool,
    real_id: bool,
}

#[derive(Clone, Copy, PartialEq)]
struct SortedGt {
    /// Column in the IoU matrix.
    col: u32,
    ignored: bool,
    crowd: bool,
    real_id: bool,
}

/// Runs `evaluateImg` over every cell in parallel.
pub(crate) fn match_all(
    prep: &Prepared,
    gt: &CocoGroundTruth,
    dets: &[Detection],
    params: &Params,
) -> Matched {
    let n_a = params.area_ranges.len();
    let n_t = params.iou_thrs.len();
    let stride = n_a * n_t;
    let mut status = vec![IGNORED; prep.dts.len() * stride];
    let mut cell_npig = vec![0u32; prep.cells.len() * n_a];

    // Split the status buffer into one disjoint slice per cell.
    let mut slices: Vec<&mut [u8]> = Vec::with_capacity(prep.cells.len());
    let mut rest: &mut [u8] = &mut status;
    for c in &prep.cells {
        let (head, tail) = rest.split_at_mut((c.dt.1 - c.dt.0) as usize * stride);
        slices.push(head);
        rest = tail;
    }
    let anns = gt.annotations();
    prep.cells
        .par_iter()
        .zip(slices.into_par_iter())
        .zip(cell_npig.par_chunks_mut(n_a.max(1)))
        .with_min_len(64)
        .for_each_init(Scratch::default, |scratch, ((cell, out), npig)| {
            let g_idx = &prep.gts[cell.gt.0 as usize..cell.gt.1 as usize];
            let d_idx = &prep.dts[cell.dt.0 as usize..cell.dt.1 as usize];
            match_cell(g_idx, d_idx, anns, dets, params, scratch, out, npig);
        });

    let mut npig = vec![0u64; prep.n_groups * n_a];
    for (c, counts) in prep.cells.iter().zip(cell_npig.chunks(n_a.max(1))) {
        for (a, &n) in counts.iter().enumerate().take(n_a) {
            npig[c.k as usize * n_a + a] += u64::from(n);
        }
    }
    Matched { status, npig }
}

/// `evaluateImg` for one cell, all area ranges and thresholds; writes
/// `out[(detection * A + a) * T + t]` and `npig[a]`.
#[allow(clippy::too_many_arguments)]
fn match_cell(
    g_idx: &[u32],
    d_idx: &[u32],
    anns: &[GtAnnotation],
    dets: &[Detection],
    params: &Params,
    s: &mut Scratch,
    out: &mut [u8],
    npig: &mut [u32],
) {
    let n_g = g_idx.len();
    let n_t = params.iou_thrs.len();
    let n_a = params.area_ranges.len();

    s.gts.clear();
    s.gts.extend(g_idx.iter().map(|&g| {
        let a = &anns[g as usize];
        GtInfo {
            area: a.area,
            crowd: a.iscrowd,
            real_id: a.id != 0,
        }
    }));
    s.ious.clear();
    for &d in d_idx {
        let db = &dets[d as usize].bbox;
        for &g in g_idx {
            let a = &anns[g as usize];
            s.ious.push(bbox_iou(db, &a.bbox, a.iscrowd));
        }
    }

    if n_g == 0 {
        // Nothing to match: every detection is a FP unless its own area is out of range.
        for (a, range) in params.area_ranges.iter().enumerate() {
            npig[a] = 0;
            for (di, &d) in d_idx.iter().enumerate() {
                let st = if range.excludes(dets[d as usize].area()) {
                    IGNORED
                } else {
                    FP
                };
                out[(di * n_a + a) * n_t..(di * n_a + a + 1) * n_t].fill(st);
            }
        }
        return;
    }

    let n_d = d_idx.len();
    s.sorted.clear();
    s.matches.clear();
    s.matches.resize(n_a * n_d * n_t, NO_MATCH);
    for (a, range) in params.area_ranges.iter().enumerate() {
        // Stable partition: non-ignored GTs first, then ignored, each in cell order.
        for want_ignored in [false, true] {
            for (col, g) in s.gts.iter().enumerate() {
                let ignored = g.crowd || range.excludes(g.area);
                if ignored == want_ignored {
                    s.sorted.push(SortedGt {
                        col: col as u32,
                        ignored,
                        crowd: g.crowd,
                        real_id: g.real_id,
                    });
                }
            }
        }
        let sorted = &s.sorted[a * n_g..(a + 1) * n_g];
        npig[a] = sorted.iter().filter(|g| !g.ignored).count() as u32;

        // Matching depends on the range only through the GT order and ignore flags, so a
        // range that sorts the GTs like an earlier one reuses its matches.
        let block = n_d * n_t;
        let same = (0..a).find(|&b| s.sorted[b * n_g..(b + 1) * n_g] == *sorted);
        if let Some(b) = same {
            s.matches.copy_within(b * block..(b + 1) * block, a * block);
        } else {
            let matches = &mut s.matches[a * block..(a + 1) * block];
            for (t, &thr) in params.iou_thrs.iter().enumerate() {
                s.taken.clear();
                s.taken.resize(n_g, false);
                let floor = thr.min(1.0 - 1e-10);
                for di in 0..n_d {
                    let row = &s.ious[di * n_g..(di + 1) * n_g];
                    let mut best = floor;
                    let mut m: Option<usize> = None;
                    for (gs, g) in sorted.iter().enumerate() {
                        if s.taken[gs] && !g.crowd {
                            continue;
                        }
                        if let Some(mm) = m {
                            if !sorted[mm].ignored && g.ignored {
                                break;
                            }
                        }
                        let iou = row[g.col as usize];
                        if iou < best {
                            continue;
                        }
                        best = iou;
                        m = Some(gs);
                    }
                    if let Some(mm) = m {
                        s.taken[mm] = true;
                        matches[di * n_t + t] = mm as u32;
                    }
                }
            }
        }

        let matches = &s.matches[a * block..(a + 1) * block];
        for (di, &d) in d_idx.iter().enumerate() {
            let outside = range.excludes(dets[d as usize].area());
            for t in 0..n_t {
                let st = match sorted.get(matches[di * n_t + t] as usize) {
                    Some(g) if g.ignored => IGNORED,
                    Some(g) if g.real_id => TP,
                    // Unmatched, or "matched" to GT id 0 (which pycocotools records as 0).
                    _ if outside => IGNORED,
                    _ => FP,
                };
                out[(di * n_a + a) * n_t + t] = st;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_key_orders_like_numpy() {
        let mut v = [0.5, f64::NAN, 0.9, -0.0, 0.1, -2.0, f64::INFINITY, 0.0];
        v.sort_by_key(|&s| desc_score_key(s));
        assert_eq!(v[0], f64::INFINITY);
        assert_eq!(&v[1..4], &[0.9, 0.5, 0.1]);
        // -0.0 and 0.0 tie, so they keep their input order.
        assert!(v[4] == 0.0 && v[4].is_sign_negative() && v[5] == 0.0 && v[5].is_sign_positive());
        assert_eq!(v[6], -2.0);
        assert!(v[7].is_nan());
    }
}
