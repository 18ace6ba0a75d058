//! Dense retail shelves (`detlab demo --dense`): 3000–4000 px photos with 80–250 facings
//! of 40 similar SKUs, touching and partly occluding one another, price tags on the shelf
//! edges, empty gaps, perspective, a slight rotation, a lighting gradient, blur and noise.
//!
//! The scene is laid out in a flat "shelf" plane ([`dense_layout`], no pixels), then
//! rendered by inverse mapping: every image pixel is mapped back onto the shelf plane
//! (rotation about the centre, then a keystone division, [`Camera::to_shelf`]) and takes
//! the colour of the front-most facing whose silhouette covers that point, or of the
//! shelf, price tag or back wall. The same lookup fills an owner map, and each box is the
//! bounding box of the pixels its facing owns: the exact visible extent after occlusion
//! and perspective. The camera's 3×3 blur spreads edges by at most one pixel.
//!
//! Everything is a function of `(seed, index, width, height)`; rows render in parallel.

use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::Scene;
use crate::dataset::LabelBox;
use crate::geometry::BoxXyxy;

/// Default size of a dense shelf photo (a 9-megapixel phone photo, landscape).
pub const DENSE_WIDTH: u32 = 3500;
/// Default height of a dense shelf photo.
pub const DENSE_HEIGHT: u32 = 2600;
/// Fewest and most facings on one dense photo.
pub const DENSE_FACINGS: std::ops::RangeInclusive<usize> = 80..=250;

/// Package silhouettes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Bottle,
    Can,
    Carton,
    Jar,
    Pouch,
    Box,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Bottle => "bottle",
            Shape::Can => "can",
            Shape::Carton => "carton",
            Shape::Jar => "jar",
            Shape::Pouch => "pouch",
            Shape::Box => "box",
        }
    }

    /// Width / height of the package.
    fn aspect(self) -> f32 {
        match self {
            Shape::Bottle => 0.34,
            Shape::Can => 0.56,
            Shape::Carton => 0.5,
            Shape::Jar => 0.78,
            Shape::Pouch => 0.66,
            Shape::Box => 0.72,
        }
    }
}

/// Label artwork.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pattern {
    Band,
    Stripes,
    Dots,
    Split,
}

impl Pattern {
    fn name(self) -> &'static str {
        match self {
            Pattern::Band => "band",
            Pattern::Stripes => "stripes",
            Pattern::Dots => "dots",
            Pattern::Split => "split",
        }
    }
}

/// One product family: a silhouette in a colour scheme. Each family comes in two label
/// patterns and two sizes: four SKUs that differ in one attribute at a time.
struct Family {
    shape: Shape,
    colour: &'static str,
    body: [u8; 3],
    accent: [u8; 3],
    patterns: [Pattern; 2],
}

const FAMILIES: [Family; 10] = [
    Family {
        shape: Shape::Bottle,
        colour: "red",
        body: [150, 25, 30],
        accent: [235, 230, 220],
        patterns: [Pattern::Band, Pattern::Stripes],
    },
    Family {
        shape: Shape::Bottle,
        colour: "green",
        body: [35, 120, 60],
        accent: [230, 225, 90],
        patterns: [Pattern::Band, Pattern::Dots],
    },
    Family {
        shape: Shape::Can,
        colour: "red",
        body: [190, 30, 35],
        accent: [245, 245, 245],
        patterns: [Pattern::Stripes, Pattern::Split],
    },
    Family {
        shape: Shape::Can,
        colour: "blue",
        body: [30, 60, 160],
        accent: [200, 210, 225],
        patterns: [Pattern::Band, Pattern::Split],
    },
    Family {
        shape: Shape::Can,
        colour: "silver",
        body: [170, 175, 180],
        accent: [40, 110, 190],
        patterns: [Pattern::Dots, Pattern::Stripes],
    },
    Family {
        shape: Shape::Carton,
        colour: "white",
        body: [225, 228, 232],
        accent: [40, 90, 200],
        patterns: [Pattern::Band, Pattern::Dots],
    },
    Family {
        shape: Shape::Carton,
        colour: "yellow",
        body: [235, 195, 40],
        accent: [120, 60, 20],
        patterns: [Pattern::Split, Pattern::Stripes],
    },
    Family {
        shape: Shape::Jar,
        colour: "brown",
        body: [110, 70, 35],
        accent: [240, 220, 170],
        patterns: [Pattern::Band, Pattern::Split],
    },
    Family {
        shape: Shape::Pouch,
        colour: "orange",
        body: [235, 120, 25],
        accent: [250, 240, 200],
        patterns: [Pattern::Dots, Pattern::Band],
    },
    Family {
        shape: Shape::Box,
        colour: "purple",
        body: [95, 45, 130],
        accent: [240, 200, 60],
        patterns: [Pattern::Stripes, Pattern::Dots],
    },
];

