//! The layout of one dense photo on the flat shelf plane, before any pixel is drawn: the
//! rows of facings and price tags, the camera that views them and the photo's lighting.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::catalogue::{sku, DENSE_CLASS_COUNT, FAMILIES};
use super::DENSE_FACINGS;

/// One facing on the shelf plane (pixels of the un-rotated, un-tilted shelf).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Facing {
    /// Class id into [`dense_classes`](super::dense_classes).
    pub class: usize,
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    /// Depth order: a higher `z` is in front where two facings overlap.
    pub z: u8,
}

/// A price tag on a shelf edge.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Tag {
    pub(super) x1: f32,
    pub(super) x2: f32,
    pub(super) yellow: bool,
}

/// One shelf row: facings standing on a board, price tags on the board's edge.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Row {
    pub(super) top: f32,
    /// Where the facings stand (the board's top).
    pub(super) floor: f32,
    /// The board's bottom.
    pub(super) bottom: f32,
    /// Sorted by `x1`.
    pub(super) facings: Vec<Facing>,
    /// Sorted by `x1`.
    pub(super) tags: Vec<Tag>,
}

/// Maps image pixels back onto the shelf plane: a rotation about the image centre, then
/// a keystone (perspective) division.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera {
    cx: f32,
    cy: f32,
    cos: f32,
    sin: f32,
    /// Keystone coefficients per pixel.
    gx: f32,
    gy: f32,
}

impl Camera {
    /// The shelf-plane point seen at image point `(x, y)`:
    /// `(a, b) = R(θ)·(x − cx, y − cy)`, `d = 1 + gx·a + gy·b`, `(u, v) = c + (a, b)/d`.
    #[inline]
    pub fn to_shelf(&self, x: f32, y: f32) -> (f32, f32) {
        let (px, py) = (x - self.cx, y - self.cy);
        let a = px * self.cos - py * self.sin;
        let b = px * self.sin + py * self.cos;
        let d = 1.0 + self.gx * a + self.gy * b;
        (self.cx + a / d, self.cy + b / d)
    }
}

/// Lighting and sensor of one photo.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Look {
    pub(super) wall: [u8; 3],
    pub(super) board: [u8; 3],
    /// Brightness at the left / right edge, and the top-to-bottom change.
    pub(super) light_left: f32,
    pub(super) light_right: f32,
    pub(super) light_vertical: f32,
    /// Noise amplitude (grey levels).
    pub(super) noise: f32,
    /// Blur passes (1 or 2) of the 3×3 binomial filter.
    pub(super) blur: u8,
}

/// The layout of one dense photo, before any pixel is drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseLayout {
    pub width: u32,
    pub height: u32,
    pub(super) rows: Vec<Row>,
    pub camera: Camera,
    pub(super) look: Look,
    pub(super) noise_seed: u64,
}

impl DenseLayout {
    /// Every facing, row by row, left to right; facing `k` owns pixels `k + 1` in the
    /// owner map.
    pub fn facings(&self) -> impl Iterator<Item = &Facing> {
        self.rows.iter().flat_map(|r| r.facings.iter())
    }

    /// Number of facings (= boxes).
    pub fn facing_count(&self) -> usize {
        self.rows.iter().map(|r| r.facings.len()).sum()
    }

    /// Number of shelf rows.
    pub fn row_count(&self) -> usize {
        self.rows.len()
    }
}

fn rng_for(seed: u64, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(
        seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD0_5E_5E_1F_u64.rotate_left(17),
    )
}

/// Lays out dense photo `index` of the dataset seeded by `seed`: the number of facings
/// (uniform in [`DENSE_FACINGS`]), 4–9 rows, each a planogram of runs of 1–6 facings of
/// one SKU, mostly touching, some overlapping (the front one occludes), some empty gaps.
pub fn dense_layout(seed: u64, index: u64, width: u32, height: u32) -> DenseLayout {
    let mut rng = rng_for(seed, index);
    let (w, h) = (width as f32, height as f32);
    let n = rng.random_range(DENSE_FACINGS);
    // Keep a margin so that rotation and keystone keep the shelves inside the picture.
    let margin_x = w * 0.05;
    let margin_y = h * 0.05;
    // As many rows as make the facings fill both the width and the height of a row (a
    // facing is about 0.45 row-heights wide), give or take one.
    let ideal = (0.34 * n as f32 * (h - 2.0 * margin_y) / (w - 2.0 * margin_x)).sqrt();
    let n_rows = (ideal.round() as i64 + rng.random_range(-1..=0i64)).clamp(4, 9) as usize;
    let row_h = (h - 2.0 * margin_y) / n_rows as f32;
    let usable = w - 2.0 * margin_x;
    let mut rows = Vec::with_capacity(n_rows);
    for r in 0..n_rows {
        let count = n / n_rows + usize::from(r < n % n_rows);
        let top = margin_y + r as f32 * row_h;
        let floor = top + row_h * 0.86;
        rows.push(lay_row(
            &mut rng,
            count,
            top,
            floor,
            top + row_h,
            margin_x,
            usable,
        ));
    }
    let angle = rng.random_range(-1.5f32..1.5).to_radians();
    let camera = Camera {
        cx: w / 2.0,
        cy: h / 2.0,
        cos: angle.cos(),
        sin: angle.sin(),
        gx: rng.random_range(-2.2e-5f32..2.2e-5) * 3500.0 / w,
        gy: rng.random_range(-1.5e-5f32..1.5e-5) * 2600.0 / h,
    };
    let grey = rng.random_range(60..120u8);
    let look = Look {
        wall: [grey, grey.saturating_sub(5), grey.saturating_sub(12)],
        board: [
            rng.random_range(170..230u8),
            rng.random_range(165..225u8),
            rng.random_range(160..220u8),
        ],
        light_left: rng.random_range(0.7..1.1),
        light_right: rng.random_range(0.7..1.1),
        light_vertical: rng.random_range(-0.15..0.1),
        noise: rng.random_range(2.0..7.0),
        blur: rng.random_range(1..=2u8),
    };
    DenseLayout {
        width,
        height,
        rows,
        camera,
        look,
        noise_seed: rng.random(),
    }
}

