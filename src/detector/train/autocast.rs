//! Autocast (automatic mixed precision) regions through libtorch's current per-device API.
//!
//! `tch::autocast` calls `at::autocast::is_enabled` / `set_enabled`, which libtorch 2.x
//! deprecates with a warning printed on every call: three lines per training step. The
//! functions it names instead, `is_autocast_enabled(DeviceType)` and
//! `set_autocast_enabled(DeviceType, bool)`, are plain exported C++ functions of
//! `libtorch_cpu` (already linked through torch-sys) whose arguments are an `int8_t` enum
//! and a `bool`, so they are declared here by their Itanium-mangled names.

use tch::Device;

mod ffi {
    extern "C" {
        #[link_name = "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE"]
        pub fn is_autocast_enabled(device_type: i8) -> bool;
        #[link_name = "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb"]
        pub fn set_autocast_enabled(device_type: i8, enabled: bool);
        #[link_name = "_ZN2at8autocast17increment_nestingEv"]
        pub fn increment_nesting() -> i32;
        #[link_name = "_ZN2at8autocast17decrement_nestingEv"]
        pub fn decrement_nesting() -> i32;
        #[link_name = "_ZN2at8autocast11clear_cacheEv"]
        pub fn clear_cache();
    }
}

/// `c10::DeviceType` of a device (`CPU = 0`, `CUDA = 1`).
fn device_type(device: Device) -> i8 {
    match device {
        Device::Cuda(_) => 1,
        _ => 0,
    }
}

/// Runs `f` with autocast `enabled` for `device`'s type (float16 on CUDA, bfloat16 on the
/// CPU: libtorch's defaults), restoring the previous state afterwards; the cache of cast
/// weights is cleared when the outermost region ends, as PyTorch's `autocast` does.
pub fn autocast<T>(device: Device, enabled: bool, f: impl FnOnce() -> T) -> T {
    let kind = device_type(device);
    // SAFETY: the functions only read and write libtorch's thread-local autocast state.
    let previous = unsafe {
        let previous = ffi::is_autocast_enabled(kind);
        ffi::set_autocast_enabled(kind, enabled);
        ffi::increment_nesting();
        previous
    };
    struct Restore(i8, bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: as above.
            unsafe {
                if ffi::decrement_nesting() == 0 {
                    ffi::clear_cache();
                }
                ffi::set_autocast_enabled(self.0, self.1);
            }
        }
    }
    let _restore = Restore(kind, previous);
    f()
}

/// Whether autocast is on for `device`'s type on this thread.
pub fn is_enabled(device: Device) -> bool {
    // SAFETY: reads libtorch's thread-local autocast state.
    unsafe { ffi::is_autocast_enabled(device_type(device)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    /// The CPU autocast region goes through the same functions as the CUDA one: inside it a
    /// float32 matmul comes out in bfloat16; outside, and after it, in float32.
    #[test]
    fn regions_switch_libtorch_autocast_and_restore_it() {
        let a = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
        assert!(!is_enabled(Device::Cpu));
        let inside = autocast(Device::Cpu, true, || {
            assert!(is_enabled(Device::Cpu));
            assert!(!is_enabled(Device::Cuda(0)), "only the CPU's flag is set");
            let nested = autocast(Device::Cpu, false, || a.matmul(&a).kind());
            assert_eq!(nested, Kind::Float);
            assert!(
                is_enabled(Device::Cpu),
                "the inner region restored the outer state"
            );
            a.matmul(&a).kind()
        });
        assert_eq!(inside, Kind::BFloat16);
        assert!(!is_enabled(Device::Cpu));
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
        let cuda = autocast(Device::Cuda(0), true, || is_enabled(Device::Cuda(0)));
        assert!(cuda && !is_enabled(Device::Cuda(0)));
    }
}
