//! STFT framing and the filter banks librosa uses (Slaney mel, chroma), built exactly as
//! librosa 0.11 builds them so that our figures can be checked against it.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

/// Periodic Hann window (`scipy.signal.get_window('hann', n, fftbins=True)`).
pub fn hann_periodic(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos()) as f32)
        .collect()
}

/// Number of frames of a centred STFT: `1 + len / hop`.
pub fn centered_frames(len: usize, hop: usize) -> usize {
    1 + len / hop
}

/// Magnitude STFT, one frame at a time, with librosa's `center=True, pad_mode="constant"`
/// (the signal is zero-padded by `n_fft / 2` on both sides).
pub struct Stft {
    n_fft: usize,
    hop: usize,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    input: Vec<f32>,
    spectrum: Vec<realfft::num_complex::Complex<f32>>,
    scratch: Vec<realfft::num_complex::Complex<f32>>,
}

impl Stft {
    pub fn new(n_fft: usize, hop: usize) -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        let input = fft.make_input_vec();
        let spectrum = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        Self {
            n_fft,
            hop,
            window: hann_periodic(n_fft),
            fft,
            input,
            spectrum,
            scratch,
        }
    }

    pub fn n_bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Magnitudes of frame `t` of `y` into `mag` (length `n_bins`).
    pub fn magnitude(&mut self, y: &[f32], t: usize, mag: &mut [f32]) {
        let half = self.n_fft / 2;
        // Frame t covers padded samples [t*hop, t*hop + n_fft) = y[t*hop - half ..].
        let start = (t * self.hop) as isize - half as isize;
        for (i, (dst, &w)) in self.input.iter_mut().zip(&self.window).enumerate() {
            let j = start + i as isize;
            *dst = if j >= 0 && (j as usize) < y.len() {
                y[j as usize] * w
            } else {
                0.0
            };
        }
        // Lengths are fixed at construction, so the transform cannot fail.
        let _ =
            self.fft
                .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch);
        // sqrt(re² + im²) rather than hypot: same value at these magnitudes, much faster.
        for (m, c) in mag.iter_mut().zip(&self.spectrum) {
            *m = (c.re * c.re + c.im * c.im).sqrt();
        }
    }
}

/// Centre frequency of each FFT bin.
pub fn fft_frequencies(sr: f64, n_fft: usize) -> Vec<f64> {
    (0..=n_fft / 2)
        .map(|k| k as f64 * sr / n_fft as f64)
        .collect()
}

fn hz_to_mel_slaney(f: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if f >= min_log_hz {
        min_log_mel + (f / min_log_hz).ln() / logstep
    } else {
        f / f_sp
    }
}

fn mel_to_hz_slaney(m: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if m >= min_log_mel {
        min_log_hz * (logstep * (m - min_log_mel)).exp()
    } else {
        f_sp * m
    }
}

/// `librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm='slaney')`, as
/// `n_mels` rows of `n_fft/2+1` weights (float32 like librosa's default dtype).
pub fn mel_filterbank(sr: f64, n_fft: usize, n_mels: usize, fmin: f64, fmax: f64) -> Vec<Vec<f32>> {
    let fftfreqs = fft_frequencies(sr, n_fft);
    let (mmin, mmax) = (hz_to_mel_slaney(fmin), hz_to_mel_slaney(fmax));
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz_slaney(mmin + (mmax - mmin) * i as f64 / (n_mels + 1) as f64))
        .collect();
    (0..n_mels)
        .map(|i| {
            let enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
            let (fd0, fd1) = (mel_f[i + 1] - mel_f[i], mel_f[i + 2] - mel_f[i + 1]);
            fftfreqs
                .iter()
                .map(|&f| {
                    let lower = -(mel_f[i] - f) / fd0;
                    let upper = (mel_f[i + 2] - f) / fd1;
                    (0.0f64.max(lower.min(upper)) * enorm) as f32
                })
                .collect()
        })
        .collect()
}

/// `librosa.core.convert.hz_to_octs` with tuning offset in fractions of a bin.
pub fn hz_to_octs(f: f64, tuning: f64, bins_per_octave: usize) -> f64 {
    let a440 = 440.0 * 2f64.powf(tuning / bins_per_octave as f64);
    (f / (a440 / 16.0)).log2()
}

/// `librosa.filters.chroma(sr, n_fft, tuning, n_chroma=12)` with its defaults
/// (ctroct 5, octwidth 2, norm 2, base_c), `n_chroma` rows of `n_fft/2+1` weights.
pub fn chroma_filterbank(sr: f64, n_fft: usize, tuning: f64) -> Vec<Vec<f32>> {
    let n_chroma = 12usize;
    let nc = n_chroma as f64;
    let mut frqbins = Vec::with_capacity(n_fft);
    for k in 1..n_fft {
        let f = sr * k as f64 / n_fft as f64;
        frqbins.push(nc * hz_to_octs(f, tuning, n_chroma));
    }
    frqbins.insert(0, frqbins[0] - 1.5 * nc);
    let mut binwidth: Vec<f64> = frqbins.windows(2).map(|w| (w[1] - w[0]).max(1.0)).collect();
    binwidth.push(1.0);
    let n_chroma2 = (nc / 2.0).round();
    let mut wts = vec![vec![0.0f64; n_fft]; n_chroma];
    for (c, row) in wts.iter_mut().enumerate() {
        for (k, w) in row.iter_mut().enumerate() {
            let d = (frqbins[k] - c as f64 + n_chroma2 + 10.0 * nc).rem_euclid(nc) - n_chroma2;
            *w = (-0.5 * (2.0 * d / binwidth[k]).powi(2)).exp();
        }
    }
    // Normalise each column (FFT bin) to unit L2 norm.
    for k in 0..n_fft {
        let norm = wts.iter().map(|r| r[k] * r[k]).sum::<f64>().sqrt();
        if norm > f64::MIN_POSITIVE {
            for r in wts.iter_mut() {
                r[k] /= norm;
            }
        }
    }
    for (k, fb) in frqbins.iter().enumerate() {
        let scale = (-0.5 * ((fb / nc - 5.0) / 2.0).powi(2)).exp();
        for r in wts.iter_mut() {
            r[k] *= scale;
        }
    }
    // base_c: roll by -3 so that row 0 is C.
    wts.rotate_left(3);
    wts.into_iter()
        .map(|r| r[..=n_fft / 2].iter().map(|&v| v as f32).collect())
        .collect()
}

