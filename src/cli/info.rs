//! `detlab info`: versions and the compute devices libtorch sees.

pub fn run() -> anyhow::Result<()> {
    println!("detlab {}", env!("CARGO_PKG_VERSION"));
    let cuda = tch::Cuda::is_available();
    println!("CUDA available: {cuda}");
    if cuda {
        println!("CUDA devices: {}", tch::Cuda::device_count());
        println!("cuDNN available: {}", tch::Cuda::cudnn_is_available());
    }
    println!("CPU threads used by libtorch: {}", tch::get_num_threads());
    Ok(())
}
