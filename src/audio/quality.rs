//! `analysis/quality`: how usable a clip is on its own, with no reference to compare with —
//! the score a generate → score → regenerate loop gates on.
//!
//! Each aspect scores in [0, 1] (1 = nothing wrong on that count):
//!
//! | aspect     | measure                                                              | score | area |
//! |------------|----------------------------------------------------------------------|-------|------|
//! | `level`    | L = RMS of the mono downmix in dBFS; a = share of frames (2048/512, centred) whose RMS is above −60 dBFS | min(clamp((L + 60) / 20), clamp(a / 0.5)) | loudness |
//! | `clipping` | c = share of samples (all channels) beyond full scale (\|x\| > 1) or in a flat top: a run of ≥ 3 consecutive samples at \|x\| ≥ 0.999 | exp(−c / 0.001) | loudness |
//! | `loudness` | Δ = integrated loudness (BS.1770, LUFS) − target; the RMS dBFS stands in when the loudness is `null` (under 0.4 s or silent) | exp(−max(0, \|Δ\| − 3) / 10) | loudness |
//! | `dcOffset` | d = largest \|mean\| of a channel                                     | exp(−d / 0.02) | noise |
//! | `noise`    | F = mean spectral flatness (power spectrum, floor 1e-10) over the active frames: white noise is about 0.56, tones and speech far lower | clamp((0.45 − F) / 0.3) | noise |
//!
//! `qualityScore` = Π sᵢ^(wᵢ / Σw), the weighted geometric mean with weights level 0.25,
//! clipping 0.2, loudness 0.2, noise 0.2, dcOffset 0.15: one failing aspect fails the
//! clip, where an arithmetic mean would let the others carry it. When no frame is active,
//! `noise` is not judged (weight 0, score 1): the level aspect already fails the clip.
//! `improvementAreas` are the areas (in the vocabulary of `compare` and `generate`'s
//! `focusAreas`) of the aspects scoring below the threshold, worst first, each once.

use std::collections::BTreeMap;

use serde::Serialize;

use super::buffer::AudioBuffer;
use super::error::{AudioError, Result};
use super::loudness::integrated_loudness;
use super::spectral::{Stft, centered_frames};

const FRAME: usize = 2048;
const HOP: usize = 512;
/// Frames quieter than this (RMS, dBFS) are silence: they count against the level and are
/// left out of the flatness.
const ACTIVE_DBFS: f64 = -60.0;
/// Magnitude at which a sample sits at full scale.
const FULL_SCALE: f32 = 0.999;
/// Consecutive full-scale samples that make a flat top.
const FLAT_TOP_RUN: usize = 3;

/// Settings of the quality measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityParams {
    /// Integrated loudness the `loudness` aspect aims at, LUFS.
    pub target_lufs: f64,
    /// Aspects scoring below this become improvement areas.
    pub threshold: f64,
}

impl Default for QualityParams {
    fn default() -> Self {
        Self {
            target_lufs: -23.0,
            threshold: 0.7,
        }
    }
}

/// One aspect's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QualityAspect {
    pub score: f64,
    pub weight: f64,
    /// The improvement area this aspect reports to.
    pub area: &'static str,
    pub detail: String,
}

/// The figures the aspects are scored from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QualityMeasurements {
    pub rms_dbfs: f64,
    pub active_share: f64,
    pub clipped_share: f64,
    pub integrated_lufs: Option<f64>,
    pub dc_offset: f64,
    /// `null` when no frame is active.
    pub spectral_flatness: Option<f64>,
}

/// The result object of `analysis/quality` (without the pass verdict, which the operation
/// adds).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Quality {
    pub quality_score: f64,
    pub aspects: BTreeMap<String, QualityAspect>,
    pub improvement_areas: Vec<String>,
    pub measurements: QualityMeasurements,
}

fn dbfs(x: f64) -> f64 {
    20.0 * x.max(1e-10).log10()
}

