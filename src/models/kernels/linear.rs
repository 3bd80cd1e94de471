//! A linear layer whose bias and residual are the starting values of its matrix product.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;
use gemm::Parallelism;
use rayon::prelude::*;

use super::{cpu_values, on_cpu_f32, optional_values, threads};

/// Rows of the output set up per task before the product.
const ROWS_PER_TASK: usize = 64;

/// `xs·Wᵀ + bias` over the last dimension, with `weight` (out, in) as PyTorch stores it.
/// On the CPU the output starts as bias (+ residual) and the product adds to it, where
/// `candle_nn::Linear` makes a pass for the bias and the caller another for the residual.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }

    /// `weight` (out, in) and `bias` (out) under `vb`.
    pub fn load(cin: usize, cout: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self::new(
            vb.get((cout, cin), "weight")?,
            Some(vb.get(cout, "bias")?),
        ))
    }

    /// `weight` (out, in) under `vb`, no bias.
    pub fn load_no_bias(cin: usize, cout: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self::new(vb.get((cout, cin), "weight")?, None))
    }

    /// `xs·Wᵀ + bias + residual`, the residual shaped as the output.
    pub fn forward_residual(&self, xs: &Tensor, residual: Option<&Tensor>) -> Result<Tensor> {
        let (cout, cin) = self.weight.dims2()?;
        let dims = xs.dims();
        let Some((&last, lead)) = dims.split_last() else {
            candle_core::bail!("linear: a scalar input");
        };
        if last != cin {
            candle_core::bail!("linear: input {dims:?} for a weight of ({cout}, {cin})");
        }
        let mut out_dims = lead.to_vec();
        out_dims.push(cout);
        if let Some(r) = residual
            && r.dims() != out_dims
        {
            candle_core::bail!(
                "linear: residual {:?} for an output of {out_dims:?}",
                r.dims()
            );
        }
        let cpu = [Some(xs), Some(&self.weight), self.bias.as_ref(), residual]
            .into_iter()
            .flatten()
            .all(on_cpu_f32);
        if !cpu {
            let mut out = xs.broadcast_matmul(&self.weight.t()?)?;
            if let Some(bias) = &self.bias {
                out = out.broadcast_add(bias)?;
            }
            return match residual {
                Some(r) => out + r,
                None => Ok(out),
            };
        }
        let rows: usize = lead.iter().product();
        let (xs, weight) = (xs.contiguous()?, self.weight.contiguous()?);
        let bias = self.bias.as_ref().map(Tensor::contiguous).transpose()?;
        let residual = residual.map(Tensor::contiguous).transpose()?;
        let out = {
            let (xg, xl) = xs.storage_and_layout();
            let (wg, wl) = weight.storage_and_layout();
            let bg = bias.as_ref().map(Tensor::storage_and_layout);
            let rg = residual.as_ref().map(Tensor::storage_and_layout);
            let b = optional_values(&bg, "linear")?;
            let r = optional_values(&rg, "linear")?;
            let product = Product {
                rows,
                cin,
                cout,
                x: cpu_values(&xg, xl, "linear")?,
                weight: cpu_values(&wg, wl, "linear")?,
            };
            product.run(b, r)
        };
        Tensor::from_vec(out, out_dims, xs.device())
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.forward_residual(xs, None)
    }
}

struct Product<'a> {
    rows: usize,
    cin: usize,
    cout: usize,
    x: &'a [f32],
    weight: &'a [f32],
}

