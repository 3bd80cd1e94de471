//! The connection to the default output device through cpal.

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{ErrorKind, FromSample, SampleFormat, SizedSample, StreamConfig};
use crossbeam_channel::{Receiver, Sender};

use super::PlaybackError;
use super::render::{Controller, Renderer, channel};

/// Frames rendered at a time for devices that do not take f32; the buffer is allocated
/// once, before the stream starts.
const SCRATCH_FRAMES: usize = 4096;

/// An open output stream and the controller that drives it. Dropping it closes the stream.
pub struct Player {
    controller: Controller,
    device: String,
    errors: Receiver<String>,
    _stream: cpal::Stream,
}

impl Player {
    /// Opens the default output device with its default configuration. May take a moment
    /// (the audio server is contacted); call it off the UI thread.
    pub fn open() -> Result<Player, PlaybackError> {
        let host = cpal::default_host();
        let device = host
            .default_output_device()
            .ok_or_else(|| PlaybackError::NoDevice {
                host: host.id().to_string(),
            })?;
        let name = device
            .description()
            .map(|d| d.name().to_string())
            .unwrap_or_else(|_| "default".to_string());
        let supported = device.default_output_config().map_err(|e| match e.kind() {
            // The usual case on a machine without sound hardware.
            ErrorKind::DeviceNotAvailable | ErrorKind::HostUnavailable => {
                PlaybackError::Unavailable {
                    device: name.clone(),
                    reason: e.to_string(),
                }
            }
            _ => PlaybackError::Config {
                device: name.clone(),
                reason: e.to_string(),
            },
        })?;
        let config: StreamConfig = supported.config();
        let (controller, renderer) = channel(config.sample_rate, usize::from(config.channels));
        let (err_tx, errors) = crossbeam_channel::bounded(16);
        let stream = match supported.sample_format() {
            SampleFormat::F32 => build::<f32>(&device, &config, renderer, err_tx),
            SampleFormat::F64 => build::<f64>(&device, &config, renderer, err_tx),
            SampleFormat::I16 => build::<i16>(&device, &config, renderer, err_tx),
            SampleFormat::I32 => build::<i32>(&device, &config, renderer, err_tx),
            SampleFormat::U16 => build::<u16>(&device, &config, renderer, err_tx),
            SampleFormat::I8 => build::<i8>(&device, &config, renderer, err_tx),
            SampleFormat::U8 => build::<u8>(&device, &config, renderer, err_tx),
            other => {
                return Err(PlaybackError::SampleFormat {
                    device: name,
                    format: other.to_string(),
                });
            }
        }
        .map_err(|e| PlaybackError::Stream {
            device: name.clone(),
            reason: e.to_string(),
        })?;
        stream.play().map_err(|e| PlaybackError::Stream {
            device: name.clone(),
            reason: e.to_string(),
        })?;
        Ok(Player {
            controller,
            device: name,
            errors,
            _stream: stream,
        })
    }

    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    pub fn controller_mut(&mut self) -> &mut Controller {
        &mut self.controller
    }

    /// The device's name, as the audio system describes it.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// An error the stream reported since the last call (a device unplugged, an underrun).
    pub fn take_error(&self) -> Option<String> {
        self.errors.try_recv().ok()
    }
}

fn build<T>(
    device: &cpal::Device,
    config: &StreamConfig,
    mut renderer: Renderer,
    errors: Sender<String>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32> + 'static,
{
    let channels = renderer.out_channels();
    let mut scratch = vec![0.0f32; SCRATCH_FRAMES * channels];
    device.build_output_stream::<T, _, _>(
        *config,
        move |data: &mut [T], _| {
            for chunk in data.chunks_mut(scratch.len()) {
                let buf = &mut scratch[..chunk.len()];
                renderer.render(buf);
                for (o, &s) in chunk.iter_mut().zip(buf.iter()) {
                    *o = T::from_sample(s);
                }
            }
        },
        move |e| {
            // Bounded and non-blocking: a flood of errors drops the surplus.
            let _ = errors.try_send(e.to_string());
        },
        None,
    )
}
