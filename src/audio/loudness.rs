//! Loudness per ITU-R BS.1770-4 / EBU R128, streaming so that files of any length can be
//! measured in bounded memory.
//!
//! - Integrated loudness reproduces pyloudnorm's `Meter.integrated_loudness` (RBJ
//!   K-weighting biquads designed for the actual sample rate, 400 ms blocks with 75 %
//!   overlap, gates −70 LUFS absolute and −10 LU relative, channel weights
//!   1, 1, 1, 1.41, 1.41).
//! - Short-term loudness: 3 s windows every 100 ms (window = 30 hops); we report the max.
//! - Loudness range (EBU Tech 3342): short-term values gated at −70 LUFS and then −20 LU
//!   below their energy mean; LRA = 95th − 10th percentile (linear interpolation).
//! - True peak: 4× oversampling with a 64-tap-per-phase Kaiser-windowed sinc, the max of
//!   the oversampled and original absolute samples, in dBTP.

use serde::Serialize;

use super::buffer::AudioBuffer;

/// One biquad in transposed direct form II (what `scipy.signal.lfilter` runs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Biquad {
    pub b: [f64; 3],
    pub a: [f64; 3],
}

impl Biquad {
    /// Normalise so that a0 = 1.
    pub fn new(b: [f64; 3], a: [f64; 3]) -> Self {
        let a0 = a[0];
        Self {
            b: [b[0] / a0, b[1] / a0, b[2] / a0],
            a: [1.0, a[1] / a0, a[2] / a0],
        }
    }
}

/// Running state of one biquad on one channel.
#[derive(Debug, Clone, Copy, Default)]
pub struct BiquadState {
    z1: f64,
    z2: f64,
}

impl BiquadState {
    #[inline]
    pub fn process(&mut self, f: &Biquad, x: f64) -> f64 {
        let y = f.b[0] * x + self.z1;
        self.z1 = f.b[1] * x - f.a[1] * y + self.z2;
        self.z2 = f.b[2] * x - f.a[2] * y;
        y
    }
}

/// The two K-weighting stages exactly as pyloudnorm designs them.
pub fn k_weighting(rate: f64) -> [Biquad; 2] {
    // High shelf: G = +4 dB, Q = 1/sqrt(2), fc = 1500 Hz.
    let a = 10f64.powf(4.0 / 40.0);
    let w0 = 2.0 * std::f64::consts::PI * 1500.0 / rate;
    let alpha = w0.sin() / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
    let (c, sa) = (w0.cos(), a.sqrt());
    let shelf = Biquad::new(
        [
            a * ((a + 1.0) + (a - 1.0) * c + 2.0 * sa * alpha),
            -2.0 * a * ((a - 1.0) + (a + 1.0) * c),
            a * ((a + 1.0) + (a - 1.0) * c - 2.0 * sa * alpha),
        ],
        [
            (a + 1.0) - (a - 1.0) * c + 2.0 * sa * alpha,
            2.0 * ((a - 1.0) - (a + 1.0) * c),
            (a + 1.0) - (a - 1.0) * c - 2.0 * sa * alpha,
        ],
    );
    // High pass: Q = 0.5, fc = 38 Hz.
    let w0 = 2.0 * std::f64::consts::PI * 38.0 / rate;
    let alpha = w0.sin() / (2.0 * 0.5);
    let c = w0.cos();
    let hp = Biquad::new(
        [(1.0 + c) / 2.0, -(1.0 + c), (1.0 + c) / 2.0],
        [1.0 + alpha, -2.0 * c, 1.0 - alpha],
    );
    [shelf, hp]
}

const CHANNEL_GAINS: [f64; 5] = [1.0, 1.0, 1.0, 1.41, 1.41];

fn channel_gain(c: usize) -> f64 {
    CHANNEL_GAINS.get(c).copied().unwrap_or(1.0)
}

fn lufs(energy: f64) -> f64 {
    -0.691 + 10.0 * energy.log10()
}

/// The loudness figures of `analysis/loudness`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoudnessReport {
    /// Integrated loudness in LUFS; `None` when the audio is shorter than one 400 ms block
    /// or entirely below the absolute gate.
    pub integrated_lufs: Option<f64>,
    /// Highest short-term (3 s) loudness in LUFS; `None` for audio shorter than 3 s.
    pub short_term_max_lufs: Option<f64>,
    /// Loudness range in LU; `None` for audio shorter than 3 s.
    pub loudness_range: Option<f64>,
    /// True peak in dBTP (4× oversampled).
    pub true_peak_dbtp: f64,
    /// Sample peak in dBFS.
    pub sample_peak_dbfs: f64,
}

