//! Playback through the system's audio output (cpal).
//!
//! Two halves that share no lock:
//! - [`Renderer`] lives on the device's real-time thread. [`Renderer::render`] fills one
//!   buffer: it takes the commands that arrived (an rtrb ring), copies samples of the active
//!   clip and publishes the position through atomics. It never locks, allocates or frees;
//!   clips it lets go of travel back to the UI side through a second ring to be dropped there.
//! - [`Controller`] is the UI's side: play, pause, stop, seek, loop a range, load a clip
//!   into slot A or B and switch between them at the same position (A/B comparison).
//!
//! [`Player::open`] connects the two to the default output device. Clips are resampled to
//! the device's rate by [`Clip::prepare`] before they are handed over, never in the callback.
//! Without an output device `open` fails with a [`PlaybackError`] that says why.

mod device;
mod render;

pub use device::Player;
pub use render::{Clip, Controller, Renderer, Slot, channel};

/// Why playback is not available or a clip cannot be played.
#[derive(Debug, thiserror::Error)]
pub enum PlaybackError {
    #[error("no audio output device (audio system: {host})")]
    NoDevice { host: String },
    #[error("no audio output device is available ({device}: {reason})")]
    Unavailable { device: String, reason: String },
    #[error("the audio output device {device} has no usable configuration: {reason}")]
    Config { device: String, reason: String },
    #[error("the audio output device {device} uses sample format {format}, which is not supported")]
    SampleFormat { device: String, format: String },
    #[error("the audio output device {device} cannot be opened: {reason}")]
    Stream { device: String, reason: String },
    #[error("the clip cannot be prepared for playback: {0}")]
    Clip(#[from] super::AudioError),
}
