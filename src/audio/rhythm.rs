//! Onset strength, onset picking, tempo and beat tracking, following librosa 0.11
//! (`onset.onset_strength`, `onset.onset_detect`, `feature.tempo`, `beat.beat_track`)
//! step by step, with their defaults.

use realfft::RealFftPlanner;
use realfft::num_complex::Complex;

use super::spectral::{
    RealPair, fast_even_len, hann_periodic, median, mel_power_frames, par_ranges_grain,
    power_to_db, sum_squares,
};

/// How the per-band increases are combined into one onset value per frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// librosa's default for `onset_strength` and `tempo`.
    Mean,
    /// What `beat_track` uses.
    Median,
}

/// Onset envelope from a dB mel spectrogram (frames × bands), lag 1, no max filter,
/// shifted right by `1 + n_fft / (2 hop)` frames and trimmed, as librosa centres it.
pub fn onset_envelope_from_db<R: AsRef<[f32]>>(
    db: &[R],
    aggregate: Aggregate,
    n_fft: usize,
    hop: usize,
) -> Vec<f64> {
    let t = db.len();
    let pad = 1 + n_fft / (2 * hop);
    let mut env = vec![0.0f64; t];
    let mut diffs = Vec::new();
    for (i, e) in env.iter_mut().enumerate().skip(pad) {
        let j = i - pad + 1;
        if j >= t {
            break;
        }
        diffs.clear();
        diffs.extend(
            db[j]
                .as_ref()
                .iter()
                .zip(db[j - 1].as_ref())
                .map(|(a, b)| f64::from((a - b).max(0.0))),
        );
        *e = match aggregate {
            Aggregate::Mean => diffs.iter().sum::<f64>() / diffs.len().max(1) as f64,
            Aggregate::Median => median(&mut diffs).unwrap_or(0.0),
        };
    }
    env
}

/// `librosa.onset.onset_strength(y, sr)` (n_fft 2048, hop 512, 128 mel bands).
pub fn onset_strength(y: &[f32], sr: f64, hop: usize, aggregate: Aggregate) -> Vec<f64> {
    let n_fft = 2048;
    let mut db = mel_power_frames(y, sr, n_fft, hop, 128);
    power_to_db(&mut db);
    onset_envelope_from_db(&db, aggregate, n_fft, hop)
}

/// Parameters of `librosa.feature.tempo`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TempoParams {
    pub start_bpm: f64,
    pub std_bpm: f64,
    /// Autocorrelation window in seconds.
    pub ac_size: f64,
    pub max_tempo: f64,
}

impl Default for TempoParams {
    fn default() -> Self {
        Self {
            start_bpm: 120.0,
            std_bpm: 1.0,
            ac_size: 8.0,
            max_tempo: 320.0,
        }
    }
}

/// `acc += |re + i·im|² · scale` (vectorised: the slices cannot overlap).
fn add_power(acc: &mut [f64], re: &[f32], im: &[f32], scale: f64) {
    for ((a, &r), &i) in acc.iter_mut().zip(re).zip(im) {
        *a += f64::from(r * r + i * i) * scale;
    }
}

/// Mean of the autocorrelation tempogram (`librosa.feature.tempogram`, hann window,
/// centred with linear-ramp padding, each frame normalised by its max).
///
/// An autocorrelation's largest value is at lag 0 (its energy), so each frame is
/// divided by the energy of its windowed samples. The mean of the normalised
/// autocorrelations is the inverse transform of the mean of the normalised power
/// spectra: one forward FFT per frame and a single inverse FFT.
pub fn mean_tempogram(env: &[f64], win: usize) -> Vec<f64> {
    let n = env.len();
    let mut acc = vec![0.0f64; win];
    if n == 0 || win == 0 {
        return acc;
    }
    let p = win / 2;
    let (first, last) = (env[0], env[n - 1]);
    let mut padded = Vec::with_capacity(n + 2 * p);
    padded.extend((0..p).map(|i| first * i as f64 / p as f64));
    padded.extend_from_slice(env);
    padded.extend((0..p).map(|j| last * (p - 1 - j) as f64 / p as f64));
    // frame() needs len >= win; librosa errors otherwise, we return the zeros.
    if padded.len() < win {
        return acc;
    }
    let window = hann_periodic(win);
    let frames = (padded.len() - win + 1).min(n);
    // Lags 0..win of a length-win frame: 2·win − 1 points avoid wrap-around.
    let n_pad = fast_even_len((2 * win).saturating_sub(1).max(1));
    // Two frames per transform; ranges start at even frames so that the pairing (and
    // so the rounding) does not depend on the number of threads.
    let partials = par_ranges_grain(frames, 2, |range| {
        let mut pair = RealPair::new(n_pad);
        let mut buf = [vec![0.0f32; win], vec![0.0f32; win]];
        let mut power = vec![0.0f64; pair.bins()];
        for start in range.clone().step_by(2) {
            let count = 2.min(range.end - start);
            let mut energy = [0.0f64; 2];
            for (i, (b, e)) in buf.iter_mut().zip(&mut energy).take(count).enumerate() {
                let t = start + i;
                for ((b, &x), &w) in b.iter_mut().zip(&padded[t..t + win]).zip(&window) {
                    *b = (x * f64::from(w)) as f32;
                }
                *e = sum_squares(b);
            }
            let [a, b] = &buf;
            pair.forward(a, if count == 2 { b } else { &[] });
            let [ar, ai, br, bi] = &pair.spec;
            for (e, (re, im)) in energy.iter().zip([(ar, ai), (br, bi)]).take(count) {
                if *e < f64::from(f32::MIN_POSITIVE) {
                    // An all-zero frame adds nothing.
                    continue;
                }
                add_power(&mut power, re, im, 1.0 / e);
            }
        }
        power
    });
    let mut power = vec![0.0f64; n_pad / 2 + 1];
    for part in partials {
        for (a, v) in power.iter_mut().zip(part) {
            *a += v;
        }
    }
    let inv = RealFftPlanner::<f64>::new().plan_fft_inverse(n_pad);
    let mut spec: Vec<Complex<f64>> = power.iter().map(|&v| Complex::new(v, 0.0)).collect();
    let mut out = inv.make_output_vec();
    let _ = inv.process(&mut spec, &mut out);
    let scale = 1.0 / (n_pad as f64 * frames as f64);
    for (a, v) in acc.iter_mut().zip(&out) {
        *a = v * scale;
    }
    acc
}

