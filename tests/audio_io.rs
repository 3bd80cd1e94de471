//! Decoding every supported form, bad-file errors, and export round trips.

use std::path::{Path, PathBuf};

use grym_synth::audio::encode::quantize;
use grym_synth::audio::{
    AudioBuffer, AudioError, BitDepth, DecodeOptions, Dither, NonFinitePolicy, WavSpec,
    decode_file, decode_file_with, resample, write_f32_artifact, write_wav,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio")
}

/// Hand-built WAV bytes, so tests can state formats hound cannot write and headers that lie.
struct Wav {
    format_tag: u16,
    channels: u16,
    rate: u32,
    bits: u16,
    extensible: bool,
    data: Vec<u8>,
    /// Override of the data chunk size field.
    data_size: Option<u32>,
}

impl Wav {
    fn new(format_tag: u16, channels: u16, rate: u32, bits: u16, data: Vec<u8>) -> Self {
        Self {
            format_tag,
            channels,
            rate,
            bits,
            extensible: false,
            data,
            data_size: None,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let block = self.channels * self.bits.div_ceil(8);
        let mut fmt = Vec::new();
        let tag = if self.extensible {
            0xFFFE
        } else {
            self.format_tag
        };
        fmt.extend(tag.to_le_bytes());
        fmt.extend(self.channels.to_le_bytes());
        fmt.extend(self.rate.to_le_bytes());
        fmt.extend((self.rate * u32::from(block)).to_le_bytes());
        fmt.extend(block.to_le_bytes());
        fmt.extend(self.bits.to_le_bytes());
        if self.extensible {
            fmt.extend(22u16.to_le_bytes());
            fmt.extend(self.bits.to_le_bytes()); // valid bits
            let mask: u32 = if self.channels == 1 { 0x4 } else { 0x3 };
            fmt.extend(mask.to_le_bytes());
            // Sub-format GUID: format tag followed by the KSDATAFORMAT suffix.
            fmt.extend(u32::from(self.format_tag).to_le_bytes());
            fmt.extend([
                0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
            ]);
        }
        let mut out = Vec::new();
        out.extend(b"RIFF");
        out.extend((4 + 8 + fmt.len() as u32 + 8 + self.data.len() as u32).to_le_bytes());
        out.extend(b"WAVE");
        out.extend(b"fmt ");
        out.extend((fmt.len() as u32).to_le_bytes());
        out.extend(fmt);
        out.extend(b"data");
        out.extend(
            self.data_size
                .unwrap_or(self.data.len() as u32)
                .to_le_bytes(),
        );
        out.extend(&self.data);
        out
    }

    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, self.bytes()).unwrap();
        p
    }
}

/// A ramp of values exactly representable in every format under test.
fn test_values() -> Vec<f64> {
    vec![0.0, 0.5, -0.5, 0.25, -1.0, 0.75, -0.125, 0.0625]
}

