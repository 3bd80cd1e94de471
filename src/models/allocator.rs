//! The memory allocator of the programs that run the models: mimalloc, keeping freed pages
//! for a second before handing them back to the system.
//!
//! A diffusion step allocates and frees hundreds of activations of up to tens of megabytes.
//! The system allocator returns buffers that large to the kernel as soon as they are freed,
//! so the next one of the same size costs a page fault for every 4 KiB page, about a tenth
//! of a step's time. With freed pages kept a little while, the next buffer reuses them
//! while a run is going, and an idle editor still gives its memory back.
//!
//! A binary opts in with
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: grym_synth::models::allocator::Allocator =
//!     grym_synth::models::allocator::Allocator;
//! ```
//! and calls [`configure`] first thing in `main`.

pub use mimalloc::MiMalloc as Allocator;

/// How long freed pages stay with the process before they go back to the system.
const PURGE_DELAY_MS: std::ffi::c_long = 1000;

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_e`, which the bindings do not name.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets the allocator's options; harmless when the binary uses another allocator.
pub fn configure() {
    // SAFETY: setting an option is thread-safe in mimalloc and takes plain integers.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}
