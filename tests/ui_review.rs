//! The review view and the training panel, driven by egui_kittest on the real app: a real
//! model file, real images, and the real on-disk candidate cache (written here with known
//! candidates, so every assertion knows which boxes must be shown).

mod common;

use common::wait_until;

use std::path::{Path, PathBuf};

use detlab::app::review::{RunScope, DEFAULT_REVIEW_TTA};
use detlab::app::training::RunStatus;
use detlab::app::{AppOptions, Command, Page};
use detlab::dataset::image_info::decode_upright_rgb;
use detlab::desktop::DetlabApp;
use detlab::detector::checkpoint::{ModelArch, ModelMeta};
use detlab::detector::inference::{Detector, DetectorOptions, PredictConfig};
use detlab::detector::maths::box_coding::XyxyF32;
use detlab::detector::maths::letterbox::Letterbox;
use detlab::detector::maths::postprocess::Candidates;
use detlab::review::{
    CachedPrediction, CandidateCache, ImageStamp, ModelId, PredictionState, ReviewLog, Verdict,
};
use egui::accesskit::Role;
use egui::{Key, Modifiers};
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;

struct Fixture {
    _dir: tempfile::TempDir,
    images: PathBuf,
    settings: PathBuf,
    model: PathBuf,
    classes: Vec<String>,
}

/// A candidate in the 128-px network input: `(x1, y1, x2, y2, score, class)`.
type Cand = (f32, f32, f32, f32, f32, u32);

/// Three unlabelled 320×240 demo images and a Lite0 model at 128 px; the cache holds
/// `per_image[i]` as image `i`'s candidates.
fn fixture(per_image: &[Vec<Cand>]) -> Fixture {
    fixture_with(per_image, false)
}

