//! Sample-rate conversion with rubato's FFT resampler (synchronous, BlackmanHarris²
//! anti-aliasing window): high quality for fixed ratios, and it streams, so an hour of
//! audio converts chunk by chunk. The resampler's start-up delay is trimmed and the output
//! has exactly `ceil(frames × out_rate / in_rate)` frames, aligned with the input.

use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use super::buffer::AudioBuffer;
use super::error::{AudioError, Result};

const CHUNK: usize = 1024;

fn err(e: impl std::fmt::Display) -> AudioError {
    AudioError::Invalid(format!("resampling failed: {e}"))
}

/// Streaming resampler: [`push`](Self::push) chunks, then [`finish`](Self::finish).
pub struct StreamResampler {
    inner: Option<Fft<f32>>,
    channels: usize,
    in_rate: u32,
    out_rate: u32,
    pending: Vec<Vec<f32>>,
    out: Vec<Vec<f32>>,
    to_trim: usize,
    in_total: u64,
    out_total: u64,
}

impl StreamResampler {
    pub fn new(in_rate: u32, out_rate: u32, channels: usize) -> Result<Self> {
        if in_rate == 0 || out_rate == 0 || channels == 0 {
            return Err(AudioError::Invalid(
                "resampling needs positive rates and at least one channel".into(),
            ));
        }
        let inner = if in_rate == out_rate {
            None
        } else {
            Some(
                Fft::<f32>::new(
                    in_rate as usize,
                    out_rate as usize,
                    CHUNK,
                    channels,
                    FixedSync::Input,
                )
                .map_err(err)?,
            )
        };
        let max_out = inner.as_ref().map_or(0, |r| r.output_frames_max());
        let to_trim = inner.as_ref().map_or(0, |r| r.output_delay());
        Ok(Self {
            inner,
            channels,
            in_rate,
            out_rate,
            pending: vec![Vec::new(); channels],
            out: vec![vec![0.0; max_out]; channels],
            to_trim,
            in_total: 0,
            out_total: 0,
        })
    }

    /// Run one block (`partial` frames of real input when finishing); returns the output.
    fn block(&mut self, partial: Option<usize>) -> Result<Vec<Vec<f32>>> {
        let Some(r) = self.inner.as_mut() else {
            return Ok(vec![Vec::new(); self.channels]);
        };
        let frames_in = partial.unwrap_or_else(|| r.input_frames_next());
        let max_out = r.output_frames_max();
        let input =
            SequentialSliceOfVecs::new(&self.pending, self.channels, frames_in).map_err(err)?;
        let mut output =
            SequentialSliceOfVecs::new_mut(&mut self.out, self.channels, max_out).map_err(err)?;
        let indexing = Indexing {
            input_offset: 0,
            output_offset: 0,
            partial_len: partial,
            active_channels_mask: None,
        };
        let (n_in, n_out) = r
            .process_into_buffer(&input, &mut output, Some(&indexing))
            .map_err(err)?;
        for p in &mut self.pending {
            p.drain(..n_in.min(p.len()));
        }
        let skip = self.to_trim.min(n_out);
        self.to_trim -= skip;
        Ok(self.out.iter().map(|c| c[skip..n_out].to_vec()).collect())
    }

    fn emit(&mut self, blocks: Vec<Vec<Vec<f32>>>) -> Result<AudioBuffer> {
        let mut planes = vec![Vec::new(); self.channels];
        for b in blocks {
            for (p, c) in planes.iter_mut().zip(b) {
                p.extend(c);
            }
        }
        self.out_total += planes[0].len() as u64;
        AudioBuffer::new(self.out_rate, planes)
    }

    /// Feed a chunk; returns whatever output is ready (possibly empty).
    pub fn push(&mut self, chunk: &AudioBuffer) -> Result<AudioBuffer> {
        if chunk.num_channels() != self.channels {
            return Err(AudioError::Invalid(format!(
                "resampler expects {} channels, got {}",
                self.channels,
                chunk.num_channels()
            )));
        }
        self.in_total += chunk.frames() as u64;
        if self.inner.is_none() {
            self.out_total += chunk.frames() as u64;
            return AudioBuffer::new(self.out_rate, chunk.channels().to_vec());
        }
        for (p, c) in self.pending.iter_mut().zip(chunk.channels()) {
            p.extend_from_slice(c);
        }
        let mut blocks = Vec::new();
        while let Some(r) = self.inner.as_ref() {
            if self.pending[0].len() < r.input_frames_next() {
                break;
            }
            blocks.push(self.block(None)?);
        }
        self.emit(blocks)
    }

    /// Flush the remaining input and the filter tail; the total output length is
    /// `ceil(input frames × ratio)`.
    pub fn finish(mut self) -> Result<AudioBuffer> {
        if self.inner.is_none() {
            return AudioBuffer::new(self.out_rate, vec![Vec::new(); self.channels]);
        }
        // Exact integer ceil(in_total × out / in).
        let (num, den) = (u128::from(self.out_rate), u128::from(self.in_rate));
        let expected = ((u128::from(self.in_total) * num).div_ceil(den)) as u64;
        let mut blocks = Vec::new();
        let rest = self.pending[0].len();
        if rest > 0 {
            blocks.push(self.block(Some(rest))?);
        }
        let mut produced: u64 = blocks.iter().map(|b| b[0].len() as u64).sum();
        let mut guard = 0;
        while self.out_total + produced < expected {
            let b = self.block(Some(0))?;
            produced += b[0].len() as u64;
            blocks.push(b);
            guard += 1;
            if guard > 1000 {
                return Err(err("resampler produced no output while flushing"));
            }
        }
        let mut buf = self.emit(blocks)?;
        let keep = buf.frames() as u64 - (self.out_total - expected.min(self.out_total));
        buf.truncate(keep as usize);
        Ok(buf)
    }
}

/// Resample a whole buffer to `out_rate`.
pub fn resample(audio: &AudioBuffer, out_rate: u32) -> Result<AudioBuffer> {
    if audio.sample_rate() == out_rate {
        return Ok(audio.clone());
    }
    let mut r = StreamResampler::new(audio.sample_rate(), out_rate, audio.num_channels())?;
    let mut out = r.push(audio)?;
    out.append(&r.finish()?)?;
    Ok(out)
}