#[test]
fn decodes_every_wav_sample_format() {
    let dir = tempfile::tempdir().unwrap();
    let v = test_values();
    let cases: Vec<(&str, Wav)> = vec![
        (
            "u8",
            Wav::new(
                1,
                1,
                8000,
                8,
                v.iter().map(|x| (x * 128.0 + 128.0) as u8).collect(),
            ),
        ),
        (
            "s16",
            Wav::new(
                1,
                1,
                8000,
                16,
                v.iter()
                    .flat_map(|x| ((x * 32768.0) as i16).to_le_bytes())
                    .collect(),
            ),
        ),
        (
            "s24",
            Wav::new(
                1,
                1,
                8000,
                24,
                v.iter()
                    .flat_map(|x| ((x * 8388608.0) as i32).to_le_bytes()[..3].to_vec())
                    .collect(),
            ),
        ),
        (
            "s32",
            Wav::new(
                1,
                1,
                8000,
                32,
                v.iter()
                    .flat_map(|x| ((x * 2147483648.0) as i32).to_le_bytes())
                    .collect(),
            ),
        ),
        (
            "f32",
            Wav::new(
                3,
                1,
                8000,
                32,
                v.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect(),
            ),
        ),
        (
            "f64",
            Wav::new(
                3,
                1,
                8000,
                64,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
        ),
        ("ext-s16", {
            let mut w = Wav::new(
                1,
                1,
                8000,
                16,
                v.iter()
                    .flat_map(|x| ((x * 32768.0) as i16).to_le_bytes())
                    .collect(),
            );
            w.extensible = true;
            w
        }),
        ("ext-f32", {
            let mut w = Wav::new(
                3,
                1,
                8000,
                32,
                v.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect(),
            );
            w.extensible = true;
            w
        }),
    ];
    for (name, wav) in cases {
        let path = wav.write(dir.path(), &format!("{name}.wav"));
        let audio = decode_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(audio.sample_rate(), 8000, "{name}");
        assert_eq!(audio.num_channels(), 1, "{name}");
        let got: Vec<f64> = audio.channel(0).iter().map(|&s| f64::from(s)).collect();
        assert_eq!(got.len(), v.len(), "{name}");
        for (g, e) in got.iter().zip(&v) {
            assert!((g - e).abs() < 1e-6, "{name}: got {got:?}, want {v:?}");
        }
    }
}

#[test]
fn decodes_stereo_wav_planar() {
    let dir = tempfile::tempdir().unwrap();
    // Interleaved L R L R: left 0.5, right -0.25.
    let data: Vec<u8> = (0..4)
        .flat_map(|i| {
            let s: i16 = if i % 2 == 0 { 16384 } else { -8192 };
            s.to_le_bytes()
        })
        .collect();
    let p = Wav::new(1, 2, 44100, 16, data).write(dir.path(), "st.wav");
    let a = decode_file(&p).unwrap();
    assert_eq!(a.channel(0), &[0.5, 0.5]);
    assert_eq!(a.channel(1), &[-0.25, -0.25]);
    assert_eq!(a.to_mono(), vec![0.125, 0.125]);
}

#[test]
fn decodes_flac_ogg_mp3() {
    let flac = decode_file(&fixtures().join("stereo.flac")).unwrap();
    assert_eq!(
        (flac.sample_rate(), flac.num_channels(), flac.frames()),
        (44100, 2, 4 * 44100)
    );
    // Left is a 997 Hz sine at 0.1 for the first two seconds (16-bit, so within 1 LSB).
    for i in (0..88200).step_by(997) {
        let want = 0.1 * (2.0 * std::f64::consts::PI * 997.0 * i as f64 / 44100.0).sin();
        assert!((f64::from(flac.channel(0)[i]) - want).abs() < 1.0 / 32768.0 + 1e-6);
    }
    for name in ["tone.ogg", "tone.mp3"] {
        let a = decode_file(&fixtures().join(name)).unwrap();
        assert_eq!((a.sample_rate(), a.num_channels()), (44100, 1), "{name}");
        // Lossy codecs add priming/padding; length within 60 ms of 0.5 s.
        assert!(
            (a.duration_secs() - 0.5).abs() < 0.06,
            "{name}: {} s",
            a.duration_secs()
        );
        // The decoded signal is a 440 Hz tone of amplitude ~0.5: project onto it.
        let y = a.channel(0);
        let (mut c, mut s) = (0.0f64, 0.0f64);
        for (i, &v) in y.iter().enumerate() {
            let ph = 2.0 * std::f64::consts::PI * 440.0 * i as f64 / 44100.0;
            c += f64::from(v) * ph.cos();
            s += f64::from(v) * ph.sin();
        }
        let amp = 2.0 * (c * c + s * s).sqrt() / y.len() as f64;
        assert!((amp - 0.5).abs() < 0.08, "{name}: 440 Hz amplitude {amp}");
    }
}

fn s16_data(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| (i as i16).wrapping_mul(100).to_le_bytes())
        .collect()
}

#[test]
fn text_file_named_wav_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.wav");
    std::fs::write(&p, "this is not audio, just some text\n".repeat(20)).unwrap();
    let e = decode_file(&p).unwrap_err();
    assert!(matches!(e, AudioError::UnsupportedFormat { .. }), "{e}");
    assert!(e.to_string().contains("notes.wav"), "{e}");
}

#[test]
fn empty_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.wav");
    std::fs::write(&p, b"").unwrap();
    assert!(matches!(
        decode_file(&p).unwrap_err(),
        AudioError::UnsupportedFormat { .. }
    ));
    let e = decode_file(&dir.path().join("missing.flac")).unwrap_err();
    assert!(
        matches!(e, AudioError::Io { .. }) && e.to_string().contains("missing.flac"),
        "{e}"
    );
}

#[test]
fn zero_length_audio_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = Wav::new(1, 1, 44100, 16, Vec::new()).write(dir.path(), "zero.wav");
    let e = decode_file(&p).unwrap_err();
    assert!(matches!(e, AudioError::Empty { .. }), "{e}");
    assert!(e.to_string().contains("zero.wav"));
}

