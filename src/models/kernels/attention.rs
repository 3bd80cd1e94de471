//! Multi-head scaled dot-product attention, one block of queries of one head at a time.

use candle_core::{CpuStorage, CustomOp3, D, Layout, Result, Shape, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

use super::exp::softmax_numerators;
use super::{SendPtr, contiguous_f32, on_cpu_f32, threads};

/// Queries per task (at most): their scores against every key are one task's scratch.
const QUERY_BLOCK: usize = 256;
const MIN_QUERY_BLOCK: usize = 32;

/// softmax(q·kᵀ·scale)·v per head. `q` is (batch, queries, heads·d), `k` and `v` are
/// (batch, keys, heads·d), as linear projections give them; the result is (batch, queries,
/// heads·d) with the heads side by side again, ready for the output projection.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, scale: f64) -> Result<Tensor> {
    let (batch, nq, width) = q.dims3()?;
    let (kb, nk, kw) = k.dims3()?;
    if k.dims() != v.dims() || kb != batch || kw != width || heads == 0 || width % heads != 0 {
        candle_core::bail!(
            "attention: queries {:?}, keys {:?}, values {:?}, {heads} heads",
            q.dims(),
            k.dims(),
            v.dims()
        );
    }
    if on_cpu_f32(q) && on_cpu_f32(k) && on_cpu_f32(v) && nk > 0 {
        let op = AttentionOp {
            heads,
            scale: scale as f32,
        };
        return q
            .contiguous()?
            .apply_op3_no_bwd(&k.contiguous()?, &v.contiguous()?, &op);
    }
    // Other devices and dtypes: the same computation with candle's operators.
    let d = width / heads;
    let split = |t: &Tensor, n: usize| -> Result<Tensor> {
        t.reshape((batch, n, heads, d))?
            .transpose(1, 2)?
            .contiguous()
    };
    let (qh, kh, vh) = (split(q, nq)?, split(k, nk)?, split(v, nk)?);
    let scores = (qh * scale)?.matmul(&kh.transpose(D::Minus2, D::Minus1)?.contiguous()?)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
    probs
        .matmul(&vh)?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((batch, nq, width))
}

struct AttentionOp {
    heads: usize,
    scale: f32,
}

