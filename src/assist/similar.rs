//! Finding the facings that look like a selected one.
//!
//! Multi-scale template matching: the image is box-averaged by an integer factor so
//! that the example is about [`TARGET_SIDE`] pixels on its shorter side; the example,
//! resampled at a few scales around 1, is slid over the grey image with zero-mean
//! normalised cross-correlation (see [`super::correlation`]); local maxima above a
//! threshold are checked against the example's colours, overlapping candidates are thinned
//! by non-maximum suppression, and each survivor is fitted at full resolution: its edges
//! snapped to the object's (see [`super::tighten`]) where that makes it look more like
//! the example, then moved while the likeness grows (see [`super::example_fit`]).

use std::collections::HashMap;

use image::RgbImage;
use rayon::prelude::*;

use crate::geometry::BoxXyxy;

use super::correlation::{colour_check, local_maxima, ncc_map, Integral, Planes, Template};
use super::example_fit::fit_to_example;
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
/// Sizes searched, relative to the example: ±30 % in steps of about 9 %. On a dense
/// shelf the rows are seen at different scales (a product's facings on two rows of one
/// demo photo differ by 25 %); ±15 % found 660 of the 749 facings of the dense shelves
/// tried (seeds 4, 5, 6), ±30 % 691 (a wrong pack size on 71 instead of 32, 9 instead of
/// 2 false), ±42 % 707 with 50 false; labelling a further dense folder (seed 31) cost
/// 256, 237 and 260 actions.
const SCALES: [f64; 7] = [0.77, 0.84, 0.917, 1.0, 1.091, 1.19, 1.3];
/// The smallest grey correlation for a candidate. On dense demo shelves (three photos
/// of 1750×1300, one example per SKU, seeds other than the benchmark's) the proposals
/// under 0.8 were 97 % wrong: background, parts of two facings, look-alike SKUs;
/// at 0.8 and above, 78 % are right and 92 % of the right ones remain.
const GREY_THRESHOLD: f32 = 0.8;
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
    find_examples(image, &[example], &excluded, &|_, _| 0.0)
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
/// looks like; where two examples' candidates overlap, the better one wins: the one
/// with the higher score plus `preference(example, box)`. Candidates `excluded` says are
/// left out.
pub fn find_examples(
    image: &RgbImage,
    examples: &[BoxXyxy],
    excluded: &dyn Fn(&BoxXyxy) -> bool,
    preference: &dyn Fn(usize, &BoxXyxy) -> f32,
) -> Vec<(usize, Match)> {
    let mut candidates = match_examples(image, examples);
    for c in &mut candidates {
        c.rank = c.m.score + preference(c.example, &c.m.bbox);
    }
    settle(image, examples, candidates, excluded)
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
                let score = grey.min(colour).clamp(0.0, 1.0);
                candidates.push(Candidate {
                    example: k,
                    factor: ff,
                    m: Match { bbox, score },
                    rank: score,
                });
            }
        }
    }
    candidates
}

/// The best of overlapping `candidates` (greedy, by rank), without the `excluded`
/// ones, at most [`MAX_RESULTS`], each snapped to the object's edges at full resolution:
/// `(example, match)`, best first.
fn settle(
    image: &RgbImage,
    examples: &[BoxXyxy],
    candidates: Vec<Candidate>,
    excluded: &dyn Fn(&BoxXyxy) -> bool,
) -> Vec<(usize, Match)> {
    let mut kept = suppress(candidates, excluded);
    kept.truncate(MAX_RESULTS);
    // Full-resolution refinement: the match is off by up to half a block and half a
    // scale step, so that is how far each edge may snap.
    let refined: Vec<Candidate> = kept
        .par_iter()
        .map(|c| {
            let rx = (c.factor + 0.05 * c.m.bbox.width()).ceil() as i64;
            let ry = (c.factor + 0.05 * c.m.bbox.height()).ceil() as i64;
            Candidate {
                m: Match {
                    bbox: fit_to_example(
                        image,
                        examples[c.example],
                        c.m.bbox,
                        tighten_within(image, c.m.bbox, rx, ry),
                    ),
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
    /// What overlapping candidates are compared by: the score, plus the caller's
    /// preference.
    rank: f32,
}

/// Greedy non-maximum suppression, best first, without the `excluded` boxes.
fn suppress(mut candidates: Vec<Candidate>, excluded: &dyn Fn(&BoxXyxy) -> bool) -> Vec<Candidate> {
    candidates.sort_by(|a, b| b.rank.total_cmp(&a.rank));
    let mut kept: Vec<Candidate> = Vec::new();
    for c in candidates {
        if excluded(&c.m.bbox) || kept.iter().any(|k| k.m.bbox.iou(&c.m.bbox) > OVERLAP_IOU) {
            continue;
        }
        kept.push(c);
    }
    kept
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
