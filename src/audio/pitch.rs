//! Fundamental frequency by YIN, computed as `librosa.yin` computes it (frame 2048,
//! hop 512, centred with zero padding, trough threshold 0.1), plus a voicing rule:
//! a frame is **voiced** when its cumulative-mean-normalised difference has a trough
//! below the threshold (librosa's yin falls back to the global minimum for the others,
//! which is not a pitch). The figure is the median f0 over voiced frames.
//!
//! The autocorrelation of every frame is needed up to the longest period. When the
//! frames are whole runs of hop-sized blocks (the defaults), it is assembled from one
//! FFT per block instead of one large FFT pair per frame: a frame's autocorrelation is
//! the sum, over pairs of its blocks, of their cross-correlations, and each pair's
//! cross-spectrum is shared by every frame that holds both blocks (see [`BlockAcf`]).

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::spectral::{
    RealPair, fast_even_len, fast_len, median, par_ranges_grain, parabolic_shifts,
};

/// YIN parameters. Defaults: 65.4–2093 Hz (C2–C7), frame 2048, hop 512, threshold 0.1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YinParams {
    pub fmin: f64,
    pub fmax: f64,
    pub frame_length: usize,
    pub hop_length: usize,
    pub trough_threshold: f64,
}

impl Default for YinParams {
    fn default() -> Self {
        Self {
            fmin: 65.406_391_325_149_66,
            fmax: 2_093.004_522_404_789,
            frame_length: 2048,
            hop_length: 512,
            trough_threshold: 0.1,
        }
    }
}

/// Per-frame YIN result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YinFrame {
    pub f0: f64,
    pub voiced: bool,
}

/// Periods searched, in samples.
#[derive(Debug, Clone, Copy)]
struct Periods {
    min: usize,
    max: usize,
}

impl Periods {
    fn new(sr: f64, p: &YinParams) -> Option<Self> {
        let n = p.frame_length;
        if n < 4 || p.hop_length == 0 {
            return None;
        }
        let min = (sr / p.fmax).floor() as usize;
        let max = ((sr / p.fmin).ceil() as usize).min(n - 1);
        (min >= 1 && min < max).then_some(Self { min, max })
    }
}

/// f0 track of a mono signal.
pub fn yin(y: &[f32], sr: f64, p: &YinParams) -> Vec<YinFrame> {
    let mut out = Vec::new();
    for part in yin_parts(y, sr, p, true) {
        out.extend(part.into_iter().flatten());
    }
    out
}

/// Median f0 over voiced frames; `None` when no frame is voiced.
pub fn median_f0(y: &[f32], sr: f64, p: &YinParams) -> Option<f64> {
    // Unvoiced frames are dropped, so their fallback period is never searched for.
    let mut voiced: Vec<f64> = yin_parts(y, sr, p, false)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|f| f.voiced && f.f0.is_finite())
        .map(|f| f.f0)
        .collect();
    median(&mut voiced)
}

/// Frame results by range; `None` for unvoiced frames when `unvoiced` is false.
fn yin_parts(y: &[f32], sr: f64, p: &YinParams, unvoiced: bool) -> Vec<Vec<Option<YinFrame>>> {
    let Some(periods) = Periods::new(sr, p) else {
        return Vec::new();
    };
    let frames = 1 + y.len() / p.hop_length;
    par_ranges_grain(frames, 2, |range| {
        let mut search = Search::new(sr, p, periods, unvoiced);
        let mut out = Vec::with_capacity(range.len());
        match BlockAcf::new(p, periods.max) {
            Some(mut acf) => acf.run(y, range, |t, r, scale| {
                out.push(search.frame(y, t, r, scale));
            }),
            None => {
                let mut acf = FrameAcf::new(p.frame_length, periods.max);
                for t in range {
                    let (r, scale) = acf.frame(y, t, p);
                    out.push(search.frame(y, t, r, scale));
                }
            }
        }
        out
    })
}