/// Orthonormal DCT-II of `x`, first `n_out` coefficients (`scipy.fft.dct(norm='ortho')`).
pub fn dct2_ortho(x: &[f64], n_out: usize) -> Vec<f64> {
    let n = x.len() as f64;
    (0..n_out)
        .map(|k| {
            let s: f64 = x
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    v * (std::f64::consts::PI * k as f64 * (2.0 * i as f64 + 1.0) / (2.0 * n)).cos()
                })
                .sum();
            s * if k == 0 {
                (1.0 / n).sqrt()
            } else {
                (2.0 / n).sqrt()
            }
        })
        .collect()
}

/// Parabolic-interpolation shift at each index (librosa's `_parabolic_interpolation`):
/// 0 at the ends and where the vertex lies more than one bin away.
pub fn parabolic_shifts(x: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for i in 1..x.len().saturating_sub(1) {
        let a = x[i + 1] + x[i - 1] - 2.0 * x[i];
        let b = (x[i + 1] - x[i - 1]) / 2.0;
        out[i] = if b.abs() >= a.abs() { 0.0 } else { -b / a };
    }
    out
}

/// Median as numpy computes it (mean of the two middle values for even lengths).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    })
}

/// Power mel spectrogram (`librosa.feature.melspectrogram` defaults: power 2, Slaney
/// mel from 0 to sr/2), one `n_mels` row per frame.
pub fn mel_power_frames(
    y: &[f32],
    sr: f64,
    n_fft: usize,
    hop: usize,
    n_mels: usize,
) -> Vec<Vec<f32>> {
    let bank = SparseBank::new(&mel_filterbank(sr, n_fft, n_mels, 0.0, sr / 2.0));
    par_ranges(centered_frames(y.len(), hop), |range| {
        let mut stft = Stft::new(n_fft, hop);
        let mut mag = vec![0.0f32; stft.n_bins()];
        let mut power = vec![0.0f32; stft.n_bins()];
        range
            .map(|t| {
                stft.magnitude(y, t, &mut mag);
                for (p, m) in power.iter_mut().zip(&mag) {
                    *p = m * m;
                }
                bank.apply(&power)
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Dot product with eight independent accumulators, so the compiler can vectorise it
/// (a plain iterator sum must keep the sequential f32 rounding order).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// Filter bank × spectrum (dense; chroma filters cover every bin).
pub fn apply_bank(bank: &[Vec<f32>], spectrum: &[f32]) -> Vec<f32> {
    bank.iter().map(|w| dot(w, spectrum)).collect()
}

/// A filter bank stored as the non-zero span of each filter: mel filters are triangles,
/// so this does ~2 multiply-adds per bin instead of one per bin per filter.
pub struct SparseBank {
    rows: Vec<(usize, Vec<f32>)>,
}

impl SparseBank {
    pub fn new(bank: &[Vec<f32>]) -> Self {
        let rows = bank
            .iter()
            .map(|w| {
                let start = w.iter().position(|&v| v != 0.0).unwrap_or(0);
                let end = w.iter().rposition(|&v| v != 0.0).map_or(start, |e| e + 1);
                (start, w[start..end].to_vec())
            })
            .collect();
        Self { rows }
    }

    pub fn apply(&self, spectrum: &[f32]) -> Vec<f32> {
        self.rows
            .iter()
            .map(|(start, w)| dot(w, &spectrum[*start..]))
            .collect()
    }
}

/// `librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=80.0)` over the whole matrix.
pub fn power_to_db(frames: &mut [Vec<f32>]) {
    let mut max = f32::NEG_INFINITY;
    for row in frames.iter_mut() {
        for v in row.iter_mut() {
            *v = 10.0 * v.max(1e-10).log10();
            max = max.max(*v);
        }
    }
    let floor = max - 80.0;
    for row in frames.iter_mut() {
        for v in row.iter_mut() {
            *v = v.max(floor);
        }
    }
}

/// Split `0..n` into one contiguous range per available core, run `f` on each in a
/// scoped thread, and return the results in range order. Frame-wise analyses are
/// independent, so this parallelises them without changing any per-frame arithmetic.
pub fn par_ranges<T: Send>(n: usize, f: impl Fn(std::ops::Range<usize>) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .clamp(1, 8)
        .min(n.max(1));
    if threads <= 1 {
        return vec![f(0..n)];
    }
    let per = n.div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let range = (i * per).min(n)..((i + 1) * per).min(n);
                s.spawn(move || f(range))
            })
            .collect();
        // A panic in a worker is a bug in this module; re-raise it on the caller.
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Smallest length >= n of the form 2^a·3^b (fast for the FFT).
pub fn fast_len(n: usize) -> usize {
    let mut best = n.next_power_of_two();
    let mut p3 = 1usize;
    while p3 < best {
        let mut v = p3;
        while v < n {
            v *= 2;
        }
        best = best.min(v);
        p3 *= 3;
    }
    best
}
