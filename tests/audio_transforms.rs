//! Transforms, in memory and streamed file to file, checked sample by sample.

use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use grym_synth::audio::transform::{
    FilterSpec, NormalizeTarget, apply_gain, db_to_gain, export_file, fade, fade_file, filter,
    filter_file, gain_file, mix, mix_files, normalize, normalize_file, trim, trim_file,
};
use grym_synth::audio::{
    AudioBuffer, BitDepth, WavSpec, decode_file, measure_loudness, resample, write_f32_artifact,
};

fn tone(rate: u32, parts: &[(f64, f64)], frames: usize, channels: usize) -> AudioBuffer {
    let plane: Vec<f32> = (0..frames)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            parts
                .iter()
                .map(|(hz, a)| a * (2.0 * PI * hz * t).sin())
                .sum::<f64>() as f32
        })
        .collect();
    AudioBuffer::new(rate, vec![plane; channels]).unwrap()
}

/// Amplitude of the `hz` component over a window (projection onto sin/cos).
fn amplitude(y: &[f32], rate: f64, hz: f64) -> f64 {
    let (mut c, mut s) = (0.0, 0.0);
    for (i, &v) in y.iter().enumerate() {
        let ph = 2.0 * PI * hz * i as f64 / rate;
        c += f64::from(v) * ph.cos();
        s += f64::from(v) * ph.sin();
    }
    2.0 * (c * c + s * s).sqrt() / y.len() as f64
}

fn f32_spec() -> WavSpec {
    WavSpec::new(BitDepth::Float32)
}

fn write(dir: &Path, name: &str, a: &AudioBuffer) -> PathBuf {
    let p = dir.join(name);
    write_f32_artifact(&p, a).unwrap();
    p
}

