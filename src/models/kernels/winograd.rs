//! 3×3 convolutions with stride 1 and padding 1 by Winograd's minimal filtering F(2×2, 3×3)
//! (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
//!
//! Each 2×2 block of output pixels (a *tile*) comes from the 4×4 input patch around it with
//! 16 multiplications per input and output channel instead of 36. Transforming the patches
//! (V = Bᵀ·d·B) and the kernels (U = G·g·Gᵀ) turns those multiplications into 16 independent
//! matrix products, one per position p of the transformed 4×4 patch,
//!
//! ```text
//! M[p] (out × tiles) = U[p] (out × in) · V[p] (in × tiles),
//! ```
//!
//! after which each tile's 2×2 outputs are a fixed sum of its 16 products (Y = Aᵀ·m·A).
//! The matrix products do 2.25 times fewer multiply-adds than im2col's, and the transforms
//! are cheap next to them. The weights are transformed once per layer; the input and output
//! transforms run one band of tile rows at a time, so that a band's V and M stay in cache.
//!
//! The values differ from a direct convolution only by rounding: every transform matrix
//! here has entries 0, ±1 and ±½.

use std::mem::MaybeUninit;

use gemm::Parallelism;
use rayon::prelude::*;

use super::conv::Geometry;
use super::{SendPtr, run_bands};
use crate::simd::avx2_dispatch;

/// Positions of a transformed 4×4 patch: one matrix product each.
const POSITIONS: usize = 16;
/// Scratch per band: about this many `f32` of transformed inputs and products (2 MiB).
const BAND_VALUES: usize = 1 << 19;
/// But at least this many tiles per band: each band's products read the whole of U.
const MIN_TILES: usize = 64;
/// `f32` between the positions' matrices beyond their size: one cache line.
const SKEW: usize = 16;
/// Fewer channels than this (in or out) are left to im2col: the products would be too thin
/// for the transforms to pay off.
const MIN_CHANNELS: usize = 16;

/// Whether [`run`] computes a convolution of these sizes.
pub(super) fn applies(
    cin: usize,
    cout: usize,
    kh: usize,
    kw: usize,
    pad: usize,
    stride: usize,
) -> bool {
    kh == 3 && kw == 3 && stride == 1 && pad == 1 && cin >= MIN_CHANNELS && cout >= MIN_CHANNELS
}

/// U = G·g·Gᵀ for every kernel g of `weight` (out, in, 3, 3), laid out (16, out, in):
/// position p = 4·i + j of every kernel, as the left side of p's matrix product.
pub(super) fn transform_weights(weight: &[f32], cout: usize, cin: usize) -> Vec<f32> {
    let plane = cout * cin;
    let mut u = vec![0.0f32; POSITIONS * plane];
    for (oc, g) in weight.chunks_exact(9).take(plane).enumerate() {
        // G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]], applied to each kernel row...
        let t: [[f32; 4]; 3] = std::array::from_fn(|a| {
            let (g0, g1, g2) = (g[3 * a], g[3 * a + 1], g[3 * a + 2]);
            [g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2]
        });
        // ...then to each column of the result.
        for j in 0..4 {
            let (t0, t1, t2) = (t[0][j], t[1][j], t[2][j]);
            let column = [t0, 0.5 * (t0 + t1 + t2), 0.5 * (t0 - t1 + t2), t2];
            for (i, &value) in column.iter().enumerate() {
                u[(4 * i + j) * plane + oc] = value;
            }
        }
    }
    u
}

