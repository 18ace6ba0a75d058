//! Test-time augmentation with the shipped model on real photos: with the mirror image
//! (and with two more scales) the model finds every object it finds on the photo alone,
//! each matched at IoU ≥ 0.8 by a detection of its class, and nothing on an empty image.
//! The photos are ones where the model is sure of its boxes: on crowded ones (`044.jpg`,
//! `499.jpg`: overlapping bottles, Cola/Sprite confusions below score 0.6) another pass
//! can win NMS with a box at IoU 0.56–0.8 of the plain pass's, which is the model's
//! uncertainty, not the mapping (exact cases in `detector::maths::tta`'s unit tests).
//!
//! Needs `../shared` (else `SKIP:`).

mod common;

use std::path::Path;

use image::{Rgb, RgbImage};

use common::shared_dir;
use detlab::dataset::image_info::decode_upright_rgb;
use detlab::detector::inference::{Detector, DetectorOptions, PredictConfig};
use detlab::detector::maths::postprocess::SelectConfig;
use detlab::detector::maths::tiling::Tiling;
use detlab::detector::maths::tta::Tta;

const MODEL: &str = "models/cola-sprite-lite0.safetensors";

fn detector() -> Detector {
    tch::set_num_threads(1);
    Detector::load(Path::new(MODEL), &DetectorOptions::default()).expect("shipped model")
}

fn config(tta: Tta) -> PredictConfig {
    PredictConfig {
        select: SelectConfig {
            score_threshold: 0.3,
            ..SelectConfig::default()
        },
        tiling: Tiling::Off,
        tta,
        ..PredictConfig::default()
    }
}

#[test]
fn tta_finds_what_the_plain_pass_finds_and_nothing_on_an_empty_image() {
    let Some(shared) = shared_dir() else { return };
    let det = detector();
    let val = shared.join("datasets/cola-sprite/val");
    let photos: Vec<RgbImage> = ["002.jpg", "016.jpg", "100.jpg"]
        .iter()
        .map(|n| decode_upright_rgb(&val.join(n)).expect("val photo"))
        .collect();
    let plain = det.predict_images(&photos, &config(Tta::Off)).unwrap();
    let mut checked = 0;
    for tta in [Tta::Flip, Tta::flip_scales()] {
        let augmented = det.predict_images(&photos, &config(tta)).unwrap();
        assert_eq!(augmented.len(), photos.len());
        for (i, (p, a)) in plain.iter().zip(&augmented).enumerate() {
            assert_eq!((a.width, a.height), (640, 480));
            for d in &p.detections {
                let best = a
                    .detections
                    .iter()
                    .filter(|t| t.class_id == d.class_id)
                    .map(|t| t.bbox.iou(&d.bbox))
                    .fold(0.0, f64::max);
                assert!(
                    best >= 0.8,
                    "{tta:?}, photo {i}: {d:?} best matched at IoU {best:.3} by {:?}",
                    a.detections
                );
                checked += 1;
            }
            // Re-filtering the pooled candidates gives the detections again (before the
            // box fusion: same scores and classes).
            let again = a.reselect(&config(tta).select);
            assert_eq!(again.len(), a.detections.len());
            for (r, d) in again.iter().zip(&a.detections) {
                assert_eq!((r.score, r.class_id), (d.score, d.class_id));
                assert!(r.bbox.iou(&d.bbox) >= 0.6);
            }
            for t in &a.detections {
                assert!(t.bbox.x1 >= 0.0 && t.bbox.x2 <= 640.0 && t.bbox.y2 <= 480.0);
            }
        }
        let empty = RgbImage::from_pixel(640, 480, Rgb([128, 128, 128]));
        let none = det.predict_images(&[empty], &config(tta)).unwrap();
        assert!(
            none[0].detections.is_empty(),
            "{tta:?} on an empty image: {:?}",
            none[0].detections
        );
    }
    assert!(checked >= 6, "only {checked} detections checked");
}
