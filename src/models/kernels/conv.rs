//! 2-D convolution as banded im2col and one matrix product per band.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;
use gemm::Parallelism;

use std::sync::Arc;

use super::{SendPtr, cpu_values, on_cpu_f32, optional_values, run_bands, winograd};

/// Scratch per band: about this many `f32` of im2col columns (1 MiB), so that a band's
/// columns stay in cache while the matrix product reads them; but at least [`MIN_PIXELS`]
/// output pixels, since every band's matrix product reads (and packs) the whole weight.
const BAND_VALUES: usize = 1 << 18;
const MIN_PIXELS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dConfig {
    pub padding: usize,
    pub stride: usize,
}

impl Default for Conv2dConfig {
    fn default() -> Self {
        Self {
            padding: 0,
            stride: 1,
        }
    }
}

/// A convolution layer with a bias, loaded from `weight` (out, in, kh, kw) and `bias`.
#[derive(Debug, Clone)]
pub struct Conv2d {
    kernel: Kernel,
    bias: Tensor,
    config: Conv2dConfig,
}

/// A layer's weights as loaded, or only transformed for Winograd's algorithm: the 3×3
/// layers loaded on the CPU never need the loaded form, so it is not kept.
#[derive(Debug, Clone)]
enum Kernel {
    Direct(Tensor),
    Winograd {
        /// (16, out, in), see `winograd::transform_weights`.
        values: Arc<Vec<f32>>,
        /// (out, in, 3, 3)
        dims: [usize; 4],
    },
}

impl Conv2d {
    pub fn load(
        cin: usize,
        cout: usize,
        kernel: usize,
        config: Conv2dConfig,
        vb: VarBuilder,
    ) -> Result<Self> {
        let weight = vb.get((cout, cin, kernel, kernel), "weight")?;
        let winograd = winograd::applies(cin, cout, kernel, kernel, config.padding, config.stride);
        let kernel = if on_cpu_f32(&weight) && winograd {
            let weight = weight.contiguous()?;
            let (storage, layout) = weight.storage_and_layout();
            let values = cpu_values(&storage, layout, "conv2d weight")?;
            Kernel::Winograd {
                values: Arc::new(winograd::transform_weights(values, cout, cin)),
                dims: [cout, cin, kernel, kernel],
            }
        } else {
            Kernel::Direct(weight)
        };
        Ok(Self {
            kernel,
            bias: vb.get(cout, "bias")?,
            config,
        })
    }

    /// The convolution with `fused`'s additions made in the same pass.
    pub fn forward_fused(&self, xs: &Tensor, fused: Conv2dFused) -> Result<Tensor> {
        convolve(xs, &self.kernel, &self.bias, self.config, fused)
    }
}

impl Module for Conv2d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.forward_fused(xs, Conv2dFused::default())
    }
}

/// What is folded into a [`conv2d_fused`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Conv2dFused<'a> {
    /// Nearest-neighbour doubling of the input's height and width before the convolution
    /// (read in place: the doubled input is never made).
    pub upsample2: bool,
    /// Added per image and output channel, (batch, out): a resnet's time embedding.
    pub channel_offsets: Option<&'a Tensor>,
    /// Added to the output, same shape: a residual connection.
    pub residual: Option<&'a Tensor>,
}

/// `xs` (batch, in, h, w) convolved with `weight` (out, in, kh, kw), plus `bias` (out).
pub fn conv2d(xs: &Tensor, weight: &Tensor, bias: &Tensor, config: Conv2dConfig) -> Result<Tensor> {
    conv2d_fused(xs, weight, bias, config, Conv2dFused::default())
}

/// [`conv2d`] with the additions of `fused`, made as the output is written. (A [`Conv2d`]
/// layer is faster for 3×3 kernels: it transforms its weights for Winograd's algorithm once,
/// where this function does so on every call.)
pub fn conv2d_fused(
    xs: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    config: Conv2dConfig,
    fused: Conv2dFused,
) -> Result<Tensor> {
    convolve(xs, &Kernel::Direct(weight.clone()), bias, config, fused)
}

