//! A model that keeps up: with "Retrain every N labelled images" on, labelling N images
//! through the app's commands starts a real fine-tune in the background (tiny Lite0 at
//! 128 px, one thread); its decision is logged, and the review model is the new one
//! exactly when it beat the old one on the hold-out and then, on trial, would have cost
//! fewer review actions on images it never saw. A process killed while a generation
//! trains loses no label and leaves no half-written model.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use detlab::app::auto_retrain::Trial;
use detlab::app::settings::Settings;
use detlab::app::{AppState, Command};
use detlab::detector::train::TrainEvent;
use detlab::formats::voc;

/// The app without a window, its settings in `dir`, not loading the shipped model.
fn headless_app(dir: &Path) -> AppState {
    let mut app = AppState::new(Settings::default(), dir.join("settings.json"), None, None);
    app.review.default_requested = true;
    app
}

fn wait(app: &mut AppState, what: &str, secs: u64, done: impl Fn(&AppState) -> bool) {
    let start = Instant::now();
    while !done(app) {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}; log: {:?}",
            app.auto_retrain.log
        );
        std::thread::sleep(Duration::from_millis(5));
        app.poll_background();
    }
}

#[test]
fn labelling_n_images_retrains_in_the_background_and_logs_the_decision() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("shelf");
    let truth = dir.path().join("truth");
    for out in [&images, &truth] {
        detlab::demo::generate(&detlab::demo::DemoOptions {
            out_dir: out.clone(),
            images: 6,
            seed: 21,
            width: 256,
            height: 192,
        })
        .unwrap();
    }
    for e in std::fs::read_dir(&images).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "xml") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let classes: Vec<String> = detlab::demo::DEMO_CLASSES
        .iter()
        .map(|c| c.to_string())
        .collect();
    let model = dir.path().join("model.safetensors");
    common::tiny_lite0(classes).write(&model).unwrap();

    let mut app = headless_app(dir.path());
    app.ui.training_form.threads = 1;
    app.ui.training_form.batch_size = 2;
    app.apply(Command::OpenFolder(images.clone()));
    app.load_model(model.clone());
    wait(&mut app, "the folder and the model", 60, |a| {
        a.review.model.is_some() && a.workspace.session.as_ref().is_some_and(|s| !s.scanning)
    });
    app.apply(Command::SetAutoRetrain(4));
    app.auto_retrain.trial_images = Some(1);
    // A fine-tune's epochs are capped: here at one batch of the two images.
    app.auto_retrain.max_images_per_epoch = 2;
    app.poll_background();
    assert!(app.auto_retrain.run.is_none(), "nothing labelled yet");

    // Label four images through the app, as a labeller would.
    let label = |app: &mut AppState, i: usize| {
        app.apply(Command::GoTo(i));
        wait(app, "the image", 30, |a| {
            a.workspace.doc.is_some() && a.workspace.current == Some(i)
        });
        let name = app.current_path().unwrap();
        let xml = truth.join(Path::new(name.file_name().unwrap()).with_extension("xml"));
        for b in voc::read(&xml).unwrap().boxes {
            app.apply(Command::AddBox {
                bbox: b.bbox,
                label: b.class_name,
            });
        }
        app.apply(Command::Save);
        wait(app, "the save", 30, |a| !a.workspace.labels.busy());
    };
    for i in 0..4 {
        label(&mut app, i);
        if i < 3 {
            assert!(
                app.auto_retrain.run.is_none(),
                "started after {} images",
                i + 1
            );
        }
    }
    wait(&mut app, "the generation to start", 30, |a| {
        a.auto_retrain.run.is_some()
    });
    assert!(
        app.auto_retrain.log[0].contains("generation 1"),
        "{:?}",
        app.auto_retrain.log
    );
    // The window is never blocked meanwhile: the app still answers commands.
    app.apply(Command::GoTo(4));
    wait(&mut app, "the generation to finish", 600, |a| {
        a.auto_retrain.run.is_none() && a.review.model_job.is_none()
    });
    let mut decision = app.auto_retrain.log.last().unwrap().clone();
    assert!(decision.contains("hold-out AP"), "{decision}");
    let metrics = files_under(&images.join(".detlab").join("auto"))
        .into_iter()
        .find(|p| p.ends_with("metrics.jsonl"))
        .expect("the generation's metrics.jsonl");
    let (train_images, steps_per_epoch) = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .find_map(|l| match serde_json::from_str(l).unwrap() {
            TrainEvent::Started {
                train_images,
                steps_per_epoch,
                ..
            } => Some((train_images, steps_per_epoch)),
            _ => None,
        })
        .expect("a started event");
    assert!(train_images > 2, "{train_images} training images");
    assert_eq!(steps_per_epoch, 1);
    if decision.contains("on trial over the next 1 image labelled") {
        // Better on the hold-out: judged on the next image once the labeller leaves it,
        // with the last epoch's weights (a few hold-out images do not pick the epoch).
        assert!(app.review.model.as_ref().is_some_and(|m| m.path == model));
        let candidate = &app.auto_retrain.trial.as_ref().unwrap().candidate;
        assert!(
            candidate.ends_with("last.safetensors"),
            "{}",
            candidate.display()
        );
        label(&mut app, 4);
        app.poll_background();
        assert!(
            app.auto_retrain
                .trial
                .as_ref()
                .is_some_and(|t| t.job.is_none()),
            "the open image is not judged"
        );
        app.apply(Command::GoTo(5));
        wait(&mut app, "the trial", 300, |a| {
            a.auto_retrain.trial.is_none() && a.review.model_job.is_none()
        });
        decision = app.auto_retrain.log.last().unwrap().clone();
        assert!(
            decision.contains("on the 1 image labelled since it started"),
            "{decision}"
        );
    }
    assert_eq!(app.auto_retrain.decided, 1, "{decision}");
    let swapped = decision.contains("the review model is now");
    let shown = app.review.model.as_ref().unwrap().path.clone();
    if swapped {
        assert_ne!(shown, model, "{decision}");
        assert!(
            shown.to_string_lossy().contains("gen-1"),
            "{}",
            shown.display()
        );
        assert!(shown.ends_with("last.safetensors"), "{}", shown.display());
        assert_eq!(
            app.auto_retrain.previous_model.as_deref(),
            Some(model.as_path())
        );
        app.apply(Command::RevertAutoModel);
        wait(&mut app, "the previous model", 60, |a| {
            a.review.model_job.is_none() && a.review.model.as_ref().is_some_and(|m| m.path == model)
        });
    } else {
        assert!(
            decision.contains("kept") || decision.contains("not shown"),
            "{decision}"
        );
        assert_eq!(shown, model);
    }
    // The labels are untouched by the run.
    for i in 1..=4 {
        let saved = images.join(format!("shelf_{i:04}.xml"));
        let want = voc::read(&truth.join(format!("shelf_{i:04}.xml"))).unwrap();
        assert_eq!(voc::read(&saved).unwrap().boxes.len(), want.boxes.len());
    }
}

