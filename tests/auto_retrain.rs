//! A model that keeps up: with "Retrain every N labelled images" on, labelling N images
//! through the app's commands starts a real fine-tune in the background (tiny Lite0 at
//! 128 px, one thread); its decision is logged, and the review model is the new one
//! exactly when it beat the old one on the hold-out.

use std::path::Path;
use std::time::{Duration, Instant};

use detlab::app::settings::Settings;
use detlab::app::{AppState, Command};
use detlab::detector::checkpoint::{ModelArch, ModelMeta};
use detlab::detector::inference::{Detector, DetectorOptions};
use detlab::formats::voc;

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
    let mut meta = ModelMeta::for_arch(ModelArch::Lite0, classes);
    meta.input_size = 128;
    let model = dir.path().join("model.safetensors");
    Detector::fresh_with_meta(
        meta,
        &DetectorOptions {
            fold_batchnorm: false,
            ..DetectorOptions::default()
        },
    )
    .unwrap()
    .to_model_file()
    .unwrap()
    .write(&model)
    .unwrap();

    let mut app = AppState::new(
        Settings::default(),
        dir.path().join("settings.json"),
        None,
        None,
    );
    app.review.default_requested = true;
    app.ui.training_form.threads = 1;
    app.ui.training_form.batch_size = 2;
    app.apply(Command::OpenFolder(images.clone()));
    app.load_model(model.clone());
    wait(&mut app, "the folder and the model", 60, |a| {
        a.review.model.is_some() && a.workspace.session.as_ref().is_some_and(|s| !s.scanning)
    });
    app.apply(Command::SetAutoRetrain(4));
    app.poll_background();
    assert!(app.auto_retrain.run.is_none(), "nothing labelled yet");

    // Label four images through the app, as a labeller would.
    for i in 0..4 {
        app.apply(Command::GoTo(i));
        wait(&mut app, "the image", 30, |a| {
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
        wait(&mut app, "the save", 30, |a| !a.workspace.labels.busy());
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
    let decision = app.auto_retrain.log.last().unwrap().clone();
    assert!(decision.contains("hold-out AP"), "{decision}");
    let swapped = decision.contains("the review model is now");
    let shown = app.review.model.as_ref().unwrap().path.clone();
    if swapped {
        assert_ne!(shown, model, "{decision}");
        assert!(
            shown.to_string_lossy().contains("gen-1"),
            "{}",
            shown.display()
        );
        assert_eq!(
            app.auto_retrain.previous_model.as_deref(),
            Some(model.as_path())
        );
        app.apply(Command::RevertAutoModel);
        wait(&mut app, "the previous model", 60, |a| {
            a.review.model_job.is_none() && a.review.model.as_ref().is_some_and(|m| m.path == model)
        });
    } else {
        assert!(decision.contains("kept"), "{decision}");
        assert_eq!(shown, model);
    }
    // The labels are untouched by the run.
    for i in 1..=4 {
        let saved = images.join(format!("shelf_{i:04}.xml"));
        let want = voc::read(&truth.join(format!("shelf_{i:04}.xml"))).unwrap();
        assert_eq!(voc::read(&saved).unwrap().boxes.len(), want.boxes.len());
    }
}
