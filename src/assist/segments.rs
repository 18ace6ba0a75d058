//! Colour segmentation shared by the click grower and the box tightener.
//!
//! Two levels, so that one weak pixel link cannot join an object to the wall:
//!
//! 1. pixels: a union-find over 4-neighbours joins pixels whose colours differ by at
//!    most [`PIXEL_TOLERANCE`] in every channel (smooth shading and noise chain up, a
//!    real edge or a sawtooth wrap of the wall's texture does not);
//! 2. regions: adjacent segments whose *mean* colours are alike ([`alike_means`]) are
//!    merged, closest pairs first (the strips of a textured wall have the same mean,
//!    a grey can band on a grey wall does not, unless it is the wall's own colour);
//!    finally segments under [`MIN_SEGMENT`] pixels (JPEG ringing) or at most
//!    [`MAX_THIN`] pixels thick (blended seams along edges) join their closest
//!    neighbour.
//!
//! Background: segments touching the border of the segmented area or covering more than
//! a given fraction of it. An object is a 4-connected set of non-background
//! pixels.

/// Largest per-channel difference between two neighbouring pixels of one segment.
const PIXEL_TOLERANCE: i32 = 4;
/// Two regions merge when their mean brightness differs by at most this much…
const MEAN_LUMA_TOLERANCE: f64 = 10.0;
/// …and the rest of their mean colour difference is at most this much per channel.
const MEAN_CHROMA_TOLERANCE: f64 = 5.0;
/// Segments smaller than this join their closest neighbour…
const MIN_SEGMENT: u32 = 6;
/// …and so do those at most this many pixels thick (the one- or two-pixel seams of
/// blended colour along an edge, which would otherwise link neighbouring objects).
const MAX_THIN: usize = 2;

/// Union-find with path halving and union by size.
struct Forest {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl Forest {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        loop {
            let p = self.parent.get(i).copied().unwrap_or(i as u32) as usize;
            if p == i {
                return i;
            }
            let gp = self.parent.get(p).copied().unwrap_or(p as u32);
            if let Some(slot) = self.parent.get_mut(i) {
                *slot = gp;
            }
            i = gp as usize;
        }
    }

    /// Joins the sets of `a` and `b`; returns `(kept root, absorbed root)` when they
    /// were apart.
    fn union(&mut self, a: usize, b: usize) -> Option<(usize, usize)> {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return None;
        }
        let (sa, sb) = (
            self.size.get(ra).copied().unwrap_or(1),
            self.size.get(rb).copied().unwrap_or(1),
        );
        let (big, little) = if sa >= sb { (ra, rb) } else { (rb, ra) };
        if let Some(p) = self.parent.get_mut(little) {
            *p = big as u32;
        }
        if let Some(s) = self.size.get_mut(big) {
            *s = sa + sb;
        }
        Some((big, little))
    }
}

/// Whether two mean colours are alike: with `d = a − b` and `m` its mean over channels,
/// `|m| ≤` [`MEAN_LUMA_TOLERANCE`] (brightness) and `max_c |d_c − m| ≤`
/// [`MEAN_CHROMA_TOLERANCE`] (hue and saturation).
fn alike_means(a: [f64; 3], b: [f64; 3]) -> bool {
    let d = [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    let m = (d[0] + d[1] + d[2]) / 3.0;
    m.abs() <= MEAN_LUMA_TOLERANCE && d.iter().all(|&dc| (dc - m).abs() <= MEAN_CHROMA_TOLERANCE)
}

/// L1 distance between two mean colours.
fn distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    (a[0] - b[0]).abs() + (a[1] - b[1]).abs() + (a[2] - b[2]).abs()
}

/// A segmented `w×h` RGB area: which pixels are background.
pub(crate) struct Segmentation {
    pub w: usize,
    pub h: usize,
    /// Per pixel: whether its segment is background.
    pub background: Vec<bool>,
}

