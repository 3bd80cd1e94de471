//! `analysis/patterns`: onsets, tempo and beats (librosa semantics, see [`super::rhythm`]),
//! rhythmic regularity, and structure from a self-similarity novelty curve.
//!
//! - **Rhythmic regularity** = `max(0, 1 − CV)` of the inter-beat intervals (inter-onset
//!   intervals when fewer than 3 beats), CV = standard deviation / mean. 1 means perfectly
//!   periodic; 0 means the spread of intervals is as large as their mean. `null` when
//!   there are fewer than 3 events.
//! - **Structure**: MFCCs (13, from the same dB mel spectrogram) averaged over blocks of
//!   `block_seconds`, each block vector standardised; cosine self-similarity near the
//!   diagonal; Foote's novelty = correlation with a Gaussian-tapered checkerboard kernel
//!   of half-width `kernel_seconds`; boundaries are novelty peaks that are the maximum
//!   within ±`min_segment_seconds` and exceed `novelty_threshold` (novelty is scaled to
//!   [0, 1]).

use serde::Serialize;

use super::buffer::AudioBuffer;
use super::error::{AudioError, Result};
use super::rhythm::{
    Aggregate, PeakPick, TempoParams, beat_track, onset_detect, onset_envelope_from_db, tempo,
};
use super::spectral::{dct2_ortho, mel_power_frames, power_to_db};

/// Tunable parameters of the pattern analysis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatternParams {
    pub hop_length: usize,
    /// Onset peak-picking threshold above the local mean (normalised envelope units).
    pub onset_delta: f64,
    /// Minimum gap between onsets in seconds.
    pub onset_wait_seconds: f64,
    /// Tempo prior centre.
    pub start_bpm: f64,
    /// Beat tracker tightness (higher = steadier beats).
    pub tightness: f64,
    pub block_seconds: f64,
    pub kernel_seconds: f64,
    pub min_segment_seconds: f64,
    pub novelty_threshold: f64,
}

impl Default for PatternParams {
    fn default() -> Self {
        Self {
            hop_length: 512,
            onset_delta: 0.07,
            onset_wait_seconds: 0.03,
            start_bpm: 120.0,
            tightness: 100.0,
            block_seconds: 0.5,
            kernel_seconds: 4.0,
            min_segment_seconds: 2.0,
            novelty_threshold: 0.1,
        }
    }
}

/// One detected onset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Onset {
    /// Seconds.
    pub time: f64,
    /// Onset strength (librosa `onset_strength` value at the onset frame).
    pub strength: f64,
}

/// A structural segment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
}

/// The result object of `analysis/patterns`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Patterns {
    pub onsets: Vec<Onset>,
    pub tempo: f64,
    pub beats: Vec<f64>,
    pub rhythmic_regularity: Option<f64>,
    /// Interior segment boundaries in seconds.
    pub boundaries: Vec<f64>,
    pub segments: Vec<Segment>,
}

/// `max(0, 1 − std/mean)` of the intervals between successive event times.
pub fn regularity(times: &[f64]) -> Option<f64> {
    if times.len() < 3 {
        return None;
    }
    let iv: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let mean = iv.iter().sum::<f64>() / iv.len() as f64;
    if mean <= 0.0 {
        return None;
    }
    let sd = (iv.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / iv.len() as f64).sqrt();
    Some((1.0 - sd / mean).max(0.0))
}

/// Foote novelty of standardised block features; returns one value per block in [0, 1].
pub fn novelty_curve(blocks: &[Vec<f64>], half: usize) -> Vec<f64> {
    let n = blocks.len();
    let mut nov = vec![0.0f64; n];
    if n < 2 || half == 0 {
        return nov;
    }
    let unit: Vec<Vec<f64>> = blocks
        .iter()
        .map(|b| {
            let norm = b.iter().map(|v| v * v).sum::<f64>().sqrt();
            b.iter()
                .map(|v| if norm > 0.0 { v / norm } else { 0.0 })
                .collect()
        })
        .collect();
    let sim =
        |i: usize, j: usize| -> f64 { unit[i].iter().zip(&unit[j]).map(|(a, b)| a * b).sum() };
    let sigma = half as f64 / 2.0;
    for (i, nv) in nov.iter_mut().enumerate() {
        let mut acc = 0.0;
        for a in 0..2 * half {
            for b in 0..2 * half {
                let (ia, ib) = (
                    i as isize + a as isize - half as isize,
                    i as isize + b as isize - half as isize,
                );
                if ia < 0 || ib < 0 || ia as usize >= n || ib as usize >= n {
                    continue;
                }
                // Checkerboard: +1 within past/past and future/future, −1 across.
                let sign = if (a < half) == (b < half) { 1.0 } else { -1.0 };
                let (da, db) = (a as f64 - half as f64 + 0.5, b as f64 - half as f64 + 0.5);
                let taper = (-(da * da + db * db) / (2.0 * sigma * sigma)).exp();
                acc += sign * taper * sim(ia as usize, ib as usize);
            }
        }
        *nv = acc.max(0.0);
    }
    let max = nov.iter().copied().fold(0.0, f64::max);
    if max > 0.0 {
        nov.iter_mut().for_each(|v| *v /= max);
    }
    nov
}

