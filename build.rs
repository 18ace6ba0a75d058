//! Links libtorch so that `detlab-torch` runs without `LD_LIBRARY_PATH` and keeps
//! `libtorch_cuda.so` (which `--as-needed` would otherwise drop, hiding CUDA); the light
//! `detlab` front links none of it.
//!
//! The torch `lib/` folder is found the way torch-sys finds it: `LIBTORCH`, else the
//! Python of `VIRTUAL_ENV` (or `python3`) with `LIBTORCH_USE_PYTORCH=1`.

use std::path::PathBuf;
use std::process::Command;

fn torch_lib_dir() -> Option<PathBuf> {
    if let Ok(root) = std::env::var("LIBTORCH") {
        return Some(PathBuf::from(root).join("lib"));
    }
    let python = match std::env::var("VIRTUAL_ENV") {
        Ok(venv) => PathBuf::from(venv).join("bin").join("python"),
        Err(_) => PathBuf::from("python3"),
    };
    let out = Command::new(python)
        .args([
            "-c",
            "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?.trim().to_string();
    Some(PathBuf::from(dir))
}

/// Compiles the vendored `proto/onnx.proto` into prost message types
/// (`$OUT_DIR/onnx.rs`, included by `src/detector/onnx/proto.rs`). `protox` is a
/// protobuf compiler in Rust, so no `protoc` binary is needed.
fn compile_onnx_proto() {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let descriptors = protox::compile(["onnx.proto"], ["proto"])
        .unwrap_or_else(|e| panic!("compiling proto/onnx.proto: {e}"));
    prost_build::Config::new()
        .compile_fds(descriptors)
        .unwrap_or_else(|e| panic!("generating the ONNX message types: {e}"));
}

fn main() {
    compile_onnx_proto();
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_TORCH").is_none() {
        return; // built without tch (e.g. the fuzzers): nothing to link
    }
    let Some(lib) = torch_lib_dir() else {
        println!("cargo:warning=detlab: torch lib folder not found; the binary will need LD_LIBRARY_PATH");
        return;
    };
    // The rpath is harmless where nothing from torch is linked (the light `detlab` front).
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        // Only where a network runs: `detlab-torch` and the integration tests. The front
        // must not load libtorch at all (see `src/main.rs`).
        let keep_cuda = [
            "-Wl,--no-as-needed".to_string(),
            format!("-L{}", lib.display()),
            "-ltorch_cuda".to_string(),
            "-Wl,--as-needed".to_string(),
        ];
        for arg in keep_cuda {
            println!("cargo:rustc-link-arg-bin=detlab-torch={arg}");
            println!("cargo:rustc-link-arg-tests={arg}");
        }
    }
}
