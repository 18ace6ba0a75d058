//! The simulated labeller (`detlab bench labelling`) on a tiny folder whose action count
//! is known by hand: flat products on a plain wall, so a click grows the exact box and
//! "find known products" finds the exact copies.

use std::path::{Path, PathBuf};
use std::time::Duration;

use detlab::app::simulated_labeller::{simulate, SimOptions};
use detlab::dataset::{save_labels, ClassList, ImageAnnotation, LabelBox, LabelFormat};
use detlab::geometry::BoxXyxy;
use image::{Rgb, RgbImage};

/// A flat product: `(x, y, w, h, colour, class)`.
type Product<'a> = (u32, u32, u32, u32, [u8; 3], &'a str);

/// Writes `name` (200×120, grey wall) with `items` and its VOC labels.
fn shelf(dir: &Path, name: &str, items: &[Product]) {
    let mut img = RgbImage::from_pixel(200, 120, Rgb([128, 128, 128]));
    let mut ann = ImageAnnotation::new(name, 200, 120);
    for &(x, y, w, h, colour, class) in items {
        // A product: its colour, with a white label band a third of the way down.
        for yy in y..y + h {
            for xx in x..x + w {
                let label = yy >= y + h / 3 && yy < y + h / 3 + h / 5;
                img.put_pixel(xx, yy, Rgb(if label { [240, 240, 240] } else { colour }));
            }
        }
        ann.boxes.push(LabelBox::new(
            class,
            BoxXyxy::new(x as f64, y as f64, (x + w) as f64, (y + h) as f64),
        ));
    }
    let path = dir.join(name);
    img.save(&path).unwrap();
    save_labels(&path, None, LabelFormat::Voc, &ann, &mut ClassList::new()).unwrap();
}

fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("shelf");
    std::fs::create_dir_all(&images).unwrap();
    let red = [200, 30, 30];
    shelf(
        &images,
        "a.png",
        &[
            (20, 30, 30, 50, red, "Cola"),
            (80, 30, 30, 50, red, "Cola"),
            (140, 30, 30, 50, red, "Cola"),
        ],
    );
    shelf(
        &images,
        "b.png",
        &[(60, 20, 40, 60, [30, 60, 200], "Sprite")],
    );
    dir
}

fn run(assistants: bool) -> detlab::app::simulated_labeller::SimReport {
    run_in(&folder(), assistants)
}

fn run_in(dir: &tempfile::TempDir, assistants: bool) -> detlab::app::simulated_labeller::SimReport {
    let work = dir.path().join("work");
    simulate(
        &SimOptions {
            assistants,
            timeout: Duration::from_secs(60),
            ..SimOptions::new(dir.path().join("shelf"))
        },
        &work,
    )
    .unwrap()
}

#[test]
fn by_hand_it_costs_a_drag_per_box_and_a_key_per_class() {
    let r = run(false);
    // "Use default label" 1. a.png: Ctrl+Shift+A (continuous drawing) 1, drag + "Cola"
    // Enter Enter 4, then 2 drags that take the default label; next 1; b.png: drag 1 (it
    // gets Cola), Ctrl+E "Sprite" Enter Enter 4. 14 actions for 4 boxes, where LabelImg's
    // w + drag + class key per box takes 17.
    assert_eq!((r.images, r.boxes, r.missed, r.extra), (2, 4, 0, 0));
    assert_eq!(r.by_kind.get("draw_mode"), Some(&1), "{:?}", r.by_kind);
    assert_eq!(r.by_kind.get("draw"), Some(&4), "{:?}", r.by_kind);
    assert_eq!(r.actions, 14, "{:?}", r.by_kind);
    assert_eq!(r.manual_actions_per_box, 17.0 / 4.0);
}

#[test]
fn a_class_file_spares_the_typing() {
    let dir = folder();
    std::fs::write(
        dir.path().join("shelf").join("predefined_classes.txt"),
        "Cola\nSprite\n",
    )
    .unwrap();
    let r = run_in(&dir, false);
    // As above, but both classes are in the app's list from the start: the default label
    // is its first class, Cola (no key instead of 3), and "Sprite" is key 2 on the
    // selected box (1 instead of 4). 8 actions.
    assert_eq!((r.images, r.boxes, r.missed, r.extra), (2, 4, 0, 0));
    assert_eq!(r.by_kind.get("draw"), Some(&4), "{:?}", r.by_kind);
    assert_eq!(r.by_kind.get("relabel"), Some(&1), "{:?}", r.by_kind);
    assert_eq!(r.actions, 8, "{:?}", r.by_kind);
    assert_eq!(r.manual_actions_per_box, 17.0 / 4.0);
}

