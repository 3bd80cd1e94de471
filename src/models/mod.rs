//! Neural models on candle (Wav2Vec2, AudioLDM) and what they share: where checkpoints come
//! from ([`repo`]), which device runs them ([`device`]), weights whose errors name the file
//! and tensor ([`weights`]), and models loaded once per process ([`shared`]).

pub mod audioldm;
pub mod device;
pub mod error;
pub mod kernels;
pub mod memory;
pub mod repo;
pub mod shared;
pub mod wav2vec2;
pub mod weights;

pub use device::DeviceChoice;
pub use error::ModelError;
pub use repo::{DownloadProgress, HubOptions, ModelRepo};
pub use shared::SharedModels;