/// [`fixture`]; with `confident`, the model's class prior is 0.5 instead of 0.01, so that
/// its (random) predictions clear the review's score floor.
fn fixture_with(per_image: &[Vec<Cand>], confident: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("shelf");
    detlab::demo::generate(&detlab::demo::DemoOptions {
        out_dir: images.clone(),
        images: 3,
        seed: 11,
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
    let classes: Vec<String> = std::fs::read_to_string(images.join("predefined_classes.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let mut meta = ModelMeta::for_arch(ModelArch::Lite0, classes.clone());
    meta.input_size = 128;
    let options = DetectorOptions {
        fold_batchnorm: false,
        ..DetectorOptions::default()
    };
    let model = dir.path().join("model.safetensors");
    let mut file = Detector::fresh_with_meta(meta, &options)
        .unwrap()
        .to_model_file()
        .unwrap();
    if confident {
        let bias = file
            .tensors
            .iter_mut()
            .find(|t| t.name == "classifier.header.pointwise_conv.conv.bias")
            .unwrap();
        bias.data.fill(0);
    }
    file.write(&model).unwrap();
    let cache = CandidateCache::new(
        &images,
        &ModelId::of_file(&model)
            .unwrap()
            .with_tta(&DEFAULT_REVIEW_TTA),
    );
    for (i, cands) in per_image.iter().enumerate() {
        let name = format!("shelf_{:04}.jpg", i + 1);
        let mut sorted = cands.clone();
        sorted.sort_by(|a, b| b.4.total_cmp(&a.4));
        let candidates = Candidates::from_parts(
            sorted
                .iter()
                .map(|c| XyxyF32 {
                    x1: c.0,
                    y1: c.1,
                    x2: c.2,
                    y2: c.3,
                })
                .collect(),
            sorted.iter().map(|c| c.4).collect(),
            sorted.iter().map(|c| c.5).collect(),
            (0..sorted.len() as u32).collect(),
        )
        .unwrap();
        let entry = CachedPrediction {
            stamp: ImageStamp::of(&images.join(&name)).unwrap(),
            letterbox: Letterbox::new(320, 240, 128),
            candidates,
        };
        cache.store(Path::new(&name), &entry).unwrap();
    }
    let settings = dir.path().join("config/settings.json");
    Fixture {
        _dir: dir,
        images,
        settings,
        model,
        classes,
    }
}

/// The app on the fixture's folder, started with `args` (its `dir` is set here).
fn app(f: &Fixture, args: AppOptions, height: f32) -> Harness<'static, DetlabApp> {
    let settings = f.settings.clone();
    let args = AppOptions {
        dir: Some(f.images.clone()),
        ..args
    };
    Harness::builder()
        .with_size(egui::vec2(1280.0, height))
        .build_eframe(move |cc| DetlabApp::new(&cc.egui_ctx, args, settings))
}

fn harness(f: &Fixture) -> Harness<'static, DetlabApp> {
    let args = AppOptions {
        model: Some(f.model.clone()),
        ..AppOptions::default()
    };
    let mut h = app(f, args, 900.0);
    // These tests check the model's own boxes; `refined_boxes_fuse_the_candidates` checks
    // the refinement that is on by default.
    h.state_mut().state.review.refine_boxes = false;
    wait_until(
        &mut h,
        "the model, its cached predictions and the labels",
        |app| {
            let r = &app.state.review;
            app.state.workspace.doc.is_some()
                && r.model.is_some()
                && r.run.is_none()
                && !r.predictions.is_empty()
        },
    );
    h
}

/// `(class, score)` of the predictions shown on the current image, with their states.
fn shown(h: &Harness<'static, DetlabApp>) -> Vec<(usize, f32, PredictionState)> {
    h.state()
        .state
        .shown_predictions()
        .iter()
        .map(|p| (p.detection.class_id, p.detection.score, p.state))
        .collect()
}

fn labels(h: &Harness<'static, DetlabApp>) -> Vec<(String, [f64; 4])> {
    let doc = h.state().state.workspace.doc.as_ref().unwrap();
    doc.annotation
        .boxes
        .iter()
        .map(|b| {
            (
                b.class_name.clone(),
                [b.bbox.x1, b.bbox.y1, b.bbox.x2, b.bbox.y2],
            )
        })
        .collect()
}

/// Adds a label `[x1, y1, x2, y2]` of `class` to the open image, as a drawn box would.
fn add_label(h: &mut Harness<'static, DetlabApp>, class: &str, b: [f64; 4]) {
    let label = detlab::dataset::LabelBox::new(
        class,
        detlab::geometry::BoxXyxy::new(b[0], b[1], b[2], b[3]),
    );
    h.state_mut()
        .state
        .workspace
        .doc
        .as_mut()
        .unwrap()
        .edit(|a| a.boxes.push(label));
}

/// Presses `key`, then lets the label thread finish what it asked for (an image's labels
/// to read, a save).
fn press(h: &mut Harness<'static, DetlabApp>, key: Key) {
    h.key_press(key);
    h.run_steps(1); // the frame that handles the key
    wait_until(h, "the label files", |app| {
        !app.state.workspace.labels.busy()
    });
}

/// Image 1: a confident class-0 box, a near-duplicate of it (NMS removes it at IoU 0.5)
/// and a weaker class-1 box. Image 2: one class-1 box. Image 3: nothing.
/// A mouse drag from `a` to `b` over a few frames, as a hand makes it.
fn drag(h: &mut Harness<'static, DetlabApp>, a: egui::Pos2, b: egui::Pos2) {
    h.hover_at(a);
    h.run_steps(1);
    h.drag_at(a);
    h.run_steps(1);
    h.hover_at(a + (b - a) * 0.5);
    h.run_steps(1);
    h.hover_at(b);
    h.run_steps(1);
    h.drop_at(b);
    h.run_steps(2);
}

fn standard() -> Vec<Vec<Cand>> {
    vec![
        vec![
            (10.0, 10.0, 40.0, 70.0, 0.9, 0),
            (11.0, 11.0, 41.0, 71.0, 0.85, 0),
            (60.0, 10.0, 100.0, 60.0, 0.4, 1),
        ],
        vec![(20.0, 20.0, 60.0, 80.0, 0.8, 1)],
        vec![],
    ]
}

#[test]
fn sliders_refilter_the_cached_candidates() {
    // The standard image 1 plus a class-1 box exactly on the class-0 one.
    let mut cands = standard();
    cands[0].push((10.0, 10.0, 40.0, 70.0, 0.7, 1));
    let f = fixture(&cands);
    let mut h = harness(&f);
    let scores = |h: &Harness<'static, DetlabApp>| shown(h).iter().map(|p| p.1).collect::<Vec<_>>();
    assert_eq!(
        scores(&h),
        vec![0.9, 0.4],
        "score 0.3, class-agnostic NMS at IoU 0.5: the other class on the same box is a duplicate"
    );
    assert!(shown(&h).iter().all(|p| p.2 == PredictionState::Pending));
    h.get_by_role_and_label(Role::Slider, "score")
        .set_value_accesskit(0.5);
    h.run_steps(2);
    assert_eq!(scores(&h), vec![0.9], "score 0.5");
    h.get_by_role_and_label(Role::Slider, "NMS IoU")
        .set_value_accesskit(0.95);
    h.run_steps(2);
    assert_eq!(
        scores(&h),
        vec![0.9, 0.85],
        "IoU 0.95 lets the near-duplicate through"
    );
    h.get_by_label("Class-agnostic NMS").click_accesskit();
    h.run_steps(2);
    assert_eq!(
        scores(&h),
        vec![0.9, 0.85, 0.7],
        "per-class NMS keeps the other class on the same box"
    );
}

#[test]
fn accept_saves_a_label_and_reject_survives_a_restart() {
    let f = fixture(&standard());
    let xml = f.images.join("shelf_0001.xml");
    {
        let mut h = harness(&f);
        // A manual label the accepted prediction overlaps: it must stay as it is.
        add_label(&mut h, &f.classes[1], [20.0, 20.0, 110.0, 180.0]);
        press(&mut h, Key::Tab);
        assert_eq!(h.state().state.review.selected, Some(0));
        press(&mut h, Key::Enter);
        let l = labels(&h);
        assert_eq!(l.len(), 2, "{l:?}");
        assert_eq!(
            l[0].1,
            [20.0, 20.0, 110.0, 180.0],
            "the manual label is untouched"
        );
        // Input (10,10,40,70) at scale 0.4 → original (25,25,100,175).
        assert_eq!(l[1], (f.classes[0].clone(), [25.0, 25.0, 100.0, 175.0]));
        let text = std::fs::read_to_string(&xml).expect("accept saves the labels");
        assert!(
            text.contains("<xmin>25</xmin>") && text.contains("<ymax>175</ymax>"),
            "{text}"
        );
        assert_eq!(shown(&h)[0].2, PredictionState::Accepted);
        // The next pending one (class 1, 0.4) is selected; reject it with R.
        assert_eq!(h.state().state.review.selected, Some(1));
        press(&mut h, Key::R);
        assert_eq!(shown(&h).len(), 1, "the rejected prediction is hidden");
        wait_until(&mut h, "the review log on disk", |_| {
            ReviewLog::load(&f.images)
                .is_ok_and(|log| log.decisions(Path::new("shelf_0001.jpg")).len() == 2)
        });
    }
    let log = ReviewLog::load(&f.images).unwrap();
    let d = log.decisions(Path::new("shelf_0001.jpg"));
    assert_eq!(d[0].verdict, Verdict::Accepted);
    assert!(
        (d[0].score - 0.9).abs() < 1e-6,
        "provenance keeps the score"
    );
    assert_eq!(d[1].verdict, Verdict::Rejected);
    assert!(
        !std::fs::read_to_string(&xml).unwrap().contains("0.9"),
        "no provenance in the VOC file"
    );

    // Restart: the accepted box is a label, the rejected one stays hidden.
    let h = harness(&f);
    assert_eq!(labels(&h).len(), 2);
    assert_eq!(
        shown(&h).iter().map(|p| p.2).collect::<Vec<_>>(),
        vec![PredictionState::Accepted]
    );
}

#[test]
fn tab_walks_pending_predictions_across_images_and_digits_relabel() {
    let f = fixture(&standard());
    let mut h = harness(&f);
    let current = |h: &Harness<'static, DetlabApp>| h.state().state.workspace.current;
    assert_eq!(current(&h), Some(0));
    press(&mut h, Key::Tab);
    press(&mut h, Key::Tab);
    assert_eq!(
        (current(&h), h.state().state.review.selected),
        (Some(0), Some(1))
    );
    press(&mut h, Key::Tab);
    assert_eq!(
        current(&h),
        Some(1),
        "Tab moves on to the next image with a pending prediction"
    );
    assert_eq!(h.state().state.review.selected, Some(0));
    // Relabel with a number key: the label takes class 1's name and the decision is "fixed".
    press(&mut h, Key::Num1);
    let l = labels(&h);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].0, h.state().state.workspace.classes.names()[0]);
    assert_eq!(shown(&h)[0].2, PredictionState::Fixed);
    // Back to image 1 (wrapping past the empty image 3).
    press(&mut h, Key::Tab);
    assert_eq!(current(&h), Some(0));
    // The file list counts what is left to review on each image: two on image 1, none on
    // image 2 (relabelled) or image 3 (no predictions).
    let badges = |h: &Harness<'static, DetlabApp>| {
        h.query_all_by_label_contains(" pending")
            .filter_map(|n| n.accesskit_node().value()) // a label's text is its value
            .filter(|l| {
                l.split_once(' ')
                    .is_some_and(|(n, rest)| rest == "pending" && n.parse::<usize>().is_ok())
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(badges(&h), ["2 pending"]);
    // Shift+Enter accepts everything pending there.
    h.key_press_modifiers(Modifiers::SHIFT, Key::Enter);
    h.run_steps(2);
    assert_eq!(labels(&h).len(), 2);
    assert!(shown(&h).iter().all(|p| p.2 == PredictionState::Accepted));
    assert!(badges(&h).is_empty(), "{:?}", badges(&h));
}

/// Once the right predictions are taken, Shift+Delete rejects the rest of the image's
/// pending ones, and Ctrl+Delete does that and goes to the next unlabelled image; the
/// labels are untouched and each rejection is in the review log.
#[test]
fn shift_delete_rejects_the_rest_and_ctrl_delete_also_moves_on() {
    let f = fixture(&standard());
    let mut h = harness(&f);
    let current = |h: &Harness<'static, DetlabApp>| h.state().state.workspace.current;
    press(&mut h, Key::Tab);
    press(&mut h, Key::Enter);
    assert_eq!(labels(&h).len(), 1);
    assert!(shown(&h).iter().any(|p| p.2 == PredictionState::Pending));
    h.key_press_modifiers(Modifiers::SHIFT, Key::Delete);
    h.run_steps(2);
    assert_eq!(labels(&h).len(), 1, "the accepted label stays");
    assert_eq!(
        shown(&h).iter().map(|p| p.2).collect::<Vec<_>>(),
        vec![PredictionState::Accepted],
        "the rejected one is hidden"
    );
    assert_eq!(current(&h), Some(0), "Shift+Delete stays on the image");

    press(&mut h, Key::D);
    assert_eq!(current(&h), Some(1));
    assert_eq!(shown(&h).len(), 1);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Delete);
    h.run_steps(2);
    wait_until(&mut h, "the next image", |app| {
        app.state.workspace.current == Some(2) && app.state.workspace.doc.is_some()
    });
    wait_until(&mut h, "the review log on disk", |_| {
        ReviewLog::load(&f.images).is_ok_and(|log| {
            log.decisions(Path::new("shelf_0001.jpg")).len() == 2
                && log.decisions(Path::new("shelf_0002.jpg")).len() == 1
        })
    });
    let log = ReviewLog::load(&f.images).unwrap();
    assert_eq!(
        log.decisions(Path::new("shelf_0001.jpg"))[1].verdict,
        Verdict::Rejected
    );
    assert_eq!(
        log.decisions(Path::new("shelf_0002.jpg"))[0].verdict,
        Verdict::Rejected
    );
    assert!(
        !f.images.join("shelf_0002.xml").exists(),
        "nothing was labelled on image 2"
    );
}

/// "Run the model on all" predicts the images the cache lacks (in batches: one image per
/// CPU thread on the CPU engine) and caches them, and leaves the cached image alone. A
/// prediction made in a batch is the one the image gets alone.
#[test]
fn running_the_model_predicts_and_caches_what_the_cache_lacks() {
    let f = fixture_with(&standard()[..1], true);
    let mut h = harness(&f);
    let first = f.images.join("shelf_0001.jpg");
    let cached = h.state().state.review.predictions[&first].clone();
    h.get_by_label("all").click();
    h.run_steps(2);
    wait_until(&mut h, "the run", |app| app.state.review.run.is_none());
    let r = &h.state().state.review;
    assert_eq!(r.predictions.len(), 3);
    assert_eq!(
        r.predictions[&first].candidates.scores(),
        cached.candidates.scores(),
        "a cache hit is not predicted again"
    );
    let det = Detector::load(&f.model, &DetectorOptions::default()).unwrap();
    let cfg = PredictConfig {
        candidate_floor: Some(0.0),
        tta: DEFAULT_REVIEW_TTA,
        ..PredictConfig::default()
    };
    let cache = CandidateCache::new(
        &f.images,
        &ModelId::of_file(&f.model)
            .unwrap()
            .with_tta(&DEFAULT_REVIEW_TTA),
    );
    for name in ["shelf_0002.jpg", "shelf_0003.jpg"] {
        let path = f.images.join(name);
        let alone = det
            .predict_images(&[decode_upright_rgb(&path).unwrap()], &cfg)
            .unwrap()
            .pop()
            .unwrap();
        let got = &r.predictions[&path];
        let (a, b) = (got.candidates.scores(), alone.candidates.scores());
        assert!(!a.is_empty() && a.len() <= b.len());
        assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5));
        let on_disk = cache
            .load(Path::new(name), &ImageStamp::of(&path).unwrap())
            .unwrap()
            .expect("cached");
        assert_eq!(on_disk.candidates.scores(), a);
    }
}