/// The convolution of `x` by the transformed weights `u` (see [`transform_weights`]), the
/// output starting from `bias` (+ `offsets`) (+ `residual`) as in the im2col path.
pub(super) fn run(
    g: &Geometry,
    x: &[f32],
    u: &[f32],
    bias: &[f32],
    offsets: Option<&[f32]>,
    residual: Option<&[f32]>,
) -> Vec<f32> {
    let plan = Plan::new(g);
    let len = g.batch * g.cout * g.oh * g.ow;
    let mut out = Vec::<f32>::with_capacity(len);
    let work = Work {
        g,
        plan: &plan,
        x,
        u,
        bias,
        offsets,
        residual,
        out: SendPtr(out.as_mut_ptr()),
    };
    run_bands(
        plan.rows.div_ceil(plan.band_rows),
        |band, scratch, parallelism| work.band(band, scratch, parallelism),
    );
    // SAFETY: the bands' output transforms wrote every value of `out` (each tile row of
    // each image in exactly one band, each tile its 2×2 pixels clipped to the image).
    unsafe { out.set_len(len) };
    out
}

/// How the tiles are cut into bands.
struct Plan {
    /// Tiles across and down one image.
    tiles_x: usize,
    tiles_y: usize,
    /// Tile rows of all images, one after another.
    rows: usize,
    band_rows: usize,
}

impl Plan {
    fn new(g: &Geometry) -> Self {
        let (tiles_x, tiles_y) = (g.ow.div_ceil(2), g.oh.div_ceil(2));
        let rows = g.batch * tiles_y;
        let per_tile = POSITIONS * (g.cin + g.cout);
        let band_tiles = (BAND_VALUES / per_tile).max(MIN_TILES);
        Self {
            tiles_x,
            tiles_y,
            rows,
            band_rows: band_tiles.div_ceil(tiles_x).clamp(1, rows.max(1)),
        }
    }
}

/// A thread's buffers, reused between its bands.
#[derive(Default)]
struct Scratch {
    /// V: (16, in, tiles) of the band.
    transformed: Vec<f32>,
    /// M: (16, out, tiles) of the band.
    products: Vec<f32>,
}

/// A task's buffers for the transforms of one channel of a segment.
struct Lines {
    /// Bᵀ along x of each input row the segment reads, column j of a patch in `across[j]`:
    /// `tiles_x` values per row.
    across: [Vec<f32>; 4],
    /// The values at even and at odd columns of those rows; or one padded row.
    even: Vec<f32>,
    odd: Vec<f32>,
    /// `tiles_x` zeros: the transform of a padding row.
    zeros: Vec<f32>,
    /// Aᵀ·m·A of the segment's tiles: (even, odd output column) × (even, odd output row).
    out: [Vec<f32>; 4],
}

impl Lines {
    fn new(plan: &Plan) -> Self {
        let tx = plan.tiles_x;
        let rows = plan.band_rows.min(plan.tiles_y);
        // A segment of n tile rows reads at most 2·n + 2 input rows.
        let inputs = (2 * rows + 2) * tx;
        Self {
            across: std::array::from_fn(|_| vec![0.0; inputs]),
            even: vec![0.0; inputs.max(2 * tx + 2)],
            odd: vec![0.0; inputs],
            zeros: vec![0.0; tx],
            out: std::array::from_fn(|_| vec![0.0; rows * tx]),
        }
    }
}

struct Work<'a> {
    g: &'a Geometry,
    plan: &'a Plan,
    x: &'a [f32],
    u: &'a [f32],
    bias: &'a [f32],
    offsets: Option<&'a [f32]>,
    residual: Option<&'a [f32]>,
    out: SendPtr,
}

/// Tile rows r0..r1 of all images, `tiles` tiles in all.
#[derive(Clone, Copy)]
struct Band {
    r0: usize,
    r1: usize,
    tiles: usize,
    /// Distances between the positions' matrices in V and in M.
    in_plane: usize,
    out_plane: usize,
}

/// The tile rows ty0..ty1 of image b in a band, whose first tile is the band's `first`.
#[derive(Clone, Copy)]
struct Segment {
    band: Band,
    b: usize,
    ty0: usize,
    ty1: usize,
    first: usize,
}

