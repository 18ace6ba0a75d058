//! Crash safety: child processes are SIGKILLed at random points (deterministic seeds)
//! while they save labels (VOC, YOLO + classes.txt, CreateML) and while `detlab export
//! coco` writes its output. Afterwards every file is absent, the old complete version or
//! a new complete version — never truncated — and the leftover temp files of a killed
//! write (`.name.<pid>.<n>.tmp`) are never taken for labels or images.
//!
//! The label-saving child is this test binary itself, re-run with `DETLAB_CRASH_CHILD` set
//! (see [`child_process_entry`]). Sleeps only choose kill points; nothing is timed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use detlab::dataset::{load_labels, scan_images, ClassList, ImageAnnotation, LabelBox};
use detlab::formats::{createml, voc, yolo};
use detlab::geometry::BoxXyxy;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const IMAGES: usize = 8;
const CLASSES: [&str; 3] = ["cola", "sprite", "fanta"];

/// Version `v` of image `k`'s labels: the width carries `v`, the box count follows it.
fn labels(k: usize, v: u32) -> ImageAnnotation {
    let mut ann = ImageAnnotation::new(format!("img{k}.jpg"), 1000 + v, 100);
    for j in 0..(v % 5 + 1) as usize {
        let x = 10.0 + j as f64;
        ann.boxes.push(LabelBox::new(
            CLASSES[j % 3],
            BoxXyxy::new(x, 10.0, x + 40.0, 60.0),
        ));
    }
    ann
}

fn image(dir: &Path, k: usize) -> PathBuf {
    dir.join(format!("img{k}.jpg"))
}

/// Saves every image's labels in all three formats, version after version, until killed.
fn save_forever(dir: &Path, mut v: u32) -> ! {
    let mut classes = ClassList::from_names(CLASSES);
    loop {
        for k in 0..IMAGES {
            let ann = labels(k, v);
            voc::write(&image(dir, k).with_extension("xml"), &ann, &image(dir, k)).unwrap();
            yolo::write(
                &dir.join("yolo").join(format!("img{k}.txt")),
                &ann,
                &mut classes,
            )
            .unwrap();
            createml::write(&dir.join("createml").join("labels.json"), &ann).unwrap();
        }
        v += 1;
    }
}

/// The child side: does nothing in a normal test run.
#[test]
fn child_process_entry() {
    if let Ok(spec) = std::env::var("DETLAB_CRASH_CHILD") {
        let (start, dir) = spec.split_once(':').unwrap();
        save_forever(Path::new(dir), start.parse().unwrap());
    }
}

/// Names a killed atomic write may leave behind: `.<name>.<pid>.<n>.tmp`.
fn is_temp_file(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// Every file in `dir` (not recursing) is one of `expected` or a leftover temp file.
fn assert_only(dir: &Path, expected: &[&str]) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            expected.contains(&name.as_str()) || is_temp_file(&name) || entry.path().is_dir(),
            "unexpected file {name} in {}",
            dir.display()
        );
    }
}

