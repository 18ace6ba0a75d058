//! What a shelf row says about a box's pack size.
//!
//! Products on one shelf row are seen at one scale, so a design's small and large packs,
//! alike in everything else, differ there by their height; across rows (and photos) the
//! scale changes by more than the packs differ (the dense demo's packs are 0.7 and 0.92
//! of a row's tallest facing, each within ±3 %). A box is compared with the labels of a
//! class on its own row: the nearest one (horizontally: the scale changes slowly along a
//! row) tells whether it is that class's size.
//!
//! [`PackSizes`] says the same across classes: a box's height is its product's height
//! times its row's scale, so the labels of any class on a box's row give the scale, and
//! the box's height at that scale says which pack it is, whatever stands beside it.

use std::collections::HashMap;

use crate::geometry::BoxXyxy;

/// Two boxes are on one row when their vertical extents overlap by at least this share
/// of the lower one's height.
const SAME_ROW_OVERLAP: f64 = 0.5;
/// On one row, heights within ±10 % are one size.
const SAME_SIZE: f64 = 1.1;

/// Whether the nearest of `labels` (the boxes of one class on `bbox`'s photo) on
/// `bbox`'s row has its height (within ±10 %); false with none on the row.
pub fn same_height_on_row<'a>(
    labels: impl IntoIterator<Item = &'a BoxXyxy>,
    bbox: &BoxXyxy,
) -> bool {
    let centre = (bbox.x1 + bbox.x2) / 2.0;
    let distance = |l: &BoxXyxy| ((l.x1 + l.x2) / 2.0 - centre).abs();
    labels
        .into_iter()
        .filter(|l| same_row(l, bbox))
        .min_by(|a, b| distance(a).total_cmp(&distance(b)))
        .is_some_and(|l| (bbox.height() / l.height()).ln().abs() <= SAME_SIZE.ln())
}

/// A row's scale comes from at most this many labels on it, the nearest first (the scale
/// changes slowly along a row).
const ROW_NEIGHBOURS: usize = 3;
/// Rounds of the alternating fit of [`PackSizes::fit`].
const FIT_ROUNDS: usize = 20;

/// Each class's height at a common scale, fitted from labelled photos.
///
/// The model: the logarithm of a label's height is its class's size plus its row's scale,
/// `ln h = size(class) + scale(row)` (products on one row are as far from the camera;
/// rows are the labels chained by vertical overlap). The fit alternates least-squares
/// means, rows given the classes and classes given the rows; sizes are comparable within
/// classes that share rows, directly or through other classes.
#[derive(Clone, Debug, Default)]
pub struct PackSizes {
    size: HashMap<String, f64>,
}

impl PackSizes {
    /// Fits the sizes to `photos`, each its labels (box and class).
    pub fn fit(photos: &[Vec<(BoxXyxy, &str)>]) -> Self {
        let rows: Vec<Vec<usize>> = photos.iter().map(|p| rows_of(p)).collect();
        Self::fit_in_rows(photos, &rows)
    }

    /// [`Self::fit`], and each label's size from the other labels of its photo
    /// ([`Self::log_sizes`]), the rows found once.
    pub fn fit_and_size(photos: &[Vec<(BoxXyxy, &str)>]) -> (Self, Vec<Vec<Option<f64>>>) {
        let rows: Vec<Vec<usize>> = photos.iter().map(|p| rows_of(p)).collect();
        let model = Self::fit_in_rows(photos, &rows);
        let sizes = photos
            .iter()
            .zip(&rows)
            .map(|(photo, rows)| model.sizes_in_rows(photo, rows))
            .collect();
        (model, sizes)
    }

    /// [`Self::fit`] with each photo's rows given ([`rows_of`]).
    fn fit_in_rows(photos: &[Vec<(BoxXyxy, &str)>], rows: &[Vec<usize>]) -> Self {
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut names: Vec<&str> = Vec::new();
        let photos: Vec<FitPhoto> = photos
            .iter()
            .zip(rows)
            .map(|(p, rows)| {
                let classes = p
                    .iter()
                    .map(|(_, c)| {
                        *ids.entry(c).or_insert_with(|| {
                            names.push(c);
                            names.len() - 1
                        })
                    })
                    .collect();
                FitPhoto {
                    classes,
                    heights: p.iter().map(|(b, _)| log_height(b)).collect(),
                    rows,
                    n_rows: rows.iter().max().map_or(0, |m| m + 1),
                }
            })
            .collect();
        let mut size = vec![0.0; names.len()];
        for _ in 0..FIT_ROUNDS {
            let mut sums = vec![(0.0, 0usize); names.len()];
            for p in &photos {
                let labels = || p.classes.iter().zip(&p.heights).zip(p.rows);
                let mut scales = vec![(0.0, 0usize); p.n_rows];
                for ((&c, &h), &r) in labels() {
                    scales[r].0 += h - size[c];
                    scales[r].1 += 1;
                }
                for ((&c, &h), &r) in labels() {
                    let (sum, n) = scales[r];
                    sums[c].0 += h - sum / n as f64;
                    sums[c].1 += 1;
                }
            }
            size = sums.iter().map(|&(sum, n)| sum / n.max(1) as f64).collect();
        }
        Self {
            size: names.iter().map(|n| n.to_string()).zip(size).collect(),
        }
    }