/// The difference function and trough search of one frame, given its autocorrelation.
struct Search {
    sr: f64,
    hop: usize,
    half: usize,
    threshold: f64,
    periods: Periods,
    unvoiced: bool,
    /// 1/τ for τ = 0..=max period (0 unused).
    inv: Vec<f64>,
    /// Scratch over lags 0..=max period: running energy of the frame, then the
    /// difference function d, its running sum, and the cumulative mean (+ tiny).
    energy: Vec<f64>,
    d: Vec<f64>,
    running: Vec<f64>,
    mean: Vec<f64>,
}

/// Running sum in place. Blocks of eight are summed on their own first, so the chain
/// of dependent additions is one per block rather than one per value.
fn running_sum(v: &mut [f64]) {
    let mut carry = 0.0;
    let mut blocks = v.chunks_exact_mut(8);
    for c in &mut blocks {
        let mut p = [0.0f64; 8];
        p[0] = c[0];
        for i in 1..8 {
            p[i] = p[i - 1] + c[i];
        }
        for i in 0..8 {
            c[i] = carry + p[i];
        }
        carry += p[7];
    }
    for x in blocks.into_remainder() {
        carry += *x;
        *x = carry;
    }
}

impl Search {
    fn new(sr: f64, p: &YinParams, periods: Periods, unvoiced: bool) -> Self {
        let n = periods.max + 1;
        Self {
            sr,
            hop: p.hop_length,
            half: p.frame_length / 2,
            threshold: p.trough_threshold,
            periods,
            unvoiced,
            inv: (0..n).map(|k| 1.0 / k.max(1) as f64).collect(),
            energy: vec![0.0; n],
            d: vec![0.0; n],
            running: vec![0.0; n],
            mean: vec![0.0; n],
        }
    }

    /// `r[k] * scale` is the autocorrelation of frame `t` at lag k (0..=max period).
    fn frame(&mut self, y: &[f32], t: usize, r: &[f32], scale: f64) -> Option<YinFrame> {
        let (min_period, max_period) = (self.periods.min, self.periods.max);
        let n = max_period + 1;
        // Running energy of the frame's first samples (the centred frame starts at
        // y[start], zeros outside the signal).
        let start = (t * self.hop) as isize - self.half as isize;
        let lo = start.clamp(0, y.len() as isize) as usize;
        let hi = (start + n as isize).clamp(0, y.len() as isize) as usize;
        // Past the start of a frame that begins well before the signal: no samples.
        let offset = ((lo as isize - start) as usize).min(n);
        let energy = &mut self.energy[..n];
        energy.iter_mut().for_each(|e| *e = 0.0);
        for (e, &x) in energy[offset..].iter_mut().zip(&y[lo..hi]) {
            *e = f64::from(x) * f64::from(x);
        }
        running_sum(energy);
        // Difference function as librosa writes it: d[k] = 2(r0 - r_k) - c[k-1], with
        // c[0] = 0 and c[j] the running energy of the frame.
        let r0 = f64::from(r[0]) * scale;
        let (d, r) = (&mut self.d[..n], &r[..n]);
        d[0] = 0.0;
        d[1] = 2.0 * (r0 - f64::from(r[1]) * scale);
        for ((dk, &rk), &c) in d[2..].iter_mut().zip(&r[2..]).zip(&energy[1..]) {
            *dk = 2.0 * (r0 - f64::from(rk) * scale) - c;
        }
        // Cumulative mean normalised difference: d[τ] / (mean of d[1..=τ] + tiny).
        let running = &mut self.running[..n];
        running.copy_from_slice(d);
        running_sum(running);
        let tiny = f64::from(f32::MIN_POSITIVE);
        let mean = &mut self.mean[..n];
        for ((m, &s), &inv) in mean.iter_mut().zip(running.iter()).zip(&self.inv) {
            *m = s * inv + tiny;
        }
        let (d, mean) = (&self.d[min_period..n], &self.mean[min_period..n]);
        let m = d.len();
        let cmndf = |i: usize| d[i] / mean[i];
        // cmndf[i] is a trough when below its left neighbour and not above its right one
        // (the first only needs to be below its right neighbour).
        let is_trough = |i: usize| -> bool {
            let c = cmndf(i);
            if i == 0 {
                m > 1 && c < cmndf(1)
            } else {
                let next = if i + 1 < m { cmndf(i + 1) } else { c };
                c < cmndf(i - 1) && c <= next
            }
        };
        // Below the threshold, tested without a division per lag.
        let threshold = self.threshold;
        let first = (0..m).find(|&i| d[i] < threshold * mean[i] && is_trough(i));
        if first.is_none() && !self.unvoiced {
            return None;
        }
        let idx = first.unwrap_or_else(|| {
            let mut best = (0, cmndf(0));
            for i in 1..m {
                let c = cmndf(i);
                if c < best.1 {
                    best = (i, c);
                }
            }
            best.0
        });
        let shift = if idx == 0 || idx + 1 >= m {
            0.0
        } else {
            parabolic_shifts(&[cmndf(idx - 1), cmndf(idx), cmndf(idx + 1)])[1]
        };
        let period = min_period as f64 + idx as f64 + shift;
        Some(YinFrame {
            f0: self.sr / period,
            voiced: first.is_some(),
        })
    }
}

