//! Drawing one synthetic shelf photo: a wall, shelves, and products standing on them.
//! Every product is drawn inside its box and touches all four of the box's sides, so the
//! boxes are exact.

use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dataset::LabelBox;
use crate::geometry::BoxXyxy;

/// The demo's product classes, in class-id order.
pub const DEMO_CLASSES: [&str; 3] = ["Cola", "Sprite", "Fanta"];

/// Body, label and cap colours per class.
const PALETTE: [([u8; 3], [u8; 3], [u8; 3]); 3] = [
    ([70, 20, 15], [200, 20, 30], [200, 20, 30]),
    ([40, 150, 70], [235, 240, 235], [30, 110, 50]),
    ([245, 130, 20], [30, 60, 170], [240, 110, 10]),
];

/// A rendered scene: the picture, its boxes, and which product covers each pixel
/// (`0` = background, `k` = `boxes[k - 1]`).
pub struct Scene {
    pub image: RgbImage,
    pub boxes: Vec<LabelBox>,
    pub owner: Vec<u16>,
}

/// Renders image `index` of the dataset seeded by `seed`.
pub fn render_scene(seed: u64, index: u64, width: u32, height: u32) -> Scene {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (w, h) = (width as i64, height as i64);
    let wall = [
        rng.random_range(170..235u8),
        rng.random_range(165..225u8),
        rng.random_range(150..215u8),
    ];
    let mut image = RgbImage::from_fn(width, height, |x, y| {
        let shade = ((x + 2 * y) % 17) as u8;
        Rgb([
            wall[0].saturating_sub(shade),
            wall[1].saturating_sub(shade),
            wall[2].saturating_sub(shade),
        ])
    });
    let mut owner = vec![0u16; (width * height) as usize];
    let mut boxes = Vec::new();
    let negative = rng.random_bool(0.08);
    let shelves = rng.random_range(2..=3i64);
    let band = h / shelves;
    for s in 0..shelves {
        let floor = (s + 1) * band - band / 10;
        fill(
            &mut image,
            0,
            floor,
            w,
            (floor + band / 14).min(h),
            [120, 80, 45],
        );
        if negative {
            continue;
        }
        let mut x = rng.random_range(2..(w / 12).max(3));
        loop {
            let class = rng.random_range(0..DEMO_CLASSES.len());
            let tall = rng.random_bool(0.6);
            let ph = if tall {
                rng.random_range(band * 55 / 100..band * 80 / 100)
            } else {
                rng.random_range(band * 30 / 100..band * 45 / 100)
            };
            let pw = (ph as f64
                * if tall {
                    rng.random_range(0.28..0.36)
                } else {
                    rng.random_range(0.55..0.7)
                }) as i64;
            if pw < 4 || x + pw >= w - 1 {
                break;
            }
            let (x1, y1, x2, y2) = (x, floor - ph, x + pw, floor);
            let id = boxes.len() as u16 + 1;
            draw_product(
                &mut image,
                &mut owner,
                width,
                (x1, y1, x2, y2),
                class,
                tall,
                id,
            );
            boxes.push(LabelBox::new(
                DEMO_CLASSES[class],
                BoxXyxy::new(x1 as f64, y1 as f64, x2 as f64, y2 as f64),
            ));
            x = x2 + rng.random_range(1..(w / 10).max(2));
            if rng.random_bool(0.12) {
                x += w / 5;
            }
        }
    }
    Scene {
        image,
        boxes,
        owner,
    }
}

/// Draws a bottle (body, shoulders, neck and cap) or a can inside `[x1,x2)×[y1,y2)`.
fn draw_product(
    image: &mut RgbImage,
    owner: &mut [u16],
    width: u32,
    b: (i64, i64, i64, i64),
    class: usize,
    tall: bool,
    id: u16,
) {
    let (x1, y1, x2, y2) = b;
    let (body, label, cap) = PALETTE[class];
    let (pw, ph) = (x2 - x1, y2 - y1);
    let mut paint = |xa: i64, ya: i64, xb: i64, yb: i64, colour: [u8; 3]| {
        for y in ya.max(0)..yb.min(image.height() as i64) {
            for x in xa.max(0)..xb.min(width as i64) {
                image.put_pixel(x as u32, y as u32, Rgb(colour));
                owner[(y * width as i64 + x) as usize] = id;
            }
        }
    };
    if tall {
        let neck_w = (pw / 3).max(2);
        let nx = x1 + (pw - neck_w) / 2;
        let cap_h = (ph / 14).max(1);
        let neck_h = ph / 5;
        paint(nx, y1, nx + neck_w, y1 + cap_h, cap);
        paint(nx, y1 + cap_h, nx + neck_w, y1 + neck_h, body);
        paint(
            x1 + pw / 6,
            y1 + neck_h,
            x2 - pw / 6,
            y1 + neck_h + ph / 12,
            body,
        );
        paint(x1, y1 + neck_h + ph / 12, x2, y2, body);
        paint(x1, y1 + ph * 45 / 100, x2, y1 + ph * 65 / 100, label);
    } else {
        paint(x1, y1, x2, y2, label);
        paint(x1, y1, x2, y1 + (ph / 10).max(1), [190, 190, 195]);
        paint(x1, y2 - (ph / 10).max(1), x2, y2, [160, 160, 165]);
        paint(
            x1 + pw / 4,
            y1 + ph * 35 / 100,
            x2 - pw / 4,
            y1 + ph * 65 / 100,
            body,
        );
    }
}

fn fill(image: &mut RgbImage, x1: i64, y1: i64, x2: i64, y2: i64, colour: [u8; 3]) {
    for y in y1.max(0)..y2.min(image.height() as i64) {
        for x in x1.max(0)..x2.min(image.width() as i64) {
            image.put_pixel(x as u32, y as u32, Rgb(colour));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_are_the_exact_extent_of_what_was_drawn() {
        for index in 0..20 {
            let scene = render_scene(42, index, 320, 240);
            for (k, b) in scene.boxes.iter().enumerate() {
                let id = k as u16 + 1;
                let (mut x1, mut y1, mut x2, mut y2) = (u32::MAX, u32::MAX, 0, 0);
                for (i, &o) in scene.owner.iter().enumerate() {
                    if o == id {
                        let (x, y) = (i as u32 % 320, i as u32 / 320);
                        x1 = x1.min(x);
                        y1 = y1.min(y);
                        x2 = x2.max(x + 1);
                        y2 = y2.max(y + 1);
                    }
                }
                assert_eq!(
                    BoxXyxy::new(x1 as f64, y1 as f64, x2 as f64, y2 as f64),
                    b.bbox,
                    "image {index} box {k}"
                );
            }
        }
    }

    #[test]
    fn scenes_are_deterministic_and_varied() {
        let a = render_scene(1, 3, 160, 120);
        let b = render_scene(1, 3, 160, 120);
        assert_eq!(a.image, b.image);
        assert_eq!(a.boxes, b.boxes);
        assert_ne!(render_scene(2, 3, 160, 120).image, a.image);
    }
}
