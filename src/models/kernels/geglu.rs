//! The GEGLU gate of the transformers' feed-forward: one half of the projection times the
//! exact GELU of the other, in one pass.

use crate::simd::avx2_dispatch;
use candle_core::{D, Result, Tensor};
use rayon::prelude::*;

use super::exp::exp;
use super::{cpu_values, on_cpu_f32};

/// `h` (…, 2·inner) to `h[…, :inner] · gelu(h[…, inner:])`, GELU with the error function
/// as PyTorch's `F.gelu` computes it.
pub fn geglu(h: &Tensor) -> Result<Tensor> {
    let width = h.dim(D::Minus1)?;
    if width % 2 != 0 {
        candle_core::bail!("geglu: the last dimension ({width}) is odd");
    }
    let inner = width / 2;
    let mut shape = h.dims().to_vec();
    if let Some(last) = shape.last_mut() {
        *last = inner;
    }
    if !on_cpu_f32(h) || inner == 0 {
        return h.narrow(D::Minus1, 0, inner)? * h.narrow(D::Minus1, inner, inner)?.gelu_erf()?;
    }
    let h = h.contiguous()?;
    let out = {
        let (storage, layout) = h.storage_and_layout();
        let values = cpu_values(&storage, layout, "geglu")?;
        let mut out = vec![0.0f32; values.len() / 2];
        out.par_chunks_mut(inner)
            .zip(values.par_chunks(width))
            .for_each(|(out, row)| gate_row(out, row));
        out
    };
    Tensor::from_vec(out, shape, h.device())
}

avx2_dispatch! {
    fn gate_row(out: &mut [f32], row: &[f32]) = gate_row_loop
}

#[inline(always)]
fn gate_row_loop(out: &mut [f32], row: &[f32]) {
    let (value, gate) = row.split_at(out.len());
    for ((o, &v), &g) in out.iter_mut().zip(value).zip(gate) {
        *o = v * gelu(g);
    }
}

/// x · Φ(x) with Φ(x) = (1 + erf(x/√2)) / 2, erf by Abramowitz and Stegun 7.1.26
/// (absolute error below 1.5e-7). For negative x, 1 + erf is taken as the small term
/// itself rather than as 1 minus a number near 1, so the tail keeps its relative accuracy.
#[inline(always)]
fn gelu(x: f32) -> f32 {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    let tail = poly * exp(-z * z); // 1 − erf(z)
    let cdf = if x >= 0.0 {
        1.0 - 0.5 * tail
    } else {
        0.5 * tail
    };
    x * cdf
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{max_diff, random};
    use super::*;

    #[test]
    fn matches_candle_gelu_erf_times_the_value_half() {
        let h = (random(&[2, 5, 2 * 37], 11) * 12.0).unwrap();
        let ours = geglu(&h).unwrap();
        let expected = (h.narrow(2, 0, 37).unwrap()
            * h.narrow(2, 37, 37).unwrap().gelu_erf().unwrap())
        .unwrap();
        assert_eq!(ours.dims(), [2, 5, 37]);
        let d = max_diff(&ours, &expected);
        assert!(d < 2e-6, "max difference {d}");
    }

    #[test]
    fn gelu_tails_and_zero() {
        assert_eq!(gelu(0.0), 0.0);
        assert!((gelu(10.0) - 10.0).abs() < 1e-6);
        // Φ(−5) = 2.8665e-7: relative accuracy in the far tail.
        let g = gelu(-5.0);
        assert!(((g / -5.0) - 2.866_515_7e-7).abs() < 1e-9, "{g}");
        assert!(geglu(&random(&[3, 5], 1)).is_err());
    }
}