impl Product<'_> {
    fn run(&self, bias: Option<&[f32]>, residual: Option<&[f32]>) -> Vec<f32> {
        let (rows, cin, cout) = (self.rows, self.cin, self.cout);
        let len = rows * cout;
        let mut out = Vec::with_capacity(len);
        // Without a bias or residual (and with something to multiply) the product writes
        // every value itself; otherwise the output starts as bias + residual.
        let starts = bias.is_some() || residual.is_some() || cin == 0;
        if starts && len > 0 {
            out.spare_capacity_mut()[..len]
                .par_chunks_mut(ROWS_PER_TASK * cout)
                .enumerate()
                .for_each(|(task, chunk)| {
                    for (r, row) in chunk.chunks_exact_mut(cout).enumerate() {
                        let at = (task * ROWS_PER_TASK + r) * cout;
                        let residual = residual.map(|x| &x[at..at + cout]);
                        match (bias, residual) {
                            (Some(b), Some(x)) => row
                                .iter_mut()
                                .zip(b.iter().zip(x))
                                .for_each(|(v, (&b, &x))| _ = v.write(b + x)),
                            (Some(b), None) => {
                                row.iter_mut().zip(b).for_each(|(v, &b)| _ = v.write(b))
                            }
                            (None, Some(x)) => {
                                row.iter_mut().zip(x).for_each(|(v, &x)| _ = v.write(x))
                            }
                            (None, None) => row.iter_mut().for_each(|v| _ = v.write(0.0)),
                        }
                    }
                });
        }
        if len > 0 && cin > 0 {
            // SAFETY: out has room for (rows, cout) row-major, x is (rows, cin) row-major,
            // and Wᵀ is read from weight (cout, cin) as (cin, cout), rows 1 apart and columns
            // cin apart: every index is inside its buffer. Without `starts` gemm does not read
            // the output, only writes it.
            unsafe {
                gemm::gemm(
                    rows,
                    cout,
                    cin,
                    out.as_mut_ptr(),
                    1,
                    cout as isize,
                    starts,
                    self.x.as_ptr(),
                    1,
                    cin as isize,
                    self.weight.as_ptr(),
                    cin as isize,
                    1,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::Rayon(threads()),
                );
            }
        }
        // SAFETY: every value was written, by the set-up above or by the product.
        unsafe { out.set_len(len) };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{max_diff, random};
    use super::*;

    #[test]
    fn matches_candle_with_and_without_bias_and_residual() {
        // (leading dims, in, out): batched tokens, one row, rows beyond one task's share.
        for (i, (lead, cin, cout)) in [(vec![2, 7], 5, 3), (vec![1], 16, 9), (vec![3, 70], 12, 20)]
            .into_iter()
            .enumerate()
        {
            let seed = 40 * i as u64;
            let mut x_dims = lead.clone();
            x_dims.push(cin);
            let mut out_dims = lead.clone();
            out_dims.push(cout);
            let x = random(&x_dims, seed);
            let weight = random(&[cout, cin], seed + 1);
            let bias = random(&[cout], seed + 2);
            let residual = random(&out_dims, seed + 3);
            let theirs = candle_nn::Linear::new(weight.clone(), Some(bias.clone()))
                .forward(&x)
                .unwrap();
            let with_bias = Linear::new(weight.clone(), Some(bias.clone()));
            assert!(
                max_diff(&with_bias.forward(&x).unwrap(), &theirs) < 1e-5,
                "case {i}"
            );
            let fused = with_bias.forward_residual(&x, Some(&residual)).unwrap();
            assert!(
                max_diff(&fused, &(&theirs + &residual).unwrap()) < 1e-5,
                "case {i}"
            );
            let plain = candle_nn::Linear::new(weight.clone(), None)
                .forward(&x)
                .unwrap();
            let ours = Linear::new(weight, None).forward(&x).unwrap();
            assert!(max_diff(&ours, &plain) < 1e-5, "case {i}");
        }
    }

    #[test]
    fn rejects_mismatched_inputs_and_residuals() {
        let layer = Linear::new(random(&[3, 4], 1), None);
        let err = layer.forward(&random(&[2, 5], 2)).unwrap_err();
        assert!(err.to_string().contains("(3, 4)"), "{err}");
        let err = layer
            .forward_residual(&random(&[2, 4], 3), Some(&random(&[2, 4], 4)))
            .unwrap_err();
        assert!(err.to_string().contains("residual"), "{err}");
    }
}
