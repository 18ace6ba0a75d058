//! The real window under Xvfb, driven by synthetic X input (xdotool): keys and drags go
//! through winit and egui-winit exactly as a user's do, and the tests check the label
//! files the app writes. (The kittest tests in `ui_labelling.rs` inject egui events past
//! that layer, so they cannot see e.g. Ctrl+V turned into a paste event.)

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const W: u32 = 1280;
const H: u32 = 800;

/// Whether `program` runs (`--version` or `-help`).
fn have(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// One window at a time: software rendering of several at once starves their frames
/// (and a drag whose press and release land in one frame is a click).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// An Xvfb on a free display, and the app in it; both are killed on drop.
struct Window {
    _turn: std::sync::MutexGuard<'static, ()>,
    xvfb: Child,
    app: Option<Child>,
    display: String,
    id: String,
    folder: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Window {
    fn drop(&mut self) {
        if let Some(app) = &mut self.app {
            let _ = app.kill();
            let _ = app.wait();
        }
        let _ = self.xvfb.kill();
        let _ = self.xvfb.wait();
    }
}

/// Starts Xvfb on the first display number that is free.
fn start_xvfb() -> (Child, String) {
    let base = 200 + (std::process::id() % 400) * 4;
    for n in base..base + 400 {
        if Path::new(&format!("/tmp/.X{n}-lock")).exists()
            || Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        {
            continue;
        }
        let mut child = Command::new("Xvfb")
            .arg(format!(":{n}"))
            .args(["-screen", "0", &format!("{W}x{H}x24"), "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                return (child, format!(":{n}"));
            }
            if child.try_wait().ok().flatten().is_some() {
                break; // another server took the number meanwhile
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("no free X display");
}

/// What a test's folder and settings look like before the app starts.
struct Setup {
    images: usize,
    /// Keep the demo's label file of the first image (the others start unlabelled).
    keep_first_labels: bool,
    single_class: bool,
    classes: &'static str,
    /// Start with a model whose cached predictions give each image two boxes to review
    /// (instead of no model).
    predictions: bool,
    /// Of the first image's kept labels, keep only the first box of each class.
    one_label_per_class: bool,
}

impl Window {
    /// Generates the demo folder, starts the app on it and waits until the first image is
    /// shown (its name in the window title). `None` when Xvfb or xdotool is missing.
    fn open(setup: Setup) -> Option<Self> {
        for (program, arg) in [("Xvfb", "-help"), ("xdotool", "--version")] {
            if !have(program, arg) {
                common::missing(format!(
                    "{program} is not installed (scripts/setup.sh installs it)"
                ));
                return None;
            }
        }
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("shelf");
        detlab::demo::generate(&detlab::demo::DemoOptions {
            out_dir: folder.clone(),
            images: setup.images,
            seed: 5,
            width: 640,
            height: 480,
        })
        .unwrap();
        for i in 0..setup.images {
            if i > 0 || !setup.keep_first_labels {
                let _ = std::fs::remove_file(xml_of(&folder, i));
            }
        }
        if setup.one_label_per_class {
            let xml = xml_of(&folder, 0);
            let mut labels = detlab::formats::voc::read(&xml).unwrap();
            let mut seen = std::collections::HashSet::new();
            labels.boxes.retain(|b| seen.insert(b.class_name.clone()));
            detlab::formats::voc::write(&xml, &labels, &folder.join("shelf_0001.jpg")).unwrap();
        }
        std::fs::write(folder.join("predefined_classes.txt"), setup.classes).unwrap();
        let config = dir.path().join("config");
        std::fs::create_dir_all(&config).unwrap();
        let settings = serde_json::json!({
            "single_class_mode": setup.single_class,
            "default_label": if setup.single_class { Some("Cola") } else { None },
            "window_size": [W as f32, H as f32],
        });
        std::fs::write(config.join("settings.json"), settings.to_string()).unwrap();
        let runtime = dir.path().join("xdg");
        std::fs::create_dir_all(&runtime).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        }

        let model_args: Vec<String> = if setup.predictions {
            let model = dir.path().join("model.safetensors");
            write_model_with_predictions(&model, &folder, setup.images, setup.classes);
            vec!["--model".into(), model.to_string_lossy().into_owned()]
        } else {
            vec!["--no-model".into()]
        };
        let (xvfb, display) = start_xvfb();
        let app = Command::new(env!("CARGO_BIN_EXE_detlab-torch"))
            .args(["gui", folder.to_str().unwrap()])
            .args(&model_args)
            .env("DISPLAY", &display)
            .env_remove("WAYLAND_DISPLAY")
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("DETLAB_CONFIG_DIR", &config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start detlab");
        let mut w = Window {
            _turn: turn,
            xvfb,
            app: Some(app),
            display,
            id: String::new(),
            folder,
            _dir: dir,
        };
        let found = w.xdotool_timeout(
            &["search", "--sync", "--onlyvisible", "--name", "^detlab"],
            30,
        );
        w.id = found
            .lines()
            .next()
            .unwrap_or_else(|| panic!("the detlab window did not appear"))
            .trim()
            .to_string();
        w.wait_title("the first image", |t| t.contains("shelf_0001"));
        w.xdotool(&["windowfocus", "--sync", &w.id.clone()]);
        // The image is decoded in the background: give it a few frames.
        std::thread::sleep(Duration::from_millis(800));
        Some(w)
    }

    fn xdotool_timeout(&self, args: &[&str], seconds: u32) -> String {
        let out = Command::new("timeout")
            .arg(seconds.to_string())
            .arg("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .expect("run xdotool");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn xdotool(&self, args: &[&str]) -> String {
        self.xdotool_timeout(args, 10)
    }

    /// Presses keys as xdotool names them (`ctrl+v`, `2`), with time for a frame after
    /// each.
    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.xdotool(&["key", "--clearmodifiers", k]);
            std::thread::sleep(Duration::from_millis(400));
        }
    }

    /// A left-button drag in window coordinates, in steps, as a hand drags.
    fn drag(&self, from: (i32, i32), to: (i32, i32)) {
        let at = |p: (i32, i32)| {
            self.xdotool(&[
                "mousemove",
                "--window",
                &self.id,
                &p.0.to_string(),
                &p.1.to_string(),
            ]);
            std::thread::sleep(Duration::from_millis(80));
        };
        at(from);
        self.xdotool(&["mousedown", "1"]);
        std::thread::sleep(Duration::from_millis(150));
        for s in 1..=6 {
            let f = s as f32 / 6.0;
            at((
                from.0 + ((to.0 - from.0) as f32 * f) as i32,
                from.1 + ((to.1 - from.1) as f32 * f) as i32,
            ));
        }
        self.xdotool(&["mouseup", "1"]);
        // The frame that ends the drag, then the one that shows its result.
        std::thread::sleep(Duration::from_millis(700));
    }

    fn title(&self) -> String {
        self.xdotool(&["getwindowname", &self.id])
            .trim()
            .to_string()
    }

    fn wait_title(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let t = self.title();
            if done(&t) {
                return t;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}; title {t:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Presses Ctrl+S and waits until image `index`'s VOC file has `n` boxes; returns
    /// their class names.
    fn saved_boxes(&self, index: usize, n: usize) -> Vec<String> {
        self.keys(&["ctrl+s"]);
        let path = xml_of(&self.folder, index);
        let start = Instant::now();
        loop {
            let names = std::fs::read_to_string(&path)
                .map(|x| class_names(&x))
                .unwrap_or_default();
            if names.len() == n || start.elapsed() > Duration::from_secs(8) {
                return names;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// An untrained Lite0 at 128 px for `classes` (one per line), and in the folder's
/// candidate cache two boxes of class 0 (scores 0.9 and 0.8) on each of the first `images`
/// 640×480 images: what the app shows when it opens them.
fn write_model_with_predictions(path: &Path, folder: &Path, images: usize, classes: &str) {
    use detlab::app::review::DEFAULT_REVIEW_TTA;
    use detlab::detector::maths::box_coding::XyxyF32;
    use detlab::detector::maths::letterbox::Letterbox;
    use detlab::detector::maths::postprocess::Candidates;
    use detlab::review::{CachedPrediction, CandidateCache, ImageStamp, ModelId};
    common::tiny_lite0(classes.lines().map(str::to_string).collect())
        .write(path)
        .unwrap();
    let id = ModelId::of_file(path)
        .unwrap()
        .with_tta(&DEFAULT_REVIEW_TTA);
    let cache = CandidateCache::new(folder, &id);
    for i in 0..images {
        let name = format!("shelf_{:04}.jpg", i + 1);
        let boxes = vec![
            XyxyF32 {
                x1: 10.0,
                y1: 10.0,
                x2: 40.0,
                y2: 60.0,
            },
            XyxyF32 {
                x1: 70.0,
                y1: 20.0,
                x2: 100.0,
                y2: 70.0,
            },
        ];
        let candidates =
            Candidates::from_parts(boxes, vec![0.9, 0.8], vec![0, 0], vec![0, 1]).unwrap();
        let entry = CachedPrediction {
            stamp: ImageStamp::of(&folder.join(&name)).unwrap(),
            letterbox: Letterbox::new(640, 480, 128),
            candidates,
        };
        cache.store(Path::new(&name), &entry).unwrap();
    }
}

/// `(rejected, all)` of the review log's verdicts on image `index`, once it holds
/// `want` (or after 10 s).
fn rejections_of(folder: &Path, index: usize, want: usize) -> (usize, usize) {
    let name = format!("shelf_{:04}.jpg", index + 1);
    let start = Instant::now();
    loop {
        let decisions = detlab::review::ReviewLog::load(folder)
            .map(|log| log.decisions(Path::new(&name)).to_vec())
            .unwrap_or_default();
        if decisions.len() >= want || start.elapsed() > Duration::from_secs(10) {
            let rejected = decisions
                .iter()
                .filter(|d| d.verdict == detlab::review::Verdict::Rejected)
                .count();
            return (rejected, decisions.len());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn xml_of(folder: &Path, index: usize) -> PathBuf {
    folder.join(format!("shelf_{:04}.xml", index + 1))
}

/// The `<name>` of each `<object>` in a VOC file.
fn class_names(xml: &str) -> Vec<String> {
    xml.split("<object>")
        .skip(1)
        .filter_map(|o| {
            let a = o.find("<name>")? + "<name>".len();
            let b = o[a..].find("</name>")? + a;
            Some(o[a..b].to_string())
        })
        .collect()
}

/// Points inside the shown image (it is fitted into the canvas between the panels).
const CENTRE: (i32, i32) = (640, 430);

fn offset(p: (i32, i32), dx: i32, dy: i32) -> (i32, i32) {
    (p.0 + dx, p.1 + dy)
}

#[test]
fn ctrl_v_copies_the_previous_images_boxes_in_the_real_window() {
    let Some(w) = Window::open(Setup {
        images: 2,
        keep_first_labels: true,
        single_class: true,
        classes: "Cola\nSprite\n",
        predictions: false,
        one_label_per_class: false,
    }) else {
        return;
    };
    let first = class_names(&std::fs::read_to_string(xml_of(&w.folder, 0)).unwrap());
    assert!(!first.is_empty());
    w.keys(&["d"]);
    w.wait_title("the second image", |t| t.contains("shelf_0002"));
    std::thread::sleep(Duration::from_millis(500));
    w.keys(&["ctrl+v"]);
    let copied = w.saved_boxes(1, first.len());
    assert_eq!(copied, first, "Ctrl+V copies the previous image's boxes");
}

#[test]
fn ctrl_shift_d_does_not_duplicate_the_selected_box() {
    let Some(w) = Window::open(Setup {
        images: 2,
        keep_first_labels: false,
        single_class: true,
        classes: "Cola\nSprite\n",
        predictions: false,
        one_label_per_class: false,
    }) else {
        return;
    };
    w.keys(&["w"]);
    w.drag(offset(CENTRE, -60, -60), offset(CENTRE, 40, 40));
    // The new box is selected; LabelImg's Ctrl+Shift+D asks to delete the image.
    w.keys(&["ctrl+shift+d"]);
    let boxes = w.saved_boxes(0, 1);
    assert_eq!(boxes, ["Cola"], "one box, not a duplicate");
    assert!(
        w.folder.join("shelf_0001.jpg").exists() || w.folder.join("shelf_0001.png").exists(),
        "the image is not deleted without confirmation"
    );
}

#[test]
fn digit_in_an_empty_label_dialog_picks_that_class() {
    let Some(w) = Window::open(Setup {
        images: 1,
        keep_first_labels: false,
        single_class: false,
        classes: "Cola\nSprite\n",
        predictions: false,
        one_label_per_class: false,
    }) else {
        return;
    };
    w.keys(&["w"]);
    w.drag(offset(CENTRE, -60, -60), offset(CENTRE, 40, 40));
    w.keys(&["2"]);
    let boxes = w.saved_boxes(0, 1);
    assert_eq!(boxes, ["Sprite"], "`2` picks the second class");
    for file in ["predefined_classes.txt", "classes.txt"] {
        if let Ok(text) = std::fs::read_to_string(w.folder.join(file)) {
            assert!(
                !text.lines().any(|l| l.trim() == "2"),
                "no class \"2\" in {file}: {text:?}"
            );
        }
    }
}

#[test]
fn continuous_drawing_makes_three_boxes_with_three_drags() {
    let Some(w) = Window::open(Setup {
        images: 1,
        keep_first_labels: false,
        single_class: true,
        classes: "Cola\nSprite\n",
        predictions: false,
        one_label_per_class: false,
    }) else {
        return;
    };
    w.keys(&["ctrl+shift+a"]);
    for dx in [-150, -30, 90] {
        w.drag(offset(CENTRE, dx, -50), offset(CENTRE, dx + 80, 50));
    }
    let boxes = w.saved_boxes(0, 3);
    assert_eq!(boxes, ["Cola", "Cola", "Cola"]);
}

/// The zoom in the window title ("zoom 87 %").
fn title_zoom(title: &str) -> f32 {
    let rest = &title[title.rfind("zoom ").expect("zoom in the title") + 5..];
    rest.trim_end_matches(" %").trim().parse().unwrap()
}

/// The window's top `rows` rows of pixels via `xwd` (x11-apps), if installed.
fn top_rows(w: &Window, rows: usize) -> Option<Vec<u8>> {
    let out = Command::new("xwd")
        .args(["-silent", "-id", &w.id])
        .env("DISPLAY", &w.display)
        .output()
        .ok()?;
    let field = |i: usize| -> Option<usize> {
        let b = out.stdout.get(i * 4..i * 4 + 4)?;
        Some(u32::from_be_bytes(b.try_into().ok()?) as usize)
    };
    // XWD header: header_size (field 0), bytes_per_line (12), ncolors (19).
    let start = field(0)? + field(19)? * 12;
    out.stdout
        .get(start..start + field(12)? * rows)
        .map(<[u8]>::to_vec)
}

#[test]
fn ctrl_plus_zooms_the_image_not_the_interface() {
    let Some(w) = Window::open(Setup {
        images: 1,
        keep_first_labels: true,
        single_class: true,
        classes: "Cola\nSprite\n",
        predictions: false,
        one_label_per_class: false,
    }) else {
        return;
    };
    let before = title_zoom(&w.title());
    let menu_before = top_rows(&w, 20);
    w.keys(&["ctrl+plus"]);
    let after = title_zoom(&w.wait_title("the zoom to change", |t| title_zoom(t) != before));
    let ratio = after / before;
    assert!(
        (1.2..1.3).contains(&ratio),
        "Ctrl++ zooms the image by 25 %: {before} % → {after} %"
    );
    w.keys(&["ctrl+minus"]);
    w.wait_title("zoom back", |t| (title_zoom(t) - before).abs() <= 1.0);
    w.keys(&["ctrl+equal"]);
    w.wait_title("Ctrl+= zooms in", |t| title_zoom(t) > before * 1.2);
    // The interface keeps its scale: the menu bar's pixels (top 20 rows) are unchanged.
    match (menu_before, top_rows(&w, 20)) {
        (Some(a), Some(b)) => assert!(a == b, "the menu bar changed: the interface was scaled"),
        _ => eprintln!("xwd is not installed: the menu bar pixels are not compared"),
    }
}

/// The crop gallery's keys reach it in the real window: with the second (unlabelled) image
/// open, Ctrl+G opens the gallery, Ctrl+A selects every crop of the folder and a class key
/// relabels them in the first image's label file, which only the gallery can reach.
#[test]
fn crop_gallery_keys_relabel_in_the_real_window() {
    let Some(w) = Window::open(Setup {
        images: 2,
        keep_first_labels: true,
        single_class: true,
        classes: "Cola\nSprite\n",
        predictions: false,
        one_label_per_class: false,
    }) else {
        return;
    };
    let first = class_names(&std::fs::read_to_string(xml_of(&w.folder, 0)).unwrap());
    assert!(!first.is_empty());
    let (target, key) = if first.iter().all(|c| c == "Sprite") {
        ("Cola", "1")
    } else {
        ("Sprite", "2")
    };
    w.keys(&["d"]);
    w.wait_title("the second image", |t| t.contains("shelf_0002"));
    std::thread::sleep(Duration::from_millis(500));
    w.keys(&["ctrl+g"]);
    // The crops are read in the background.
    std::thread::sleep(Duration::from_millis(2500));
    w.keys(&["ctrl+a", key]);
    let start = Instant::now();
    let mut names = Vec::new();
    while start.elapsed() < Duration::from_secs(10) {
        names = w.saved_boxes(0, first.len());
        if names.iter().all(|c| c == target) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(names.len(), first.len());
    assert!(
        names.iter().all(|c| c == target),
        "every crop relabelled {target} through the gallery's keys: {first:?} → {names:?}"
    );
}

#[test]
fn ctrl_delete_and_shift_delete_reject_what_is_pending_in_the_real_window() {
    let Some(w) = Window::open(Setup {
        images: 2,
        keep_first_labels: false,
        single_class: true,
        classes: "Cola\nSprite\n",
        predictions: true,
        one_label_per_class: false,
    }) else {
        return;
    };
    // The model loads in the background and its cached predictions are read.
    std::thread::sleep(Duration::from_secs(3));
    w.keys(&["ctrl+Delete"]);
    w.wait_title("the next image", |t| t.contains("shelf_0002"));
    assert_eq!(rejections_of(&w.folder, 0, 2), (2, 2), "both rejected");
    std::thread::sleep(Duration::from_secs(2));
    w.keys(&["shift+Delete"]);
    assert_eq!(rejections_of(&w.folder, 1, 2), (2, 2), "both rejected");
    assert!(w.title().contains("shelf_0002"), "Shift+Delete stays");
    assert!(
        !xml_of(&w.folder, 0).exists() && !xml_of(&w.folder, 1).exists(),
        "no label was made"
    );
}

/// `k` reaches the app in the real window: with one box of each product labelled on the
/// first image, it proposes the others with their classes, and Shift+Enter takes them.
#[test]
fn k_finds_the_labelled_products_in_the_real_window() {
    let Some(w) = Window::open(Setup {
        images: 1,
        keep_first_labels: true,
        single_class: false,
        classes: "Cola\nSprite\nFanta\n",
        predictions: false,
        one_label_per_class: true,
    }) else {
        return;
    };
    let kept = class_names(&std::fs::read_to_string(xml_of(&w.folder, 0)).unwrap()).len();
    w.keys(&["k"]);
    // The match runs in the background.
    std::thread::sleep(Duration::from_millis(2500));
    w.keys(&["shift+Return"]);
    let start = Instant::now();
    let mut names = Vec::new();
    while start.elapsed() < Duration::from_secs(10) {
        names = w.saved_boxes(0, kept + 1);
        if names.len() > kept {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        names.len() > kept,
        "k and Shift+Enter added no box to the {kept} kept: {names:?}"
    );
}
