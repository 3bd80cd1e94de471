//! Transformations: gain, normalize, trim, fade, mix, filter, resample and export, each on
//! an in-memory buffer and as a streaming file-to-file function. The file versions read
//! packet-sized chunks and write as they go, so memory stays bounded (a few packets plus
//! filter/resampler state) however long the input; the ones that need a measurement first
//! (normalize, trim) read the input twice.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::buffer::AudioBuffer;
use super::decode::{AudioReader, DecodeOptions};
use super::encode::{WavSpec, WavWriter};
use super::error::{AudioError, Result};
use super::loudness::{Biquad, BiquadState, LoudnessMeter};
use super::resample::StreamResampler;

/// dB to linear amplitude.
pub fn db_to_gain(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// Multiply every sample by `10^(db/20)`.
pub fn apply_gain(audio: &mut AudioBuffer, db: f64) {
    let g = db_to_gain(db) as f32;
    for c in audio.channels_mut() {
        for s in c.iter_mut() {
            *s *= g;
        }
    }
}

/// A biquad filter from the RBJ Audio EQ Cookbook.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum FilterSpec {
    LowPass { freq: f64, q: f64 },
    HighPass { freq: f64, q: f64 },
    PeakingEq { freq: f64, q: f64, gain_db: f64 },
}

impl FilterSpec {
    /// Cookbook coefficients at `rate`; fails for frequencies outside (0, Nyquist) or
    /// non-positive Q.
    pub fn design(&self, rate: f64) -> Result<Biquad> {
        let (freq, q) = match *self {
            Self::LowPass { freq, q } | Self::HighPass { freq, q } => (freq, q),
            Self::PeakingEq { freq, q, .. } => (freq, q),
        };
        let valid = freq > 0.0 && freq < rate / 2.0 && q > 0.0 && q.is_finite();
        if !valid {
            return Err(AudioError::Invalid(format!(
                "filter needs 0 < freq < {} Hz and Q > 0 (got freq {freq}, Q {q})",
                rate / 2.0
            )));
        }
        let w0 = 2.0 * std::f64::consts::PI * freq / rate;
        let (cw, alpha) = (w0.cos(), w0.sin() / (2.0 * q));
        Ok(match *self {
            Self::LowPass { .. } => Biquad::new(
                [(1.0 - cw) / 2.0, 1.0 - cw, (1.0 - cw) / 2.0],
                [1.0 + alpha, -2.0 * cw, 1.0 - alpha],
            ),
            Self::HighPass { .. } => Biquad::new(
                [(1.0 + cw) / 2.0, -(1.0 + cw), (1.0 + cw) / 2.0],
                [1.0 + alpha, -2.0 * cw, 1.0 - alpha],
            ),
            Self::PeakingEq { gain_db, .. } => {
                let a = 10f64.powf(gain_db / 40.0);
                Biquad::new(
                    [1.0 + alpha * a, -2.0 * cw, 1.0 - alpha * a],
                    [1.0 + alpha / a, -2.0 * cw, 1.0 - alpha / a],
                )
            }
        })
    }
}

/// A cascade of biquads with per-channel state, for chunked processing.
pub struct FilterChain {
    filters: Vec<Biquad>,
    states: Vec<Vec<BiquadState>>,
}

impl FilterChain {
    pub fn new(specs: &[FilterSpec], rate: u32, channels: usize) -> Result<Self> {
        let filters = specs
            .iter()
            .map(|s| s.design(f64::from(rate)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            states: vec![vec![BiquadState::default(); filters.len()]; channels],
            filters,
        })
    }

    pub fn process(&mut self, audio: &mut AudioBuffer) {
        for (plane, states) in audio.channels_mut().iter_mut().zip(&mut self.states) {
            for s in plane.iter_mut() {
                let mut x = f64::from(*s);
                for (f, st) in self.filters.iter().zip(states.iter_mut()) {
                    x = st.process(f, x);
                }
                *s = x as f32;
            }
        }
    }
}

