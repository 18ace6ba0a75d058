//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Whether this is a CI run (`CI=true`, as `.ci/run` is started). There `../shared` and the
/// venv are installed, so a missing prerequisite is a failure, never a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reports a missing prerequisite: under CI it fails the test, naming what is missing;
/// elsewhere it prints a `SKIP:` line and the caller returns.
#[track_caller]
pub fn missing(what: impl std::fmt::Display) {
    if in_ci() {
        panic!("CI=true and a prerequisite is missing: {what}");
    }
    eprintln!("SKIP: {what}");
}

/// Unwraps a prerequisite, or reports it as [`missing`] and returns from the test.
#[macro_export]
macro_rules! require {
    ($e:expr, $($what:tt)+) => {
        match $e {
            Some(v) => v,
            None => {
                common::missing(format!($($what)+));
                return;
            }
        }
    };
}

/// The `../shared` folder beside the checkout (or `$DETLAB_SHARED`), if present; when it
/// is absent this reports it through [`missing`] (a failure under CI).
#[track_caller]
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("DETLAB_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    if dir.join("DESIGN.md").exists() {
        Some(dir)
    } else {
        missing(format!(
            "../shared is absent ({}); this test needs it",
            dir.display()
        ));
        None
    }
}

/// The Python of the project venv (`$DETLAB_PYTHON`, set by the Makefile), if usable; when
/// it is not, this reports it through [`missing`] (a failure under CI).
#[track_caller]
pub fn venv_python() -> Option<PathBuf> {
    let Some(py) = std::env::var_os("DETLAB_PYTHON").map(PathBuf::from) else {
        missing("DETLAB_PYTHON is not set (run the tests through `make test`)");
        return None;
    };
    if py.exists() {
        Some(py)
    } else {
        missing(format!("DETLAB_PYTHON={} does not exist", py.display()));
        None
    }
}

/// Runs the `detlab` binary built for these tests.
pub fn detlab<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_detlab-torch"))
        .args(args)
        .output()
        .expect("run detlab")
}

/// A command's stdout and stderr together, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `detlab export coco` of the labelled folder `images` (label files in `labels`) into
/// `dir`; returns the ground-truth JSON it wrote.
pub fn export_coco_gt(images: &Path, labels: &Path, dir: &Path) -> PathBuf {
    let o = detlab(&[
        OsStr::new("export"),
        OsStr::new("coco"),
        OsStr::new("--images"),
        images.as_os_str(),
        OsStr::new("--labels"),
        labels.as_os_str(),
        OsStr::new("--out"),
        dir.as_os_str(),
    ]);
    assert!(o.status.success(), "detlab export coco: {}", text(&o));
    dir.join("instances_train.json")
}

/// The reference PyTorch D0 of `fixtures` (`state_dict_ordereddict.pth`, 2 classes)
/// imported with `detlab import-weights` as `out`.
pub fn import_reference_d0(fixtures: &Path, out: &Path) {
    let pth = fixtures.join("state_dict_ordereddict.pth");
    let o = detlab(&[
        OsStr::new("import-weights"),
        pth.as_os_str(),
        OsStr::new("--arch"),
        OsStr::new("d0"),
        OsStr::new("--num-classes"),
        OsStr::new("2"),
        OsStr::new("--out"),
        out.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

/// Steps a kittest harness of the app until `done` holds (background scans, decoding and
/// label files take real time; at most a minute), then two more frames.
pub fn wait_until(
    h: &mut egui_kittest::Harness<'static, detlab::desktop::DetlabApp>,
    what: &str,
    done: impl Fn(&detlab::desktop::DetlabApp) -> bool,
) {
    let start = std::time::Instant::now();
    while !done(h.state()) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
        h.step();
    }
    h.run_steps(2);
}

/// An untrained Lite0 at 128 px for `classes` (BatchNorm kept, as training writes it),
/// not written yet: small and fast enough for tests that need a real model file.
pub fn tiny_lite0(classes: Vec<String>) -> detlab::detector::checkpoint::ModelFile {
    use detlab::detector::checkpoint::{ModelArch, ModelMeta};
    use detlab::detector::inference::{Detector, DetectorOptions};
    let mut meta = ModelMeta::for_arch(ModelArch::Lite0, classes);
    meta.input_size = 128;
    let options = DetectorOptions {
        fold_batchnorm: false,
        ..DetectorOptions::default()
    };
    Detector::fresh_with_meta(meta, &options)
        .expect("a fresh Lite0")
        .to_model_file()
        .expect("its model file")
}

/// Whether `ffmpeg` and `ffprobe` run ([`missing`] reports it when they do not).
pub fn have_ffmpeg() -> bool {
    let runs = |p: &str| {
        Command::new(p)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if runs("ffmpeg") && runs("ffprobe") {
        true
    } else {
        missing("ffmpeg/ffprobe are not installed (apt-get install ffmpeg)");
        false
    }
}
