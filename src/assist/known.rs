//! Finding every labelled product at once: each class's example (a labelled box)
//! matched on the photo (see [`super::similar::find_examples`]). Where two classes'
//! matches overlap, the closer look wins, so look-alike products compete for each
//! facing.

use image::RgbImage;

use super::similar::{find_examples, pixel_box, Match};
use crate::geometry::BoxXyxy;

/// Matches overlapping a label already on the photo by more than this IoU are left out.
const EXISTING_IOU: f64 = 0.3;

/// The facings of `image` that look like one of `products` (a class and the box of one
/// of its facings on `image`), best first, with the class of the product each looks
/// like; those overlapping `existing` labels are left out. Products whose box is under
/// two pixels wide or high are passed over.
pub fn find_known(
    image: &RgbImage,
    products: &[(String, BoxXyxy)],
    existing: &[BoxXyxy],
) -> Vec<(String, Match)> {
    let (classes, examples): (Vec<&String>, Vec<BoxXyxy>) = products
        .iter()
        .filter_map(|(class, b)| Some((class, pixel_box(image, *b)?)))
        .unzip();
    let excluded = |b: &BoxXyxy| existing.iter().any(|e| b.iou(e) > EXISTING_IOU);
    find_examples(image, &examples, &excluded)
        .into_iter()
        .filter_map(|(k, m)| Some((classes.get(k)?.to_string(), m)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::render_dense;

    /// One labelled facing per class (those with several) on a dense shelf: the others
    /// are found with their class, and few proposals are wrong.
    #[test]
    fn one_labelled_facing_per_product_finds_the_others() {
        let shelf = render_dense(4, 1, 1200, 900);
        let truth = &shelf.boxes;
        let mut labelled: Vec<BoxXyxy> = Vec::new();
        let mut products: Vec<(String, BoxXyxy)> = Vec::new();
        for b in truth {
            let several = truth
                .iter()
                .filter(|t| t.class_name == b.class_name)
                .count()
                > 1;
            if several && products.iter().all(|(c, _)| *c != b.class_name) {
                products.push((b.class_name.clone(), b.bbox));
                labelled.push(b.bbox);
            }
        }
        let found = find_known(&shelf.image, &products, &labelled);
        let others: Vec<_> = truth
            .iter()
            .filter(|t| {
                !labelled.contains(&t.bbox) && products.iter().any(|(c, _)| *c == t.class_name)
            })
            .collect();
        let right = found
            .iter()
            .filter(|(c, m)| {
                truth
                    .iter()
                    .any(|t| &t.class_name == c && t.bbox.iou(&m.bbox) >= 0.5)
            })
            .count();
        let hit = others
            .iter()
            .filter(|t| {
                found
                    .iter()
                    .any(|(c, m)| *c == t.class_name && m.bbox.iou(&t.bbox) >= 0.7)
            })
            .count();
        println!(
            "find_known (dense 1200x900, {} products labelled once, {} other facings of \
             them): {hit} found at IoU >= 0.7 with the right class; {right} of {} \
             proposals right (IoU >= 0.5, right class)",
            products.len(),
            others.len(),
            found.len()
        );
        assert!(right * 10 >= found.len() * 7, "mostly wrong proposals");
        assert!(hit * 2 >= others.len(), "under half the facings found");
    }

    #[test]
    fn labelled_facings_are_left_out_and_nothing_known_finds_nothing() {
        let shelf = render_dense(4, 0, 1200, 900);
        assert!(find_known(&shelf.image, &[], &[]).is_empty());
        let b = &shelf.boxes[0];
        let products = vec![(b.class_name.clone(), b.bbox)];
        let existing: Vec<BoxXyxy> = shelf.boxes.iter().map(|b| b.bbox).collect();
        assert!(find_known(&shelf.image, &products, &existing).is_empty());
        let tiny = vec![("x".to_string(), BoxXyxy::new(5.0, 5.0, 6.0, 6.0))];
        assert!(find_known(&shelf.image, &tiny, &[]).is_empty());
    }
}