/// Analyse rhythm and structure of a buffer (mono downmix).
pub fn analyze_patterns(audio: &AudioBuffer, p: &PatternParams) -> Result<Patterns> {
    super::cancel::check()?;
    if audio.is_empty() {
        return Err(AudioError::Invalid("cannot analyse empty audio".into()));
    }
    let valid = p.hop_length > 0 && p.block_seconds > 0.0 && p.kernel_seconds > 0.0;
    if !valid {
        return Err(AudioError::Invalid(
            "hop, block and kernel lengths must be positive".into(),
        ));
    }
    let y = audio.to_mono();
    let sr = f64::from(audio.sample_rate());
    let hop = p.hop_length;
    let n_fft = 2048;
    let mut db = mel_power_frames(&y, sr, n_fft, hop, 128);
    power_to_db(&mut db);
    let frame_time = |f: usize| f as f64 * hop as f64 / sr;

    // Onsets (mean envelope) with librosa's peak picking, tunable delta and wait.
    let env = onset_envelope_from_db(&db, Aggregate::Mean, n_fft, hop);
    let mut pick = PeakPick::librosa_defaults(sr, hop);
    pick.delta = p.onset_delta;
    pick.wait = (p.onset_wait_seconds * sr / hop as f64).floor() as usize;
    let onsets: Vec<Onset> = onset_detect(&env, &pick)
        .into_iter()
        .map(|f| Onset {
            time: frame_time(f),
            strength: env[f],
        })
        .collect();

    // Tempo and beats (median envelope, as beat_track).
    let env_med = onset_envelope_from_db(&db, Aggregate::Median, n_fft, hop);
    let tp = TempoParams {
        start_bpm: p.start_bpm,
        ..TempoParams::default()
    };
    let (bpm, beats) = if env_med.iter().any(|&v| v != 0.0) {
        let bpm = tempo(&env_med, sr, hop, &tp);
        (bpm, beat_track(&env_med, sr, hop, bpm, p.tightness, true))
    } else {
        (0.0, Vec::new())
    };
    let beat_times: Vec<f64> = beats.into_iter().map(frame_time).collect();
    let onset_times: Vec<f64> = onsets.iter().map(|o| o.time).collect();
    let rhythmic_regularity = if beat_times.len() >= 3 {
        regularity(&beat_times)
    } else {
        regularity(&onset_times)
    };

    // Structure.
    let per_block = ((p.block_seconds * sr / hop as f64).round() as usize).max(1);
    let mut blocks: Vec<Vec<f64>> = db
        .chunks(per_block)
        .map(|rows| {
            let mut mean = vec![0.0f64; rows[0].len()];
            for r in rows {
                for (m, &v) in mean.iter_mut().zip(r) {
                    *m += f64::from(v) / rows.len() as f64;
                }
            }
            dct2_ortho(&mean, 13)
        })
        .collect();
    // Standardise each coefficient over time.
    for k in 0..13 {
        let n = blocks.len() as f64;
        let mean = blocks.iter().map(|b| b[k]).sum::<f64>() / n;
        let sd = (blocks.iter().map(|b| (b[k] - mean).powi(2)).sum::<f64>() / n).sqrt();
        for b in blocks.iter_mut() {
            b[k] = if sd > 1e-9 { (b[k] - mean) / sd } else { 0.0 };
        }
    }
    let block_s = per_block as f64 * hop as f64 / sr;
    let half = ((p.kernel_seconds / block_s).round() as usize).max(1);
    let nov = novelty_curve(&blocks, half);
    let min_gap = ((p.min_segment_seconds / block_s).round() as usize).max(1);
    let duration = audio.duration_secs();
    let mut boundaries = Vec::new();
    for i in 1..nov.len().saturating_sub(1) {
        let lo = i.saturating_sub(min_gap);
        let hi = (i + min_gap + 1).min(nov.len());
        let is_max = nov[lo..hi].iter().all(|&v| v <= nov[i]);
        let t = i as f64 * block_s;
        if is_max
            && nov[i] > p.novelty_threshold
            && t >= p.min_segment_seconds
            && duration - t >= p.min_segment_seconds
        {
            boundaries.push(t);
        }
    }
    let mut edges = vec![0.0];
    edges.extend(&boundaries);
    edges.push(duration);
    let segments = edges
        .windows(2)
        .map(|w| Segment {
            start: w[0],
            end: w[1],
        })
        .collect();
    Ok(Patterns {
        onsets,
        tempo: bpm,
        beats: beat_times,
        rhythmic_regularity,
        boundaries,
        segments,
    })
}
