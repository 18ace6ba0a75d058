//! The correlation behind *Find similar* and *Find known products*: an image
//! box-averaged into grey and colour planes ([`Planes`]), its summed-area tables
//! ([`Integral`]), an example resampled to a template ([`Template`]), the zero-mean
//! normalised cross-correlation of the template with every window ([`ncc_map`]), the
//! map's local maxima and the colour check of a window.

use image::RgbImage;
use rayon::prelude::*;

use crate::geometry::BoxXyxy;

/// The smallest colour correlation (all three channels together) for a candidate.
const COLOUR_THRESHOLD: f32 = 0.8;
/// The largest difference of mean colour (per channel, 0–255) for a candidate.
const MEAN_COLOUR_TOLERANCE: f32 = 45.0;

/// The image box-averaged over `f`×`f` blocks (partial blocks at the right and bottom
/// dropped): grey (Rec. 601 luma) and colour planes.
pub(super) struct Planes {
    w: usize,
    h: usize,
    grey: Vec<f32>,
    rgb: Vec<[f32; 3]>,
}

impl Planes {
    pub(super) fn downscale(image: &RgbImage, f: u32) -> Self {
        let f = f.max(1) as usize;
        let (iw, ih) = (image.width() as usize, image.height() as usize);
        let (w, h) = (iw / f, ih / f);
        let raw = image.as_raw();
        let norm = 1.0 / (f * f) as f32;
        let rgb: Vec<[f32; 3]> = (0..h)
            .into_par_iter()
            .flat_map_iter(|y| {
                let mut row = vec![[0f32; 3]; w];
                for yy in y * f..(y + 1) * f {
                    let line = raw.get(yy * iw * 3..(yy + 1) * iw * 3).unwrap_or(&[]);
                    for (x, acc) in row.iter_mut().enumerate() {
                        let block = line.get(x * f * 3..(x + 1) * f * 3).unwrap_or(&[]);
                        for p in block.chunks_exact(3) {
                            acc[0] += p[0] as f32;
                            acc[1] += p[1] as f32;
                            acc[2] += p[2] as f32;
                        }
                    }
                }
                row.into_iter()
                    .map(move |a| [a[0] * norm, a[1] * norm, a[2] * norm])
            })
            .collect();
        let grey = rgb.iter().map(|c| luma(*c)).collect();
        Self { w, h, grey, rgb }
    }
}

/// Rec. 601 luma.
fn luma(c: [f32; 3]) -> f32 {
    0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
}

/// Summed-area tables of the grey plane and of its square (f64: exact enough for
/// megapixel sums), `(w+1)×(h+1)`.
pub(super) struct Integral {
    w1: usize,
    sum: Vec<f64>,
    sq: Vec<f64>,
}

impl Integral {
    pub(super) fn new(p: &Planes) -> Self {
        let w1 = p.w + 1;
        let mut sum = vec![0f64; w1 * (p.h + 1)];
        let mut sq = vec![0f64; w1 * (p.h + 1)];
        for y in 0..p.h {
            let (mut rs, mut rq) = (0f64, 0f64);
            for x in 0..p.w {
                let v = p.grey.get(y * p.w + x).copied().unwrap_or(0.0) as f64;
                rs += v;
                rq += v * v;
                let above = y * w1 + x + 1;
                let here = (y + 1) * w1 + x + 1;
                let (sa, qa) = (
                    sum.get(above).copied().unwrap_or(0.0),
                    sq.get(above).copied().unwrap_or(0.0),
                );
                if let Some(s) = sum.get_mut(here) {
                    *s = sa + rs;
                }
                if let Some(q) = sq.get_mut(here) {
                    *q = qa + rq;
                }
            }
        }
        Self { w1, sum, sq }
    }