/// A run reads each image's labels through the label thread, after the saves asked for
/// before it: a box saved just before the run starts is in what the run read.
#[test]
fn a_run_sees_the_box_saved_just_before_it() {
    let f = fixture(&standard());
    let mut h = harness(&f);
    let first = f.images.join("shelf_0001.jpg");
    assert_eq!(h.state().state.current_path(), Some(first.clone()));
    let bbox = detlab::geometry::BoxXyxy::new(30.0, 40.0, 90.0, 120.0);
    let state = &mut h.state_mut().state;
    state.apply(Command::AddBox {
        bbox,
        label: f.classes[0].clone(),
    });
    state.apply(Command::Save);
    state.apply(Command::RunModel(RunScope::All));
    wait_until(&mut h, "the run", |app| app.state.review.run.is_none());
    let read = &h.state().state.review.labels[&first];
    assert_eq!(read.len(), 1, "{read:?}");
    assert_eq!(
        (read[0].class_name.as_str(), read[0].bbox),
        (f.classes[0].as_str(), bbox)
    );
}

#[test]
fn dragging_a_prediction_fixes_it_into_a_label() {
    let f = fixture(&standard());
    let mut h = harness(&f);
    press(&mut h, Key::Tab);
    let v = h.state().state.ui.view;
    let at = |x: f64, y: f64| v.origin + egui::vec2(x as f32 * v.zoom, y as f32 * v.zoom);
    // Move the (25,25)-(100,175) prediction right by 40 px.
    let (a, b) = (at(60.0, 100.0), at(100.0, 100.0));
    drag(&mut h, a, b);
    let l = labels(&h);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        (l[0].1[0] - 65.0).abs() <= 1.0 && (l[0].1[2] - 140.0).abs() <= 1.0,
        "{l:?}"
    );
    assert_eq!(shown(&h)[0].2, PredictionState::Fixed);
    // Undo removes the label, and the prediction is pending again.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run_steps(2);
    assert!(labels(&h).is_empty());
    assert_eq!(shown(&h)[0].2, PredictionState::Pending);
}

