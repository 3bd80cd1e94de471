//! The layout changes the models make between kernels, on every thread: candle copies a
//! strided tensor on one, which left the other threads idle between the parallel kernels.

use candle_core::{Result, Tensor};
use rayon::prelude::*;

use super::{cpu_values, on_cpu_f32};

/// Output rows per task of a transpose.
const TILE: usize = 64;

/// `xs` (batch, rows, cols) as (batch, cols, rows), contiguous: channel-first feature maps
/// to tokens and back.
pub fn transpose_last_two(xs: &Tensor) -> Result<Tensor> {
    let (batch, rows, cols) = xs.dims3()?;
    if !on_cpu_f32(xs) || rows == 0 || cols == 0 {
        return xs.transpose(1, 2)?.contiguous();
    }
    let xs = xs.contiguous()?;
    let image = rows * cols;
    let out = with_values(&xs, |x| {
        let mut out = vec![0.0f32; x.len()];
        out.par_chunks_mut(image)
            .zip(x.par_chunks(image))
            .for_each(|(dst, src)| {
                // Output rows c0.. (input columns) of one image: TILE input columns read
                // from every input row, a cache-sized tile.
                dst.par_chunks_mut(TILE * rows)
                    .enumerate()
                    .for_each(|(t, dst)| {
                        let c0 = t * TILE;
                        let n = dst.len() / rows;
                        for (r, line) in src.chunks_exact(cols).enumerate() {
                            for (c, &v) in line[c0..c0 + n].iter().enumerate() {
                                dst[c * rows + r] = v;
                            }
                        }
                    });
            });
        out
    })?;
    Tensor::from_vec(out, (batch, cols, rows), xs.device())
}

/// `a` and `b`, (batch, channels, …) with the same batch and trailing sizes, joined along
/// the channels: a UNet level's input and its skip connection.
pub fn concat_channels(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (da, db) = (a.dims(), b.dims());
    if da.len() < 2 || da.len() != db.len() || da[0] != db[0] || da[2..] != db[2..] {
        candle_core::bail!("concat: {da:?} and {db:?} differ outside the channels");
    }
    if !on_cpu_f32(a) || !on_cpu_f32(b) || da[0] == 0 {
        return Tensor::cat(&[a, b], 1);
    }
    let (a, b) = (a.contiguous()?, b.contiguous()?);
    let batch = da[0];
    let (per_a, per_b) = (a.elem_count() / batch, b.elem_count() / batch);
    let out = with_values(&a, |av| {
        with_values(&b, |bv| {
            let mut out = vec![0.0f32; av.len() + bv.len()];
            if per_a + per_b > 0 {
                out.par_chunks_mut(per_a + per_b)
                    .enumerate()
                    .for_each(|(i, dst)| {
                        let (to_a, to_b) = dst.split_at_mut(per_a);
                        to_a.copy_from_slice(&av[i * per_a..(i + 1) * per_a]);
                        to_b.copy_from_slice(&bv[i * per_b..(i + 1) * per_b]);
                    });
            }
            out
        })
    })??;
    let mut shape = da.to_vec();
    shape[1] += db[1];
    Tensor::from_vec(out, shape, a.device())
}

/// `f` on the values of a contiguous CPU `f32` tensor.
fn with_values<T>(t: &Tensor, f: impl FnOnce(&[f32]) -> T) -> Result<T> {
    let (storage, layout) = t.storage_and_layout();
    Ok(f(cpu_values(&storage, layout, "layout")?))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{max_diff, random};
    use super::*;

    #[test]
    fn transposes_match_candle() {
        for shape in [[2usize, 70, 130], [1, 3, 5], [3, 129, 64]] {
            let x = random(&shape, 5);
            let ours = transpose_last_two(&x).unwrap();
            let theirs = x.transpose(1, 2).unwrap().contiguous().unwrap();
            assert_eq!(ours.dims(), theirs.dims());
            assert_eq!(max_diff(&ours, &theirs), 0.0);
        }
    }

    #[test]
    fn concatenation_matches_candle() {
        let a = random(&[2, 3, 4, 5], 1);
        let b = random(&[2, 6, 4, 5], 2);
        let ours = concat_channels(&a, &b).unwrap();
        let theirs = Tensor::cat(&[&a, &b], 1).unwrap();
        assert_eq!(ours.dims(), [2, 9, 4, 5]);
        assert_eq!(max_diff(&ours, &theirs), 0.0);
        assert!(concat_channels(&a, &random(&[2, 6, 4, 4], 3)).is_err());
    }
}
