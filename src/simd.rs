//! Run-time choice of vector width for the hot loops of the DSP and the model kernels.
//!
//! The crate is built for the x86-64 baseline, whose vector registers hold four `f32`.
//! [`avx2_dispatch`] compiles a loop a second time for AVX2 (eight) and picks that copy
//! when the CPU has it. Results are the same either way: no fused multiply-add is enabled,
//! and the order of every sum is fixed by the source. A leaf utility: it uses nothing of
//! ours, so `audio` and `models` may both use it.

/// Defines `fn $name(args) [-> ret]` that runs `$body` (an `#[inline(always)]` function
/// with the same arguments) compiled for AVX2 when the CPU has it (x86-64), and as built
/// otherwise. Whatever `$body` inlines is compiled for AVX2 too.
macro_rules! avx2_dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $body:path $(;)?) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}
pub(crate) use avx2_dispatch;
