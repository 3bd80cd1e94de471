//! The spectrogram of what the view shows: one STFT frame per pixel column, magnitudes in
//! dB on a logarithmic frequency axis, coloured into an image. Computed on a background
//! thread for the visible range only, so it stays sharp at any zoom.

use egui::{Color32, ColorImage};

use crate::audio::AudioBuffer;
use crate::audio::spectral::Stft;

pub const N_FFT: usize = 2048;
/// dB below full scale shown as black.
const FLOOR_DB: f32 = -100.0;
const MIN_HZ: f64 = 20.0;

/// What a spectrogram image shows: `columns` frames centred on `start + (i + 0.5) × step`
/// samples, `rows` frequency rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpecRequest {
    pub data_id: u64,
    pub start: f64,
    pub step: f64,
    pub columns: usize,
    pub rows: usize,
}

/// Computes the image for `req` from `audio` (channels averaged).
pub fn compute(audio: &AudioBuffer, req: &SpecRequest) -> ColorImage {
    let columns = req.columns.max(1);
    let rows = req.rows.max(2);
    let sr = f64::from(audio.sample_rate());
    let frames = audio.frames();
    let planes = audio.channels();
    let scale = 1.0 / planes.len().max(1) as f32;
    let mut stft = Stft::new(N_FFT, 1);
    let mut window = vec![0.0f32; N_FFT];
    let mut mag = vec![0.0f32; stft.n_bins()];
    // Full-scale sine through a Hann window peaks at N_FFT / 4.
    let reference = N_FFT as f32 / 4.0;
    // Row r (from the bottom) covers bins between these edges, log-spaced.
    let max_hz = sr / 2.0;
    let edges: Vec<usize> = (0..=rows)
        .map(|r| {
            let f = MIN_HZ * (max_hz / MIN_HZ).powf(r as f64 / rows as f64);
            ((f * N_FFT as f64 / sr).round() as usize).min(N_FFT / 2)
        })
        .collect();
    let mut pixels = vec![Color32::BLACK; columns * rows];
    for col in 0..columns {
        let centre = req.start + (col as f64 + 0.5) * req.step;
        if centre < 0.0 || centre >= frames as f64 {
            continue;
        }
        let first = centre as isize - (N_FFT / 2) as isize;
        for (i, w) in window.iter_mut().enumerate() {
            let j = first + i as isize;
            *w = if j >= 0 && (j as usize) < frames {
                planes.iter().map(|p| p[j as usize]).sum::<f32>() * scale
            } else {
                0.0
            };
        }
        // Frame N_FFT/2 with hop 1 is exactly `window`.
        stft.magnitude(&window, N_FFT / 2, &mut mag);
        for r in 0..rows {
            let (lo, hi) = (edges[r], edges[r + 1].max(edges[r] + 1));
            let m = mag[lo.min(mag.len() - 1)..hi.min(mag.len())]
                .iter()
                .fold(0.0f32, |a, &b| a.max(b));
            let db = 20.0 * (m / reference).max(1e-12).log10();
            let t = ((db - FLOOR_DB) / -FLOOR_DB).clamp(0.0, 1.0);
            // Image row 0 is the top: high frequencies.
            pixels[(rows - 1 - r) * columns + col] = colormap(t);
        }
    }
    ColorImage::new([columns, rows], pixels)
}

/// Black → purple → red → yellow → white, perceptually ordered.
pub fn colormap(t: f32) -> Color32 {
    const STOPS: [[f32; 3]; 5] = [
        [0.0, 0.0, 0.02],
        [0.32, 0.07, 0.45],
        [0.78, 0.17, 0.31],
        [0.98, 0.62, 0.12],
        [0.99, 0.99, 0.75],
    ];
    let x = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f32;
    let i = (x as usize).min(STOPS.len() - 2);
    let f = x - i as f32;
    let c = |k: usize| {
        let v = STOPS[i][k] + (STOPS[i + 1][k] - STOPS[i][k]) * f;
        (v * 255.0).round() as u8
    };
    Color32::from_rgb(c(0), c(1), c(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sine_lights_its_row() {
        let sr = 16_000u32;
        let f = 1000.0f64;
        let x: Vec<f32> = (0..sr as usize)
            .map(|i| (2.0 * std::f64::consts::PI * f * i as f64 / f64::from(sr)).sin() as f32)
            .collect();
        let audio = AudioBuffer::new(sr, vec![x]).unwrap();
        let req = SpecRequest {
            data_id: 0,
            start: 0.0,
            step: 1600.0,
            columns: 10,
            rows: 64,
        };
        let img = compute(&audio, &req);
        assert_eq!(img.size, [10, 64]);
        // The brightest row of a middle column is the one that holds 1 kHz.
        let col = 5;
        let brightness = |r: usize| {
            let p = img.pixels[r * 10 + col];
            u32::from(p.r()) + u32::from(p.g()) + u32::from(p.b())
        };
        let brightest = (0..64).max_by_key(|&r| brightness(r)).unwrap();
        let from_bottom = 63 - brightest;
        let expected = ((f / MIN_HZ).ln() / (8000.0 / MIN_HZ).ln() * 64.0) as usize;
        assert!(
            from_bottom.abs_diff(expected) <= 1,
            "{from_bottom} vs {expected}"
        );
    }

    #[test]
    fn colormap_runs_dark_to_light() {
        let lum = |c: Color32| u32::from(c.r()) + u32::from(c.g()) + u32::from(c.b());
        assert!(lum(colormap(0.0)) < lum(colormap(0.5)));
        assert!(lum(colormap(0.5)) < lum(colormap(1.0)));
    }
}
