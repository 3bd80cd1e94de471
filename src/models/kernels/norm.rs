//! Group normalisation, optionally followed by SiLU, in two passes over the input.

use crate::simd::avx2_dispatch;
use candle_core::{CpuStorage, CustomOp3, Layout, Module, Result, Shape, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use super::exp::silu_loop;
use super::{contiguous_f32, on_cpu_f32};

/// A group-norm layer loaded from `weight` and `bias` (channels).
#[derive(Debug, Clone)]
pub struct GroupNorm {
    weight: Tensor,
    bias: Tensor,
    groups: usize,
    eps: f64,
}

impl GroupNorm {
    pub fn load(groups: usize, channels: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        if groups == 0 || !channels.is_multiple_of(groups) {
            candle_core::bail!("group norm: {channels} channels in {groups} groups");
        }
        Ok(Self {
            weight: vb.get(channels, "weight")?,
            bias: vb.get(channels, "bias")?,
            groups,
            eps,
        })
    }

    /// The normalised input followed by SiLU, in the same passes.
    pub fn forward_silu(&self, xs: &Tensor) -> Result<Tensor> {
        group_norm(xs, &self.weight, &self.bias, self.groups, self.eps, true)
    }
}

impl Module for GroupNorm {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        group_norm(xs, &self.weight, &self.bias, self.groups, self.eps, false)
    }
}

/// `xs` (batch, channels, …) normalised over each group of channels and everything after
/// them, scaled by `weight` and shifted by `bias` per channel; then SiLU when `silu`.
pub fn group_norm(
    xs: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    groups: usize,
    eps: f64,
    silu: bool,
) -> Result<Tensor> {
    let dims = xs.dims();
    if dims.len() < 2 || groups == 0 || !dims[1].is_multiple_of(groups) {
        candle_core::bail!("group norm: input {dims:?} in {groups} groups");
    }
    if on_cpu_f32(xs) && on_cpu_f32(weight) && on_cpu_f32(bias) {
        let op = GroupNormOp { groups, eps, silu };
        return xs
            .contiguous()?
            .apply_op3_no_bwd(&weight.contiguous()?, &bias.contiguous()?, &op);
    }
    let norm = candle_nn::GroupNorm::new(weight.clone(), bias.clone(), dims[1], groups, eps)?;
    let out = norm.forward(xs)?;
    if silu {
        candle_nn::ops::silu(&out)
    } else {
        Ok(out)
    }
}

struct GroupNormOp {
    groups: usize,
    eps: f64,
    silu: bool,
}

impl CustomOp3 for GroupNormOp {
    fn name(&self) -> &'static str {
        "group-norm-two-pass"
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
        let dims = xl.shape().dims();
        let channels = dims[1];
        let x = contiguous_f32(xs, xl, "group norm input")?;
        let weight = contiguous_f32(ws, wl, "group norm weight")?;
        let bias = contiguous_f32(bs, bl, "group norm bias")?;
        if weight.len() != channels || bias.len() != channels {
            candle_core::bail!(
                "group norm: {channels} channels, {} weights, {} biases",
                weight.len(),
                bias.len()
            );
        }
        let per_channel: usize = dims[2..].iter().product();
        let per_group = channels / self.groups * per_channel;
        let mut out = vec![0.0f32; x.len()];
        if per_group > 0 {
            out.par_chunks_mut(per_group)
                .zip(x.par_chunks(per_group))
                .enumerate()
                .for_each(|(i, (y, x))| {
                    let first = (i % self.groups) * (channels / self.groups);
                    let group = Group {
                        weight: &weight[first..],
                        bias: &bias[first..],
                        per_channel,
                        eps: self.eps,
                        silu: self.silu,
                    };
                    normalize_group(x, y, &group);
                });
        }
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }
}

/// One group's parameters: its channels' weights and biases (from its first channel).
struct Group<'a> {
    weight: &'a [f32],
    bias: &'a [f32],
    per_channel: usize,
    eps: f64,
    silu: bool,
}

avx2_dispatch! {
    /// `y` = the group `x` normalised, scaled and shifted per channel, then SiLU.
    fn normalize_group(x: &[f32], y: &mut [f32], group: &Group) = normalize_group_loop
}

#[inline(always)]
fn normalize_group_loop(x: &[f32], y: &mut [f32], group: &Group) {
    let (mean, rstd) = statistics(x, group.eps);
    let channels = y
        .chunks_exact_mut(group.per_channel)
        .zip(x.chunks_exact(group.per_channel));
    for (c, (y, x)) in channels.enumerate() {
        let scale = group.weight[c] * rstd;
        let shift = group.bias[c] - mean * scale;
        for (y, &x) in y.iter_mut().zip(x) {
            *y = x * scale + shift;
        }
        if group.silu {
            silu_loop(y);
        }
    }
}

/// Mean and 1/√(variance + eps) of `x` (population variance, as PyTorch normalises).
#[inline(always)]
fn statistics(x: &[f32], eps: f64) -> (f32, f32) {
    // Eight running sums each, so the additions vectorise; in f64, so that large groups
    // lose nothing to cancellation when the variance is taken as E[x²] − E[x]².
    let (mut sum, mut squares) = ([0.0f64; 8], [0.0f64; 8]);
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            let v = f64::from(c[i]);
            sum[i] += v;
            squares[i] += v * v;
        }
    }
    let (mut s, mut sq): (f64, f64) = (sum.iter().sum(), squares.iter().sum());
    for &v in chunks.remainder() {
        s += f64::from(v);
        sq += f64::from(v) * f64::from(v);
    }
    let n = x.len() as f64;
    let mean = s / n;
    let var = (sq / n - mean * mean).max(0.0);
    (mean as f32, (1.0 / (var + eps).sqrt()) as f32)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{max_diff, random};
    use super::*;

    #[test]
    fn matches_candle_with_and_without_silu() {
        for (i, shape) in [[2usize, 8, 5, 3], [1, 32, 7, 9]].iter().enumerate() {
            let x = ((random(shape, 1 + i as u64) * 6.0).unwrap() + 2.0).unwrap();
            let w = random(&[shape[1]], 2 + i as u64);
            let b = random(&[shape[1]], 3 + i as u64);
            let groups = shape[1] / 4;
            let theirs = candle_nn::GroupNorm::new(w.clone(), b.clone(), shape[1], groups, 1e-6)
                .unwrap()
                .forward(&x)
                .unwrap();
            let ours = group_norm(&x, &w, &b, groups, 1e-6, false).unwrap();
            assert!(max_diff(&ours, &theirs) < 1e-5, "case {i}");
            let ours = group_norm(&x, &w, &b, groups, 1e-6, true).unwrap();
            let theirs = candle_nn::ops::silu(&theirs).unwrap();
            assert!(max_diff(&ours, &theirs) < 1e-5, "case {i} with SiLU");
        }
    }

    #[test]
    fn rejects_channels_that_do_not_divide_into_groups() {
        let x = random(&[1, 6, 2, 2], 1);
        let w = random(&[6], 2);
        assert!(group_norm(&x, &w, &w, 4, 1e-5, false).is_err());
    }
}
