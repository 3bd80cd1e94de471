//! Per-frame MFCC and chroma: the matrices whose means `analysis/features` reports, for
//! drawing as heat maps. Same framing, filter banks, dB scaling and tuning estimate as
//! [`super::features`], so the mean of each matrix's frames is that result's figure.

use super::buffer::AudioBuffer;
use super::error::{AudioError, Result};
use super::features::{FeatureParams, piptrack_frame, tuning_from_candidates};
use super::spectral::{
    SparseBank, Stft, apply_bank, centered_frames, chroma_filterbank, dct2_ortho, mel_filterbank,
    par_ranges, power_to_db,
};

/// MFCC and chroma of every analysis frame of a clip.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureFrames {
    /// Seconds between the centres of successive frames.
    pub hop_seconds: f64,
    /// One row of `n_mfcc` coefficients per frame.
    pub mfcc: Vec<Vec<f32>>,
    /// One row of 12 pitch classes (C first) per frame, each frame scaled to a maximum of 1.
    pub chroma: Vec<Vec<f32>>,
}

/// Computes the per-frame matrices of `audio` (mono downmix) with `params`' framing.
pub fn feature_frames(audio: &AudioBuffer, params: &FeatureParams) -> Result<FeatureFrames> {
    super::cancel::check()?;
    if audio.is_empty() {
        return Err(AudioError::Invalid("cannot analyse empty audio".into()));
    }
    let (n_fft, hop) = (params.n_fft, params.hop_length);
    if n_fft < 4 || hop == 0 {
        return Err(AudioError::Invalid(
            "n_fft must be >= 4 and hop >= 1".into(),
        ));
    }
    let y: std::borrow::Cow<[f32]> = if audio.num_channels() == 1 {
        std::borrow::Cow::Borrowed(audio.channel(0))
    } else {
        std::borrow::Cow::Owned(audio.to_mono())
    };
    let y: &[f32] = &y;
    let sr = f64::from(audio.sample_rate());
    let n_frames = centered_frames(y.len(), hop);
    let mel_bank = SparseBank::new(&mel_filterbank(sr, n_fft, params.n_mels, 0.0, sr / 2.0));

    // Pass 1: mel power and tuning candidates per frame.
    let parts = par_ranges(n_frames, |range| {
        let mut stft = Stft::new(n_fft, hop);
        let mut mag = vec![0.0f32; stft.n_bins()];
        let mut power = vec![0.0f32; stft.n_bins()];
        let mut mel = Vec::with_capacity(range.len());
        let mut candidates = Vec::new();
        for t in range {
            stft.magnitude(y, t, &mut mag);
            for (p, &m) in power.iter_mut().zip(&mag) {
                *p = m * m;
            }
            mel.push(mel_bank.apply(&power));
            piptrack_frame(&power, sr, n_fft, &mut candidates);
        }
        (mel, candidates)
    });
    let mut mel = Vec::with_capacity(n_frames);
    let mut candidates = Vec::new();
    for (m, c) in parts {
        mel.extend(m);
        candidates.extend(c);
    }
    super::cancel::check()?;
    // dB over the whole clip (top_db 80), then the DCT of each frame.
    power_to_db(&mut mel);
    let mfcc = mel
        .iter()
        .map(|frame| {
            let db: Vec<f64> = frame.iter().map(|&v| f64::from(v)).collect();
            dct2_ortho(&db, params.n_mfcc)
                .into_iter()
                .map(|c| c as f32)
                .collect()
        })
        .collect();
    drop(mel);

    // Pass 2: chroma with the estimated tuning.
    let chroma_bank = chroma_filterbank(sr, n_fft, tuning_from_candidates(&candidates));
    drop(candidates);
    let chroma = par_ranges(n_frames, |range| {
        let mut stft = Stft::new(n_fft, hop);
        let mut mag = vec![0.0f32; stft.n_bins()];
        let mut power = vec![0.0f32; stft.n_bins()];
        range
            .map(|t| {
                stft.magnitude(y, t, &mut mag);
                for (p, &m) in power.iter_mut().zip(&mag) {
                    *p = m * m;
                }
                let raw = apply_bank(&chroma_bank, &power);
                let max = raw.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let norm = if max < f32::MIN_POSITIVE { 1.0 } else { max };
                raw.into_iter().map(|v| v / norm).collect::<Vec<f32>>()
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect();
    super::cancel::check()?;
    Ok(FeatureFrames {
        hop_seconds: hop as f64 / sr,
        mfcc,
        chroma,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::extract_features;

    fn chord(sr: u32, seconds: f64) -> AudioBuffer {
        let n = (f64::from(sr) * seconds) as usize;
        let y: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(sr);
                let tone = |f: f64| (2.0 * std::f64::consts::PI * f * t).sin();
                (0.3 * tone(261.63) + 0.2 * tone(329.63) + 0.2 * tone(392.0)) as f32
            })
            .collect();
        AudioBuffer::new(sr, vec![y]).unwrap()
    }

    fn mean_of(rows: &[Vec<f32>], k: usize) -> f64 {
        rows.iter().map(|r| f64::from(r[k])).sum::<f64>() / rows.len() as f64
    }

    #[test]
    fn frame_means_are_the_features_result() {
        let audio = chord(22_050, 1.5);
        let p = FeatureParams::default();
        let frames = feature_frames(&audio, &p).unwrap();
        let features = extract_features(&audio, &p).unwrap();
        let n = centered_frames(audio.frames(), p.hop_length);
        assert_eq!(frames.mfcc.len(), n);
        assert_eq!(frames.chroma.len(), n);
        assert!(frames.mfcc.iter().all(|r| r.len() == 13));
        assert!(frames.chroma.iter().all(|r| r.len() == 12));
        for (k, &expected) in features.mfcc.iter().enumerate() {
            let got = mean_of(&frames.mfcc, k);
            assert!(
                (got - expected).abs() < 1e-2 * expected.abs().max(1.0),
                "mfcc {k}"
            );
        }
        for (k, &expected) in features.chroma.iter().enumerate() {
            assert!(
                (mean_of(&frames.chroma, k) - expected).abs() < 1e-4,
                "chroma {k}"
            );
        }
        assert!((frames.hop_seconds - 512.0 / 22_050.0).abs() < 1e-12);
    }

    #[test]
    fn a_c_major_chord_lights_c_e_and_g() {
        let frames = feature_frames(&chord(22_050, 1.0), &FeatureParams::default()).unwrap();
        let means: Vec<f64> = (0..12).map(|k| mean_of(&frames.chroma, k)).collect();
        let mut order: Vec<usize> = (0..12).collect();
        order.sort_by(|&a, &b| means[b].total_cmp(&means[a]));
        let mut top = order[..3].to_vec();
        top.sort_unstable();
        assert_eq!(top, [0, 4, 7], "C, E and G: {means:?}");
    }

    #[test]
    fn empty_audio_is_an_error() {
        let audio = AudioBuffer::new(22_050, vec![Vec::new()]).unwrap();
        assert!(feature_frames(&audio, &FeatureParams::default()).is_err());
    }
}