#[test]
fn a_box_drawn_over_a_prediction_fixes_it_with_its_class() {
    let f = fixture(&standard());
    let mut h = harness(&f);
    let v = h.state().state.ui.view;
    let at = |x: f64, y: f64| v.origin + egui::vec2(x as f32 * v.zoom, y as f32 * v.zoom);
    // A tighter box over the (25,25)-(100,175) prediction, drawn with `w`.
    h.key_press(Key::W);
    h.run_steps(1);
    let (a, b) = (at(30.0, 30.0), at(95.0, 170.0));
    drag(&mut h, a, b);
    assert!(
        h.state().state.ui.pending_label.is_none(),
        "no label dialog: the prediction gives the class"
    );
    let l = labels(&h);
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0].0, f.classes[0], "{l:?}");
    for (got, want) in l[0].1.iter().zip([30.0, 30.0, 95.0, 170.0]) {
        assert!((got - want).abs() <= 1.0, "{l:?}");
    }
    assert_eq!(shown(&h)[0].2, PredictionState::Fixed);
    // The new label is selected: a class key relabels it.
    press(&mut h, Key::Num2);
    assert_eq!(labels(&h)[0].0, f.classes[1]);
}

#[test]
fn training_from_the_panel_streams_events_and_stops() {
    let f = fixture(&[]);
    // The training data needs labels: the generator's, from the same images made again.
    let labelled = f.images.with_file_name("labelled");
    detlab::demo::generate(&detlab::demo::DemoOptions {
        out_dir: labelled.clone(),
        images: 3,
        seed: 11,
        width: 320,
        height: 240,
    })
    .unwrap();
    for e in std::fs::read_dir(&labelled).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "xml") {
            std::fs::copy(&p, f.images.join(p.file_name().unwrap())).unwrap();
        }
    }
    let no_model = AppOptions {
        no_model: true,
        ..AppOptions::default()
    };
    let mut h = app(&f, no_model, 1000.0);
    wait_until(&mut h, "the folder", |app| {
        app.state.current_path().is_some()
    });
    h.get_by_label("Train").click();
    h.run_steps(2);
    assert_eq!(h.state().state.ui.page, Page::Train);
    {
        let form = &mut h.state_mut().state.ui.training_form;
        form.arch = "d0".into();
        form.from_scratch = true;
        form.input_size = 64;
        // Two images a batch: with one, BatchNorm's variance over the 1×1 top levels is
        // undefined and the run is (rightly) stopped as diverged.
        form.batch_size = 2;
        form.epochs = 50;
        form.threads = 1;
        form.val_fraction = 0.34;
        form.freeze_backbone_epochs = 0;
        // The engine settings this test was calibrated with (the default recipe's EMA
        // and learning rate are for fine-tuning, not a from-scratch D0 at batch 1).
        form.ema = false;
        form.lr = 1e-4;
    }
    h.get_by_label("Start").click();
    h.run_steps(2);
    wait_until(&mut h, "a few training steps in the plot", |app| {
        app.state
            .training
            .as_ref()
            .is_some_and(|r| r.history.loss.len() >= 3 || !r.status.is_active())
    });
    let run = h.state().state.training.as_ref().unwrap();
    assert_eq!(run.status, RunStatus::Training, "{:?}", run.log);
    assert!(run.history.loss.iter().all(|p| p[1].is_finite()));
    h.get_by_label("Stop").click();
    wait_until(&mut h, "the run to stop", |app| {
        app.state
            .training
            .as_ref()
            .is_some_and(|r| !r.status.is_active())
    });
    let run = h.state().state.training.as_ref().unwrap();
    assert!(
        matches!(run.status, RunStatus::Finished { .. }),
        "{:?} {:?}",
        run.status,
        run.log
    );
    assert!(
        run.log.iter().any(|l| l.starts_with("stopped")),
        "{:?}",
        run.log
    );
    assert!(run.out_dir.join("metrics.jsonl").is_file());
}