/// Autocorrelation of one frame at a time by an FFT pair (any framing).
struct FrameAcf {
    fwd: Arc<dyn RealToComplex<f32>>,
    inv: Arc<dyn ComplexToReal<f32>>,
    n_pad: usize,
    buf: Vec<f32>,
    spec: Vec<Complex<f32>>,
}

impl FrameAcf {
    fn new(n: usize, max_period: usize) -> Self {
        // Lags up to max_period of a length-n frame need a transform of at least
        // n + max_period points to avoid wrap-around (librosa uses >= 2n - 1; same values).
        let n_pad = fast_len(n + max_period);
        let mut planner = RealFftPlanner::<f32>::new();
        let fwd = planner.plan_fft_forward(n_pad);
        let inv = planner.plan_fft_inverse(n_pad);
        Self {
            buf: fwd.make_input_vec(),
            spec: fwd.make_output_vec(),
            fwd,
            inv,
            n_pad,
        }
    }

    fn frame(&mut self, y: &[f32], t: usize, p: &YinParams) -> (&[f32], f64) {
        let n = p.frame_length;
        let start = (t * p.hop_length) as isize - (n / 2) as isize;
        let lo = start.clamp(0, y.len() as isize) as usize;
        let hi = (start + n as isize).clamp(0, y.len() as isize) as usize;
        let offset = (lo as isize - start) as usize;
        self.buf.iter_mut().for_each(|v| *v = 0.0);
        self.buf[offset..offset + (hi - lo)].copy_from_slice(&y[lo..hi]);
        // Lengths are fixed at construction, so the transforms cannot fail.
        let _ = self.fwd.process(&mut self.buf, &mut self.spec);
        for c in self.spec.iter_mut() {
            *c = Complex::new(c.norm_sqr(), 0.0);
        }
        let _ = self.inv.process(&mut self.spec, &mut self.buf);
        (&self.buf, 1.0 / self.n_pad as f64)
    }
}

/// `acc += ω·conj(u)·v`, all as real and imaginary parts. A function of its own so
/// that the slices are known not to overlap and the loop is vectorised.
fn add_pair_term(
    ar: &mut [f32],
    ai: &mut [f32],
    u: &[Vec<f32>; 2],
    v: &[Vec<f32>; 2],
    w: &[Vec<f32>; 2],
) {
    let n = ar.len();
    let ai = &mut ai[..n];
    let (ur, ui, vr, vi, wr, wi) = (
        &u[0][..n],
        &u[1][..n],
        &v[0][..n],
        &v[1][..n],
        &w[0][..n],
        &w[1][..n],
    );
    for k in 0..n {
        let pr = ur[k] * vr[k] + ui[k] * vi[k];
        let pi = ur[k] * vi[k] - ui[k] * vr[k];
        ar[k] += pr * wr[k] - pi * wi[k];
        ai[k] += pr * wi[k] + pi * wr[k];
    }
}