fn convolve(
    xs: &Tensor,
    kernel: &Kernel,
    bias: &Tensor,
    config: Conv2dConfig,
    fused: Conv2dFused,
) -> Result<Tensor> {
    let (batch, cin, h, w) = xs.dims4()?;
    let dims = match kernel {
        Kernel::Direct(weight) => weight.dims4().map(|(o, i, kh, kw)| [o, i, kh, kw])?,
        Kernel::Winograd { dims, .. } => *dims,
    };
    let [cout, wcin, kh, kw] = dims;
    let bias_len = bias.dims1()?;
    if wcin != cin || bias_len != cout {
        candle_core::bail!("conv2d: input has {cin} channels, weight {dims:?}, bias {bias_len}");
    }
    let Conv2dConfig { padding, stride } = config;
    let scale = if fused.upsample2 { 2 } else { 1 };
    let (vh, vw) = (h * scale, w * scale);
    if stride == 0 || vh + 2 * padding < kh || vw + 2 * padding < kw {
        candle_core::bail!(
            "conv2d: a {kh}×{kw} kernel (stride {stride}) does not fit a {vh}×{vw} input"
        );
    }
    let g = Geometry {
        batch,
        cin,
        h,
        w,
        upsample: scale,
        cout,
        kh,
        kw,
        pad: padding,
        stride,
        oh: (vh + 2 * padding - kh) / stride + 1,
        ow: (vw + 2 * padding - kw) / stride + 1,
    };
    let out_shape = (batch, cout, g.oh, g.ow);
    if let Some(o) = fused.channel_offsets
        && o.dims() != [batch, cout]
    {
        candle_core::bail!(
            "conv2d: channel offsets {:?} for {:?}",
            o.dims(),
            [batch, cout]
        );
    }
    if let Some(r) = fused.residual
        && r.dims() != [batch, cout, g.oh, g.ow]
    {
        candle_core::bail!(
            "conv2d: residual {:?} for an output of {out_shape:?}",
            r.dims()
        );
    }
    let cpu = [Some(xs), Some(bias), fused.channel_offsets, fused.residual]
        .into_iter()
        .flatten()
        .all(on_cpu_f32);
    let weight = match kernel {
        Kernel::Direct(weight) if cpu && on_cpu_f32(weight) => None,
        Kernel::Direct(weight) => Some(weight),
        Kernel::Winograd { .. } if cpu => None,
        Kernel::Winograd { .. } => candle_core::bail!(
            "conv2d: the layer was loaded for the CPU in f32, the input is {:?} on {:?}",
            xs.dtype(),
            xs.device()
        ),
    };
    if let Some(weight) = weight {
        let xs = if fused.upsample2 {
            xs.upsample_nearest2d(vh, vw)?
        } else {
            xs.clone()
        };
        let mut out = xs
            .conv2d(weight, padding, stride, 1, 1)?
            .broadcast_add(&bias.reshape((1, cout, 1, 1))?)?;
        if let Some(o) = fused.channel_offsets {
            out = out.broadcast_add(&o.reshape((batch, cout, 1, 1))?)?;
        }
        if let Some(r) = fused.residual {
            out = (out + r)?;
        }
        return Ok(out);
    }
    let contiguous = |t: Option<&Tensor>| t.map(Tensor::contiguous).transpose();
    let (xs, bias) = (xs.contiguous()?, bias.contiguous()?);
    let offsets = contiguous(fused.channel_offsets)?;
    let residual = contiguous(fused.residual)?;
    let out = {
        let (xg, xl) = xs.storage_and_layout();
        let (bg, bl) = bias.storage_and_layout();
        let og = offsets.as_ref().map(Tensor::storage_and_layout);
        let rg = residual.as_ref().map(Tensor::storage_and_layout);
        let o = optional_values(&og, "conv2d")?;
        let r = optional_values(&rg, "conv2d")?;
        let x = cpu_values(&xg, xl, "conv2d")?;
        let b = cpu_values(&bg, bl, "conv2d")?;
        match kernel {
            Kernel::Winograd { values, .. } => winograd::run(&g, x, values, b, o, r),
            Kernel::Direct(weight) => {
                let weight = weight.contiguous()?;
                let (wg, wl) = weight.storage_and_layout();
                let w = cpu_values(&wg, wl, "conv2d")?;
                if winograd::applies(g.cin, g.cout, g.kh, g.kw, g.pad, g.stride) {
                    let u = winograd::transform_weights(w, g.cout, g.cin);
                    winograd::run(&g, x, &u, b, o, r)
                } else {
                    run(&g, x, w, b, o, r)
                }
            }
        }
    };
    Tensor::from_vec(out, out_shape, xs.device())
}

/// The sizes of one convolution.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub batch: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    /// 2 when the input is read doubled (nearest neighbour), else 1.
    pub upsample: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub pad: usize,
    pub stride: usize,
    pub oh: usize,
    pub ow: usize,
}