/// Height of the small and the large size, as a fraction of the tallest facing a shelf
/// row holds.
const SIZES: [(&str, f32); 2] = [("S", 0.7), ("L", 0.92)];

/// Number of dense SKU classes: 10 families × 2 patterns × 2 sizes.
pub const DENSE_CLASS_COUNT: usize = FAMILIES.len() * 4;

/// One SKU (class) of the dense demo.
#[derive(Clone, Copy, Debug)]
struct Sku {
    family: usize,
    pattern: Pattern,
    /// Height as a fraction of the row's tallest facing.
    height: f32,
}

fn sku(class: usize) -> Sku {
    let family = class / 4;
    Sku {
        family,
        pattern: FAMILIES[family].patterns[(class / 2) % 2],
        height: SIZES[class % 2].1,
    }
}

/// The dense demo's class names, in class-id order: `shape-colour-pattern-size`, e.g.
/// `can-red-stripes-L`. Neighbouring classes differ in one attribute only.
pub fn dense_classes() -> Vec<String> {
    (0..DENSE_CLASS_COUNT)
        .map(|c| {
            let s = sku(c);
            let f = &FAMILIES[s.family];
            format!(
                "{}-{}-{}-{}",
                f.shape.name(),
                f.colour,
                s.pattern.name(),
                SIZES[c % 2].0
            )
        })
        .collect()
}

/// One facing on the shelf plane (pixels of the un-rotated, un-tilted shelf).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Facing {
    /// Class id into [`dense_classes`].
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
struct Tag {
    x1: f32,
    x2: f32,
    yellow: bool,
}

/// One shelf row: facings standing on a board, price tags on the board's edge.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    top: f32,
    /// Where the facings stand (the board's top).
    floor: f32,
    /// The board's bottom.
    bottom: f32,
    /// Sorted by `x1`.
    facings: Vec<Facing>,
    /// Sorted by `x1`.
    tags: Vec<Tag>,
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
struct Look {
    wall: [u8; 3],
    board: [u8; 3],
    /// Brightness at the left / right edge, and the top-to-bottom change.
    light_left: f32,
    light_right: f32,
    light_vertical: f32,
    /// Noise amplitude (grey levels).
    noise: f32,
    /// Blur passes (1 or 2) of the 3×3 binomial filter.
    blur: u8,
}

/// The layout of one dense photo, before any pixel is drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseLayout {
    pub width: u32,
    pub height: u32,
    rows: Vec<Row>,
    pub camera: Camera,
    look: Look,
    noise_seed: u64,
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