    /// Sum and sum of squares over `[x, x+w) × [y, y+h)`.
    fn window(&self, x: usize, y: usize, w: usize, h: usize) -> (f64, f64) {
        let at =
            |t: &Vec<f64>, xx: usize, yy: usize| t.get(yy * self.w1 + xx).copied().unwrap_or(0.0);
        let rect =
            |t: &Vec<f64>| at(t, x + w, y + h) - at(t, x, y + h) - at(t, x + w, y) + at(t, x, y);
        (rect(&self.sum), rect(&self.sq))
    }
}

/// The example resampled to `tw×th` cells (each the mean of the example pixels it
/// covers): zero-mean grey values, their norm, and the cells' colours.
pub(super) struct Template {
    tw: usize,
    th: usize,
    /// `g − mean(g)`, row-major.
    grey: Vec<f32>,
    /// `sqrt(Σ (g − mean(g))²)`.
    norm: f64,
    rgb: Vec<[f32; 3]>,
}

impl Template {
    pub(super) fn sample(image: &RgbImage, ex: BoxXyxy, tw: usize, th: usize) -> Option<Self> {
        let (x0, y0) = (ex.x1 as usize, ex.y1 as usize);
        let (ew, eh) = (ex.width() as usize, ex.height() as usize);
        let (iw, ih) = (image.width() as usize, image.height() as usize);
        let raw = image.as_raw();
        let mut rgb = Vec::with_capacity(tw * th);
        for j in 0..th {
            let ya = y0 + j * eh / th;
            let yb = (y0 + (j + 1) * eh / th).max(ya + 1).min(ih);
            for i in 0..tw {
                let xa = x0 + i * ew / tw;
                let xb = (x0 + (i + 1) * ew / tw).max(xa + 1).min(iw);
                let mut acc = [0f32; 3];
                let mut n = 0f32;
                for y in ya..yb {
                    let line = raw.get((y * iw + xa) * 3..(y * iw + xb) * 3).unwrap_or(&[]);
                    for p in line.chunks_exact(3) {
                        acc[0] += p[0] as f32;
                        acc[1] += p[1] as f32;
                        acc[2] += p[2] as f32;
                        n += 1.0;
                    }
                }
                let n = n.max(1.0);
                rgb.push([acc[0] / n, acc[1] / n, acc[2] / n]);
            }
        }
        let g: Vec<f32> = rgb.iter().map(|c| luma(*c)).collect();
        let mean = g.iter().map(|&v| v as f64).sum::<f64>() / g.len().max(1) as f64;
        let grey: Vec<f32> = g.iter().map(|&v| (v as f64 - mean) as f32).collect();
        let norm = grey
            .iter()
            .map(|&v| (v as f64) * (v as f64))
            .sum::<f64>()
            .sqrt();
        // A flat example (under one grey level of spread) matches everything.
        if norm < (grey.len() as f64).sqrt() {
            return None;
        }
        Some(Self {
            tw,
            th,
            grey,
            norm,
            rgb,
        })
    }

    /// Normalised cross-correlation with `other`, sampled to the same size (−1–1; `None`
    /// for another size).
    pub(super) fn correlation(&self, other: &Template) -> Option<f32> {
        if (self.tw, self.th) != (other.tw, other.th) {
            return None;
        }
        let dot: f64 = self
            .grey
            .iter()
            .zip(&other.grey)
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum();
        Some((dot / (self.norm * other.norm)) as f32)
    }
}

/// A score map: `map[y·w + x]` for the template's top-left corner at `(x, y)`.
pub(super) struct Map {
    w: usize,
    h: usize,
    v: Vec<f32>,
}