/// A model on trial is judged on the labelled images the labeller has left (not the one
/// open): on three `cola-sprite/val` photos where the shipped model's 8 boxes need no fix
/// at score 0.3 (chosen so), it beats drawing every box by hand and becomes the review
/// model; an untrained one, which shows nothing at the review score, only ties and is not
/// shown.
#[test]
fn a_model_on_trial_is_shown_only_if_it_would_have_saved_review_actions() {
    tch::set_num_threads(1);
    let shared = require!(common::shared_dir(), "../shared");
    let val = shared.join("datasets/cola-sprite/val");
    let annotations = shared.join("datasets/cola-sprite/annotations");
    let shipped = require!(
        detlab::detector::inference::default_model_path(),
        "the shipped model (models/)"
    );
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("val");
    std::fs::create_dir_all(&images).unwrap();
    for name in ["002", "072", "086", "100"] {
        std::fs::copy(
            val.join(format!("{name}.jpg")),
            images.join(format!("{name}.jpg")),
        )
        .unwrap();
        std::fs::copy(
            annotations.join(format!("{name}.xml")),
            images.join(format!("{name}.xml")),
        )
        .unwrap();
    }
    let untrained = dir.path().join("untrained.safetensors");
    common::tiny_lite0(vec!["cola".to_string(), "sprite".to_string()])
        .write(&untrained)
        .unwrap();

    let mut app = headless_app(dir.path());
    app.apply(Command::OpenFolder(images.clone()));
    wait(&mut app, "the folder", 60, |a| {
        a.workspace.doc.is_some() && a.workspace.session.as_ref().is_some_and(|s| !s.scanning)
    });
    for (generation, candidate, shown) in [(1, &untrained, false), (2, &shipped, true)] {
        app.auto_retrain.trial = Some(Trial {
            generation,
            candidate: candidate.clone(),
            folder: app.workspace.session.as_ref().unwrap().root.clone(),
            hold_out: "hold-out AP –".into(),
            labelled_before: Default::default(),
            images_needed: 3,
            job: None,
        });
        wait(&mut app, "the verdict", 300, |a| {
            a.auto_retrain.trial.is_none() && a.review.model_job.is_none()
        });
        let line = app.auto_retrain.log.last().unwrap().clone();
        assert_eq!(app.auto_retrain.decided, generation);
        assert!(
            line.contains("on the 3 images labelled since it started"),
            "the open image is not judged: {line}"
        );
        let costs: Vec<usize> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        // "generation g: …; on the 3 images … (B boxes) … cost C review actions against D"
        let (boxes, with, without) = (costs[2], costs[3], costs[4]);
        assert_eq!(without, boxes, "no model: one drawn box per label: {line}");
        assert_eq!(with < without, shown, "{line}");
        assert_eq!(line.contains("the review model is now"), shown, "{line}");
        assert_eq!(
            app.review.model.as_ref().map(|m| &m.path),
            shown.then_some(candidate),
            "{line}"
        );
    }
}

