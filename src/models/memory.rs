//! How the process's allocator treats the models' large buffers.
//!
//! A diffusion step allocates and frees hundreds of activations of a few megabytes. glibc
//! serves blocks that large with fresh `mmap`s and unmaps them when freed, so every new
//! activation costs a page fault per 4 KiB page: about 60,000 per step of a 10 s AudioLDM
//! clip, several per cent of its time. [`keep_freed_buffers`] has blocks up to 32 MiB (the
//! largest glibc allows) come from the heap, and keeps up to 256 MiB of freed memory there
//! for the next one; a step then faults about 8,000 times.

/// Largest block served from the heap (glibc's maximum for this setting).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const HEAP_BLOCK_MAX: i32 = 32 << 20;
/// Freed memory kept at the top of the heap before it is returned to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const KEEP_FREED: i32 = 256 << 20;

/// Sets the allocator up for the models; a no-op where the C library is not glibc. Called
/// first thing by the programs that run models (the editor and command line, benchmarks).
pub fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before other threads
    // start allocating.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, HEAP_BLOCK_MAX);
        libc::mallopt(libc::M_TRIM_THRESHOLD, KEEP_FREED);
    }
}