/// Tempo in BPM from an onset envelope (`librosa.feature.tempo`, aggregate mean).
pub fn tempo(env: &[f64], sr: f64, hop: usize, p: &TempoParams) -> f64 {
    let win = (p.ac_size * sr / hop as f64).floor() as usize;
    if win < 2 {
        return 0.0;
    }
    let tg = mean_tempogram(env, win);
    let bpm = |k: usize| 60.0 * sr / (hop as f64 * k as f64);
    let max_idx = (1..win).find(|&k| bpm(k) < p.max_tempo).unwrap_or(win);
    let mut best = (f64::NEG_INFINITY, 0usize);
    for (k, &g) in tg.iter().enumerate().skip(max_idx.max(1)) {
        let logprior = -0.5 * ((bpm(k).log2() - p.start_bpm.log2()) / p.std_bpm).powi(2);
        let score = (1.0 + 1e6 * g).ln() + logprior;
        if score > best.0 {
            best = (score, k);
        }
    }
    if best.1 == 0 { 0.0 } else { bpm(best.1) }
}

fn local_max(x: &[f64], i: usize) -> bool {
    let prev = if i == 0 { x[0] } else { x[i - 1] };
    let next = if i + 1 < x.len() { x[i + 1] } else { x[i] };
    x[i] > prev && x[i] >= next
}

