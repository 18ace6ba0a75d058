//! Parity of the pure-Rust post-processing with the reference (Zylo117) on fixture outputs:
//! `zylo117-d0/io.pt`'s regression, classification (after sigmoid) and anchors, score 0.2,
//! per-class NMS IoU 0.2, must give `det0_*` exactly as a set and nothing for image 1.

mod common;

use detlab::detector::checkpoint::{read_checkpoint, CheckpointTensor};
use detlab::detector::maths::box_coding::{DeltaRows, YxyxRows};
use detlab::detector::maths::postprocess::{postprocess, Candidates, ImageOutputs, SelectConfig};

fn by_name<'a>(ts: &'a [CheckpointTensor], name: &str) -> &'a CheckpointTensor {
    ts.iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("io.pt has no `{name}`"))
}

#[test]
fn postprocess_reproduces_reference_detections() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let io = read_checkpoint(&shared.join("fixtures/zylo117-d0/io.pt")).expect("read io.pt");
    let regression = by_name(&io, "regression");
    let classification = by_name(&io, "classification");
    let anchors = by_name(&io, "anchors");
    assert_eq!(regression.shape, vec![2, 49104, 4]);
    assert_eq!(classification.shape, vec![2, 49104, 2]);
    assert_eq!(anchors.shape, vec![1, 49104, 4]);
    let (reg, cls, anc) = (
        regression.to_f32(),
        classification.to_f32(),
        anchors.to_f32(),
    );
    let n = 49104;
    let cfg = SelectConfig {
        score_threshold: 0.2,
        iou_threshold: 0.2,
        class_agnostic: false,
        nms: Default::default(),
        max_detections: None,
    };

    for image in 0..2 {
        let out = ImageOutputs {
            regression: DeltaRows::from_flat(&reg[image * n * 4..(image + 1) * n * 4]).unwrap(),
            classification: &cls[image * n * 2..(image + 1) * n * 2],
            num_classes: 2,
            anchors: YxyxRows::from_flat(&anc).unwrap(),
            input_width: 512,
            input_height: 512,
        };
        let ours = postprocess(&out, None, &cfg).unwrap();
        let want_boxes = by_name(&io, &format!("det{image}_boxes")).to_f32();
        let want_scores = by_name(&io, &format!("det{image}_scores")).to_f32();
        let want_classes = by_name(&io, &format!("det{image}_classes")).to_f32();
        assert_eq!(
            ours.len(),
            want_scores.len(),
            "image {image}: detection count"
        );
        if image == 1 {
            assert!(ours.is_empty());
        }
        // Match as a set: each reference detection pairs with a distinct one of ours.
        let mut used = vec![false; ours.len()];
        let (mut max_box, mut max_score) = (0f64, 0f32);
        for (k, wb) in want_boxes.chunks_exact(4).enumerate() {
            let found = ours.iter().enumerate().position(|(i, d)| {
                let b = [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2];
                !used[i]
                    && d.class_id as f32 == want_classes[k]
                    && (d.score - want_scores[k]).abs() <= 1e-5
                    && b.iter()
                        .zip(wb)
                        .all(|(g, w)| (g - f64::from(*w)).abs() <= 1e-3)
            });
            let i = found.unwrap_or_else(|| {
                panic!("image {image}: reference detection {k} {wb:?} not reproduced")
            });
            used[i] = true;
            let d = &ours[i];
            let b = [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2];
            max_box = b
                .iter()
                .zip(wb)
                .fold(max_box, |m, (g, w)| m.max((g - f64::from(*w)).abs()));
            max_score = max_score.max((d.score - want_scores[k]).abs());
        }
        eprintln!("image {image}: {} detections, max |box diff| {max_box:.2e} px, max |score diff| {max_score:.2e}", ours.len());

        // Re-thresholding the kept candidates gives the same answer as a fresh run.
        let cands = Candidates::from_outputs(&out, 0.05, None).unwrap();
        assert_eq!(cands.select(&cfg), ours);
    }
}

/// Pre-processing: `val/072.jpg` letterboxed to 512 with ImageNet normalisation against
/// `io.pt`'s `input[0]` (made with OpenCV: libjpeg decoding, then `INTER_LINEAR` on the
/// normalised image). JPEG decoders differ by a level here and there, so the bound is on
/// the mean difference; the padding must be exactly zero.
#[test]
fn preprocessing_matches_reference_input() {
    use detlab::detector::maths::letterbox::{letterbox_rgb, Normalization};
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let img = image::open(shared.join("datasets/cola-sprite/val/072.jpg"))
        .expect("decode 072.jpg")
        .to_rgb8();
    let (w, h) = img.dimensions();
    let (ours, lb) = letterbox_rgb(img.as_raw(), w, h, 512, &Normalization::IMAGENET);
    assert_eq!((lb.resized_width, lb.resized_height), (512, 384));
    let io = read_checkpoint(&shared.join("fixtures/zylo117-d0/io.pt")).expect("read io.pt");
    let input = by_name(&io, "input").to_f32();
    let want = &input[..3 * 512 * 512];
    let (mut sum, mut max) = (0f64, 0f32);
    for c in 0..3 {
        for y in 0..512 {
            for x in 0..512 {
                let i = c * 512 * 512 + y * 512 + x;
                let d = (ours[i] - want[i]).abs();
                if y >= 384 {
                    assert_eq!((ours[i], want[i]), (0.0, 0.0), "padding at c{c} y{y} x{x}");
                }
                sum += f64::from(d);
                max = max.max(d);
            }
        }
    }
    let mean = sum / want.len() as f64;
    eprintln!("pre-processing vs reference input: mean |diff| {mean:.2e}, max {max:.2e} (1 grey level ≈ 1.7e-2)");
    assert!(mean < 5e-3, "mean |diff| {mean}");
}
