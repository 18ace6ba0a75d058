//! Renders a [`DenseLayout`] by inverse mapping: each pixel's colour and owner facing,
//! the lighting gradient, blur and sensor noise, and each facing's box from the owner map.

use image::RgbImage;
use rayon::prelude::*;

use super::catalogue::{dense_classes, sku, FAMILIES};
use super::layout::{dense_layout, DenseLayout, Look, Row};
use super::package::{inside, package_colour};
use crate::dataset::LabelBox;
use crate::demo::Scene;
use crate::geometry::BoxXyxy;

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
