//! Two writers on one folder: two app windows (two headless `AppState`s driven through
//! `Command`s), or the app and `detlab convert`. Nothing either writes may be lost
//! without a word: changes that do not conflict are merged, a real conflict keeps both
//! versions and says so, and the review log merges per decision.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use detlab::app::session::ChangedElsewhere;
use detlab::app::settings::Settings;
use detlab::app::{AppState, Command};
use detlab::dataset::{load_labels, ClassList, ImageAnnotation, LabelBox, LabelFormat};
use detlab::geometry::BoxXyxy;

struct Folder {
    _dir: tempfile::TempDir,
    root: PathBuf,
    images: PathBuf,
}

/// Two unlabelled 320×240 demo images.
fn folder() -> Folder {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("shelf");
    detlab::demo::generate(&detlab::demo::DemoOptions {
        out_dir: images.clone(),
        images: 2,
        seed: 7,
        width: 320,
        height: 240,
    })
    .unwrap();
    for e in std::fs::read_dir(&images).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "xml") {
            std::fs::remove_file(p).unwrap();
        }
    }
    Folder {
        root: dir.path().to_path_buf(),
        _dir: dir,
        images,
    }
}

fn wait(app: &mut AppState, what: &str, done: impl Fn(&AppState) -> bool) {
    let start = Instant::now();
    loop {
        app.poll_background();
        if done(app) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A window (autosave on, VOC) on the folder, showing its first image.
fn window(f: &Folder, name: &str) -> AppState {
    let settings = Settings {
        autosave: true,
        format: LabelFormat::Voc,
        ..Settings::default()
    };
    let path = f.root.join(format!("{name}-settings.json"));
    let mut app = AppState::new(settings, path, None, None);
    app.review.default_requested = true; // no shipped model in these tests
    app.apply(Command::OpenFolder(f.images.clone()));
    wait(&mut app, "the first image's labels", |a| {
        a.workspace.doc.is_some() && a.workspace.session.as_ref().is_some_and(|s| !s.scanning)
    });
    app
}

/// Waits until every label write of `app` is done.
fn settle(app: &mut AppState) {
    app.flush_labels();
    wait(app, "the label thread", |a| !a.workspace.labels.busy());
}

fn image(f: &Folder, i: usize) -> PathBuf {
    f.images.join(format!("shelf_{:04}.jpg", i + 1))
}

fn boxes_on_disk(image: &Path) -> Vec<(String, [f64; 4])> {
    load_labels(image, None)
        .unwrap()
        .map(|l| l.annotation.boxes)
        .unwrap_or_default()
        .into_iter()
        .map(|b| (b.class_name, [b.bbox.x1, b.bbox.y1, b.bbox.x2, b.bbox.y2]))
        .collect()
}

fn add_box(app: &mut AppState, label: &str, b: [f64; 4]) {
    app.apply(Command::AddBox {
        bbox: BoxXyxy::new(b[0], b[1], b[2], b[3]),
        label: label.into(),
    });
}

fn write_voc(image: &Path, boxes: &[(&str, [f64; 4])]) {
    let mut ann = ImageAnnotation::new(image.file_name().unwrap().to_string_lossy(), 320, 240);
    for (c, b) in boxes {
        ann.boxes
            .push(LabelBox::new(*c, BoxXyxy::new(b[0], b[1], b[2], b[3])));
    }
    detlab::dataset::save_labels(image, None, LabelFormat::Voc, &ann, &mut ClassList::new())
        .unwrap();
}

#[test]
fn boxes_added_in_two_windows_are_both_saved() {
    let f = folder();
    // B loaded the image before A saved.
    let mut a = window(&f, "a");
    let mut b = window(&f, "b");
    // B is told that A has the folder open (the advisory marker in .detlab/open/).
    assert_eq!(b.workspace.others_open.len(), 1);
    assert_eq!(b.workspace.others_open[0].pid, std::process::id());
    assert!(
        b.messages.iter().any(|m| m.contains("also open in detlab")),
        "{:?}",
        b.messages
    );
    add_box(&mut a, "cola", [10.0, 10.0, 60.0, 90.0]);
    a.apply(Command::Next);
    settle(&mut a);
    assert_eq!(boxes_on_disk(&image(&f, 0)).len(), 1);
    add_box(&mut b, "fanta", [150.0, 20.0, 220.0, 120.0]);
    b.apply(Command::Next);
    settle(&mut b);
    let on_disk = boxes_on_disk(&image(&f, 0));
    assert_eq!(
        on_disk,
        vec![
            ("fanta".to_string(), [150.0, 20.0, 220.0, 120.0]),
            ("cola".to_string(), [10.0, 10.0, 60.0, 90.0]),
        ],
        "A's box must survive B's save"
    );
    assert!(
        b.messages.iter().any(|m| m.contains("merged")),
        "B is told: {:?}",
        b.messages
    );
    let entry = &b.workspace.session.as_ref().unwrap().images[0];
    assert_eq!(entry.elsewhere, Some(ChangedElsewhere::Merged));
    assert!(b.error.is_none(), "{:?}", b.error);
}

#[test]
fn a_box_changed_differently_in_two_windows_keeps_both_versions_and_says_so() {
    let f = folder();
    let first = image(&f, 0);
    write_voc(&first, &[("cola", [10.0, 10.0, 60.0, 90.0])]);
    let mut a = window(&f, "a");
    let mut b = window(&f, "b");
    // A moves the box right, B moves it down; A saves first.
    a.apply(Command::BeginBoxDrag(0));
    a.apply(Command::DragBox {
        index: 0,
        bbox: BoxXyxy::new(20.0, 10.0, 70.0, 90.0),
    });
    a.apply(Command::Next);
    settle(&mut a);
    b.apply(Command::BeginBoxDrag(0));
    b.apply(Command::DragBox {
        index: 0,
        bbox: BoxXyxy::new(10.0, 20.0, 60.0, 100.0),
    });
    b.apply(Command::Next);
    settle(&mut b);
    // The label file holds B's version (the last to save), A's is kept beside it.
    assert_eq!(
        boxes_on_disk(&first),
        vec![("cola".to_string(), [10.0, 20.0, 60.0, 100.0])]
    );
    let theirs = f.images.join("shelf_0001.theirs.xml");
    let kept = detlab::dataset::read_label_file(&first, &theirs, LabelFormat::Voc).unwrap();
    assert_eq!(kept.boxes[0].bbox, BoxXyxy::new(20.0, 10.0, 70.0, 90.0));
    // B is told, and the file list marks the image.
    let error = b.error.clone().expect("a conflict is shown as an error");
    assert!(
        error.contains("conflict") && error.contains("shelf_0001.theirs.xml"),
        "{error}"
    );
    assert_eq!(b.workspace.conflicts.len(), 1);
    assert_eq!(
        b.workspace.session.as_ref().unwrap().images[0].elsewhere,
        Some(ChangedElsewhere::Conflict(theirs))
    );
    // The copy is no image's label file: the folder still lists two images.
    assert_eq!(b.workspace.image_count(), 2);
    // B takes A's version: it replaces the label file, and the copy goes.
    b.apply(Command::ResolveConflict {
        index: 0,
        take_theirs: true,
    });
    assert_eq!(
        boxes_on_disk(&first),
        vec![("cola".to_string(), [20.0, 10.0, 70.0, 90.0])]
    );
    assert!(!f.images.join("shelf_0001.theirs.xml").exists());
    assert!(b.workspace.conflicts.is_empty());
    assert_eq!(
        b.workspace.session.as_ref().unwrap().images[0].elsewhere,
        None
    );
}

#[test]
fn a_window_reloads_labels_changed_elsewhere_when_not_edited() {
    let f = folder();
    let mut a = window(&f, "a");
    let mut b = window(&f, "b");
    add_box(&mut a, "cola", [10.0, 10.0, 60.0, 90.0]);
    a.apply(Command::Save);
    settle(&mut a);
    b.check_disk();
    wait(&mut b, "the reload", |b| {
        b.workspace
            .doc
            .as_ref()
            .is_some_and(|d| d.annotation.boxes.len() == 1)
    });
    assert_eq!(
        b.workspace.session.as_ref().unwrap().images[0].elsewhere,
        Some(ChangedElsewhere::Changed)
    );
    assert!(!b.workspace.doc.as_ref().unwrap().is_dirty());
    // Edited here meanwhile: not reloaded, merged at the save.
    add_box(&mut b, "fanta", [150.0, 20.0, 220.0, 120.0]);
    add_box(&mut a, "sprite", [100.0, 150.0, 140.0, 230.0]);
    a.apply(Command::Save);
    settle(&mut a);
    b.check_disk();
    settle(&mut b);
    assert_eq!(b.workspace.doc.as_ref().unwrap().annotation.boxes.len(), 2);
    b.apply(Command::Save);
    settle(&mut b);
    assert_eq!(boxes_on_disk(&image(&f, 0)).len(), 3);
    assert_eq!(
        b.workspace.doc.as_ref().unwrap().annotation.boxes.len(),
        3,
        "the window shows the merged labels"
    );
}

#[test]
fn the_app_notices_detlab_convert_writing_into_its_folder() {
    let f = folder();
    let first = image(&f, 0);
    write_voc(&first, &[("cola", [10.0, 10.0, 60.0, 90.0])]);
    let mut app = window(&f, "a");
    add_box(&mut app, "fanta", [150.0, 20.0, 220.0, 120.0]);
    // Meanwhile `detlab convert` writes VOC files from a YOLO folder into the app's folder.
    let yolo = f.root.join("yolo");
    std::fs::create_dir_all(&yolo).unwrap();
    std::fs::write(yolo.join("classes.txt"), "sprite\n").unwrap();
    std::fs::write(yolo.join("shelf_0001.txt"), "0 0.5 0.5 0.25 0.25\n").unwrap();
    detlab::commands::convert::run(detlab::commands::convert::ConvertArgs {
        from: detlab::commands::convert::FormatArg::Yolo,
        to: detlab::commands::convert::FormatArg::Voc,
        images: f.images.clone(),
        labels: Some(yolo),
        coco: None,
        out: f.images.clone(),
        classes: None,
    })
    .unwrap();
    let converted = boxes_on_disk(&first);
    assert!(
        converted.iter().any(|(c, _)| c == "sprite"),
        "{converted:?}"
    );
    app.apply(Command::Next);
    settle(&mut app);
    let on_disk = boxes_on_disk(&first);
    let classes: Vec<&str> = on_disk.iter().map(|(c, _)| c.as_str()).collect();
    assert!(
        classes.contains(&"fanta") && classes.contains(&"sprite"),
        "both the app's and convert's boxes: {on_disk:?}"
    );
    assert!(
        app.messages.iter().any(|m| m.contains("merged")),
        "{:?}",
        app.messages
    );
}

/// A Lite0 model at 128 px for the demo classes, and the candidate cache holding one
/// confident class-0 candidate per image (so no inference runs).
fn model_with_cached_predictions(f: &Folder) -> PathBuf {
    use detlab::detector::checkpoint::{ModelArch, ModelMeta};
    use detlab::detector::inference::{Detector, DetectorOptions};
    use detlab::detector::maths::box_coding::XyxyF32;
    use detlab::detector::maths::letterbox::Letterbox;
    use detlab::detector::maths::postprocess::Candidates;
    use detlab::review::{CachedPrediction, CandidateCache, ImageStamp, ModelId};

    let classes: Vec<String> = std::fs::read_to_string(f.images.join("predefined_classes.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let mut meta = ModelMeta::for_arch(ModelArch::Lite0, classes);
    meta.input_size = 128;
    let options = DetectorOptions {
        fold_batchnorm: false,
        ..DetectorOptions::default()
    };
    let model = f.root.join("model.safetensors");
    Detector::fresh_with_meta(meta, &options)
        .unwrap()
        .to_model_file()
        .unwrap()
        .write(&model)
        .unwrap();
    let cache = CandidateCache::new(
        &f.images,
        &ModelId::of_file(&model)
            .unwrap()
            .with_tta(&detlab::app::review::DEFAULT_REVIEW_TTA),
    );
    for i in 0..2 {
        let name = format!("shelf_{:04}.jpg", i + 1);
        let candidates = Candidates::from_parts(
            vec![XyxyF32 {
                x1: 10.0,
                y1: 10.0,
                x2: 40.0,
                y2: 70.0,
            }],
            vec![0.9],
            vec![0],
            vec![0],
        )
        .unwrap();
        let entry = CachedPrediction {
            stamp: ImageStamp::of(&f.images.join(&name)).unwrap(),
            letterbox: Letterbox::new(320, 240, 128),
            candidates,
        };
        cache.store(Path::new(&name), &entry).unwrap();
    }
    model
}

/// A window with the model loaded and its cached predictions shown.
fn reviewing_window(f: &Folder, name: &str, model: &Path) -> AppState {
    let mut app = window(f, name);
    app.apply(Command::LoadModel(model.to_path_buf()));
    wait(&mut app, "the model and its cached predictions", |a| {
        a.review.model.is_some() && a.review.run.is_none() && !a.shown_predictions().is_empty()
    });
    app
}

#[test]
fn predictions_accepted_in_two_windows_keep_both_decisions() {
    use detlab::review::{ReviewLog, Verdict};
    let f = folder();
    let model = model_with_cached_predictions(&f);
    // Both windows read the (empty) review log before either decides.
    let mut a = reviewing_window(&f, "a", &model);
    let mut b = reviewing_window(&f, "b", &model);
    b.apply(Command::Next);
    wait(&mut b, "the second image", |b| {
        b.workspace.doc.is_some() && !b.shown_predictions().is_empty()
    });
    a.apply(Command::AcceptPrediction {
        index: 0,
        class: None,
        bbox: None,
    });
    settle(&mut a);
    a.finish_writes();
    assert_eq!(
        ReviewLog::load(&f.images)
            .unwrap()
            .decisions(Path::new("shelf_0001.jpg"))
            .len(),
        1
    );
    b.apply(Command::AcceptPrediction {
        index: 0,
        class: None,
        bbox: None,
    });
    settle(&mut b);
    b.finish_writes();
    let log = ReviewLog::load(&f.images).unwrap();
    for image in ["shelf_0001.jpg", "shelf_0002.jpg"] {
        let d = log.decisions(Path::new(image));
        assert_eq!(d.len(), 1, "{image}: {log:?}");
        assert_eq!(d[0].verdict, Verdict::Accepted);
    }
    // B's window now knows A's decision too.
    b.poll_background();
    assert_eq!(b.review.log.decisions(Path::new("shelf_0001.jpg")).len(), 1);
}