impl CustomOp3 for AttentionOp {
    fn name(&self) -> &'static str {
        "attention-query-blocks"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (batch, nq, width) = ql.shape().dims3()?;
        let (_, nk, _) = kl.shape().dims3()?;
        let q = contiguous_f32(qs, ql, "attention queries")?;
        let k = contiguous_f32(ks, kl, "attention keys")?;
        let v = contiguous_f32(vs, vl, "attention values")?;
        let out = run(q, k, v, batch, nq, nk, width, self.heads, self.scale);
        Ok((CpuStorage::F32(out), Shape::from((batch, nq, width))))
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    batch: usize,
    nq: usize,
    nk: usize,
    width: usize,
    heads: usize,
    scale: f32,
) -> Vec<f32> {
    let d = width / heads;
    // Large blocks, since every block's products read (and pack) all of its head's keys and
    // values; smaller ones when that would leave threads without work.
    let mut qb = QUERY_BLOCK;
    while qb > MIN_QUERY_BLOCK && batch * heads * nq.div_ceil(qb) < 4 * threads() {
        qb /= 2;
    }
    let blocks = nq.div_ceil(qb);
    let mut out = vec![0.0f32; batch * nq * width];
    let dst = SendPtr(out.as_mut_ptr());
    (0..batch * heads * blocks).into_par_iter().for_each_init(
        <(Vec<f32>, Vec<f32>)>::default,
        |(scores, sums), task| {
            let (bh, block) = (task / blocks, task % blocks);
            let (b, h) = (bh / heads, bh % heads);
            let q0 = block * qb;
            let m = qb.min(nq - q0);
            scores.resize(m * nk, 0.0);
            sums.resize(m, 0.0);
            let q_at = &q[(b * nq + q0) * width + h * d..];
            let k_at = &k[b * nk * width + h * d..];
            let v_at = &v[b * nk * width + h * d..];
            // SAFETY: the pointers stay inside q, k, v and scores: rows are `width` apart
            // and a head's d columns start at h·d < width. The task writes rows q0..q0+m,
            // columns h·d..(h+1)·d of image b's output, which no other task writes; `out`
            // outlives the parallel section.
            unsafe {
                // scores = scale · q_block · kᵀ (kᵀ read in place: its rows are k's columns).
                gemm::gemm(
                    m,
                    nk,
                    d,
                    scores.as_mut_ptr(),
                    1,
                    nk as isize,
                    false,
                    q_at.as_ptr(),
                    1,
                    width as isize,
                    k_at.as_ptr(),
                    width as isize,
                    1,
                    0.0,
                    scale,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
                // Unnormalised probabilities; the m·d outputs are divided by the row sums
                // below, rather than the m·nk probabilities here.
                for (row, sum) in scores.chunks_exact_mut(nk).zip(sums.iter_mut()) {
                    *sum = softmax_numerators(row);
                }
                let out_at = dst.get().add((b * nq + q0) * width + h * d);
                gemm::gemm(
                    m,
                    d,
                    nk,
                    out_at,
                    1,
                    width as isize,
                    false,
                    scores.as_ptr(),
                    1,
                    nk as isize,
                    v_at.as_ptr(),
                    1,
                    width as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
                for (i, &sum) in sums.iter().enumerate() {
                    let row = std::slice::from_raw_parts_mut(out_at.add(i * width), d);
                    let inv = 1.0 / sum;
                    row.iter_mut().for_each(|v| *v *= inv);
                }
            }
        },
    );
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{max_diff, random};
    use super::*;

    /// The textbook computation with candle's operators, head by head.
    fn reference(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, scale: f64) -> Tensor {
        let (_, _, width) = q.dims3().unwrap();
        let d = width / heads;
        let mut outs = Vec::new();
        for h in 0..heads {
            let qh = q.narrow(2, h * d, d).unwrap().contiguous().unwrap();
            let kh = k.narrow(2, h * d, d).unwrap().contiguous().unwrap();
            let vh = v.narrow(2, h * d, d).unwrap().contiguous().unwrap();
            let s = (qh.matmul(&kh.t().unwrap().contiguous().unwrap()).unwrap() * scale).unwrap();
            let p = candle_nn::ops::softmax(&s, D::Minus1).unwrap();
            outs.push(p.matmul(&vh).unwrap());
        }
        Tensor::cat(&outs, 2).unwrap()
    }

    #[test]
    fn matches_the_textbook_computation() {
        // (batch, queries, keys, heads, head size): more queries than a block, fewer, and
        // a single head as the VAE uses it.
        for (i, &(b, nq, nk, heads, d)) in [(2, 70, 50, 4, 8), (1, 5, 9, 2, 3), (1, 33, 33, 1, 16)]
            .iter()
            .enumerate()
        {
            let q = (random(&[b, nq, heads * d], 10 + i as u64) * 4.0).unwrap();
            let k = (random(&[b, nk, heads * d], 20 + i as u64) * 4.0).unwrap();
            let v = random(&[b, nk, heads * d], 30 + i as u64);
            let scale = 1.0 / (d as f64).sqrt();
            let ours = attention(&q, &k, &v, heads, scale).unwrap();
            let expected = reference(&q, &k, &v, heads, scale);
            let diff = max_diff(&ours, &expected);
            assert!(diff < 1e-5, "case {i}: max difference {diff}");
        }
    }

    #[test]
    fn rejects_mismatched_shapes() {
        let q = random(&[1, 4, 6], 1);
        let k = random(&[1, 5, 6], 2);
        let v = random(&[1, 5, 6], 3);
        assert!(attention(&q, &k, &v, 4, 1.0).is_err());
        assert!(attention(&q, &k, &random(&[1, 4, 6], 4), 2, 1.0).is_err());
    }
}
