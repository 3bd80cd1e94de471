//! `analysis/compare`: how close a candidate is to a reference, per aspect and overall.
//!
//! Each aspect score is in [0, 1] (1 = indistinguishable on that figure), from the
//! features of both signals ([`super::features`]) and a noise-floor estimate:
//!
//! | aspect       | measure                                                      | score |
//! |--------------|--------------------------------------------------------------|-------|
//! | `loudness`   | Δ = integrated LUFS difference (RMS dB when LUFS is `null`)   | exp(−|Δ|/6) |
//! | `brightness` | Δ = log2 ratio of spectral centroids                         | exp(−|Δ|/0.5) |
//! | `noise`      | Δf = candidate − reference noise floor (dB, 10th percentile of framed RMS), only increases count; Δs = spectral flatness difference | exp(−max(0,Δf)/10) · exp(−|Δs|/0.1) |
//! | `dynamics`   | Δ = crest factor difference in dB                            | exp(−|Δ|/6) |
//! | `timing`     | Δt = log2 tempo ratio, Δd = log2 duration ratio             | ½·exp(−|Δt|/0.1) + ½·exp(−|Δd|/0.25) |
//! | `pitch`      | cosine similarity of mean chroma; f0 distance in cents when both are voiced | mean of chroma cosine and exp(−|cents|/100) |
//!
//! `qualityScore` = Σ wᵢ·scoreᵢ / Σ wᵢ with weights noise 0.2, pitch 0.2, loudness 0.15,
//! brightness 0.15, dynamics 0.15, timing 0.15. Extra aspects (e.g. a model-embedding
//! similarity) join the same weighted mean through [`compare_features`]'s `extra`
//! argument. `improvementAreas` lists the vocabulary aspects scoring below
//! `threshold` (default 0.7), worst first; extra aspects never appear there.

use std::collections::BTreeMap;

use serde::Serialize;

use super::buffer::AudioBuffer;
use super::error::Result;
use super::features::{FeatureParams, Features, extract_features};
use super::spectral::centered_frames;

/// The vocabulary of `improvementAreas`.
pub const ASPECTS: [&str; 6] = [
    "noise",
    "loudness",
    "brightness",
    "dynamics",
    "timing",
    "pitch",
];

/// One aspect's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AspectScore {
    pub score: f64,
    pub weight: f64,
    /// A human-readable statement of the difference (e.g. "candidate is 4.1 LU quieter").
    pub detail: String,
}

/// The result object of `analysis/compare`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    pub quality_score: f64,
    pub aspects: BTreeMap<String, AspectScore>,
    pub improvement_areas: Vec<String>,
}

/// An aspect contributed from outside (e.g. `embeddingSimilarity`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExtraAspect {
    pub name: String,
    pub score: f64,
    pub weight: f64,
    pub detail: String,
}

/// What [`compare_features`] needs beyond [`Features`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalStats {
    /// 10th percentile of framed RMS in dBFS (2048/512 frames).
    pub noise_floor_db: f64,
}

/// Noise floor estimate of a mono signal: 10th percentile of framed RMS, in dBFS.
pub fn noise_floor_db(y: &[f32], frame: usize, hop: usize) -> f64 {
    let frames = centered_frames(y.len(), hop);
    let half = frame / 2;
    let mut rms: Vec<f64> = (0..frames)
        .map(|t| {
            let start = (t * hop) as isize - half as isize;
            let e: f64 = (0..frame as isize)
                .map(|i| start + i)
                .filter(|&j| j >= 0 && (j as usize) < y.len())
                .map(|j| f64::from(y[j as usize]).powi(2))
                .sum();
            20.0 * ((e / frame as f64).sqrt()).max(1e-10).log10()
        })
        .collect();
    rms.sort_by(f64::total_cmp);
    rms[((rms.len() - 1) as f64 * 0.1).round() as usize]
}

fn db(x: f64) -> f64 {
    20.0 * x.max(1e-10).log10()
}

