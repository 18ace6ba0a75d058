//! Drawing detections on RGB frames: a box outline in the class's colour and a label
//! ("Cola 0.87") on a filled tag above it, with the built-in bitmap font
//! ([`super::font`]). Sizes follow the frame, so labels stay readable from 240p to 4K.

use image::{Rgb, RgbImage};

use super::font::{self, ADVANCE, GLYPH_HEIGHT};
use crate::geometry::BoxXyxy;

/// One box to draw.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    /// Corners in frame pixels.
    pub bbox: BoxXyxy,
    /// The label text (printable ASCII; other characters are drawn as `?`).
    pub text: String,
    pub color: [u8; 3],
}

/// A stable colour for class `name`: a hash of the name picks the hue (the same hue the
/// app gives the class).
pub fn class_color(name: &str) -> [u8; 3] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    let hue = (h >> 40) as f32 / (1u64 << 24) as f32;
    hsv_to_rgb(hue, 0.75, 0.95)
}

/// HSV (each 0–1) to 8-bit RGB.
fn hsv_to_rgb(h: f32, s: f32, v: f32) -> [u8; 3] {
    let h6 = (h.rem_euclid(1.0)) * 6.0;
    let sector = h6.floor() as i32 % 6;
    let f = h6 - h6.floor();
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    let (r, g, b) = match sector {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    };
    let to8 = |x: f32| (x.clamp(0.0, 1.0) * 255.0).round() as u8;
    [to8(r), to8(g), to8(b)]
}

/// Black or white, whichever reads better on `bg`.
fn text_color(bg: [u8; 3]) -> [u8; 3] {
    let luma = 0.299 * f32::from(bg[0]) + 0.587 * f32::from(bg[1]) + 0.114 * f32::from(bg[2]);
    if luma > 140.0 {
        [0, 0, 0]
    } else {
        [255, 255, 255]
    }
}

/// Line thickness and font scale for a frame of this size.
pub fn sizes_for(width: u32, height: u32) -> (u32, u32) {
    let short = width.min(height);
    let thickness = (short / 240).clamp(1, 6);
    let scale = (short / 300).clamp(1, 5);
    (thickness, scale)
}

/// Fills the rectangle `[x0, x1) × [y0, y1)` (clipped to the frame).
fn fill(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, color: [u8; 3]) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let (x0, x1) = (x0.clamp(0, w), x1.clamp(0, w));
    let (y0, y1) = (y0.clamp(0, h), y1.clamp(0, h));
    for y in y0..y1 {
        for x in x0..x1 {
            img.put_pixel(x as u32, y as u32, Rgb(color));
        }
    }
}

/// Draws the outline of `bbox` (`thickness` pixels, inside the box) in `color`.
pub fn draw_box(img: &mut RgbImage, bbox: &BoxXyxy, color: [u8; 3], thickness: u32) {
    if !bbox.is_finite() {
        return;
    }
    let b = bbox.normalized();
    let (x0, y0) = (b.x1.floor() as i64, b.y1.floor() as i64);
    let (x1, y1) = (b.x2.ceil() as i64, b.y2.ceil() as i64);
    let t = i64::from(thickness.max(1));
    fill(img, x0, y0, x1, y0 + t, color);
    fill(img, x0, y1 - t, x1, y1, color);
    fill(img, x0, y0, x0 + t, y1, color);
    fill(img, x1 - t, y0, x1, y1, color);
}

/// Draws `text` with its top-left corner at (`x`, `y`), each font pixel `scale`×`scale`
/// frame pixels, on a filled `bg` tag with a margin of `scale` pixels. Clipped to the
/// frame.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, scale: u32, bg: [u8; 3]) {
    let s = i64::from(scale.max(1));
    let (tw, th) = font::text_size(text);
    fill(
        img,
        x,
        y,
        x + (i64::from(tw) + 2) * s,
        y + (i64::from(th) + 2) * s,
        bg,
    );
    let fg = text_color(bg);
    for (i, ch) in text.chars().enumerate() {
        let gx = x + s + i as i64 * i64::from(ADVANCE) * s;
        for fy in 0..GLYPH_HEIGHT {
            for fx in 0..font::GLYPH_WIDTH {
                if font::ink(ch, fx, fy) {
                    let px = gx + i64::from(fx) * s;
                    let py = y + s + i64::from(fy) * s;
                    fill(img, px, py, px + s, py + s, fg);
                }
            }
        }
    }
}

