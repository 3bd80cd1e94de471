//! STFT framing and the filter banks librosa uses (Slaney mel, chroma), built exactly as
//! librosa 0.11 builds them so that our figures can be checked against it.

use std::sync::Arc;

use realfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

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

/// Magnitude STFT with librosa's `center=True, pad_mode="constant"` (the signal is
/// zero-padded by `n_fft / 2` on both sides), two frames per transform.
pub struct Stft {
    n_fft: usize,
    hop: usize,
    window: Vec<f32>,
    pair: RealPair,
    frames: [Vec<f32>; 2],
}

impl Stft {
    pub fn new(n_fft: usize, hop: usize) -> Self {
        Self {
            n_fft,
            hop,
            window: hann_periodic(n_fft),
            pair: RealPair::new(n_fft),
            frames: [vec![0.0; n_fft], vec![0.0; n_fft]],
        }
    }

    pub fn n_bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Magnitudes of frame `t` of `y` into `mag` (length `n_bins`).
    #[inline(always)]
    pub fn magnitude(&mut self, y: &[f32], t: usize, mag: &mut [f32]) {
        self.magnitudes(y, t, mag, None);
    }

    /// Magnitudes of frames `t` and, when `second` is given, `t + 1`: both frames are
    /// windowed straight into one complex transform.
    #[inline(always)]
    pub fn magnitudes(
        &mut self,
        y: &[f32],
        t: usize,
        first: &mut [f32],
        second: Option<&mut [f32]>,
    ) {
        let n = self.n_fft;
        let half = (n / 2) as isize;
        let start = (t * self.hop) as isize - half;
        let paired = second.is_some();
        let buf = self.pair.input();
        let inside = |s: isize| s >= 0 && s as usize + n <= y.len();
        if inside(start) && (!paired || inside(start + self.hop as isize)) {
            let a = &y[start as usize..start as usize + n];
            if paired {
                let s = start as usize + self.hop;
                let b = &y[s..s + n];
                for (((z, &x), &v), &w) in buf.iter_mut().zip(a).zip(b).zip(&self.window) {
                    *z = Complex::new(x * w, v * w);
                }
            } else {
                for ((z, &x), &w) in buf.iter_mut().zip(a).zip(&self.window) {
                    *z = Complex::new(x * w, 0.0);
                }
            }
        } else {
            // Frames reaching past either end of the signal (zero padding).
            let [fa, fb] = &mut self.frames;
            load_frame(&self.window, self.hop, y, t, fa);
            if paired {
                load_frame(&self.window, self.hop, y, t + 1, fb);
            } else {
                fb.iter_mut().for_each(|v| *v = 0.0);
            }
            for ((z, &x), &v) in buf.iter_mut().zip(fa.iter()).zip(fb.iter()) {
                *z = Complex::new(x, v);
            }
        }
        let (ea, eb) = complex_energies(buf);
        let mut none: [f32; 0] = [];
        let second = second.unwrap_or(&mut none);
        self.pair.forward_loaded(ea, eb, Some((first, second)));
    }
}

/// Windowed frame `t` of `y` into `out` (length n_fft). Frame t covers padded samples
/// [t*hop, t*hop + n_fft) = y[t*hop - n_fft/2 ..]; outside the signal is zeros.
#[inline(always)]
fn load_frame(window: &[f32], hop: usize, y: &[f32], t: usize, out: &mut [f32]) {
    let n_fft = window.len();
    let start = (t * hop) as isize - (n_fft / 2) as isize;
    let lo = start.clamp(0, y.len() as isize) as usize;
    let hi = (start + n_fft as isize).clamp(0, y.len() as isize) as usize;
    let offset = (lo as isize - start) as usize;
    let (head, rest) = out.split_at_mut(offset);
    head.iter_mut().for_each(|v| *v = 0.0);
    let (body, tail) = rest.split_at_mut(hi - lo);
    for ((dst, &x), &w) in body.iter_mut().zip(&y[lo..hi]).zip(&window[offset..]) {
        *dst = x * w;
    }
    tail.iter_mut().for_each(|v| *v = 0.0);
}

