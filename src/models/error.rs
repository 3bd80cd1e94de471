use std::path::PathBuf;

/// Why a model could not be found, loaded or run. Every variant names what the user can fix:
/// the model, the file and, for weights, the tensor.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("`{0}` is neither a local model directory nor a Hub id like `owner/name`")]
    InvalidSpec(String),
    #[error("model directory {} does not exist", .0.display())]
    MissingDirectory(PathBuf),
    #[error("model `{model}` has no file `{file}`")]
    MissingFile { model: String, file: String },
    #[error(
        "model `{model}`: `{file}` is not in the local Hub cache and offline mode is on \
         (HF_HUB_OFFLINE); fetch it first with `grym-synth models fetch {model}`"
    )]
    Offline { model: String, file: String },
    #[error("model `{model}`: could not fetch `{file}` from the Hugging Face Hub: {message}")]
    Hub {
        model: String,
        file: String,
        message: String,
    },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", .path.display())]
    Config { path: PathBuf, message: String },
    #[error("device: {0}")]
    Device(String),
    #[error("{0}")]
    Input(String),
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl ModelError {
    pub fn config(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        ModelError::Config {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

/// Reads a JSON configuration file, naming the file and position of any error.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ModelError::config(path, e))
}
