//! Tiled detection with the shipped model on real photos: a `cola-sprite/val` photo
//! shrunk to the scale the model was trained at (640 px → 384) and pasted onto a large
//! grey canvas so that tile seams run through its bottles. Every labelled bottle must be
//! found once, with its whole box, as the untiled model finds it on the photo itself; and
//! one tile covering the photo gives exactly the untiled result.
//!
//! Needs `../shared` (else `SKIP:`).

mod common;

use std::path::Path;

use image::{imageops, Rgb, RgbImage};

use common::shared_dir;
use detlab::dataset::image_info::decode_upright_rgb;
use detlab::dataset::{read_label_file, LabelFormat};
use detlab::detector::inference::{Detector, DetectorOptions, PredictConfig};
use detlab::detector::maths::postprocess::{Detection, SelectConfig};
use detlab::detector::maths::tiling::{tile_grid, TileParams, Tiling};
use detlab::geometry::BoxXyxy;

const MODEL: &str = "models/cola-sprite-lite0.safetensors";
/// The training letterbox scale of the shipped model (640-pixel photos into 384).
const SCALE: f64 = 0.6;
/// Where the shrunk photo goes on the canvas: across the seams of 384-pixel tiles.
const AT: (u32, u32) = (450, 300);

fn detector() -> Detector {
    tch::set_num_threads(1);
    Detector::load(Path::new(MODEL), &DetectorOptions::default()).expect("shipped model")
}

fn config(tiling: Tiling) -> PredictConfig {
    PredictConfig {
        select: SelectConfig {
            score_threshold: 0.3,
            ..SelectConfig::default()
        },
        tiling,
        ..PredictConfig::default()
    }
}

/// `(box, class)` of the labels, shrunk and moved like the photo.
fn labels_on_canvas(shared: &Path, name: &str, classes: &[String]) -> Vec<(BoxXyxy, usize)> {
    let d = shared.join("datasets/cola-sprite");
    let stem = name.trim_end_matches(".jpg");
    let ann = read_label_file(
        &d.join("val").join(name),
        &d.join("annotations").join(format!("{stem}.xml")),
        LabelFormat::Voc,
    )
    .expect("label file");
    ann.boxes
        .iter()
        .map(|b| {
            let (x, y) = (f64::from(AT.0), f64::from(AT.1));
            let bb = BoxXyxy::new(
                b.bbox.x1 * SCALE + x,
                b.bbox.y1 * SCALE + y,
                b.bbox.x2 * SCALE + x,
                b.bbox.y2 * SCALE + y,
            );
            let class = classes.iter().position(|c| *c == b.class_name).unwrap();
            (bb, class)
        })
        .collect()
}

fn matches<'a>(dets: &'a [Detection], b: &BoxXyxy, class: usize) -> Vec<&'a Detection> {
    dets.iter()
        .filter(|d| d.class_id == class && d.bbox.iou(b) >= 0.3)
        .collect()
}