/// Two real transforms of length `n` for the price of one complex FFT: `a + i·b` is
/// transformed and the two spectra are separated by Hermitian symmetry (and the other
/// way for the inverse). A real FFT costs about as much as a complex one of the same
/// length, so this halves the transform work of frame-by-frame analyses.
///
/// The rounding error of the shared transform follows the larger of the two signals,
/// so the weaker one is first scaled by a power of two (exact) to a comparable
/// energy, and an all-zero input gives an exact zero spectrum. Each spectrum is then as
/// accurate as from a transform of its own, within a factor of about √2.
pub struct RealPair {
    n: usize,
    fwd: Arc<dyn Fft<f32>>,
    inv: Arc<dyn Fft<f32>>,
    buf: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// Spectra of the last [`RealPair::forward`], bins `0..=n/2`: real and imaginary
    /// parts of `a`, then of `b`.
    pub spec: [Vec<f32>; 4],
}

/// Largest power-of-two scaling between the two signals of a pair; beyond it (energies
/// 2^120 apart) they are transformed separately.
const MAX_PAIR_SCALE_EXP: i32 = 60;

/// Energy of a signal, to choose a pairing scale (eight partial sums: not one serial
/// chain; f32 is plenty for that, and an overflow only means no pairing).
#[inline(always)]
fn rough_energy(x: &[f32]) -> f64 {
    let mut acc = [0.0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            acc[i] += c[i] * c[i];
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += v * v;
    }
    acc.iter().map(|&v| f64::from(v)).sum()
}

/// One half of a packed spectrum `z` (of `a + i·b`): `a`'s, (Z[f] + conj Z[n−f])·scale,
/// or with `imaginary` `b`'s, (Z[f] − conj Z[n−f])/i·scale, for bins 0..=n/2.
#[inline(always)]
fn separate(z: &[Complex<f32>], re: &mut [f32], im: &mut [f32], scale: f32, imaginary: bool) {
    let n = z.len();
    let half = n / 2;
    let (re, im) = (&mut re[..=half], &mut im[..=half]);
    let pick = |z: Complex<f32>, w: Complex<f32>| {
        if imaginary {
            ((z.im + w.im) * scale, (w.re - z.re) * scale)
        } else {
            ((z.re + w.re) * scale, (z.im - w.im) * scale)
        }
    };
    (re[0], im[0]) = pick(z[0], z[0]);
    // Bin f pairs with bin n − f: walk the top half backwards.
    let pairs = z[1..=half].iter().zip(z[n - half..].iter().rev());
    for ((r, i), (&z, &w)) in re[1..].iter_mut().zip(im[1..].iter_mut()).zip(pairs) {
        (*r, *i) = pick(z, w);
    }
}

/// Magnitudes of one half of a packed spectrum (see [`separate`]): |·| of the same
/// values, sqrt(re² + im²) rather than hypot (same value at these magnitudes, faster).
#[inline(always)]
fn separate_magnitudes(z: &[Complex<f32>], mag: &mut [f32], scale: f32, imaginary: bool) {
    let n = z.len();
    let half = n / 2;
    let mag = &mut mag[..=half];
    let pick = |z: Complex<f32>, w: Complex<f32>| {
        let (r, i) = if imaginary {
            ((z.im + w.im) * scale, (w.re - z.re) * scale)
        } else {
            ((z.re + w.re) * scale, (z.im - w.im) * scale)
        };
        (r * r + i * i).sqrt()
    };
    mag[0] = pick(z[0], z[0]);
    let pairs = z[1..=half].iter().zip(z[n - half..].iter().rev());
    for (m, (&z, &w)) in mag[1..].iter_mut().zip(pairs) {
        *m = pick(z, w);
    }
}

/// Energies of the real and of the imaginary parts (rough: f32 partial sums).
#[inline(always)]
fn complex_energies(z: &[Complex<f32>]) -> (f64, f64) {
    let (mut re, mut im) = ([0.0f32; 4], [0.0f32; 4]);
    let mut chunks = z.chunks_exact(4);
    for c in &mut chunks {
        for i in 0..4 {
            re[i] += c[i].re * c[i].re;
            im[i] += c[i].im * c[i].im;
        }
    }
    for v in chunks.remainder() {
        re[0] += v.re * v.re;
        im[0] += v.im * v.im;
    }
    let sum = |a: [f32; 4]| a.iter().map(|&v| f64::from(v)).sum::<f64>();
    (sum(re), sum(im))
}

