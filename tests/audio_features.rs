//! Our features against librosa 0.11 / pyloudnorm reference numbers
//! (tests/fixtures/audio/reference.json, made by tools/make_audio_fixtures.py).

use std::path::{Path, PathBuf};

use grym_synth::audio::rhythm::{
    Aggregate, PeakPick, beat_track, onset_detect, onset_strength, tempo,
};
use grym_synth::audio::{FeatureParams, decode_file, extract_features, measure_loudness};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio")
}

fn reference() -> Value {
    let text = std::fs::read_to_string(fixtures().join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

thread_local! {
    static FAILURES: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Records a mismatch unless |ours - theirs| <= abs + rel * |theirs|; [`report`] fails
/// the test listing every mismatch.
fn close(name: &str, ours: f64, theirs: f64, abs: f64, rel: f64) {
    let tol = abs + rel * theirs.abs();
    let ok = (ours - theirs).abs() <= tol; // false for NaN too
    if !ok {
        FAILURES.with(|f| {
            f.borrow_mut().push(format!(
                "{name}: ours {ours} vs reference {theirs} (tolerance {tol})"
            ))
        });
    }
}

fn report() {
    let failures = FAILURES.with(|f| std::mem::take(&mut *f.borrow_mut()));
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

#[test]
fn features_match_librosa() {
    let r = reference();
    for (name, sig) in r["signals"].as_object().unwrap() {
        let audio = decode_file(&fixtures().join(sig["file"].as_str().unwrap())).unwrap();
        let ours = extract_features(&audio, &FeatureParams::default()).unwrap();
        let lib = &sig["features"];
        let ctx = |k: &str| format!("{name}.{k}");
        close(
            &ctx("duration"),
            ours.duration,
            f(&lib["duration"]),
            1e-6,
            0.0,
        );
        assert_eq!(
            u64::from(ours.sample_rate),
            lib["sampleRate"].as_u64().unwrap()
        );
        assert_eq!(ours.channels as u64, lib["channels"].as_u64().unwrap());
        close(&ctx("peak"), ours.peak, f(&lib["peak"]), 1e-6, 0.0);
        close(&ctx("rms"), ours.rms, f(&lib["rms"]), 1e-6, 1e-5);
        close(
            &ctx("crestFactor"),
            ours.crest_factor,
            f(&lib["crestFactor"]),
            0.0,
            1e-4,
        );
        close(
            &ctx("loudnessLufs"),
            ours.loudness_lufs.unwrap(),
            f(&lib["loudnessLufs"]),
            0.01,
            0.0,
        );
        close(
            &ctx("spectralCentroid"),
            ours.spectral_centroid,
            f(&lib["spectralCentroid"]),
            0.01,
            1e-5,
        );
        close(
            &ctx("spectralBandwidth"),
            ours.spectral_bandwidth,
            f(&lib["spectralBandwidth"]),
            0.01,
            1e-5,
        );
        close(
            &ctx("spectralRolloff"),
            ours.spectral_rolloff,
            f(&lib["spectralRolloff"]),
            0.01,
            1e-4,
        );
        close(
            &ctx("spectralFlatness"),
            ours.spectral_flatness,
            f(&lib["spectralFlatness"]),
            1e-6,
            1e-3,
        );
        close(
            &ctx("zeroCrossingRate"),
            ours.zero_crossing_rate,
            f(&lib["zeroCrossingRate"]),
            1e-7,
            0.0,
        );
        for (i, (o, l)) in ours
            .mfcc
            .iter()
            .zip(lib["mfcc"].as_array().unwrap())
            .enumerate()
        {
            close(&ctx(&format!("mfcc[{i}]")), *o, f(l), 0.01, 1e-4);
        }
        for (i, (o, l)) in ours
            .chroma
            .iter()
            .zip(lib["chroma"].as_array().unwrap())
            .enumerate()
        {
            close(&ctx(&format!("chroma[{i}]")), *o, f(l), 1e-3, 0.0);
        }
        match (ours.f0, lib["f0"].as_f64()) {
            (Some(o), Some(l)) => close(&ctx("f0"), o, l, 0.0, 0.005),
            (None, None) => {}
            (o, l) => panic!("{name}.f0: ours {o:?} vs librosa {l:?}"),
        }
        close(&ctx("tempo"), ours.tempo, f(&lib["tempo"]), 1e-3, 0.0);
    }
    report();
}

#[test]
fn rhythm_matches_librosa() {
    let r = reference();
    for (name, sig) in r["signals"].as_object().unwrap() {
        let Some(lib) = sig.get("rhythm") else {
            continue;
        };
        let audio = decode_file(&fixtures().join(sig["file"].as_str().unwrap())).unwrap();
        let y = audio.to_mono();
        let sr = f64::from(audio.sample_rate());
        let env = onset_strength(&y, sr, 512, Aggregate::Mean);
        let lib_env = lib["onsetEnvelope"].as_array().unwrap();
        assert_eq!(env.len(), lib_env.len(), "{name}: envelope length");
        for (i, (o, l)) in env.iter().zip(lib_env).enumerate() {
            close(&format!("{name}.onsetEnvelope[{i}]"), *o, f(l), 2e-4, 1e-4);
        }
        // Onsets: same count, each within one frame.
        let ours = onset_detect(&env, &PeakPick::librosa_defaults(sr, 512));
        let theirs: Vec<i64> = lib["onsetFrames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        if ours.len() != theirs.len() {
            close(
                &format!("{name}: onsets {ours:?} vs {theirs:?}"),
                0.0,
                1.0,
                0.0,
                0.0,
            );
            continue;
        }
        for (o, t) in ours.iter().zip(&theirs) {
            assert!(
                (*o as i64 - t).abs() <= 1,
                "{name}: onsets {ours:?} vs {theirs:?}"
            );
        }
        // Beats from the median-aggregated envelope.
        let env_med = onset_strength(&y, sr, 512, Aggregate::Median);
        let bpm = if env_med.iter().any(|&v| v != 0.0) {
            tempo(&env_med, sr, 512, &Default::default())
        } else {
            0.0
        };
        close(
            &format!("{name}.beatTempo"),
            bpm,
            f(&lib["beatTempo"]),
            1e-3,
            0.0,
        );
        let beats = beat_track(&env_med, sr, 512, bpm, 100.0, true);
        let theirs: Vec<i64> = lib["beatFrames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        if beats.len() != theirs.len() {
            close(
                &format!("{name}: beats {beats:?} vs {theirs:?}"),
                0.0,
                1.0,
                0.0,
                0.0,
            );
            continue;
        }
        for (o, t) in beats.iter().zip(&theirs) {
            assert!(
                (*o as i64 - t).abs() <= 1,
                "{name}: beats {beats:?} vs {theirs:?}"
            );
        }
    }
    report();
}

#[test]
fn loudness_matches_pyloudnorm_and_ebu_reference() {
    let r = reference();
    for (name, sig) in r["signals"].as_object().unwrap() {
        let audio = decode_file(&fixtures().join(sig["file"].as_str().unwrap())).unwrap();
        let ours = measure_loudness(&audio);
        let lib = &sig["loudness"];
        close(
            &format!("{name}.integrated"),
            ours.integrated_lufs.unwrap(),
            f(&lib["integratedLufs"]),
            0.01,
            0.0,
        );
        match (ours.short_term_max_lufs, lib["shortTermMaxLufs"].as_f64()) {
            (Some(o), Some(l)) => close(&format!("{name}.shortTermMax"), o, l, 0.01, 0.0),
            (None, None) => {}
            (o, l) => panic!("{name}.shortTermMax: ours {o:?} vs reference {l:?}"),
        }
        match (ours.loudness_range, lib["loudnessRange"].as_f64()) {
            (Some(o), Some(l)) => close(&format!("{name}.lra"), o, l, 0.05, 0.0),
            (None, None) => {}
            (o, l) => panic!("{name}.lra: ours {o:?} vs reference {l:?}"),
        }
        close(
            &format!("{name}.truePeak"),
            ours.true_peak_dbtp,
            f(&lib["truePeakDbtp"]),
            0.1,
            0.0,
        );
        close(
            &format!("{name}.samplePeak"),
            ours.sample_peak_dbfs,
            f(&lib["samplePeakDbfs"]),
            1e-3,
            0.0,
        );
    }
    report();
}
