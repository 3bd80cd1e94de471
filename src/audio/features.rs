//! `analysis/features`: the librosa figures of a whole file.
//!
//! Every figure is computed on the mono downmix at the file's own sample rate (librosa
//! `load(sr=None, mono=True)`) with librosa 0.11 defaults: `n_fft` 2048, hop 512, periodic
//! Hann window, centred frames zero-padded by `n_fft/2` (`pad_mode="constant"`).
//! - `rms`: mean of `feature.rms` (time-domain frames of 2048, zero-padded).
//! - `peak`: largest |sample| over all channels of the original; `crestFactor` =
//!   `peak / rms`.
//! - `spectralCentroid|Bandwidth|Rolloff|Flatness`: means over frames of the `feature.*`
//!   functions on the magnitude spectrogram (rolloff 0.85, flatness power 2, amin 1e-10).
//! - `zeroCrossingRate`: mean of `feature.zero_crossing_rate` (edge padding, threshold
//!   1e-10, as librosa).
//! - `mfcc`: means of `feature.mfcc(n_mfcc=13)`: 128 Slaney mel bands, `power_to_db`
//!   (top_db 80 over the whole file), orthonormal DCT-II.
//! - `chroma`: means of `feature.chroma_stft` (tuning estimated by `estimate_tuning`).
//! - `f0`: median YIN f0 over voiced frames (see [`super::pitch`]), `null` if none.
//! - `tempo`: `feature.tempo` (mean onset strength, 8 s autocorrelation, prior at 120 BPM).
//! - `loudnessLufs`: BS.1770 integrated loudness of the original channels (pyloudnorm),
//!   `null` for audio shorter than 0.4 s or silent.

use serde::Serialize;

use super::buffer::AudioBuffer;
use super::error::{AudioError, Result};
use super::loudness::integrated_loudness;
use super::pitch::{YinParams, median_f0};
use super::rhythm::{Aggregate, TempoParams, onset_envelope_from_db, tempo};
use super::spectral::{
    SparseBank, Stft, avx2_dispatch, centered_frames, chroma_filterbank, dct2_ortho, dot,
    fft_frequencies, hz_to_octs, median, mel_filterbank, par_ranges_grain, power_to_db,
};

/// Analysis parameters; the defaults are librosa's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureParams {
    pub n_fft: usize,
    pub hop_length: usize,
    pub n_mels: usize,
    pub n_mfcc: usize,
    pub rolloff_percent: f64,
    pub yin: YinParams,
    pub tempo: TempoParams,
}

impl Default for FeatureParams {
    fn default() -> Self {
        Self {
            n_fft: 2048,
            hop_length: 512,
            n_mels: 128,
            n_mfcc: 13,
            rolloff_percent: 0.85,
            yin: YinParams::default(),
            tempo: TempoParams::default(),
        }
    }
}

/// The result object of `analysis/features` (keys are the operation's contract).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    pub duration: f64,
    pub sample_rate: u32,
    pub channels: usize,
    pub peak: f64,
    pub rms: f64,
    pub crest_factor: f64,
    pub loudness_lufs: Option<f64>,
    pub spectral_centroid: f64,
    pub spectral_bandwidth: f64,
    pub spectral_rolloff: f64,
    pub spectral_flatness: f64,
    pub zero_crossing_rate: f64,
    pub mfcc: Vec<f64>,
    pub chroma: Vec<f64>,
    pub f0: Option<f64>,
    pub tempo: f64,
}

/// Per-frame spectral statistics, accumulated over the first STFT pass.
#[derive(Default)]
struct SpectralSums {
    centroid: f64,
    bandwidth: f64,
    rolloff: f64,
    flatness: f64,
}

/// Sum of `v²` (squared in f32, as librosa) in f64, in eight partial sums so that it
/// is not one serial chain.
fn energy(x: &[f32]) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            acc[i] += f64::from(c[i] * c[i]);
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += f64::from(v * v);
    }
    acc.iter().sum()
}