/// Streaming loudness meter: feed chunks with [`LoudnessMeter::push`], then
/// [`LoudnessMeter::finish`].
pub struct LoudnessMeter {
    rate: f64,
    channels: usize,
    filters: [Biquad; 2],
    states: Vec<[BiquadState; 2]>,
    /// Cumulative K-weighted energy per channel.
    cum: Vec<f64>,
    n: u64,
    // pyloudnorm block boundaries: lower(j) = int(0.4*(j*0.25)*rate), upper(j) = lower + 0.4 s.
    next_lower: u64,
    next_upper: u64,
    /// Sample positions of the next lower/upper boundaries (cached).
    lower_at: u64,
    upper_at: u64,
    at_lower: Vec<Vec<f64>>,
    at_upper: Vec<Vec<f64>>,
    // Short-term grid: cumulative energy at every multiple of the 100 ms hop.
    hop: u64,
    /// Next multiple of `hop` at which to record.
    next_hop_at: u64,
    /// Scratch: K-weighted energy of each run between record positions, per channel.
    sums: Vec<Vec<f64>>,
    /// Scratch: the record positions inside the current chunk.
    cuts: Vec<usize>,
    /// Samples after which a zero-started K-weighting filter has the state of one that
    /// ran all along (to far below f64 precision); `None` if it never settles.
    settle: Option<usize>,
    at_hop: Vec<Vec<f64>>,
    true_peak: Option<TruePeak>,
    sample_peak: f32,
}

impl LoudnessMeter {
    /// A meter that also measures true peak (costly: 256 multiply-adds per sample).
    pub fn new(sample_rate: u32, channels: usize) -> Self {
        Self::with_true_peak(sample_rate, channels, true)
    }

    /// A meter that measures true peak only when asked (without it, `true_peak_dbtp`
    /// reports the sample peak).
    pub fn with_true_peak(sample_rate: u32, channels: usize, true_peak: bool) -> Self {
        let rate = f64::from(sample_rate);
        let mut m = Self {
            rate,
            channels,
            filters: k_weighting(rate),
            states: vec![[BiquadState::default(); 2]; channels],
            cum: vec![0.0; channels],
            n: 0,
            next_lower: 0,
            next_upper: 0,
            lower_at: 0,
            upper_at: 0,
            at_lower: vec![Vec::new(); channels],
            at_upper: vec![Vec::new(); channels],
            hop: ((0.1 * rate).round() as u64).max(1),
            next_hop_at: 0,
            sums: vec![Vec::new(); channels],
            cuts: Vec::new(),
            settle: None,
            at_hop: vec![Vec::new(); channels],
            true_peak: true_peak.then(|| TruePeak::new(channels)),
            sample_peak: 0.0,
        };
        m.upper_at = m.upper(0);
        m.settle = settle_len(&m.filters);
        m.record();
        m
    }

    fn lower(&self, j: u64) -> u64 {
        (0.4 * (j as f64 * 0.25) * self.rate) as u64
    }

    fn upper(&self, j: u64) -> u64 {
        (0.4 * (j as f64 * 0.25 + 1.0) * self.rate) as u64
    }

    /// Record cumulative energies at any boundary equal to the current position.
    fn record(&mut self) {
        while self.lower_at == self.n {
            for c in 0..self.channels {
                self.at_lower[c].push(self.cum[c]);
            }
            self.next_lower += 1;
            self.lower_at = self.lower(self.next_lower);
        }
        while self.upper_at == self.n {
            for c in 0..self.channels {
                self.at_upper[c].push(self.cum[c]);
            }
            self.next_upper += 1;
            self.upper_at = self.upper(self.next_upper);
        }
        if self.next_hop_at == self.n {
            for c in 0..self.channels {
                self.at_hop[c].push(self.cum[c]);
            }
            self.next_hop_at += self.hop;
        }
    }

    /// Positions inside a chunk of `frames` samples (relative, in 1..frames) at which
    /// [`Self::record`] will store cumulative energies.
    fn chunk_cuts(&mut self, frames: usize) {
        self.cuts.clear();
        let end = self.n + frames as u64;
        let (mut next_lower, mut next_upper) = (self.next_lower, self.next_upper);
        let (mut lower_at, mut upper_at, mut hop_at) =
            (self.lower_at, self.upper_at, self.next_hop_at);
        loop {
            let next = lower_at.min(upper_at).min(hop_at);
            if next >= end {
                break;
            }
            self.cuts.push((next - self.n) as usize);
            while lower_at == next {
                next_lower += 1;
                lower_at = self.lower(next_lower);
            }
            while upper_at == next {
                next_upper += 1;
                upper_at = self.upper(next_upper);
            }
            if hop_at == next {
                hop_at += self.hop;
            }
        }
    }