/// The files under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_kill_during_a_retraining_generation_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("shelf");
    detlab::demo::generate(&detlab::demo::DemoOptions {
        out_dir: images.clone(),
        images: 8,
        seed: 5,
        width: 256,
        height: 192,
    })
    .unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // The simulated labeller labels through the app's commands with "Retrain every 3"
    // from zero; the first generation (the Train page's defaults) takes minutes.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_detlab-torch"))
        .args(["bench", "labelling", "--images"])
        .arg(&images)
        .args([
            "--from-scratch",
            "--retrain-every",
            "3",
            "--assistants-only",
            "--device",
            "cpu",
        ])
        .env("TMPDIR", &tmp)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let work = tmp.join(format!("detlab-bench-labelling-{}-true", child.id()));
    let auto = work.join("labels").join(".detlab").join("auto");
    let start = Instant::now();
    let mut training = false;
    while start.elapsed() < Duration::from_secs(300) {
        // The run folder holds its metrics log once the run has prepared the data.
        if !files_under(&auto).is_empty() {
            training = true;
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the bench ended before its first generation"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(3));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(training, "no generation started within 300 s");

    // Every label written so far is whole and is the oracle's.
    let labels: Vec<_> = files_under(&work.join("labels"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    assert!(labels.len() >= 3, "{labels:?}");
    for saved in &labels {
        let got = voc::read(saved).unwrap_or_else(|e| panic!("{}: {e}", saved.display()));
        let want = voc::read(&images.join(saved.file_name().unwrap())).unwrap();
        assert_eq!(got.boxes.len(), want.boxes.len(), "{}", saved.display());
    }
    // A model file in the generation's folder is complete (temporary files aside).
    for f in files_under(&auto) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".safetensors") {
            continue;
        }
        if name == "resume.safetensors" {
            // The optimiser's state: whole tensors, whatever their metadata.
            tch::Tensor::read_safetensors(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        } else {
            detlab::detector::checkpoint::ModelFile::read(&f)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        }
    }
}

/// Exiting stops a run in progress and waits for its thread: a training thread that
/// outlives the process would find libtorch torn down (a panic on the way out).
#[test]
fn exit_stops_and_joins_a_run_in_progress() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("shelf");
    detlab::demo::generate(&detlab::demo::DemoOptions {
        out_dir: images.clone(),
        images: 4,
        seed: 9,
        width: 256,
        height: 192,
    })
    .unwrap();
    let form = detlab::app::training::TrainingForm {
        input_size: 128,
        epochs: 500,
        batch_size: 2,
        threads: 1,
        out_dir: dir.path().join("run").to_string_lossy().into_owned(),
        ..Default::default()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    tx.send(()).unwrap();
    let mut run = detlab::app::training::TrainingRun::start(&form, images, None, false, rx, None);
    let start = Instant::now();
    while run.history.epoch < 1 {
        assert!(start.elapsed() < Duration::from_secs(300), "no epoch");
        std::thread::sleep(Duration::from_millis(20));
        run.poll();
        assert!(run.status.is_active(), "{:?}", run.log);
    }
    assert!(run.stop_and_join(Duration::from_secs(60)), "still running");
    run.poll();
    assert!(!run.status.is_active(), "{:?}", run.status);
}