#[test]
fn gain_scales_every_sample() {
    let a = tone(48000, &[(440.0, 0.25)], 4800, 2);
    let mut b = a.clone();
    apply_gain(&mut b, 6.0);
    let g = db_to_gain(6.0) as f32;
    for c in 0..2 {
        for (x, y) in a.channel(c).iter().zip(b.channel(c)) {
            assert_eq!(*y, x * g);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let inp = write(dir.path(), "in.wav", &a);
    let out = dir.path().join("out.wav");
    let r = gain_file(&inp, &out, 6.0, f32_spec()).unwrap();
    assert_eq!(r.frames, 4800);
    assert_eq!(decode_file(&out).unwrap(), b);
}

#[test]
fn biquads_follow_the_cookbook_response() {
    let rate = 48000.0;
    let a = tone(48000, &[(100.0, 0.3), (8000.0, 0.3)], 48000, 1);
    let mut lp = a.clone();
    filter(
        &mut lp,
        &[FilterSpec::LowPass {
            freq: 1000.0,
            q: std::f64::consts::FRAC_1_SQRT_2,
        }],
    )
    .unwrap();
    let tail = &lp.channel(0)[24000..];
    // Butterworth 2nd order: -0.0 dB at 100 Hz, about -36 dB at 8 kHz.
    assert!((amplitude(tail, rate, 100.0) - 0.3).abs() < 0.003);
    let att = 20.0 * (amplitude(tail, rate, 8000.0) / 0.3).log10();
    assert!((-40.0..-33.0).contains(&att), "8 kHz attenuation {att} dB");

    let mut hp = a.clone();
    filter(
        &mut hp,
        &[FilterSpec::HighPass {
            freq: 1000.0,
            q: std::f64::consts::FRAC_1_SQRT_2,
        }],
    )
    .unwrap();
    let tail = &hp.channel(0)[24000..];
    assert!((amplitude(tail, rate, 8000.0) - 0.3).abs() < 0.003);
    assert!(amplitude(tail, rate, 100.0) < 0.3 * 0.02);

    let sine = tone(48000, &[(1000.0, 0.25)], 48000, 1);
    let mut eq = sine.clone();
    filter(
        &mut eq,
        &[FilterSpec::PeakingEq {
            freq: 1000.0,
            q: 1.0,
            gain_db: 6.0,
        }],
    )
    .unwrap();
    let gain = amplitude(&eq.channel(0)[24000..], rate, 1000.0) / 0.25;
    assert!((gain - db_to_gain(6.0)).abs() < 0.01, "peaking gain {gain}");

    assert!(
        filter(
            &mut eq.clone(),
            &[FilterSpec::LowPass {
                freq: 30000.0,
                q: 0.7
            }]
        )
        .is_err()
    );

    // Streaming gives the same samples as in memory (state carried across chunks).
    let dir = tempfile::tempdir().unwrap();
    let inp = write(dir.path(), "in.wav", &a);
    let out = dir.path().join("lp.wav");
    let specs = [FilterSpec::LowPass {
        freq: 1000.0,
        q: std::f64::consts::FRAC_1_SQRT_2,
    }];
    filter_file(&inp, &out, &specs, f32_spec()).unwrap();
    assert_eq!(decode_file(&out).unwrap(), lp);
}

#[test]
fn fades_are_linear_ramps() {
    let a = AudioBuffer::new(1000, vec![vec![1.0; 1000]; 2]).unwrap();
    let mut b = a.clone();
    fade(&mut b, 0.1, 0.2).unwrap();
    let y = b.channel(1);
    assert_eq!(y[0], 0.0);
    assert!((y[50] - 0.5).abs() < 1e-6);
    assert_eq!(y[100], 1.0);
    assert_eq!(y[500], 1.0);
    assert_eq!(y[999], 0.0);
    assert!((y[899] - 0.5).abs() < 1e-6, "{}", y[899]);
    let dir = tempfile::tempdir().unwrap();
    let inp = write(dir.path(), "in.wav", &a);
    let out = dir.path().join("f.wav");
    fade_file(&inp, &out, 0.1, 0.2, f32_spec()).unwrap();
    assert_eq!(decode_file(&out).unwrap(), b);
}

#[test]
fn trim_removes_leading_and_trailing_silence() {
    let mut plane = vec![0.0f32; 3000];
    for (i, s) in plane.iter_mut().enumerate().take(2200).skip(700) {
        *s = if i % 2 == 0 { 0.5 } else { -0.5 };
    }
    plane[100] = 0.0005; // below -40 dBFS: still silence
    let a = AudioBuffer::new(8000, vec![plane.clone(), vec![0.0; 3000]]).unwrap();
    let t = trim(&a, -40.0).unwrap();
    assert_eq!(t.frames(), 1500);
    assert_eq!(t.channel(0), &plane[700..2200]);
    let dir = tempfile::tempdir().unwrap();
    let inp = write(dir.path(), "in.wav", &a);
    let out = dir.path().join("t.wav");
    let r = trim_file(&inp, &out, -40.0, f32_spec()).unwrap();
    assert_eq!(r.kept_frames, Some((700, 2200)));
    assert_eq!(decode_file(&out).unwrap(), t);
}

#[test]
fn normalize_to_peak_and_loudness() {
    let a = tone(48000, &[(440.0, 0.2), (3000.0, 0.05)], 48000 * 3, 2);
    let mut p = a.clone();
    let db = normalize(&mut p, NormalizeTarget::Peak(-1.0));
    assert!((20.0 * f64::from(p.peak()).log10() + 1.0).abs() < 1e-4);
    let mut l = a.clone();
    normalize(&mut l, NormalizeTarget::Lufs(-23.0));
    let lufs = measure_loudness(&l).integrated_lufs.unwrap();
    assert!((lufs + 23.0).abs() < 0.01, "{lufs}");

    let dir = tempfile::tempdir().unwrap();
    let inp = write(dir.path(), "in.wav", &a);
    let out = dir.path().join("n.wav");
    let r = normalize_file(&inp, &out, NormalizeTarget::Peak(-1.0), f32_spec()).unwrap();
    assert!((r.gain_db.unwrap() - db).abs() < 1e-9);
    assert_eq!(decode_file(&out).unwrap(), p);
    let r = normalize_file(&inp, &out, NormalizeTarget::Lufs(-23.0), f32_spec()).unwrap();
    assert!(r.gain_db.is_some());
    let lufs = measure_loudness(&decode_file(&out).unwrap())
        .integrated_lufs
        .unwrap();
    assert!((lufs + 23.0).abs() < 0.01, "{lufs}");
}

#[test]
fn mix_sums_with_gains_and_spreads_mono() {
    let a = tone(8000, &[(100.0, 0.3)], 20000, 2);
    let b = tone(8000, &[(250.0, 0.3)], 12000, 1);
    let m = mix(&[(&a, 0.0), (&b, -6.0)]).unwrap();
    assert_eq!((m.frames(), m.num_channels()), (20000, 2));
    let g = db_to_gain(-6.0) as f32;
    for c in 0..2 {
        for i in 0..20000 {
            let want = a.channel(c)[i] + if i < 12000 { b.channel(0)[i] * g } else { 0.0 };
            assert!((m.channel(c)[i] - want).abs() < 1e-7);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (
        write(dir.path(), "a.wav", &a),
        write(dir.path(), "b.wav", &b),
    );
    let out = dir.path().join("m.wav");
    mix_files(&[(pa.clone(), 0.0), (pb, -6.0)], &out, f32_spec()).unwrap();
    let mf = decode_file(&out).unwrap();
    assert_eq!(mf.frames(), 20000);
    for c in 0..2 {
        for (x, y) in mf.channel(c).iter().zip(m.channel(c)) {
            assert!((x - y).abs() < 1e-7);
        }
    }
    let other_rate = write(dir.path(), "c.wav", &tone(16000, &[(100.0, 0.1)], 100, 1));
    assert!(mix_files(&[(pa, 0.0), (other_rate, 0.0)], &out, f32_spec()).is_err());
}

#[test]
fn export_resamples_and_requantizes_like_the_in_memory_path() {
    let a = tone(44100, &[(440.0, 0.5)], 44100 * 2, 2);
    let dir = tempfile::tempdir().unwrap();
    let inp = write(dir.path(), "in.wav", &a);
    let out = dir.path().join("e.wav");
    let r = export_file(&inp, &out, Some(48000), f32_spec()).unwrap();
    assert_eq!((r.sample_rate, r.frames), (48000, 96000));
    let e = decode_file(&out).unwrap();
    let m = resample(&a, 48000).unwrap();
    assert_eq!(e.frames(), m.frames());
    for c in 0..2 {
        for (x, y) in e.channel(c).iter().zip(m.channel(c)) {
            assert!((x - y).abs() < 1e-6);
        }
    }
    // 16-bit export: every sample within dither + rounding (1.5 LSB) of the float path.
    let out16 = dir.path().join("e16.wav");
    export_file(&inp, &out16, Some(48000), WavSpec::new(BitDepth::Pcm16)).unwrap();
    let e16 = decode_file(&out16).unwrap();
    for (x, y) in e16.channel(0).iter().zip(m.channel(0)) {
        assert!(f64::from((x - y).abs()) <= 1.5 / 32768.0 + 1e-7);
    }
}

/// Peak resident memory of this process in MiB (Linux), if known.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// An hour of 48 kHz stereo (691 MB as 16-bit WAV, 1.3 GB as f32) through the streaming
/// transforms, checking that peak memory stays far below the size of the audio.
/// Slow (writes and reads several GB): `cargo test --release --test audio_transforms --
/// --ignored`.
#[test]
#[ignore]
fn hour_long_stereo_streams_in_bounded_memory() {
    use grym_synth::audio::WavWriter;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("hour.wav");
    let rate = 48000u32;
    let mut w = WavWriter::create(&input, rate, 2, WavSpec::new(BitDepth::Pcm16)).unwrap();
    let chunk = rate as usize; // one second
    for s in 0..3600 {
        let plane: Vec<f32> = (0..chunk)
            .map(|i| {
                let t = (s * chunk + i) as f64 / f64::from(rate);
                (0.3 * (2.0 * PI * 220.0 * t).sin() * (0.5 + 0.5 * (0.1 * t).sin())) as f32
            })
            .collect();
        w.write(&AudioBuffer::new(rate, vec![plane.clone(), plane]).unwrap())
            .unwrap();
    }
    w.finalize().unwrap();
    let Some(before) = peak_rss_mib() else { return };
    let spec = WavSpec::new(BitDepth::Pcm16);
    let out = dir.path().join("out.wav");
    let frames = 3600 * u64::from(rate);
    assert_eq!(gain_file(&input, &out, -3.0, spec).unwrap().frames, frames);
    let lp = [FilterSpec::HighPass { freq: 40.0, q: 0.7 }];
    assert_eq!(filter_file(&input, &out, &lp, spec).unwrap().frames, frames);
    assert_eq!(
        fade_file(&input, &out, 5.0, 5.0, spec).unwrap().frames,
        frames
    );
    normalize_file(&input, &out, NormalizeTarget::Lufs(-16.0), spec).unwrap();
    trim_file(&input, &out, -60.0, spec).unwrap();
    let r = export_file(&input, &out, Some(44100), spec).unwrap();
    assert_eq!(r.frames, 3600 * 44100);
    let after = peak_rss_mib().unwrap_or(before);
    // The decoded hour would need 1318 MiB as f32; streaming must stay well below.
    assert!(
        after - before < 100.0,
        "peak RSS grew by {} MiB",
        after - before
    );
    eprintln!("peak RSS before {before:.0} MiB, after {after:.0} MiB");
}

#[test]
fn transform_parameters_have_stable_json_names() {
    let f: Vec<FilterSpec> = serde_json::from_str(
        r#"[{"type":"highPass","freq":80,"q":0.7},{"type":"peakingEq","freq":1000,"q":1,"gainDb":-3}]"#,
    )
    .unwrap();
    assert_eq!(
        f[1],
        FilterSpec::PeakingEq {
            freq: 1000.0,
            q: 1.0,
            gain_db: -3.0
        }
    );
    let n: NormalizeTarget = serde_json::from_str(r#"{"mode":"lufs","target":-14}"#).unwrap();
    assert_eq!(n, NormalizeTarget::Lufs(-14.0));
}
