//! `analysis/beatsync`: a clip's figures per beat, per bar and per section — librosa's
//! beat-synchronous aggregation (`util.sync` with `np.mean`) of frame features.
//!
//! Frames are centred, 2048 samples with a hop of 512, on the mono downmix. Per frame:
//! RMS (time domain, zero padding counts as silence), spectral centroid and flatness of the
//! magnitude / power spectrum (as in [`super::features`]) and `chroma_stft` with A440
//! tuning, each frame scaled to a maximum of 1. A span `[start, end)` in seconds covers the
//! frames `floor(start·sr / hop)` up to (not including) `floor(end·sr / hop)`, at least one;
//! its figures are the means over those frames, `rmsDb` is the mean RMS in dBFS, and
//! `pitchClass` is the strongest class of the mean chroma.
//!
//! - **Beat intervals**: from 0 to the first beat (when it is later than 0), from each beat to
//!   the next, and from the last beat to the end of the clip — `util.sync(pad=True)`.
//! - **Bars**: `beatsPerBar` beats each, counted from the first beat (beat tracking does not
//!   find downbeats); the last bar may be shorter.
//! - **Sections**: the given sections with every boundary moved to the nearest beat, so
//!   that sections begin and end on the beat; sections that collapse are dropped.
//! - **Accent profile**: the mean `rmsDb` of the beat intervals at each position in the bar
//!   (position 1 = the first beat of a bar): where the weight of the bar falls.

use serde::Serialize;

use super::buffer::AudioBuffer;
use super::error::{AudioError, Result};
use super::spectral::{Stft, apply_bank, centered_frames, chroma_filterbank, fft_frequencies};

const FRAME: usize = 2048;
const HOP: usize = 512;

pub const PITCH_CLASSES: [&str; 12] = [
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
];

/// The figures of one span of the clip.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    pub start: f64,
    pub end: f64,
    pub rms_db: f64,
    pub spectral_centroid: f64,
    pub spectral_flatness: f64,
    pub chroma: Vec<f64>,
    pub pitch_class: &'static str,
    /// Onsets in `[start, end)`.
    pub onsets: usize,
}

/// A section: its span and how many beats fall inside it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Section {
    #[serde(flatten)]
    pub span: Span,
    pub beats: usize,
}

/// The result of the beat-synchronous analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BeatSync {
    pub duration: f64,
    pub beat_count: usize,
    pub beat_intervals: Vec<Span>,
    pub bars: Vec<Span>,
    pub sections: Vec<Section>,
    /// Mean `rmsDb` per position in the bar; empty without beats.
    pub accent_profile: Vec<f64>,
}

/// What the analysis is given besides the audio (from the rhythm analysis).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BeatGrid {
    /// Beat times in seconds, ascending.
    pub beats: Vec<f64>,
    /// Onset times in seconds.
    pub onsets: Vec<f64>,
    /// Sections as `(start, end)` in seconds.
    pub sections: Vec<(f64, f64)>,
}

/// Per-frame figures of the whole clip.
struct Frames {
    rms: Vec<f64>,
    centroid: Vec<f64>,
    flatness: Vec<f64>,
    chroma: Vec<[f64; 12]>,
}

fn frame_figures(y: &[f32], sr: f64) -> Frames {
    let n = centered_frames(y.len(), HOP);
    let mut stft = Stft::new(FRAME, HOP);
    let nb = stft.n_bins();
    let freqs = fft_frequencies(sr, FRAME);
    let chroma_bank = chroma_filterbank(sr, FRAME, 0.0);
    let mut mag = vec![0.0f32; nb];
    let mut power = vec![0.0f32; nb];
    let mut frames = Frames {
        rms: Vec::with_capacity(n),
        centroid: Vec::with_capacity(n),
        flatness: Vec::with_capacity(n),
        chroma: Vec::with_capacity(n),
    };
    for t in 0..n {
        let start = (t * HOP) as isize - (FRAME / 2) as isize;
        let lo = start.max(0) as usize;
        let hi = ((start + FRAME as isize).max(0) as usize).min(y.len());
        let energy: f64 = y[lo.min(hi)..hi].iter().map(|&v| f64::from(v * v)).sum();
        frames.rms.push((energy / FRAME as f64).sqrt());

        stft.magnitude(y, t, &mut mag);
        let total: f64 = mag.iter().map(|&m| f64::from(m)).sum();
        let weighted: f64 = mag.iter().zip(&freqs).map(|(&m, f)| f * f64::from(m)).sum();
        frames
            .centroid
            .push(if total > 0.0 { weighted / total } else { 0.0 });
        let (mut log_sum, mut lin_sum) = (0.0f64, 0.0f64);
        for (p, &m) in power.iter_mut().zip(&mag) {
            *p = m * m;
            let v = f64::from(*p).max(1e-10);
            log_sum += v.ln();
            lin_sum += v;
        }
        frames
            .flatness
            .push((log_sum / nb as f64).exp() / (lin_sum / nb as f64));
        let raw = apply_bank(&chroma_bank, &power);
        let max = raw.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let norm = if max < f32::MIN_POSITIVE { 1.0 } else { max };
        let mut chroma = [0.0f64; 12];
        for (c, v) in chroma.iter_mut().zip(&raw) {
            *c = f64::from(v / norm);
        }
        frames.chroma.push(chroma);
    }
    frames
}