/// Draws every annotation: outlines first, then the labels (so that no outline crosses
/// a label), each label above its box's top-left corner, or inside the box when there
/// is no room above; always inside the frame.
pub fn annotate(img: &mut RgbImage, annotations: &[Annotation]) {
    let (thickness, scale) = sizes_for(img.width(), img.height());
    for a in annotations {
        draw_box(img, &a.bbox, a.color, thickness);
    }
    let tag_height = i64::from((GLYPH_HEIGHT + 2) * scale);
    for a in annotations {
        if !a.bbox.is_finite() || a.text.is_empty() {
            continue;
        }
        let b = a.bbox.normalized();
        // Kept inside the frame: moved left from the right edge, down from the top.
        let tag_width = i64::from((font::text_size(&a.text).0 + 2) * scale);
        let x = (b.x1.floor() as i64)
            .min(i64::from(img.width()) - tag_width)
            .max(0);
        let top = b.y1.floor() as i64;
        let y = if top - tag_height >= 0 {
            top - tag_height
        } else {
            top.max(0)
        };
        draw_text(img, x, y, &a.text, scale, a.color);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_and_labels_are_drawn_and_clipped() {
        let mut img = RgbImage::from_pixel(64, 48, Rgb([10, 10, 10]));
        let red = [250, 0, 0];
        let a = Annotation {
            bbox: BoxXyxy::new(10.0, 20.0, 40.0, 40.0),
            text: "Cola 0.9".into(),
            color: red,
        };
        // A box running off the frame and a non-finite one are harmless.
        let off = Annotation {
            bbox: BoxXyxy::new(50.0, -10.0, 90.0, 70.0),
            text: "x".into(),
            color: [0, 0, 250],
        };
        let bad = Annotation {
            bbox: BoxXyxy::new(f64::NAN, 0.0, 1.0, 1.0),
            text: "nan".into(),
            color: [0, 250, 0],
        };
        annotate(&mut img, &[a, off, bad]);
        assert_eq!(img.get_pixel(25, 39).0, red, "bottom edge");
        assert_eq!(img.get_pixel(10, 30).0, red, "left edge");
        assert_eq!(img.get_pixel(25, 30).0, [10, 10, 10], "inside stays");
        // The tag sits above the box: 9 rows at scale 1, text in white on red.
        assert_eq!(img.get_pixel(10, 11).0, red);
        let tag: Vec<[u8; 3]> = (11..20)
            .flat_map(|y| (10..58).map(move |x| (x, y)))
            .map(|(x, y)| img.get_pixel(x, y).0)
            .collect();
        assert!(tag.contains(&[255, 255, 255]), "the label's text is drawn");
        assert_eq!(img.get_pixel(50, 30).0, [0, 0, 250], "clipped box edge");
        // Its label is moved into the frame (top right).
        assert_eq!(img.get_pixel(55, 0).0, [0, 0, 250]);
    }

    #[test]
    fn class_colours_are_stable_and_bright() {
        assert_eq!(class_color("Cola"), class_color("Cola"));
        assert_ne!(class_color("Cola"), class_color("Sprite"));
        let c = class_color("Cola");
        assert!(c.iter().copied().max().unwrap() >= 200);
        assert_eq!(hsv_to_rgb(0.0, 1.0, 1.0), [255, 0, 0]);
        assert_eq!(hsv_to_rgb(1.0 / 3.0, 1.0, 1.0), [0, 255, 0]);
        assert_eq!(sizes_for(320, 240), (1, 1));
        assert_eq!(sizes_for(1920, 1080), (4, 3));
    }
}
