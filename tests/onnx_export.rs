//! ONNX export (`detlab export-model`, `detector::onnx`), proven in ONNX Runtime.
//!
//! * The shipped Lite0 model and an imported reference D0, exported and run in ONNX
//!   Runtime through the README's own Python snippet, give `detlab predict`'s detections
//!   (demo images; for Lite0 also `cola-sprite/val`): ≥ 99 % matched at IoU ≥ 0.99, scores
//!   within 1e-3, nothing extra. The D0's raw export also reproduces the reference
//!   PyTorch port's scores and decoded boxes (its float64 pass) on the fixture's input.
//! * Every architecture (D0–D8, Lite0) exports, loads in ONNX Runtime and gives outputs of
//!   the declared shapes (at a small input size, with randomly initialised weights).
//! * A corrupt model file is an error naming it; an unwritable output leaves nothing.
//!
//! Needs the project venv with `onnxruntime` (`scripts/setup.sh`); the parity cases also
//! need `../shared`. Without them the tests print `SKIP:` (under CI they fail).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};

use common::{detlab, shared_dir, text, venv_python};
use detlab::dataset::image_info::decode_upright_rgb;
use detlab::detector::checkpoint::{ModelArch, ModelMeta};
use detlab::detector::inference::{Detector, DetectorOptions, DeviceChoice};
use detlab::detector::onnx::{onnx_bytes, ExportOptions, InputDtype, Layout, Variant};

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// The venv's Python, if it can import onnxruntime (else reported as missing).
fn ort_python() -> Option<PathBuf> {
    let py = venv_python()?;
    let ok = Command::new(&py)
        .args(["-c", "import onnxruntime, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(py)
    } else {
        common::missing(format!(
            "{} cannot import onnxruntime (run scripts/setup.sh)",
            py.display()
        ));
        None
    }
}

/// The README's Python snippet (between the `onnx-python` markers), with its session
/// opened on `onnx`.
fn readme_snippet(onnx: &Path) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find("<!-- onnx-python:start -->")
        .expect("README has the onnx-python:start marker");
    let end = readme
        .find("<!-- onnx-python:end -->")
        .expect("README has the onnx-python:end marker");
    let block = &readme[start..end];
    let code = block
        .split("```python")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a python block between the markers");
    assert!(code.contains("\"d0.onnx\""), "the snippet opens d0.onnx");
    code.replace("\"d0.onnx\"", &serde_json::to_string(s(onnx)).unwrap())
}

/// Runs a Python script; returns its stdout, panicking with both streams on failure.
fn run_python(py: &Path, script: &str, dir: &Path) -> String {
    let file = dir.join(format!("script-{}.py", script.len()));
    std::fs::write(&file, script).unwrap();
    let o = Command::new(py)
        .arg(&file)
        .env("OMP_NUM_THREADS", "2")
        .output()
        .expect("run python");
    assert!(
        o.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// One detection, in image pixels.
#[derive(Clone, Debug)]
struct Det {
    xywh: [f64; 4],
    score: f64,
    class_id: usize,
}

fn dets(list: &Value, class_key: &str, offset: i64) -> Vec<Det> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let b = d["bbox"].as_array().unwrap();
            Det {
                xywh: [0, 1, 2, 3].map(|i| b[i].as_f64().unwrap()),
                score: d["score"].as_f64().unwrap(),
                class_id: (d[class_key].as_i64().unwrap() - offset) as usize,
            }
        })
        .collect()
}

fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let w = ((a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0])).max(0.0);
    let h = ((a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = a[2] * a[3] + b[2] * b[3] - inter;
    if union <= 0.0 {
        return if a == b { 1.0 } else { 0.0 };
    }
    inter / union
}

/// How ONNX Runtime's detections compare with detlab's.
#[derive(Debug, Default)]
struct Parity {
    images: usize,
    reference: usize,
    matched: usize,
    /// ONNX detections matching none of detlab's, beyond what a score at the threshold or
    /// at the detection cap explains.
    extra: Vec<String>,
    max_score_diff: f64,
    min_iou: f64,
}

impl Parity {
    fn new() -> Self {
        Self {
            min_iou: 1.0,
            ..Default::default()
        }
    }

    /// Matches one image's detections greedily (same class, IoU ≥ 0.99, score within 1e-3).
    fn add(&mut self, name: &str, ours: &[Det], onnx: &[Det], threshold: f64, cap: usize) {
        self.images += 1;
        self.reference += ours.len();
        let mut used = vec![false; onnx.len()];
        for d in ours {
            let best = onnx
                .iter()
                .enumerate()
                .filter(|(i, o)| {
                    !used[*i] && o.class_id == d.class_id && (o.score - d.score).abs() <= 1e-3
                })
                .map(|(i, o)| (i, iou(&d.xywh, &o.xywh)))
                .filter(|(_, v)| *v >= 0.99)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((i, v)) = best {
                used[i] = true;
                self.matched += 1;
                self.min_iou = self.min_iou.min(v);
                self.max_score_diff = self.max_score_diff.max((onnx[i].score - d.score).abs());
            }
        }
        let lowest = ours.iter().map(|d| d.score).fold(f64::INFINITY, f64::min);
        for (o, _) in onnx.iter().zip(&used).filter(|(_, u)| !**u) {
            let at_threshold = (o.score - threshold).abs() <= 1e-3;
            let at_cap = ours.len() == cap && (o.score - lowest).abs() <= 1e-3;
            if !(at_threshold || at_cap) {
                self.extra.push(format!("{name}: {o:?}"));
            }
        }
    }

    fn fraction(&self) -> f64 {
        if self.reference == 0 {
            1.0
        } else {
            self.matched as f64 / self.reference as f64
        }
    }

    fn check(&self, what: &str) {
        eprintln!(
            "{what}: {} images, {}/{} detections matched ({:.2} %), max |Δscore| {:.2e}, min IoU {:.5}, {} extra",
            self.images,
            self.matched,
            self.reference,
            100.0 * self.fraction(),
            self.max_score_diff,
            self.min_iou,
            self.extra.len()
        );
        assert!(
            self.reference > 0,
            "{what}: detlab found nothing to compare"
        );
        assert!(self.fraction() >= 0.99, "{what}: {self:?}");
        assert!(
            self.extra.is_empty(),
            "{what}: extra detections {:?}",
            self.extra
        );
    }
}

/// Decodes `images` as detlab does (EXIF-upright RGB) into raw `.rgb` files in `dir` for
/// the Python side; returns the manifest entries `{name, path, width, height}`.
fn dump_images(images: &[(String, PathBuf)], dir: &Path) -> Vec<Value> {
    std::fs::create_dir_all(dir).unwrap();
    images
        .iter()
        .enumerate()
        .map(|(i, (name, path))| {
            let img =
                decode_upright_rgb(path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
            let raw = dir.join(format!("{i}.rgb"));
            std::fs::write(&raw, img.as_raw()).unwrap();
            json!({"name": name, "path": s(&raw), "width": img.width(), "height": img.height()})
        })
        .collect()
}

/// Runs the README snippet's `detect` on every manifest image; `{name: detections}`.
fn onnx_detections(
    py: &Path,
    onnx: &Path,
    manifest: &[Value],
    dir: &Path,
) -> BTreeMap<String, Value> {
    let list = dir.join("manifest.json");
    std::fs::write(&list, serde_json::to_vec(manifest).unwrap()).unwrap();
    let script = format!(
        "{}\n\
         import sys\n\
         out = {{}}\n\
         for e in json.load(open({list:?})):\n\
         \x20   rgb = np.fromfile(e['path'], np.uint8).reshape(e['height'], e['width'], 3)\n\
         \x20   out[e['name']] = detect(session, rgb)\n\
         json.dump(out, sys.stdout)\n",
        readme_snippet(onnx),
        list = s(&list),
    );
    serde_json::from_str(&run_python(py, &script, dir)).expect("python printed JSON")
}

/// `detlab predict` on `images` (a folder or files): `{file_name: detections}`.
fn predict(model: &Path, images: &Path, out: &Path) -> BTreeMap<String, Value> {
    let o = detlab(&[
        "predict",
        "--model",
        s(model),
        "--images",
        s(images),
        "--out",
        s(out),
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let doc: Value = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
    doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["file_name"].as_str().unwrap().to_string(),
                i["detections"].clone(),
            )
        })
        .collect()
}

/// Exports with the CLI and returns the file.
fn export_cli(model: &Path, out: &Path, extra: &[&str]) -> PathBuf {
    let start = Instant::now();
    let mut args = vec![
        "export-model",
        "--model",
        s(model),
        "--format",
        "onnx",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    let o = detlab(&args);
    assert!(o.status.success(), "{}", text(&o));
    eprintln!(
        "exported {} in {:.2} s: {:.1} MB",
        model.display(),
        start.elapsed().as_secs_f64(),
        std::fs::metadata(out).unwrap().len() as f64 / 1e6
    );
    out.to_path_buf()
}

/// Images of a folder (natural order) with the names `predict` reports them under.
fn folder_images(dir: &Path) -> Vec<(String, PathBuf)> {
    detlab::dataset::scan_images(dir)
        .unwrap()
        .into_iter()
        .map(|p| {
            let name = p
                .strip_prefix(dir)
                .unwrap()
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            (name, p)
        })
        .collect()
}

/// Compares `predict` with the README snippet on ONNX Runtime over `folder`.
fn compare_folder(
    py: &Path,
    model: &Path,
    onnx: &Path,
    folder: &Path,
    work: &Path,
    parity: &mut Parity,
) {
    let ours = predict(model, folder, &work.join("pred.json"));
    let images = folder_images(folder);
    let manifest = dump_images(&images, &work.join("rgb"));
    let theirs = onnx_detections(py, onnx, &manifest, work);
    assert_eq!(ours.len(), theirs.len(), "images predicted");
    for (name, list) in &ours {
        let mine = dets(list, "category_id", 1);
        let other = dets(&theirs[name], "class_id", 0);
        parity.add(name, &mine, &other, 0.05, 100);
    }
}

fn demo_images(dir: &Path, n: usize) -> PathBuf {
    let o = detlab(&[
        "demo",
        "--out",
        s(dir),
        "--images",
        &n.to_string(),
        "--seed",
        "3",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    dir.to_path_buf()
}

#[test]
fn shipped_lite0_in_onnx_runtime_matches_predict() {
    let Some(py) = ort_python() else { return };
    let model = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/cola-sprite-lite0.safetensors"
    ));
    if !model.exists() {
        common::missing(format!("{} is absent", model.display()));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let onnx = export_cli(&model, &tmp.path().join("lite0.onnx"), &[]);
    let mut parity = Parity::new();
    let demo = demo_images(&tmp.path().join("demo"), 12);
    let work = tmp.path().join("work-demo");
    std::fs::create_dir_all(&work).unwrap();
    compare_folder(&py, &model, &onnx, &demo, &work, &mut parity);
    if let Some(shared) = shared_dir() {
        let val = shared.join("datasets/cola-sprite/val");
        let work = tmp.path().join("work-val");
        std::fs::create_dir_all(&work).unwrap();
        compare_folder(&py, &model, &onnx, &val, &work, &mut parity);
    }
    parity.check("Lite0 (demo + cola-sprite/val)");
}

#[test]
fn imported_d0_in_onnx_runtime_matches_predict_and_the_reference() {
    let Some(py) = ort_python() else { return };
    let Some(shared) = shared_dir() else { return };
    let fixtures = shared.join("fixtures/zylo117-d0");
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("d0.safetensors");
    common::import_reference_d0(&fixtures, &model);

    // Detections: ONNX Runtime vs `detlab predict` on demo images.
    let onnx = export_cli(&model, &tmp.path().join("d0.onnx"), &[]);
    let demo = demo_images(&tmp.path().join("demo"), 3);
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mut parity = Parity::new();
    compare_folder(&py, &model, &onnx, &demo, &work, &mut parity);
    parity.check("imported D0 (demo)");

    // Raw outputs: ONNX Runtime vs the reference port run in float64 (`io_f64.pt`) on the
    // fixture's input (un-normalised back to pixel values, NCHW float32).
    let raw = export_cli(
        &model,
        &tmp.path().join("d0-raw.onnx"),
        &["--raw", "--layout", "nchw"],
    );
    let script = format!(
        r#"
import json, numpy as np, onnxruntime as ort, torch
io = torch.load({io:?})
exact = torch.load({exact:?})
x = io["input"].double().numpy()
mean = np.array([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
std = np.array([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
pixels = ((x * std + mean) * 255.0).astype(np.float32)
sess = ort.InferenceSession({raw:?}, providers=["CPUExecutionProvider"])
boxes, scores = sess.run(None, {{"images": pixels}})
ref_scores = exact["classification"].numpy()
reg = exact["regression"].numpy()
a = io["anchors"].double().numpy()[0]
cy, cx, ha, wa = (a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2, a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
w, h = np.exp(reg[..., 3]) * wa, np.exp(reg[..., 2]) * ha
y, xc = reg[..., 0] * ha + cy, reg[..., 1] * wa + cx
ref_boxes = np.stack([np.maximum(xc - w / 2, 0), np.maximum(y - h / 2, 0),
                      np.minimum(xc + w / 2, 511), np.minimum(y + h / 2, 511)], -1)
ds, db = np.abs(scores - ref_scores), np.abs(boxes - ref_boxes)
fixture = np.abs(io["classification"].double().numpy() - ref_scores)
print(json.dumps({{"shape": list(scores.shape), "score": float(ds.max()), "score_mean": float(ds.mean()),
                  "fixture_f32_score": float(fixture.max()),
                  "box": float(db.max()), "box_mean": float(db.mean())}}))
"#,
        io = s(&fixtures.join("io.pt")),
        exact = s(&fixtures.join("io_f64.pt")),
        raw = s(&raw),
    );
    let r: Value = serde_json::from_str(run_python(&py, &script, tmp.path()).trim()).unwrap();
    eprintln!("D0 raw export vs the reference port: {r}");
    assert_eq!(r["shape"], json!([2, 49104, 2]));
    // Against the float64 pass of the same weights: this network amplifies float32
    // rounding (a 1e-3 change of one pixel value moves a score by 3e-4), so the bound is
    // on the worst anchor and, tighter, on the mean.
    let num = |k: &str| r[k].as_f64().unwrap();
    assert!(num("score") < 1e-3 && num("score_mean") < 1e-5, "{r}");
    assert!(num("box") < 0.25 && num("box_mean") < 5e-3, "{r}");
}

#[test]
fn every_architecture_exports_and_runs_in_onnx_runtime() {
    let Some(py) = ort_python() else { return };
    tch::set_num_threads(1);
    tch::manual_seed(1);
    let tmp = tempfile::tempdir().unwrap();
    let options = DetectorOptions {
        device: DeviceChoice::Cpu,
        threads: Some(1),
        fold_batchnorm: false,
        nhwc_engine: false,
        precision: Default::default(),
    };
    let mut cases = Vec::new();
    for (i, arch) in ModelArch::ALL.into_iter().enumerate() {
        let mut meta = ModelMeta::for_arch(arch, vec!["a".into(), "b".into(), "c".into()]);
        // Small inputs keep D7/D8 quick; 136 is not a multiple of 128, as Lite0's 320 is not.
        meta.input_size = if i % 2 == 0 { 128 } else { 136 };
        let file = Detector::fresh_with_meta(meta, &options)
            .unwrap()
            .to_model_file()
            .unwrap();
        // Alternate the options so every one of them runs somewhere.
        let opts = ExportOptions {
            variant: if i % 2 == 0 {
                Variant::Nms
            } else {
                Variant::Raw
            },
            layout: if i % 3 == 0 {
                Layout::Nchw
            } else {
                Layout::Nhwc
            },
            input_dtype: if i % 4 == 1 {
                InputDtype::Uint8
            } else {
                InputDtype::Float32
            },
            batch: (i == 4).then_some(2),
            class_agnostic: i == 2,
            ..ExportOptions::default()
        };
        let start = Instant::now();
        let (bytes, summary) = onnx_bytes(&file, &opts).unwrap();
        let path = tmp.path().join(format!("{arch}.onnx"));
        std::fs::write(&path, &bytes).unwrap();
        eprintln!(
            "{arch}: {:.1} MB, {} nodes, {} anchors, built in {:.2} s",
            bytes.len() as f64 / 1e6,
            summary.nodes,
            summary.anchors,
            start.elapsed().as_secs_f64()
        );
        cases.push(json!({
            "arch": arch.name(), "path": s(&path), "size": file.meta.input_size,
            "nchw": opts.layout == Layout::Nchw, "uint8": opts.input_dtype == InputDtype::Uint8,
            "batch": opts.batch.unwrap_or(1), "anchors": summary.anchors,
            "raw": opts.variant == Variant::Raw,
        }));
    }
    let list = tmp.path().join("cases.json");
    std::fs::write(&list, serde_json::to_vec(&cases).unwrap()).unwrap();
    let script = format!(
        r#"
import json, numpy as np, onnxruntime as ort
so = ort.SessionOptions()
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
out = {{}}
for c in json.load(open({list:?})):
    sess = ort.InferenceSession(c["path"], so, providers=["CPUExecutionProvider"])
    s, b = c["size"], c["batch"]
    shape = (b, 3, s, s) if c["nchw"] else (b, s, s, 3)
    x = np.random.default_rng(0).uniform(0, 255, shape)
    x = x.astype(np.uint8) if c["uint8"] else x.astype(np.float32)
    res = sess.run(None, {{"images": x}})
    meta = sess.get_modelmeta().custom_metadata_map
    out[c["arch"]] = {{"outputs": [o.name for o in sess.get_outputs()],
                      "shapes": [list(r.shape) for r in res],
                      "declared": [o.shape for o in sess.get_outputs()],
                      "finite": all(bool(np.isfinite(r).all()) for r in res),
                      "classes": json.loads(meta["classes"]), "layout": json.loads(meta["layout"])}}
    del sess
print(json.dumps(out))
"#,
        list = s(&list),
    );
    let start = Instant::now();
    let got: Value = serde_json::from_str(run_python(&py, &script, tmp.path()).trim()).unwrap();
    eprintln!(
        "ONNX Runtime loaded and ran all 10 in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    for c in &cases {
        let arch = c["arch"].as_str().unwrap();
        let r = &got[arch];
        let (b, n) = (c["batch"].as_i64().unwrap(), c["anchors"].as_i64().unwrap());
        let want = if c["raw"].as_bool().unwrap() {
            json!({"outputs": ["boxes", "scores"], "shapes": [[b, n, 4], [b, n, 3]]})
        } else {
            json!({"outputs": ["boxes", "scores", "class_ids", "num_detections"],
                   "shapes": [[b, 100, 4], [b, 100], [b, 100], [b]]})
        };
        assert_eq!(r["outputs"], want["outputs"], "{arch}: {r}");
        assert_eq!(r["shapes"], want["shapes"], "{arch}: {r}");
        assert_eq!(r["finite"], json!(true), "{arch}: {r}");
        assert_eq!(r["classes"], json!(["a", "b", "c"]), "{arch}");
        let layout = if c["nchw"].as_bool().unwrap() {
            "NCHW"
        } else {
            "NHWC"
        };
        assert_eq!(r["layout"], json!(layout), "{arch}");
    }
}

#[test]
fn corrupt_models_and_unwritable_outputs_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let corrupt = dir.join("broken.safetensors");
    std::fs::write(&corrupt, b"this is not a model").unwrap();
    let out = dir.join("out.onnx");
    let o = detlab(&["export-model", "--model", s(&corrupt), "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("broken.safetensors"), "{}", text(&o));
    assert!(!out.exists());

    // A valid model (the smallest: Lite0 at 64 px) for the output cases.
    let options = DetectorOptions {
        device: DeviceChoice::Cpu,
        threads: Some(1),
        fold_batchnorm: false,
        nhwc_engine: false,
        precision: Default::default(),
    };
    let mut meta = ModelMeta::for_arch(ModelArch::Lite0, vec!["x".into()]);
    meta.input_size = 64;
    let model = dir.join("m.safetensors");
    Detector::fresh_with_meta(meta, &options)
        .unwrap()
        .to_model_file()
        .unwrap()
        .write(&model)
        .unwrap();
    let listing = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    // The output's folder does not exist.
    let missing = dir.join("no/such/folder/m.onnx");
    let o = detlab(&["export-model", "--model", s(&model), "--out", s(&missing)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("m.onnx"), "{}", text(&o));
    assert!(!dir.join("no").exists());
    // The output is a folder.
    let folder = dir.join("a-folder.onnx");
    std::fs::create_dir(&folder).unwrap();
    let before = listing(dir);
    let o = detlab(&["export-model", "--model", s(&model), "--out", s(&folder)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(listing(dir), before, "nothing left behind");
    assert!(listing(&folder).is_empty());
    // A read-only file is not replaced (detlab respects the missing write bit even as root).
    let locked = dir.join("locked.onnx");
    std::fs::write(&locked, b"old").unwrap();
    let mut perm = std::fs::metadata(&locked).unwrap().permissions();
    perm.set_readonly(true);
    std::fs::set_permissions(&locked, perm).unwrap();
    let before = listing(dir);
    let o = detlab(&["export-model", "--model", s(&model), "--out", s(&locked)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(std::fs::read(&locked).unwrap(), b"old");
    assert_eq!(listing(dir), before, "nothing left behind");
    // The output may not be the model file itself.
    let o = detlab(&["export-model", "--model", s(&model), "--out", s(&model)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("replace the model file"), "{}", text(&o));
    // A tensor the architecture has no place for (another network's weights under this
    // one's name) is refused, as `predict` refuses it.
    let mut file = detlab::detector::checkpoint::ModelFile::read(&model).unwrap();
    file.tensors
        .push(detlab::detector::checkpoint::CheckpointTensor {
            name: "bifpn.9.extra.weight".into(),
            dtype: file.tensors[0].dtype,
            shape: vec![1],
            data: vec![0; file.tensors[0].dtype.size()],
        });
    let stray = dir.join("stray.safetensors");
    file.write(&stray).unwrap();
    let o = detlab(&["export-model", "--model", s(&stray), "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("`bifpn.9.extra.weight`"), "{}", text(&o));
    assert!(!out.exists());
    // And a good export works, naming what it wrote.
    let good = dir.join("good.onnx");
    let o = detlab(&[
        "export-model",
        "--model",
        s(&model),
        "--out",
        s(&good),
        "--raw",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(good.exists());
}
