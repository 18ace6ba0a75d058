//! Finding the facings that look like a selected one.
//!
//! Multi-scale template matching: the image is box-averaged by an integer factor so
//! that the example is about [`TARGET_SIDE`] pixels on its shorter side; the example,
//! resampled at a few scales around 1, is slid over the grey image with zero-mean
//! normalised cross-correlation ([`ncc_map`]); local maxima above a threshold are
//! checked against the example's colours ([`colour_check`]), overlapping candidates are
//! thinned by non-maximum suppression, and each survivor's edges are snapped at full
//! resolution (see [`super::tighten`]).

use std::collections::HashMap;

use image::RgbImage;
use rayon::prelude::*;

use crate::geometry::BoxXyxy;

use super::tighten::tighten_within;

/// A proposed box and how alike it is to the example (0–1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Match {
    pub bbox: BoxXyxy,
    pub score: f32,
}

/// The example's shorter side after downscaling, in pixels (the integer factor puts it
/// between about 14 and 28; smaller for a small example in a large photo, see
/// [`WORK_BUDGET`]).
const TARGET_SIDE: f64 = 20.0;
/// Most multiply-adds spent on the correlation (about a quarter of a second on two
/// cores).
const WORK_BUDGET: f64 = 1.5e9;
/// Sizes searched, relative to the example.
const SCALES: [f64; 5] = [0.85, 0.92, 1.0, 1.08, 1.15];
/// The smallest grey correlation for a candidate. On dense demo shelves (three photos
/// of 1750×1300, one example per SKU, seeds other than the benchmark's) the proposals
/// under 0.8 were 97 % wrong: background, parts of two facings, look-alike SKUs;
/// at 0.8 and above, 78 % are right and 92 % of the right ones remain.
const GREY_THRESHOLD: f32 = 0.8;
/// The smallest colour correlation (all three channels together) for a candidate.
const COLOUR_THRESHOLD: f32 = 0.8;
/// The largest difference of mean colour (per channel, 0–255) for a candidate.
const MEAN_COLOUR_TOLERANCE: f32 = 45.0;
/// Candidates overlapping a better one by more than this IoU are dropped, as are those
/// overlapping the example or an existing box.
const OVERLAP_IOU: f64 = 0.3;
/// At most this many proposals.
const MAX_RESULTS: usize = 500;

/// Objects in `image` that look like the one in `example`, best first; boxes that
/// overlap `existing` ones (the labels already there) are left out.
///
/// The example itself is left out too; a box overlapping it or an existing box by
/// IoU > 0.3 is not proposed. Empty when the example is not finite, has no pixel in the
/// image, or is flat (one colour).
pub fn find_similar(image: &RgbImage, example: BoxXyxy, existing: &[BoxXyxy]) -> Vec<Match> {
    let Some(example) = pixel_box(image, example) else {
        return Vec::new();
    };
    let excluded = |b: &BoxXyxy| {
        b.iou(&example) > OVERLAP_IOU || existing.iter().any(|e| b.iou(e) > OVERLAP_IOU)
    };
    find_examples(image, &[example], &excluded)
        .into_iter()
        .map(|(_, m)| m)
        .collect()
}

/// `bbox` clamped to `image` and rounded to whole pixels; `None` when it is not finite
/// or under two pixels wide or high.
pub fn pixel_box(image: &RgbImage, bbox: BoxXyxy) -> Option<BoxXyxy> {
    let (w, h) = (image.width() as f64, image.height() as f64);
    if !bbox.is_finite() || w < 1.0 || h < 1.0 {
        return None;
    }
    let b = bbox.normalized().clamp_to(w, h);
    let (x1, y1) = (b.x1.round().max(0.0), b.y1.round().max(0.0));
    let (x2, y2) = (b.x2.round().min(w), b.y2.round().min(h));
    (x2 - x1 >= 2.0 && y2 - y1 >= 2.0).then(|| BoxXyxy::new(x1, y1, x2, y2))
}

/// The objects in `image` that look like any of the objects at `examples` (boxes of
/// `image`, each from [`pixel_box`]), best first, each with the index of the example it
/// looks like; where two examples' candidates overlap, the better one wins. Candidates
/// `excluded` says are left out.
pub fn find_examples(
    image: &RgbImage,
    examples: &[BoxXyxy],
    excluded: &dyn Fn(&BoxXyxy) -> bool,
) -> Vec<(usize, Match)> {
    settle(image, match_examples(image, examples), excluded)
}

