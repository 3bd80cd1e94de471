//! Fundamental frequency by YIN, computed as `librosa.yin` computes it (frame 2048,
//! hop 512, centred with zero padding, trough threshold 0.1), plus a voicing rule:
//! a frame is **voiced** when its cumulative-mean-normalised difference has a trough
//! below the threshold (librosa's yin falls back to the global minimum for the others,
//! which is not a pitch). The figure is the median f0 over voiced frames.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::spectral::{fast_len, median, par_ranges, parabolic_shifts};

/// YIN parameters. Defaults: 65.4–2093 Hz (C2–C7), frame 2048, hop 512, threshold 0.1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YinParams {
    pub fmin: f64,
    pub fmax: f64,
    pub frame_length: usize,
    pub hop_length: usize,
    pub trough_threshold: f64,
}

impl Default for YinParams {
    fn default() -> Self {
        Self {
            fmin: 65.406_391_325_149_66,
            fmax: 2_093.004_522_404_789,
            frame_length: 2048,
            hop_length: 512,
            trough_threshold: 0.1,
        }
    }
}

/// Per-frame YIN result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YinFrame {
    pub f0: f64,
    pub voiced: bool,
}

struct Acf {
    fwd: Arc<dyn RealToComplex<f32>>,
    inv: Arc<dyn ComplexToReal<f32>>,
    buf: Vec<f32>,
    spec: Vec<Complex<f32>>,
}

/// f0 track of a mono signal.
pub fn yin(y: &[f32], sr: f64, p: &YinParams) -> Vec<YinFrame> {
    let n = p.frame_length;
    let min_period = (sr / p.fmax).floor() as usize;
    let max_period = ((sr / p.fmin).ceil() as usize).min(n - 1);
    if min_period < 1 || min_period >= max_period || n < 4 {
        return Vec::new();
    }
    let frames = 1 + y.len() / p.hop_length;
    par_ranges(frames, |range| {
        yin_range(y, sr, p, range, min_period, max_period)
    })
    .into_iter()
    .flatten()
    .collect()
}

fn yin_range(
    y: &[f32],
    sr: f64,
    p: &YinParams,
    range: std::ops::Range<usize>,
    min_period: usize,
    max_period: usize,
) -> Vec<YinFrame> {
    let n = p.frame_length;
    // Lags up to max_period of a length-n frame need a transform of at least
    // n + max_period points to avoid wrap-around (librosa uses >= 2n - 1; same values).
    let n_pad = fast_len(n + max_period);
    let mut planner = RealFftPlanner::<f32>::new();
    let fwd = planner.plan_fft_forward(n_pad);
    let inv = planner.plan_fft_inverse(n_pad);
    let mut acf = Acf {
        buf: fwd.make_input_vec(),
        spec: fwd.make_output_vec(),
        fwd,
        inv,
    };
    let half = n / 2;
    let mut d = vec![0.0f64; max_period + 1];
    let mut cmndf = Vec::with_capacity(max_period + 1);
    let mut out = Vec::with_capacity(range.len());
    for t in range {
        // The centred frame is y[start .. start + n] with zeros outside the signal.
        let start = (t * p.hop_length) as isize - half as isize;
        let lo = start.clamp(0, y.len() as isize) as usize;
        let hi = (start + n as isize).clamp(0, y.len() as isize) as usize;
        let offset = (lo as isize - start) as usize;
        acf.buf.iter_mut().for_each(|v| *v = 0.0);
        acf.buf[offset..offset + (hi - lo)].copy_from_slice(&y[lo..hi]);
        let frame_at = |i: usize| f64::from(acf.buf[i]);
        let mut energy = frame_at(0) * frame_at(0); // sum of x_i^2 for i <= k-1
        // Difference function as librosa writes it: d[k] = 2(r0 - r_k) - c[k-1], with
        // c[0] = 0 and c[j] the running energy of the frame. The energies are taken
        // before the transform overwrites the buffer.
        for (k, dk) in d.iter_mut().enumerate().skip(1) {
            *dk = -(if k == 1 { 0.0 } else { energy });
            energy += frame_at(k) * frame_at(k);
        }
        // Autocorrelation by FFT: f32 transforms, the difference function in f64.
        let _ = acf.fwd.process(&mut acf.buf, &mut acf.spec);
        for c in acf.spec.iter_mut() {
            *c = Complex::new(c.norm_sqr(), 0.0);
        }
        let _ = acf.inv.process(&mut acf.spec, &mut acf.buf);
        let scale = 1.0 / n_pad as f64;
        let r0 = f64::from(acf.buf[0]) * scale;
        for (k, dk) in d.iter_mut().enumerate().skip(1) {
            *dk += 2.0 * (r0 - f64::from(acf.buf[k]) * scale);
        }
        // Cumulative mean normalised difference over periods min..=max.
        let mut running = 0.0;
        cmndf.clear();
        for (tau, &dk) in d.iter().enumerate().skip(1) {
            running += dk;
            if tau >= min_period {
                let mean = running / tau as f64;
                cmndf.push(dk / (mean + f64::from(f32::MIN_POSITIVE)));
            }
        }
        let m = cmndf.len();
        let is_trough = |i: usize| -> bool {
            if i == 0 {
                cmndf[0] < cmndf[1]
            } else {
                let next = if i + 1 < m { cmndf[i + 1] } else { cmndf[i] };
                cmndf[i] < cmndf[i - 1] && cmndf[i] <= next
            }
        };
        let first = (0..m).find(|&i| cmndf[i] < p.trough_threshold && is_trough(i));
        let idx = first.unwrap_or_else(|| {
            let mut best = 0;
            for i in 1..m {
                if cmndf[i] < cmndf[best] {
                    best = i;
                }
            }
            best
        });
        let shift = if idx == 0 || idx + 1 >= m {
            0.0
        } else {
            parabolic_shifts(&cmndf[idx - 1..=idx + 1])[1]
        };
        let period = min_period as f64 + idx as f64 + shift;
        out.push(YinFrame {
            f0: sr / period,
            voiced: first.is_some(),
        });
    }
    out
}

/// Median f0 over voiced frames; `None` when no frame is voiced.
pub fn median_f0(y: &[f32], sr: f64, p: &YinParams) -> Option<f64> {
    let mut voiced: Vec<f64> = yin(y, sr, p)
        .into_iter()
        .filter(|f| f.voiced && f.f0.is_finite())
        .map(|f| f.f0)
        .collect();
    median(&mut voiced)
}