#[test]
fn the_shipped_model_is_the_default() {
    if !PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(detlab::detector::inference::SHIPPED_MODEL)
        .is_file()
    {
        common::missing(format!(
            "models/{} is absent",
            detlab::detector::inference::SHIPPED_MODEL
        ));
        return;
    }
    let f = fixture(&[]);
    let mut h = app(&f, AppOptions::default(), 900.0);
    wait_until(&mut h, "the shipped model", |app| {
        app.state.review.model.is_some() || app.state.review.model_error.is_some()
    });
    let r = &h.state().state.review;
    assert_eq!(r.model_error, None);
    let m = r.model.as_ref().unwrap();
    assert_eq!(
        m.path.file_name().unwrap(),
        detlab::detector::inference::SHIPPED_MODEL
    );
    assert_eq!(m.class_names, ["Cola", "Sprite"]);
}

/// An unreadable review log (read in the background) is reported, decisions stay in
/// memory, and the file is never overwritten.
#[test]
fn an_unreadable_review_log_is_left_untouched() {
    let f = fixture(&standard());
    let path = ReviewLog::path(&f.images);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"{\"version\": 1, \"images\": {\"a.jpg\": [tru").unwrap();
    let before = std::fs::read(&path).unwrap();
    let mut h = harness(&f);
    wait_until(&mut h, "the log error", |app| {
        app.state.review.log_error.is_some()
    });
    press(&mut h, Key::Tab);
    press(&mut h, Key::R);
    assert_eq!(shown(&h).len(), 1, "the rejection applies in memory");
    // Every write asked for is finished (what closing the window does): an unchanged
    // file means none was made, not that the writer was slow.
    h.state_mut().state.finish_writes();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the log file is untouched"
    );
}

