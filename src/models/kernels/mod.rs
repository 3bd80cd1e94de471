//! CPU kernels for the operators where candle's generic CPU path is the bottleneck of the
//! diffusion models: 2-D convolution, multi-head attention and group normalisation.
//!
//! Each is a candle custom op for contiguous `f32` tensors on the CPU and falls back to
//! candle's own operators anywhere else (CUDA, Metal, other dtypes), so a model calls the
//! function here and runs on every device. They compute the same values as the generic
//! operators (the tests check this against candle); what changes is how:
//! - [`Conv2d`] and [`conv2d`] compute 3×3 convolutions (stride 1, padding 1) by Winograd's
//!   F(2×2, 3×3), 2.25 times fewer multiply-adds (a layer transforms its weights once, the
//!   function on every call); other shapes build im2col tiles straight from the NCHW input,
//!   one band of output rows at a time, and write the matrix product with its bias straight
//!   into the NCHW output: no layout change of the input, no copy of the output, bounded
//!   scratch;
//! - [`attention`] takes queries, keys and values as the projections give them, (batch,
//!   tokens, heads × head size), and computes softmax(q·kᵀ·scale)·v one block of queries
//!   of one head at a time, so the full score matrix never exists;
//! - [`conv1d_channels_last`] does the same for the vocoder's channels-last 1-D
//!   convolutions, folding in the leaky ReLU before and the bias and residual after;
//! - [`Linear`] starts its output as bias (+ residual) and lets the matrix product add to
//!   it, so the transformer's residual connections cost no pass of their own;
//! - [`geglu`] gates one half of a projection by the exact GELU of the other in one pass;
//! - [`transpose_last_two`] and [`concat_channels`] are the layout changes between them, on
//!   every thread;
//! - [`group_norm`] computes the statistics in one pass and normalises, applies the affine
//!   parameters and, optionally, SiLU in a second.

mod attention;
mod conv;
mod conv1d;
mod exp;
mod geglu;
mod layout;
mod linear;
mod norm;
mod winograd;

pub use attention::attention;
pub use conv::{Conv2d, Conv2dConfig, Conv2dFused, conv2d, conv2d_fused};
pub use conv1d::{Fused, Taps, conv1d_channels_last};
pub use geglu::geglu;
pub use layout::{concat_channels, transpose_last_two};
pub use linear::Linear;
pub use norm::{GroupNorm, group_norm};

use std::ops::Deref;

use candle_core::{CpuStorage, DType, Device, Layout, Result, Storage, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

/// Whether `t` can take a CPU kernel: `f32` on the CPU.
fn on_cpu_f32(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cpu) && t.dtype() == DType::F32
}

/// The `f32` values of a contiguous CPU storage, from its layout's offset.
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{what}: expected f32 values");
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{what}: expected a contiguous tensor"),
    }
}

/// The `f32` values of a contiguous CPU tensor's storage (from `storage_and_layout`).
fn cpu_values<'a>(storage: &'a Storage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    match storage {
        Storage::Cpu(s) => contiguous_f32(s, layout, what),
        _ => candle_core::bail!("{what}: expected a CPU tensor"),
    }
}

/// [`cpu_values`] of an optional tensor's `storage_and_layout`.
fn optional_values<'a>(
    guarded: &'a Option<(impl Deref<Target = Storage>, &Layout)>,
    what: &str,
) -> Result<Option<&'a [f32]>> {
    guarded
        .as_ref()
        .map(|(storage, layout)| cpu_values(storage, layout, what))
        .transpose()
}

/// Runs `band(i, scratch, parallelism)` for every band i in 0..bands. With at least a band
/// per thread they run in parallel, each matrix product on its own thread; with fewer, one
/// at a time, each product on every thread. `scratch` is reused between a thread's bands.
fn run_bands<S: Default + Send>(bands: usize, band: impl Fn(usize, &mut S, Parallelism) + Sync) {
    let threads = threads();
    if bands >= threads {
        (0..bands)
            .into_par_iter()
            .for_each_init(S::default, |scratch, i| band(i, scratch, Parallelism::None));
    } else {
        let mut scratch = S::default();
        for i in 0..bands {
            band(i, &mut scratch, Parallelism::Rayon(threads));
        }
    }
}

/// `max(x, slope·x)`, the leaky ReLU for slopes in [0, 1], in two passes rather than the
/// five of `candle_nn::ops::leaky_relu` (used for other slopes).
pub fn leaky_relu(xs: &Tensor, slope: f64) -> Result<Tensor> {
    if (0.0..=1.0).contains(&slope) {
        xs.maximum(&xs.affine(slope, 0.0)?)
    } else {
        candle_nn::ops::leaky_relu(xs, slope)
    }
}

/// A raw pointer that may cross threads. The kernels hand each thread a disjoint part of
/// one output buffer; every use says why its part is disjoint.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);

// SAFETY: only used for buffers that outlive the parallel section and whose parts written
// by different threads do not overlap (see each use).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Threads for the kernels: rayon's pool, which is what candle's matrix products use.
fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

#[cfg(test)]
mod test_util {
    use candle_core::{Device, Tensor};

    /// Values in [-0.5, 0.5) from a xorshift generator: reproducible without a seed file.
    pub fn random(shape: &[usize], seed: u64) -> Tensor {
        let n: usize = shape.iter().product();
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let values: Vec<f32> = (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }
}