    /// The logarithm of `bbox`'s height at the common scale, from `labels` (the boxes of
    /// its photo, with their classes; those of classes not fitted are left out): its
    /// row's scale from the [`ROW_NEIGHBOURS`] nearest labels on its row, or from all the
    /// photo's labels when none is on its row. `None` when no label gives a scale.
    pub fn log_size<'a>(
        &self,
        labels: impl IntoIterator<Item = (&'a BoxXyxy, &'a str)>,
        bbox: &BoxXyxy,
    ) -> Option<f64> {
        let known: Vec<(&BoxXyxy, f64)> = labels
            .into_iter()
            .filter_map(|(b, class)| Some((b, self.scale_of(b, class)?)))
            .collect();
        size_at(bbox, known.iter().copied(), known.iter().copied())
    }

    /// [`Self::log_size`] of each of `photo`'s labels, from the photo's other labels.
    pub fn log_sizes(&self, photo: &[(BoxXyxy, &str)]) -> Vec<Option<f64>> {
        self.sizes_in_rows(photo, &rows_of(photo))
    }

    /// [`Self::log_sizes`] with the photo's rows given ([`rows_of`]).
    fn sizes_in_rows(&self, photo: &[(BoxXyxy, &str)], rows: &[usize]) -> Vec<Option<f64>> {
        let scales: Vec<Option<f64>> = photo.iter().map(|(b, c)| self.scale_of(b, c)).collect();
        let mut members: Vec<Vec<usize>> = Vec::new();
        for (i, &r) in rows.iter().enumerate() {
            members.resize_with(members.len().max(r + 1), Vec::new);
            members[r].push(i);
        }
        let known = |j: usize| Some((&photo[j].0, scales[j]?));
        (0..photo.len())
            .map(|i| {
                let row = members[rows[i]].iter().filter(|&&j| j != i);
                let all = (0..photo.len()).filter(|&j| j != i);
                size_at(
                    &photo[i].0,
                    row.filter_map(|&j| known(j)),
                    all.filter_map(known),
                )
            })
            .collect()
    }

    /// The scale (log) that `bbox`, a label of `class`, gives its row; `None` for a class
    /// not fitted.
    fn scale_of(&self, bbox: &BoxXyxy, class: &str) -> Option<f64> {
        Some(log_height(bbox) - self.size.get(class)?)
    }
}

/// One photo's labels as [`PackSizes::fit`] reads them: class ids, log heights, rows.
struct FitPhoto<'a> {
    classes: Vec<usize>,
    heights: Vec<f64>,
    rows: &'a [usize],
    n_rows: usize,
}

/// `bbox`'s log height less its row's scale: the mean scale of the [`ROW_NEIGHBOURS`]
/// nearest of `candidates` (labels with the scale each gives) on its row, or of `all`
/// when none is on it.
fn size_at<'a>(
    bbox: &BoxXyxy,
    candidates: impl Iterator<Item = (&'a BoxXyxy, f64)>,
    all: impl Iterator<Item = (&'a BoxXyxy, f64)>,
) -> Option<f64> {
    let centre = (bbox.x1 + bbox.x2) / 2.0;
    let mut on_row: Vec<(f64, f64)> = candidates
        .filter(|(b, _)| same_row(b, bbox))
        .map(|(b, scale)| (((b.x1 + b.x2) / 2.0 - centre).abs(), scale))
        .collect();
    on_row.sort_by(|a, b| a.0.total_cmp(&b.0));
    on_row.truncate(ROW_NEIGHBOURS);
    let scales: Vec<f64> = if on_row.is_empty() {
        all.map(|(_, s)| s).collect()
    } else {
        on_row.into_iter().map(|(_, s)| s).collect()
    };
    (!scales.is_empty())
        .then(|| log_height(bbox) - scales.iter().sum::<f64>() / scales.len() as f64)
}

/// The logarithm of a box's height (of at least a hundredth of a pixel).
fn log_height(b: &BoxXyxy) -> f64 {
    b.height().max(0.01).ln()
}

/// The row of each label: labels chained by [`same_row`], numbered from 0.
fn rows_of(labels: &[(BoxXyxy, &str)]) -> Vec<usize> {
    let n = labels.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for i in 0..n {
        for j in i + 1..n {
            if same_row(&labels[i].0, &labels[j].0) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a] = b;
            }
        }
    }
    let mut number: HashMap<usize, usize> = HashMap::new();
    (0..n)
        .map(|i| {
            let r = root(&mut parent, i);
            let next = number.len();
            *number.entry(r).or_insert(next)
        })
        .collect()
}

