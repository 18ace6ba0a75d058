use super::*;

/// `(x·37 + y·91 + c·59) mod 256`, interleaved RGB.
fn pattern(w: usize, h: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                v.push(((x * 37 + y * 91 + c * 59) % 256) as u8);
            }
        }
    }
    v
}

/// `torch.nn.functional.interpolate(img, size=(3, 4), mode='bilinear', align_corners=False,
/// antialias=False)` on `pattern(7, 5)` (PyTorch 2.11; same semantics as OpenCV
/// `INTER_LINEAR`), as HWC.
const TORCH_7X5_TO_4X3: [f32; 36] = [
    44.2083, 103.208, 162.208, 108.958, 157.292, 141.625, 173.708, 147.375, 57.0417, 153.125,
    105.458, 100.458, 195.875, 158.875, 57.875, 4.625, 63.625, 122.625, 69.375, 128.375, 187.375,
    134.125, 193.125, 92.125, 91.5416, 150.542, 145.542, 156.292, 193.958, 103.625, 71.7084,
    109.375, 93.7083, 115.125, 88.7917, 147.792,
];

/// The same, up-sampling `pattern(7, 5)` to 10×9; the first two rows (2·10·3 values).
const TORCH_7X5_TO_10X9_ROWS_0_1: [f32; 60] = [
    0.0, 59.0, 118.0, 20.35, 79.35, 138.35, 46.25, 105.25, 164.25, 72.15, 131.15, 190.15, 98.05,
    157.05, 216.05, 123.95, 182.95, 152.35, 149.85, 208.85, 11.85, 175.75, 234.75, 37.75, 201.65,
    145.45, 63.65, 222.0, 25.0, 84.0, 30.3333, 89.3333, 148.333, 50.6833, 109.683, 168.683,
    76.5833, 135.583, 173.25, 102.483, 161.483, 139.417, 128.383, 131.917, 161.05, 154.283, 127.95,
    127.217, 175.917, 153.85, 42.1833, 142.083, 179.75, 68.0833, 146.65, 128.85, 93.9833, 167.0,
    55.3333, 114.333,
];

/// Last output row of the 10×9 case.
const TORCH_7X5_TO_10X9_ROW_8: [f32; 30] = [
    108.0, 167.0, 226.0, 128.35, 187.35, 105.55, 154.25, 213.25, 16.25, 180.15, 239.15, 42.15,
    206.05, 98.65, 68.05, 142.35, 34.95, 93.95, 1.84999, 60.85, 119.85, 27.75, 86.75, 145.75,
    53.65, 112.65, 171.65, 74.0, 133.0, 192.0,
];

fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "value {i}: {g} vs {w}");
    }
}

#[test]
fn bilinear_matches_torch_when_shrinking_and_enlarging() {
    let src = pattern(7, 5);
    assert_close(
        &resize_bilinear(&src, 7, 5, 3, 4, 3),
        &TORCH_7X5_TO_4X3,
        2e-3,
    );
    let up = resize_bilinear(&src, 7, 5, 3, 10, 9);
    assert_close(&up[..60], &TORCH_7X5_TO_10X9_ROWS_0_1, 2e-3);
    assert_close(&up[8 * 30..], &TORCH_7X5_TO_10X9_ROW_8, 2e-3);
}

#[test]
fn bilinear_hand_checked_2x_up_and_down() {
    // 2×1 grey → 4×1: centres at -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
    assert_eq!(
        resize_bilinear(&[0, 100], 2, 1, 1, 4, 1),
        vec![0.0, 25.0, 75.0, 100.0]
    );
    // Halving averages each 2×2 block (no antialiasing needed at exactly 2×).
    let src = [
        0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150,
    ];
    assert_eq!(
        resize_bilinear(&src, 4, 4, 1, 2, 2),
        vec![25.0, 45.0, 105.0, 125.0]
    );
    // Same size is the identity.
    let img = pattern(5, 3);
    let same = resize_bilinear(&img, 5, 3, 3, 5, 3);
    assert_eq!(same, img.iter().map(|&v| f32::from(v)).collect::<Vec<_>>());
}

#[test]
fn letterbox_geometry_rounds_and_keeps_aspect() {
    let lb = Letterbox::new(640, 480, 512);
    assert_eq!((lb.resized_width, lb.resized_height), (512, 384));
    let lb = Letterbox::new(427, 640, 512);
    assert_eq!((lb.resized_width, lb.resized_height), (342, 512)); // 341.6 rounds up
    let lb = Letterbox::new(5000, 1, 320);
    assert_eq!((lb.resized_width, lb.resized_height), (320, 1));
}

#[test]
fn boxes_round_trip_through_the_letterbox() {
    for (w, h, s) in [
        (640, 480, 512),
        (427, 640, 512),
        (1000, 333, 320),
        (33, 17, 1536),
    ] {
        let lb = Letterbox::new(w, h, s);
        for i in 0..200u32 {
            let f = |k: u32| f64::from((i * 7919 + k * 104_729) % 1000) / 1000.0;
            let (x1, x2) = (f(1) * f64::from(w) * 0.5, f64::from(w) * (0.5 + f(2) * 0.5));
            let (y1, y2) = (f(3) * f64::from(h) * 0.5, f64::from(h) * (0.5 + f(4) * 0.5));
            let b = BoxXyxy::new(x1, y1, x2, y2);
            let back = lb.to_original(&lb.to_input(&b));
            for (g, w) in [
                (back.x1, b.x1),
                (back.y1, b.y1),
                (back.x2, b.x2),
                (back.y2, b.y2),
            ] {
                assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "{b:?} → {back:?}");
            }
        }
        // Whole-image box maps to the resized region and back exactly.
        let full = BoxXyxy::new(0.0, 0.0, f64::from(w), f64::from(h));
        let inp = lb.to_input(&full);
        assert_eq!(
            inp,
            BoxXyxy::new(
                0.0,
                0.0,
                f64::from(lb.resized_width),
                f64::from(lb.resized_height)
            )
        );
        assert_eq!(lb.to_original(&inp), full);
    }
}

#[test]
fn inverse_mapping_clips_to_the_image() {
    let lb = Letterbox::new(640, 480, 512);
    // A box reaching into the bottom padding (rows 384..512).
    let b = lb.to_original(&BoxXyxy::new(-4.0, 300.0, 511.0, 500.0));
    assert_eq!(b, BoxXyxy::new(0.0, 375.0, 638.75, 480.0));
}

#[test]
fn letterboxed_input_is_normalised_chw_with_zero_padding() {
    let img = pattern(8, 4);
    let (t, lb) = letterbox_rgb(&img, 8, 4, 4, &Normalization::LITE);
    assert_eq!((lb.resized_width, lb.resized_height), (4, 2));
    assert_eq!(t.len(), 3 * 16);
    let resized = resize_bilinear(&img, 8, 4, 3, 4, 2);
    for c in 0..3 {
        for y in 0..4 {
            for x in 0..4 {
                let v = t[c * 16 + y * 4 + x];
                let want = if y < 2 {
                    (resized[(y * 4 + x) * 3 + c] - 127.0) / 128.0
                } else {
                    0.0
                };
                assert_eq!(v, want, "c{c} y{y} x{x}");
            }
        }
    }
    let n = Normalization::IMAGENET;
    assert!((n.apply(0, 255.0) - (1.0 - 0.485) / 0.229).abs() < 1e-6);
    assert!(
        n.is_valid()
            && !Normalization {
                std: [1.0, 0.0, 1.0],
                ..n
            }
            .is_valid()
    );
}