/// Every place of `image` where one of `examples` matches (at one of the searched
/// scales), overlapping ones included: the raw matches before [`settle`].
fn match_examples(image: &RgbImage, examples: &[BoxXyxy]) -> Vec<Candidate> {
    let (w, h) = (image.width() as f64, image.height() as f64);
    let mut scaled: HashMap<u32, (Planes, Integral)> = HashMap::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    for (k, example) in examples.iter().enumerate() {
        let (ew, eh) = (example.width(), example.height());
        if ew < 2.0 || eh < 2.0 || ew > w || eh > h {
            continue;
        }
        // The factor that brings the example to the target size, or a larger one where
        // the correlation would cost more than the budget: the work is
        // `(W/f)·(H/f)·(ew/f)·(eh/f)·scales`, so `f ≥ (W·H·ew·eh·scales / budget)^¼`.
        let by_size = (ew.min(eh) / TARGET_SIDE).round();
        let by_work = (w * h * ew * eh * SCALES.len() as f64 / WORK_BUDGET)
            .powf(0.25)
            .ceil();
        let f = (by_size.max(by_work) as u32).max(1);
        let (small, integral) = scaled.entry(f).or_insert_with(|| {
            let small = Planes::downscale(image, f);
            let integral = Integral::new(&small);
            (small, integral)
        });
        let ff = f as f64;
        for &s in &SCALES {
            let tw = ((ew * s / ff).round() as usize).max(3);
            let th = ((eh * s / ff).round() as usize).max(3);
            let Some(template) = Template::sample(image, *example, tw, th) else {
                continue;
            };
            let Some(map) = ncc_map(small, integral, &template) else {
                continue;
            };
            let radius = (tw.min(th) / 3).max(1);
            for (x, y, grey) in local_maxima(&map, radius, GREY_THRESHOLD) {
                let Some(colour) = colour_check(small, &template, x, y) else {
                    continue;
                };
                let bbox = BoxXyxy::new(
                    (x as u32 * f) as f64,
                    (y as u32 * f) as f64,
                    ((x + tw) as u32 * f) as f64,
                    ((y + th) as u32 * f) as f64,
                );
                candidates.push(Candidate {
                    example: k,
                    factor: ff,
                    m: Match {
                        bbox,
                        score: grey.min(colour).clamp(0.0, 1.0),
                    },
                });
            }
        }
    }
    candidates
}

/// The best of overlapping `candidates` (greedy, by score), without the `excluded`
/// ones, at most [`MAX_RESULTS`], each snapped to the object's edges at full resolution:
/// `(example, match)`, best first.
fn settle(
    image: &RgbImage,
    candidates: Vec<Candidate>,
    excluded: &dyn Fn(&BoxXyxy) -> bool,
) -> Vec<(usize, Match)> {
    let mut kept = suppress(candidates, excluded);
    kept.truncate(MAX_RESULTS);
    // Full-resolution refinement: the match is off by up to half a block and half a
    // scale step, so that is how far each edge may move.
    let refined: Vec<Candidate> = kept
        .par_iter()
        .map(|c| {
            let rx = (c.factor + 0.05 * c.m.bbox.width()).ceil() as i64;
            let ry = (c.factor + 0.05 * c.m.bbox.height()).ceil() as i64;
            Candidate {
                m: Match {
                    bbox: tighten_within(image, c.m.bbox, rx, ry),
                    score: c.m.score,
                },
                ..*c
            }
        })
        .collect();
    suppress(refined, excluded)
        .into_iter()
        .map(|c| (c.example, c.m))
        .collect()
}

/// A raw match of example `example`, found at downscale factor `factor`; its box is the
/// example's size times the scale it matched at.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    example: usize,
    factor: f64,
    m: Match,
}

/// Greedy non-maximum suppression, best first, without the `excluded` boxes.
fn suppress(mut candidates: Vec<Candidate>, excluded: &dyn Fn(&BoxXyxy) -> bool) -> Vec<Candidate> {
    candidates.sort_by(|a, b| b.m.score.total_cmp(&a.m.score));
    let mut kept: Vec<Candidate> = Vec::new();
    for c in candidates {
        if excluded(&c.m.bbox) || kept.iter().any(|k| k.m.bbox.iou(&c.m.bbox) > OVERLAP_IOU) {
            continue;
        }
        kept.push(c);
    }
    kept
}

