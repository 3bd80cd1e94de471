//! Decoding audio files (WAV in all its PCM/float/extensible forms, FLAC, MP3, Ogg
//! Vorbis) through symphonia, with the checks that turn bad files into clear errors.
//!
//! Policies:
//! - **Limits** (checked before allocating): channels `1..=MAX_CHANNELS`, sample rate
//!   `MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE`, and at most `DecodeOptions::max_samples`
//!   samples in memory (default [`DEFAULT_MAX_SAMPLES`], 2 GiB of f32, about 1.5 hours of
//!   48 kHz stereo). The header's frame count is checked up front; formats that do not
//!   declare one are checked as they decode. Streaming readers ([`AudioReader`]) hold one
//!   packet at a time and are not limited.
//! - **Lying headers**: for PCM WAV, a data size larger than the file is reported as
//!   truncation before decoding; for WAV and FLAC, fewer decoded frames than declared is
//!   reported as truncation.
//! - **NaN/Inf** samples (possible only in float files) are rejected by default, naming
//!   the first one: they mean a broken producer, and zeroing them silently would hide it.
//!   [`NonFinitePolicy::Sanitize`] replaces NaN by 0 and clamps ±Inf to ±1 instead.

use std::fs::File;
use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::well_known::CODEC_ID_FLAC;
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use super::buffer::AudioBuffer;
use super::error::{AudioError, Result};
use super::{MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};

/// Default cap on decoded samples held in memory: 2^29 f32 samples = 2 GiB.
pub const DEFAULT_MAX_SAMPLES: u64 = 1 << 29;

/// What to do with NaN or infinite samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NonFinitePolicy {
    /// Fail with [`AudioError::NonFinite`] naming the first bad sample.
    #[default]
    Reject,
    /// NaN → 0, +Inf → 1, −Inf → −1.
    Sanitize,
}

/// Options for [`decode_file`] and [`AudioReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    pub max_samples: u64,
    pub non_finite: NonFinitePolicy,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_samples: DEFAULT_MAX_SAMPLES,
            non_finite: NonFinitePolicy::Reject,
        }
    }
}

/// What the file's header says.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioInfo {
    pub sample_rate: u32,
    pub channels: usize,
    /// Declared length in frames, when the container states it.
    pub frames: Option<u64>,
    /// Container short name, e.g. `wave`, `flac`, `ogg`, `mp3`.
    pub format: String,
    pub bits_per_sample: Option<u32>,
}

/// Streaming decoder: yields the file packet by packet as planar chunks.
pub struct AudioReader {
    path: PathBuf,
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    info: AudioInfo,
    options: DecodeOptions,
    decoded_frames: u64,
    /// Header length is exact (WAV, FLAC): a shortfall is truncation.
    exact_length: bool,
    done: bool,
}

impl AudioReader {
    /// Open and probe a file, validating its header.
    pub fn open(path: &Path, options: DecodeOptions) -> Result<Self> {
        let file = File::open(path).map_err(|source| AudioError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let file_len = file
            .metadata()
            .map_err(|source| AudioError::Io {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        if file_len == 0 {
            return Err(AudioError::UnsupportedFormat {
                path: path.to_path_buf(),
                reason: "the file is empty".into(),
            });
        }
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let unsupported = |reason: String| AudioError::UnsupportedFormat {
            path: path.to_path_buf(),
            reason,
        };
        let format = symphonia::default::get_probe()
            .probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|e| match e {
                // A recognised container whose structure is broken (e.g. a chunk size
                // larger than its parent) is corrupt, not merely unsupported.
                SymError::DecodeError(msg) => AudioError::Corrupt {
                    path: path.to_path_buf(),
                    reason: format!("malformed header: {msg}"),
                },
                e => unsupported(format!("unrecognised or unreadable container: {e}")),
            })?;
        let track = format
            .default_track(TrackType::Audio)
            .ok_or_else(|| unsupported("no audio track".into()))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| unsupported("the audio track has no codec parameters".into()))?
            .clone();
        let track_id = track.id;
        let declared = track.num_frames;
        let short_name = format.format_info().short_name.to_string();

        let rate = params.sample_rate.unwrap_or(0);
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
            return Err(AudioError::BadSampleRate {
                path: path.to_path_buf(),
                rate: u64::from(rate),
            });
        }
        let channels = params.channels.as_ref().map(|c| c.count()).unwrap_or(0);
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(AudioError::BadChannelCount {
                path: path.to_path_buf(),
                channels,
            });
        }
        let is_wave = short_name.contains("wav") || short_name.contains("riff");
        let exact_length = is_wave || params.codec == CODEC_ID_FLAC;

