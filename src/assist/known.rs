//! Finding every labelled product at once: each class's example (a labelled box's
//! pixels) matched on the photo (see [`super::similar::match_examples`]). Where two
//! classes' matches overlap, the closer look wins, so look-alike products compete for
//! each facing.

use image::RgbImage;

use super::similar::{find_examples, Example, Match};
use crate::geometry::BoxXyxy;

/// Matches overlapping a label already on the photo by more than this IoU are left out.
const EXISTING_IOU: f64 = 0.3;

/// A labelled product to look for: its class and the pixels of its box.
pub struct KnownProduct {
    pub class: String,
    pub crop: RgbImage,
}

impl KnownProduct {
    /// The pixels of `bbox` in `image` (clamped, whole pixels); `None` when under two
    /// pixels wide or high.
    pub fn cut(class: &str, image: &RgbImage, bbox: BoxXyxy) -> Option<Self> {
        let b = super::similar::pixel_box(image, bbox)?;
        let crop = image::imageops::crop_imm(
            image,
            b.x1 as u32,
            b.y1 as u32,
            b.width() as u32,
            b.height() as u32,
        )
        .to_image();
        Some(Self {
            class: class.to_string(),
            crop,
        })
    }
}

/// The facings of `image` that look like one of `products`, best first, with the class
/// of the product each looks like; those overlapping `existing` labels are left out.
pub fn find_known(
    image: &RgbImage,
    products: &[KnownProduct],
    existing: &[BoxXyxy],
) -> Vec<(String, Match)> {
    let examples: Vec<Example> = products
        .iter()
        .map(|p| Example {
            source: &p.crop,
            bbox: BoxXyxy::new(0.0, 0.0, p.crop.width() as f64, p.crop.height() as f64),
        })
        .collect();
    let excluded = |b: &BoxXyxy| existing.iter().any(|e| b.iou(e) > EXISTING_IOU);
    find_examples(image, &examples, &excluded)
        .into_iter()
        .filter_map(|(k, m)| Some((products.get(k)?.class.clone(), m)))
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
        let mut products: Vec<KnownProduct> = Vec::new();
        for b in truth {
            let several = truth
                .iter()
                .filter(|t| t.class_name == b.class_name)
                .count()
                > 1;
            if several && products.iter().all(|p| p.class != b.class_name) {
                products.extend(KnownProduct::cut(&b.class_name, &shelf.image, b.bbox));
                labelled.push(b.bbox);
            }
        }
        let found = find_known(&shelf.image, &products, &labelled);
        let others: Vec<_> = truth
            .iter()
            .filter(|t| {
                !labelled.contains(&t.bbox) && products.iter().any(|p| p.class == t.class_name)
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
        let products: Vec<KnownProduct> = KnownProduct::cut(&b.class_name, &shelf.image, b.bbox)
            .into_iter()
            .collect();
        let existing: Vec<BoxXyxy> = shelf.boxes.iter().map(|b| b.bbox).collect();
        assert!(find_known(&shelf.image, &products, &existing).is_empty());
        assert!(KnownProduct::cut("x", &shelf.image, BoxXyxy::new(5.0, 5.0, 6.0, 6.0)).is_none());
    }
}