/// Share of samples that are clipped: beyond full scale, or in a flat top at full scale.
pub fn clipped_share(audio: &AudioBuffer) -> f64 {
    let total = audio.frames() * audio.num_channels();
    if total == 0 {
        return 0.0;
    }
    let mut clipped = 0usize;
    for channel in audio.channels() {
        let mut run = 0usize;
        let mut run_over = 0usize;
        // A run ends at the first sample below full scale, or at the channel's end.
        for &s in channel.iter().chain(std::iter::once(&0.0)) {
            let a = s.abs();
            if a >= FULL_SCALE {
                run += 1;
                run_over += usize::from(a > 1.0);
            } else {
                clipped += if run >= FLAT_TOP_RUN { run } else { run_over };
                run = 0;
                run_over = 0;
            }
        }
    }
    clipped as f64 / total as f64
}

/// Largest absolute mean of a channel.
pub fn dc_offset(audio: &AudioBuffer) -> f64 {
    audio
        .channels()
        .iter()
        .filter(|c| !c.is_empty())
        .map(|c| (c.iter().map(|&v| f64::from(v)).sum::<f64>() / c.len() as f64).abs())
        .fold(0.0, f64::max)
}

/// RMS of each centred frame (zero padding contributes nothing, as librosa frames it).
fn frame_rms(y: &[f32], t: usize) -> f64 {
    let start = (t * HOP) as isize - (FRAME / 2) as isize;
    let lo = start.max(0) as usize;
    let hi = ((start + FRAME as isize).max(0) as usize).min(y.len());
    let energy: f64 = y[lo.min(hi)..hi].iter().map(|&v| f64::from(v * v)).sum();
    (energy / FRAME as f64).sqrt()
}

/// Share of active frames and the mean spectral flatness over them (`None` when none is).
fn activity_and_flatness(y: &[f32]) -> (f64, Option<f64>) {
    let frames = centered_frames(y.len(), HOP);
    let mut stft = Stft::new(FRAME, HOP);
    let mut mag = vec![0.0f32; stft.n_bins()];
    let (mut active, mut flatness) = (0usize, 0.0f64);
    for t in 0..frames {
        if dbfs(frame_rms(y, t)) <= ACTIVE_DBFS {
            continue;
        }
        active += 1;
        stft.magnitude(y, t, &mut mag);
        let (mut log_sum, mut lin_sum) = (0.0f64, 0.0f64);
        for &m in &mag {
            let p = f64::from(m * m).max(1e-10);
            log_sum += p.ln();
            lin_sum += p;
        }
        let n = mag.len() as f64;
        flatness += (log_sum / n).exp() / (lin_sum / n);
    }
    let share = active as f64 / frames as f64;
    (share, (active > 0).then(|| flatness / active as f64))
}