/// Filter a buffer in place.
pub fn filter(audio: &mut AudioBuffer, specs: &[FilterSpec]) -> Result<()> {
    let mut chain = FilterChain::new(specs, audio.sample_rate(), audio.num_channels())?;
    chain.process(audio);
    Ok(())
}

/// Linear fades over the first `fade_in` and last `fade_out` seconds of a stream of
/// known length.
pub struct Fader {
    total: u64,
    fade_in: u64,
    fade_out: u64,
    pos: u64,
}

impl Fader {
    pub fn new(total_frames: u64, rate: u32, fade_in_s: f64, fade_out_s: f64) -> Result<Self> {
        if !(fade_in_s >= 0.0 && fade_out_s >= 0.0) {
            return Err(AudioError::Invalid("fade lengths must be >= 0".into()));
        }
        let frames = |s: f64| ((s * f64::from(rate)).round() as u64).min(total_frames);
        Ok(Self {
            total: total_frames,
            fade_in: frames(fade_in_s),
            fade_out: frames(fade_out_s),
            pos: 0,
        })
    }

    /// Gain at absolute frame `i`: ramps 0→1 over the fade-in and 1→0 over the fade-out
    /// (the first and last frames are silent when the fade is non-empty).
    pub fn gain(&self, i: u64) -> f32 {
        let mut g = 1.0f64;
        if i < self.fade_in {
            g *= i as f64 / self.fade_in as f64;
        }
        let from_end = self.total.saturating_sub(1).saturating_sub(i);
        if from_end < self.fade_out {
            g *= from_end as f64 / self.fade_out as f64;
        }
        g as f32
    }

    pub fn process(&mut self, audio: &mut AudioBuffer) {
        let start = self.pos;
        for c in audio.channels_mut() {
            for (k, s) in c.iter_mut().enumerate() {
                *s *= self.gain(start + k as u64);
            }
        }
        self.pos += audio.frames() as u64;
    }
}

/// Fade a buffer in place.
pub fn fade(audio: &mut AudioBuffer, fade_in_s: f64, fade_out_s: f64) -> Result<()> {
    let mut f = Fader::new(
        audio.frames() as u64,
        audio.sample_rate(),
        fade_in_s,
        fade_out_s,
    )?;
    f.process(audio);
    Ok(())
}

/// What to normalise to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", content = "target", rename_all = "camelCase")]
pub enum NormalizeTarget {
    /// Sample peak in dBFS.
    Peak(f64),
    /// Integrated loudness in LUFS (BS.1770).
    Lufs(f64),
}

/// Gain in dB that brings measured `peak` / `lufs` to the target; `None` for silence.
fn normalize_gain(target: NormalizeTarget, peak: f32, lufs: Option<f64>) -> Option<f64> {
    match target {
        NormalizeTarget::Peak(db) => (peak > 0.0).then(|| db - 20.0 * f64::from(peak).log10()),
        NormalizeTarget::Lufs(t) => lufs.map(|l| t - l),
    }
}

/// Normalise a buffer in place; returns the gain applied in dB (0 for silence).
pub fn normalize(audio: &mut AudioBuffer, target: NormalizeTarget) -> f64 {
    let lufs = match target {
        NormalizeTarget::Lufs(_) => super::loudness::integrated_loudness(audio),
        NormalizeTarget::Peak(_) => None,
    };
    let db = normalize_gain(target, audio.peak(), lufs).unwrap_or(0.0);
    apply_gain(audio, db);
    db
}

/// First and one-past-last frame whose peak over channels exceeds `threshold_db` dBFS;
/// `None` if every frame is below it.
fn trim_bounds_of(
    audio: &AudioBuffer,
    threshold: f32,
    offset: u64,
    bounds: &mut Option<(u64, u64)>,
) {
    for i in 0..audio.frames() {
        if audio.channels().iter().any(|c| c[i].abs() > threshold) {
            let f = offset + i as u64;
            *bounds = Some(bounds.map_or((f, f + 1), |(s, _)| (s, f + 1)));
        }
    }
}