#[test]
fn a_click_in_drawing_mode_takes_the_models_candidate_under_it() {
    // A class-1 candidate at score 0.1: under the review's 0.3, but a click is the user
    // saying "there is something here".
    let mut cands = standard();
    cands[0].push((60.0, 40.0, 90.0, 80.0, 0.1, 1));
    let f = fixture(&cands);
    let mut h = harness(&f);
    assert!(shown(&h).iter().all(|p| p.1 >= 0.3));
    let v = h.state().state.ui.view;
    // Input pixels × 320/128 = original pixels: (150, 100)–(225, 200).
    let at = v.origin + egui::vec2(187.0 * v.zoom, 160.0 * v.zoom);
    // "Use default label" on, with another class as the default: the model's class wins.
    h.state_mut().state.apply(Command::SetSingleClassMode(true));
    let other = f.classes[0].clone();
    h.state_mut().state.apply(Command::SetDefaultLabel(other));
    h.key_press(Key::W);
    h.run_steps(1);
    h.hover_at(at);
    h.run_steps(1);
    for pressed in [true, false] {
        h.event(egui::Event::PointerButton {
            pos: at,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: Modifiers::NONE,
        });
        h.run_steps(1);
    }
    h.run_steps(2);
    let l = labels(&h);
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(
        l[0].0, f.classes[1],
        "the candidate's class, not the default label"
    );
    for (got, want) in l[0].1.iter().zip([150.0, 100.0, 225.0, 200.0]) {
        assert!((got - want).abs() <= 1.0, "{l:?}");
    }
    assert!(!h.state().state.assist.busy(), "no pixel work was needed");
}

#[test]
fn refined_boxes_fuse_the_candidates_on_the_object() {
    let f = fixture(&standard());
    let mut h = harness(&f);
    h.state_mut().state.apply(Command::SetRefineBoxes(true));
    h.run_steps(1);
    let p = h.state().state.shown_predictions()[0].clone();
    // (10,10,40,70) at 0.9 and (11,11,41,71) at 0.85 in the 128-px input, × 2.5.
    let x1 = (25.0 * 0.9 + 27.5 * 0.85) / 1.75;
    assert!(
        (p.detection.bbox.x1 - x1).abs() < 1e-3,
        "{:?}",
        p.detection.bbox
    );
    assert_eq!(p.predicted.x1, 25.0, "the log keeps the model's own box");
    press(&mut h, Key::Tab);
    press(&mut h, Key::Enter);
    let l = labels(&h);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].1[0], x1.round(), "{l:?}");
    assert_eq!(
        shown(&h)[0].2,
        PredictionState::Accepted,
        "found again in the log"
    );
}

/// A prediction whose refined box (the one shown) overlaps a label of its class at
/// IoU ≥ 0.5 matches it, though the model's own box does not: no decision is asked for,
/// in the view or in the file list.
#[test]
fn a_refined_box_on_a_label_needs_no_decision() {
    // × 2.5: the model's box (25,25,100,175); fused with the 0.85 one, x from 29.9 to 104.9.
    let f = fixture(&[vec![
        (10.0, 10.0, 40.0, 70.0, 0.9, 0),
        (14.0, 10.0, 44.0, 70.0, 0.85, 0),
    ]]);
    let mut h = harness(&f);
    add_label(&mut h, &f.classes[0], [52.0, 25.0, 127.0, 175.0]);
    let image = f.images.join("shelf_0001.jpg");
    // The model's box: IoU 48/102 = 0.47 with the label.
    assert_eq!(shown(&h)[0].2, PredictionState::Pending);
    assert_eq!(h.state().state.pending_count(&image), 1);
    h.state_mut().state.apply(Command::SetRefineBoxes(true));
    h.run_steps(1);
    // The refined box: IoU 52.9/97.1 = 0.54.
    assert_eq!(shown(&h)[0].2, PredictionState::MatchesLabel);
    assert_eq!(
        h.state().state.pending_count(&image),
        0,
        "the file list agrees"
    );
}