/// Scores a clip. Fails only on empty audio.
pub fn assess_quality(audio: &AudioBuffer, params: &QualityParams) -> Result<Quality> {
    super::cancel::check()?;
    if audio.is_empty() {
        return Err(AudioError::Invalid("cannot assess empty audio".into()));
    }
    let y = audio.to_mono();
    let rms = (y.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / y.len() as f64).sqrt();
    let rms_dbfs = dbfs(rms);
    let (active_share, flatness) = activity_and_flatness(&y);
    super::cancel::check()?;
    let clipped = clipped_share(audio);
    let lufs = integrated_loudness(audio);
    let dc = dc_offset(audio);

    let mut aspects = BTreeMap::new();
    let mut put = |name: &str, score: f64, weight: f64, area: &'static str, detail: String| {
        let score = if score.is_finite() {
            score.clamp(0.0, 1.0)
        } else {
            0.0
        };
        aspects.insert(
            name.to_string(),
            QualityAspect {
                score,
                weight,
                area,
                detail,
            },
        );
    };

    let level = ((rms_dbfs + 60.0) / 20.0)
        .clamp(0.0, 1.0)
        .min((active_share / 0.5).clamp(0.0, 1.0));
    put(
        "level",
        level,
        0.25,
        "loudness",
        format!(
            "RMS {rms_dbfs:.1} dBFS, {:.0}% of frames above {ACTIVE_DBFS} dBFS",
            100.0 * active_share
        ),
    );
    put(
        "clipping",
        (-clipped / 0.001).exp(),
        0.2,
        "loudness",
        format!("{:.3}% of samples clipped", 100.0 * clipped),
    );
    let (measured, unit) = match lufs {
        Some(l) => (l, "LUFS"),
        None => (rms_dbfs, "dBFS RMS"),
    };
    let delta = measured - params.target_lufs;
    // Within 3 LU of the target is on target: a level difference that small is a gain
    // setting, not a flaw.
    put(
        "loudness",
        (-(delta.abs() - 3.0).max(0.0) / 10.0).exp(),
        0.2,
        "loudness",
        format!(
            "{measured:.1} {unit}, {:.1} LU {} the target of {:.1} LUFS",
            delta.abs(),
            if delta < 0.0 { "below" } else { "above" },
            params.target_lufs
        ),
    );
    put(
        "dcOffset",
        (-dc / 0.02).exp(),
        0.15,
        "noise",
        format!("DC offset {dc:.4} ({:.1} dBFS)", dbfs(dc)),
    );
    match flatness {
        Some(f) => put(
            "noise",
            (0.45 - f) / 0.3,
            0.2,
            "noise",
            format!("spectral flatness {f:.3} (white noise ≈ 0.56)"),
        ),
        None => put(
            "noise",
            1.0,
            0.0,
            "noise",
            "not judged: no frame is above the silence level".into(),
        ),
    }

    let total_weight: f64 = aspects.values().map(|a| a.weight).sum();
    let quality_score = if total_weight > 0.0 {
        aspects
            .values()
            .map(|a| a.score.powf(a.weight / total_weight))
            .product::<f64>()
            .clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut failing: Vec<&QualityAspect> = aspects
        .values()
        .filter(|a| a.weight > 0.0 && a.score < params.threshold)
        .collect();
    failing.sort_by(|a, b| a.score.total_cmp(&b.score));
    let mut improvement_areas: Vec<String> = Vec::new();
    for aspect in failing {
        if !improvement_areas.iter().any(|a| a == aspect.area) {
            improvement_areas.push(aspect.area.to_string());
        }
    }
    Ok(Quality {
        quality_score,
        aspects,
        improvement_areas,
        measurements: QualityMeasurements {
            rms_dbfs,
            active_share,
            clipped_share: clipped,
            integrated_lufs: lufs,
            dc_offset: dc,
            spectral_flatness: flatness,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 44_100;

    fn tone(amplitude: f32, seconds: f64) -> Vec<f32> {
        let n = (f64::from(RATE) * seconds) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(RATE);
                amplitude * (2.0 * std::f64::consts::PI * 997.0 * t).sin() as f32
            })
            .collect()
    }

    /// Uniform white noise from a fixed xorshift sequence.
    fn white_noise(amplitude: f32, seconds: f64) -> Vec<f32> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        (0..(f64::from(RATE) * seconds) as usize)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                amplitude * ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)
            })
            .collect()
    }

    fn assess(samples: Vec<f32>) -> Quality {
        let audio = AudioBuffer::mono(RATE, samples).expect("buffer");
        assess_quality(&audio, &QualityParams::default()).expect("assessed")
    }

    fn score(q: &Quality, aspect: &str) -> f64 {
        q.aspects[aspect].score
    }

    #[test]
    fn a_clean_tone_at_the_target_loudness_scores_high() {
        // A 997 Hz sine of amplitude 0.1 measures about −23 LUFS.
        let q = assess(tone(0.1, 2.0));
        assert!(q.quality_score > 0.95, "{q:#?}");
        assert!(q.improvement_areas.is_empty(), "{q:#?}");
        for aspect in ["level", "clipping", "loudness", "dcOffset", "noise"] {
            assert!(score(&q, aspect) > 0.9, "{aspect}: {q:#?}");
        }
    }

    #[test]
    fn silence_fails_the_level_and_the_whole_clip() {
        let q = assess(vec![0.0; RATE as usize]);
        assert_eq!(score(&q, "level"), 0.0);
        assert_eq!(q.quality_score, 0.0);
        assert_eq!(q.improvement_areas, ["loudness"]);
        assert_eq!(q.aspects["noise"].weight, 0.0, "flatness is not judged");
    }

    #[test]
    fn a_mostly_silent_clip_fails_the_level() {
        let mut samples = tone(0.1, 0.2);
        samples.resize(RATE as usize * 2, 0.0);
        let q = assess(samples);
        assert!(score(&q, "level") < 0.3, "{q:#?}");
    }

    #[test]
    fn a_clipped_tone_fails_the_clipping_aspect() {
        let clipped: Vec<f32> = tone(4.0, 2.0)
            .into_iter()
            .map(|s| s.clamp(-1.0, 1.0))
            .collect();
        let q = assess(clipped);
        assert!(q.measurements.clipped_share > 0.5, "{q:#?}");
        assert!(score(&q, "clipping") < 0.01, "{q:#?}");
        assert!(q.quality_score < 0.3, "{q:#?}");
        assert_eq!(q.improvement_areas[0], "loudness");
    }

    #[test]
    fn samples_beyond_full_scale_count_as_clipped_and_a_full_scale_peak_does_not() {
        // A float signal over full scale clips when it is written as PCM.
        let over: Vec<f32> = tone(1.2, 1.0);
        assert!(clipped_share(&AudioBuffer::mono(RATE, over).expect("buffer")) > 0.1);
        // A 997 Hz sine peaking exactly at full scale has no flat tops.
        let peak = tone(1.0, 1.0);
        assert_eq!(
            clipped_share(&AudioBuffer::mono(RATE, peak).expect("buffer")),
            0.0
        );
    }

    #[test]
    fn white_noise_fails_the_noise_aspect() {
        // Uniform noise of amplitude 0.12 is about −20 dBFS RMS, near the target loudness.
        let q = assess(white_noise(0.12, 2.0));
        let flatness = q.measurements.spectral_flatness.expect("active frames");
        assert!(flatness > 0.5, "{q:#?}");
        assert_eq!(score(&q, "noise"), 0.0, "{q:#?}");
        assert!(score(&q, "loudness") > 0.6, "{q:#?}");
        assert_eq!(q.improvement_areas, ["noise"]);
        assert_eq!(q.quality_score, 0.0);
    }

    #[test]
    fn a_dc_offset_fails_the_dc_aspect() {
        let shifted: Vec<f32> = tone(0.1, 2.0).into_iter().map(|s| s + 0.1).collect();
        let q = assess(shifted);
        assert!((q.measurements.dc_offset - 0.1).abs() < 1e-3, "{q:#?}");
        assert!(score(&q, "dcOffset") < 0.01, "{q:#?}");
        assert!(score(&q, "clipping") > 0.99, "{q:#?}");
        assert!(q.improvement_areas.contains(&"noise".to_string()), "{q:#?}");
    }

    #[test]
    fn loudness_far_from_the_target_lowers_the_loudness_aspect() {
        let quiet = assess(tone(0.003, 2.0));
        let on_target = assess(tone(0.1, 2.0));
        // About −53 LUFS: 30 LU below the target.
        assert!(score(&quiet, "loudness") < 0.1, "{quiet:#?}");
        assert!(score(&on_target, "loudness") > 0.95, "{on_target:#?}");
        let params = QualityParams {
            target_lufs: -53.0,
            ..QualityParams::default()
        };
        let audio = AudioBuffer::mono(RATE, tone(0.003, 2.0)).expect("buffer");
        let retargeted = assess_quality(&audio, &params).expect("assessed");
        assert!(score(&retargeted, "loudness") > 0.9, "{retargeted:#?}");
    }

    #[test]
    fn empty_audio_is_an_error() {
        let audio = AudioBuffer::mono(RATE, Vec::new()).expect("buffer");
        assert!(assess_quality(&audio, &QualityParams::default()).is_err());
    }
}