        // A PCM data chunk larger than the whole file is a lie we can see before decoding.
        if let (true, Some(frames), Some(bits)) = (is_wave, declared, params.bits_per_sample) {
            let bytes = frames
                .saturating_mul(channels as u64)
                .saturating_mul(u64::from(bits.div_ceil(8)));
            if bytes > file_len {
                let found = file_len / (channels as u64 * u64::from(bits.div_ceil(8)).max(1));
                return Err(AudioError::Truncated {
                    path: path.to_path_buf(),
                    declared: frames,
                    found,
                });
            }
        }

        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default())
            .map_err(|e| unsupported(format!("no decoder for this codec: {e}")))?;

        Ok(Self {
            path: path.to_path_buf(),
            format,
            decoder,
            track_id,
            info: AudioInfo {
                sample_rate: rate,
                channels,
                frames: declared,
                format: short_name,
                bits_per_sample: params.bits_per_sample,
            },
            options,
            decoded_frames: 0,
            exact_length,
            done: false,
        })
    }

    pub fn info(&self) -> &AudioInfo {
        &self.info
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Frames decoded so far.
    pub fn decoded_frames(&self) -> u64 {
        self.decoded_frames
    }

    fn corrupt(&self, reason: String) -> AudioError {
        AudioError::Corrupt {
            path: self.path.clone(),
            reason,
        }
    }

    /// The next decoded chunk, `None` at the end of the stream. At the end, checks the
    /// decoded length against the header (truncation) and that there was any audio.
    pub fn next_chunk(&mut self) -> Result<Option<AudioBuffer>> {
        let mut planes = vec![Vec::new(); self.info.channels];
        match self.next_into(&mut planes)? {
            Some(_) => AudioBuffer::new(self.info.sample_rate, planes).map(Some),
            None => Ok(None),
        }
    }

    /// Decode the next packet onto the ends of `planes` (one per channel, equal
    /// lengths): the number of frames added, `None` at the end of the stream (with the
    /// checks of [`Self::next_chunk`]).
    fn next_into(&mut self, planes: &mut [Vec<f32>]) -> Result<Option<usize>> {
        if self.done {
            return Ok(None);
        }
        super::cancel::check()?;
        loop {
            let packet = match self.format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return self.finish().map(|()| None),
                // A short read at the end of the data is how truncation shows up.
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return self.finish().map(|()| None);
                }
                Err(SymError::ResetRequired) => return self.finish().map(|()| None),
                Err(e) => return Err(self.corrupt(format!("cannot read packet: {e}"))),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(buf) => buf,
                // Lossy streams may carry a damaged frame; skip it as players do.
                Err(SymError::DecodeError(_)) if !self.exact_length => continue,
                Err(e) => return Err(self.corrupt(format!("cannot decode packet: {e}"))),
            };
            let channels = decoded.spec().channels().count();
            if channels != self.info.channels || channels != planes.len() {
                return Err(self.corrupt(format!(
                    "channel count changed mid-stream from {} to {channels}",
                    self.info.channels
                )));
            }
            let frames = decoded.frames();
            if frames == 0 {
                continue;
            }
            let start_frame = self.decoded_frames;
            self.decoded_frames += frames as u64;
            // Straight into the destination planes: no interleaved or per-packet copy.
            let old = planes.first().map_or(0, Vec::len);
            let mut tails: Vec<&mut [f32]> = planes
                .iter_mut()
                .map(|p| {
                    p.resize(old + frames, 0.0);
                    &mut p[old..]
                })
                .collect();
            decoded.copy_to_slice_planar(&mut tails);
            // Only float formats can hold NaN or Inf; one scan finds out.
            if tails.iter().any(|t| t.iter().any(|s| !s.is_finite())) {
                self.non_finite(&mut tails, start_frame)?;
            }
            return Ok(Some(frames));
        }
    }

    /// Apply the non-finite policy to freshly decoded planes: reject naming the first
    /// bad sample in time order (lowest channel first), or sanitize them all.
    fn non_finite(&self, tails: &mut [&mut [f32]], start_frame: u64) -> Result<()> {
        match self.options.non_finite {
            NonFinitePolicy::Reject => {
                let first = tails
                    .iter()
                    .enumerate()
                    .filter_map(|(c, t)| t.iter().position(|s| !s.is_finite()).map(|i| (i, c)))
                    .min();
                match first {
                    Some((i, c)) => Err(AudioError::NonFinite {
                        path: self.path.clone(),
                        channel: c,
                        frame: start_frame + i as u64,
                        value: tails[c][i],
                    }),
                    None => Ok(()),
                }
            }
            NonFinitePolicy::Sanitize => {
                for s in tails.iter_mut().flat_map(|t| t.iter_mut()) {
                    if !s.is_finite() {
                        *s = sanitize(*s);
                    }
                }
                Ok(())
            }
        }
    }

    fn finish(&mut self) -> Result<()> {
        self.done = true;
        if self.decoded_frames == 0 {
            return Err(AudioError::Empty {
                path: self.path.clone(),
            });
        }
        if let (true, Some(declared)) = (self.exact_length, self.info.frames)
            && self.decoded_frames < declared
        {
            return Err(AudioError::Truncated {
                path: self.path.clone(),
                declared,
                found: self.decoded_frames,
            });
        }
        Ok(())
    }
}

fn sanitize(s: f32) -> f32 {
    if s.is_nan() {
        0.0
    } else if s > 0.0 {
        1.0
    } else {
        -1.0
    }
}

/// Read a whole file into memory with the default options.
pub fn decode_file(path: &Path) -> Result<AudioBuffer> {
    decode_file_with(path, DecodeOptions::default())
}

/// Read a whole file into memory, enforcing `options.max_samples` before allocating
/// (from the header) and while decoding (for formats without a declared length).
pub fn decode_file_with(path: &Path, options: DecodeOptions) -> Result<AudioBuffer> {
    let mut reader = AudioReader::open(path, options)?;
    let info = reader.info().clone();
    let too_large = |samples: u64| AudioError::TooLarge {
        path: path.to_path_buf(),
        samples,
        limit: options.max_samples,
    };
    let mut capacity = 0usize;
    if let Some(frames) = info.frames {
        let samples = frames.saturating_mul(info.channels as u64);
        if samples > options.max_samples {
            return Err(too_large(samples));
        }
        capacity = frames as usize;
    }
    let mut planes: Vec<Vec<f32>> = vec![Vec::with_capacity(capacity); info.channels];
    while reader.next_into(&mut planes)?.is_some() {
        let samples = reader.decoded_frames().saturating_mul(info.channels as u64);
        if samples > options.max_samples {
            return Err(too_large(samples));
        }
    }
    // A header may overstate the length of a lossy stream; the decoded length wins.
    AudioBuffer::new(info.sample_rate, planes)
}