/// Whether the point `(lx, ly)` of a facing's box (both in `[0, 1)`) is inside the
/// package silhouette. Each silhouette touches all four sides of its box.
#[inline]
fn inside(shape: Shape, lx: f32, ly: f32) -> bool {
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
fn package_colour(class: usize, lx: f32, ly: f32) -> [f32; 3] {
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

impl Row {
    /// The front-most facing covering shelf point `(u, v)` (inside the row's product
    /// zone): its index in `facings` and colour.
    #[inline]
    fn facing_at(&self, u: f32, v: f32) -> Option<(usize, [f32; 3])> {
        let end = self.facings.partition_point(|f| f.x1 <= u);
        let mut best: Option<(usize, u8)> = None;
        // Overlaps are at most a sixth of a facing, so only the last few can cover `u`.
        for k in (end.saturating_sub(3)..end).rev() {
            let f = &self.facings[k];
            if u >= f.x2 || v < f.y1 || v >= f.y2 {
                continue;
            }
            let lx = (u - f.x1) / (f.x2 - f.x1);
            let ly = (v - f.y1) / (f.y2 - f.y1);
            if !inside(FAMILIES[sku(f.class).family].shape, lx, ly) {
                continue;
            }
            if best.is_none_or(|(_, z)| f.z > z) {
                best = Some((k, f.z));
            }
        }
        best.map(|(k, _)| {
            let f = &self.facings[k];
            let lx = (u - f.x1) / (f.x2 - f.x1);
            let ly = (v - f.y1) / (f.y2 - f.y1);
            (k, package_colour(f.class, lx, ly))
        })
    }

    /// The shelf board (and its price tags) at `(u, v)`, `v` in `[floor, bottom)`.
    #[inline]
    fn board_at(&self, u: f32, v: f32, look: &Look) -> [f32; 3] {
        let t = (v - self.floor) / (self.bottom - self.floor);
        let tag_zone = (0.25..0.85).contains(&t);
        if tag_zone {
            let end = self.tags.partition_point(|g| g.x1 <= u);
            if let Some(g) = end.checked_sub(1).map(|k| &self.tags[k]) {
                if u < g.x2 {
                    let lx = (u - g.x1) / (g.x2 - g.x1);
                    let digits = (0.45..0.75).contains(&t)
                        && (0.15..0.85).contains(&lx)
                        && ((lx * 17.0) as i32) % 2 == 0;
                    return if digits {
                        [20.0, 20.0, 20.0]
                    } else if g.yellow {
                        [245.0, 220.0, 60.0]
                    } else {
                        [245.0, 245.0, 240.0]
                    };
                }
            }
        }
        let edge = if t < 0.12 { 1.12 } else { 1.0 - 0.2 * t };
        look.board.map(|c| f32::from(c) * edge)
    }
}

/// The colour and owner (facing number + 1, or 0) at image point `(x, y)`.
#[inline]
fn shade(layout: &DenseLayout, row_h: f32, x: f32, y: f32) -> ([f32; 3], u16) {
    let (u, v) = layout.camera.to_shelf(x, y);
    let look = &layout.look;
    let first_top = layout.rows.first().map_or(0.0, |r| r.top);
    let r = ((v - first_top) / row_h).floor();
    let wall = || {
        // The back wall: darker towards the top of each row (the shelf above shades it).
        look.wall.map(f32::from)
    };
    if r < 0.0 || r as usize >= layout.rows.len() {
        return (wall(), 0);
    }
    let row_index = r as usize;
    let row = &layout.rows[row_index];
    if v >= row.floor {
        return (row.board_at(u, v, look), 0);
    }
    let offset: usize = layout.rows[..row_index]
        .iter()
        .map(|r| r.facings.len())
        .sum();
    match row.facing_at(u, v) {
        Some((k, c)) => (c, (offset + k + 1) as u16),
        None => {
            let t = (v - row.top) / (row.floor - row.top);
            (wall().map(|c| c * (0.55 + 0.45 * t)), 0)
        }
    }
}

/// A 64-bit mix of three values (SplitMix64's finaliser), for per-pixel noise.
#[inline]
fn hash(a: u64, b: u64, c: u64) -> u64 {
    let mut z = a
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(b.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(c);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Renders dense photo `index` of the dataset seeded by `seed`: the picture, one box per
/// facing (its visible extent, class names from [`dense_classes`]) and the owner map.
pub fn render_dense(seed: u64, index: u64, width: u32, height: u32) -> Scene {
    let layout = dense_layout(seed, index, width, height);
    render_layout(&layout)
}

/// Renders a layout (see [`render_dense`]).
pub fn render_layout(layout: &DenseLayout) -> Scene {
    let (w, h) = (layout.width as usize, layout.height as usize);
    let row_h = layout.rows.first().map_or(1.0, |r| r.bottom - r.top);
    let look = layout.look;
    let mut rgb = vec![0f32; w * h * 3];
    let mut owner = vec![0u16; w * h];
    rgb.par_chunks_mut(w * 3)
        .zip(owner.par_chunks_mut(w))
        .enumerate()
        .for_each(|(y, (line, own))| {
            let fy = y as f32 + 0.5;
            let vertical = 1.0 + look.light_vertical * (fy / h as f32 - 0.5) * 2.0;
            for x in 0..w {
                let fx = x as f32 + 0.5;
                let (c, o) = shade(layout, row_h, fx, fy);
                let t = fx / w as f32;
                let light = (look.light_left + (look.light_right - look.light_left) * t) * vertical;
                line[x * 3] = c[0] * light;
                line[x * 3 + 1] = c[1] * light;
                line[x * 3 + 2] = c[2] * light;
                own[x] = o;
            }
        });
    for _ in 0..look.blur {
        blur(&mut rgb, w, h);
    }
    let noise_seed = layout.noise_seed;
    let amplitude = look.noise;
    let bytes: Vec<u8> = rgb
        .par_chunks(w * 3)
        .enumerate()
        .flat_map_iter(|(y, line)| {
            line.iter().enumerate().map(move |(i, &v)| {
                let n = hash(noise_seed, y as u64, i as u64);
                let noise = ((n >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 * amplitude;
                (v + noise).round().clamp(0.0, 255.0) as u8
            })
        })
        .collect();
    let image = RgbImage::from_raw(layout.width, layout.height, bytes).unwrap_or_default();
    let boxes = boxes_from_owner(layout, &owner, w);
    Scene {
        image,
        boxes,
        owner,
    }
}

/// The separable binomial blur `[1 2 1] / 4` in both directions (edges clamp).
fn blur(rgb: &mut [f32], w: usize, h: usize) {
    let src = rgb.to_vec();
    rgb.par_chunks_mut(w * 3).enumerate().for_each(|(y, line)| {
        let s = &src[y * w * 3..(y + 1) * w * 3];
        for x in 0..w {
            let (l, r) = (x.saturating_sub(1), (x + 1).min(w - 1));
            for c in 0..3 {
                line[x * 3 + c] = (s[l * 3 + c] + 2.0 * s[x * 3 + c] + s[r * 3 + c]) * 0.25;
            }
        }
    });
    let src = rgb.to_vec();
    rgb.par_chunks_mut(w * 3).enumerate().for_each(|(y, line)| {
        let (u, d) = (y.saturating_sub(1), (y + 1).min(h - 1));
        let (a, b, c) = (
            &src[u * w * 3..(u + 1) * w * 3],
            &src[y * w * 3..(y + 1) * w * 3],
            &src[d * w * 3..(d + 1) * w * 3],
        );
        for i in 0..w * 3 {
            line[i] = (a[i] + 2.0 * b[i] + c[i]) * 0.25;
        }
    });
}

/// One box per facing that owns at least one pixel: the bounding box of its pixels.
fn boxes_from_owner(layout: &DenseLayout, owner: &[u16], w: usize) -> Vec<LabelBox> {
    let n = layout.facing_count();
    let mut ext = vec![(usize::MAX, usize::MAX, 0usize, 0usize); n];
    for (i, &o) in owner.iter().enumerate() {
        if o == 0 {
            continue;
        }
        let (x, y) = (i % w, i / w);
        let e = &mut ext[o as usize - 1];
        e.0 = e.0.min(x);
        e.1 = e.1.min(y);
        e.2 = e.2.max(x + 1);
        e.3 = e.3.max(y + 1);
    }
    let names = dense_classes();
    layout
        .facings()
        .zip(ext)
        .filter(|(_, e)| e.0 != usize::MAX)
        .map(|(f, (x1, y1, x2, y2))| {
            LabelBox::new(
                names[f.class].clone(),
                BoxXyxy::new(x1 as f64, y1 as f64, x2 as f64, y2 as f64),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_distinct_and_in_range() {
        let names = dense_classes();
        assert!((20..=60).contains(&names.len()), "{}", names.len());
        let unique: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert_eq!(names[0], "bottle-red-band-S");
        assert_eq!(names[1], "bottle-red-band-L");
        assert_eq!(names[2], "bottle-red-stripes-S");
    }

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

    /// One small render: deterministic, every facing visible and labelled, and each box is
    /// exactly the extent of the pixels its facing owns (nothing owned outside it).
    #[test]
    fn render_boxes_are_the_visible_extent() {
        let (w, h) = (700u32, 520u32);
        let a = render_dense(3, 1, w, h);
        let b = render_dense(3, 1, w, h);
        assert_eq!(a.image, b.image);
        assert_eq!(a.boxes, b.boxes);
        let layout = dense_layout(3, 1, w, h);
        assert_eq!(
            a.boxes.len(),
            layout.facing_count(),
            "every facing is visible"
        );
        let names = dense_classes();
        let mut seen = vec![(u32::MAX, u32::MAX, 0u32, 0u32); a.boxes.len()];
        for (i, &o) in a.owner.iter().enumerate() {
            if o > 0 {
                let (x, y) = (i as u32 % w, i as u32 / w);
                let e = &mut seen[o as usize - 1];
                *e = (e.0.min(x), e.1.min(y), e.2.max(x + 1), e.3.max(y + 1));
            }
        }
        for (k, (bx, e)) in a.boxes.iter().zip(&seen).enumerate() {
            assert_eq!(
                bx.bbox,
                BoxXyxy::new(e.0 as f64, e.1 as f64, e.2 as f64, e.3 as f64),
                "box {k}"
            );
            assert!(names.contains(&bx.class_name));
            assert!(bx.bbox.x1 >= 0.0 && bx.bbox.x2 <= w as f64 && bx.bbox.y2 <= h as f64);
        }
        // Product pixels differ from the back wall: the picture shows what is labelled.
        let wall = layout.look.wall;
        let centre = |bx: &LabelBox| {
            let (x, y) = (
                ((bx.bbox.x1 + bx.bbox.x2) / 2.0) as u32,
                (bx.bbox.y1 * 0.2 + bx.bbox.y2 * 0.8) as u32,
            );
            a.image.get_pixel(x, y).0
        };
        let differ = a
            .boxes
            .iter()
            .filter(|bx| {
                let p = centre(bx);
                (0..3).any(|c| (i32::from(p[c]) - i32::from(wall[c])).abs() > 12)
            })
            .count();
        assert!(
            differ * 10 >= a.boxes.len() * 8,
            "{differ} of {}",
            a.boxes.len()
        );
        assert_ne!(render_dense(4, 1, w, h).image, a.image);
    }
}