    /// Feed a chunk (its channel count must be the meter's).
    pub fn push(&mut self, chunk: &AudioBuffer) {
        let planes = chunk.channels();
        self.sample_peak = self.sample_peak.max(chunk.peak());
        if let Some(tp) = self.true_peak.as_mut() {
            tp.push(planes);
        }
        // K-weighted energy of each run between the positions where a cumulative value
        // must be recorded, filtered and summed in one pass per channel.
        let frames = chunk.frames();
        self.chunk_cuts(frames);
        for (c, plane) in planes.iter().enumerate().take(self.channels) {
            run_energies(
                plane,
                &self.filters,
                &mut self.states[c],
                &self.cuts,
                self.settle,
                &mut self.sums[c],
            );
        }
        let mut start = 0;
        for i in 0..=self.cuts.len() {
            let end = self.cuts.get(i).copied().unwrap_or(frames);
            for c in 0..self.channels {
                self.cum[c] += self.sums[c][i];
            }
            self.n += (end - start) as u64;
            start = end;
            self.record();
        }
    }

    /// Final figures.
    pub fn finish(mut self) -> LoudnessReport {
        let total = self.n;
        let block = 0.4 * self.rate;
        let t = total as f64 / self.rate;
        let num_blocks = (((t - 0.4) / (0.4 * 0.25)).round_ties_even() + 1.0).max(0.0) as u64;
        let mut blocks = Vec::new();
        for j in 0..num_blocks {
            let mut e = 0.0;
            for c in 0..self.channels {
                let lo = self.at_lower[c]
                    .get(j as usize)
                    .copied()
                    .unwrap_or(self.cum[c]);
                let hi = self.at_upper[c]
                    .get(j as usize)
                    .copied()
                    .unwrap_or(self.cum[c]);
                e += channel_gain(c) * (hi - lo) / block;
            }
            blocks.push(e);
        }
        let integrated = gated_mean(&blocks, -70.0, -10.0).map(lufs);

        let mut short_term = Vec::new();
        let steps = self.at_hop.first().map_or(0, Vec::len);
        for k in 0..steps.saturating_sub(30) {
            let win = (30 * self.hop) as f64;
            let e: f64 = (0..self.channels)
                .map(|c| channel_gain(c) * (self.at_hop[c][k + 30] - self.at_hop[c][k]) / win)
                .sum();
            short_term.push(lufs(e));
        }
        let short_term_max = short_term.iter().copied().reduce(f64::max);
        let lra = (!short_term.is_empty()).then(|| loudness_range(&short_term));
        let tp = self
            .true_peak
            .take()
            .map_or(self.sample_peak, |t| t.finish().max(self.sample_peak));
        LoudnessReport {
            integrated_lufs: integrated.filter(|v| v.is_finite()),
            short_term_max_lufs: short_term_max.filter(|v| v.is_finite()),
            loudness_range: lra,
            true_peak_dbtp: 20.0 * f64::from(tp).log10(),
            sample_peak_dbfs: 20.0 * f64::from(self.sample_peak).log10(),
        }
    }
}

/// Spectral radius of a normalised biquad (largest pole magnitude).
fn pole_radius(f: &Biquad) -> f64 {
    let (a1, a2) = (f.a[1], f.a[2]);
    let disc = a1 * a1 - 4.0 * a2;
    if disc < 0.0 {
        a2.sqrt()
    } else {
        let s = disc.sqrt();
        ((-a1 + s) / 2.0).abs().max(((-a1 - s) / 2.0).abs())
    }
}

/// Samples after which the state of the K-weighting cascade started from zero matches
/// that of one that ran all along, to within 1e-24 of the signal's scale: the slowest
/// pole decayed twice over that factor (the margin covers repeated poles).
fn settle_len(filters: &[Biquad; 2]) -> Option<usize> {
    let r = filters.iter().map(pole_radius).fold(0.0, f64::max);
    (r.is_finite() && r < 1.0).then(|| (2.0 * (1e-24f64).ln() / r.ln()).ceil() as usize + 64)
}

/// Lanes run side by side when a channel is long enough (see [`run_energies`]).
const LANES: usize = 8;