#[test]
fn click_and_find_known_cut_the_count() {
    let r = run(true);
    // "Use default label" 1. a.png: Ctrl+Shift+A 1, click + "Cola" Enter Enter 4; k 1;
    // accept all and next 1. b.png: click 1 (it gets Cola), Ctrl+E "Sprite" Enter Enter 4.
    // 13 actions for 4 boxes.
    assert_eq!((r.images, r.boxes, r.missed, r.extra), (2, 4, 0, 0));
    assert_eq!(r.by_kind.get("find_known"), Some(&1), "{:?}", r.by_kind);
    assert_eq!(
        r.by_kind.get("accept_all_next"),
        Some(&1),
        "{:?}",
        r.by_kind
    );
    assert_eq!(r.by_kind.get("click_box"), Some(&2), "{:?}", r.by_kind);
    assert_eq!(r.actions, 13, "{:?}", r.by_kind);
}

/// From zero with "Retrain every 3": after the third image the app trains a first model
/// (tiny Lite0 at 128 px, one thread). With no bar to clear it becomes the review model
/// and its AP on the three images not labelled yet is recorded; on trial, its verdict
/// waits for the next image; with the default bar (hold-out AP 0.2) a model this weak is
/// not shown. Every box ends up labelled.
#[test]
fn retraining_from_zero_trains_a_first_model_and_records_its_ap() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("shelf");
    detlab::demo::generate(&detlab::demo::DemoOptions {
        out_dir: images.clone(),
        images: 6,
        seed: 21,
        width: 256,
        height: 192,
    })
    .unwrap();
    let training = detlab::app::training::TrainingForm {
        input_size: 128,
        epochs: 2,
        batch_size: 2,
        threads: 1,
        freeze_backbone_epochs: 0,
        ..Default::default()
    };
    let run = |min_ap: f64, trial_images: usize, work: &str| {
        simulate(
            &SimOptions {
                timeout: Duration::from_secs(600),
                retrain_every: 3,
                training: training.clone(),
                first_model_min_ap: min_ap,
                trial_images: Some(trial_images),
                ..SimOptions::new(images.clone())
            },
            &dir.path().join(work),
        )
        .unwrap()
    };
    let r = run(0.0, 0, "shown");
    assert_eq!((r.images, r.missed, r.extra), (6, 0, 0), "{:?}", r.by_kind);
    assert_eq!(r.ap_over_time.len(), 1, "{:?}", r.retrain_log);
    let p = &r.ap_over_time[0];
    assert_eq!((p.labelled, p.generation), (3, 1), "{p:?}");
    assert!(
        p.swapped,
        "the first model becomes the review model: {:?}",
        r.retrain_log
    );
    assert_eq!(
        p.images, 3,
        "measured on the images not labelled yet: {p:?}"
    );
    assert!(
        (0.0..=1.0).contains(&p.ap) && (0.0..=1.0).contains(&p.ap50),
        "{p:?}"
    );
    assert!(
        r.retrain_log[0].contains("training a first lite0 model on 3 labelled images"),
        "{:?}",
        r.retrain_log
    );
    // The run's last epoch is shown, not the epoch a hold-out of a few images picked.
    assert!(
        r.retrain_log[1].contains("the review model is now")
            && r.retrain_log[1].contains("last.safetensors"),
        "{:?}",
        r.retrain_log
    );
    assert!(r.model_seconds > 0.0);

    // On trial over one image, the verdict comes when the labeller leaves the fourth.
    let tried = run(0.0, 1, "trial");
    assert_eq!((tried.images, tried.missed, tried.extra), (6, 0, 0));
    let p = &tried.ap_over_time[0];
    assert_eq!((p.labelled, p.generation), (4, 1), "{p:?}");
    // The AP is measured on the two images not labelled yet once the model is shown.
    assert_eq!(p.images, if p.swapped { 2 } else { 0 }, "{p:?}");
    let verdict = &tried.retrain_log[2];
    assert!(
        verdict.contains("on the 1 image labelled since it started"),
        "{:?}",
        tried.retrain_log
    );
    assert_eq!(
        p.swapped,
        verdict.contains("the review model is now"),
        "{verdict}"
    );

    let weak = run(detlab::app::auto_retrain::MIN_FIRST_MODEL_AP, 0, "weak");
    assert_eq!((weak.images, weak.missed, weak.extra), (6, 0, 0));
    let p = &weak.ap_over_time[0];
    assert!(!p.swapped && p.images == 0, "{p:?} {:?}", weak.retrain_log);
    assert!(
        weak.retrain_log[1].contains("below 0.2: not shown"),
        "{:?}",
        weak.retrain_log
    );
}

