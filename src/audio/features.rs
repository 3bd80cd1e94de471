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
    SparseBank, Stft, apply_bank, centered_frames, chroma_filterbank, dct2_ortho, fft_frequencies,
    hz_to_octs, median, mel_filterbank, par_ranges, power_to_db,
};

/// Largest power spectrogram (in f32 values) kept in memory between the two passes.
const KEEP_SPECTROGRAM_FLOATS: usize = 64 << 20;

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

/// Mean of `feature.rms`.
pub fn mean_rms(y: &[f32], frame: usize, hop: usize) -> f64 {
    let half = frame / 2;
    let frames = centered_frames(y.len(), hop);
    let mut sum = 0.0;
    if frame.is_multiple_of(hop) && half.is_multiple_of(hop) {
        // Frames are whole runs of hop-sized blocks: sum each block's energy once.
        let blocks: Vec<f64> = y
            .chunks(hop)
            .map(|c| c.iter().map(|&v| f64::from(v * v)).sum())
            .collect();
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
        let e: f64 = y[lo.min(hi)..hi].iter().map(|&v| f64::from(v * v)).sum();
        sum += (e / frame as f64).sqrt();
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
    // prefix[j] = crossings between samples (i-1, i) for 1 <= i <= j. Edge padding
    // repeats the end samples, so padded regions never cross.
    let mut prefix = vec![0u32; y.len()];
    for j in 1..y.len() {
        prefix[j] = prefix[j - 1] + u32::from(neg(y[j]) != neg(y[j - 1]));
    }
    let half = frame / 2;
    let frames = centered_frames(y.len(), hop);
    let last = y.len() as isize - 1;
    let mut sum = 0.0;
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
        let spectral = spectral_figures(y, sr, params, KEEP_SPECTROGRAM_FLOATS);
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

fn spectral_figures(
    y: &[f32],
    sr: f64,
    params: &FeatureParams,
    keep_limit: usize,
) -> SpectralFigures {
    let (n_fft, hop) = (params.n_fft, params.hop_length);
    let n_frames = centered_frames(y.len(), hop);
    let freqs = fft_frequencies(sr, n_fft);
    let mel_bank = SparseBank::new(&mel_filterbank(sr, n_fft, params.n_mels, 0.0, sr / 2.0));

    // Pass 1: spectral shape, mel power and tuning candidates, frame by frame (frame
    // ranges in parallel, merged in order).
    // Keep the power spectrogram for the chroma pass when it fits in 256 MB (about 20
    // minutes at 44.1 kHz); longer inputs recompute the STFT instead.
    let keep = n_frames * (n_fft / 2 + 1) <= keep_limit;
    let parts = par_ranges(n_frames, |range| {
        let mut stft = Stft::new(n_fft, hop);
        let nb = stft.n_bins();
        let mut kept = Vec::with_capacity(if keep { range.len() * nb } else { 0 });
        let mut mag = vec![0.0f32; nb];
        let mut power = vec![0.0f32; nb];
        let mut sums = SpectralSums::default();
        let mut mel = Vec::with_capacity(range.len());
        let mut candidates = Vec::new();
        for t in range {
            stft.magnitude(y, t, &mut mag);
            let total: f64 = mag.iter().map(|&m| f64::from(m)).sum();
            let norm = if total < f64::from(f32::MIN_POSITIVE) {
                1.0
            } else {
                total
            };
            let centroid: f64 = mag
                .iter()
                .zip(&freqs)
                .map(|(&m, f)| f * f64::from(m))
                .sum::<f64>()
                / norm;
            let bandwidth = mag
                .iter()
                .zip(&freqs)
                .map(|(&m, f)| f64::from(m) * (f - centroid).powi(2))
                .sum::<f64>();
            // One division per frame instead of one per bin.
            let bandwidth = (bandwidth / norm).sqrt();
            // Rolloff: float32 running sum as numpy's cumsum does it.
            let total32: f32 = mag.iter().sum();
            let threshold = (params.rolloff_percent * f64::from(total32)) as f32;
            let mut run = 0.0f32;
            let mut rolloff = 0.0;
            for (k, &m) in mag.iter().enumerate() {
                run += m;
                if run >= threshold {
                    rolloff = freqs[k];
                    break;
                }
            }
            let mut log_sum = 0.0;
            let mut lin_sum = 0.0;
            for (p, &m) in power.iter_mut().zip(&mag) {
                *p = m * m;
            }
            // Sum of logs as the log of products of 16 values (each in [1e-10, ~1e12],
            // so a product stays far inside f64 range): one ln per 16 bins.
            for group in power.chunks(16) {
                let mut prod = 1.0f64;
                for &p in group {
                    let v = f64::from(p.max(1e-10));
                    prod *= v;
                    lin_sum += v;
                }
                log_sum += if prod.is_normal() {
                    prod.ln()
                } else {
                    // Out of range (samples far above full scale): take logs one by one.
                    group.iter().map(|&p| f64::from(p.max(1e-10)).ln()).sum()
                };
            }
            sums.centroid += centroid;
            sums.bandwidth += bandwidth;
            sums.rolloff += rolloff;
            sums.flatness += (log_sum / nb as f64).exp() / (lin_sum / nb as f64);
            mel.push(mel_bank.apply(&power));
            piptrack_frame(&power, sr, n_fft, &mut candidates);
            if keep {
                kept.extend_from_slice(&power);
            }
        }
        (sums, mel, candidates, kept)
    });
    let mut sums = SpectralSums::default();
    let mut mel = Vec::with_capacity(n_frames);
    let mut candidates = Vec::new();
    let mut kept_parts = Vec::new();
    for (s, m, c, k) in parts {
        kept_parts.push(k);
        sums.centroid += s.centroid;
        sums.bandwidth += s.bandwidth;
        sums.rolloff += s.rolloff;
        sums.flatness += s.flatness;
        mel.extend(m);
        candidates.extend(c);
    }
    let nf = n_frames as f64;

    // MFCC: DCT is linear, so the mean of the MFCCs is the DCT of the mean dB spectrum.
    power_to_db(&mut mel);
    let mut mean_db = vec![0.0f64; params.n_mels];
    for row in &mel {
        for (m, &v) in mean_db.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    mean_db.iter_mut().for_each(|m| *m /= nf);
    let mfcc = dct2_ortho(&mean_db, params.n_mfcc);

    let env = onset_envelope_from_db(&mel, Aggregate::Mean, n_fft, hop);
    drop(mel);
    let bpm = tempo(&env, sr, hop, &params.tempo);

    // Pass 2: chroma with the estimated tuning.
    let tuning = tuning_from_candidates(&candidates);
    drop(candidates);
    let chroma_bank = chroma_filterbank(sr, n_fft, tuning);
    let nb = n_fft / 2 + 1;
    let add_chroma = |power: &[f32], chroma: &mut [f64]| {
        let raw = apply_bank(&chroma_bank, power);
        let max = raw.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let norm = if max < f32::MIN_POSITIVE { 1.0 } else { max };
        for (c, v) in chroma.iter_mut().zip(&raw) {
            *c += f64::from(v / norm);
        }
    };
    let parts: Vec<Vec<f64>> = if keep {
        // Same split as pass 1, so part i holds the spectra of range i.
        par_ranges(kept_parts.len(), |range| {
            let mut chroma = vec![0.0f64; 12];
            for part in &kept_parts[range] {
                for power in part.chunks_exact(nb) {
                    add_chroma(power, &mut chroma);
                }
            }
            chroma
        })
    } else {
        par_ranges(n_frames, |range| {
            let mut stft = Stft::new(n_fft, hop);
            let mut mag = vec![0.0f32; nb];
            let mut power = vec![0.0f32; nb];
            let mut chroma = vec![0.0f64; 12];
            for t in range {
                stft.magnitude(y, t, &mut mag);
                for (p, &m) in power.iter_mut().zip(&mag) {
                    *p = m * m;
                }
                add_chroma(&power, &mut chroma);
            }
            chroma
        })
    };
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

    #[test]
    fn chroma_is_the_same_with_and_without_the_kept_spectrogram() {
        let sr = 22050.0;
        let y: Vec<f32> = (0..40000)
            .map(|i| {
                let t = i as f64 / sr;
                (0.3 * (2.0 * std::f64::consts::PI * 261.63 * t).sin()
                    + 0.2 * (2.0 * std::f64::consts::PI * 392.0 * t).sin()) as f32
            })
            .collect();
        let p = FeatureParams::default();
        let kept = spectral_figures(&y, sr, &p, usize::MAX);
        let recomputed = spectral_figures(&y, sr, &p, 0);
        assert_eq!(kept.chroma, recomputed.chroma);
        // C and G dominate.
        assert!(
            kept.chroma[0] > 0.5 && kept.chroma[7] > 0.5,
            "{:?}",
            kept.chroma
        );
    }
}