impl Band {
    /// The band's rows, one image at a time.
    fn segments(self, plan: &Plan) -> impl Iterator<Item = Segment> {
        let mut r = self.r0;
        std::iter::from_fn(move || {
            (r < self.r1).then(|| {
                let (b, ty0) = (r / plan.tiles_y, r % plan.tiles_y);
                let ty1 = plan.tiles_y.min(ty0 + self.r1 - r);
                let segment = Segment {
                    band: self,
                    b,
                    ty0,
                    ty1,
                    first: (r - self.r0) * plan.tiles_x,
                };
                r += ty1 - ty0;
                segment
            })
        })
    }
}

impl Work<'_> {
    /// Tile rows `index·band_rows..` of all images: transform, multiply, transform back.
    /// Given every thread (for fewer bands than threads), each phase runs on all of them.
    fn band(&self, index: usize, scratch: &mut Scratch, parallelism: Parallelism) {
        let parallel = matches!(parallelism, Parallelism::Rayon(_));
        let (g, plan) = (self.g, self.plan);
        let r0 = index * plan.band_rows;
        let r1 = (r0 + plan.band_rows).min(plan.rows);
        let tiles = (r1 - r0) * plan.tiles_x;
        // The positions' matrices sit a cache line further apart than their size: at
        // multiples of 4 KiB, the transforms' 16 streams would compete for the same cache
        // sets (and often are, with 64 or 128 channels and 8 tiles a row).
        let band = Band {
            r0,
            r1,
            tiles,
            in_plane: g.cin * tiles + SKEW,
            out_plane: g.cout * tiles + SKEW,
        };
        scratch.transformed.resize(POSITIONS * band.in_plane, 0.0);
        scratch.products.resize(POSITIONS * band.out_plane, 0.0);
        let v = SendPtr(scratch.transformed.as_mut_ptr());
        let m = SendPtr(scratch.products.as_mut_ptr());
        for_each(g.cin, parallel, self, |c, lines| {
            for segment in band.segments(plan) {
                transform_input(self, c, segment, v, lines);
            }
        });
        for_each(POSITIONS, parallel, self, |p, _| {
            // SAFETY: U[p] is (out, in) rows of `in`; V[p] is (in, tiles) and M[p] (out,
            // tiles) rows of `tiles`, all inside their buffers; each p writes only M[p].
            unsafe {
                gemm::gemm(
                    g.cout,
                    tiles,
                    g.cin,
                    m.get().add(p * band.out_plane),
                    1,
                    tiles as isize,
                    false,
                    self.u.as_ptr().add(p * g.cout * g.cin),
                    1,
                    g.cin as isize,
                    v.get().add(p * band.in_plane),
                    1,
                    tiles as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                )
            }
        });
        for_each(g.cout, parallel, self, |o, lines| {
            for segment in band.segments(plan) {
                transform_output(self, o, segment, m, lines);
            }
        });
    }
}

/// Runs `f(i, lines)` for i in 0..n, on every thread when `parallel`.
fn for_each(n: usize, parallel: bool, work: &Work, f: impl Fn(usize, &mut Lines) + Sync) {
    let init = || Lines::new(work.plan);
    if parallel {
        (0..n)
            .into_par_iter()
            .for_each_init(init, |lines, i| f(i, lines));
    } else {
        let mut lines = init();
        (0..n).for_each(|i| f(i, &mut lines));
    }
}

avx2_dispatch! {
    /// V[p][c][tile] = (Bᵀ·d·B)[p] for input channel c of every tile of the segment, with
    /// Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]].
    fn transform_input(work: &Work, c: usize, s: Segment, v: SendPtr, lines: &mut Lines) = transform_input_loop
}