/// Mean of `feature.rms`.
pub fn mean_rms(y: &[f32], frame: usize, hop: usize) -> f64 {
    let half = frame / 2;
    let frames = centered_frames(y.len(), hop);
    let mut sum = 0.0;
    if frame.is_multiple_of(hop) && half.is_multiple_of(hop) {
        // Frames are whole runs of hop-sized blocks: sum each block's energy once.
        let blocks: Vec<f64> = y.chunks(hop).map(energy).collect();
        let (per, back) = (frame / hop, half / hop);
        for t in 0..frames {
            let first = t as isize - back as isize;
            let e: f64 = (first..first + per as isize)
                .filter(|&b| b >= 0 && (b as usize) < blocks.len())
                .map(|b| blocks[b as usize])
                .sum();
            sum += (e / frame as f64).sqrt();
        }
        return sum / frames as f64;
    }
    for t in 0..frames {
        // Zero padding contributes nothing: sum the part of the frame inside the signal.
        let start = (t * hop) as isize - half as isize;
        let lo = start.max(0) as usize;
        let hi = ((start + frame as isize).max(0) as usize).min(y.len());
        sum += (energy(&y[lo.min(hi)..hi]) / frame as f64).sqrt();
    }
    sum / frames as f64
}

/// Mean of `feature.zero_crossing_rate` (edge-padded frames, |x| <= 1e-10 counts as 0,
/// zero counts as positive).
pub fn mean_zero_crossing_rate(y: &[f32], frame: usize, hop: usize) -> f64 {
    if y.is_empty() {
        return 0.0;
    }
    let neg = |s: f32| (if s.abs() <= 1e-10 { 0.0 } else { s }).is_sign_negative();
    // A crossing at j >= 1 lies between samples j - 1 and j. Edge padding repeats the
    // end samples, so padded regions never cross: frame t counts the crossings at
    // start+1 ..= start+frame-1 inside 1..len.
    let crossings = |lo: usize, hi: usize| -> u32 {
        let lo = lo.max(1);
        if lo >= hi {
            return 0;
        }
        y[lo - 1..hi]
            .windows(2)
            .map(|w| u32::from(neg(w[0]) != neg(w[1])))
            .sum()
    };
    let half = frame / 2;
    let frames = centered_frames(y.len(), hop);
    let last = y.len() as isize - 1;
    let mut sum = 0.0;
    if frame.is_multiple_of(hop) && half.is_multiple_of(hop) {
        // Frames are whole runs of hop-sized blocks: count each block's crossings once,
        // then leave out the crossing at the frame's first sample.
        let blocks: Vec<u32> = (0..y.len().div_ceil(hop))
            .map(|b| crossings(b * hop, ((b + 1) * hop).min(y.len())))
            .collect();
        let (per, back) = (frame / hop, half / hop);
        for t in 0..frames {
            let first = t as isize - back as isize;
            let mut count: u32 = (first..first + per as isize)
                .filter(|&b| b >= 0 && (b as usize) < blocks.len())
                .map(|b| blocks[b as usize])
                .sum();
            let start = first * hop as isize;
            if start >= 1 && start <= last {
                count -= crossings(start as usize, start as usize + 1);
            }
            sum += f64::from(count) / frame as f64;
        }
        return sum / frames as f64;
    }
    // Other framings: prefix[j] = crossings at 1..=j.
    let mut prefix = vec![0u32; y.len()];
    for j in 1..y.len() {
        prefix[j] = prefix[j - 1] + u32::from(neg(y[j]) != neg(y[j - 1]));
    }
    for t in 0..frames {
        let start = (t * hop) as isize - half as isize;
        let a = (start + 1).max(1);
        let b = (start + frame as isize - 1).min(last);
        if a <= b {
            sum += f64::from(prefix[b as usize] - prefix[a as usize - 1]) / frame as f64;
        }
    }
    sum / frames as f64
}

