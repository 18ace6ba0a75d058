//! The canvas' box geometry in image pixels: drawing, moving and resizing a box, kept
//! inside the image, and which edges a pointer grabs.

use egui::{CursorIcon, Pos2, Rect};

use super::GRAB;
use crate::geometry::BoxXyxy;

/// Which edges a resize drag moves.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub(super) struct Edges {
    pub(super) left: bool,
    pub(super) right: bool,
    pub(super) top: bool,
    pub(super) bottom: bool,
}

pub(super) fn clamp_point(p: [f64; 2], size: [u32; 2]) -> [f64; 2] {
    [
        p[0].clamp(0.0, size[0] as f64),
        p[1].clamp(0.0, size[1] as f64),
    ]
}

/// Box from a drag start to the pointer; with `square`, a square with the shorter side
/// (as LabelImg draws them), kept inside the image.
pub(super) fn drawn_box(start: [f64; 2], end: [f64; 2], square: bool, size: [u32; 2]) -> BoxXyxy {
    let mut end = clamp_point(end, size);
    if square {
        let side = (end[0] - start[0]).abs().min((end[1] - start[1]).abs());
        end = [
            start[0] + side * (end[0] - start[0]).signum(),
            start[1] + side * (end[1] - start[1]).signum(),
        ];
    }
    BoxXyxy::new(start[0], start[1], end[0], end[1]).normalized()
}

/// `original` dragged from `start` to `cur` (image pixels), kept inside the image, on whole
/// pixels.
pub(super) fn moved(original: BoxXyxy, start: [f64; 2], cur: [f64; 2], size: [u32; 2]) -> BoxXyxy {
    let (w, h) = (size[0] as f64, size[1] as f64);
    let dx = (cur[0] - start[0]).clamp(-original.x1, w - original.x2);
    let dy = (cur[1] - start[1]).clamp(-original.y1, h - original.y2);
    original.translated(dx.round(), dy.round())
}

/// `original` with its `edges` moved to `cur` (clamped to the image, whole pixels).
pub(super) fn resized(original: BoxXyxy, edges: Edges, cur: [f64; 2], size: [u32; 2]) -> BoxXyxy {
    let c = clamp_point(cur, size);
    let mut b = original;
    if edges.left {
        b.x1 = c[0].round();
    }
    if edges.right {
        b.x2 = c[0].round();
    }
    if edges.top {
        b.y1 = c[1].round();
    }
    if edges.bottom {
        b.y2 = c[1].round();
    }
    b.normalized()
}

/// Which edges of `r` are within grab distance of `p` (corners give two).
pub(super) fn edges_at(r: Rect, p: Pos2) -> Edges {
    let inside_x = p.x > r.left() - GRAB && p.x < r.right() + GRAB;
    let inside_y = p.y > r.top() - GRAB && p.y < r.bottom() + GRAB;
    Edges {
        left: inside_y && (p.x - r.left()).abs() <= GRAB,
        right: inside_y && (p.x - r.right()).abs() <= GRAB,
        top: inside_x && (p.y - r.top()).abs() <= GRAB,
        bottom: inside_x && (p.y - r.bottom()).abs() <= GRAB,
    }
}

impl Edges {
    pub(super) fn any(&self) -> bool {
        self.left || self.right || self.top || self.bottom
    }

    pub(super) fn cursor(&self) -> CursorIcon {
        match (self.left || self.right, self.top || self.bottom) {
            (true, true) if (self.left && self.top) || (self.right && self.bottom) => {
                CursorIcon::ResizeNwSe
            }
            (true, true) => CursorIcon::ResizeNeSw,
            (true, false) => CursorIcon::ResizeHorizontal,
            (false, true) => CursorIcon::ResizeVertical,
            _ => CursorIcon::Default,
        }
    }
}
