//! What a shelf row says about a box's pack size.
//!
//! Products on one shelf row are seen at one scale, so a design's small and large packs,
//! alike in everything else, differ there by their height; across rows (and photos) the
//! scale changes by more than the packs differ (the dense demo's packs are 0.7 and 0.92
//! of a row's tallest facing, each within ±3 %). A box is compared with the labels of a
//! class on its own row: the nearest one (horizontally: the scale changes slowly along a
//! row) tells whether it is that class's size.

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
}