/// Tuning deviation in fractions of a semitone (`librosa.estimate_tuning` on the power
/// spectrogram: piptrack candidates between 150 and 4000 Hz above 0.1 × frame max,
/// those at or above the median magnitude, histogram at 0.01 resolution).
pub(super) fn tuning_from_candidates(candidates: &[(f64, f64)]) -> f64 {
    let with_pitch: Vec<&(f64, f64)> = candidates.iter().filter(|c| c.0 > 0.0).collect();
    if with_pitch.is_empty() {
        return 0.0;
    }
    let mut mags: Vec<f64> = with_pitch.iter().map(|c| c.1).collect();
    let threshold = median(&mut mags).unwrap_or(0.0);
    let mut counts = [0usize; 100];
    let mut any = false;
    for &&(f, m) in &with_pitch {
        if m < threshold {
            continue;
        }
        let mut r = (12.0 * hz_to_octs(f, 0.0, 12)).rem_euclid(1.0);
        if r >= 0.5 {
            r -= 1.0;
        }
        // Bins [-0.5 + i/100, -0.5 + (i+1)/100), the last one closed.
        let i = (((r + 0.5) * 100.0).floor() as usize).min(99);
        counts[i] += 1;
        any = true;
    }
    if !any {
        return 0.0;
    }
    let best = (0..100).fold(0, |b, i| if counts[i] > counts[b] { i } else { b });
    -0.5 + best as f64 / 100.0
}

/// piptrack on one power frame: (frequency, magnitude) of each thresholded local max.
#[inline(always)]
pub(super) fn piptrack_frame(p: &[f32], sr: f64, n_fft: usize, out: &mut Vec<(f64, f64)>) {
    let n = p.len();
    let max = p.iter().fold(0.0f32, |m, &v| m.max(v));
    let ref_value = 0.1 * max;
    let x = |k: usize| if p[k] > ref_value { p[k] } else { 0.0 };
    let bin_hz = sr / n_fft as f64;
    let k_lo = (150.0 / bin_hz).ceil().max(1.0) as usize;
    let f_hi = 4000.0f64.min(sr / 2.0);
    for k in k_lo..n {
        let f = k as f64 * bin_hz;
        if f >= f_hi {
            break;
        }
        if f < 150.0 {
            continue;
        }
        let xk = x(k);
        let next = if k + 1 < n { x(k + 1) } else { xk };
        if !(xk > x(k - 1) && xk >= next) {
            continue;
        }
        let s = |i: usize| f64::from(p[i]);
        let (shift, grad) = if k + 1 < n {
            let a = s(k + 1) + s(k - 1) - 2.0 * s(k);
            let b = (s(k + 1) - s(k - 1)) / 2.0;
            (if b.abs() >= a.abs() { 0.0 } else { -b / a }, b)
        } else {
            (0.0, s(k) - s(k - 1))
        };
        out.push(((k as f64 + shift) * bin_hz, s(k) + 0.5 * grad * shift));
    }
}

