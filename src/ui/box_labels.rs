//! Which class names are drawn on the canvas' boxes. On a dense shelf (hundreds of boxes
//! at a low zoom) every name drawn would overlap into an unreadable smear, so a box that
//! is small on screen shows no name, and a name that would overlap one already drawn is
//! left out; the selected boxes and the box under the pointer always show theirs.

use std::collections::HashMap;

use egui::{Rect, Vec2};

/// Smallest on-screen box height (points) that shows its class name unasked.
pub const MIN_NAMED_HEIGHT: f32 = 14.0;
/// Smallest on-screen box width (points) that shows its class name unasked.
pub const MIN_NAMED_WIDTH: f32 = 14.0;

/// Whether a box of this on-screen size is big enough to show its name unasked.
pub fn big_enough(on_screen: Vec2) -> bool {
    on_screen.y >= MIN_NAMED_HEIGHT && on_screen.x >= MIN_NAMED_WIDTH
}

/// A class name that may be drawn: where it would go, and whether it must be (the box is
/// selected or under the pointer).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NameTag {
    /// The name's background rectangle on screen.
    pub rect: Rect,
    /// Drawn whatever else is drawn (selected or hovered).
    pub always: bool,
}

/// Which of `tags` to draw: every `always` one, then the others in order, each unless it
/// overlaps a tag kept before it. (Callers pass only the boxes that are
/// [`big_enough`] or `always`.)
pub fn visible_tags(tags: &[NameTag]) -> Vec<bool> {
    let mut shown = vec![false; tags.len()];
    let mut kept = Kept::default();
    for (i, t) in tags.iter().enumerate().filter(|(_, t)| t.always) {
        shown[i] = true;
        kept.insert(t.rect);
    }
    for (i, t) in tags.iter().enumerate().filter(|(_, t)| !t.always) {
        if !kept.overlaps(t.rect) {
            shown[i] = true;
            kept.insert(t.rect);
        }
    }
    shown
}

/// Side (points) of the cells [`Kept`] files names under.
const CELL: f32 = 64.0;

/// The names kept so far, filed by the grid cells they cover, so that checking a name
/// looks at its neighbours only (thousands of boxes stay linear).
#[derive(Default)]
struct Kept {
    cells: HashMap<(i32, i32), Vec<Rect>>,
}

impl Kept {
    fn cells(r: Rect) -> impl Iterator<Item = (i32, i32)> {
        let cell = |v: f32| (v / CELL).floor() as i32;
        let (x0, x1, y0, y1) = (cell(r.min.x), cell(r.max.x), cell(r.min.y), cell(r.max.y));
        (y0..=y1).flat_map(move |y| (x0..=x1).map(move |x| (x, y)))
    }

    fn insert(&mut self, r: Rect) {
        for c in Self::cells(r) {
            self.cells.entry(c).or_default().push(r);
        }
    }

    fn overlaps(&self, r: Rect) -> bool {
        Self::cells(r)
            .filter_map(|c| self.cells.get(&c))
            .any(|list| list.iter().any(|k| overlap(*k, r)))
    }
}

/// Points by which two names' backgrounds may overlap (their padding: both texts stay
/// whole).
pub const OVERLAP_SLACK: f32 = 3.0;

/// Whether two names' backgrounds overlap by more than [`OVERLAP_SLACK`] both ways
/// (names of boxes side by side, touching or barely overlapping, both show).
fn overlap(a: Rect, b: Rect) -> bool {
    let i = a.intersect(b);
    i.width() > OVERLAP_SLACK && i.height() > OVERLAP_SLACK
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui::{pos2, vec2};

    fn tag(x: f32, y: f32, always: bool) -> NameTag {
        NameTag {
            rect: Rect::from_min_size(pos2(x, y), vec2(60.0, 16.0)),
            always,
        }
    }

    #[test]
    fn small_boxes_show_no_name_unasked() {
        assert!(big_enough(vec2(40.0, 14.0)));
        assert!(!big_enough(vec2(40.0, 13.9)));
        assert!(!big_enough(vec2(10.0, 40.0)));
    }

    #[test]
    fn overlapping_names_are_left_out_but_selected_and_hovered_always_show() {
        // Three boxes 20 points apart with 60-point names: only every third name fits.
        let tags = [
            tag(0.0, 0.0, false),
            tag(20.0, 0.0, false),
            tag(40.0, 0.0, false),
            tag(60.0, 0.0, false),
        ];
        assert_eq!(visible_tags(&tags), [true, false, false, true]);
        // The hovered (or selected) one wins over its neighbours, even an earlier one.
        let mut hovered = tags;
        hovered[1].always = true;
        assert_eq!(visible_tags(&hovered), [false, true, false, false]);
        // Two always-shown tags both show, overlapping or not.
        hovered[0].always = true;
        assert_eq!(visible_tags(&hovered), [true, true, false, false]);
        // Names side by side that touch or overlap by their padding all show.
        let row = [
            tag(0.0, 0.0, false),
            tag(57.5, 1.0, false),
            tag(117.5, 14.0, false),
        ];
        assert_eq!(visible_tags(&row), [true, true, true]);
        // Names far apart show, of course.
        let apart = [tag(0.0, 0.0, false), tag(0.0, 100.0, false)];
        assert_eq!(visible_tags(&apart), [true, true]);
    }

    #[test]
    fn many_names_on_a_grid_match_the_pairwise_rule() {
        // 2,000 names 20 points apart in rows 18 apart: each kept name overlaps no other.
        let tags: Vec<NameTag> = (0..2000)
            .map(|i| {
                tag(
                    (i % 50) as f32 * 20.0 - 300.0,
                    (i / 50) as f32 * 18.0,
                    i == 7,
                )
            })
            .collect();
        let shown = visible_tags(&tags);
        let kept: Vec<Rect> = tags
            .iter()
            .zip(&shown)
            .filter(|(_, s)| **s)
            .map(|(t, _)| t.rect)
            .collect();
        for (a, ra) in kept.iter().enumerate() {
            for rb in &kept[a + 1..] {
                assert!(!overlap(*ra, *rb), "{ra:?} {rb:?}");
            }
        }
        // Every name left out overlaps a kept one.
        for (t, s) in tags.iter().zip(&shown) {
            assert!(*s || kept.iter().any(|k| overlap(*k, t.rect)));
        }
        assert!(shown[7]);
    }
}