fn dbfs(x: f64) -> f64 {
    20.0 * x.max(1e-10).log10()
}

impl Frames {
    fn len(&self) -> usize {
        self.rms.len()
    }

    /// The frames `[floor(start·sr/hop), floor(end·sr/hop))`, at least one, within the clip
    /// (a centred STFT always has a frame).
    fn range(&self, start: f64, end: f64, sr: f64) -> std::ops::Range<usize> {
        let n = self.len();
        let frame_at = |t: f64| ((t.max(0.0) * sr) as usize) / HOP;
        let first = frame_at(start).min(n - 1);
        first..frame_at(end).clamp(first + 1, n)
    }

    fn span(&self, start: f64, end: f64, sr: f64, onsets: &[f64]) -> Span {
        let range = self.range(start, end, sr);
        let count = range.len() as f64;
        let mean = |v: &[f64]| v[range.clone()].iter().sum::<f64>() / count;
        let mut chroma = vec![0.0f64; 12];
        for frame in &self.chroma[range.clone()] {
            for (c, v) in chroma.iter_mut().zip(frame) {
                *c += v / count;
            }
        }
        let strongest = (0..12).fold(0, |b, i| if chroma[i] > chroma[b] { i } else { b });
        Span {
            start,
            end,
            rms_db: dbfs(mean(&self.rms)),
            spectral_centroid: mean(&self.centroid),
            spectral_flatness: mean(&self.flatness),
            chroma,
            pitch_class: PITCH_CLASSES[strongest],
            onsets: onsets.iter().filter(|&&t| t >= start && t < end).count(),
        }
    }
}

/// The beat that lies nearest to `t`.
fn nearest_beat(beats: &[f64], t: f64) -> f64 {
    beats
        .iter()
        .copied()
        .min_by(|a, b| (a - t).abs().total_cmp(&(b - t).abs()))
        .unwrap_or(t)
}