/// Compute all features of a buffer.
pub fn extract_features(audio: &AudioBuffer, params: &FeatureParams) -> Result<Features> {
    super::cancel::check()?;
    if audio.is_empty() {
        return Err(AudioError::Invalid("cannot analyse empty audio".into()));
    }
    // Mono input is analysed in place; only multichannel audio needs a downmix copy.
    let y: std::borrow::Cow<[f32]> = if audio.num_channels() == 1 {
        std::borrow::Cow::Borrowed(audio.channel(0))
    } else {
        std::borrow::Cow::Owned(audio.to_mono())
    };
    let y: &[f32] = &y;
    let sr = f64::from(audio.sample_rate());
    let (n_fft, hop) = (params.n_fft, params.hop_length);
    if n_fft < 4 || hop == 0 {
        return Err(AudioError::Invalid(
            "n_fft must be >= 4 and hop >= 1".into(),
        ));
    }
    // f0 and loudness do not depend on the spectrogram: run them alongside it.
    let (f0, loudness, (spectral, rms, zcr)) = std::thread::scope(|scope| {
        let f0 = scope.spawn(|| median_f0(y, sr, &params.yin));
        let loudness = scope.spawn(|| integrated_loudness(audio));
        let spectral = spectral_figures(y, sr, params);
        let rms = mean_rms(y, n_fft, hop);
        let zcr = mean_zero_crossing_rate(y, n_fft, hop);
        (f0.join(), loudness.join(), (spectral, rms, zcr))
    });
    super::cancel::check()?;
    let f0 = f0.map_err(|_| AudioError::Invalid("f0 analysis failed".into()))?;
    let loudness_lufs =
        loudness.map_err(|_| AudioError::Invalid("loudness analysis failed".into()))?;
    let peak = f64::from(audio.peak());
    Ok(Features {
        duration: audio.duration_secs(),
        sample_rate: audio.sample_rate(),
        channels: audio.num_channels(),
        peak,
        rms,
        crest_factor: if rms > 0.0 { peak / rms } else { 0.0 },
        loudness_lufs,
        spectral_centroid: spectral.centroid,
        spectral_bandwidth: spectral.bandwidth,
        spectral_rolloff: spectral.rolloff,
        spectral_flatness: spectral.flatness,
        zero_crossing_rate: zcr,
        mfcc: spectral.mfcc,
        chroma: spectral.chroma,
        f0,
        tempo: spectral.tempo,
    })
}

/// Means of the STFT-based figures.
struct SpectralFigures {
    centroid: f64,
    bandwidth: f64,
    rolloff: f64,
    flatness: f64,
    mfcc: Vec<f64>,
    chroma: Vec<f64>,
    tempo: f64,
}

/// Frames analysed together in pass 1 (an even number: two per transform).
const BATCH: usize = 8;

/// Centroid, bandwidth, rolloff and flatness of one frame (magnitudes `mag`, powers
/// `power`). Sums run in independent partial sums so that they are not one serial chain.
/// Rolloff is the first bin where the running sum of magnitudes reaches `percent` of
/// their total (numpy's `cumsum` runs in float32 sequentially; this one is accurate,
/// which can move a frame's rolloff by a bin only where the two disagree within
/// float32 rounding).
#[inline(always)]
fn shape_of_frame(
    mag: &[f32],
    power: &[f32],
    freqs: &[f64],
    percent: f64,
    blocks: &mut Vec<f64>,
) -> (f64, f64, f64, f64) {
    let n = mag.len();
    let (mut total, mut weighted) = ([0.0f64; 4], [0.0f64; 4]);
    let split = n - n % 4;
    // Sums of blocks of 4 magnitudes, kept for the rolloff search.
    blocks.clear();
    for (m, f) in mag[..split]
        .chunks_exact(4)
        .zip(freqs[..split].chunks_exact(4))
    {
        let mut block = 0.0;
        for i in 0..4 {
            total[i] += f64::from(m[i]);
            weighted[i] += f64::from(m[i]) * f[i];
            block += f64::from(m[i]);
        }
        blocks.push(block);
    }
    for (m, f) in mag[split..].iter().zip(&freqs[split..]) {
        total[0] += f64::from(*m);
        weighted[0] += f64::from(*m) * f;
    }
    let total: f64 = total.iter().sum();
    let threshold = percent * total;
    let mut run = 0.0;
    let mut rolloff = 0.0;
    'search: for (b, &block) in blocks.iter().enumerate() {
        if run + block >= threshold {
            for (k, &m) in mag.iter().enumerate().skip(4 * b) {
                run += f64::from(m);
                if run >= threshold {
                    rolloff = freqs[k];
                    break 'search;
                }
            }
        }
        run += block;
    }
    if run < threshold {
        // Only the last bins remain (rounding may leave the threshold just out of
        // reach of the block sums).
        for (k, &m) in mag.iter().enumerate().skip(split) {
            run += f64::from(m);
            if run >= threshold {
                rolloff = freqs[k];
                break;
            }
        }
    }
    let norm = if total < f64::from(f32::MIN_POSITIVE) {
        1.0
    } else {
        total
    };
    let centroid = weighted.iter().sum::<f64>() / norm;
    let mut spread = [0.0f64; 4];
    for (m, f) in mag[..split]
        .chunks_exact(4)
        .zip(freqs[..split].chunks_exact(4))
    {
        for i in 0..4 {
            let d = f[i] - centroid;
            spread[i] += f64::from(m[i]) * (d * d);
        }
    }
    for (m, f) in mag[split..].iter().zip(&freqs[split..]) {
        spread[0] += f64::from(*m) * (f - centroid).powi(2);
    }
    // One division per frame instead of one per bin.
    let bandwidth = (spread.iter().sum::<f64>() / norm).sqrt();
    // Flatness: the sum of logs is the log of a product. Each power (floored at 1e-10,
    // a normal f32) is 2^e · m with m in [1, 2): the exponents add up exactly and the
    // mantissas multiply in eight f64 products (up to 2^129 each), so a frame needs
    // eight logarithms instead of one per bin.
    let mut exponents = 0i64;
    let mut products = [1.0f64; 8];
    let mut linear = [0.0f64; 8];
    let split8 = n - n % 8;
    let parts = |p: f32| {
        let v = p.max(1e-10);
        let bits = v.to_bits();
        let e = i64::from((bits >> 23) & 0xff) - 127;
        (e, f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000), v)
    };
    for group in power[..split8].chunks_exact(8) {
        for i in 0..8 {
            let (e, m, v) = parts(group[i]);
            exponents += e;
            products[i] *= f64::from(m);
            linear[i] += f64::from(v);
        }
    }
    for &p in &power[split8..] {
        let (e, m, v) = parts(p);
        exponents += e;
        products[0] *= f64::from(m);
        linear[0] += f64::from(v);
    }
    let log_sum =
        exponents as f64 * std::f64::consts::LN_2 + products.iter().map(|p| p.ln()).sum::<f64>();
    let lin_sum: f64 = linear.iter().sum();
    let flatness = (log_sum / n as f64).exp() / (lin_sum / n as f64);
    (centroid, bandwidth, rolloff, flatness)
}

