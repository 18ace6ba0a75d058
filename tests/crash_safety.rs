//! Crash safety: child processes are SIGKILLed at deterministic points while they save
//! labels (VOC, YOLO + classes.txt, CreateML), while `detlab export coco` writes its output
//! and while `detlab train` writes its model and resume files. Afterwards every file is
//! absent, the old complete version or a new complete version — never truncated — and the
//! leftover temp files of a killed write (`.name.<pid>.<n>.tmp`) are never taken for labels
//! or images.
//!
//! Each kill waits for an observable event of the child (its first write shows up, a temp
//! file appears, a file is replaced, a line reaches `metrics.jsonl`), polled with a generous
//! timeout; nothing depends on how fast this machine is. Every test then asserts that its
//! kills did what they are for: each landed after the child's first write, the survivors
//! include both old and new versions, and some kill landed inside a write (it left the
//! write's temp file behind).
//!
//! The label-saving child is this test binary itself, re-run with `DETLAB_CRASH_CHILD` set
//! (see [`child_process_entry`]).

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use detlab::dataset::{load_labels, scan_images, ClassList, ImageAnnotation, LabelBox};
use detlab::formats::{createml, voc, yolo};
use detlab::geometry::BoxXyxy;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How long a kill point may wait for its event. Generous: the events come within
/// milliseconds to seconds; this bound only keeps a broken child from hanging the test.
const EVENT_TIMEOUT: Duration = Duration::from_secs(300);

/// Polls `ready` until it holds (the event a kill point waits for). Fails, naming `what`,
/// when the child exits without it or [`EVENT_TIMEOUT`] passes; `log` (the child's stderr,
/// if kept) goes into the message.
fn wait_for(child: &mut Child, what: &str, log: Option<&Path>, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if ready() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            // The event may have come just before the exit.
            if ready() {
                return;
            }
            let log = log.map_or(String::new(), |p| {
                std::fs::read_to_string(p).unwrap_or_default()
            });
            panic!("the child exited ({status}) before {what}\n{log}");
        }
        assert!(
            start.elapsed() < EVENT_TIMEOUT,
            "no {what} within {EVENT_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// A child process that is SIGKILLed when dropped, so that a failing test leaves none
/// running (the label-saving child would never stop).
struct Running(Child);

impl Running {
    fn spawn(cmd: &mut Command) -> Self {
        Self(cmd.spawn().unwrap())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SIGKILLs `child` (it may have exited already) and reaps it.
fn kill(child: &mut Running) {
    let _ = child.0.kill();
    child.0.wait().unwrap();
}

/// The temp files that process `pid`'s atomic writes left in `dir` (`.name.<pid>.<n>.tmp`).
fn temp_files_of(dir: &Path, pid: u32) -> Vec<String> {
    let tag = format!(".{pid}.");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| is_temp_file(n) && n.contains(&tag))
        .collect()
}

/// Identity and state of a file: a rename over it changes the inode, an in-place write the
/// length or the modification time.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    std::fs::metadata(path).ok().map(|m| Stamp {
        ino: m.ino(),
        len: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
    })
}

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

/// The version that `img{k}.xml` in `dir` holds (its width minus 1000). A file that does
/// not read is a failure: saves are atomic, so even a reader racing the child sees whole files.
fn voc_version(dir: &Path, k: usize) -> Option<u32> {
    let loaded = load_labels(&image(dir, k), None)
        .unwrap_or_else(|e| panic!("img{k}.xml read while the child saved it: {e}"))?;
    Some(loaded.annotation.width - 1000)
}

