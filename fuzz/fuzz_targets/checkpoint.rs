//! The PyTorch checkpoint reader (`read_checkpoint_bytes`: zip and legacy formats, the
//! pickle VM, storages and tensor views).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tensors) = detlab::detector::checkpoint::read_checkpoint_bytes(data) {
        let total: usize = tensors.iter().map(|t| t.data.len()).sum();
        assert!(total as u64 <= 4 * data.len() as u64 + 64);
    }
});
