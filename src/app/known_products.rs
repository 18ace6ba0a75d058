//! *Find known products* (`k`): every product labelled on the shown photo is looked for
//! on it at once (one example per class), each proposal with its class — or the class
//! its look gives ([`super::class_by_look`], a snapshot of its index taken with the
//! request), which knows every labelled box — reviewed like the model's predictions. All
//! of it runs in the background. On a dense shelf: one box per SKU, then one key,
//! instead of *Find similar* once per SKU.
//!
//! The example of a class is its box of median area on the photo (not a half-hidden
//! facing, not a merged pair). Examples from the folder's other photos were tried and
//! not kept: one example per class from another photo cannot tell a design's small pack
//! from its large one (BENCHMARKS.md, "Find known products").

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use image::RgbImage;

use super::assist::{Proposal, Request};
use super::gallery::look_class::{LookIndex, LookPixels};
use super::AppState;
use crate::assist::known::find_known;
use crate::dataset::LabelBox;
use crate::geometry::BoxXyxy;

impl AppState {
    /// `k`: proposes every product labelled on the shown photo wherever else it is on
    /// it, for review.
    pub fn find_known(&mut self) {
        let Some(doc) = self.workspace.doc.as_ref() else {
            return;
        };
        if doc.annotation.boxes.is_empty() {
            self.info("find known products: label one box of each product first");
            return;
        }
        let labels = doc.annotation.boxes.clone();
        let looks = self.look_snapshot();
        self.start_assist(Request::Known { labels, looks });
    }
}

/// The proposals on `pixels` (the shown photo) like its `labels`, each with the class
/// its look gives where `looks` (the class-by-look index and the photo) is sure, and how
/// many products (classes) were looked for.
pub(super) fn propose(
    pixels: &RgbImage,
    labels: &[LabelBox],
    looks: Option<&(LookIndex, Arc<LookPixels>)>,
) -> (usize, Vec<Proposal>) {
    let products: Vec<(String, BoxXyxy)> = median_boxes(labels).into_iter().collect();
    let proposals = find_known(pixels, &products, labels)
        .into_iter()
        .map(|(class_name, m)| {
            let by_look =
                looks.and_then(|(index, px)| index.class_for(px, &m.bbox, Some(&class_name)));
            Proposal {
                bbox: m.bbox,
                class_name: by_look.unwrap_or(class_name),
                score: m.score,
            }
        })
        .collect();
    (products.len(), proposals)
}

/// Per class, the box of median area among `boxes` of that class.
fn median_boxes(boxes: &[LabelBox]) -> BTreeMap<String, BoxXyxy> {
    let mut by_class: HashMap<&str, Vec<BoxXyxy>> = HashMap::new();
    for b in boxes {
        by_class.entry(&b.class_name).or_default().push(b.bbox);
    }
    by_class
        .into_iter()
        .map(|(class, mut v)| {
            v.sort_by(|a, b| a.area().total_cmp(&b.area()));
            (class.to_string(), v[v.len() / 2])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_box_stands_for_its_class() {
        let b = |class: &str, side: f64| LabelBox::new(class, BoxXyxy::new(0.0, 0.0, side, side));
        let boxes = [b("a", 10.0), b("a", 30.0), b("a", 20.0), b("c", 5.0)];
        let m = median_boxes(&boxes);
        assert_eq!(m.len(), 2);
        assert_eq!(m["a"].width(), 20.0);
        assert_eq!(m["c"].width(), 5.0);
    }
}