/// Remove leading and trailing frames at or below `threshold_db` dBFS. All-silent input
/// becomes empty.
pub fn trim(audio: &AudioBuffer, threshold_db: f64) -> Result<AudioBuffer> {
    let mut bounds = None;
    trim_bounds_of(audio, db_to_gain(threshold_db) as f32, 0, &mut bounds);
    let (s, e) = bounds.unwrap_or((0, 0));
    let planes = audio
        .channels()
        .iter()
        .map(|c| c[s as usize..e as usize].to_vec())
        .collect();
    AudioBuffer::new(audio.sample_rate(), planes)
}

/// Sum several buffers with per-input gains (dB). All inputs must share the sample rate;
/// mono inputs are spread to every channel, other channel counts must equal the widest
/// input's. The output is as long as the longest input.
pub fn mix(inputs: &[(&AudioBuffer, f64)]) -> Result<AudioBuffer> {
    let Some((first, _)) = inputs.first() else {
        return Err(AudioError::Invalid("mix needs at least one input".into()));
    };
    let rate = first.sample_rate();
    let channels = inputs
        .iter()
        .map(|(a, _)| a.num_channels())
        .max()
        .unwrap_or(1);
    let frames = inputs.iter().map(|(a, _)| a.frames()).max().unwrap_or(0);
    let mut out = vec![vec![0.0f32; frames]; channels];
    for (a, db) in inputs {
        check_mix_input(a.sample_rate(), a.num_channels(), rate, channels)?;
        add_into(&mut out, a, db_to_gain(*db) as f32, 0);
    }
    AudioBuffer::new(rate, out)
}

fn check_mix_input(rate: u32, ch: usize, mix_rate: u32, mix_ch: usize) -> Result<()> {
    if rate != mix_rate {
        return Err(AudioError::Invalid(format!(
            "mix inputs must share a sample rate ({rate} Hz vs {mix_rate} Hz); resample first"
        )));
    }
    if ch != 1 && ch != mix_ch {
        return Err(AudioError::Invalid(format!(
            "cannot mix {ch} channels into {mix_ch}"
        )));
    }
    Ok(())
}

