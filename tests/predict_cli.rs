//! `detlab predict` and `detlab eval --model` end to end: a demo dataset, a fresh Lite0
//! model file at 128 px, JSON / COCO results / VOC outputs; and the whole import → load →
//! predict path reproducing the reference D0 detections, and the shipped model's scores on
//! cola-sprite/val checked against its card and against pycocotools (needs ../shared and,
//! for pycocotools, the venv).

mod common;
mod pycocotools;

use common::{detlab, shared_dir, text};

use std::collections::HashMap;
use std::path::Path;

use detlab::detector::checkpoint::{ModelArch, ModelMeta};
use detlab::detector::inference::{Detector, DetectorOptions, DeviceChoice};
use detlab::detector::maths::postprocess::SelectConfig;
use tch::{Device, Kind, Tensor};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn cpu(fold: bool) -> DetectorOptions {
    DetectorOptions {
        device: DeviceChoice::Cpu,
        threads: Some(1),
        fold_batchnorm: fold,
        nhwc_engine: true,
        precision: Default::default(),
    }
}

/// Four 128 × 96 demo images and a fresh (random-init) Lite0 model at 128 px with the
/// demo's classes: `(data folder, model file, classes)`.
fn demo_with_fresh_model(tmp: &Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<String>) {
    let data = tmp.join("data");
    let o = detlab(&[
        "demo",
        "--out",
        s(&data),
        "--images",
        "4",
        "--width",
        "128",
        "--height",
        "96",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let classes: Vec<String> = std::fs::read_to_string(data.join("predefined_classes.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    tch::manual_seed(0);
    let mut meta = ModelMeta::for_arch(ModelArch::Lite0, classes.clone());
    meta.input_size = 128;
    let model = tmp.join("lite0.safetensors");
    Detector::fresh_with_meta(meta, &cpu(false))
        .unwrap()
        .to_model_file()
        .unwrap()
        .write(&model)
        .unwrap();
    (data, model, classes)
}

#[test]
fn predict_and_eval_on_a_demo_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, model, classes) = demo_with_fresh_model(tmp.path());

    // No --model: the default model ($DETLAB_MODEL here); a missing one is a clear error
    // naming the file, and nothing is written.
    let out = tmp.path().join("pred.json");
    let missing = tmp.path().join("no-such-model.safetensors");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_detlab-torch"))
        .args(["predict", "--images", s(&data), "--out", s(&out)])
        .env("DETLAB_MODEL", &missing)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("no-such-model.safetensors"),
        "{}",
        text(&o)
    );
    assert!(!out.exists());

    // detlab's document. Fresh class scores are ≈ 0.01, so a low threshold.
    let common = [
        "--model",
        s(&model),
        "--score",
        "0.001",
        "--max-det",
        "20",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--batch",
        "3",
    ];
    let mut args = vec!["predict", "--images", s(&data), "--out", s(&out)];
    args.extend(common);
    let o = detlab(&args);
    assert!(o.status.success(), "{}", text(&o));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(doc["model"]["arch"], "lite0");
    let images = doc["images"].as_array().unwrap();
    assert_eq!(images.len(), 4);
    for img in images {
        assert!(data.join(img["file_name"].as_str().unwrap()).is_file());
        assert_eq!(
            (img["width"].as_u64(), img["height"].as_u64()),
            (Some(128), Some(96))
        );
        let dets = img["detections"].as_array().unwrap();
        assert!(!dets.is_empty() && dets.len() <= 20);
        for d in dets {
            let b: Vec<f64> = d["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert!(
                b[0] >= 0.0 && b[1] >= 0.0 && b[2] > 0.0 && b[3] > 0.0,
                "{b:?}"
            );
            assert!(
                b[0] + b[2] <= 128.0 + 1e-9 && b[1] + b[3] <= 96.0 + 1e-9,
                "{b:?}"
            );
            let id = d["category_id"].as_u64().unwrap() as usize;
            assert!((1..=classes.len()).contains(&id));
            assert_eq!(d["category"], classes[id - 1]);
            assert!(d["score"].as_f64().unwrap() > 0.001);
        }
    }

    // COCO results against the exported ground truth, then `eval --gt --dt`.
    let coco = tmp.path().join("coco");
    let o = detlab(&[
        "export",
        "coco",
        "--images",
        s(&data),
        "--out",
        s(&coco),
        "--classes",
        s(&data.join("predefined_classes.txt")),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let gt = coco.join("instances_train.json");
    let results = tmp.path().join("results.json");
    let mut args = vec![
        "predict",
        "--images",
        s(&data),
        "--out",
        s(&results),
        "--gt",
        s(&gt),
    ];
    args.extend(common);
    let o = detlab(&args);
    assert!(o.status.success(), "{}", text(&o));
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    assert!(!list.is_empty() && list[0]["image_id"].is_i64());
    let o = detlab(&["eval", "--gt", s(&gt), "--dt", s(&results)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Average Precision"), "{}", text(&o));

    // `eval --model --data DIR` predicts and evaluates in one go.
    let mut args = vec!["eval", "--data", s(&data), "--json"];
    args.extend(common);
    let o = detlab(&args);
    assert!(o.status.success(), "{}", text(&o));
    let beside: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();

    // The same labels in a separate folder (LabelImg's save dir) give the same numbers.
    let labels = tmp.path().join("labels");
    let images_only = tmp.path().join("images-only");
    std::fs::create_dir_all(&labels).unwrap();
    std::fs::create_dir_all(&images_only).unwrap();
    for e in std::fs::read_dir(&data).unwrap() {
        let p = e.unwrap().path();
        let to = if p.extension().is_some_and(|x| x == "jpg") {
            &images_only
        } else {
            &labels
        };
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
    let mut args = vec![
        "eval",
        "--data",
        s(&images_only),
        "--labels",
        s(&labels),
        "--json",
    ];
    args.extend(common);
    let o = detlab(&args);
    assert!(o.status.success(), "{}", text(&o));
    let separate: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(beside["stats"], separate["stats"]);

    // VOC output: never into the images' folder, never over existing files.
    let mut args = vec![
        "predict",
        "--images",
        s(&data),
        "--out",
        s(&out),
        "--voc-dir",
        s(&data),
    ];
    args.extend(common);
    let o = detlab(&args);
    assert!(!o.status.success());
    assert!(text(&o).contains("separate folder"), "{}", text(&o));
    let voc = tmp.path().join("voc");
    let mut args = vec![
        "predict",
        "--images",
        s(&data),
        "--out",
        s(&out),
        "--voc-dir",
        s(&voc),
    ];
    args.extend(common);
    let o = detlab(&args);
    assert!(o.status.success(), "{}", text(&o));
    let xmls: Vec<_> = std::fs::read_dir(&voc).unwrap().flatten().collect();
    assert_eq!(xmls.len(), 4);
    let ann = detlab::formats::voc::read(&xmls[0].path()).unwrap();
    assert!(!ann.boxes.is_empty() && ann.width == 128);
    let o = detlab(&args);
    assert!(!o.status.success());
    assert!(text(&o).contains("never written over"), "{}", text(&o));

    // An unreadable image is skipped with a warning; the others are predicted.
    let mixed = tmp.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    std::fs::write(mixed.join("broken.jpg"), b"not a jpeg").unwrap();
    let first = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "jpg"))
        .unwrap();
    std::fs::copy(first.path(), mixed.join("ok.jpg")).unwrap();
    let mut args = vec!["predict", "--images", s(&mixed), "--out", s(&out)];
    args.extend(common);
    let o = detlab(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("skipped") && text(&o).contains("broken.jpg"),
        "{}",
        text(&o)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(doc["images"].as_array().unwrap().len(), 1);
    // The JSON says so too, for a pipeline that reads no terminal.
    let skipped = doc["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{doc}");
    assert_eq!(skipped[0]["file_name"], "broken.jpg");
    assert!(!skipped[0]["reason"].as_str().unwrap().is_empty());
    assert_eq!(doc["warnings"].as_array().unwrap().len(), 0);
}

/// import-weights of the reference OrderedDict `.pth` → model file → `Detector` on `io.pt`'s
/// input reproduces the reference post-processing (score 0.2, per-class NMS IoU 0.2).
/// `bytes` (a safetensors file) with `key` of its metadata set to `value`: a model file
/// that detlab itself refuses to write.
fn with_metadata(bytes: &[u8], key: &str, value: &str) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header["__metadata__"][key] = value.into();
    let mut json = serde_json::to_vec(&header).unwrap();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

/// Model files that cannot be run are refused with an error naming the file (exit 1),
/// never run: an absurd input size (it once aborted on a 3 TB allocation) and a NaN
/// weight (it once predicted without a word). `import-weights` never writes the former.
#[test]
fn broken_model_files_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 3, y as u8 * 5, 90]))
        .save(images.join("a.png"))
        .unwrap();
    tch::manual_seed(0);
    let mut meta = ModelMeta::for_arch(ModelArch::Lite0, vec!["Cola".into(), "Sprite".into()]);
    meta.input_size = 64;
    let good = Detector::fresh_with_meta(meta, &cpu(false))
        .unwrap()
        .to_model_file()
        .unwrap();
    let good_path = tmp.path().join("good.safetensors");
    good.write(&good_path).unwrap();
    let predict = |model: &Path| {
        let out = tmp.path().join("pred.json");
        let o = detlab(&[
            "predict",
            "--model",
            s(model),
            "--images",
            s(&images),
            "--out",
            s(&out),
            "--device",
            "cpu",
            "--threads",
            "1",
        ]);
        (o, out)
    };
    let (o, out) = predict(&good_path);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::remove_file(&out).unwrap();

    let huge = tmp.path().join("huge.safetensors");
    let bytes = std::fs::read(&good_path).unwrap();
    std::fs::write(&huge, with_metadata(&bytes, "detlab.input_size", "1000000")).unwrap();
    let mut nan = good.clone();
    let t = nan
        .tensors
        .iter_mut()
        .find(|t| t.dtype == detlab::detector::checkpoint::DType::F32)
        .unwrap();
    t.data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    let nan_path = tmp.path().join("nan.safetensors");
    nan.write(&nan_path).unwrap();
    for (model, what) in [(&huge, "1000000"), (&nan_path, "NaN")] {
        let (o, out) = predict(model);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let name = model.file_name().unwrap().to_str().unwrap();
        assert!(
            text(&o).contains(name) && text(&o).contains(what),
            "{}",
            text(&o)
        );
        assert!(!text(&o).contains("memory allocation"), "{}", text(&o));
        assert!(!out.exists());
    }

    let o = detlab(&[
        "import-weights",
        s(&tmp.path().join("any.pth")),
        "--arch",
        "d0",
        "--num-classes",
        "2",
        "--input-size",
        "1000000",
        "--out",
        s(&tmp.path().join("imported.safetensors")),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("--input-size") && text(&o).contains("2048"),
        "{}",
        text(&o)
    );
    assert!(!tmp.path().join("imported.safetensors").exists());
}

#[test]
fn imported_d0_model_reproduces_reference_detections() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    tch::set_num_threads(1);
    let fixtures = shared.join("fixtures/zylo117-d0");
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("d0.safetensors");
    common::import_reference_d0(&fixtures, &model);
    let det = Detector::load(&model, &cpu(true)).unwrap();
    let io: HashMap<String, Tensor> = Tensor::loadz_multi(fixtures.join("io.pt"))
        .unwrap()
        .into_iter()
        .collect();
    let cands = det.candidates(&io["input"], 0.2, None).unwrap();
    let cfg = SelectConfig {
        score_threshold: 0.2,
        iou_threshold: 0.2,
        class_agnostic: false,
        nms: Default::default(),
        max_detections: None,
    };
    let ours = cands[0].select(&cfg);
    assert!(cands[1].select(&cfg).is_empty());
    let boxes = io["det0_boxes"].to_kind(Kind::Float).to_device(Device::Cpu);
    let n = boxes.size()[0] as usize;
    let boxes: Vec<f32> = Vec::try_from(boxes.view([-1])).unwrap();
    let scores: Vec<f32> =
        Vec::try_from(io["det0_scores"].to_kind(Kind::Float).view([-1])).unwrap();
    let classes: Vec<i64> =
        Vec::try_from(io["det0_classes"].to_kind(Kind::Int64).view([-1])).unwrap();
    assert_eq!(ours.len(), n, "detection count");
    let mut used = vec![false; n];
    let mut worst = 0f64;
    for d in &ours {
        let b = [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2];
        let hit = (0..n).find(|&i| {
            !used[i]
                && classes[i] as usize == d.class_id
                && (scores[i] - d.score).abs() < 1e-4
                && (0..4).all(|k| (f64::from(boxes[4 * i + k]) - b[k]).abs() < 1e-2)
        });
        let i = hit.unwrap_or_else(|| panic!("no reference detection matches {d:?}"));
        used[i] = true;
        for k in 0..4 {
            worst = worst.max((f64::from(boxes[4 * i + k]) - b[k]).abs());
        }
    }
    eprintln!("{n} detections match the reference; worst box coordinate |Δ| = {worst:.2e} px");
}

/// The shipped model is the default of `eval` and scores on `cola-sprite/val` what its
/// model card (models/README.md) says; and pycocotools scores the same detections the same.
///
/// The card's AP / AP50 were written from this very command, so that half is a regression
/// guard (it notices when the model file, the inference pipeline or the evaluator moves the
/// numbers), not an independent check of the evaluator. The independent half: the same
/// model's detections on the same images, written as a COCO results file by `predict --gt`
/// against the `export coco` of the same labels, are scored by `detlab eval --gt --dt` and by
/// pycocotools run live from the venv (`tests/data/pycocotools_eval.py`) on the same two
/// files: the 12 stats and per-category AP / AR must agree to 1e-12. The stats of
/// `eval --data` (the card's numbers) must equal those of `eval --gt --dt` too, so the
/// pycocotools check covers the numbers the card quotes.
#[test]
fn the_shipped_model_scores_what_its_card_says() {
    let Some(shared) = shared_dir() else { return };
    let d = shared.join("datasets/cola-sprite");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_detlab-torch"))
            .args(args)
            .env_remove("DETLAB_MODEL")
            .output()
            .unwrap();
        assert!(o.status.success(), "detlab {args:?}: {}", text(&o));
        o
    };
    let (val, labels) = (s(&d.join("val")), s(&d.join("annotations")));
    let o = run(&[
        "eval",
        "--json",
        "--threads",
        "1",
        "--data",
        &val,
        "--labels",
        &labels,
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let stats = |v: &serde_json::Value| -> Vec<f64> {
        v["stats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let card = stats(&v);
    // Regression guard: the card's own numbers (models/README.md).
    let (ap, ap50) = (card[0], card[1]);
    assert!(
        (ap - 0.662).abs() < 0.002,
        "AP {ap} (card: 0.662) — {}",
        s(&d)
    );
    assert!((ap50 - 0.965).abs() < 0.002, "AP50 {ap50} (card: 0.965)");

    // Independent: pycocotools on the same detections.
    let tmp = tempfile::tempdir().unwrap();
    let gt = common::export_coco_gt(
        &d.join("val"),
        &d.join("annotations"),
        &tmp.path().join("coco"),
    );
    let results = tmp.path().join("results.json");
    run(&[
        "predict",
        "--images",
        &val,
        "--gt",
        &s(&gt),
        "--out",
        &s(&results),
        "--threads",
        "1",
    ]);
    let o = run(&["eval", "--json", "--gt", &s(&gt), "--dt", &s(&results)]);
    let ours: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        stats(&ours),
        card,
        "eval --gt --dt on predict's results differs from eval --data"
    );
    let Some(reference) = pycocotools::evaluate(&gt, &results, &[]) else {
        return;
    };
    let want = &reference.runs[0];
    let diff = pycocotools::max_abs_diff(&stats(&ours), &want.stats);
    assert!(
        diff <= 1e-12,
        "12 stats differ from pycocotools {} by {diff:e}: detlab {:?}, pycocotools {:?}",
        reference.pycocotools,
        stats(&ours),
        want.stats
    );
    let per = ours["per_category"].as_object().unwrap();
    assert_eq!(per.len(), want.per_category.len(), "{per:?}");
    for (id, [ap, ar]) in &want.per_category {
        let c = &per[&id.to_string()];
        let (our_ap, our_ar) = (c["ap"].as_f64().unwrap(), c["ar100"].as_f64().unwrap());
        assert!(
            (our_ap - ap).abs() <= 1e-12 && (our_ar - ar).abs() <= 1e-12,
            "category {id}: detlab AP {our_ap} AR {our_ar}, pycocotools AP {ap} AR {ar}"
        );
    }
    eprintln!(
        "cola-sprite/val: AP {ap} AP50 {ap50}; the same detections in pycocotools {} agree to {diff:e}",
        reference.pycocotools
    );
}

/// `predict` of `model` over `data` into `out` at score 0.001 on one CPU thread, with
/// `extra` flags.
fn predict_at_low_score(
    data: &Path,
    model: &Path,
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "predict",
        "--images",
        s(data),
        "--out",
        s(out),
        "--model",
        s(model),
        "--score",
        "0.001",
        "--device",
        "cpu",
        "--threads",
        "1",
    ];
    args.extend(extra);
    detlab(&args)
}

/// The COCO-style `[x, y, w, h]` boxes of each image in a `predict` JSON file.
fn boxes_per_image(out: &Path) -> Vec<Vec<Vec<f64>>> {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|img| {
            img["detections"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    d["bbox"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_f64().unwrap())
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// `--tile`: tiles of 64 pixels over 128 × 96 photos give boxes inside each photo (the
/// merge maps every tile back); bad values are refused naming the flag, writing nothing.
#[test]
fn tiled_prediction_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, model, _) = demo_with_fresh_model(tmp.path());
    let out = tmp.path().join("tiled.json");
    let run = |extra: &[&str]| predict_at_low_score(&data, &model, &out, extra);
    for (bad, flag) in [
        (&["--tile", "16"][..], "--tile"),
        (&["--tile-overlap", "0.9"], "--tile-overlap"),
    ] {
        let o = run(bad);
        assert!(
            !o.status.success() && text(&o).contains(flag),
            "{}",
            text(&o)
        );
        assert!(!out.exists());
    }
    let o = run(&["--tile", "64", "--tile-overlap", "0.3"]);
    assert!(o.status.success(), "{}", text(&o));
    let images = boxes_per_image(&out);
    assert_eq!(images.len(), 4);
    for dets in images {
        assert!(!dets.is_empty());
        for b in dets {
            assert!(
                b[0] >= 0.0
                    && b[1] >= 0.0
                    && b[0] + b[2] <= 128.0 + 1e-6
                    && b[1] + b[3] <= 96.0 + 1e-6
            );
        }
    }
}

/// `--tta`: flip and flip-scales are accepted and give boxes inside each photo; unknown
/// values, bad scales, scales without flip-scales and flip-scales with `--tile SIZE` are
/// refused naming the flag, writing nothing.
#[test]
fn test_time_augmentation_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, model, _) = demo_with_fresh_model(tmp.path());
    let out = tmp.path().join("tta.json");
    let run = |extra: &[&str]| predict_at_low_score(&data, &model, &out, extra);
    for (bad, flag) in [
        (&["--tta", "mirror"][..], "--tta"),
        (
            &["--tta", "flip-scales", "--tta-scales", "1,1.2"],
            "--tta-scales",
        ),
        (
            &["--tta", "flip-scales", "--tta-scales", "0.8,3"],
            "--tta-scales",
        ),
        (
            &["--tta", "flip-scales", "--tta-scales", "0.8"],
            "--tta-scales",
        ),
        (
            &["--tta", "flip", "--tta-scales", "0.8,1.2"],
            "--tta-scales",
        ),
        (&["--tta", "flip-scales", "--tile", "64"], "--tile"),
    ] {
        let o = run(bad);
        assert!(
            !o.status.success() && text(&o).contains(flag),
            "{bad:?}: {}",
            text(&o)
        );
        assert!(!out.exists());
    }
    for ok in [
        &["--tta", "flip"][..],
        &["--tta", "flip-scales", "--tta-scales", "0.75,1.3"],
    ] {
        let o = run(ok);
        assert!(o.status.success(), "{ok:?}: {}", text(&o));
        let images = boxes_per_image(&out);
        assert_eq!(images.len(), 4);
        for dets in images {
            assert!(!dets.is_empty(), "{ok:?}");
            for b in dets {
                assert!(
                    b[0] >= 0.0
                        && b[1] >= 0.0
                        && b[2] > 0.0
                        && b[3] > 0.0
                        && b[0] + b[2] <= 128.0 + 1e-6
                        && b[1] + b[3] <= 96.0 + 1e-6,
                    "{ok:?}: {b:?}"
                );
            }
        }
        std::fs::remove_file(&out).unwrap();
    }
}
