//! `detlab-torch` links libtorch so that it runs without LD_LIBRARY_PATH and keeps
//! libtorch_cuda.so (so a GPU is seen when present); the `detlab` front links none of it,
//! runs the commands that need no network itself and hands the others over.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[test]
fn cuda_query_and_cpu_tensor_work() {
    // Callable on any machine; true only with a GPU and driver.
    let cuda = tch::Cuda::is_available();
    eprintln!(
        "CUDA available: {cuda}, devices: {}",
        tch::Cuda::device_count()
    );
    let t = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0]).to_device(tch::Device::Cpu);
    let s = (&t * 2.0).sum(tch::Kind::Float).double_value(&[]);
    assert_eq!(s, 12.0);
}

#[test]
fn torch_half_links_libtorch_cuda_and_finds_its_libraries() {
    let exe = env!("CARGO_BIN_EXE_detlab-torch");
    let Ok(out) = Command::new("ldd").arg(exe).output() else {
        common::missing("ldd is not available");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("not found"), "unresolved libraries:\n{text}");
    assert!(text.contains("libtorch_cpu.so"), "{text}");
    assert!(
        text.contains("libtorch_cuda.so"),
        "libtorch_cuda.so was dropped by --as-needed:\n{text}"
    );
    // And it runs with no LD_LIBRARY_PATH.
    let status = Command::new(exe)
        .arg("--version")
        .env_remove("LD_LIBRARY_PATH")
        .status()
        .unwrap();
    assert!(status.success());
}

/// The light front, built beside `detlab-torch` by `make build` / `make test`
/// (`cargo build -p detlab-front`; `cargo test` alone does not build it).
fn front() -> Option<PathBuf> {
    let exe = Path::new(env!("CARGO_BIN_EXE_detlab-torch")).with_file_name("detlab");
    if exe.exists() {
        Some(exe)
    } else {
        common::missing(format!(
            "the detlab front is not built at {} (`cargo build -p detlab-front`; make test does)",
            exe.display()
        ));
        None
    }
}

/// Runs `exe` with the dynamic loader's library trace on (`LD_DEBUG=libs`).
fn traced(exe: &Path, args: &[&str]) -> (Output, String) {
    let out = Command::new(exe)
        .args(args)
        .env("LD_DEBUG", "libs")
        .output()
        .expect("run detlab");
    let trace = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, trace)
}

#[test]
fn front_links_no_libtorch_and_loads_none_for_light_commands() {
    let Some(front) = front() else { return };
    let out = Command::new("ldd").arg(&front).output().expect("ldd");
    let libs = String::from_utf8_lossy(&out.stdout);
    for lib in ["libtorch", "libc10", "libcuda", "libcudart"] {
        assert!(!libs.contains(lib), "the front links {lib}:\n{libs}");
    }

    let tmp = tempfile::tempdir().unwrap();
    let demo = tmp.path().join("demo");
    let coco = tmp.path().join("coco");
    let demo_arg = demo.to_str().unwrap();
    for args in [
        vec!["--help"],
        vec!["demo", "--out", demo_arg, "--images", "3", "--seed", "4"],
        vec![
            "export",
            "coco",
            "--images",
            demo_arg,
            "--out",
            coco.to_str().unwrap(),
        ],
    ] {
        let (out, trace) = traced(&front, &args);
        assert!(out.status.success(), "{args:?}: {trace}");
        assert!(
            !trace.contains("libtorch") && !trace.contains("detlab-torch"),
            "{args:?} loaded libtorch or handed over:\n{trace}"
        );
    }
    assert!(coco.join("instances_train.json").exists());
}

#[test]
fn front_runs_eval_itself_and_hands_network_commands_over() {
    let Some(front) = front() else { return };
    let torch = Path::new(env!("CARGO_BIN_EXE_detlab-torch"));
    let tmp = tempfile::tempdir().unwrap();
    let demo = tmp.path().join("demo");
    let coco_dir = tmp.path().join("coco");
    let gt = coco_dir.join("instances_train.json");
    let dt = tmp.path().join("dt.json");
    let ok = |o: &Output| assert!(o.status.success(), "{}", common::text(o));
    ok(&common::detlab(&[
        "demo",
        "--out",
        demo.to_str().unwrap(),
        "--images",
        "3",
    ]));
    ok(&common::detlab(&[
        "export",
        "coco",
        "--images",
        demo.to_str().unwrap(),
        "--out",
        coco_dir.to_str().unwrap(),
    ]));
    // The ground truth as results (score 1): AP 1, evaluated by both halves alike.
    let coco: serde_json::Value = serde_json::from_slice(&std::fs::read(&gt).unwrap()).unwrap();
    let results: Vec<serde_json::Value> = coco["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| serde_json::json!({"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}))
        .collect();
    std::fs::write(&dt, serde_json::to_vec(&results).unwrap()).unwrap();
    let eval = [
        "eval",
        "--json",
        "--gt",
        gt.to_str().unwrap(),
        "--dt",
        dt.to_str().unwrap(),
    ];
    let (front_eval, trace) = traced(&front, &eval);
    ok(&front_eval);
    assert!(
        !trace.contains("libtorch"),
        "eval --gt --dt loaded libtorch:\n{trace}"
    );
    let torch_eval = Command::new(torch).args(eval).output().unwrap();
    assert_eq!(front_eval.stdout, torch_eval.stdout);
    let v: serde_json::Value = serde_json::from_slice(&front_eval.stdout).unwrap();
    assert_eq!(v["stats"][0].as_f64(), Some(1.0));

    // Both halves describe the same command line.
    let help = |exe: &Path| Command::new(exe).arg("--help").output().unwrap().stdout;
    assert_eq!(help(&front), help(torch));

    // `info` runs in the torch half (libtorch loaded), through the front.
    let (info, trace) = traced(&front, &["info"]);
    ok(&info);
    assert!(String::from_utf8_lossy(&info.stdout).contains("CUDA available"));
    assert!(
        trace.contains("libtorch_cpu"),
        "info did not reach libtorch"
    );
    // A forwarded command's own help and errors, with its exit status (clap's 2).
    let train_help = Command::new(&front)
        .args(["train", "--help"])
        .output()
        .unwrap();
    ok(&train_help);
    let text = String::from_utf8_lossy(&train_help.stdout);
    assert!(
        text.contains("Usage: detlab train") && text.contains("--data"),
        "{text}"
    );
    assert!(text.starts_with("Fine-tune EfficientDet"), "{text}");
    let bad = Command::new(&front)
        .args(["predict", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", common::text(&bad));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--bogus"));
}

#[test]
fn front_without_its_torch_half_says_how_to_build_it() {
    let Some(front) = front() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let alone = tmp.path().join("detlab");
    std::fs::copy(&front, &alone).unwrap();
    let out = Command::new(&alone).arg("info").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("detlab-torch") && err.contains("make build"),
        "{err}"
    );
    // The light commands still work on their own.
    assert!(Command::new(&alone)
        .arg("--version")
        .status()
        .unwrap()
        .success());
}