fn add_into(out: &mut [Vec<f32>], a: &AudioBuffer, g: f32, offset: usize) {
    let channels = out.len();
    for (c, plane) in out.iter_mut().enumerate() {
        let src = a.channel(if a.num_channels() == 1 {
            0
        } else {
            c.min(channels - 1)
        });
        for (o, &s) in plane[offset..].iter_mut().zip(src) {
            *o += s * g;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Streaming, file to file.

/// What a streaming transform wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransformReport {
    pub output: PathBuf,
    pub sample_rate: u32,
    pub channels: usize,
    pub frames: u64,
    /// Gain applied in dB (normalize), when relevant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gain_db: Option<f64>,
    /// Input frame range kept (trim), when relevant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_frames: Option<(u64, u64)>,
}

fn open(path: &Path) -> Result<AudioReader> {
    AudioReader::open(path, DecodeOptions::default())
}

/// Stream `input` through `f` (chunk, absolute start frame) into a WAV at `out_rate`
/// (resampled after `f` when it differs from the input's rate).
fn stream(
    input: &Path,
    output: &Path,
    spec: WavSpec,
    out_rate: Option<u32>,
    mut f: impl FnMut(&mut AudioBuffer, u64) -> Result<()>,
) -> Result<TransformReport> {
    let mut reader = open(input)?;
    let info = reader.info().clone();
    let rate = out_rate.unwrap_or(info.sample_rate);
    if !(super::MIN_SAMPLE_RATE..=super::MAX_SAMPLE_RATE).contains(&rate) {
        return Err(AudioError::Invalid(format!(
            "unsupported output sample rate {rate} Hz"
        )));
    }
    let mut resampler = (rate != info.sample_rate)
        .then(|| StreamResampler::new(info.sample_rate, rate, info.channels))
        .transpose()?;
    let mut writer = WavWriter::create(output, rate, info.channels, spec)?;
    let mut pos = 0u64;
    while let Some(mut chunk) = reader.next_chunk()? {
        let n = chunk.frames() as u64;
        f(&mut chunk, pos)?;
        pos += n;
        match resampler.as_mut() {
            Some(r) => writer.write(&r.push(&chunk)?)?,
            None => writer.write(&chunk)?,
        }
    }
    if let Some(r) = resampler {
        writer.write(&r.finish()?)?;
    }
    let frames = writer.frames_written();
    writer.finalize()?;
    Ok(TransformReport {
        output: output.to_path_buf(),
        sample_rate: rate,
        channels: info.channels,
        frames,
        gain_db: None,
        kept_frames: None,
    })
}

/// Write `input` as WAV at an optional new sample rate and the given bit depth/dither
/// (`transformation/export` and `transformation/resample`).
pub fn export_file(
    input: &Path,
    output: &Path,
    sample_rate: Option<u32>,
    spec: WavSpec,
) -> Result<TransformReport> {
    stream(input, output, spec, sample_rate, |_, _| Ok(()))
}

/// Apply a gain in dB.
pub fn gain_file(input: &Path, output: &Path, db: f64, spec: WavSpec) -> Result<TransformReport> {
    stream(input, output, spec, None, |c, _| {
        apply_gain(c, db);
        Ok(())
    })
}

/// Apply a biquad cascade.
pub fn filter_file(
    input: &Path,
    output: &Path,
    specs: &[FilterSpec],
    spec: WavSpec,
) -> Result<TransformReport> {
    let info = open(input)?.info().clone();
    let mut chain = FilterChain::new(specs, info.sample_rate, info.channels)?;
    stream(input, output, spec, None, |c, _| {
        chain.process(c);
        Ok(())
    })
}

/// Fade in and out (the length comes from a first pass when the header lacks it).
pub fn fade_file(
    input: &Path,
    output: &Path,
    fade_in_s: f64,
    fade_out_s: f64,
    spec: WavSpec,
) -> Result<TransformReport> {
    let mut reader = open(input)?;
    let rate = reader.info().sample_rate;
    let total = match reader.info().frames {
        Some(n) if reader.info().format.contains("wav") => n,
        _ => {
            while reader.next_chunk()?.is_some() {}
            reader.decoded_frames()
        }
    };
    let mut fader = Fader::new(total, rate, fade_in_s, fade_out_s)?;
    stream(input, output, spec, None, |c, _| {
        fader.process(c);
        Ok(())
    })
}

/// Two-pass normalisation to a peak or loudness target.
pub fn normalize_file(
    input: &Path,
    output: &Path,
    target: NormalizeTarget,
    spec: WavSpec,
) -> Result<TransformReport> {
    let mut reader = open(input)?;
    let mut meter =
        LoudnessMeter::with_true_peak(reader.info().sample_rate, reader.info().channels, false);
    let mut peak = 0.0f32;
    while let Some(chunk) = reader.next_chunk()? {
        peak = peak.max(chunk.peak());
        if matches!(target, NormalizeTarget::Lufs(_)) {
            meter.push(&chunk);
        }
    }
    let lufs = meter.finish().integrated_lufs;
    let db = normalize_gain(target, peak, lufs).unwrap_or(0.0);
    let mut report = gain_file(input, output, db, spec)?;
    report.gain_db = Some(db);
    Ok(report)
}

/// Two-pass silence trim at `threshold_db` dBFS.
pub fn trim_file(
    input: &Path,
    output: &Path,
    threshold_db: f64,
    spec: WavSpec,
) -> Result<TransformReport> {
    let mut reader = open(input)?;
    let threshold = db_to_gain(threshold_db) as f32;
    let mut bounds = None;
    let mut pos = 0u64;
    while let Some(chunk) = reader.next_chunk()? {
        trim_bounds_of(&chunk, threshold, pos, &mut bounds);
        pos += chunk.frames() as u64;
    }
    let (start, end) = bounds.unwrap_or((0, 0));
    let mut reader = open(input)?;
    let info = reader.info().clone();
    let mut writer = WavWriter::create(output, info.sample_rate, info.channels, spec)?;
    let mut pos = 0u64;
    while let Some(chunk) = reader.next_chunk()? {
        let n = chunk.frames() as u64;
        let (s, e) = (start.max(pos), end.min(pos + n));
        if s < e {
            let planes = chunk
                .channels()
                .iter()
                .map(|c| c[(s - pos) as usize..(e - pos) as usize].to_vec())
                .collect();
            writer.write(&AudioBuffer::new(info.sample_rate, planes)?)?;
        }
        pos += n;
    }
    let frames = writer.frames_written();
    writer.finalize()?;
    Ok(TransformReport {
        output: output.to_path_buf(),
        sample_rate: info.sample_rate,
        channels: info.channels,
        frames,
        gain_db: None,
        kept_frames: Some((start, end)),
    })
}

/// Mix several files (path, gain dB), streaming all inputs in lockstep. Same rules as
/// [`mix`].
pub fn mix_files(
    inputs: &[(PathBuf, f64)],
    output: &Path,
    spec: WavSpec,
) -> Result<TransformReport> {
    if inputs.is_empty() {
        return Err(AudioError::Invalid("mix needs at least one input".into()));
    }
    let mut readers = inputs
        .iter()
        .map(|(p, _)| open(p))
        .collect::<Result<Vec<_>>>()?;
    let rate = readers[0].info().sample_rate;
    let channels = readers.iter().map(|r| r.info().channels).max().unwrap_or(1);
    for r in &readers {
        check_mix_input(r.info().sample_rate, r.info().channels, rate, channels)
            .map_err(|e| AudioError::Invalid(format!("{}: {e}", r.path().display())))?;
    }
    let gains: Vec<f32> = inputs
        .iter()
        .map(|(_, db)| db_to_gain(*db) as f32)
        .collect();
    // Per-input queues of decoded but not yet mixed frames.
    let mut queues: Vec<Option<Vec<Vec<f32>>>> = readers
        .iter()
        .map(|r| Some(vec![Vec::new(); r.info().channels]))
        .collect();
    let mut writer = WavWriter::create(output, rate, channels, spec)?;
    const BLOCK: usize = 8192;
    loop {
        // Top every live queue up to BLOCK frames.
        for (r, q) in readers.iter_mut().zip(queues.iter_mut()) {
            while let Some(planes) = q.as_mut() {
                if planes[0].len() >= BLOCK {
                    break;
                }
                match r.next_chunk()? {
                    Some(c) => {
                        for (p, s) in planes.iter_mut().zip(c.channels()) {
                            p.extend_from_slice(s);
                        }
                    }
                    None => {
                        if planes[0].is_empty() {
                            *q = None;
                        }
                        break;
                    }
                }
            }
        }
        let n = queues
            .iter()
            .flatten()
            .map(|p| p[0].len().min(BLOCK))
            .max()
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        let mut out = vec![vec![0.0f32; n]; channels];
        for (q, &g) in queues.iter_mut().zip(&gains) {
            let Some(planes) = q.as_mut() else { continue };
            let take = planes[0].len().min(n);
            let part: Vec<Vec<f32>> = planes
                .iter_mut()
                .map(|p| p.drain(..take).collect())
                .collect();
            add_into(&mut out, &AudioBuffer::new(rate, part)?, g, 0);
        }
        writer.write(&AudioBuffer::new(rate, out)?)?;
    }
    let frames = writer.frames_written();
    writer.finalize()?;
    Ok(TransformReport {
        output: output.to_path_buf(),
        sample_rate: rate,
        channels,
        frames,
        gain_db: None,
        kept_frames: None,
    })
}
