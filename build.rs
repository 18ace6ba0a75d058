//! Links libtorch so that the binary runs without `LD_LIBRARY_PATH` and keeps
//! `libtorch_cuda.so` (which `--as-needed` would otherwise drop, hiding CUDA).
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

fn main() {
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
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-L{}", lib.display());
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
