//! The Train page's cross-validation, driven by egui_kittest on the real app: the
//! "Cross-validation folds" field set to 2 runs the library's k-fold cross-validation (the
//! run of `detlab train --folds 2`) on the run's thread; the page shows the fold in
//! progress, then the table's mean ± sd and the final model. A D0 from scratch at 64 px,
//! one epoch, one thread, on eight 128×96 demo images.

mod common;

use common::wait_until;

use detlab::app::training::RunStatus;
use detlab::app::{AppOptions, Page};
use detlab::desktop::DetlabApp;
use detlab::detector::train::{CvStage, DeviceChoice};
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;

#[test]
fn the_train_page_cross_validates_and_ships_the_final_model() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("shelf");
    detlab::demo::generate(&detlab::demo::DemoOptions {
        out_dir: images.clone(),
        images: 8,
        seed: 3,
        width: 128,
        height: 96,
    })
    .unwrap();
    let run_dir = dir.path().join("run");
    let settings = dir.path().join("config/settings.json");
    let args = AppOptions {
        dir: Some(images),
        no_model: true,
        ..AppOptions::default()
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 1400.0))
        .build_eframe(move |cc| DetlabApp::new(&cc.egui_ctx, args, settings));
    wait_until(&mut h, "the folder", |app| {
        app.state.current_path().is_some()
    });
    h.get_by_label("Train").click();
    h.run_steps(2);
    assert_eq!(h.state().state.ui.page, Page::Train);
    assert!(h.query_by_label("Cross-validation folds").is_some());
    {
        let form = &mut h.state_mut().state.ui.training_form;
        form.arch = "d0".into();
        form.from_scratch = true;
        form.input_size = 64;
        form.batch_size = 4;
        form.epochs = 1;
        form.threads = 1;
        form.device = DeviceChoice::Cpu;
        form.freeze_backbone_epochs = 0;
        form.out_dir = run_dir.to_string_lossy().into_owned();
        form.folds = 2;
    }
    h.get_by_label("Start").click();
    h.run_steps(2);
    // The stages the page goes through, as it shows them.
    let stages = std::cell::RefCell::new(Vec::<CvStage>::new());
    wait_until(&mut h, "the cross-validation to finish", |app| {
        let run = app.state.training.as_ref();
        if let Some(stage) = run.and_then(|r| r.cv.as_ref()).and_then(|cv| cv.stage) {
            let mut seen = stages.borrow_mut();
            if seen.last() != Some(&stage) {
                seen.push(stage);
            }
        }
        run.is_some_and(|r| !r.status.is_active())
    });
    let run = h.state().state.training.as_ref().unwrap();
    assert!(
        matches!(&run.status, RunStatus::Finished { best_path: Some(p), .. } if p.ends_with("model.safetensors")),
        "{:?} {:?}",
        run.status,
        run.log
    );
    let cv = run.cv.as_ref().expect("a cross-validation run");
    assert_eq!(
        stages.into_inner(),
        [
            CvStage::Fold { fold: 1, k: 2 },
            CvStage::Fold { fold: 2, k: 2 },
            CvStage::Final
        ]
    );
    for fold in ["fold 1/2", "fold 2/2", "final model"] {
        assert!(
            run.log.iter().any(|l| l.starts_with(fold)),
            "{fold}: {:?}",
            run.log
        );
    }
    let result = cv.result.as_ref().expect("the table");
    assert_eq!(result.cv.rows.len(), 2);
    assert_eq!(result.table, run_dir.join("cv.md"));
    // The page shows the table's means and the model.
    assert!(
        h.query_by_label_contains("2-fold cross-validation (last epoch, mean ± sd): AP ")
            .is_some(),
        "no cross-validation summary"
    );
    assert!(h.query_by_label_contains("AP75").is_some());
    assert!(h.query_by_label_contains("model.safetensors").is_some());
    let md = std::fs::read_to_string(run_dir.join("cv.md")).unwrap();
    assert!(md.contains("| mean ± sd |"), "{md}");
    assert!(md.contains("2 folds of 8 images, fold seed 0"), "{md}");
    assert!(run_dir.join("model.safetensors").is_file());
    assert!(run_dir.join("folds/fold-2/last.safetensors").is_file());
}