/// Beat frames by dynamic programming (`librosa.beat.beat_track` with tightness and trim).
pub fn beat_track(
    env: &[f64],
    sr: f64,
    hop: usize,
    bpm: f64,
    tightness: f64,
    trim: bool,
) -> Vec<usize> {
    let n = env.len();
    if n < 2 || bpm <= 0.0 || env.iter().all(|&v| v == 0.0) {
        return Vec::new();
    }
    let frame_rate = sr / hop as f64;
    let fpb = (frame_rate * 60.0 / bpm).round_ties_even().max(1.0);
    // Normalise by the standard deviation (ddof = 1).
    let mean = env.iter().sum::<f64>() / n as f64;
    let var = env.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let norm = var.sqrt() + f64::from(f32::MIN_POSITIVE);
    let onsets: Vec<f64> = env.iter().map(|v| v / norm).collect();
    // Local score: same-mode convolution with a Gaussian of width fpb/32 (librosa's
    // loop bounds, which skip the last tap, are kept).
    let half = fpb as i64;
    let window: Vec<f64> = (-half..=half)
        .map(|k| (-0.5 * (k as f64 * 32.0 / fpb).powi(2)).exp())
        .collect();
    let kk = window.len() as i64;
    let mut local = vec![0.0f64; n];
    for (i, l) in local.iter_mut().enumerate() {
        let i = i as i64;
        let lo = 0.max(i + kk / 2 - n as i64 + 1);
        let hi = (i + kk / 2).min(kk);
        for k in lo..hi {
            *l += window[k as usize] * onsets[(i + kk / 2 - k) as usize];
        }
    }
    // Dynamic programme.
    let score_thresh = 0.01 * local.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut backlink = vec![-1i64; n];
    let mut cum = vec![0.0f64; n];
    let mut first_beat = true;
    let start_off = (fpb / 2.0).round_ties_even() as i64;
    let fpb_i = fpb as i64;
    for i in 0..n {
        let mut best = f64::NEG_INFINITY;
        let mut loc_best = -1i64;
        let mut loc = i as i64 - start_off;
        while loc > i as i64 - 2 * fpb_i - 1 {
            if loc < 0 {
                break;
            }
            let score =
                cum[loc as usize] - tightness * ((i as f64 - loc as f64).ln() - fpb.ln()).powi(2);
            if score > best {
                best = score;
                loc_best = loc;
            }
            loc -= 1;
        }
        cum[i] = if loc_best >= 0 {
            local[i] + best
        } else {
            local[i]
        };
        if first_beat && local[i] < score_thresh {
            backlink[i] = -1;
        } else {
            backlink[i] = loc_best;
            first_beat = false;
        }
    }
    // Last beat: the last local max of the cumulative score above half their median.
    let mut maxima: Vec<f64> = (0..n)
        .filter(|&i| local_max(&cum, i))
        .map(|i| cum[i])
        .collect();
    let threshold = 0.5 * median(&mut maxima).unwrap_or(0.0);
    let tail = (0..n)
        .rev()
        .find(|&i| local_max(&cum, i) && cum[i] >= threshold)
        .unwrap_or(n - 1);
    let mut beats = vec![false; n];
    let mut k = tail as i64;
    while k >= 0 {
        beats[k as usize] = true;
        k = backlink[k as usize];
    }
    // Trim weak leading and trailing beats.
    let at_beats: Vec<f64> = (0..n).filter(|&i| beats[i]).map(|i| local[i]).collect();
    let threshold = if trim {
        let w = [0.0, 0.5, 1.0, 0.5, 0.0];
        let b = at_beats.len();
        let mut full = vec![0.0f64; b + 4];
        for (i, v) in at_beats.iter().enumerate() {
            for (j, wj) in w.iter().enumerate() {
                full[i + j] += v * wj;
            }
        }
        let smooth = &full[2..];
        0.5 * (smooth.iter().map(|v| v * v).sum::<f64>() / smooth.len() as f64).sqrt()
    } else {
        0.0
    };
    let mut i = 0;
    while i < n && local[i] <= threshold {
        beats[i] = false;
        i += 1;
    }
    let mut i = n;
    while i > 0 && local[i - 1] <= threshold {
        beats[i - 1] = false;
        i -= 1;
    }
    (0..n).filter(|&i| beats[i]).collect()
}

/// Peak-picking parameters of `librosa.onset.onset_detect`, in frames (delta in
/// normalised envelope units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeakPick {
    pub pre_max: usize,
    pub post_max: usize,
    pub pre_avg: usize,
    pub post_avg: usize,
    pub delta: f64,
    pub wait: usize,
}

impl PeakPick {
    /// librosa's defaults: 30 ms max window, 100 ms mean windows, 30 ms wait, delta 0.07.
    pub fn librosa_defaults(sr: f64, hop: usize) -> Self {
        let frames = |s: f64| (s * sr / hop as f64).floor() as usize;
        Self {
            pre_max: frames(0.03),
            post_max: 1,
            pre_avg: frames(0.10),
            post_avg: frames(0.10) + 1,
            delta: 0.07,
            wait: frames(0.03),
        }
    }
}

/// Onset frames: the envelope is scaled to [0, 1] and peak-picked (`onset_detect`).
pub fn onset_detect(env: &[f64], p: &PeakPick) -> Vec<usize> {
    let n = env.len();
    if n == 0 {
        return Vec::new();
    }
    let min = env.iter().copied().fold(f64::INFINITY, f64::min);
    let shifted: Vec<f64> = env.iter().map(|v| v - min).collect();
    let max = shifted.iter().copied().fold(0.0, f64::max);
    if max <= 0.0 || !max.is_finite() {
        return Vec::new();
    }
    let x: Vec<f64> = shifted
        .iter()
        .map(|v| v / (max + f64::from(f32::MIN_POSITIVE)))
        .collect();
    let delta = f64::from(p.delta as f32);
    let window_max = |a: usize, b: usize| x[a..b].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let window_mean = |a: usize, b: usize| x[a..b].iter().sum::<f64>() / (b - a) as f64;
    let mut peaks = Vec::new();
    let first = x[0] >= window_max(0, p.post_max.clamp(1, n))
        && x[0] >= window_mean(0, p.post_avg.clamp(1, n)) + delta;
    let mut i = if first {
        peaks.push(0);
        p.wait + 1
    } else {
        1
    };
    while i < n {
        let maxn = window_max(i.saturating_sub(p.pre_max), (i + p.post_max).min(n));
        if x[i] != maxn {
            i += 1;
            continue;
        }
        let avg = window_mean(i.saturating_sub(p.pre_avg), (i + p.post_avg).min(n));
        if x[i] < avg + delta {
            i += 1;
            continue;
        }
        peaks.push(i);
        i += p.wait + 1;
    }
    peaks
}
