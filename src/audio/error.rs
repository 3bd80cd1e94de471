//! Errors of the audio layer. Every file-related variant names the file, so a message
//! shown to a user says which input is broken and how.

use std::path::PathBuf;

/// What went wrong reading, writing or processing audio.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The work was cancelled (see [`super::cancel`]).
    #[error("cancelled")]
    Cancelled,
    #[error("{path}: cannot open or read: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a supported audio file ({reason})", path = .path.display())]
    UnsupportedFormat { path: PathBuf, reason: String },
    #[error("{path}: corrupt audio data: {reason}", path = .path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{path}: truncated: the header declares {declared} frames but the file holds only {found}",
        path = .path.display()
    )]
    Truncated {
        path: PathBuf,
        declared: u64,
        found: u64,
    },
    #[error("{path}: contains no audio (zero frames)", path = .path.display())]
    Empty { path: PathBuf },
    #[error(
        "{path}: sample {frame} of channel {channel} is {value} (NaN/Inf samples are rejected)",
        path = .path.display()
    )]
    NonFinite {
        path: PathBuf,
        channel: usize,
        frame: u64,
        value: f32,
    },
    #[error(
        "{path}: unsupported channel count {channels} (1 to {max} are accepted)",
        path = .path.display(),
        max = super::MAX_CHANNELS
    )]
    BadChannelCount { path: PathBuf, channels: usize },
    #[error(
        "{path}: unsupported sample rate {rate} Hz ({min} to {max} Hz are accepted)",
        path = .path.display(),
        min = super::MIN_SAMPLE_RATE,
        max = super::MAX_SAMPLE_RATE
    )]
    BadSampleRate { path: PathBuf, rate: u64 },
    #[error(
        "{path}: too large to load: {samples} samples exceed the limit of {limit} \
         ({limit_mib} MiB of f32); process it with the streaming transforms instead",
        path = .path.display(),
        limit_mib = .limit * 4 / (1024 * 1024)
    )]
    TooLarge {
        path: PathBuf,
        samples: u64,
        limit: u64,
    },
    #[error("{path}: cannot write: {reason}", path = .path.display())]
    Write { path: PathBuf, reason: String },
    /// A problem with in-memory audio or parameters, not tied to a file.
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, AudioError>;
