//! Outputs never destroy inputs: `detlab predict` (`--out`, `--voc-dir`, `--out-video`)
//! and `detlab import-weights` refuse an output that is the model, an input image, the
//! video or the checkpoint, and two outputs that are one file; every output location is
//! checked before any work, so that a run refused for one of them leaves an existing
//! `--out` as it was; two images reported under one name are refused; `--threads` is
//! bounded; and the video-only options are refused without `--video`. Every refusal here
//! comes before the model is loaded, so these runs take well under a second each.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{detlab, text};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The shipped model.
fn shipped_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/cola-sprite-lite0.safetensors")
}

/// A copy of the shipped model in `dir` (so that a failing test cannot harm the shipped one).
fn model_copy(dir: &Path) -> PathBuf {
    let m = dir.join("m.safetensors");
    std::fs::copy(shipped_model(), &m).unwrap();
    m
}

/// Two 160×120 demo images in `dir/data` (`shelf_0001.jpg`, `shelf_0002.jpg`).
fn demo(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let o = detlab(&[
        "demo",
        "--out",
        s(&data),
        "--images",
        "2",
        "--width",
        "160",
        "--height",
        "120",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    data
}

/// `detlab predict` with `args` on the CPU with one thread.
fn predict(args: &[&str]) -> Output {
    let mut all = vec!["predict", "--device", "cpu", "--threads", "1"];
    all.extend(args);
    Command::new(env!("CARGO_BIN_EXE_detlab-torch"))
        .args(&all)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .expect("run detlab")
}

/// Asserts that `o` failed with a message holding every one of `words`.
#[track_caller]
fn refused(o: &Output, words: &[&str]) {
    let t = text(o);
    assert!(!o.status.success(), "expected a refusal, got success:\n{t}");
    for w in words {
        assert!(t.contains(w), "the message lacks {w:?}:\n{t}");
    }
}

/// A two-frame clip of the demo images.
fn clip(data: &Path, out: &Path) {
    let input = data.join("shelf_%04d.jpg");
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(["-framerate", "5", "-i", s(&input)])
        .args(["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p", s(out)])
        .output()
        .unwrap();
    assert!(o.status.success(), "ffmpeg: {}", text(&o));
}

#[test]
fn predict_out_never_replaces_the_model_or_an_input() {
    let tmp = tempfile::tempdir().unwrap();
    let data = demo(tmp.path());
    let model = model_copy(tmp.path());
    let image = data.join("shelf_0001.jpg");
    let model_bytes = std::fs::read(&model).unwrap();
    let image_bytes = std::fs::read(&image).unwrap();

    let o = predict(&[
        "--model",
        s(&model),
        "--images",
        s(&image),
        "--out",
        s(&model),
    ]);
    refused(&o, &["--out", "the model file", "would replace it"]);
    // The same image through a folder and another spelling of its path.
    let other_spelling = data.join("..").join("data").join("shelf_0001.jpg");
    for images in [&data, &image] {
        let o = predict(&[
            "--model",
            s(&model),
            "--images",
            s(images),
            "--out",
            s(&other_spelling),
        ]);
        refused(&o, &["the input image", "shelf_0001.jpg"]);
    }
    // The ground truth is an input too (refused before it is even read).
    let gt = tmp.path().join("gt.json");
    std::fs::write(&gt, b"GT").unwrap();
    let o = predict(&[
        "--model",
        s(&model),
        "--images",
        s(&data),
        "--gt",
        s(&gt),
        "--out",
        s(&gt),
    ]);
    refused(&o, &["the ground truth"]);

    assert_eq!(std::fs::read(&model).unwrap(), model_bytes);
    assert_eq!(std::fs::read(&image).unwrap(), image_bytes);
    assert_eq!(std::fs::read(&gt).unwrap(), b"GT");
}

#[test]
fn import_weights_out_never_replaces_the_checkpoint() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // A few real D0 tensors, imported with --partial (as hostile_inputs.rs does).
    let script = r#"
import sys, torch
sd = {"backbone_net.model._conv_stem.conv.weight": torch.ones(32, 3, 3, 3)}
torch.save(sd, sys.argv[1])
"#;
    let pth = tmp.path().join("best.pth");
    let o = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&pth)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let before = std::fs::read(&pth).unwrap();
    let classes = tmp.path().join("classes.txt");
    std::fs::write(&classes, "Cola\nSprite\n").unwrap();
    let import = |out: &Path| {
        detlab(&[
            "import-weights",
            s(&pth),
            "--arch",
            "d0",
            "--num-classes",
            "2",
            "--classes",
            s(&classes),
            "--partial",
            "--out",
            s(out),
        ])
    };
    refused(&import(&pth), &["--out", "the checkpoint", "best.pth"]);
    refused(&import(&classes), &["the class list"]);
    assert_eq!(std::fs::read(&pth).unwrap(), before);
    assert_eq!(std::fs::read_to_string(&classes).unwrap(), "Cola\nSprite\n");
    // Elsewhere it imports.
    let out = tmp.path().join("m.safetensors");
    let o = import(&out);
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.is_file());
}