/// `power = mag²` (float32, as librosa squares its magnitudes).
#[inline(always)]
fn squares(mag: &[f32], power: &mut [f32]) {
    for (p, &m) in power.iter_mut().zip(mag) {
        *p = m * m;
    }
}

/// Magnitudes of frames `start..start + mags.len()`, two per transform.
#[inline(always)]
fn batch_magnitudes(stft: &mut Stft, y: &[f32], start: usize, mags: &mut [Vec<f32>]) {
    for (i, pair) in mags.chunks_mut(2).enumerate() {
        match pair {
            [a, b] => stft.magnitudes(y, start + 2 * i, a, Some(b)),
            [a] => stft.magnitude(y, start + 2 * i, a),
            _ => {}
        }
    }
}

avx2_dispatch! {
    /// Pass 1 over a range of frames: shape sums, mel power rows and tuning candidates.
    fn shape_pass(
        y: &[f32],
        sr: f64,
        params: &FeatureParams,
        freqs: &[f64],
        mel_bank: &SparseBank,
        range: std::ops::Range<usize>,
    ) -> (SpectralSums, Vec<f32>, Vec<(f64, f64)>) = shape_pass_body;
}

#[inline(always)]
fn shape_pass_body(
    y: &[f32],
    sr: f64,
    params: &FeatureParams,
    freqs: &[f64],
    mel_bank: &SparseBank,
    range: std::ops::Range<usize>,
) -> (SpectralSums, Vec<f32>, Vec<(f64, f64)>) {
    let (n_fft, hop, n_mels) = (params.n_fft, params.hop_length, params.n_mels);
    let nb = n_fft / 2 + 1;
    let mut stft = Stft::new(n_fft, hop);
    let mut mags = vec![vec![0.0f32; nb]; BATCH];
    let mut power = vec![0.0f32; nb];
    let mut blocks = Vec::with_capacity(nb / 4 + 1);
    let mut sums = SpectralSums::default();
    let mut mel = vec![0.0f32; range.len() * n_mels];
    let mut mel_rows = mel.chunks_exact_mut(n_mels.max(1));
    let mut candidates = Vec::new();
    for start in range.clone().step_by(BATCH) {
        let count = BATCH.min(range.end - start);
        batch_magnitudes(&mut stft, y, start, &mut mags[..count]);
        for mag in &mags[..count] {
            squares(mag, &mut power);
            let (centroid, bandwidth, rolloff, flatness) =
                shape_of_frame(mag, &power, freqs, params.rolloff_percent, &mut blocks);
            sums.centroid += centroid;
            sums.bandwidth += bandwidth;
            sums.rolloff += rolloff;
            sums.flatness += flatness;
            if let Some(row) = mel_rows.next() {
                mel_bank.apply_into(&power, row);
            }
            piptrack_frame(&power, sr, n_fft, &mut candidates);
        }
    }
    (sums, mel, candidates)
}