/// Shift+Enter takes the better of two boxes on one object and leaves the other matching
/// the label it made; the panel says so before the key is pressed.
#[test]
fn accept_all_leaves_out_a_second_box_on_one_object() {
    let f = fixture(&standard());
    let mut h = harness(&f);
    h.get_by_role_and_label(Role::Slider, "NMS IoU")
        .set_value_accesskit(0.95);
    h.run_steps(2);
    let scores: Vec<f32> = shown(&h).iter().map(|p| p.1).collect();
    assert_eq!(scores, vec![0.9, 0.85, 0.4], "the near-duplicate is shown");
    assert!(shown(&h).iter().all(|p| p.2 == PredictionState::Pending));
    let state = &h.state().state;
    assert_eq!(
        state.accept_all_choice(&state.shown_predictions()),
        vec![0, 2]
    );
    assert!(h
        .query_by_label_contains("Accept all takes 2 (the rest overlap a better one)")
        .is_some());
    h.key_press_modifiers(Modifiers::SHIFT, Key::Enter);
    h.run_steps(2);
    wait_until(&mut h, "the label files", |app| {
        !app.state.workspace.labels.busy()
    });
    let l = labels(&h);
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(l[0], (f.classes[0].clone(), [25.0, 25.0, 100.0, 175.0]));
    assert_eq!(l[1].0, f.classes[1]);
    // The near-duplicate is found in the log as the accepted one (the log matches boxes
    // loosely); either way it asks for nothing more.
    assert!(
        shown(&h).iter().all(|p| !p.2.is_pending()),
        "{:?}",
        shown(&h)
    );
}

/// "Export model…" opens the export window beside the model; with "Raw" chosen, Export
/// writes an ONNX file ending before NMS and says so in the status bar. A second export to
/// a folder that does not exist fails with a message and writes nothing.
#[test]
fn the_export_model_window_writes_the_onnx_file() {
    use detlab::detector::onnx::proto::ModelProto;
    use prost::Message;

    let f = fixture(&standard());
    let mut h = harness(&f);
    let export = |h: &mut Harness<'static, DetlabApp>, raw: bool| {
        h.get_by_label("Export model…").click();
        h.run_steps(2);
        assert!(
            h.state().state.ui.onnx_export_form.is_some(),
            "the window opens"
        );
        if raw {
            h.get_by_label("Raw: every anchor's boxes and scores (own NMS)")
                .click();
            h.run_steps(1);
        }
        h.get_by_label("Export").click();
        h.run_steps(2);
        wait_until(h, "the ONNX export", |app| {
            app.state.review.onnx_export_job.is_none()
        });
    };
    export(&mut h, true);
    let out = f.model.with_extension("onnx");
    let model = ModelProto::decode(std::fs::read(&out).unwrap().as_slice()).unwrap();
    let graph = model.graph.unwrap();
    let outputs: Vec<_> = graph.output.iter().filter_map(|o| o.name.clone()).collect();
    assert_eq!(outputs, ["boxes", "scores"], "the raw ending");
    let classes = model
        .metadata_props
        .iter()
        .find(|p| p.key.as_deref() == Some("classes"))
        .and_then(|p| p.value.clone())
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Vec<String>>(&classes).unwrap(),
        f.classes
    );
    let said = h.state().state.messages.join("\n");
    assert!(
        said.contains("exported") && said.contains(".onnx"),
        "{said}"
    );

    // Into a folder that does not exist: an error, nothing written.
    let missing = f.images.join("no such folder").join("m.onnx");
    h.get_by_label("Export model…").click();
    h.run_steps(2);
    h.state_mut()
        .state
        .ui
        .onnx_export_form
        .as_mut()
        .unwrap()
        .out = missing.display().to_string();
    h.run_steps(1);
    h.get_by_label("Export").click();
    h.run_steps(2);
    wait_until(&mut h, "the failed export", |app| {
        app.state.review.onnx_export_job.is_none()
    });
    let said = h.state().state.messages.join("\n");
    assert!(said.contains("ONNX export failed"), "{said}");
    assert!(!missing.exists() && !missing.parent().unwrap().exists());
}