/// The image box-averaged over `f`×`f` blocks (partial blocks at the right and bottom
/// dropped): grey (Rec. 601 luma) and colour planes.
struct Planes {
    w: usize,
    h: usize,
    grey: Vec<f32>,
    rgb: Vec<[f32; 3]>,
}

impl Planes {
    fn downscale(image: &RgbImage, f: u32) -> Self {
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
struct Integral {
    w1: usize,
    sum: Vec<f64>,
    sq: Vec<f64>,
}

impl Integral {
    fn new(p: &Planes) -> Self {
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
struct Template {
    tw: usize,
    th: usize,
    /// `g − mean(g)`, row-major.
    grey: Vec<f32>,
    /// `sqrt(Σ (g − mean(g))²)`.
    norm: f64,
    rgb: Vec<[f32; 3]>,
}

impl Template {
    fn sample(image: &RgbImage, ex: BoxXyxy, tw: usize, th: usize) -> Option<Self> {
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
}

/// A score map: `map[y·w + x]` for the template's top-left corner at `(x, y)`.
struct Map {
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
fn ncc_map(p: &Planes, integral: &Integral, t: &Template) -> Option<Map> {
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
fn local_maxima(map: &Map, radius: usize, threshold: f32) -> Vec<(usize, usize, f32)> {
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
fn colour_check(p: &Planes, t: &Template, x: usize, y: usize) -> Option<f32> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::render_scene;
    use image::Rgb;

    /// A wall like the demo's (with its sawtooth shading).
    fn wall(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let shade = ((x + 2 * y) % 17) as u8;
            Rgb([200 - shade, 190 - shade, 175 - shade])
        })
    }

    /// Copies the pixels of product `k` of `scene` (only its own pixels) so that its
    /// box's top-left corner lands at `(x, y)` of `dst`; returns the new box.
    fn paste(dst: &mut RgbImage, scene: &crate::demo::Scene, k: usize, x: u32, y: u32) -> BoxXyxy {
        let b = scene.boxes[k].bbox;
        let sw = scene.image.width();
        let (bx, by) = (b.x1 as u32, b.y1 as u32);
        for yy in by..b.y2 as u32 {
            for xx in bx..b.x2 as u32 {
                if scene.owner[(yy * sw + xx) as usize] as usize == k + 1 {
                    let p = *scene.image.get_pixel(xx, yy);
                    dst.put_pixel(x + xx - bx, y + yy - by, p);
                }
            }
        }
        BoxXyxy::new(
            x as f64,
            y as f64,
            x as f64 + b.width(),
            y as f64 + b.height(),
        )
    }

    /// Product indices of a scene: the first of class `class`.
    fn first_of(scene: &crate::demo::Scene, class: &str) -> Option<usize> {
        scene.boxes.iter().position(|b| b.class_name == class)
    }

    /// 11 copies of one product (the first is the example) and 6 other products.
    fn shelf() -> (RgbImage, Vec<BoxXyxy>, Vec<BoxXyxy>) {
        let scene = render_scene(21, 0, 640, 480);
        let mut img = wall(900, 620);
        let classes: Vec<usize> = ["Cola", "Sprite", "Fanta"]
            .iter()
            .filter_map(|c| first_of(&scene, c))
            .collect();
        assert!(classes.len() >= 2, "the scene should hold two classes");
        let (main, others) = (classes[0], &classes[1..]);
        let mb = scene.boxes[main].bbox;
        let (cw, ch) = (mb.width() as u32 + 12, mb.height() as u32 + 12);
        let mut copies = Vec::new();
        let mut distractors = Vec::new();
        let per_row = (880 / cw.max(1)).max(1);
        for i in 0..17u32 {
            let (col, row) = (i % per_row, i / per_row);
            let (x, y) = (10 + col * cw, 10 + row * ch.max(200));
            if i % 3 == 2 && !others.is_empty() {
                let k = others[(i as usize / 3) % others.len()];
                let ob = scene.boxes[k].bbox;
                if x + ob.width() as u32 >= 900 || y + ob.height() as u32 >= 620 {
                    continue;
                }
                distractors.push(paste(&mut img, &scene, k, x, y));
            } else {
                if x + cw >= 900 || y + ch >= 620 {
                    continue;
                }
                copies.push(paste(&mut img, &scene, main, x, y));
            }
        }
        (img, copies, distractors)
    }

    #[test]
    fn repeated_products_are_found_and_others_are_not() {
        let (img, copies, distractors) = shelf();
        assert!(copies.len() >= 8, "{} copies", copies.len());
        let example = copies[0];
        let found = find_similar(&img, example, &[]);
        let targets = &copies[1..];
        let hit = targets
            .iter()
            .filter(|t| found.iter().any(|m| m.bbox.iou(t) >= 0.85))
            .count();
        let false_props = found
            .iter()
            .filter(|m| !targets.iter().any(|t| m.bbox.iou(t) >= 0.5))
            .count();
        println!(
            "find_similar: {hit}/{} copies found (IoU >= 0.85), {false_props}/{} proposals \
             false, {} distractors in the image",
            targets.len(),
            found.len(),
            distractors.len()
        );
        for m in &found {
            println!("  {:?} {:.3}", m.bbox, m.score);
        }
        assert!(hit * 10 >= targets.len() * 9);
        assert!(false_props * 10 <= found.len().max(1));
        assert!(found.windows(2).all(|p| p[0].score >= p[1].score));
    }

    #[test]
    fn existing_boxes_and_the_example_are_left_out() {
        let (img, copies, _) = shelf();
        let existing = &copies[1..4];
        let found = find_similar(&img, copies[0], existing);
        for m in &found {
            assert!(m.bbox.iou(&copies[0]) <= OVERLAP_IOU);
            assert!(existing.iter().all(|e| m.bbox.iou(e) <= OVERLAP_IOU));
        }
        let hit = copies[4..]
            .iter()
            .filter(|t| found.iter().any(|m| m.bbox.iou(t) >= 0.85))
            .count();
        assert!(hit * 10 >= (copies.len() - 4) * 9);
    }

    /// A dense shelf (touching, occluding facings of 40 similar SKUs, perspective, blur
    /// and noise): measured, with loose bounds.
    #[test]
    fn dense_shelf_proposals_are_mostly_right() {
        let scene = crate::demo::render_dense(4, 0, 1200, 900);
        let boxes = &scene.boxes;
        // The class with the most facings; its widest facing as the example.
        let mut counts = std::collections::HashMap::new();
        for b in boxes {
            *counts.entry(b.class_name.as_str()).or_insert(0usize) += 1;
        }
        let Some((class, _)) = counts.into_iter().max_by_key(|&(c, n)| (n, c)) else {
            return;
        };
        let Some(k) = (0..boxes.len())
            .filter(|&i| boxes[i].class_name == class)
            .max_by(|&a, &b| boxes[a].bbox.area().total_cmp(&boxes[b].bbox.area()))
        else {
            return;
        };
        let same: Vec<BoxXyxy> = boxes
            .iter()
            .enumerate()
            .filter(|&(i, b)| i != k && b.class_name == class)
            .map(|(_, b)| b.bbox)
            .collect();
        let found = find_similar(&scene.image, boxes[k].bbox, &[]);
        let right = found
            .iter()
            .filter(|m| same.iter().any(|t| m.bbox.iou(t) >= 0.5))
            .count();
        let hit = same
            .iter()
            .filter(|t| found.iter().any(|m| m.bbox.iou(t) >= 0.7))
            .count();
        println!(
            "find_similar (dense 1200x900, {} facings, class {class}): {hit}/{} same-class \
             facings found (IoU >= 0.7), {right}/{} proposals right (IoU >= 0.5)",
            boxes.len(),
            same.len(),
            found.len()
        );
        assert!(right * 2 >= found.len(), "mostly wrong proposals");
    }

    #[test]
    fn degenerate_examples_find_nothing() {
        let img = wall(100, 80);
        assert!(find_similar(&img, BoxXyxy::new(5.0, 5.0, 6.0, 6.0), &[]).is_empty());
        assert!(find_similar(&img, BoxXyxy::new(200.0, 5.0, 260.0, 60.0), &[]).is_empty());
        let nan = BoxXyxy::new(f64::NAN, 5.0, 60.0, 60.0);
        assert!(find_similar(&img, nan, &[]).is_empty());
        let flat = RgbImage::from_pixel(100, 80, Rgb([50, 60, 70]));
        assert!(find_similar(&flat, BoxXyxy::new(10.0, 10.0, 40.0, 50.0), &[]).is_empty());
        assert!(
            find_similar(&RgbImage::new(0, 0), BoxXyxy::new(0.0, 0.0, 4.0, 4.0), &[]).is_empty()
        );
    }
}
