//! AudioLDM (text-to-audio and audio-to-audio latent diffusion), ported from diffusers'
//! `AudioLDMPipeline`: the CLAP text encoder ([`text`]), the UNet conditioned on the text
//! embedding as a class label ([`unet`]), the spectrogram autoencoder ([`vae`]), the
//! HiFi-GAN vocoder ([`vocoder`]), the DDIM and DPM-Solver++ schedulers ([`scheduler`]) and
//! the pipeline that runs them ([`pipeline`]). The UNet and the VAE share their blocks
//! (`blocks`), which run on the CPU kernels of [`crate::models::kernels`].

mod blocks;
pub mod noise;
pub mod pipeline;
pub mod scheduler;
pub mod text;
pub mod unet;
pub mod vae;
pub mod vocoder;

pub use pipeline::{AudioLdm, GenerateRequest, Generated, Hooks, Settings, SourceAudio};
pub use scheduler::{Scheduler, SchedulerConfig};