/// `re = |x|²`, `im = 0` (vectorised: the slices cannot overlap).
fn power_into(re: &mut [f32], im: &mut [f32], x: &[Vec<f32>; 2]) {
    for (((a, i), &r), &m) in re.iter_mut().zip(im.iter_mut()).zip(&x[0]).zip(&x[1]) {
        *a = r * r + m * m;
        *i = 0.0;
    }
}

/// `s += a` elementwise (vectorised: the slices cannot overlap).
fn add_into(s: &mut [f32], a: &[f32]) {
    for (s, a) in s.iter_mut().zip(a) {
        *s += a;
    }
}

/// Frame autocorrelations from block spectra, for frames made of whole hop-sized blocks.
///
/// With blocks B_j of `b` samples, the autocorrelation of a frame of blocks j0..j0+nb
/// at lag k is the sum over block pairs (p, p + d) of the cross-correlation of B_p and
/// B_{p+d} at lag k − d·b. Lags up to the longest period only reach d <= `dmax`. In
/// the frequency domain (`n_pad` points, enough that no pair wraps onto lags
/// 0..=max period) the pair (j, j + d) contributes ω_d·conj(X_j)·X_{j+d}, ω_d the
/// phase of a d·b-sample shift. Each block keeps an accumulator of |X_j|² plus the
/// pair terms with the blocks after it inside the frame; a frame's spectrum is the sum
/// of its blocks' accumulators, and one inverse FFT gives its autocorrelation. That is
/// one forward FFT per block and one inverse FFT per frame, both shorter than a frame,
/// and each done for two blocks or frames at once ([`RealPair`]). Blocks are paired as
/// (2m, 2m + 1) and frames from the even start of their range, so the rounding does not
/// depend on how frames are split between threads.
struct BlockAcf {
    b: usize,
    nb: usize,
    dmax: usize,
    /// Blocks from the start of the signal to the first block of frame 0 (negative).
    first_block: isize,
    n_pad: usize,
    pair: RealPair,
    /// ω_d for d = 1..=dmax, real and imaginary parts.
    phases: Vec<[Vec<f32>; 2]>,
    /// Ring of the last `nb` blocks (indexed by block mod nb): spectrum and accumulator,
    /// real and imaginary parts, and whether the block is all zeros.
    spectra: Vec<[Vec<f32>; 2]>,
    acc: Vec<[Vec<f32>; 2]>,
    zero: Vec<bool>,
    /// The other block of the last transformed pair, and its spectrum.
    ahead: Option<(isize, bool)>,
    ahead_spec: [Vec<f32>; 2],
    /// Spectra of the current frame pair, and their autocorrelations.
    sums: [[Vec<f32>; 2]; 2],
    out: [Vec<f32>; 2],
}

impl BlockAcf {
    /// `None` when frames are not whole runs of hop-sized blocks.
    fn new(p: &YinParams, max_period: usize) -> Option<Self> {
        let (n, b) = (p.frame_length, p.hop_length);
        let half = n / 2;
        if !n.is_multiple_of(b) || !half.is_multiple_of(b) {
            return None;
        }
        let nb = n / b;
        let dmax = max_period.div_ceil(b);
        let dmax = dmax.min(nb - 1);
        // Pair (j, j + d) fills lags d·b − (b − 1) ..= d·b + (b − 1); the negative lags of
        // d = 0 wrap to the top. Neither may land on 0..=max_period.
        let n_pad = fast_even_len((max_period + b).max((dmax + 1) * b));
        let bins = n_pad / 2 + 1;
        let phases = (1..=dmax)
            .map(|d| {
                let angle = |f: usize| {
                    let shift = ((d * b * f) % n_pad) as f64;
                    -2.0 * std::f64::consts::PI * shift / n_pad as f64
                };
                [
                    (0..bins).map(|f| angle(f).cos() as f32).collect(),
                    (0..bins).map(|f| angle(f).sin() as f32).collect(),
                ]
            })
            .collect();
        let spectrum = || [vec![0.0f32; bins], vec![0.0f32; bins]];
        Some(Self {
            b,
            nb,
            dmax,
            first_block: -((half / b) as isize),
            n_pad,
            pair: RealPair::new(n_pad),
            phases,
            spectra: (0..nb).map(|_| spectrum()).collect(),
            acc: (0..nb).map(|_| spectrum()).collect(),
            zero: vec![true; nb],
            ahead: None,
            ahead_spec: spectrum(),
            sums: [spectrum(), spectrum()],
            out: [vec![0.0; max_period + 1], vec![0.0; max_period + 1]],
        })
    }