/// K-weights `x` (continuing from `state`) and sums the squares of each run between
/// `cuts` (sorted positions in 1..len) into `sums` (cuts.len() + 1 values).
///
/// The two biquads form a recurrence, so one channel is a serial chain of dependent
/// multiply-adds. A long channel is split into [`LANES`] segments filtered side by
/// side; each segment after the first starts from zero state `settle` samples early,
/// by which point its state equals the continuous filter's to far below f64 rounding.
fn run_energies(
    x: &[f32],
    f: &[Biquad; 2],
    state: &mut [BiquadState; 2],
    cuts: &[usize],
    settle: Option<usize>,
    sums: &mut Vec<f64>,
) {
    sums.clear();
    sums.resize(cuts.len() + 1, 0.0);
    let seg = x.len() / LANES;
    match settle {
        Some(w) if seg >= 2 * w => {}
        _ => {
            let mut start = 0;
            for (i, &end) in cuts.iter().chain(std::iter::once(&x.len())).enumerate() {
                sums[i] = filter_energy(&x[start..end], f, state);
                start = end;
            }
            return;
        }
    }
    let w = settle.unwrap_or(0);
    let base: [usize; LANES] = std::array::from_fn(|l| l * seg);
    let mut states = [[BiquadState::default(); 2]; LANES];
    states[0] = *state;
    for l in 1..LANES {
        filter_energy(&x[base[l] - w..base[l]], f, &mut states[l]);
    }
    // Run index and next cut of each lane.
    let mut run: [usize; LANES] = std::array::from_fn(|l| cuts.partition_point(|&c| c <= base[l]));
    let next_cut = |r: usize| cuts.get(r).copied().unwrap_or(usize::MAX);
    let mut acc = [0.0f64; LANES];
    let mut z: [[f64; LANES]; 4] = [[0.0; LANES]; 4];
    for l in 0..LANES {
        let [s0, s1] = states[l];
        z[0][l] = s0.z1;
        z[1][l] = s0.z2;
        z[2][l] = s1.z1;
        z[3][l] = s1.z2;
    }
    let (b, a, c, d) = (f[0].b, f[0].a, f[1].b, f[1].a);
    let mut i = 0;
    while i < seg {
        // Advance all lanes up to the nearest cut of any lane.
        let step = (0..LANES)
            .map(|l| next_cut(run[l]) - (base[l] + i))
            .fold(seg - i, usize::min);
        let lanes: [&[f32]; LANES] = std::array::from_fn(|l| &x[base[l] + i..base[l] + i + step]);
        let [z0, z1, z2, z3] = &mut z;
        // Indexed by sample across the lanes, so the lanes advance together.
        #[allow(clippy::needless_range_loop)]
        for k in 0..step {
            let xv: [f64; LANES] = std::array::from_fn(|l| f64::from(lanes[l][k]));
            for l in 0..LANES {
                let v = xv[l];
                let y = b[0] * v + z0[l];
                z0[l] = b[1] * v - a[1] * y + z1[l];
                z1[l] = b[2] * v - a[2] * y;
                let o = c[0] * y + z2[l];
                z2[l] = c[1] * y - d[1] * o + z3[l];
                z3[l] = c[2] * y - d[2] * o;
                acc[l] += o * o;
            }
        }
        i += step;
        for l in 0..LANES {
            if base[l] + i == next_cut(run[l]) {
                sums[run[l]] += acc[l];
                acc[l] = 0.0;
                run[l] += 1;
            }
        }
    }
    for l in 0..LANES {
        sums[run[l]] += acc[l];
    }
    // The last lane goes on to the end of the channel.
    let mut last = [
        BiquadState {
            z1: z[0][LANES - 1],
            z2: z[1][LANES - 1],
        },
        BiquadState {
            z1: z[2][LANES - 1],
            z2: z[3][LANES - 1],
        },
    ];
    let mut start = LANES * seg;
    let mut r = run[LANES - 1];
    while start < x.len() {
        let end = next_cut(r).min(x.len());
        sums[r] += filter_energy(&x[start..end], f, &mut last);
        if end == next_cut(r) {
            r += 1;
        }
        start = end;
    }
    *state = last;
}

/// Sum of the squares of the K-weighted `x`, continuing from `state`.
fn filter_energy(x: &[f32], f: &[Biquad; 2], state: &mut [BiquadState; 2]) -> f64 {
    let [s0, s1] = state;
    let mut acc = 0.0;
    for &v in x {
        let y = s1.process(&f[1], s0.process(&f[0], f64::from(v)));
        acc += y * y;
    }
    acc
}