/// Choosing bf16 in the Review panel makes the next run predict in bf16 (where the CPU
/// has AVX512-BF16; elsewhere the choice is greyed out): float32's cached predictions
/// are no longer shown, and the new ones are a bf16 detector's, not fp32's.
#[test]
fn bf16_chosen_in_the_panel_runs_the_model_in_bf16() {
    use detlab::detector::precision::{cpu_has_bf16, Precision};

    let f = fixture_with(&standard()[..1], true);
    let mut h = harness(&f);
    let bf16 = h.get_by_label("bf16");
    if !cpu_has_bf16() {
        assert!(
            bf16.accesskit_node().is_disabled(),
            "bf16 offered on a CPU without it"
        );
        eprintln!("SKIP: this CPU has no AVX512-BF16 (checked that bf16 is greyed out)");
        return;
    }
    bf16.click();
    h.run_steps(2);
    assert_eq!(h.state().state.review.precision, Precision::Bf16);
    wait_until(&mut h, "the cached-only run", |app| {
        app.state.review.run.is_none()
    });
    assert!(
        h.state().state.review.predictions.is_empty(),
        "float32's cached predictions shown for bf16"
    );
    h.get_by_label("all").click();
    h.run_steps(2);
    wait_until(&mut h, "the run", |app| app.state.review.run.is_none());
    let cfg = PredictConfig {
        candidate_floor: Some(0.0),
        tta: DEFAULT_REVIEW_TTA,
        ..PredictConfig::default()
    };
    let scores = |precision: Precision, path: &Path| {
        let det = Detector::load(
            &f.model,
            &DetectorOptions {
                precision,
                ..DetectorOptions::default()
            },
        )
        .unwrap();
        det.predict_images(&[decode_upright_rgb(path).unwrap()], &cfg)
            .unwrap()
            .pop()
            .unwrap()
            .candidates
            .scores()
            .to_vec()
    };
    let path = f.images.join("shelf_0002.jpg");
    let got = h.state().state.review.predictions[&path]
        .candidates
        .scores();
    let (b, f32s) = (
        scores(Precision::Bf16, &path),
        scores(Precision::Fp32, &path),
    );
    // libtorch's thread count is process-wide and other tests change it, so the panel's
    // run and this one may split bf16's sums differently: the scores must be far closer
    // to bf16's than to fp32's, not bit-equal.
    // (The run caches the best 5,000 candidates of the two passes.)
    let max_diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    let (to_bf16, to_fp32) = (max_diff(got, &b), max_diff(got, &f32s));
    assert!(
        !got.is_empty() && got.len() <= b.len() && to_bf16 * 4.0 < to_fp32,
        "bf16's scores: {} of {}, {to_bf16} from bf16's, {to_fp32} from fp32's",
        got.len(),
        b.len()
    );
}

/// Test-time augmentation chosen in the panel: the predictions shown become those cached
/// for it (none yet); a run predicts with the mirror image too and caches the pooled
/// candidates, in photo pixels, under the setting's own id.
#[test]
fn tta_chosen_in_the_panel_is_predicted_and_cached_apart() {
    use detlab::detector::maths::tiling::identity_letterbox;
    use detlab::detector::maths::tta::Tta;

    let f = fixture_with(&standard()[..1], true);
    let mut h = harness(&f);
    assert_eq!(DEFAULT_REVIEW_TTA, Tta::Off);
    assert!(h.state().state.review.auto_tta, "auto is on at start");
    h.get_by_label("flip ≈2×").click();
    h.run_steps(2);
    wait_until(&mut h, "the cached-only run", |app| {
        app.state.review.run.is_none()
    });
    assert_eq!(h.state().state.review.tta, Tta::Flip);
    assert!(
        !h.state().state.review.auto_tta,
        "a setting chosen by hand ends auto"
    );
    h.get_by_label("auto: off or flip, by your labels").click();
    h.run_steps(2);
    assert!(
        h.state().state.review.auto_tta,
        "the checkbox turns it on again"
    );
    assert_eq!(h.state().state.review.tta, Tta::Flip, "until a verdict");
    assert!(
        h.state().state.review.predictions.is_empty(),
        "nothing is cached for the flip yet"
    );
    h.get_by_label("this image").click();
    h.run_steps(2);
    wait_until(&mut h, "the run", |app| app.state.review.run.is_none());
    let r = &h.state().state.review;
    assert_eq!(r.predictions.len(), 1);
    let (path, got) = r.predictions.iter().next().unwrap();
    assert_eq!(got.letterbox, identity_letterbox(320, 240));
    let det = Detector::load(&f.model, &DetectorOptions::default()).unwrap();
    let cfg = PredictConfig {
        candidate_floor: Some(0.0),
        tta: Tta::Flip,
        ..PredictConfig::default()
    };
    let alone = det
        .predict_images(&[decode_upright_rgb(path).unwrap()], &cfg)
        .unwrap()
        .pop()
        .unwrap();
    let (a, b) = (got.candidates.scores(), alone.candidates.scores());
    assert!(!a.is_empty() && a.len() <= b.len());
    assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5));
    let id = ModelId::of_file(&f.model).unwrap();
    let name = path.strip_prefix(&f.images).unwrap();
    let stamp = ImageStamp::of(path).unwrap();
    let on_disk = CandidateCache::new(&f.images, &id.with_tta(&Tta::Flip))
        .load(name, &stamp)
        .unwrap()
        .expect("cached under the flip's id");
    assert_eq!(on_disk.candidates.scores(), a);
    let plain = CandidateCache::new(&f.images, &id)
        .load(name, &stamp)
        .unwrap()
        .expect("the plain cache is kept");
    assert_ne!(plain.candidates.scores(), a);
}
