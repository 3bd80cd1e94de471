//! Stride-1 1-D convolution on channels-last activations, with the leaky ReLU before it and
//! the bias and residual after it folded into the same pass.

use crate::simd::avx2_dispatch;
use candle_core::{Result, Tensor};
use gemm::Parallelism;

use super::{SendPtr, cpu_values, leaky_relu, on_cpu_f32, run_bands};

/// Scratch per band of output rows: about this many `f32` of windows (1 MiB), but at least
/// [`MIN_BAND`] rows, since every band's matrix product reads (and packs) the whole weight.
const BAND_VALUES: usize = 1 << 18;
const MIN_BAND: usize = 128;

/// The taps of a convolution: `kernel` taps `dilation` apart, `padding` zeros each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taps {
    pub kernel: usize,
    pub dilation: usize,
    pub padding: usize,
}

/// What is folded into a [`conv1d_channels_last`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Fused<'a> {
    /// Leaky ReLU of the input with this slope (in [0, 1]) before the convolution.
    pub leaky_slope: Option<f64>,
    /// Added to the output, same shape.
    pub residual: Option<&'a Tensor>,
}

/// `xs` (batch, length, in) convolved with `weight` (kernel · in, out), rows in (tap, in
/// channel) order, plus `bias` (out): (batch, length + 2·padding − dilation·(kernel − 1),
/// out). Each band of output rows gathers its shifted input rows side by side (applying the
/// leaky ReLU as it copies) and multiplies them by the weight into the output, which starts
/// as bias + residual; nothing of the size of the input times the kernel is ever allocated.
pub fn conv1d_channels_last(
    xs: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    taps: Taps,
    fused: Fused,
) -> Result<Tensor> {
    let (batch, len, cin) = xs.dims3()?;
    let (rows, cout) = weight.dims2()?;
    if rows != taps.kernel * cin || bias.dims1()? != cout || taps.kernel == 0 {
        candle_core::bail!(
            "conv1d: input {:?}, weight {:?}, bias {:?}, {} taps",
            xs.dims(),
            weight.dims(),
            bias.dims(),
            taps.kernel
        );
    }
    let span = taps.dilation * (taps.kernel - 1);
    let Some(out_len) = (len + 2 * taps.padding).checked_sub(span) else {
        candle_core::bail!("conv1d: the input ({len} long) is shorter than the kernel ({span})");
    };
    if let Some(r) = fused.residual
        && r.dims() != [batch, out_len, cout]
    {
        candle_core::bail!(
            "conv1d: residual {:?} for an output of {:?}",
            r.dims(),
            [batch, out_len, cout]
        );
    }
    let slope = fused.leaky_slope.filter(|s| (0.0..=1.0).contains(s));
    let cpu = on_cpu_f32(xs)
        && on_cpu_f32(weight)
        && on_cpu_f32(bias)
        && fused.residual.is_none_or(on_cpu_f32)
        && fused.leaky_slope.is_none_or(|_| slope.is_some());
    if !cpu {
        return fallback(xs, weight, bias, taps, fused, out_len);
    }
    let (xs, weight, bias) = (xs.contiguous()?, weight.contiguous()?, bias.contiguous()?);
    let residual = fused.residual.map(Tensor::contiguous).transpose()?;
    let g = Geometry {
        batch,
        len,
        cin,
        cout,
        out_len,
        taps,
        slope: slope.map(|s| s as f32),
    };
    let out = {
        let (xg, xl) = xs.storage_and_layout();
        let (wg, wl) = weight.storage_and_layout();
        let (bg, bl) = bias.storage_and_layout();
        let x = cpu_values(&xg, xl, "conv1d")?;
        let w = cpu_values(&wg, wl, "conv1d")?;
        let b = cpu_values(&bg, bl, "conv1d")?;
        match &residual {
            Some(r) => {
                let (rg, rl) = r.storage_and_layout();
                run(&g, x, w, b, Some(cpu_values(&rg, rl, "conv1d")?))
            }
            None => run(&g, x, w, b, None),
        }
    };
    Tensor::from_vec(out, (batch, out_len, cout), xs.device())
}