/// Zero-mean normalised cross-correlation of the template with every window of the
/// grey plane:
///
/// `ncc(x, y) = Σ T'·I / (‖T'‖ · sqrt(Σ I² − (Σ I)²/n))`,
///
/// where `T' = T − mean(T)` (so `Σ T'·(I − mean(I)) = Σ T'·I`) and the window sums come
/// from the summed-area tables. The numerator is accumulated row by row as
/// `acc[x] += T'(tx, ty) · I(x + tx, y + ty)` over the whole output row (a contiguous
/// multiply-add the compiler vectorises); rows run in parallel. Windows flatter than
/// about one grey level score 0. `None` when the template does not fit.
pub(super) fn ncc_map(p: &Planes, integral: &Integral, t: &Template) -> Option<Map> {
    if t.tw > p.w || t.th > p.h {
        return None;
    }
    let (ow, oh) = (p.w - t.tw + 1, p.h - t.th + 1);
    let n = (t.tw * t.th) as f64;
    let mut v = vec![0f32; ow * oh];
    v.par_chunks_mut(ow).enumerate().for_each(|(y, out)| {
        for ty in 0..t.th {
            let row = p
                .grey
                .get((y + ty) * p.w..(y + ty + 1) * p.w)
                .unwrap_or(&[]);
            let trow = t.grey.get(ty * t.tw..(ty + 1) * t.tw).unwrap_or(&[]);
            for (tx, &tv) in trow.iter().enumerate() {
                let Some(src) = row.get(tx..tx + ow) else {
                    continue;
                };
                for (o, &s) in out.iter_mut().zip(src) {
                    *o += tv * s;
                }
            }
        }
        for (x, o) in out.iter_mut().enumerate() {
            let (s, q) = integral.window(x, y, t.tw, t.th);
            let var = q - s * s / n;
            *o = if var > n {
                (*o as f64 / (t.norm * var.sqrt())) as f32
            } else {
                0.0
            };
        }
    });
    Some(Map { w: ow, h: oh, v })
}

/// Positions `(x, y, value)` where the map is at least `threshold` and no larger than
/// any value within `radius` (ties go to the first in row-major order).
pub(super) fn local_maxima(map: &Map, radius: usize, threshold: f32) -> Vec<(usize, usize, f32)> {
    let at = |x: usize, y: usize| map.v.get(y * map.w + x).copied().unwrap_or(f32::MIN);
    let mut out = Vec::new();
    for y in 0..map.h {
        for x in 0..map.w {
            let v = at(x, y);
            if v < threshold {
                continue;
            }
            let mut best = true;
            'scan: for yy in y.saturating_sub(radius)..(y + radius + 1).min(map.h) {
                for xx in x.saturating_sub(radius)..(x + radius + 1).min(map.w) {
                    let u = at(xx, yy);
                    let earlier = (yy, xx) < (y, x);
                    if u > v || (earlier && u == v) {
                        best = false;
                        break 'scan;
                    }
                }
            }
            if best {
                out.push((x, y, v));
            }
        }
    }
    out
}

/// The colour correlation of the template with the window at `(x, y)` (all three
/// channels, each made zero-mean, as one vector), or `None` when it is below
/// [`COLOUR_THRESHOLD`] or the mean colours differ by more than
/// [`MEAN_COLOUR_TOLERANCE`] in a channel.
pub(super) fn colour_check(p: &Planes, t: &Template, x: usize, y: usize) -> Option<f32> {
    let mut window = Vec::with_capacity(t.tw * t.th);
    for ty in 0..t.th {
        let row = p.rgb.get((y + ty) * p.w + x..(y + ty) * p.w + x + t.tw)?;
        window.extend_from_slice(row);
    }
    let n = window.len().max(1) as f64;
    let mean = |v: &[[f32; 3]], c: usize| v.iter().map(|p| p[c] as f64).sum::<f64>() / n;
    let (mut num, mut da, mut db) = (0f64, 0f64, 0f64);
    for c in 0..3 {
        let (ma, mb) = (mean(&t.rgb, c), mean(&window, c));
        if (ma - mb).abs() > MEAN_COLOUR_TOLERANCE as f64 {
            return None;
        }
        for (a, b) in t.rgb.iter().zip(&window) {
            let (u, v) = (a[c] as f64 - ma, b[c] as f64 - mb);
            num += u * v;
            da += u * u;
            db += v * v;
        }
    }
    if da <= 0.0 || db <= 0.0 {
        return None;
    }
    let r = (num / (da * db).sqrt()) as f32;
    (r >= COLOUR_THRESHOLD).then_some(r)
}
