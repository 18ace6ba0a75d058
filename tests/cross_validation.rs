//! `detlab train --folds K`: k-fold cross-validation of a recipe over the pooled training
//! and validation sets, its table (Markdown + JSON, recipes side by side), and the final
//! model whose card (`detlab info --model`) shows the cross-validation. One libtorch
//! thread, 64 px inputs, one step per epoch.

use std::path::Path;
use std::process::{Command, Output};

fn detlab_torch<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_detlab-torch"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn demo(dir: &Path, images: usize, seed: u64) {
    detlab::demo::generate(&detlab::demo::DemoOptions {
        out_dir: dir.to_path_buf(),
        images,
        seed,
        width: 128,
        height: 96,
    })
    .unwrap();
}

/// The recipe of these tests: d0 from scratch at 64 px, `epochs` epochs of one step of
/// batch 4, one CPU thread.
fn tiny_recipe(epochs: &str) -> [&str; 15] {
    [
        "--model",
        "d0",
        "--from-scratch",
        "--epochs",
        epochs,
        "--batch",
        "4",
        "--input-size",
        "64",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--max-steps",
        "1",
    ]
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn cli_cross_validates_writes_the_table_and_ships_a_model_with_its_card() {
    let dir = tempfile::tempdir().unwrap();
    let (train, val) = (dir.path().join("train"), dir.path().join("val"));
    demo(&train, 9, 1);
    demo(&val, 3, 2);
    let table = dir.path().join("tables/cv.md");
    let run = dir.path().join("run");
    let cv = |out: &Path, extra: &[&str]| {
        let mut args = vec!["train", "--data", p(&train), "--val", p(&val)];
        args.extend_from_slice(&tiny_recipe("1"));
        args.extend_from_slice(&["--out", p(out), "--cv-table", p(&table)]);
        args.extend_from_slice(extra);
        detlab_torch(&args)
    };

    let o = cv(&run, &["--folds", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("| mean ± sd |"), "{stdout}");

    // The table: 2 fold rows and the mean, fold sizes adding up to the 12 pooled images.
    let md = std::fs::read_to_string(&table).unwrap();
    assert!(md.contains("2 folds of 12 images, fold seed 0"), "{md}");
    assert_eq!(md.matches("| mean ± sd |").count(), 1, "{md}");
    assert!(
        md.contains("\n| 1 | 6 | 6 |") && md.contains("\n| 2 | 6 | 6 |"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("tables/cv.json")).unwrap())
            .unwrap();
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let rows = runs[0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let held_out: u64 = rows.iter().map(|r| r["val_images"].as_u64().unwrap()).sum();
    assert_eq!(held_out, 12);
    for r in rows {
        assert_eq!(
            r["train_images"].as_u64().unwrap() + r["val_images"].as_u64().unwrap(),
            12
        );
        assert_eq!(r["best_epoch"], 1);
        assert!(r["last"]["ap75"].as_f64().unwrap() >= 0.0, "{r}");
    }
    assert_eq!(runs[0]["images"], 12);
    for fold in ["folds/fold-1", "folds/fold-2", "final"] {
        assert!(run.join(fold).join("last.safetensors").is_file(), "{fold}");
    }

    // The final model's card shows the cross-validation.
    let model = run.join("model.safetensors");
    let o = detlab_torch(&["info", "--model", p(&model)]);
    assert!(o.status.success(), "{}", text(&o));
    let card = String::from_utf8_lossy(&o.stdout);
    assert!(
        card.contains("cross-validation: 2-fold on 12 images (fold seed 0), 1 epochs per fold"),
        "{card}"
    );
    assert!(
        card.contains("AP (last epoch): ") && card.contains(" ± "),
        "{card}"
    );
    assert!(card.contains("all 12 images, 1 epochs"), "{card}");
    assert!(card.contains("architecture: d0"), "{card}");

    // The same --out again is refused, and nothing is touched.
    let before = std::fs::read(&model).unwrap();
    let o = cv(&run, &["--folds", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--overwrite"), "{}", text(&o));
    assert_eq!(std::fs::read(&model).unwrap(), before);
    // --overwrite runs it again; the same recipe replaces its own row.
    let o = cv(&run, &["--folds", "2", "--overwrite", "--no-final"]);
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("tables/cv.json")).unwrap())
            .unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 1);

    // A second recipe on the same folds lines up beside the first.
    let o = cv(
        &dir.path().join("run2"),
        &["--folds", "2", "--lr", "0.002", "--no-final"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!dir.path().join("run2/model.safetensors").exists());
    let md = std::fs::read_to_string(&table).unwrap();
    assert!(
        md.contains("\n| 1 | d0 64 px") && md.contains("\n| 2 | d0 64 px"),
        "{md}"
    );
    assert!(md.contains("adamw lr 0.002"), "{md}");
    assert_eq!(md.matches("| mean ± sd |").count(), 2, "{md}");
    // Other folds would not line up: refused before any training.
    let o = cv(&dir.path().join("run3"), &["--folds", "3", "--no-final"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("other folds"), "{}", text(&o));
    assert!(!dir.path().join("run3/folds").exists());
}

#[test]
fn cli_refuses_impossible_folds_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    demo(&data, 4, 1);
    let run = |k: &str| {
        detlab_torch(&[
            "train",
            "--data",
            p(&data),
            "--model",
            "d0",
            "--from-scratch",
            "--input-size",
            "64",
            "--device",
            "cpu",
            "--out",
            p(&dir.path().join("run")),
            "--folds",
            k,
        ])
    };
    let o = run("1");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("at least 2 folds, got 1"), "{}", text(&o));
    let o = run("5");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o)
            .contains("5 folds need at least 5 labelled images (one per fold), and there are 4"),
        "{}",
        text(&o)
    );
    assert!(!dir.path().join("run").exists());
    // --folds with --resume or --patience makes no sense: refused by the parser.
    let o = detlab_torch(&[
        "train",
        "--data",
        p(&data),
        "--out",
        p(&dir.path().join("run")),
        "--folds",
        "2",
        "--patience",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// A cross-validation killed in its second fold continues with `--resume`: the finished
/// fold is not trained again, the fold in progress continues from its last complete
/// epoch, and the table and the final model's card are those of an uninterrupted run.
#[test]
fn a_killed_cross_validation_continues_with_resume() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    demo(&data, 8, 3);
    let args = |out: &Path| -> Vec<String> {
        let mut args = vec!["train", "--data", p(&data)];
        args.extend_from_slice(&tiny_recipe("4"));
        args.extend_from_slice(&["--folds", "2", "--out", p(out)]);
        args.into_iter().map(String::from).collect()
    };
    let whole = dir.path().join("whole");
    let o = detlab_torch(&args(&whole));
    assert!(o.status.success(), "{}", text(&o));

    // Killed once fold 2 has a complete epoch.
    let run = dir.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_detlab-torch"))
        .args(args(&run))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let fold2 = run.join("folds/fold-2");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while !fold2.join("resume.safetensors").exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before fold 2 had an epoch"
        );
        assert!(std::time::Instant::now() < deadline, "fold 2 never started");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run finished before it was killed");
    assert!(!run.join("cv.md").exists() && !run.join("model.safetensors").exists());
    let fold1_log = std::fs::read(run.join("folds/fold-1/metrics.jsonl")).unwrap();

    // Without --resume (or --overwrite) the folder is refused.
    let o = detlab_torch(&args(&run));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--resume to continue it"), "{}", text(&o));
    // Another recipe cannot continue it.
    let mut other = args(&run);
    other.extend(["--resume", "--lr", "0.002"].map(String::from));
    let o = detlab_torch(&other);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("another recipe"), "{}", text(&o));

    let mut resumed = args(&run);
    resumed.push("--resume".into());
    let o = detlab_torch(&resumed);
    assert!(o.status.success(), "{}", text(&o));
    let log = text(&o);
    assert!(log.contains("fold 1/2: finished before"), "{log}");
    assert!(log.contains("continued"), "{log}");
    assert_eq!(
        std::fs::read(run.join("folds/fold-1/metrics.jsonl")).unwrap(),
        fold1_log,
        "fold 1 was trained again"
    );
    let fold2_log = std::fs::read_to_string(fold2.join("metrics.jsonl")).unwrap();
    let starts: Vec<u64> = fold2_log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "started")
        .map(|v| v["start_epoch"].as_u64().unwrap())
        .collect();
    assert!(
        starts.len() == 2 && starts[0] == 1 && starts[1] > 1,
        "fold 2 did not continue: {starts:?}"
    );

    let rows = |out: &Path| {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("cv.json")).unwrap()).unwrap();
        json["runs"][0]["rows"].clone()
    };
    assert_eq!(rows(&run), rows(&whole));
    let card = |out: &Path| {
        let model = out.join("model.safetensors");
        let o = detlab_torch(&["info", "--model", p(&model)]);
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.contains("cross-validation") || l.contains("AP"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(card(&run), card(&whole));

    // Finished: nothing left to continue.
    let o = detlab_torch(&resumed);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("nothing to continue"), "{}", text(&o));
}