fn check_labels(dir: &Path) {
    // Temp files are neither images nor labels.
    let images: Vec<PathBuf> = (0..IMAGES).map(|k| image(dir, k)).collect();
    assert_eq!(scan_images(dir).unwrap(), images);
    let mut expected: Vec<String> = (0..IMAGES).map(|k| format!("img{k}.jpg")).collect();
    expected.extend((0..IMAGES).map(|k| format!("img{k}.xml")));
    assert_only(
        dir,
        &expected.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    for (k, img) in images.iter().enumerate() {
        // VOC: the version written whole (width says which, the box count agrees).
        let loaded = load_labels(img, None).unwrap().unwrap();
        let ann = loaded.annotation;
        let v = ann.width - 1000;
        let boxes = |a: &ImageAnnotation| -> Vec<(String, BoxXyxy)> {
            a.boxes
                .iter()
                .map(|b| (b.class_name.clone(), b.bbox))
                .collect()
        };
        assert_eq!(
            boxes(&ann),
            boxes(&labels(k, v)),
            "img{k}.xml is not a complete version"
        );
    }

    // YOLO: classes.txt never loses a class; each file is whole lines of 5 fields.
    let ydir = dir.join("yolo");
    let classes = ClassList::read(&ydir.join("classes.txt")).unwrap();
    assert_eq!(classes.names(), CLASSES);
    for k in 0..IMAGES {
        let path = ydir.join(format!("img{k}.txt"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.ends_with('\n'),
            "{} is truncated: {text:?}",
            path.display()
        );
        let boxes = yolo::parse(&text, &classes, 1000, 100).unwrap();
        assert!((1..=5).contains(&boxes.len()));
    }

    // CreateML: one file rewritten for every save; always a complete JSON array.
    let path = dir.join("createml").join("labels.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let entries: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), IMAGES);
    for k in 0..IMAGES {
        let ann = createml::parse(&text, &format!("img{k}.jpg")).unwrap();
        assert!((1..=5).contains(&ann.boxes.len()));
    }
}

#[test]
fn killed_while_saving_labels() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("yolo")).unwrap();
    std::fs::create_dir_all(d.join("createml")).unwrap();
    let mut classes = ClassList::from_names(CLASSES);
    for k in 0..IMAGES {
        std::fs::write(image(d, k), b"").unwrap();
        let ann = labels(k, 0);
        voc::write(&image(d, k).with_extension("xml"), &ann, &image(d, k)).unwrap();
        yolo::write(
            &d.join("yolo").join(format!("img{k}.txt")),
            &ann,
            &mut classes,
        )
        .unwrap();
        createml::write(&d.join("createml").join("labels.json"), &ann).unwrap();
    }
    check_labels(d);

    let exe = std::env::current_exe().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for i in 0..40u32 {
        let mut child = Command::new(&exe)
            .args(["--exact", "child_process_entry", "--test-threads=1"])
            .env(
                "DETLAB_CRASH_CHILD",
                format!("{}:{}", i * 1000, d.display()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(5..250)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        check_labels(d);
    }
}

/// `n` tiny VOC files with empty placeholder images (the export reads sizes from the XML);
/// `extra` adds a box to every tenth file (the "new" dataset).
fn write_dataset(dir: &Path, n: usize, extra: bool) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let img = dir.join(format!("p{i:05}.jpg"));
        if !extra {
            std::fs::write(&img, b"").unwrap();
        }
        let mut ann = labels(i, i as u32 % 7);
        if extra && i % 10 == 0 {
            ann.boxes
                .push(LabelBox::new("pepsi", BoxXyxy::new(1.0, 1.0, 9.0, 9.0)));
        }
        std::fs::write(
            img.with_extension("xml"),
            voc::to_string(&ann, &img).as_bytes(),
        )
        .unwrap();
    }
}

const EXPORT_FILES: [&str; 3] = ["instances_train.json", "instances_val.json", "labels.txt"];

fn export(images: &Path, out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_detlab"));
    c.args(["export", "coco", "--val-fraction", "0.2", "--images"])
        .arg(images)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn read_outputs(out: &Path) -> Vec<Option<Vec<u8>>> {
    EXPORT_FILES
        .iter()
        .map(|f| std::fs::read(out.join(f)).ok())
        .collect()
}

#[test]
fn killed_while_exporting_coco() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    let out = dir.path().join("out");
    let n = 1000;
    write_dataset(&images, n, false);
    assert!(export(&images, &out).status().unwrap().success());
    let old = read_outputs(&out);

    write_dataset(&images, n, true);
    let reference = dir.path().join("reference");
    let started = std::time::Instant::now();
    assert!(export(&images, &reference).status().unwrap().success());
    // Only scales the kill points to this machine's speed; nothing is asserted on it.
    let full_ms = started.elapsed().as_millis().max(20) as u64;
    let new = read_outputs(&reference);
    assert!(old.iter().chain(&new).all(Option::is_some));
    assert_ne!(old, new);

    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (mut saw_old, mut saw_new) = (false, false);
    for _ in 0..16 {
        // Each round starts from the old export.
        for (f, bytes) in EXPORT_FILES.iter().zip(&old) {
            std::fs::write(out.join(f), bytes.as_ref().unwrap()).unwrap();
        }
        let mut child = export(&images, &out).spawn().unwrap();
        // Half the kills land near the end, where the files are written.
        let ms = if rng.random_bool(0.5) {
            rng.random_range(0..full_ms)
        } else {
            rng.random_range(full_ms * 7 / 10..full_ms * 11 / 10)
        };
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill(); // SIGKILL (it may have finished already)
        child.wait().unwrap();

        let now = read_outputs(&out);
        for (k, f) in EXPORT_FILES.iter().enumerate() {
            let got = now[k].as_ref().unwrap();
            assert!(
                got == old[k].as_ref().unwrap() || got == new[k].as_ref().unwrap(),
                "{f} is neither the old nor the new complete file ({} bytes)",
                got.len()
            );
            saw_old |= got == old[k].as_ref().unwrap();
            saw_new |= got == new[k].as_ref().unwrap();
        }
        assert_only(&out, &EXPORT_FILES);
        detlab::formats::coco::CocoDataset::read(&out.join("instances_train.json")).unwrap();
    }
    eprintln!("kills left old files: {saw_old}, new files: {saw_new} (full export {full_ms} ms)");
}

fn train(data: &Path, out: &Path, epochs: usize, resume: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_detlab"));
    c.args([
        "train",
        "--model",
        "d0",
        "--from-scratch",
        "--input-size",
        "64",
    ])
    .args(["--batch", "2", "--threads", "1", "--val-fraction", "0.25"])
    .args(["--epochs", &epochs.to_string(), "--data"])
    .arg(data)
    .arg("--out")
    .arg(out)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    if resume {
        c.arg("--resume");
    }
    c
}

/// Every model file in the run folder reads completely; the resume point (if any) is
/// consistent; no stray file other than a killed write's temp file.
fn check_run_folder(out: &Path) -> usize {
    for name in ["last.safetensors", "best.safetensors"] {
        let p = out.join(name);
        if p.exists() {
            detlab::detector::checkpoint::ModelFile::read(&p)
                .unwrap_or_else(|e| panic!("{name} is damaged: {e}"));
        }
    }
    assert_only(
        out,
        &[
            "last.safetensors",
            "best.safetensors",
            "resume.safetensors",
            "resume.json",
            "metrics.jsonl",
        ],
    );
    if !out.join("resume.json").exists() {
        return 0;
    }
    let r = detlab::detector::train::checkpoint::ResumeFile::read(out)
        .unwrap_or_else(|e| panic!("the resume point is damaged: {e}"));
    r.state.epochs_completed
}

#[test]
fn killed_while_training_then_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    detlab::demo::generate(&detlab::demo::DemoOptions {
        out_dir: data.clone(),
        images: 8,
        seed: 3,
        width: 128,
        height: 96,
    })
    .unwrap();
    let out = dir.path().join("run");
    let epochs = 40;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut completed = 0;
    for round in 0..6 {
        let mut child = train(&data, &out, epochs, round > 0 && completed > 0)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(1500..4000)));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        let now = check_run_folder(&out);
        assert!(
            now >= completed,
            "the resume point went back from {completed} to {now}"
        );
        completed = now;
    }
    assert!(completed > 0, "no epoch completed in six runs");
    let o = train(&data, &out, epochs, true).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(check_run_folder(&out), epochs);
    let log = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let last = log.lines().last().unwrap();
    assert!(last.contains("\"finished\""), "{last}");
    eprintln!("resumed after kills; the last kill left {completed} of {epochs} epochs");
}