/// Figures per beat interval, bar and section of `audio` on the beat grid `grid`.
pub fn beat_synchronous(
    audio: &AudioBuffer,
    grid: &BeatGrid,
    beats_per_bar: usize,
) -> Result<BeatSync> {
    super::cancel::check()?;
    if audio.is_empty() {
        return Err(AudioError::Invalid("cannot analyse empty audio".into()));
    }
    if beats_per_bar == 0 {
        return Err(AudioError::Invalid("beatsPerBar must be at least 1".into()));
    }
    let duration = audio.duration_secs();
    let sr = f64::from(audio.sample_rate());
    let mut beats: Vec<f64> = grid
        .beats
        .iter()
        .copied()
        .filter(|t| t.is_finite() && *t >= 0.0 && *t < duration)
        .collect();
    beats.sort_by(f64::total_cmp);
    beats.dedup();
    let y = audio.to_mono();
    let frames = frame_figures(&y, sr);
    super::cancel::check()?;

    let mut edges = Vec::with_capacity(beats.len() + 2);
    if beats.first().is_none_or(|&b| b > 0.0) {
        edges.push(0.0);
    }
    edges.extend_from_slice(&beats);
    edges.push(duration);
    let beat_intervals: Vec<Span> = edges
        .windows(2)
        .map(|w| frames.span(w[0], w[1], sr, &grid.onsets))
        .collect();

    let bars: Vec<Span> = beats
        .chunks(beats_per_bar)
        .enumerate()
        .map(|(i, bar)| {
            let end = beats
                .get((i + 1) * beats_per_bar)
                .copied()
                .unwrap_or(duration);
            frames.span(bar[0], end, sr, &grid.onsets)
        })
        .collect();

    let mut sections = Vec::new();
    for &(start, end) in &grid.sections {
        let (start, end) = if beats.is_empty() {
            (start, end)
        } else {
            // The clip's edges stay where they are; inner boundaries move onto the beat.
            let snap = |t: f64| {
                if t <= 0.0 || t >= duration {
                    t.clamp(0.0, duration)
                } else {
                    nearest_beat(&beats, t)
                }
            };
            (snap(start), snap(end))
        };
        let (start, end) = (start.clamp(0.0, duration), end.clamp(0.0, duration));
        if end <= start {
            continue;
        }
        sections.push(Section {
            span: frames.span(start, end, sr, &grid.onsets),
            beats: beats.iter().filter(|&&b| b >= start && b < end).count(),
        });
    }

    // Beat k (0-based, counted from the first beat) sits at position k mod beatsPerBar.
    let first_beat_interval = beat_intervals.len() - beats.len();
    let mut accent = vec![(0.0f64, 0usize); if beats.is_empty() { 0 } else { beats_per_bar }];
    for (k, interval) in beat_intervals[first_beat_interval..].iter().enumerate() {
        let slot = &mut accent[k % beats_per_bar];
        slot.0 += interval.rms_db;
        slot.1 += 1;
    }
    let accent_profile = accent
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(sum, n)| sum / n as f64)
        .collect();

    Ok(BeatSync {
        duration,
        beat_count: beats.len(),
        beat_intervals,
        bars,
        sections,
        accent_profile,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 22_050;

    /// Decaying tones on the beat at 120 BPM (a beat every 0.5 s from 0.25 s), every fourth
    /// one 20 dB louder; pitched A (440 Hz) before `switch` seconds and C (523.25 Hz) from
    /// then on.
    fn accented_beats(seconds: f64, switch: f64) -> (Vec<f32>, Vec<f64>) {
        let n = (f64::from(RATE) * seconds) as usize;
        let mut y = vec![0.0f32; n];
        let mut beats = Vec::new();
        let mut k = 0usize;
        loop {
            let t0 = 0.25 + 0.5 * k as f64;
            if t0 >= seconds {
                break;
            }
            beats.push(t0);
            let amp = if k.is_multiple_of(4) { 0.5 } else { 0.05 };
            let freq = if t0 < switch { 440.0 } else { 523.25 };
            let start = (t0 * f64::from(RATE)) as usize;
            for i in 0..(0.3 * f64::from(RATE)) as usize {
                if let Some(s) = y.get_mut(start + i) {
                    let t = i as f64 / f64::from(RATE);
                    *s = (amp * (-t / 0.1).exp() * (2.0 * std::f64::consts::PI * freq * t).sin())
                        as f32;
                }
            }
            k += 1;
        }
        (y, beats)
    }

    #[test]
    fn figures_follow_the_beats_bars_and_sections() {
        let (y, beats) = accented_beats(8.0, 4.0);
        let audio = AudioBuffer::mono(RATE, y).expect("buffer");
        let grid = BeatGrid {
            onsets: beats.clone(),
            beats: beats.clone(),
            // A boundary off the beat, at 4.1 s: it moves to the beat at 4.25 s.
            sections: vec![(0.0, 4.1), (4.1, 8.0)],
        };
        let sync = beat_synchronous(&audio, &grid, 4).expect("analysed");
        assert_eq!(sync.beat_count, 16);
        // The lead-in before the first beat, then one interval per beat.
        assert_eq!(sync.beat_intervals.len(), 17);
        assert_eq!(sync.beat_intervals[0].start, 0.0);
        assert_eq!(sync.beat_intervals[0].end, 0.25);
        assert_eq!(sync.beat_intervals[0].onsets, 0);
        assert!(sync.beat_intervals[1..].iter().all(|i| i.onsets == 1));
        assert_eq!(sync.beat_intervals[1].pitch_class, "A");
        assert_eq!(sync.beat_intervals[8].pitch_class, "A");
        assert_eq!(sync.beat_intervals[9].pitch_class, "C");
        // The first beat of every bar carries the weight: 20 dB louder.
        assert_eq!(sync.accent_profile.len(), 4);
        let lift = sync.accent_profile[0] - sync.accent_profile[1];
        assert!((15.0..25.0).contains(&lift), "{:?}", sync.accent_profile);
        assert_eq!(sync.bars.len(), 4);
        assert_eq!((sync.bars[1].start, sync.bars[1].end), (2.25, 4.25));
        assert_eq!(sync.bars[3].end, 8.0);
        assert_eq!(sync.sections.len(), 2);
        assert_eq!(sync.sections[0].span.end, 4.25);
        assert_eq!(sync.sections[1].span.start, 4.25);
        assert_eq!(sync.sections[0].beats, 8);
        assert_eq!(sync.sections[1].beats, 8);
        assert_eq!(sync.sections[0].span.pitch_class, "A");
        assert_eq!(sync.sections[1].span.pitch_class, "C");
    }

    #[test]
    fn without_beats_the_whole_clip_is_one_interval() {
        let audio = AudioBuffer::mono(RATE, vec![0.1; RATE as usize]).expect("buffer");
        let sync = beat_synchronous(&audio, &BeatGrid::default(), 4).expect("analysed");
        assert_eq!(sync.beat_count, 0);
        assert_eq!(sync.beat_intervals.len(), 1);
        assert_eq!(sync.beat_intervals[0].end, 1.0);
        assert!(sync.bars.is_empty() && sync.accent_profile.is_empty());
    }

    #[test]
    fn bad_inputs_are_errors() {
        let audio = AudioBuffer::mono(RATE, vec![0.1; 100]).expect("buffer");
        assert!(beat_synchronous(&audio, &BeatGrid::default(), 0).is_err());
        let empty = AudioBuffer::mono(RATE, Vec::new()).expect("buffer");
        assert!(beat_synchronous(&empty, &BeatGrid::default(), 4).is_err());
    }
}