#[test]
fn truncated_data_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let full = Wav::new(1, 1, 44100, 16, s16_data(1000)).bytes();
    let p = dir.path().join("cut.wav");
    std::fs::write(&p, &full[..full.len() - 600]).unwrap();
    let e = decode_file(&p).unwrap_err();
    assert!(
        matches!(e, AudioError::Truncated { declared: 1000, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("cut.wav"), "{e}");
}

#[test]
fn header_claiming_more_data_than_the_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wav::new(1, 2, 44100, 16, s16_data(200));
    w.data_size = Some(0x7FFF_0000);
    // The data chunk overruns the RIFF chunk: a structural lie.
    let p = w.write(dir.path(), "liar.wav");
    let e = decode_file(&p).unwrap_err();
    assert!(matches!(e, AudioError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("liar.wav"), "{e}");
    // RIFF and data sizes agree with each other but not with the file: truncation.
    let mut bytes = w.bytes();
    let riff = 4 + 8 + 16 + 8 + 0x7FFF_0000u32;
    bytes[4..8].copy_from_slice(&riff.to_le_bytes());
    let p = dir.path().join("liar2.wav");
    std::fs::write(&p, bytes).unwrap();
    let e = decode_file(&p).unwrap_err();
    assert!(matches!(e, AudioError::Truncated { .. }), "{e}");
    assert!(e.to_string().contains("liar2.wav"), "{e}");
}

#[test]
fn absurd_channel_counts_and_rates_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for (name, ch, rate) in [
        ("ch0", 0u16, 44100u32),
        ("ch500", 500, 44100),
        ("sr0", 1, 0),
        ("sr5m", 1, 5_000_000),
        ("sr10", 1, 10),
    ] {
        let p = Wav::new(1, ch, rate, 16, s16_data(64)).write(dir.path(), &format!("{name}.wav"));
        let e = decode_file(&p).unwrap_err();
        assert!(
            matches!(
                e,
                AudioError::BadChannelCount { .. }
                    | AudioError::BadSampleRate { .. }
                    | AudioError::Corrupt { .. }
                    | AudioError::UnsupportedFormat { .. }
            ),
            "{name}: {e}"
        );
        assert!(e.to_string().contains(name), "{e}");
    }
}

#[test]
fn non_finite_samples_rejected_or_sanitized() {
    let dir = tempfile::tempdir().unwrap();
    let v = [0.5f32, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.5];
    let p = Wav::new(
        3,
        1,
        8000,
        32,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
    .write(dir.path(), "nan.wav");
    let e = decode_file(&p).unwrap_err();
    assert!(
        matches!(
            e,
            AudioError::NonFinite {
                frame: 1,
                channel: 0,
                ..
            }
        ),
        "{e}"
    );
    let opts = DecodeOptions {
        non_finite: NonFinitePolicy::Sanitize,
        ..DecodeOptions::default()
    };
    let a = decode_file_with(&p, opts).unwrap();
    assert_eq!(a.channel(0), &[0.5, 0.0, 1.0, -1.0, -0.5]);
}

#[test]
fn memory_limit_is_checked_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let p = Wav::new(1, 2, 44100, 16, s16_data(2000)).write(dir.path(), "big.wav");
    let opts = DecodeOptions {
        max_samples: 1000,
        ..DecodeOptions::default()
    };
    let e = decode_file_with(&p, opts).unwrap_err();
    assert!(
        matches!(
            e,
            AudioError::TooLarge {
                samples: 2000,
                limit: 1000,
                ..
            }
        ),
        "{e}"
    );
    // Within the limit it loads.
    assert_eq!(decode_file(&p).unwrap().frames(), 1000);
}

#[test]
fn corrupted_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let originals = [
        std::fs::read(fixtures().join("stereo.flac")).unwrap(),
        std::fs::read(fixtures().join("tone.mp3")).unwrap(),
        std::fs::read(fixtures().join("tone.ogg")).unwrap(),
        Wav::new(1, 2, 44100, 16, s16_data(4000)).bytes(),
    ];
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (k, orig) in originals.iter().enumerate() {
        for round in 0..40 {
            let mut bytes = orig.clone();
            // Flip bytes in the first 256 (headers) and anywhere, and sometimes truncate.
            for _ in 0..8 {
                let i = (next() as usize) % bytes.len().min(256);
                bytes[i] = next() as u8;
                let j = (next() as usize) % bytes.len();
                bytes[j] = next() as u8;
            }
            if round % 3 == 0 {
                let cut = (next() as usize) % bytes.len();
                bytes.truncate(cut.max(1));
            }
            let ext = ["flac", "mp3", "ogg", "wav"][k];
            let p = dir.path().join(format!("fuzz{k}_{round}.{ext}"));
            std::fs::write(&p, &bytes).unwrap();
            // Any Ok or Err is fine; a panic fails the test.
            let _ = decode_file(&p);
        }
    }
}

fn sine(rate: u32, hz: f64, amp: f64, frames: usize, channels: usize) -> AudioBuffer {
    let plane: Vec<f32> = (0..frames)
        .map(|i| {
            (amp * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin()) as f32
        })
        .collect();
    AudioBuffer::new(rate, vec![plane; channels]).unwrap()
}