#[test]
fn predict_video_outputs_never_replace_the_video_or_each_other() {
    if !common::have_ffmpeg() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = demo(tmp.path());
    let model = model_copy(tmp.path());
    let video = tmp.path().join("raw.avi");
    clip(&data, &video);
    let video_bytes = std::fs::read(&video).unwrap();
    let json = tmp.path().join("p.json");
    let run = |out: &Path, out_video: &Path| {
        predict(&[
            "--model",
            s(&model),
            "--video",
            s(&video),
            "--out",
            s(out),
            "--out-video",
            s(out_video),
        ])
    };
    refused(
        &run(&json, &video),
        &["--out-video", "the input video", "raw.avi"],
    );
    refused(&run(&video, &json), &["--out ", "the input video"]);
    refused(&run(&json, &model), &["--out-video", "the model file"]);
    let same = tmp.path().join("same.mp4");
    refused(
        &run(&same, &same),
        &["--out and --out-video are the same file"],
    );
    assert!(!same.exists() && !json.exists());
    assert_eq!(std::fs::read(&video).unwrap(), video_bytes);
}

#[test]
fn a_refused_output_location_leaves_the_previous_json() {
    let tmp = tempfile::tempdir().unwrap();
    let data = demo(tmp.path());
    let model = model_copy(tmp.path());
    let json = tmp.path().join("prev.json");
    std::fs::write(&json, b"PREVIOUS").unwrap();

    // --voc-dir on a regular file, or below one.
    let file = tmp.path().join("vocfile");
    std::fs::write(&file, b"x").unwrap();
    let voc = |dir: &Path| {
        predict(&[
            "--model",
            s(&model),
            "--images",
            s(&data),
            "--out",
            s(&json),
            "--voc-dir",
            s(dir),
        ])
    };
    refused(&voc(&file), &["--voc-dir", "is a file, not a folder"]);
    refused(
        &voc(&file.join("sub")),
        &["vocfile is a file, not a folder"],
    );
    // --out where the VOC folder goes.
    let o = predict(&[
        "--model",
        s(&model),
        "--images",
        s(&data),
        "--out",
        s(&tmp.path().join("v")),
        "--voc-dir",
        s(&tmp.path().join("v/voc")),
    ]);
    refused(&o, &["collide"]);
    // --out in a missing folder, or on a folder.
    let o = predict(&[
        "--model",
        s(&model),
        "--images",
        s(&data),
        "--out",
        s(&tmp.path().join("missing/p.json")),
    ]);
    refused(&o, &["does not exist"]);
    let o = predict(&[
        "--model",
        s(&model),
        "--images",
        s(&data),
        "--out",
        s(&data),
    ]);
    refused(&o, &["is a folder"]);

    if common::have_ffmpeg() {
        let video = tmp.path().join("v.avi");
        clip(&data, &video);
        let video_run = |out_video: &Path| {
            predict(&[
                "--model",
                s(&model),
                "--video",
                s(&video),
                "--out",
                s(&json),
                "--out-video",
                s(out_video),
            ])
        };
        let missing = tmp.path().join("missing-dir/x.mp4");
        refused(&video_run(&missing), &["--out-video", "does not exist"]);
        refused(&video_run(&data), &["--out-video", "is a folder"]);
    }
    assert_eq!(std::fs::read(&json).unwrap(), b"PREVIOUS");
    assert!(!tmp.path().join("missing").exists());

    // A VOC folder that does not exist yet (nor its parent) is made.
    let voc_dir = tmp.path().join("new/voc");
    let o = voc(&voc_dir);
    assert!(o.status.success(), "{}", text(&o));
    assert!(voc_dir.join("shelf_0001.xml").is_file());
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(doc["images"].as_array().unwrap().len(), 2);
}