/// Segments `px` (row-major, `w×h`) and marks the background: segments touching the
/// border, and those covering more than `large_fraction` of the area.
pub(crate) fn segment(px: &[[u8; 3]], w: usize, h: usize, large_fraction: f64) -> Segmentation {
    let n = w * h;
    if n == 0 || px.len() < n {
        return Segmentation {
            w,
            h,
            background: vec![true; n],
        };
    }
    let colour = |i: usize| px.get(i).copied().unwrap_or([0; 3]);
    let close = |a: [u8; 3], b: [u8; 3]| {
        (0..3).all(|c| (a[c] as i32 - b[c] as i32).abs() <= PIXEL_TOLERANCE)
    };
    let mut forest = Forest::new(n);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if x + 1 < w && close(colour(i), colour(i + 1)) {
                forest.union(i, i + 1);
            }
            if y + 1 < h && close(colour(i), colour(i + w)) {
                forest.union(i, i + w);
            }
        }
    }
    // Colour sums per root.
    let mut sums = vec![[0f64; 3]; n];
    for i in 0..n {
        let r = forest.find(i);
        let c = colour(i);
        if let Some(s) = sums.get_mut(r) {
            for k in 0..3 {
                s[k] += c[k] as f64;
            }
        }
    }
    // Region adjacency: pairs of distinct roots, deduplicated.
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let ri = forest.find(i);
            for j in [(x + 1 < w).then_some(i + 1), (y + 1 < h).then_some(i + w)]
                .into_iter()
                .flatten()
            {
                let rj = forest.find(j);
                if ri != rj {
                    pairs.push((ri.min(rj) as u32, ri.max(rj) as u32));
                }
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    let mean = |forest: &mut Forest, sums: &[[f64; 3]], i: usize| {
        let r = forest.find(i);
        let s = sums.get(r).copied().unwrap_or([0.0; 3]);
        let k = forest.size.get(r).copied().unwrap_or(1).max(1) as f64;
        [s[0] / k, s[1] / k, s[2] / k]
    };
    let mut weighted: Vec<(f64, u32, u32)> = pairs
        .iter()
        .map(|&(a, b)| {
            let d = distance(
                mean(&mut forest, &sums, a as usize),
                mean(&mut forest, &sums, b as usize),
            );
            (d, a, b)
        })
        .collect();
    weighted.sort_by(|p, q| p.0.total_cmp(&q.0));
    let join = |forest: &mut Forest, sums: &mut [[f64; 3]], a: usize, b: usize| {
        if let Some((keep, gone)) = forest.union(a, b) {
            let g = sums.get(gone).copied().unwrap_or([0.0; 3]);
            if let Some(s) = sums.get_mut(keep) {
                for k in 0..3 {
                    s[k] += g[k];
                }
            }
        }
    };
    for &(_, a, b) in &weighted {
        let (a, b) = (a as usize, b as usize);
        if forest.find(a) != forest.find(b)
            && alike_means(mean(&mut forest, &sums, a), mean(&mut forest, &sums, b))
        {
            join(&mut forest, &mut sums, a, b);
        }
    }
    // Extents of the regions so far, to find the thin ones.
    let mut extent = vec![[usize::MAX, usize::MAX, 0, 0]; n];
    for i in 0..n {
        let r = forest.find(i);
        let (x, y) = (i % w, i / w);
        if let Some(e) = extent.get_mut(r) {
            *e = [e[0].min(x), e[1].min(y), e[2].max(x + 1), e[3].max(y + 1)];
        }
    }
    let small_or_thin = |forest: &mut Forest, extent: &[[usize; 4]], i: usize| {
        let r = forest.find(i);
        let e = extent.get(r).copied().unwrap_or([0; 4]);
        let thickness = e[2].saturating_sub(e[0]).min(e[3].saturating_sub(e[1]));
        forest.size.get(r).copied().unwrap_or(1) < MIN_SEGMENT || thickness <= MAX_THIN
    };
    for &(_, a, b) in &weighted {
        let (a, b) = (a as usize, b as usize);
        if small_or_thin(&mut forest, &extent, a) || small_or_thin(&mut forest, &extent, b) {
            let (ea, eb) = (
                extent.get(forest.find(a)).copied().unwrap_or([0; 4]),
                extent.get(forest.find(b)).copied().unwrap_or([0; 4]),
            );
            join(&mut forest, &mut sums, a, b);
            let r = forest.find(a);
            if let Some(e) = extent.get_mut(r) {
                *e = [
                    ea[0].min(eb[0]),
                    ea[1].min(eb[1]),
                    ea[2].max(eb[2]),
                    ea[3].max(eb[3]),
                ];
            }
        }
    }
    // Background roots.
    let mut bg_root = vec![false; n];
    let mut mark = |forest: &mut Forest, i: usize| {
        let r = forest.find(i);
        if let Some(b) = bg_root.get_mut(r) {
            *b = true;
        }
    };
    for x in 0..w {
        mark(&mut forest, x);
        mark(&mut forest, (h - 1) * w + x);
    }
    for y in 0..h {
        mark(&mut forest, y * w);
        mark(&mut forest, y * w + w - 1);
    }
    let large = (large_fraction * n as f64) as u32;
    let background = (0..n)
        .map(|i| {
            let r = forest.find(i);
            bg_root.get(r).copied().unwrap_or(true)
                || forest.size.get(r).copied().unwrap_or(0) > large
        })
        .collect();
    Segmentation { w, h, background }
}

impl Segmentation {
    /// Pixel extent `(x1, y1, x2, y2)` (exclusive ends) of the 4-connected non-background
    /// pixels reachable from the non-background pixels among `seeds`; `None` when no
    /// seed is foreground.
    pub fn extent(&self, seeds: &[usize]) -> Option<(usize, usize, usize, usize)> {
        let (w, n) = (self.w, self.w * self.h);
        let fg = |i: usize| i < n && !self.background.get(i).copied().unwrap_or(true);
        let mut seen = vec![false; n];
        let mut stack = Vec::new();
        for &s in seeds {
            if fg(s) && !seen.get(s).copied().unwrap_or(true) {
                if let Some(v) = seen.get_mut(s) {
                    *v = true;
                }
                stack.push(s);
            }
        }
        if stack.is_empty() {
            return None;
        }
        let (mut x1, mut y1, mut x2, mut y2) = (usize::MAX, usize::MAX, 0, 0);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            x1 = x1.min(x);
            y1 = y1.min(y);
            x2 = x2.max(x + 1);
            y2 = y2.max(y + 1);
            let neighbours = [
                (x > 0).then(|| i - 1),
                (x + 1 < w).then_some(i + 1),
                (y > 0).then(|| i - w),
                (y + 1 < self.h).then_some(i + w),
            ];
            for j in neighbours.into_iter().flatten() {
                if fg(j) && !seen.get(j).copied().unwrap_or(true) {
                    if let Some(v) = seen.get_mut(j) {
                        *v = true;
                    }
                    stack.push(j);
                }
            }
        }
        Some((x1, y1, x2, y2))
    }
}