#[inline(always)]
fn transform_input_loop(work: &Work, c: usize, s: Segment, v: SendPtr, lines: &mut Lines) {
    let g = work.g;
    let tx = work.plan.tiles_x;
    let plane = g.h * g.w;
    let image = &work.x[(s.b * g.cin + c) * plane..(s.b * g.cin + c + 1) * plane];
    // The segment's patches cover rows 2·ty0 − 1 .. 2·ty1 + 1 of the padded (possibly
    // doubled) input: Bᵀ along x of the image rows among them, once per image row.
    let vh = g.h * g.upsample;
    let top = (2 * s.ty0).saturating_sub(1);
    let bottom = (2 * s.ty1 + 1).min(vh);
    let (first_row, last_row) = (top / g.upsample, (bottom - 1) / g.upsample + 1);
    let rows = &image[first_row * g.w..last_row * g.w];
    across_rows(rows, g.w, g.upsample, tx, lines);
    // Bᵀ down y, one tile row at a time: its patch rows are the padded rows 2·ty − 1 ..
    // 2·ty + 3, zeros outside the image.
    let Lines { across, zeros, .. } = lines;
    for ty in s.ty0..s.ty1 {
        // Where patch row i starts in `across`, None for padding.
        let starts: [Option<usize>; 4] = std::array::from_fn(|i| {
            let y = (2 * ty + i).checked_sub(1).filter(|&y| y < vh)?;
            let row = if g.upsample == 2 { y / 2 } else { y };
            Some((row - first_row) * tx)
        });
        let first = s.first + (ty - s.ty0) * tx;
        for (j, across) in across.iter().enumerate() {
            let rows = starts.map(|at| at.map_or(&zeros[..tx], |at| &across[at..at + tx]));
            // SAFETY: values first..first + tx of row c of V[4·i + j]: this tile row in
            // this channel, which no other task writes.
            let outs = std::array::from_fn(|i| unsafe {
                let start = (4 * i + j) * s.band.in_plane + c * s.band.tiles + first;
                std::slice::from_raw_parts_mut(v.get().add(start), tx)
            });
            down_input_column(rows, outs);
        }
    }
}

/// Bᵀ down one column of patch rows: (r0 − r2, r1 + r2, r2 − r1, r1 − r3), value by value.
#[inline(always)]
fn down_input_column([r0, r1, r2, r3]: [&[f32]; 4], [v0, v1, v2, v3]: [&mut [f32]; 4]) {
    let n = v0.len();
    let mut k = 0;
    while k + LANE <= n {
        let (a, b, c, d) = (lane(r0, k), lane(r1, k), lane(r2, k), lane(r3, k));
        store(v0, k, lanes(a, c, |a, c| a - c));
        store(v1, k, lanes(b, c, |b, c| b + c));
        store(v2, k, lanes(c, b, |c, b| c - b));
        store(v3, k, lanes(b, d, |b, d| b - d));
        k += LANE;
    }
    for k in k..n {
        v0[k] = r0[k] - r2[k];
        v1[k] = r1[k] + r2[k];
        v2[k] = r2[k] - r1[k];
        v3[k] = r1[k] - r3[k];
    }
}

/// `dst[2k] = start + even[k]`, `dst[2k + 1] = start + odd[k]` (+ `residual`), for an
/// output row of `dst.len()` pixels.
#[inline(always)]
fn write_output_row(
    even: &[f32],
    odd: &[f32],
    start: f32,
    residual: Option<&[f32]>,
    dst: &mut [MaybeUninit<f32>],
) {
    let width = dst.len();
    let mut k = 0;
    while 2 * (k + LANE) <= width {
        let (e, o) = (lane(even, k), lane(odd, k));
        let mut values: [f32; 2 * LANE] =
            std::array::from_fn(|l| start + if l % 2 == 0 { e[l / 2] } else { o[l / 2] });
        if let Some(r) = residual {
            let r = &r[2 * k..2 * (k + LANE)];
            values.iter_mut().zip(r).for_each(|(v, &r)| *v += r);
        }
        for (d, &v) in dst[2 * k..2 * (k + LANE)].iter_mut().zip(&values) {
            d.write(v);
        }
        k += LANE;
    }
    for x in 2 * k..width {
        let value = start + if x % 2 == 0 { even[x / 2] } else { odd[x / 2] };
        dst[x].write(residual.map_or(value, |r| value + r[x]));
    }
}

