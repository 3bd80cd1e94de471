//! Audio artifacts: how step results refer to audio they produced.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A reference to an audio file a step produced. Artifacts between steps are 32-bit float
/// WAV, so nothing is quantised until an `export` chooses a bit depth. Every
/// audio-consuming operation accepts one in place of a file path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioArtifact {
    pub path: PathBuf,
    pub sample_rate: u32,
    pub channels: u16,
    /// Seconds.
    pub duration: f64,
    /// BLAKE3 of the file's bytes, hex; what the cache keys on instead of the path.
    pub hash: String,
}