#[test]
fn two_images_with_one_output_name_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = demo(tmp.path());
    let model = model_copy(tmp.path());
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for (dir, from) in [(&a, "shelf_0001.jpg"), (&b, "shelf_0002.jpg")] {
        std::fs::create_dir(dir).unwrap();
        std::fs::copy(data.join(from), dir.join("x.jpg")).unwrap();
    }
    let json = tmp.path().join("p.json");
    let voc = tmp.path().join("voc");
    let o = predict(&[
        "--model",
        s(&model),
        "--images",
        s(&a),
        s(&b),
        "--out",
        s(&json),
        "--voc-dir",
        s(&voc),
    ]);
    refused(&o, &["a/x.jpg", "b/x.jpg", "\"x.jpg\""]);
    let twice = a.join("x.jpg");
    let o = predict(&[
        "--model",
        s(&model),
        "--images",
        s(&a),
        s(&twice),
        "--out",
        s(&json),
    ]);
    refused(&o, &["given twice"]);

    // x.jpg and x.png have two JSON names but one VOC file.
    image::open(b.join("x.jpg"))
        .unwrap()
        .save(a.join("x.png"))
        .unwrap();
    let o = predict(&[
        "--model",
        s(&model),
        "--images",
        s(&a),
        "--out",
        s(&json),
        "--voc-dir",
        s(&voc),
    ]);
    refused(&o, &["x.jpg", "x.png", "x.xml"]);
    assert!(!json.exists() && !voc.exists());
}

/// Runs `detlab-torch` with `args`, killing it after `limit` (a panic then).
fn run_within(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_detlab-torch"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("detlab {args:?} still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn threads_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let data = demo(tmp.path());
    let model = model_copy(tmp.path());
    let out = tmp.path().join("p.json");
    let limit = Duration::from_secs(20);
    for n in ["100000", "0"] {
        let o = run_within(
            &[
                "predict",
                "--model",
                s(&model),
                "--images",
                s(&data),
                "--out",
                s(&out),
                "--device",
                "cpu",
                "--threads",
                n,
            ],
            limit,
        );
        refused(&o, &["--threads", "from 1 to"]);
        let o = run_within(
            &[
                "eval",
                "--model",
                s(&model),
                "--data",
                s(&data),
                "--device",
                "cpu",
                "--threads",
                n,
            ],
            limit,
        );
        refused(&o, &["--threads", "from 1 to"]);
        let o = run_within(
            &[
                "train",
                "--data",
                s(&data),
                "--out",
                s(&tmp.path().join("run")),
                "--device",
                "cpu",
                "--threads",
                n,
            ],
            limit,
        );
        refused(&o, &["--threads", "from 1 to"]);
        let o = run_within(
            &["bench", "detector", "--threads", &format!("1,{n}")],
            limit,
        );
        refused(&o, &["--threads", "from 1 to"]);
    }
    assert!(!out.exists() && !tmp.path().join("run").exists());
}

#[test]
fn video_options_without_video_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = demo(tmp.path());
    let model = model_copy(tmp.path());
    let out = tmp.path().join("p.json");
    let base = ["--model", s(&model), "--images", s(&data), "--out", s(&out)];
    let clip_out = tmp.path().join("x.mp4");
    for extra in [
        &["--out-video", s(&clip_out)][..],
        &["--every", "5"],
        &["--max-frames", "3"],
    ] {
        let o = predict(&[&base[..], extra].concat());
        refused(&o, &[extra[0], "--video"]);
    }
    assert!(!out.exists() && !clip_out.exists());
}
