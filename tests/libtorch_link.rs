//! libtorch is linked so that the binary runs without LD_LIBRARY_PATH and keeps
//! libtorch_cuda.so (so a GPU is seen when present).

mod common;

use std::process::Command;

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
fn binary_links_libtorch_cuda_and_finds_its_libraries() {
    let exe = env!("CARGO_BIN_EXE_detlab");
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
