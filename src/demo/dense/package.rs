//! How a package looks at a point of its facing: whether the point is inside the
//! silhouette, and the colour there (body, cap, label pattern, shading).

use super::catalogue::{sku, Pattern, Shape, FAMILIES};

/// Whether the point `(lx, ly)` of a facing's box (both in `[0, 1)`) is inside the
/// package silhouette. Each silhouette touches all four sides of its box.
#[inline]
pub(super) fn inside(shape: Shape, lx: f32, ly: f32) -> bool {
    let dx = (lx - 0.5).abs();
    match shape {
        Shape::Can | Shape::Box => true,
        Shape::Bottle => {
            if ly < 0.22 {
                dx < 0.17
            } else if ly < 0.32 {
                dx < 0.17 + (ly - 0.22) / 0.1 * 0.33
            } else {
                true
            }
        }
        Shape::Carton => ly >= 0.1 || dx < 0.5 * ly / 0.1 + 0.02,
        Shape::Jar => ly >= 0.12 || dx < 0.42,
        Shape::Pouch => dx < 0.38 + 0.12 * ly,
    }
}

/// The colour of a facing's package at `(lx, ly)` inside its silhouette: body colour with
/// cylinder shading, caps and rims, the SKU's label pattern and a little dark "text".
#[inline]
pub(super) fn package_colour(class: usize, lx: f32, ly: f32) -> [f32; 3] {
    let s = sku(class);
    let f = &FAMILIES[s.family];
    let mut c = f.body;
    let (label_top, label_bottom) = match f.shape {
        Shape::Bottle => (0.45, 0.78),
        Shape::Can => (0.18, 0.82),
        _ => (0.25, 0.8),
    };
    let cap = match f.shape {
        Shape::Bottle => ly < 0.06,
        Shape::Can => !(0.05..0.95).contains(&ly),
        Shape::Jar => ly < 0.12,
        _ => false,
    };
    if cap {
        c = [200, 200, 205];
    } else if (label_top..label_bottom).contains(&ly) {
        let ty = (ly - label_top) / (label_bottom - label_top);
        let accent = match s.pattern {
            Pattern::Band => (0.2..0.8).contains(&ty),
            Pattern::Stripes => ((ty * 7.0 + lx * 2.0) as i32) % 2 == 0,
            Pattern::Dots => {
                let (gx, gy) = ((lx * 4.0).fract() - 0.5, (ty * 5.0).fract() - 0.5);
                gx * gx + gy * gy < 0.09
            }
            Pattern::Split => lx < 0.5,
        };
        if accent {
            c = f.accent;
        }
        // A line of "brand text" across the middle of the label.
        if (0.42..0.56).contains(&ty) && (0.2..0.8).contains(&lx) && ((lx * 23.0) as i32) % 3 != 0 {
            c = [25, 25, 30];
        }
    }
    let round = matches!(f.shape, Shape::Bottle | Shape::Can | Shape::Jar);
    let shade = if round {
        0.72 + 0.38 * (std::f32::consts::PI * lx).sin()
    } else {
        0.92 + 0.08 * (1.0 - lx)
    };
    [
        f32::from(c[0]) * shade,
        f32::from(c[1]) * shade,
        f32::from(c[2]) * shade,
    ]
}
