//! How the labeller selects several boxes of the shown image: a rubber band (Shift+drag
//! from empty canvas) around the largest group of them it can take alone, and a click
//! (Ctrl+click) on each of the others.

use super::Sim;
use crate::app::document::Document;
use crate::app::editing::labels_inside;
use crate::app::{Command, UiState};
use crate::dataset::LabelBox;
use crate::geometry::BoxXyxy;

/// A band is drawn this far (image pixels) outside the boxes it should take.
const BAND_MARGIN: f64 = 5.0;
/// A band starts at one of its corners, which must be this far from every box: a drag
/// that starts on a box moves it (the canvas takes a press within 2 screen points of a
/// box as on it, 4 image pixels at a zoom of ½).
const CORNER_CLEARANCE: f64 = 4.0;

impl Sim {
    /// Selects exactly the labels `picked` (indices into the shown image's labels): one
    /// band and a Ctrl+click on each box it leaves out, or a click on each where no band
    /// takes two or more of them alone.
    pub(super) fn select(&mut self, picked: &[usize]) {
        let banded = self
            .app
            .workspace
            .doc
            .as_ref()
            .and_then(|doc| largest_band(doc, &self.app.ui, picked))
            .filter(|inside| inside.len() >= 2);
        let first = match banded {
            Some(inside) => {
                self.count("select_band", 1);
                inside
            }
            None => match picked.first() {
                Some(&one) => {
                    self.count("select", 1);
                    vec![one]
                }
                None => return,
            },
        };
        self.app.apply(Command::SelectBoxes(first.clone()));
        for &i in picked.iter().filter(|i| !first.contains(i)) {
            self.count("select", 1);
            self.app.apply(Command::ToggleInSelection(i));
        }
    }
}

/// What the band that takes the most of `picked` (labels of `doc`) and nothing else,
/// with a corner clear of every box to start from, selects (the app's rubber-band rule).
fn largest_band(doc: &Document, ui: &UiState, picked: &[usize]) -> Option<Vec<usize>> {
    let boxes = &doc.annotation.boxes;
    let mut best: Option<Vec<usize>> = None;
    for (n, &a) in picked.iter().enumerate() {
        for &b in &picked[n..] {
            let band = grown_band(boxes, picked, a, b)?;
            let inside = labels_inside(Some(doc), ui, band);
            let better = best.as_ref().is_none_or(|k| inside.len() > k.len());
            if better
                && inside.iter().all(|i| picked.contains(i))
                && corners(&band).iter().any(|&c| {
                    boxes.iter().all(|l| {
                        let e = l.bbox.normalized();
                        c[0] < e.x1 - CORNER_CLEARANCE
                            || c[0] > e.x2 + CORNER_CLEARANCE
                            || c[1] < e.y1 - CORNER_CLEARANCE
                            || c[1] > e.y2 + CORNER_CLEARANCE
                    })
                })
            {
                best = Some(inside);
            }
        }
    }
    best
}

/// The band around picked boxes `a` and `b` and every picked box it cuts, grown until
/// it cuts none, [`BAND_MARGIN`] outside them.
fn grown_band(boxes: &[LabelBox], picked: &[usize], a: usize, b: usize) -> Option<BoxXyxy> {
    let mut band = boxes.get(a)?.bbox.hull(&boxes.get(b)?.bbox);
    while let Some(cut) = picked
        .iter()
        .filter_map(|&i| boxes.get(i))
        .find(|l| !band.contains(&l.bbox) && l.bbox.intersection(&band) > 0.0)
    {
        band = band.hull(&cut.bbox);
    }
    Some(BoxXyxy::new(
        band.x1 - BAND_MARGIN,
        band.y1 - BAND_MARGIN,
        band.x2 + BAND_MARGIN,
        band.y2 + BAND_MARGIN,
    ))
}

fn corners(b: &BoxXyxy) -> [[f64; 2]; 4] {
    [[b.x1, b.y1], [b.x2, b.y1], [b.x1, b.y2], [b.x2, b.y2]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{ImageAnnotation, LabelFormat};

    /// A shelf row of six touching facings (classes a a b b b a) under a row of two.
    fn shelf() -> Document {
        let mut annotation = ImageAnnotation::new("shelf.jpg", 400, 300);
        for (i, class) in ["a", "a", "b", "b", "b", "a"].iter().enumerate() {
            let x = 20.0 + 50.0 * i as f64;
            let top = if i % 2 == 0 { 150.0 } else { 130.0 };
            annotation
                .boxes
                .push(LabelBox::new(*class, BoxXyxy::new(x, top, x + 50.0, 250.0)));
        }
        for x in [20.0, 70.0] {
            annotation
                .boxes
                .push(LabelBox::new("c", BoxXyxy::new(x, 20.0, x + 50.0, 110.0)));
        }
        Document::new("shelf.jpg".into(), annotation, LabelFormat::Voc)
    }

    #[test]
    fn a_band_takes_a_run_of_neighbours_and_nothing_else() {
        let (doc, ui) = (shelf(), UiState::default());
        assert_eq!(largest_band(&doc, &ui, &[2, 3, 4]), Some(vec![2, 3, 4]));
        // 0 and 1 together; 5 needs a click of its own.
        assert_eq!(largest_band(&doc, &ui, &[0, 1, 5]), Some(vec![0, 1]));
        // No band takes 1 and 3 without the shorter 2 between them; one takes 2 and 4
        // below the top of the taller 3.
        assert_eq!(largest_band(&doc, &ui, &[1, 3]).map(|v| v.len()), Some(1));
        assert_eq!(largest_band(&doc, &ui, &[2, 4]), Some(vec![2, 4]));
        assert_eq!(largest_band(&doc, &ui, &[]), None);
    }
}