#[derive(Debug, Clone, Copy)]
struct Geometry {
    batch: usize,
    len: usize,
    cin: usize,
    cout: usize,
    out_len: usize,
    taps: Taps,
    slope: Option<f32>,
}

fn run(g: &Geometry, x: &[f32], w: &[f32], bias: &[f32], residual: Option<&[f32]>) -> Vec<f32> {
    let width = g.taps.kernel * g.cin;
    let band = (BAND_VALUES / width).max(MIN_BAND).min(g.out_len.max(1));
    let bands = g.out_len.div_ceil(band);
    let mut out = vec![0.0f32; g.batch * g.out_len * g.cout];
    let dst = SendPtr(out.as_mut_ptr());
    let task = |index: usize, cols: &mut Vec<f32>, parallelism: Parallelism| {
        let (b, t0) = (index / bands, (index % bands) * band);
        let t1 = (t0 + band).min(g.out_len);
        let rows = t1 - t0;
        cols.resize(rows * width, 0.0);
        gather(
            g,
            &x[b * g.len * g.cin..(b + 1) * g.len * g.cin],
            t0,
            t1,
            cols,
        );
        let first = (b * g.out_len + t0) * g.cout;
        // SAFETY: this task writes output rows t0..t1 of batch item b (`rows · cout` values
        // from `first`); tasks cover disjoint row ranges, and `out` outlives them.
        unsafe {
            let out_rows = std::slice::from_raw_parts_mut(dst.get().add(first), rows * g.cout);
            match residual {
                Some(r) => {
                    let r = &r[first..first + rows * g.cout];
                    for (o, r) in out_rows
                        .chunks_exact_mut(g.cout)
                        .zip(r.chunks_exact(g.cout))
                    {
                        for ((o, &r), &b) in o.iter_mut().zip(r).zip(bias) {
                            *o = r + b;
                        }
                    }
                }
                None => {
                    for o in out_rows.chunks_exact_mut(g.cout) {
                        o.copy_from_slice(bias);
                    }
                }
            }
            gemm::gemm(
                rows,
                g.cout,
                width,
                out_rows.as_mut_ptr(),
                1,
                g.cout as isize,
                true,
                cols.as_ptr(),
                1,
                width as isize,
                w.as_ptr(),
                1,
                g.cout as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    run_bands(g.batch * bands, task);
    out
}

avx2_dispatch! {
    /// Rows t0..t1 of the windows: row t is input rows t + j·dilation − padding for each
    /// tap j, side by side (zeros outside the input), through the leaky ReLU when there is
    /// one.
    fn gather(g: &Geometry, x: &[f32], t0: usize, t1: usize, cols: &mut [f32]) = gather_loop
}

#[inline(always)]
fn gather_loop(g: &Geometry, x: &[f32], t0: usize, t1: usize, cols: &mut [f32]) {
    let width = g.taps.kernel * g.cin;
    for (t, row) in (t0..t1).zip(cols.chunks_exact_mut(width)) {
        for (j, dst) in row.chunks_exact_mut(g.cin).enumerate() {
            let s = (t + j * g.taps.dilation) as isize - g.taps.padding as isize;
            if s < 0 || s >= g.len as isize {
                dst.fill(0.0);
                continue;
            }
            let src = &x[s as usize * g.cin..(s as usize + 1) * g.cin];
            match g.slope {
                Some(slope) => {
                    for (d, &v) in dst.iter_mut().zip(src) {
                        *d = v.max(v * slope);
                    }
                }
                None => dst.copy_from_slice(src),
            }
        }
    }
}

/// The same with candle's operators, for other devices and dtypes.
fn fallback(
    xs: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    taps: Taps,
    fused: Fused,
    out_len: usize,
) -> Result<Tensor> {
    let mut xs = match fused.leaky_slope {
        Some(s) => leaky_relu(xs, s)?,
        None => xs.clone(),
    };
    if taps.padding > 0 {
        xs = xs.pad_with_zeros(1, taps.padding, taps.padding)?;
    }
    let cols = if taps.kernel == 1 {
        xs
    } else {
        let windows = (0..taps.kernel)
            .map(|k| xs.narrow(1, k * taps.dilation, out_len))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&windows, 2)?
    };
    let out = cols.broadcast_matmul(weight)?.broadcast_add(bias)?;
    match fused.residual {
        Some(r) => out + r,
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{max_diff, random};
    use super::*;

    /// Channels-first candle conv1d of the leaky-ReLU'd input, back to channels-last.
    fn reference(
        xs: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        taps: Taps,
        slope: Option<f64>,
    ) -> Tensor {
        let (_, _, cin) = xs.dims3().unwrap();
        let (_, cout) = weight.dims2().unwrap();
        let x = match slope {
            Some(s) => candle_nn::ops::leaky_relu(xs, s).unwrap(),
            None => xs.clone(),
        };
        // (kernel·in, out) in (tap, channel) order → PyTorch's (out, in, kernel).
        let w = weight
            .reshape((taps.kernel, cin, cout))
            .unwrap()
            .permute((2, 1, 0))
            .unwrap()
            .contiguous()
            .unwrap();
        x.transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
            .conv1d(&w, taps.padding, 1, taps.dilation, 1)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .broadcast_add(bias)
            .unwrap()
    }

    #[test]
    fn matches_candle_with_every_fusion() {
        // (batch, length, in, out, kernel, dilation, padding); the last spans many bands.
        let cases = [
            (2, 20, 3, 4, 3, 1, 1),
            (1, 30, 5, 5, 7, 3, 9),
            (2, 12, 4, 1, 7, 1, 3),
            (1, 9, 2, 3, 1, 1, 0),
            (2, 3000, 16, 16, 11, 5, 25),
        ];
        for (i, &(b, len, cin, cout, kernel, dilation, padding)) in cases.iter().enumerate() {
            let taps = Taps {
                kernel,
                dilation,
                padding,
            };
            let x = random(&[b, len, cin], 1 + i as u64);
            let w = random(&[kernel * cin, cout], 50 + i as u64);
            let bias = random(&[cout], 90 + i as u64);
            let plain = conv1d_channels_last(&x, &w, &bias, taps, Fused::default()).unwrap();
            let expected = reference(&x, &w, &bias, taps, None);
            assert!(max_diff(&plain, &expected) < 1e-5, "case {i}");
            let residual = random(expected.dims(), 7 + i as u64);
            let fused = Fused {
                leaky_slope: Some(0.1),
                residual: Some(&residual),
            };
            let ours = conv1d_channels_last(&x, &w, &bias, taps, fused).unwrap();
            let expected = (reference(&x, &w, &bias, taps, Some(0.1)) + &residual).unwrap();
            assert!(max_diff(&ours, &expected) < 1e-5, "case {i}, fused");
        }
    }

    #[test]
    fn rejects_mismatches() {
        let x = random(&[1, 10, 3], 1);
        let w = random(&[9, 2], 2);
        let bias = random(&[2], 3);
        let taps = Taps {
            kernel: 3,
            dilation: 1,
            padding: 1,
        };
        assert!(conv1d_channels_last(&x, &w, &bias, taps, Fused::default()).is_ok());
        let wrong = random(&[1, 9, 2], 4);
        let fused = Fused {
            leaky_slope: None,
            residual: Some(&wrong),
        };
        assert!(conv1d_channels_last(&x, &w, &bias, taps, fused).is_err());
        let long = Taps {
            kernel: 3,
            dilation: 10,
            padding: 0,
        };
        let err = conv1d_channels_last(&x, &w, &bias, long, Fused::default()).unwrap_err();
        assert!(err.to_string().contains("shorter than the kernel"), "{err}");
    }
}