/// Sum of squares in f64, in eight partial sums (not one serial chain of additions).
#[inline(always)]
pub fn sum_squares(x: &[f32]) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            acc[i] += f64::from(c[i]) * f64::from(c[i]);
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += f64::from(v) * f64::from(v);
    }
    acc.iter().sum()
}

/// Exponent k such that scaling the weaker signal by 2^k brings the two energies
/// within a factor of 2; `None` when one of them is zero or not finite or they are too
/// far apart to pair.
fn pair_scale(ea: f64, eb: f64) -> Option<i32> {
    if !(ea.is_finite() && eb.is_finite()) || ea <= 0.0 || eb <= 0.0 {
        return None;
    }
    let k = (0.5 * (ea / eb).log2()).round();
    (k.abs() <= f64::from(MAX_PAIR_SCALE_EXP)).then_some(k as i32)
}

impl RealPair {
    /// Transforms of even length `n`.
    pub fn new(n: usize) -> Self {
        let mut planner = FftPlanner::<f32>::new();
        let fwd = planner.plan_fft_forward(n);
        let inv = planner.plan_fft_inverse(n);
        let scratch_len = fwd
            .get_inplace_scratch_len()
            .max(inv.get_inplace_scratch_len());
        let bins = n / 2 + 1;
        Self {
            n,
            fwd,
            inv,
            buf: vec![Complex::default(); n],
            scratch: vec![Complex::default(); scratch_len],
            spec: std::array::from_fn(|_| vec![0.0; bins]),
        }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn bins(&self) -> usize {
        self.n / 2 + 1
    }

    /// Spectra of `a` and `b` (each at most `n` samples, zero-padded) into
    /// [`RealPair::spec`].
    #[inline(always)]
    pub fn forward(&mut self, a: &[f32], b: &[f32]) {
        let n = self.n;
        let (la, lb) = (a.len().min(n), b.len().min(n));
        let common = la.min(lb);
        let buf = &mut self.buf;
        for ((z, &x), &y) in buf[..common].iter_mut().zip(a).zip(b) {
            *z = Complex::new(x, y);
        }
        for (z, &x) in buf[common..la.max(common)].iter_mut().zip(&a[common..la]) {
            *z = Complex::new(x, 0.0);
        }
        for (z, &y) in buf[common..lb.max(common)].iter_mut().zip(&b[common..lb]) {
            *z = Complex::new(0.0, y);
        }
        buf[la.max(lb)..]
            .iter_mut()
            .for_each(|z| *z = Complex::default());
        self.forward_loaded(rough_energy(a), rough_energy(b), None);
    }

    /// The input of [`RealPair::forward_loaded`]: the caller writes the first signal
    /// into the real parts and the second into the imaginary parts, all `n` values.
    pub fn input(&mut self) -> &mut [Complex<f32>] {
        &mut self.buf
    }

    /// Transform the pair loaded into [`RealPair::input`], given the two signals'
    /// energies (they choose the scaling). The spectra go to [`RealPair::spec`], or
    /// only their magnitudes to `mags` (the second may be empty).
    #[inline(always)]
    pub fn forward_loaded(&mut self, ea: f64, eb: f64, mut mags: Option<(&mut [f32], &mut [f32])>) {
        if let Some(k) = pair_scale(ea, eb) {
            let s = 2f32.powi(k);
            if k != 0 {
                self.buf.iter_mut().for_each(|z| z.im *= s);
            }
            self.fwd
                .process_with_scratch(&mut self.buf, &mut self.scratch);
            self.emit(false, 0, 1.0, &mut mags);
            self.emit(true, 1, 1.0 / s, &mut mags);
            return;
        }
        // A silent, non-finite or far weaker signal: one at a time.
        let second: Vec<f32> = if eb != 0.0 {
            self.buf.iter().map(|z| z.im).collect()
        } else {
            Vec::new()
        };
        if ea != 0.0 {
            self.buf.iter_mut().for_each(|z| z.im = 0.0);
            self.fwd
                .process_with_scratch(&mut self.buf, &mut self.scratch);
            self.emit(false, 0, 1.0, &mut mags);
        } else {
            self.emit_zero(0, &mut mags);
        }
        if eb != 0.0 {
            for (z, &v) in self.buf.iter_mut().zip(&second) {
                *z = Complex::new(v, 0.0);
            }
            self.fwd
                .process_with_scratch(&mut self.buf, &mut self.scratch);
            self.emit(false, 1, 1.0, &mut mags);
        } else {
            self.emit_zero(1, &mut mags);
        }
    }

    /// Separate one half of the transformed buffer (`imaginary`: the signal in the
    /// imaginary parts) into output `which` (0 or 1).
    #[inline(always)]
    fn emit(
        &mut self,
        imaginary: bool,
        which: usize,
        scale: f32,
        mags: &mut Option<(&mut [f32], &mut [f32])>,
    ) {
        match mags {
            Some((ma, mb)) => {
                let out = if which == 0 { &mut **ma } else { &mut **mb };
                if !out.is_empty() {
                    separate_magnitudes(&self.buf, out, 0.5 * scale, imaginary);
                }
            }
            None => {
                let [ar, ai, br, bi] = &mut self.spec;
                let (re, im) = if which == 0 { (ar, ai) } else { (br, bi) };
                separate(&self.buf, re, im, 0.5 * scale, imaginary);
            }
        }
    }

    fn emit_zero(&mut self, which: usize, mags: &mut Option<(&mut [f32], &mut [f32])>) {
        match mags {
            Some((ma, mb)) => {
                let out = if which == 0 { &mut **ma } else { &mut **mb };
                out.iter_mut().for_each(|v| *v = 0.0);
            }
            None => self.spec[2 * which..2 * which + 2]
                .iter_mut()
                .flatten()
                .for_each(|v| *v = 0.0),
        }
    }

    /// Inverse transforms (unnormalised, as `realfft`'s) of two half-spectra given as
    /// real and imaginary parts over bins `0..=n/2` (the imaginary parts at 0 and n/2
    /// are taken as zero; the second may be empty); the first `out_a.len()` /
    /// `out_b.len()` samples are written.
    #[inline(always)]
    pub fn inverse(
        &mut self,
        a: (&[f32], &[f32]),
        b: (&[f32], &[f32]),
        out_a: &mut [f32],
        out_b: &mut [f32],
    ) {
        let power = |(re, im): (&[f32], &[f32])| rough_energy(re) + rough_energy(im);
        let (ea, eb) = (power(a), power(b));
        match pair_scale(ea, eb) {
            Some(k) => {
                let s = 2f32.powi(k);
                pack_hermitian(&mut self.buf, a, Some((b, s)));
                self.inv
                    .process_with_scratch(&mut self.buf, &mut self.scratch);
                for (o, z) in out_a.iter_mut().zip(&self.buf) {
                    *o = z.re;
                }
                let unscale = 1.0 / s;
                for (o, z) in out_b.iter_mut().zip(&self.buf) {
                    *o = z.im * unscale;
                }
            }
            None => {
                // A silent, non-finite or far weaker spectrum: one at a time.
                for (x, out, e) in [(a, out_a, ea), (b, out_b, eb)] {
                    if e == 0.0 || out.is_empty() {
                        out.iter_mut().for_each(|v| *v = 0.0);
                        continue;
                    }
                    pack_hermitian(&mut self.buf, x, None);
                    self.inv
                        .process_with_scratch(&mut self.buf, &mut self.scratch);
                    for (o, z) in out.iter_mut().zip(&self.buf) {
                        *o = z.re;
                    }
                }
            }
        }
    }
}

/// Real and imaginary parts of bins 0..=n/2.
type HalfSpectrum<'a> = (&'a [f32], &'a [f32]);

/// Full-circle spectrum Z[f] = A[f] + i·s·B[f] from the half-spectra (Hermitian
/// extension, imaginary parts at 0 and n/2 dropped), for an inverse FFT whose real part
/// is a and imaginary part s·b.
#[inline(always)]
fn pack_hermitian(z: &mut [Complex<f32>], (ar, ai): HalfSpectrum, b: Option<(HalfSpectrum, f32)>) {
    let n = z.len();
    let half = n / 2;
    let (ar, ai) = (&ar[..=half], &ai[..=half]);
    let (lo, hi) = z.split_at_mut(half);
    // lo = bins 0..half, hi = bins half..n; bin n − f is hi[half − f].
    let (hi_nyquist, hi) = hi.split_at_mut(1);
    match b {
        Some(((br, bi), s)) => {
            let (br, bi) = (&br[..=half], &bi[..=half]);
            lo[0] = Complex::new(ar[0], br[0] * s);
            hi_nyquist[0] = Complex::new(ar[half], br[half] * s);
            let a = ar[1..half].iter().zip(&ai[1..half]);
            let b = br[1..half].iter().zip(&bi[1..half]);
            for ((z, w), ((&a_re, &a_im), (&b_re, &b_im))) in
                lo[1..].iter_mut().zip(hi.iter_mut().rev()).zip(a.zip(b))
            {
                let (b_re, b_im) = (b_re * s, b_im * s);
                *z = Complex::new(a_re - b_im, a_im + b_re);
                *w = Complex::new(a_re + b_im, b_re - a_im);
            }
        }
        None => {
            lo[0] = Complex::new(ar[0], 0.0);
            hi_nyquist[0] = Complex::new(ar[half], 0.0);
            let a = ar[1..half].iter().zip(&ai[1..half]);
            for ((z, w), (&a_re, &a_im)) in lo[1..].iter_mut().zip(hi.iter_mut().rev()).zip(a) {
                *z = Complex::new(a_re, a_im);
                *w = Complex::new(a_re, -a_im);
            }
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
    // Selection instead of a full sort: the same middle values in linear time.
    let n = values.len();
    let (lower, &mut upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    Some(if n % 2 == 1 {
        upper
    } else {
        let below = lower.iter().copied().fold(f64::NEG_INFINITY, |a, b| {
            if b.total_cmp(&a).is_gt() { b } else { a }
        });
        0.5 * (below + upper)
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
#[inline(always)]
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
        let mut out = vec![0.0; self.rows.len()];
        self.apply_into(spectrum, &mut out);
        out
    }

    /// [`Self::apply`] into `out` (one value per filter).
    #[inline(always)]
    pub fn apply_into(&self, spectrum: &[f32], out: &mut [f32]) {
        for (o, (start, w)) in out.iter_mut().zip(&self.rows) {
            *o = dot(w, &spectrum[*start..]);
        }
    }
}

/// `librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=80.0)` over the whole matrix.
pub fn power_to_db<R: AsMut<[f32]>>(frames: &mut [R]) {
    let mut max = f32::NEG_INFINITY;
    for row in frames.iter_mut() {
        for v in row.as_mut() {
            *v = 10.0 * v.max(1e-10).log10();
            max = max.max(*v);
        }
    }
    let floor = max - 80.0;
    for row in frames.iter_mut() {
        for v in row.as_mut() {
            *v = v.max(floor);
        }
    }
}

pub(crate) use crate::simd::avx2_dispatch;

/// Split `0..n` into one contiguous range per available core, run `f` on each in a
/// scoped thread, and return the results in range order. Frame-wise analyses are
/// independent, so this parallelises them without changing any per-frame arithmetic.
pub fn par_ranges<T: Send>(n: usize, f: impl Fn(std::ops::Range<usize>) -> T + Sync) -> Vec<T> {
    par_ranges_grain(n, 1, f)
}

/// [`par_ranges`] with range boundaries at multiples of `grain`, so that work done in
/// groups of `grain` items (e.g. two frames per transform) is grouped the same way
/// whatever the number of cores.
pub fn par_ranges_grain<T: Send>(
    n: usize,
    grain: usize,
    f: impl Fn(std::ops::Range<usize>) -> T + Sync,
) -> Vec<T> {
    let grain = grain.max(1);
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .clamp(1, 8)
        .min(n.div_ceil(grain).max(1));
    if threads <= 1 {
        return vec![f(0..n)];
    }
    let per = n.div_ceil(grain).div_ceil(threads) * grain;
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

/// Smallest even length >= n of the form 2^a·3^b (for [`RealPair`]'s inverse).
pub fn fast_even_len(n: usize) -> usize {
    2 * fast_len(n.div_ceil(2).max(1))
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