/// `images` small demo photos (320×240, seed 4) in `<dir>/shelf`.
fn small_demo_shelf(dir: &Path, images: usize) -> PathBuf {
    let out_dir = dir.join("shelf");
    detlab::demo::generate(&detlab::demo::DemoOptions {
        out_dir: out_dir.clone(),
        images,
        seed: 4,
        width: 320,
        height: 240,
    })
    .unwrap();
    out_dir
}

/// The Review panel's score threshold (`bench labelling --score`) decides which of the
/// model's predictions the labeller sees: at 1.0 none (every box drawn, nothing to accept
/// or reject), at 0.02 the shipped model's boxes on a demo shelf are reviewed.
#[test]
fn the_review_score_decides_which_predictions_are_reviewed() {
    tch::set_num_threads(1);
    let Some(model) = detlab::detector::inference::default_model_path() else {
        eprintln!("skipped: no shipped model (models/cola-sprite-lite0.safetensors)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let images = small_demo_shelf(dir.path(), 2);
    let run = |score: f32, work: &str| {
        simulate(
            &SimOptions {
                model: Some(model.clone()),
                assistants: false,
                review_score: score,
                ..SimOptions::new(images.clone())
            },
            &dir.path().join(work),
        )
        .unwrap()
    };
    let reviewed = [
        "accept",
        "accept_all",
        "accept_all_next",
        "reject",
        "redraw",
        "fix_drag",
    ];
    let count = |r: &detlab::app::simulated_labeller::SimReport| -> usize {
        reviewed.iter().filter_map(|k| r.by_kind.get(*k)).sum()
    };
    let none = run(1.0, "none");
    assert_eq!((none.missed, none.extra), (0, 0), "{:?}", none.by_kind);
    assert_eq!(count(&none), 0, "nothing shown at 1.0: {:?}", none.by_kind);
    let all = run(0.02, "all");
    assert_eq!((all.missed, all.extra), (0, 0), "{:?}", all.by_kind);
    assert!(
        count(&all) > 0,
        "predictions reviewed at 0.02: {:?}",
        all.by_kind
    );
    assert_eq!(all.boxes, none.boxes);
}

#[test]
fn a_folder_without_labels_is_refused_with_where_to_look() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("photos");
    std::fs::create_dir_all(&images).unwrap();
    RgbImage::from_pixel(64, 48, Rgb([90, 90, 90]))
        .save(images.join("a.png"))
        .unwrap();
    let err = simulate(&SimOptions::new(images), &dir.path().join("work")).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("no labelled box") && msg.contains("--labels"),
        "{msg}"
    );
}

/// The Review panel's TTA "auto" (the default) judges off against flip after four
/// labelled images, on those images, and logs the verdict; a TTA chosen by hand is
/// never judged. The per-image counts add up to the actions.
#[test]
fn auto_tta_judges_the_flip_on_the_labelled_images() {
    tch::set_num_threads(1);
    let Some(model) = detlab::detector::inference::default_model_path() else {
        eprintln!("skipped: no shipped model (models/cola-sprite-lite0.safetensors)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let images = small_demo_shelf(dir.path(), 5);
    let run = |tta: Option<detlab::detector::maths::tta::Tta>, work: &str| {
        simulate(
            &SimOptions {
                model: Some(model.clone()),
                tta,
                ..SimOptions::new(images.clone())
            },
            &dir.path().join(work),
        )
        .unwrap()
    };
    let auto = run(None, "auto");
    assert_eq!((auto.missed, auto.extra), (0, 0), "{:?}", auto.by_kind);
    assert_eq!(auto.tta_verdicts.len(), 1, "{:?}", auto.tta_verdicts);
    assert!(
        auto.tta_verdicts[0].contains("on the 4 images"),
        "{:?}",
        auto.tta_verdicts
    );
    assert_eq!(auto.per_image.len(), 5);
    let per_image: usize = auto.per_image.iter().map(|(_, _, a)| a).sum();
    let settings = auto.by_kind.get("settings").copied().unwrap_or(0);
    assert_eq!(per_image + settings, auto.actions, "{:?}", auto.per_image);
    let fixed = run(Some(detlab::detector::maths::tta::Tta::Off), "off");
    assert!(fixed.tta_verdicts.is_empty(), "{:?}", fixed.tta_verdicts);
}