/// One row: `count` facings in runs of one SKU, scaled to fill the row's width (or its
/// height, whichever binds first; the rest becomes empty shelf).
fn lay_row(
    rng: &mut ChaCha8Rng,
    count: usize,
    top: f32,
    floor: f32,
    bottom: f32,
    x0: f32,
    usable: f32,
) -> Row {
    // Natural sizes in "row heights" (a facing of height 1 fills the row).
    let planogram: Vec<usize> = (0..rng.random_range(6..=12))
        .map(|_| rng.random_range(0..DENSE_CLASS_COUNT))
        .collect();
    let mut units: Vec<(usize, f32, f32)> = Vec::with_capacity(count); // (class, w, h)
    let mut gaps: Vec<f32> = Vec::with_capacity(count); // gap before facing i (i > 0)
    let mut run_starts = Vec::new();
    while units.len() < count {
        let class = planogram[rng.random_range(0..planogram.len())];
        let s = sku(class);
        let run = rng.random_range(1..=6usize).min(count - units.len());
        run_starts.push(units.len());
        for _ in 0..run {
            let jitter = rng.random_range(0.97f32..1.03);
            let hh = s.height * jitter;
            let ww = hh * FAMILIES[s.family].shape.aspect() * rng.random_range(0.97f32..1.03);
            let gap = if units.is_empty() {
                0.0
            } else if rng.random_bool(0.05) {
                ww * rng.random_range(0.5f32..1.5) // an empty slot
            } else {
                match rng.random_range(0..10u8) {
                    0..=5 => 0.0,                                  // touching
                    6 | 7 => ww * rng.random_range(0.01f32..0.04), // a sliver of shelf
                    _ => -ww * rng.random_range(0.04f32..0.16),    // overlapping
                }
            };
            gaps.push(gap);
            units.push((class, ww, hh));
        }
    }
    let total: f32 = units.iter().map(|u| u.1).sum::<f32>() + gaps.iter().sum::<f32>();
    let max_h = (floor - top) * 0.97;
    let scale = (usable / total).min(max_h);
    let slack = usable - total * scale;
    let mut x = x0 + slack * rng.random_range(0.0f32..0.35);
    let mut facings: Vec<Facing> = Vec::with_capacity(count);
    for (i, &(class, ww, hh)) in units.iter().enumerate() {
        x += gaps[i] * scale;
        facings.push(Facing {
            class,
            x1: x,
            y1: floor - hh * scale,
            x2: x + ww * scale,
            y2: floor,
            z: rng.random_range(0..4u8),
        });
        x += ww * scale;
    }
    facings.sort_by(|a, b| a.x1.total_cmp(&b.x1));
    let tags = run_starts
        .iter()
        .filter_map(|&i| {
            let f = facings.get(i)?;
            let tw = ((f.x2 - f.x1) * 0.9).clamp(6.0, 160.0 * scale / 300.0 + 40.0);
            rng.random_bool(0.9).then_some(Tag {
                x1: f.x1 + 2.0,
                x2: f.x1 + 2.0 + tw,
                yellow: rng.random_bool(0.2),
            })
        })
        .collect();
    Row {
        top,
        floor,
        bottom,
        facings,
        tags,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DENSE_HEIGHT, DENSE_WIDTH};
    use super::*;

    /// Layout only (no pixels), at the full default size: facing counts, rows, classes,
    /// touching neighbours and determinism.
    #[test]
    fn layouts_have_dense_touching_facings() {
        let mut counts = Vec::new();
        for index in 0..12 {
            let l = dense_layout(7, index, DENSE_WIDTH, DENSE_HEIGHT);
            assert_eq!(l, dense_layout(7, index, DENSE_WIDTH, DENSE_HEIGHT));
            let n = l.facing_count();
            assert!(DENSE_FACINGS.contains(&n), "image {index}: {n} facings");
            assert!((4..=9).contains(&l.row_count()));
            let classes: std::collections::HashSet<usize> = l.facings().map(|f| f.class).collect();
            assert!(
                classes.len() >= 5,
                "image {index}: {} classes",
                classes.len()
            );
            assert!(l.facings().all(|f| f.class < DENSE_CLASS_COUNT));
            let mut touching = 0;
            let mut overlapping = 0;
            for row in &l.rows {
                for p in row.facings.windows(2) {
                    assert!(p[0].x2 > p[0].x1 && p[0].y2 > p[0].y1);
                    if (p[1].x1 - p[0].x2).abs() < 0.01 {
                        touching += 1;
                    } else if p[1].x1 < p[0].x2 {
                        overlapping += 1;
                    }
                }
                // Facings stay inside the picture's margin.
                let last = row.facings.last().expect("a row has facings");
                assert!(last.x2 <= DENSE_WIDTH as f32 * 0.951, "{}", last.x2);
            }
            assert!(
                touching > n / 3,
                "image {index}: {touching} touching of {n}"
            );
            assert!(overlapping > 0, "image {index}: no occlusion");
            counts.push(n);
        }
        assert_ne!(counts.iter().min(), counts.iter().max(), "{counts:?}");
        assert_ne!(
            dense_layout(1, 0, DENSE_WIDTH, DENSE_HEIGHT),
            dense_layout(2, 0, DENSE_WIDTH, DENSE_HEIGHT)
        );
    }
}