/// Values a short loop handles as one vector: the rows here are often 8 or 4 tiles long,
/// where the compiler's loop vectoriser leaves them scalar. Loaded into a local array, the
/// values cannot alias the outputs, and the operations on them become vector operations.
const LANE: usize = 8;
type Lane = [f32; LANE];

#[inline(always)]
fn lane(x: &[f32], k: usize) -> Lane {
    let x = &x[k..k + LANE];
    std::array::from_fn(|l| x[l])
}

#[inline(always)]
fn lanes(a: Lane, b: Lane, f: impl Fn(f32, f32) -> f32) -> Lane {
    std::array::from_fn(|l| f(a[l], b[l]))
}

#[inline(always)]
fn store(x: &mut [f32], k: usize, values: Lane) {
    x[k..k + LANE].copy_from_slice(&values);
}

/// Bᵀ along x for every row of `rows` (rows of `w` values, read doubled when `upsample`
/// is 2), `tx` tiles per row, into `lines.across`: a tile k reads the padded columns
/// 2k − 1 .. 2k + 3, d = (x[2k − 1], x[2k], x[2k + 1], x[2k + 2]), and gives
/// (d0 − d2, d1 + d2, d2 − d1, d1 − d3). The common cases run over all rows at once.
#[inline(always)]
fn across_rows(rows: &[f32], w: usize, upsample: usize, tx: usize, lines: &mut Lines) {
    let count = rows.len() / w * tx;
    let [a0, a1, a2, a3] = &mut lines.across;
    let (a0, a1, a2, a3) = (
        &mut a0[..count],
        &mut a1[..count],
        &mut a2[..count],
        &mut a3[..count],
    );
    if upsample == 2 {
        // Doubled: d = (x[k − 1], x[k], x[k], x[k + 1]).
        for (a1, &x) in a1.iter_mut().zip(rows) {
            *a1 = 2.0 * x;
        }
        a2.fill(0.0);
        difference_from_previous(rows, tx, a0);
        difference_to_next(rows, tx, a3);
    } else if w.is_multiple_of(2) {
        // d = (odd[k − 1], even[k], odd[k], even[k + 1]) with the columns split by parity.
        let (even, odd) = (&mut lines.even[..count], &mut lines.odd[..count]);
        for ((e, o), pair) in even
            .iter_mut()
            .zip(odd.iter_mut())
            .zip(rows.chunks_exact(2))
        {
            *e = pair[0];
            *o = pair[1];
        }
        for (((a1, a2), &e), &o) in a1.iter_mut().zip(a2.iter_mut()).zip(&*even).zip(&*odd) {
            *a1 = e + o;
            *a2 = o - e;
        }
        difference_from_previous(odd, tx, a0);
        difference_to_next(even, tx, a3);
    } else {
        // An odd width: one padded row at a time.
        let padded = &mut lines.even[..2 * tx + 2];
        padded.fill(0.0);
        for (r, row) in rows.chunks_exact(w).enumerate() {
            padded[1..=w].copy_from_slice(row);
            for k in 0..tx {
                let d = &padded[2 * k..2 * k + 4];
                let at = r * tx + k;
                a0[at] = d[0] - d[2];
                a1[at] = d[1] + d[2];
                a2[at] = d[2] - d[1];
                a3[at] = d[1] - d[3];
            }
        }
    }
}

/// `out[k] = x[k − 1] − x[k]` along rows of `tx` values, x[−1] being 0.
#[inline(always)]
fn difference_from_previous(x: &[f32], tx: usize, out: &mut [f32]) {
    let n = out.len().min(x.len());
    if n == 0 {
        return;
    }
    for ((o, &a), &b) in out[1..n].iter_mut().zip(&x[..n - 1]).zip(&x[1..n]) {
        *o = a - b;
    }
    for k in (0..n).step_by(tx) {
        out[k] = -x[k];
    }
}