/// BS.1770 two-stage gating over block energies; returns the gated mean energy.
fn gated_mean(blocks: &[f64], abs_gate: f64, rel_gate: f64) -> Option<f64> {
    let above_abs: Vec<f64> = blocks
        .iter()
        .copied()
        .filter(|&e| lufs(e) >= abs_gate)
        .collect();
    if above_abs.is_empty() {
        return None;
    }
    let rel = lufs(above_abs.iter().sum::<f64>() / above_abs.len() as f64) + rel_gate;
    let gated: Vec<f64> = blocks
        .iter()
        .copied()
        .filter(|&e| lufs(e) > rel && lufs(e) > abs_gate)
        .collect();
    if gated.is_empty() {
        return None;
    }
    Some(gated.iter().sum::<f64>() / gated.len() as f64)
}

/// EBU Tech 3342 loudness range of short-term values (LUFS).
fn loudness_range(short_term: &[f64]) -> f64 {
    let abs: Vec<f64> = short_term.iter().copied().filter(|&l| l > -70.0).collect();
    if abs.is_empty() {
        return 0.0;
    }
    let mean_e = abs.iter().map(|l| 10f64.powf(l / 10.0)).sum::<f64>() / abs.len() as f64;
    let rel = 10.0 * mean_e.log10() - 20.0;
    let mut g: Vec<f64> = abs.into_iter().filter(|&l| l > rel).collect();
    if g.is_empty() {
        return 0.0;
    }
    g.sort_by(f64::total_cmp);
    percentile(&g, 95.0) - percentile(&g, 10.0)
}

/// numpy's default (linear) percentile of sorted data.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let pos = p / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

const TP_PHASES: usize = 4;
const TP_TAPS: usize = 64;

/// 4× oversampling peak meter (polyphase windowed-sinc interpolator).
struct TruePeak {
    phases: Vec<Vec<f32>>,
    history: Vec<Vec<f32>>,
    pos: usize,
    peak: f32,
}

impl TruePeak {
    fn new(channels: usize) -> Self {
        // Kaiser-windowed sinc low-pass at the original Nyquist, split into 4 phases.
        let len = TP_PHASES * TP_TAPS;
        let beta = 8.0;
        let i0 = |x: f64| {
            let (mut sum, mut term) = (1.0, 1.0);
            for k in 1..50 {
                term *= (x / 2.0 / k as f64).powi(2);
                sum += term;
            }
            sum
        };
        let centre = (len - 1) as f64 / 2.0;
        let mut phases = vec![vec![0.0f32; TP_TAPS]; TP_PHASES];
        for n in 0..len {
            let x = (n as f64 - centre) / TP_PHASES as f64;
            let sinc = if x.abs() < 1e-12 {
                1.0
            } else {
                (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
            };
            let r = (n as f64 - centre) / centre;
            let w = i0(beta * (1.0 - r * r).max(0.0).sqrt()) / i0(beta);
            phases[n % TP_PHASES][TP_TAPS - 1 - n / TP_PHASES] = (sinc * w) as f32;
        }
        Self {
            phases,
            history: vec![vec![0.0; 2 * TP_TAPS]; channels],
            pos: 0,
            peak: 0.0,
        }
    }

    fn push(&mut self, planes: &[Vec<f32>]) {
        let frames = planes.first().map_or(0, Vec::len);
        for i in 0..frames {
            // The history is stored twice so the last TP_TAPS samples are contiguous.
            for (h, plane) in self.history.iter_mut().zip(planes) {
                h[self.pos] = plane[i];
                h[self.pos + TP_TAPS] = plane[i];
            }
            self.pos = (self.pos + 1) % TP_TAPS;
            for h in &self.history {
                // Oldest..newest; taps are stored reversed so this is a dot product.
                let window = &h[self.pos..self.pos + TP_TAPS];
                for ph in &self.phases {
                    let acc: f32 = ph.iter().zip(window).map(|(c, x)| c * x).sum();
                    self.peak = self.peak.max(acc.abs());
                }
            }
        }
    }

    fn finish(mut self) -> f32 {
        // Flush the filter tail with zeros.
        let ch = self.history.len();
        self.push(&vec![vec![0.0; TP_TAPS]; ch]);
        self.peak
    }
}

/// All loudness figures of an in-memory buffer.
pub fn measure_loudness(audio: &AudioBuffer) -> LoudnessReport {
    let mut m = LoudnessMeter::new(audio.sample_rate(), audio.num_channels());
    m.push(audio);
    m.finish()
}

/// Integrated loudness only (pyloudnorm's figure), `None` as in [`LoudnessReport`].
pub fn integrated_loudness(audio: &AudioBuffer) -> Option<f64> {
    let mut m = LoudnessMeter::with_true_peak(audio.sample_rate(), audio.num_channels(), false);
    m.push(audio);
    m.finish().integrated_lufs
}