fn run(
    g: &Geometry,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    offsets: Option<&[f32]>,
    residual: Option<&[f32]>,
) -> Vec<f32> {
    let k = g.cin * g.kh * g.kw;
    let pixels = g.oh * g.ow;
    let band_rows = (BAND_VALUES / (k * g.ow).max(1))
        .max(MIN_PIXELS.div_ceil(g.ow.max(1)))
        .clamp(1, g.oh.max(1));
    let bands_per_image = g.oh.div_ceil(band_rows);
    let mut out = vec![0.0f32; g.batch * g.cout * pixels];
    let dst = SendPtr(out.as_mut_ptr());
    let pointwise = g.kh == 1 && g.kw == 1 && g.stride == 1 && g.pad == 0 && g.upsample == 1;
    let band = |index: usize, cols: &mut Vec<f32>, parallelism: Parallelism| {
        let (b, y0) = (
            index / bands_per_image,
            (index % bands_per_image) * band_rows,
        );
        let y1 = (y0 + band_rows).min(g.oh);
        let n = (y1 - y0) * g.ow;
        let image = &x[b * g.cin * g.h * g.w..(b + 1) * g.cin * g.h * g.w];
        // A pointwise convolution's columns are the input itself: rows `pixels` apart.
        let (rhs, rhs_rs) = if pointwise {
            (image[y0 * g.ow..].as_ptr(), pixels)
        } else {
            cols.resize(k * n, 0.0);
            im2col_band(g, image, y0, y1, cols);
            (cols.as_ptr(), n)
        };
        // SAFETY: the product reads `rhs` rows of n values `rhs_rs` apart, inside `image`
        // or `cols`. This band writes the output pixels y0·ow..y1·ow of image b, in every
        // channel: bands of one image cover disjoint row ranges and images disjoint blocks,
        // so no two tasks write the same value. `out` outlives the parallel section.
        unsafe {
            let first = b * g.cout * pixels + y0 * g.ow;
            let base = dst.get().add(first);
            // The output starts as bias + channel offset (+ residual); the product adds to it.
            for (c, &bv) in bias.iter().enumerate() {
                let start = offsets.map_or(bv, |o| bv + o[b * g.cout + c]);
                let row = std::slice::from_raw_parts_mut(base.add(c * pixels), n);
                match residual {
                    Some(r) => {
                        let r = &r[first + c * pixels..first + c * pixels + n];
                        for (o, &r) in row.iter_mut().zip(r) {
                            *o = start + r;
                        }
                    }
                    None => row.fill(start),
                }
            }
            // out[c, p] += Σ_j weight[c, j] · cols[j, p], rows of the output `pixels` apart.
            gemm::gemm(
                g.cout,
                n,
                k,
                base,
                1,
                pixels as isize,
                true,
                weight.as_ptr(),
                1,
                k as isize,
                rhs,
                1,
                rhs_rs as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    run_bands(g.batch * bands_per_image, band);
    out
}

/// The im2col columns of output rows `y0..y1` of one image: row `(c·kh + i)·kw + j` holds
/// input channel c at offset (i, j) of the kernel for every output pixel of the band.
fn im2col_band(g: &Geometry, image: &[f32], y0: usize, y1: usize, cols: &mut [f32]) {
    let n = (y1 - y0) * g.ow;
    let plane = g.h * g.w;
    // A doubled input line, made once for the kw taps that read it.
    let mut stretched = vec![0.0f32; g.w * g.upsample];
    for c in 0..g.cin {
        let src = &image[c * plane..(c + 1) * plane];
        for i in 0..g.kh {
            for (dy, y) in (y0..y1).enumerate() {
                // Row of the (possibly doubled) input.
                let iy = (y * g.stride + i) as isize - g.pad as isize;
                let line = if iy < 0 || iy >= (g.h * g.upsample) as isize {
                    None
                } else {
                    let sy = iy as usize / g.upsample;
                    let line = &src[sy * g.w..(sy + 1) * g.w];
                    if g.upsample == 1 {
                        Some(line)
                    } else {
                        for (pair, &v) in stretched.chunks_exact_mut(g.upsample).zip(line) {
                            pair.fill(v);
                        }
                        Some(&stretched[..])
                    }
                };
                for j in 0..g.kw {
                    let start = ((c * g.kh + i) * g.kw + j) * n + dy * g.ow;
                    let out = &mut cols[start..start + g.ow];
                    match line {
                        Some(line) => fill_line(out, line, j as isize - g.pad as isize, g.stride),
                        None => out.fill(0.0),
                    }
                }
            }
        }
    }
}

/// `out[x] = line[x·stride + shift]`, zero where that falls outside the line.
fn fill_line(out: &mut [f32], line: &[f32], shift: isize, stride: usize) {
    let w = line.len() as isize;
    let s = stride as isize;
    // First and one-past-last x whose source index is inside the line.
    let lo = if shift >= 0 { 0 } else { (-shift + s - 1) / s };
    let hi = if w - shift <= 0 {
        0
    } else {
        (w - shift + s - 1) / s
    };
    let (lo, hi) = ((lo as usize).min(out.len()), (hi as usize).min(out.len()));
    if lo >= hi {
        out.fill(0.0);
        return;
    }
    out[..lo].fill(0.0);
    out[hi..].fill(0.0);
    let start = (lo as isize * s + shift) as usize;
    if stride == 1 {
        out[lo..hi].copy_from_slice(&line[start..start + (hi - lo)]);
    } else {
        for (o, v) in out[lo..hi]
            .iter_mut()
            .zip(line[start..].iter().step_by(stride))
        {
            *o = *v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{max_diff, random};
    use super::*;

    #[test]
    fn matches_candle_for_kernels_paddings_strides_and_bands() {
        // (batch, cin, h, w, cout, kernel, padding, stride): 3×3 "same", 1×1, stride 2
        // without padding, a 5×5, and one large enough to be split into many bands.
        let cases = [
            (2, 3, 7, 5, 4, 3, 1, 1),
            (1, 8, 6, 6, 5, 1, 0, 1),
            (2, 4, 9, 8, 3, 3, 0, 2),
            (1, 2, 5, 11, 3, 5, 2, 1),
            (2, 4, 7, 10, 6, 3, 1, 2),
            (2, 64, 70, 40, 16, 3, 1, 1),
        ];
        for (i, &(b, cin, h, w, cout, k, pad, stride)) in cases.iter().enumerate() {
            let x = random(&[b, cin, h, w], i as u64 + 1);
            let wt = random(&[cout, cin, k, k], i as u64 + 100);
            let bias = random(&[cout], i as u64 + 200);
            let config = Conv2dConfig {
                padding: pad,
                stride,
            };
            let ours = conv2d(&x, &wt, &bias, config).unwrap();
            let theirs = x
                .conv2d(&wt, pad, stride, 1, 1)
                .unwrap()
                .broadcast_add(&bias.reshape((1, cout, 1, 1)).unwrap())
                .unwrap();
            assert_eq!(ours.dims(), theirs.dims(), "case {i}");
            let d = max_diff(&ours, &theirs);
            assert!(d < 1e-4, "case {i}: max difference {d}");
        }
    }

    #[test]
    fn fuses_upsampling_channel_offsets_and_residuals() {
        // (batch, cin, h, w, cout, kernel, padding, stride)
        for (i, &(b, cin, h, w, cout, k, pad, stride)) in [
            (2, 3, 5, 4, 4, 3, 1, 1),
            (1, 2, 3, 6, 3, 1, 0, 1),
            (2, 2, 4, 5, 2, 3, 0, 2),
        ]
        .iter()
        .enumerate()
        {
            let seed = 300 + 10 * i as u64;
            let x = random(&[b, cin, h, w], seed);
            let wt = random(&[cout, cin, k, k], seed + 1);
            let bias = random(&[cout], seed + 2);
            let offsets = random(&[b, cout], seed + 3);
            let plain = x
                .upsample_nearest2d(2 * h, 2 * w)
                .unwrap()
                .conv2d(&wt, pad, stride, 1, 1)
                .unwrap()
                .broadcast_add(&bias.reshape((1, cout, 1, 1)).unwrap())
                .unwrap();
            let residual = random(plain.dims(), seed + 4);
            let expected = ((plain
                .broadcast_add(&offsets.reshape((b, cout, 1, 1)).unwrap())
                .unwrap())
                + &residual)
                .unwrap();
            let fused = Conv2dFused {
                upsample2: true,
                channel_offsets: Some(&offsets),
                residual: Some(&residual),
            };
            let config = Conv2dConfig {
                padding: pad,
                stride,
            };
            let ours = conv2d_fused(&x, &wt, &bias, config, fused).unwrap();
            let d = max_diff(&ours, &expected);
            assert!(d < 1e-5, "case {i}: max difference {d}");
        }
    }

    #[test]
    fn takes_strided_inputs() {
        let x = random(&[1, 5, 4, 3], 7).transpose(2, 3).unwrap();
        let wt = random(&[2, 5, 3, 3], 8);
        let bias = random(&[2], 9);
        let config = Conv2dConfig {
            padding: 1,
            stride: 1,
        };
        let ours = conv2d(&x, &wt, &bias, config).unwrap();
        let theirs = x
            .contiguous()
            .unwrap()
            .conv2d(&wt, 1, 1, 1, 1)
            .unwrap()
            .broadcast_add(&bias.reshape((1, 2, 1, 1)).unwrap())
            .unwrap();
        assert!(max_diff(&ours, &theirs) < 1e-5);
    }

    #[test]
    fn rejects_mismatched_channels() {
        let x = random(&[1, 3, 4, 4], 1);
        let wt = random(&[2, 4, 3, 3], 2);
        let bias = random(&[2], 3);
        let err = conv2d(&x, &wt, &bias, Conv2dConfig::default()).unwrap_err();
        assert!(err.to_string().contains("3 channels"), "{err}");
    }
}