/// `out[k] = x[k] − x[k + 1]` along rows of `tx` values, the value after a row being 0.
#[inline(always)]
fn difference_to_next(x: &[f32], tx: usize, out: &mut [f32]) {
    let n = out.len().min(x.len());
    if n == 0 {
        return;
    }
    for ((o, &a), &b) in out[..n - 1].iter_mut().zip(&x[..n - 1]).zip(&x[1..n]) {
        *o = a - b;
    }
    for k in (tx - 1..n).step_by(tx) {
        out[k] = x[k];
    }
}

avx2_dispatch! {
    /// out = start + (Aᵀ·m·A) (+ residual) for output channel o of every tile of the
    /// segment, clipped to the image, with Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]].
    fn transform_output(work: &Work, o: usize, s: Segment, m: SendPtr, lines: &mut Lines) = transform_output_loop
}

#[inline(always)]
fn transform_output_loop(work: &Work, o: usize, s: Segment, m: SendPtr, lines: &mut Lines) {
    let g = work.g;
    let tx = work.plan.tiles_x;
    let count = (s.ty1 - s.ty0) * tx;
    // SAFETY: row o of M[p] for this segment's tiles, written by the products before.
    let mp: [&[f32]; POSITIONS] = std::array::from_fn(|p| unsafe {
        std::slice::from_raw_parts(
            m.get()
                .add(p * s.band.out_plane + o * s.band.tiles + s.first),
            count,
        )
    });
    // Aᵀ·m·A for every tile at once: (even, odd output column) of (even, odd output row).
    let [ee, oe, eo, oo] = lines.out.each_mut();
    for k in 0..count {
        let col = |j: usize| {
            (
                mp[j][k] + mp[4 + j][k] + mp[8 + j][k],
                mp[4 + j][k] - mp[8 + j][k] - mp[12 + j][k],
            )
        };
        let (c0, c1, c2, c3) = (col(0), col(1), col(2), col(3));
        ee[k] = c0.0 + c1.0 + c2.0;
        oe[k] = c1.0 - c2.0 - c3.0;
        eo[k] = c0.1 + c1.1 + c2.1;
        oo[k] = c1.1 - c2.1 - c3.1;
    }
    let start = work.bias[o] + work.offsets.map_or(0.0, |f| f[s.b * g.cout + o]);
    let pixels = g.oh * g.ow;
    for ty in s.ty0..s.ty1 {
        let at = (ty - s.ty0) * tx;
        for (half, (even, odd)) in [(&*ee, &*oe), (&*eo, &*oo)].into_iter().enumerate() {
            let y = 2 * ty + half;
            if y >= g.oh {
                break;
            }
            let offset = (s.b * g.cout + o) * pixels + y * g.ow;
            let residual = work.residual.map(|r| &r[offset..offset + g.ow]);
            let (even, odd) = (&even[at..at + tx], &odd[at..at + tx]);
            // SAFETY: output row y of channel o of image b, inside `out`'s capacity: each
            // tile row is in one band and writes its own two output rows. Not yet
            // initialised, hence `MaybeUninit`.
            let dst: &mut [MaybeUninit<f32>] =
                unsafe { std::slice::from_raw_parts_mut(work.out.get().add(offset).cast(), g.ow) };
            write_output_row(even, odd, start, residual, dst);
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Module, Tensor};
    use candle_nn::VarBuilder;

    use super::super::conv::{Conv2d, Conv2dConfig, Conv2dFused, conv2d_fused};
    use super::super::test_util::{max_diff, random};

    const SAME: Conv2dConfig = Conv2dConfig {
        padding: 1,
        stride: 1,
    };

    /// candle's convolution of `x` (doubled first when `upsample`), plus the bias.
    fn reference(x: &Tensor, weight: &Tensor, bias: &Tensor, upsample: bool) -> Tensor {
        let (_, _, h, w) = x.dims4().unwrap();
        let x = if upsample {
            x.upsample_nearest2d(2 * h, 2 * w).unwrap()
        } else {
            x.clone()
        };
        let cout = bias.dims1().unwrap();
        x.conv2d(weight, 1, 1, 1, 1)
            .unwrap()
            .broadcast_add(&bias.reshape((1, cout, 1, 1)).unwrap())
            .unwrap()
    }

    /// Largest difference relative to the largest value of `expected`.
    fn relative(ours: &Tensor, expected: &Tensor) -> f32 {
        let scale = expected
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap();
        max_diff(ours, expected) / scale.to_scalar::<f32>().unwrap().max(1e-6)
    }

    #[test]
    fn matches_candle_for_odd_and_even_sizes_and_bands_across_images() {
        // (batch, in, out, h, w): odd heights and widths (partial tiles), single pixels, and
        // one large enough that bands hold several tile rows and cross from image to image.
        let cases = [
            (2, 16, 16, 7, 5),
            (1, 16, 24, 6, 6),
            (3, 16, 16, 9, 2),
            (1, 17, 16, 1, 1),
            (2, 32, 16, 70, 38),
            (2, 16, 16, 71, 3),
        ];
        for (i, &(b, cin, cout, h, w)) in cases.iter().enumerate() {
            let seed = 500 + 10 * i as u64;
            let x = random(&[b, cin, h, w], seed);
            let weight = random(&[cout, cin, 3, 3], seed + 1);
            let bias = random(&[cout], seed + 2);
            let ours = conv2d_fused(&x, &weight, &bias, SAME, Conv2dFused::default()).unwrap();
            let expected = reference(&x, &weight, &bias, false);
            assert_eq!(ours.dims(), expected.dims(), "case {i}");
            let d = relative(&ours, &expected);
            assert!(d < 1e-6, "case {i}: relative difference {d}");
        }
    }

    #[test]
    fn fuses_upsampling_offsets_and_residuals() {
        for (i, &(b, cin, cout, h, w)) in
            [(2, 16, 16, 5, 3), (1, 24, 16, 8, 8), (2, 16, 20, 33, 17)]
                .iter()
                .enumerate()
        {
            let seed = 700 + 10 * i as u64;
            let x = random(&[b, cin, h, w], seed);
            let weight = random(&[cout, cin, 3, 3], seed + 1);
            let bias = random(&[cout], seed + 2);
            let offsets = random(&[b, cout], seed + 3);
            let plain = reference(&x, &weight, &bias, true);
            let residual = random(plain.dims(), seed + 4);
            let expected = (plain
                .broadcast_add(&offsets.reshape((b, cout, 1, 1)).unwrap())
                .unwrap()
                + &residual)
                .unwrap();
            let fused = Conv2dFused {
                upsample2: true,
                channel_offsets: Some(&offsets),
                residual: Some(&residual),
            };
            let ours = conv2d_fused(&x, &weight, &bias, SAME, fused).unwrap();
            let d = relative(&ours, &expected);
            assert!(d < 1e-6, "case {i}: relative difference {d}");
        }
    }

    #[test]
    fn a_layer_transforms_its_weights_once_for_the_same_result() {
        let (cin, cout) = (16, 32);
        let weight = random(&[cout, cin, 3, 3], 900);
        let bias = random(&[cout], 901);
        let tensors = [("weight", &weight), ("bias", &bias)]
            .map(|(name, t)| (name.to_string(), t.clone()))
            .into_iter()
            .collect();
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let layer = Conv2d::load(cin, cout, 3, SAME, vb).unwrap();
        let x = random(&[2, cin, 12, 10], 902);
        let ours = layer.forward(&x).unwrap();
        let d = relative(&ours, &reference(&x, &weight, &bias, false));
        assert!(d < 1e-6, "relative difference {d}");
        // It keeps only the transformed weights, which serve f32 inputs on the CPU.
        let half = x.to_dtype(DType::F16).unwrap();
        let err = layer.forward(&half).unwrap_err().to_string();
        assert!(
            err.contains("loaded for the CPU in f32") && err.contains("F16"),
            "{err}"
        );
    }
}