/// Versions written by kill round `i`'s child start here: above anything an earlier child
/// can have reached, so "new" (this child's) and "old" (an earlier one's) tell apart.
const ROUND_STRIDE: u32 = 100_000;

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
    let kills = 20u32;
    // Kills that left files of an earlier version beside the killed child's (each kill
    // leaves some of the latter, asserted below), and kills that landed inside a write
    // (between a temp file's creation and its rename).
    let (mut saw_old, mut mid_write) = (0, 0);
    for i in 0..kills {
        let start = (i + 1) * ROUND_STRIDE;
        let mut child = Running::spawn(
            Command::new(&exe)
                .args(["--exact", "child_process_entry", "--test-threads=1"])
                .env("DETLAB_CRASH_CHILD", format!("{start}:{}", d.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        // The kill point: the child's first write (img0.xml, version `start`) has landed;
        // then at once (the first pass over the images, most files still old) or after a
        // few milliseconds more.
        wait_for(&mut child.0, "the child's first label write", None, || {
            voc_version(d, 0).is_some_and(|v| v >= start)
        });
        if rng.random_bool(0.5) {
            std::thread::sleep(Duration::from_millis(rng.random_range(1..100)));
        }
        let pid = child.0.id();
        kill(&mut child);
        check_labels(d);

        let versions: Vec<u32> = (0..IMAGES).map(|k| voc_version(d, k).unwrap()).collect();
        assert!(
            versions[0] >= start,
            "kill {i} came before the child's first write: versions {versions:?}"
        );
        if versions.iter().any(|&v| v < start) {
            saw_old += 1;
        }
        let temps: usize = [d.to_path_buf(), d.join("yolo"), d.join("createml")]
            .iter()
            .map(|dir| temp_files_of(dir, pid).len())
            .sum();
        if temps > 0 {
            mid_write += 1;
        }
    }
    eprintln!(
        "{kills} kills: {saw_old} left old versions beside new ones, {mid_write} landed inside a write"
    );
    assert!(
        saw_old > 0,
        "no kill left old versions beside new ones: every kill came after a complete pass"
    );
    assert!(
        mid_write > 0,
        "no kill landed inside a write: none of {kills} left a temp file of the killed child"
    );
}

/// `n` tiny VOC files with small real images (one 1100×100 PNG, named `.jpg`: the export
/// skips images it cannot read); `extra` adds a box to every tenth file (the "new"
/// dataset).
fn write_dataset(dir: &Path, n: usize, extra: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::new(1100, 100)
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    for i in 0..n {
        let img = dir.join(format!("p{i:05}.jpg"));
        if !extra {
            std::fs::write(&img, png.get_ref()).unwrap();
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
    let mut c = Command::new(env!("CARGO_BIN_EXE_detlab-torch"));
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

/// Where a kill of `detlab export coco` lands; each waits for an event of the child.
#[derive(Clone, Copy, Debug)]
enum ExportKill {
    /// At the first sign of an output write (a temp file appears, or an output changes):
    /// inside the write of `instances_train.json`, before any rename.
    FirstWrite,
    /// As soon as `instances_train.json` has been replaced: between two files.
    TrainReplaced,
    /// As soon as `instances_val.json` has been replaced: before or inside `labels.txt`.
    ValReplaced,
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
    assert!(export(&images, &reference).status().unwrap().success());
    let new = read_outputs(&reference);
    assert!(old.iter().chain(&new).all(Option::is_some));
    // Every file differs, so each one says which version survived.
    for (k, f) in EXPORT_FILES.iter().enumerate() {
        assert_ne!(old[k], new[k], "{f}");
    }

    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut plan: Vec<ExportKill> = [
        ExportKill::FirstWrite,
        ExportKill::TrainReplaced,
        ExportKill::ValReplaced,
    ]
    .repeat(4);
    plan.shuffle(&mut rng);
    // Files that survived a kill as the old / the new version; kills inside a write.
    let (mut saw_old, mut saw_new, mut mid_write) = (0, 0, 0);
    for (round, &kill_at) in plan.iter().enumerate() {
        // Each round starts from the old export.
        for (f, bytes) in EXPORT_FILES.iter().zip(&old) {
            std::fs::write(out.join(f), bytes.as_ref().unwrap()).unwrap();
        }
        let before: Vec<Option<Stamp>> = EXPORT_FILES.iter().map(|f| stamp(&out.join(f))).collect();
        let changed = |k: usize| stamp(&out.join(EXPORT_FILES[k])) != before[k];
        let mut child = Running::spawn(&mut export(&images, &out));
        let pid = child.0.id();
        match kill_at {
            ExportKill::FirstWrite => {
                wait_for(&mut child.0, "the export's first write", None, || {
                    !temp_files_of(&out, pid).is_empty() || (0..EXPORT_FILES.len()).any(changed)
                })
            }
            ExportKill::TrainReplaced => wait_for(
                &mut child.0,
                "instances_train.json to be replaced",
                None,
                || changed(0),
            ),
            ExportKill::ValReplaced => wait_for(
                &mut child.0,
                "instances_val.json to be replaced",
                None,
                || changed(1),
            ),
        }
        kill(&mut child);

        let now = read_outputs(&out);
        let mut round_new = false;
        for (k, f) in EXPORT_FILES.iter().enumerate() {
            let got = now[k].as_ref().unwrap();
            let (is_old, is_new) = (
                got == old[k].as_ref().unwrap(),
                got == new[k].as_ref().unwrap(),
            );
            assert!(
                is_old || is_new,
                "{f} is neither the old nor the new complete file ({} bytes) after a kill at {kill_at:?}",
                got.len()
            );
            saw_old += is_old as usize;
            saw_new += is_new as usize;
            round_new |= is_new;
        }
        let temps = temp_files_of(&out, pid);
        mid_write += !temps.is_empty() as usize;
        assert!(
            round_new || !temps.is_empty(),
            "kill {round} ({kill_at:?}) came before the child's first write"
        );
        // A kill between two renames leaves the set's journal; the next export completes
        // the set from it (`split_export_on_a_full_disk_is_old_or_new_never_a_mix`).
        let mut allowed = EXPORT_FILES.to_vec();
        allowed.push(detlab::atomic::COMMIT_JOURNAL);
        assert_only(&out, &allowed);
        detlab::formats::coco::CocoDataset::read(&out.join("instances_train.json")).unwrap();
    }
    eprintln!(
        "{} kills left {saw_old} old and {saw_new} new files; {mid_write} landed inside a write",
        plan.len()
    );
    assert!(
        saw_old > 0 && saw_new > 0,
        "the kills did not leave both old and new files: {saw_old} old, {saw_new} new"
    );
    assert!(
        mid_write > 0,
        "no kill landed inside a write: none of {} left a temp file of the killed export",
        plan.len()
    );
}

fn train(data: &Path, out: &Path, epochs: usize, resume: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_detlab-torch"));
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

/// The `event` of each line appended to `metrics.jsonl` since the tail was made (just
/// before its child started); a line is taken once it is complete.
struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    events: Vec<String>,
}

impl LogTail {
    fn new(path: PathBuf) -> Self {
        let offset = std::fs::metadata(&path).map_or(0, |m| m.len());
        Self {
            path,
            offset,
            partial: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Reads what was appended since the last call; returns the events so far. A log
    /// that became shorter was started anew (`--overwrite`): it is read from its start.
    fn poll(&mut self) -> &[String] {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() < self.offset) {
            self.offset = 0;
            self.partial.clear();
        }
        if let Ok(mut f) = std::fs::File::open(&self.path) {
            f.seek(SeekFrom::Start(self.offset)).unwrap();
            let n = f.read_to_end(&mut self.partial).unwrap();
            self.offset += n as u64;
            while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.partial.drain(..=end).collect();
                let v: serde_json::Value = serde_json::from_slice(&line).unwrap_or_else(|e| {
                    panic!("metrics.jsonl: {e}: {}", String::from_utf8_lossy(&line))
                });
                self.events.push(v["event"].as_str().unwrap().to_string());
            }
        }
        &self.events
    }
}

/// Where a kill of `detlab train` lands; each waits for an event of the child.
#[derive(Clone, Copy, Debug, PartialEq)]
enum TrainKill {
    /// In the epoch after this run's first complete one: at its first logged step.
    MidEpoch,
    /// As `last.safetensors` starts being written (its temp file appears, or it changes).
    LastWrite,
    /// As `resume.safetensors` starts being written.
    ResumeWrite,
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
    // Each kill round ends at most about one epoch after its start (its event comes in the
    // run's first or second epoch), so six rounds stay well inside twelve epochs.
    let epochs = 12;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut plan = [
        TrainKill::MidEpoch,
        TrainKill::LastWrite,
        TrainKill::ResumeWrite,
    ]
    .repeat(2);
    plan.shuffle(&mut rng);
    let mut completed = 0;
    let mut mid_write = 0;
    for (round, &kill_at) in plan.iter().enumerate() {
        let log = dir.path().join(format!("round{round}.log"));
        let mut tail = LogTail::new(out.join("metrics.jsonl"));
        let before: Vec<Option<Stamp>> = ["last.safetensors", "resume.safetensors"]
            .iter()
            .map(|f| stamp(&out.join(f)))
            .collect();
        let mut cmd = train(&data, &out, epochs, completed > 0);
        if completed == 0 {
            // No epoch to continue from: start again over whatever the last kill left.
            cmd.arg("--overwrite");
        }
        let mut child = Running::spawn(cmd.stderr(std::fs::File::create(&log).unwrap()));
        let pid = child.0.id();
        let write_began = |k: usize, name: &str| {
            stamp(&out.join(name)) != before[k]
                || temp_files_of(&out, pid)
                    .iter()
                    .any(|t| t.starts_with(&format!(".{name}.")))
        };
        match kill_at {
            TrainKill::MidEpoch => wait_for(
                &mut child.0,
                "a step after a complete epoch",
                Some(&log),
                || {
                    let ev = tail.poll();
                    ev.iter()
                        .position(|e| e == "epoch")
                        .is_some_and(|i| ev[i..].iter().any(|e| e == "step"))
                },
            ),
            TrainKill::LastWrite => wait_for(
                &mut child.0,
                "the write of last.safetensors",
                Some(&log),
                || write_began(0, "last.safetensors"),
            ),
            TrainKill::ResumeWrite => wait_for(
                &mut child.0,
                "the write of resume.safetensors",
                Some(&log),
                || write_began(1, "resume.safetensors"),
            ),
        }
        kill(&mut child);
        if !temp_files_of(&out, pid).is_empty() {
            mid_write += 1;
        }
        let now = check_run_folder(&out);
        assert!(
            now >= completed,
            "the resume point went back from {completed} to {now} (kill {round}, {kill_at:?})"
        );
        if kill_at == TrainKill::MidEpoch {
            assert!(
                now > completed,
                "kill {round} came after an epoch of this run, yet the resume point stayed at {now}"
            );
        }
        completed = now;
    }
    assert!(
        mid_write > 0,
        "no kill landed inside a write: none of {} left a temp file of the killed run",
        plan.len()
    );
    let o = train(&data, &out, epochs, true).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(check_run_folder(&out), epochs);
    let log = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let last = log.lines().last().unwrap();
    assert!(last.contains("\"finished\""), "{last}");
    eprintln!(
        "resumed after {} kills ({mid_write} inside a write); the last kill left {completed} of {epochs} epochs",
        plan.len()
    );
}

/// A kill just after `metrics.jsonl` reports the first epoch: that epoch can be resumed
/// (the resume point is written before an epoch is reported); a new run in the folder
/// without `--resume` or `--overwrite` is refused and changes nothing; `--resume` finishes
/// the run and removes the temp files killed writes left.
#[test]
fn killed_at_the_first_epoch_boundary_then_resumed() {
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
    let epochs = 2;
    let log = dir.path().join("first.log");
    let mut tail = LogTail::new(out.join("metrics.jsonl"));
    let mut child = Running::spawn(
        train(&data, &out, epochs, false).stderr(std::fs::File::create(&log).unwrap()),
    );
    wait_for(&mut child.0, "the first epoch line", Some(&log), || {
        tail.poll().iter().any(|e| e == "epoch")
    });
    kill(&mut child);
    let now = check_run_folder(&out);
    assert!(
        now >= 1,
        "metrics.jsonl reported epoch 1, yet the resume point says {now} complete epochs"
    );

    // Starting over without --resume or --overwrite would clobber the run: refused.
    let files = [
        "last.safetensors",
        "best.safetensors",
        "resume.safetensors",
        "metrics.jsonl",
    ];
    let before: Vec<Option<Stamp>> = files.iter().map(|f| stamp(&out.join(f))).collect();
    let o = train(&data, &out, epochs, false).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "a second run into {} was not refused",
        out.display()
    );
    assert!(
        stderr.contains("already holds a run")
            && stderr.contains("--overwrite")
            && stderr.contains("--resume"),
        "{stderr}"
    );
    let after: Vec<Option<Stamp>> = files.iter().map(|f| stamp(&out.join(f))).collect();
    assert_eq!(before, after, "the refused run changed the run folder");

    // A damaged resume point (a NaN in a saved weight) is refused, naming the file, and
    // left as it is.
    let resume = out.join("resume.safetensors");
    let good = std::fs::read(&resume).unwrap();
    let (header_len, header) = safetensors::SafeTensors::read_metadata(&good).unwrap();
    let weight = header
        .tensors()
        .into_iter()
        .find(|(n, t)| n.starts_with("model.") && t.dtype == safetensors::Dtype::F32)
        .map(|(_, t)| t.data_offsets.0)
        .unwrap();
    let mut damaged = good.clone();
    let at = 8 + header_len + weight;
    damaged[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&resume, &damaged).unwrap();
    let o = train(&data, &out, epochs, true).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a damaged resume point was used");
    assert!(
        stderr.contains("resume.safetensors is damaged") && stderr.contains("NaN"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&resume).unwrap(), damaged);
    std::fs::write(&resume, &good).unwrap();

    // What a killed write leaves (a dead writer's partial resume file) goes on resume.
    let stale = out.join(".resume.safetensors.99999999.0.tmp");
    std::fs::write(&stale, vec![0u8; 4096]).unwrap();
    let o = train(&data, &out, epochs, true).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(check_run_folder(&out), epochs);
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| is_temp_file(n))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    let text = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert!(text.lines().last().unwrap().contains("\"finished\""));
}

// ---------------------------------------------------------------------------------------
// Issue 21, defect 4: a split export on a full disk, killed or not.

/// `detlab export coco --val-fraction 0.8` (val larger than train) under `bash`, with a
/// file-size limit of `limit_kib` KiB when given (`ulimit -f`, SIGXFSZ ignored, so that a
/// write past it fails with EFBIG as a full disk fails with ENOSPC).
fn split_export(images: &Path, out: &Path, limit_kib: Option<u64>) -> Command {
    let limit = limit_kib.map_or("unlimited".to_string(), |k| k.to_string());
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f "$1" && shift && exec "$@""#)
        .arg("bash")
        .arg(limit)
        .arg(env!("CARGO_BIN_EXE_detlab-torch"))
        .args(["export", "coco", "--val-fraction", "0.8", "--images"])
        .arg(images)
        .arg("--out")
        .arg(out)
        .stdin(Stdio::null());
    c
}

/// Which complete export `out` holds: 0 = old, 1 = new; a panic naming the files for a mix
/// (or a file that is neither).
fn which_export(out: &Path, old: &[Option<Vec<u8>>], new: &[Option<Vec<u8>>], what: &str) -> usize {
    let now = read_outputs(out);
    let version = |k: usize| {
        if now[k] == old[k] {
            "old"
        } else if now[k] == new[k] {
            "new"
        } else {
            "neither"
        }
    };
    let versions: Vec<&str> = (0..EXPORT_FILES.len()).map(version).collect();
    if versions.iter().all(|v| *v == "old") {
        0
    } else if versions.iter().all(|v| *v == "new") {
        1
    } else {
        panic!("{what}: a mix of exports: {EXPORT_FILES:?} are {versions:?}");
    }
}

/// The pair `instances_train.json` + `instances_val.json` (and `labels.txt`) is replaced as
/// a set: on a full disk the new train file was in place beside the old val file (and the
/// command did not say so). Here the val file is the larger one and a file-size limit lets
/// the train file through but not the val file: the export must fail, say that the output
/// is unchanged, and leave the old set; SIGKILLs at random moments of such an export, and
/// of one with room enough, leave the old set or the new set once the journal of an
/// interrupted set of renames is replayed (as the next export does), never a mix.
#[test]
fn split_export_on_a_full_disk_is_old_or_new_never_a_mix() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    let out = dir.path().join("out");
    let n = 600;
    write_dataset(&images, n, false);
    let o = split_export(&images, &out, None).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let old = read_outputs(&out);

    write_dataset(&images, n, true);
    let reference = dir.path().join("reference");
    let start = Instant::now();
    let o = split_export(&images, &reference, None).output().unwrap();
    let duration = start.elapsed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let new = read_outputs(&reference);
    for (k, f) in EXPORT_FILES.iter().enumerate() {
        assert_ne!(old[k], new[k], "{f}");
    }
    let len = |k: usize| new[k].as_ref().unwrap().len() as u64;
    let limit_kib = (len(0) + len(1)) / 2 / 1024;
    assert!(
        len(0) < limit_kib * 1024 && limit_kib * 1024 < len(1),
        "the train file ({} bytes) must fit under the limit and the val file ({} bytes) not",
        len(0),
        len(1)
    );
    let restore = || {
        for (f, bytes) in EXPORT_FILES.iter().zip(&old) {
            std::fs::write(out.join(f), bytes.as_ref().unwrap()).unwrap();
        }
    };

    // Left to fail by itself: a clear error, and the old set untouched.
    let o = split_export(&images, &out, Some(limit_kib))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "the export must fail on a full disk: {stderr}"
    );
    assert_eq!(which_export(&out, &old, &new, "a full disk"), 0);
    assert!(
        stderr.contains("instances_val.json") && stderr.contains("nothing in"),
        "the error must say the output is unchanged: {stderr}"
    );
    assert_only(&out, &EXPORT_FILES);

    // Killed at random moments, on a full disk and with room enough.
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let (mut saw_old, mut saw_new) = (0, 0);
    for round in 0..16 {
        restore();
        let full = round % 2 == 0;
        let limit = full.then_some(limit_kib);
        let delay = duration.mul_f64(rng.random_range(0.0..1.2));
        let mut child = Running::spawn(
            split_export(&images, &out, limit)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        std::thread::sleep(delay);
        let pid = child.0.id();
        kill(&mut child);
        let what = format!("kill {round} after {delay:?} (full disk: {full})");
        // A kill between the renames is completed by the next export into the folder.
        detlab::atomic::finish_interrupted_commit(&out.join(detlab::atomic::COMMIT_JOURNAL))
            .unwrap();
        match which_export(&out, &old, &new, &what) {
            0 => saw_old += 1,
            _ => {
                assert!(!full, "{what}: the new set cannot fit");
                saw_new += 1
            }
        }
        // A killed writer may leave its hidden temp files; nothing else.
        for t in temp_files_of(&out, pid) {
            std::fs::remove_file(out.join(t)).unwrap();
        }
        assert_only(&out, &EXPORT_FILES);
    }
    eprintln!("16 kills left the old set {saw_old} times and the new set {saw_new} times");
    assert!(saw_old > 0, "no kill landed before the renames");
}