    /// Samples of block `j` (empty outside the signal).
    fn block<'a>(&self, y: &'a [f32], j: isize) -> &'a [f32] {
        let lo = j * self.b as isize;
        if lo < 0 || lo as usize >= y.len() {
            return &[];
        }
        let lo = lo as usize;
        &y[lo..(lo + self.b).min(y.len())]
    }

    /// Spectrum of block `j` into ring slot `slot`; returns whether the block is zeros.
    fn transform_block(&mut self, y: &[f32], j: isize, slot: usize) -> bool {
        if let Some((k, zero)) = self.ahead
            && k == j
        {
            std::mem::swap(&mut self.spectra[slot], &mut self.ahead_spec);
            self.ahead = None;
            return zero;
        }
        let first = j - j.rem_euclid(2);
        let (a, b) = (self.block(y, first), self.block(y, first + 1));
        if a.is_empty() && b.is_empty() {
            return true;
        }
        self.pair.forward(a, b);
        let [ar, ai, br, bi] = &self.pair.spec;
        let (mine, other, other_zero) = if j == first {
            ((ar, ai), (br, bi), b.is_empty())
        } else {
            ((br, bi), (ar, ai), a.is_empty())
        };
        let [sr, si] = &mut self.spectra[slot];
        sr.copy_from_slice(mine.0);
        si.copy_from_slice(mine.1);
        if j == first {
            let [hr, hi] = &mut self.ahead_spec;
            hr.copy_from_slice(other.0);
            hi.copy_from_slice(other.1);
            self.ahead = Some((first + 1, other_zero));
        }
        if j == first {
            a.is_empty()
        } else {
            b.is_empty()
        }
    }

    /// Add block `j`: its spectrum, its own accumulator, and its pair terms into the
    /// accumulators of earlier blocks (`first` is the earliest block still needed).
    fn push_block(&mut self, y: &[f32], j: isize, first: isize) {
        let slot = j.rem_euclid(self.nb as isize) as usize;
        let zero = self.transform_block(y, j, slot);
        self.zero[slot] = zero;
        let [ar, ai] = &mut self.acc[slot];
        if zero {
            ar.iter_mut().for_each(|v| *v = 0.0);
            ai.iter_mut().for_each(|v| *v = 0.0);
            return;
        }
        power_into(ar, ai, &self.spectra[slot]);
        for d in 1..=self.dmax {
            let e = j - d as isize;
            if e < first {
                break;
            }
            let earlier = e.rem_euclid(self.nb as isize) as usize;
            if self.zero[earlier] {
                continue;
            }
            let [ar, ai] = &mut self.acc[earlier];
            add_pair_term(
                ar,
                ai,
                &self.spectra[earlier],
                &self.spectra[slot],
                &self.phases[d - 1],
            );
        }
    }

    /// Spectrum of the frame whose first block is `j0` into `sums[which]`.
    fn frame_sum(&mut self, j0: isize, which: usize) {
        let [sr, si] = &mut self.sums[which];
        sr.iter_mut().for_each(|v| *v = 0.0);
        si.iter_mut().for_each(|v| *v = 0.0);
        for j in j0..j0 + self.nb as isize {
            let slot = j.rem_euclid(self.nb as isize) as usize;
            if self.zero[slot] {
                continue;
            }
            let [ar, ai] = &self.acc[slot];
            add_into(sr, ar);
            add_into(si, ai);
        }
    }

    /// Call `emit(t, r, scale)` for each frame t of `range`, `r[k] * scale` being its
    /// autocorrelation at lag k (0..=max period).
    fn run(
        &mut self,
        y: &[f32],
        range: std::ops::Range<usize>,
        mut emit: impl FnMut(usize, &[f32], f64),
    ) {
        if range.is_empty() {
            return;
        }
        let first = self.first_block + range.start as isize;
        for j in first..first + self.nb as isize - 1 {
            self.push_block(y, j, first);
        }
        let scale = 1.0 / self.n_pad as f64;
        let mut t = range.start;
        while t < range.end {
            let paired = t + 1 < range.end;
            for (i, f) in (t..t + 1 + usize::from(paired)).enumerate() {
                let j0 = self.first_block + f as isize;
                self.push_block(y, j0 + self.nb as isize - 1, j0);
                self.frame_sum(j0, i);
            }
            let [[ar, ai], [br, bi]] = &self.sums;
            let [oa, ob] = &mut self.out;
            if paired {
                self.pair.inverse((ar, ai), (br, bi), oa, ob);
            } else {
                self.pair.inverse((ar, ai), (&[], &[]), oa, &mut []);
            }
            emit(t, &self.out[0], scale);
            if paired {
                emit(t + 1, &self.out[1], scale);
            }
            t += 1 + usize::from(paired);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(n: usize, sr: f64) -> Vec<f32> {
        let mut seed = 1u64;
        (0..n)
            .map(|i| {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let noise = ((seed >> 40) as f64 / (1u64 << 24) as f64 - 0.5) * 0.02;
                let t = i as f64 / sr;
                // A pitch that changes every 0.3 s, and a silent stretch.
                let f = [220.0, 330.0, 147.0, 880.0][(t / 0.3) as usize % 4];
                let on = if (0.7..0.9).contains(&t) { 0.0 } else { 1.0 };
                (on * 0.4 * (2.0 * std::f64::consts::PI * f * t).sin() + noise) as f32
            })
            .collect()
    }

    /// The block assembly gives the per-frame FFT's autocorrelations.
    #[test]
    fn block_and_frame_autocorrelations_agree() {
        let sr = 22_050.0;
        let y = signal(30_000, sr);
        for (frame_length, hop_length) in [(2048, 512), (1024, 256), (2048, 128), (512, 256)] {
            let p = YinParams {
                frame_length,
                hop_length,
                ..YinParams::default()
            };
            let periods = Periods::new(sr, &p).unwrap();
            let mut block = BlockAcf::new(&p, periods.max).unwrap();
            let mut frame = FrameAcf::new(frame_length, periods.max);
            let frames = 1 + y.len() / hop_length;
            let mut checked = 0;
            for range in [0..frames, 5..9, frames - 3..frames] {
                block.run(&y, range, |t, r, scale| {
                    let (expected, s2) = frame.frame(&y, t, &p);
                    let r0 = f64::from(expected[0]) * s2;
                    for k in 0..=periods.max {
                        let (a, b) = (f64::from(r[k]) * scale, f64::from(expected[k]) * s2);
                        assert!(
                            (a - b).abs() <= 1e-5 * r0.max(1e-9),
                            "{frame_length}/{hop_length} frame {t} lag {k}: {a} vs {b}"
                        );
                    }
                    checked += 1;
                });
            }
            assert_eq!(checked, frames + 4 + 3);
        }
    }

    #[test]
    fn pitch_of_tones() {
        let sr = 22_050.0;
        let p = YinParams::default();
        let y = signal(30_000, sr);
        let track = yin(&y, sr, &p);
        assert_eq!(track.len(), 1 + y.len() / 512);
        // Frame 10 is centred at 0.23 s (220 Hz), frame 20 at 0.46 s (330 Hz).
        assert!(
            (track[10].f0 - 220.0).abs() < 2.0 && track[10].voiced,
            "{:?}",
            track[10]
        );
        assert!(
            (track[20].f0 - 330.0).abs() < 3.0 && track[20].voiced,
            "{:?}",
            track[20]
        );
        // The silent stretch (0.7-0.9 s, noise only) is unvoiced.
        assert!(!track[35].voiced, "{:?}", track[35]);
        let voiced: Vec<f64> = track.iter().filter(|f| f.voiced).map(|f| f.f0).collect();
        let mut v = voiced.clone();
        assert_eq!(median_f0(&y, sr, &p), median(&mut v));
    }
}