/// Whether `a` and `b` stand on one row: their vertical extents overlap by at least
/// [`SAME_ROW_OVERLAP`] of the lower box's height.
fn same_row(a: &BoxXyxy, b: &BoxXyxy) -> bool {
    let overlap = a.y2.min(b.y2) - a.y1.max(b.y1);
    overlap >= SAME_ROW_OVERLAP * a.height().min(b.height())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On one row, a label at the box's height says "this size", one 30 % or 15 %
    /// shorter does not; nor does a label on another row.
    #[test]
    fn the_row_tells_the_pack_sizes_apart() {
        let small = BoxXyxy::new(0.0, 130.0, 40.0, 200.0);
        let elsewhere = [BoxXyxy::new(0.0, 10.0, 40.0, 70.0)];
        let facing = BoxXyxy::new(300.0, 131.0, 340.0, 200.0);
        assert!(same_height_on_row([&small], &facing));
        assert!(!same_height_on_row(&elsewhere, &facing));
        let taller = BoxXyxy::new(300.0, 109.0, 340.0, 200.0);
        assert!(!same_height_on_row([&small], &taller));
        let between = BoxXyxy::new(300.0, 120.0, 340.0, 200.0);
        assert!(!same_height_on_row([&small], &between));
        assert!(!same_height_on_row([], &facing));
        // The nearest label on the row decides.
        let far = BoxXyxy::new(900.0, 100.0, 940.0, 200.0);
        assert!(same_height_on_row([&far, &small], &facing));
        assert!(!same_height_on_row([&small, &far], &taller));
    }

    /// Two rows at scales 1 and 1.5 of two products, sizes 0.7 and 0.92: a box's size at
    /// the common scale tells the products apart on either row, from whichever class
    /// stands beside it, where their heights alone overlap across the rows.
    #[test]
    fn pack_sizes_tell_the_packs_apart_across_rows_and_classes() {
        let facing = |row: f64, k: f64, class_h: f64| {
            let (floor, scale) = if row == 0.0 {
                (100.0, 100.0)
            } else {
                (400.0, 150.0)
            };
            BoxXyxy::new(k * 60.0, floor - class_h * scale, k * 60.0 + 40.0, floor)
        };
        let photo: Vec<(BoxXyxy, &str)> = vec![
            (facing(0.0, 0.0, 0.7), "small"),
            (facing(0.0, 1.0, 0.92), "large"),
            (facing(1.0, 0.0, 0.7), "small"),
            (facing(1.0, 1.0, 0.92), "large"),
        ];
        assert_eq!(rows_of(&photo), [0, 0, 1, 1]);
        let sizes = PackSizes::fit(std::slice::from_ref(&photo));
        let gap = sizes.size["large"] - sizes.size["small"];
        assert!((gap - (0.92f64 / 0.7).ln()).abs() < 1e-6, "{gap}");
        // Each label's size from the others on its photo is its class's.
        for ((_, class), size) in photo.iter().zip(sizes.log_sizes(&photo)) {
            assert!((size.unwrap() - sizes.size[*class]).abs() < 1e-6);
        }
        // Only a small pack on the upper row, a large one on the lower row: the small
        // pack of the lower row (105 px) is as tall as the upper row's large one would be
        // (92 px) give or take 14 %, yet its size is the small one's.
        let new_photo = [
            (facing(0.0, 0.0, 0.7), "small"),
            (facing(1.0, 0.0, 0.92), "large"),
        ];
        let labels = new_photo.iter().map(|(b, c)| (b, *c));
        let lower_small = sizes
            .log_size(labels.clone(), &facing(1.0, 3.0, 0.7))
            .unwrap();
        let upper_large = sizes
            .log_size(labels.clone(), &facing(0.0, 3.0, 0.92))
            .unwrap();
        assert!((lower_small - sizes.size["small"]).abs() < 1e-6);
        assert!((upper_large - sizes.size["large"]).abs() < 1e-6);
        // No label of a fitted class on the photo: no scale.
        let other = BoxXyxy::new(0.0, 0.0, 10.0, 10.0);
        assert_eq!(sizes.log_size([(&other, "unknown")], &other), None);
        assert_eq!(sizes.log_size([], &other), None);
    }
}
