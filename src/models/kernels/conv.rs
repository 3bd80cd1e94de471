//! 2-D convolution as banded im2col and one matrix product per band.

use candle_core::{CpuStorage, CustomOp3, Layout, Module, Result, Shape, Tensor};
use candle_nn::VarBuilder;
use gemm::Parallelism;
use rayon::prelude::*;

use super::{SendPtr, contiguous_f32, on_cpu_f32, threads};

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
    weight: Tensor,
    bias: Tensor,
    config: Conv2dConfig,
}

impl Conv2d {
    pub fn load(
        cin: usize,
        cout: usize,
        kernel: usize,
        config: Conv2dConfig,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            weight: vb.get((cout, cin, kernel, kernel), "weight")?,
            bias: vb.get(cout, "bias")?,
            config,
        })
    }
}

impl Module for Conv2d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        conv2d(xs, &self.weight, &self.bias, self.config)
    }
}

/// `xs` (batch, in, h, w) convolved with `weight` (out, in, kh, kw), plus `bias` (out).
pub fn conv2d(xs: &Tensor, weight: &Tensor, bias: &Tensor, config: Conv2dConfig) -> Result<Tensor> {
    if on_cpu_f32(xs) && on_cpu_f32(weight) && on_cpu_f32(bias) && config.stride > 0 {
        let xs = xs.contiguous()?;
        let weight = weight.contiguous()?;
        let bias = bias.contiguous()?;
        return xs.apply_op3_no_bwd(&weight, &bias, &Conv2dOp(config));
    }
    let out = xs.conv2d(weight, config.padding, config.stride, 1, 1)?;
    out.broadcast_add(&bias.reshape((1, (), 1, 1))?)
}

struct Conv2dOp(Conv2dConfig);

/// The sizes of one convolution.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    batch: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    kh: usize,
    kw: usize,
    pad: usize,
    stride: usize,
    oh: usize,
    ow: usize,
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        "conv2d-im2col-bands"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (batch, cin, h, w) = xl.shape().dims4()?;
        let (cout, wcin, kh, kw) = wl.shape().dims4()?;
        let bias_len = bl.shape().dims1()?;
        if wcin != cin || bias_len != cout {
            candle_core::bail!(
                "conv2d: input has {cin} channels, weight {:?}, bias {bias_len}",
                wl.shape().dims()
            );
        }
        let Conv2dConfig { padding, stride } = self.0;
        if h + 2 * padding < kh || w + 2 * padding < kw {
            candle_core::bail!("conv2d: a {kh}×{kw} kernel does not fit a {h}×{w} input");
        }
        let g = Geometry {
            batch,
            cin,
            h,
            w,
            cout,
            kh,
            kw,
            pad: padding,
            stride,
            oh: (h + 2 * padding - kh) / stride + 1,
            ow: (w + 2 * padding - kw) / stride + 1,
        };
        let x = contiguous_f32(xs, xl, "conv2d input")?;
        let weight = contiguous_f32(ws, wl, "conv2d weight")?;
        let bias = contiguous_f32(bs, bl, "conv2d bias")?;
        let out = run(&g, x, weight, bias);
        Ok((CpuStorage::F32(out), Shape::from((batch, cout, g.oh, g.ow))))
    }
}

fn run(g: &Geometry, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
    let k = g.cin * g.kh * g.kw;
    let pixels = g.oh * g.ow;
    let band_rows = (BAND_VALUES / (k * g.ow).max(1))
        .max(MIN_PIXELS.div_ceil(g.ow.max(1)))
        .clamp(1, g.oh.max(1));
    let bands_per_image = g.oh.div_ceil(band_rows);
    let tasks: Vec<(usize, usize)> = (0..g.batch)
        .flat_map(|b| (0..bands_per_image).map(move |i| (b, i * band_rows)))
        .collect();
    let mut out = vec![0.0f32; g.batch * g.cout * pixels];
    let dst = SendPtr(out.as_mut_ptr());
    let band = |(b, y0): (usize, usize), cols: &mut Vec<f32>, parallelism: Parallelism| {
        let y1 = (y0 + band_rows).min(g.oh);
        let n = (y1 - y0) * g.ow;
        cols.resize(k * n, 0.0);
        let image = &x[b * g.cin * g.h * g.w..(b + 1) * g.cin * g.h * g.w];
        im2col_band(g, image, y0, y1, cols);
        // SAFETY: this band writes the output pixels y0·ow..y1·ow of image b, in every
        // channel: bands of one image cover disjoint row ranges and images disjoint blocks,
        // so no two tasks write the same value. `out` outlives the parallel section.
        unsafe {
            let base = dst.get().add(b * g.cout * pixels + y0 * g.ow);
            for (c, &bv) in bias.iter().enumerate() {
                std::slice::from_raw_parts_mut(base.add(c * pixels), n).fill(bv);
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
                cols.as_ptr(),
                1,
                n as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    let threads = threads();
    if tasks.len() >= threads {
        tasks
            .into_par_iter()
            .for_each_init(Vec::new, |cols, task| band(task, cols, Parallelism::None));
    } else {
        // Few large bands: one at a time, each matrix product on every thread.
        let mut cols = Vec::new();
        for task in tasks {
            band(task, &mut cols, Parallelism::Rayon(threads));
        }
    }
    out
}

/// The im2col columns of output rows `y0..y1` of one image: row `(c·kh + i)·kw + j` holds
/// input channel c at offset (i, j) of the kernel for every output pixel of the band.
fn im2col_band(g: &Geometry, image: &[f32], y0: usize, y1: usize, cols: &mut [f32]) {
    let n = (y1 - y0) * g.ow;
    let plane = g.h * g.w;
    let mut rows = cols.chunks_exact_mut(n);
    for c in 0..g.cin {
        let src = &image[c * plane..(c + 1) * plane];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let Some(row) = rows.next() else { return };
                for (y, out) in (y0..y1).zip(row.chunks_exact_mut(g.ow)) {
                    let iy = (y * g.stride + i) as isize - g.pad as isize;
                    if iy < 0 || iy >= g.h as isize {
                        out.fill(0.0);
                        continue;
                    }
                    let line = &src[iy as usize * g.w..(iy as usize + 1) * g.w];
                    fill_line(out, line, j as isize - g.pad as isize, g.stride);
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