avx2_dispatch! {
    /// Pass 2 over a range of frames: the sum of their chroma vectors.
    fn chroma_pass(
        y: &[f32],
        params: &FeatureParams,
        chroma_bank: &[Vec<f32>],
        range: std::ops::Range<usize>,
    ) -> Vec<f64> = chroma_pass_body;
}

#[inline(always)]
fn chroma_pass_body(
    y: &[f32],
    params: &FeatureParams,
    chroma_bank: &[Vec<f32>],
    range: std::ops::Range<usize>,
) -> Vec<f64> {
    let nb = params.n_fft / 2 + 1;
    let mut stft = Stft::new(params.n_fft, params.hop_length);
    let mut mags = vec![vec![0.0f32; nb]; 2];
    let mut power = vec![0.0f32; nb];
    let mut chroma = vec![0.0f64; 12];
    for start in range.clone().step_by(2) {
        let count = 2.min(range.end - start);
        batch_magnitudes(&mut stft, y, start, &mut mags[..count]);
        for mag in &mags[..count] {
            squares(mag, &mut power);
            chroma_frame(chroma_bank, &power, &mut chroma);
        }
    }
    chroma
}

/// Adds one frame's chroma (`feature.chroma_stft`: filter bank, then each frame scaled
/// to a maximum of 1) to `chroma`.
#[inline(always)]
fn chroma_frame(chroma_bank: &[Vec<f32>], power: &[f32], chroma: &mut [f64]) {
    let mut raw = [0.0f32; 12];
    for (r, w) in raw.iter_mut().zip(chroma_bank) {
        *r = dot(w, power);
    }
    let max = raw.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let norm = if max < f32::MIN_POSITIVE { 1.0 } else { max };
    for (c, v) in chroma.iter_mut().zip(&raw) {
        *c += f64::from(v / norm);
    }
}

