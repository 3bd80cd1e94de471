//! `exp` over a slice in a form the compiler turns into SIMD code: the scalar `f32::exp` is
//! a library call per value, which is what made the attention's softmax slow.

use crate::simd::avx2_dispatch;

/// ln 2 split in two, so that `x − n·ln 2` loses no precision (Cody–Waite).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5·2²³ + 127: adding it rounds to an integer n and leaves n + 127 in the low bits.
const ROUND_BIAS: f32 = 12_583_039.0;

avx2_dispatch! {
    /// `x[i] = exp(x[i] − max(x))`, returning the sum: softmax before the division.
    pub fn softmax_numerators(x: &mut [f32]) -> f32 = softmax_numerators_loop
}

#[inline(always)]
fn softmax_numerators_loop(x: &mut [f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (m, &v) in lanes.iter_mut().zip(c) {
            *m = m.max(v);
        }
    }
    let max = chunks.remainder().iter().fold(
        lanes.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)),
        |a, &b| a.max(b),
    );
    exp_shifted_sum(x, max)
}

/// `x[i] = exp(x[i] − shift)`, returning the sum of the results. Relative error below
/// 2e-7 for arguments in [−87, 88]; smaller arguments give about 1e-38 instead of less.
#[inline(always)]
fn exp_shifted_sum(x: &mut [f32], shift: f32) -> f32 {
    let mut sum = [0.0f32; 8];
    let mut chunks = x.chunks_exact_mut(8);
    for c in &mut chunks {
        for (v, s) in c.iter_mut().zip(sum.iter_mut()) {
            *v = exp(*v - shift);
            *s += *v;
        }
    }
    let mut total: f32 = sum.iter().sum();
    for v in chunks.into_remainder() {
        *v = exp(*v - shift);
        total += *v;
    }
    total
}

/// `x[i] = x[i] · sigmoid(x[i])`.
#[inline(always)]
pub(super) fn silu_loop(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v /= 1.0 + exp(-*v);
    }
}

/// Cephes' `expf`: e^x = 2^n · e^r with |r| ≤ ln 2 / 2, e^r by a degree-6 polynomial.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Plain products and sums: `mul_add` is a library call on CPUs built without FMA.
    let t = x * std::f32::consts::LOG2_E + ROUND_BIAS;
    let n = t - ROUND_BIAS;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e_r = p * (r * r) + r + 1.0;
    // The low bits of t hold n + 127, the biased exponent of 2^n.
    e_r * f32::from_bits(t.to_bits() << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_library_exp() {
        let xs: Vec<f32> = (0..20_001)
            .map(|i| -87.0 + i as f32 * (175.0 / 20_000.0))
            .collect();
        let mut ys = xs.clone();
        exp_shifted_sum(&mut ys, 0.0);
        for (&x, &y) in xs.iter().zip(&ys) {
            let e = f64::from(x).exp();
            let rel = ((f64::from(y) - e) / e).abs();
            assert!(
                rel < 2e-7,
                "exp({x}) = {y}, expected {e} (relative error {rel})"
            );
        }
        // The sum, over arguments whose sum fits an f32.
        let mut ys: Vec<f32> = (0..1001).map(|i| -20.0 + i as f32 * 0.04).collect();
        let expected: f64 = ys.iter().map(|&x| f64::from(x).exp()).sum();
        let sum = exp_shifted_sum(&mut ys, 0.0);
        assert!(((f64::from(sum) - expected) / expected).abs() < 1e-5);
    }

    #[test]
    fn silu_matches_its_definition() {
        let xs: Vec<f32> = (0..2001).map(|i| -100.0 + i as f32 * 0.1).collect();
        let mut ys = xs.clone();
        silu_loop(&mut ys);
        for (&x, &y) in xs.iter().zip(&ys) {
            let e = f64::from(x) / (1.0 + (-f64::from(x)).exp());
            assert!(
                (f64::from(y) - e).abs() <= 1e-6 * e.abs().max(1.0),
                "silu({x}) = {y}, not {e}"
            );
        }
    }

    #[test]
    fn softmax_numerators_subtract_the_maximum() {
        let mut ys: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let sum = softmax_numerators(&mut ys);
        assert_eq!(ys[18], 1.0);
        let expected: f32 = (0..19).map(|i| ((i as f32 - 18.0) * 0.5).exp()).sum();
        assert!((sum - expected).abs() < 1e-5);
    }

    #[test]
    fn shifts_and_flushes_large_negative_arguments() {
        let mut ys = [3.0f32, 1.0, -500.0];
        let sum = exp_shifted_sum(&mut ys, 3.0);
        assert_eq!(ys[0], 1.0);
        assert!((ys[1] - (-2.0f32).exp()).abs() < 1e-7);
        assert!(ys[2] < 1e-37);
        assert!((sum - 1.0 - (-2.0f32).exp()).abs() < 1e-6);
    }
}