#[test]
fn pcm_round_trips_are_exact_without_dither() {
    let dir = tempfile::tempdir().unwrap();
    let a = sine(48000, 1000.0, 0.9, 4800, 2);
    for depth in [BitDepth::Pcm16, BitDepth::Pcm24] {
        let p = dir.path().join(format!("rt{}.wav", depth.bits()));
        write_wav(
            &p,
            &a,
            WavSpec {
                bit_depth: depth,
                dither: Dither::None,
            },
        )
        .unwrap();
        let b = decode_file(&p).unwrap();
        assert_eq!(
            (b.sample_rate(), b.num_channels(), b.frames()),
            (48000, 2, 4800)
        );
        let scale = f64::from(1u32 << (depth.bits() - 1));
        for c in 0..2 {
            for (x, y) in a.channel(c).iter().zip(b.channel(c)) {
                let want = f64::from(quantize(*x, depth.bits(), 0.0)) / scale;
                assert_eq!(f64::from(*y), want, "{}-bit sample", depth.bits());
            }
        }
    }
    let p = dir.path().join("rt32.wav");
    write_f32_artifact(&p, &a).unwrap();
    assert_eq!(decode_file(&p).unwrap(), a);
}

#[test]
fn full_scale_and_clipping_quantize_to_the_code_range() {
    assert_eq!(quantize(1.0, 16, 0.0), 32767);
    assert_eq!(quantize(-1.0, 16, 0.0), -32768);
    assert_eq!(quantize(2.0, 24, 0.0), 8_388_607);
    assert_eq!(quantize(0.5, 16, 0.0), 16384);
}

#[test]
fn tpdf_dither_is_bounded_unbiased_and_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    // A very quiet ramp: without dither most of it would round to the same code.
    let plane: Vec<f32> = (0..20000)
        .map(|i| (i as f32 / 20000.0) * 4.0 / 32768.0)
        .collect();
    let a = AudioBuffer::mono(44100, plane).unwrap();
    let spec = WavSpec::new(BitDepth::Pcm16);
    assert_eq!(spec.dither, Dither::Tpdf { seed: 0 });
    let (p1, p2) = (dir.path().join("d1.wav"), dir.path().join("d2.wav"));
    write_wav(&p1, &a, spec).unwrap();
    write_wav(&p2, &a, spec).unwrap();
    assert_eq!(
        std::fs::read(&p1).unwrap(),
        std::fs::read(&p2).unwrap(),
        "same seed, same bytes"
    );
    let b = decode_file(&p1).unwrap();
    let lsb = 1.0 / 32768.0;
    let mut sum_err = 0.0;
    let mut differs = 0;
    for (x, y) in a.channel(0).iter().zip(b.channel(0)) {
        let err = f64::from(*y) - f64::from(*x);
        // TPDF peak is 1 LSB, rounding adds at most 1/2.
        assert!(err.abs() <= 1.5 * lsb + 1e-12, "error {err}");
        sum_err += err;
        if f64::from(*y) != f64::from(quantize(*x, 16, 0.0)) / 32768.0 {
            differs += 1;
        }
    }
    assert!(
        (sum_err / 20000.0).abs() < 0.05 * lsb,
        "dither must not bias the signal"
    );
    assert!(differs > 5000, "dither changed only {differs} samples");
    // Another seed gives other noise.
    let p3 = dir.path().join("d3.wav");
    write_wav(
        &p3,
        &a,
        WavSpec {
            bit_depth: BitDepth::Pcm16,
            dither: Dither::Tpdf { seed: 9 },
        },
    )
    .unwrap();
    assert_ne!(std::fs::read(&p1).unwrap(), std::fs::read(&p3).unwrap());
}

#[test]
fn resampling_round_trip_preserves_the_signal() {
    let a = sine(44100, 440.0, 0.5, 44100, 2);
    let up = resample(&a, 48000).unwrap();
    assert_eq!(up.frames(), 48000);
    assert_eq!(up.sample_rate(), 48000);
    // The resampled sine is the same sine at the new rate (aligned, no delay).
    for i in (2000..46000).step_by(7) {
        let want = 0.5 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 48000.0).sin();
        assert!(
            (f64::from(up.channel(0)[i]) - want).abs() < 1e-3,
            "frame {i}"
        );
    }
    let back = resample(&up, 44100).unwrap();
    assert_eq!(back.frames(), 44100);
    for i in 2000..42000 {
        assert!(
            (back.channel(1)[i] - a.channel(1)[i]).abs() < 1e-3,
            "frame {i}"
        );
    }
    // Odd lengths: ceil(frames * ratio).
    let short = sine(22050, 100.0, 0.1, 1001, 1);
    assert_eq!(
        resample(&short, 48000).unwrap().frames(),
        (1001.0f64 * 48000.0 / 22050.0).ceil() as usize
    );
}