/// Compare from precomputed features.
pub fn compare_features(
    reference: (&Features, SignalStats),
    candidate: (&Features, SignalStats),
    extra: &[ExtraAspect],
    threshold: f64,
) -> Comparison {
    let (r, rs) = reference;
    let (c, cs) = candidate;
    let mut aspects = BTreeMap::new();
    let mut put = |name: &str, score: f64, weight: f64, detail: String| {
        aspects.insert(
            name.to_string(),
            AspectScore {
                score: score.clamp(0.0, 1.0),
                weight,
                detail,
            },
        );
    };

    let (dl, unit) = match (r.loudness_lufs, c.loudness_lufs) {
        (Some(a), Some(b)) => (b - a, "LU"),
        _ => (db(c.rms) - db(r.rms), "dB RMS"),
    };
    put(
        "loudness",
        (-dl.abs() / 6.0).exp(),
        0.15,
        format!(
            "candidate is {:.1} {unit} {}",
            dl.abs(),
            if dl < 0.0 { "quieter" } else { "louder" }
        ),
    );

    let bright = if r.spectral_centroid > 0.0 && c.spectral_centroid > 0.0 {
        (c.spectral_centroid / r.spectral_centroid).log2()
    } else {
        0.0
    };
    put(
        "brightness",
        (-bright.abs() / 0.5).exp(),
        0.15,
        format!(
            "spectral centroid {:.0} Hz vs {:.0} Hz ({})",
            c.spectral_centroid,
            r.spectral_centroid,
            if bright < 0.0 { "duller" } else { "brighter" }
        ),
    );

    let df = (cs.noise_floor_db - rs.noise_floor_db).max(0.0);
    let dflat = c.spectral_flatness - r.spectral_flatness;
    put(
        "noise",
        (-df / 10.0).exp() * (-dflat.abs() / 0.1).exp(),
        0.2,
        format!(
            "noise floor {:.1} dBFS vs {:.1} dBFS, flatness {:.3} vs {:.3}",
            cs.noise_floor_db, rs.noise_floor_db, c.spectral_flatness, r.spectral_flatness
        ),
    );

    let dd = db(c.crest_factor) - db(r.crest_factor);
    put(
        "dynamics",
        (-dd.abs() / 6.0).exp(),
        0.15,
        format!(
            "crest factor {:.1} dB {} than the reference",
            dd.abs(),
            if dd < 0.0 {
                "lower (more compressed)"
            } else {
                "higher"
            }
        ),
    );

    let dt = if r.tempo > 0.0 && c.tempo > 0.0 {
        (c.tempo / r.tempo).log2()
    } else {
        0.0
    };
    let dur = if r.duration > 0.0 && c.duration > 0.0 {
        (c.duration / r.duration).log2()
    } else {
        0.0
    };
    put(
        "timing",
        0.5 * (-dt.abs() / 0.1).exp() + 0.5 * (-dur.abs() / 0.25).exp(),
        0.15,
        format!(
            "tempo {:.1} vs {:.1} BPM, duration {:.2} s vs {:.2} s",
            c.tempo, r.tempo, c.duration, r.duration
        ),
    );

    let dot: f64 = r.chroma.iter().zip(&c.chroma).map(|(a, b)| a * b).sum();
    let nr = r.chroma.iter().map(|v| v * v).sum::<f64>().sqrt();
    let nc = c.chroma.iter().map(|v| v * v).sum::<f64>().sqrt();
    let chroma_sim = if nr > 0.0 && nc > 0.0 {
        dot / (nr * nc)
    } else {
        0.0
    };
    let (pitch, detail) = match (r.f0, c.f0) {
        (Some(a), Some(b)) => {
            let cents = 1200.0 * (b / a).log2();
            (
                0.5 * chroma_sim + 0.5 * (-cents.abs() / 100.0).exp(),
                format!(
                    "f0 {b:.1} Hz vs {a:.1} Hz ({cents:+.0} cents), chroma similarity {chroma_sim:.3}"
                ),
            )
        }
        _ => (chroma_sim, format!("chroma similarity {chroma_sim:.3}")),
    };
    put("pitch", pitch, 0.2, detail);

    for e in extra {
        put(&e.name, e.score, e.weight, e.detail.clone());
    }

    let (num, den) = aspects.values().fold((0.0, 0.0), |(n, d), a| {
        (n + a.weight * a.score, d + a.weight)
    });
    let mut areas: Vec<(&String, f64)> = aspects
        .iter()
        .filter(|(k, a)| ASPECTS.contains(&k.as_str()) && a.score < threshold)
        .map(|(k, a)| (k, a.score))
        .collect();
    areas.sort_by(|a, b| a.1.total_cmp(&b.1));
    let improvement_areas = areas.into_iter().map(|(k, _)| k.clone()).collect();
    Comparison {
        quality_score: if den > 0.0 {
            (num / den).clamp(0.0, 1.0)
        } else {
            0.0
        },
        aspects,
        improvement_areas,
    }
}

/// Compare two buffers with default feature parameters and threshold 0.7.
pub fn compare(reference: &AudioBuffer, candidate: &AudioBuffer) -> Result<Comparison> {
    let p = FeatureParams::default();
    let fr = extract_features(reference, &p)?;
    let fc = extract_features(candidate, &p)?;
    let sr = SignalStats {
        noise_floor_db: noise_floor_db(&reference.to_mono(), p.n_fft, p.hop_length),
    };
    let sc = SignalStats {
        noise_floor_db: noise_floor_db(&candidate.to_mono(), p.n_fft, p.hop_length),
    };
    Ok(compare_features((&fr, sr), (&fc, sc), &[], 0.7))
}