fn spectral_figures(y: &[f32], sr: f64, params: &FeatureParams) -> SpectralFigures {
    let (n_fft, hop) = (params.n_fft, params.hop_length);
    let n_frames = centered_frames(y.len(), hop);
    let freqs = fft_frequencies(sr, n_fft);
    let n_mels = params.n_mels;
    let mel_bank = SparseBank::new(&mel_filterbank(sr, n_fft, n_mels, 0.0, sr / 2.0));

    // Pass 1: spectral shape, mel power and tuning candidates, frame by frame (frame
    // ranges in parallel, merged in order).
    let parts = par_ranges_grain(n_frames, BATCH, |range| {
        shape_pass(y, sr, params, &freqs, &mel_bank, range)
    });
    let mut sums = SpectralSums::default();
    let mut mel = Vec::with_capacity(n_frames * n_mels);
    let mut candidates = Vec::new();
    for (s, m, c) in parts {
        sums.centroid += s.centroid;
        sums.bandwidth += s.bandwidth;
        sums.rolloff += s.rolloff;
        sums.flatness += s.flatness;
        mel.extend(m);
        candidates.extend(c);
    }
    let nf = n_frames as f64;

    // MFCC: DCT is linear, so the mean of the MFCCs is the DCT of the mean dB spectrum.
    let mut rows: Vec<&mut [f32]> = mel.chunks_exact_mut(n_mels.max(1)).collect();
    power_to_db(&mut rows);
    let mut mean_db = vec![0.0f64; n_mels];
    for row in &rows {
        for (m, &v) in mean_db.iter_mut().zip(row.iter()) {
            *m += f64::from(v);
        }
    }
    mean_db.iter_mut().for_each(|m| *m /= nf);
    let mfcc = dct2_ortho(&mean_db, params.n_mfcc);

    let env = onset_envelope_from_db(&rows, Aggregate::Mean, n_fft, hop);
    drop(rows);
    drop(mel);
    let bpm = tempo(&env, sr, hop, &params.tempo);

    // Pass 2: chroma with the estimated tuning.
    let tuning = tuning_from_candidates(&candidates);
    drop(candidates);
    let chroma_bank = chroma_filterbank(sr, n_fft, tuning);
    // The power spectra are recomputed rather than kept from pass 1: two frames per
    // transform cost less than the page faults of a full-length spectrogram.
    let parts = par_ranges_grain(n_frames, BATCH, |range| {
        chroma_pass(y, params, &chroma_bank, range)
    });
    let mut chroma = vec![0.0f64; 12];
    for part in parts {
        for (c, v) in chroma.iter_mut().zip(part) {
            *c += v;
        }
    }
    chroma.iter_mut().for_each(|c| *c /= nf);

    SpectralFigures {
        centroid: sums.centroid / nf,
        bandwidth: sums.bandwidth / nf,
        rolloff: sums.rolloff / nf,
        flatness: sums.flatness / nf,
        mfcc,
        chroma,
        tempo: bpm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_signal(sr: f64, n: usize) -> Vec<f32> {
        let mut seed = 7u64;
        (0..n)
            .map(|i| {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let noise = ((seed >> 40) as f64 / (1u64 << 24) as f64 - 0.5) * 0.01;
                let t = i as f64 / sr;
                // A chord, a silent gap (exact zeros) and a loud burst after it.
                let tone = 0.3 * (2.0 * std::f64::consts::PI * 261.63 * t).sin()
                    + 0.2 * (2.0 * std::f64::consts::PI * 392.0 * t).sin();
                if (0.8..1.1).contains(&t) {
                    0.0
                } else if (1.1..1.15).contains(&t) {
                    (8.0 * tone) as f32
                } else {
                    (tone + noise) as f32
                }
            })
            .collect()
    }

    /// Frame-by-frame figures with one real FFT per frame and plain sums, as a check on
    /// the paired transforms, batching and partial sums of the fast path.
    fn reference_shape(y: &[f32], sr: f64, p: &FeatureParams) -> (f64, f64, f64, f64) {
        let (n_fft, hop) = (p.n_fft, p.hop_length);
        let fft = realfft::RealFftPlanner::<f64>::new().plan_fft_forward(n_fft);
        let window = crate::audio::spectral::hann_periodic(n_fft);
        let freqs = fft_frequencies(sr, n_fft);
        let frames = centered_frames(y.len(), hop);
        let mut sums = [0.0f64; 4];
        for t in 0..frames {
            let mut input = fft.make_input_vec();
            for (i, v) in input.iter_mut().enumerate() {
                let j = (t * hop + i) as isize - (n_fft / 2) as isize;
                if j >= 0 && (j as usize) < y.len() {
                    *v = f64::from(y[j as usize] * window[i]);
                }
            }
            let mut spec = fft.make_output_vec();
            fft.process(&mut input, &mut spec).unwrap();
            let mag: Vec<f32> = spec.iter().map(|c| c.norm() as f32).collect();
            let total: f64 = mag.iter().map(|&m| f64::from(m)).sum::<f64>().max(1e-300);
            let centroid = mag
                .iter()
                .zip(&freqs)
                .map(|(&m, f)| f64::from(m) * f)
                .sum::<f64>()
                / total;
            let bandwidth = (mag
                .iter()
                .zip(&freqs)
                .map(|(&m, f)| f64::from(m) * (f - centroid).powi(2))
                .sum::<f64>()
                / total)
                .sqrt();
            let total32: f32 = mag.iter().sum();
            let mut run = 0.0f32;
            let k = mag
                .iter()
                .position(|&m| {
                    run += m;
                    run >= (0.85 * f64::from(total32)) as f32
                })
                .unwrap_or(0);
            let power: Vec<f64> = mag.iter().map(|&m| f64::from((m * m).max(1e-10))).collect();
            let n = power.len() as f64;
            let flatness = (power.iter().map(|v| v.ln()).sum::<f64>() / n).exp()
                / (power.iter().sum::<f64>() / n);
            for (s, v) in sums
                .iter_mut()
                .zip([centroid, bandwidth, freqs[k], flatness])
            {
                *s += v;
            }
        }
        let nf = frames as f64;
        (sums[0] / nf, sums[1] / nf, sums[2] / nf, sums[3] / nf)
    }

    #[test]
    fn spectral_shape_matches_a_plain_per_frame_computation() {
        let sr = 22_050.0;
        let y = test_signal(sr, 40_000);
        let p = FeatureParams::default();
        let fast = spectral_figures(&y, sr, &p);
        let (centroid, bandwidth, rolloff, flatness) = reference_shape(&y, sr, &p);
        let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
        assert!(
            rel(fast.centroid, centroid) < 1e-6,
            "{} {centroid}",
            fast.centroid
        );
        assert!(
            rel(fast.bandwidth, bandwidth) < 1e-6,
            "{} {bandwidth}",
            fast.bandwidth
        );
        assert!(
            rel(fast.rolloff, rolloff) < 1e-4,
            "{} {rolloff}",
            fast.rolloff
        );
        assert!(
            rel(fast.flatness, flatness) < 1e-4,
            "{} {flatness}",
            fast.flatness
        );
        // C and G dominate the chroma.
        assert!(
            fast.chroma[0] > 0.5 && fast.chroma[7] > 0.5,
            "{:?}",
            fast.chroma
        );
    }

    #[test]
    fn rms_and_zero_crossings_match_a_plain_per_frame_computation() {
        let sr = 22_050.0;
        let y = test_signal(sr, 30_001);
        for (frame, hop) in [(2048, 512), (2048, 500)] {
            let frames = centered_frames(y.len(), hop);
            let (mut rms, mut zcr) = (0.0, 0.0);
            for t in 0..frames {
                // Zero padding for rms, edge padding for the crossings (librosa's modes).
                let at = |i: usize, edge: bool| -> f32 {
                    let j = (t * hop + i) as isize - (frame / 2) as isize;
                    if edge {
                        y[j.clamp(0, y.len() as isize - 1) as usize]
                    } else if j >= 0 && (j as usize) < y.len() {
                        y[j as usize]
                    } else {
                        0.0
                    }
                };
                let e: f64 = (0..frame)
                    .map(|i| f64::from(at(i, false) * at(i, false)))
                    .sum();
                rms += (e / frame as f64).sqrt();
                let neg = |s: f32| (if s.abs() <= 1e-10 { 0.0 } else { s }).is_sign_negative();
                let crossings = (1..frame)
                    .filter(|&i| neg(at(i, true)) != neg(at(i - 1, true)))
                    .count();
                zcr += crossings as f64 / frame as f64;
            }
            let (rms, zcr) = (rms / frames as f64, zcr / frames as f64);
            assert!(
                (mean_rms(&y, frame, hop) - rms).abs() < 1e-12 * rms,
                "{frame}/{hop}"
            );
            assert!(
                (mean_zero_crossing_rate(&y, frame, hop) - zcr).abs() < 1e-12,
                "{frame}/{hop}"
            );
        }
    }
}