#[test]
fn bottles_across_tile_seams_are_found_once_with_their_whole_box() {
    let Some(shared) = shared_dir() else { return };
    let det = detector();
    let params = TileParams::new(384);
    let grid = tile_grid(1400, 1000, &params);
    let mut seams_crossed = 0;
    let mut checked = 0;
    for name in ["002.jpg", "016.jpg", "030.jpg", "044.jpg"] {
        let path = shared.join("datasets/cola-sprite/val").join(name);
        let photo = decode_upright_rgb(&path).expect("val photo");
        let (w, h) = (
            (f64::from(photo.width()) * SCALE).round() as u32,
            (f64::from(photo.height()) * SCALE).round() as u32,
        );
        let small = imageops::resize(&photo, w, h, imageops::FilterType::Triangle);
        let mut canvas = RgbImage::from_pixel(1400, 1000, Rgb([128, 128, 128]));
        imageops::replace(&mut canvas, &small, i64::from(AT.0), i64::from(AT.1));
        let labels = labels_on_canvas(&shared, name, det.class_names());

        // The untiled model on the shrunk photo alone: what each bottle should give.
        let alone = &det.predict_images(&[small], &config(Tiling::Off)).unwrap()[0];
        let tiled = &det
            .predict_images(&[canvas], &config(Tiling::Tiles(params)))
            .unwrap()[0];
        assert_eq!((tiled.width, tiled.height), (1400, 1000));
        for (b, class) in &labels {
            let cut = grid.iter().any(|t| {
                let (x0, x1) = (f64::from(t.x), f64::from(t.x + t.width));
                (b.x1 < x0 && b.x2 > x0) || (b.x1 < x1 && b.x2 > x1)
            });
            seams_crossed += usize::from(cut);
            let shifted = b.translated(-f64::from(AT.0), -f64::from(AT.1));
            let reference = matches(&alone.detections, &shifted, *class);
            if reference.is_empty() {
                continue; // the model misses this one even untiled
            }
            checked += 1;
            let found = matches(&tiled.detections, b, *class);
            assert_eq!(
                found.len(),
                1,
                "{name}: the bottle at {b:?} gave {} detections: {found:?}",
                found.len()
            );
            let iou = found[0].bbox.iou(b);
            let untiled_iou = reference[0].bbox.iou(&shifted);
            assert!(
                iou >= (untiled_iou - 0.1).min(0.6),
                "{name}: tiled box IoU {iou:.3} with the label (untiled {untiled_iou:.3})"
            );
        }
        // Nothing appears on the empty grey canvas.
        for d in &tiled.detections {
            let inside = d.bbox.x1 >= f64::from(AT.0) - 8.0 && d.bbox.y1 >= f64::from(AT.1) - 8.0;
            assert!(inside, "{name}: a detection off the photo: {d:?}");
        }
    }
    assert!(checked >= 6, "only {checked} bottles checked");
    assert!(
        seams_crossed >= 3,
        "only {seams_crossed} bottles cross a seam"
    );
}

#[test]
fn one_tile_covering_the_photo_gives_the_untiled_result() {
    let Some(shared) = shared_dir() else { return };
    let det = detector();
    let path = shared.join("datasets/cola-sprite/val/002.jpg");
    let photo = decode_upright_rgb(&path).expect("val photo");
    let cfg = config(Tiling::Off);
    let untiled = &det
        .predict_images(std::slice::from_ref(&photo), &cfg)
        .unwrap()[0];
    let one = TileParams::new(photo.width().max(photo.height()));
    assert_eq!(tile_grid(photo.width(), photo.height(), &one).len(), 1);
    // The tiled path itself (not the short cut predict_images takes for one tile).
    let tiled = det.predict_tiled(&photo, &one, &cfg).unwrap();
    assert!(!untiled.detections.is_empty());
    assert_eq!(tiled.candidates.len(), untiled.candidates.len());
    assert_eq!(tiled.detections.len(), untiled.detections.len());
    for (t, u) in tiled.detections.iter().zip(&untiled.detections) {
        assert_eq!((t.class_id, t.score), (u.class_id, u.score));
        let d = (t.bbox.x1 - u.bbox.x1)
            .abs()
            .max((t.bbox.y2 - u.bbox.y2).abs());
        assert!(d < 1e-3, "{t:?} vs {u:?}");
    }
    // The sliders' re-selection works on the tiled candidates in original pixels.
    let strict = SelectConfig {
        score_threshold: 0.6,
        ..cfg.select
    };
    let (a, b) = (tiled.reselect(&strict), untiled.reselect(&strict));
    assert_eq!(a.len(), b.len());
    for (t, u) in a.iter().zip(&b) {
        assert_eq!(t.class_id, u.class_id);
        assert!((t.bbox.x2 - u.bbox.x2).abs() < 1e-3 && (t.score - u.score).abs() < 1e-6);
    }
}
