#!/usr/bin/env python3
"""Generate the audio test signals and their librosa / pyloudnorm reference numbers.

Writes tests/fixtures/audio/*.wav|flac|ogg|mp3 and tests/fixtures/audio/reference.json.
Run with a Python that has librosa, soundfile, pyloudnorm, numpy and scipy installed:

    python tools/make_audio_fixtures.py

Signals are written as 16-bit PCM and every reference number is computed from the
file as read back (float32, like our decoder), so quantisation is not a source of error.
"""
import json
import os
import sys

import librosa
import numpy as np
import pyloudnorm
import scipy.signal
import soundfile as sf

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "audio")
SR = 22050
F0_MIN, F0_MAX = 65.40639132514966, 2093.004522404789  # librosa.note_to_hz('C2'), ('C7')


def sweep(p):
    t = np.arange(int(p["seconds"] * SR)) / SR
    f0, f1, T = p["f_start"], p["f_end"], p["seconds"]
    k = np.log(f1 / f0)
    phase = 2 * np.pi * f0 * T / k * (np.exp(t / T * k) - 1)
    return p["amplitude"] * np.sin(phase)


def clicks(p):
    n = int(p["seconds"] * SR)
    y = np.zeros(n)
    period = 60.0 / p["bpm"]
    burst = int(0.02 * SR)
    tb = np.arange(burst) / SR
    click = np.sin(2 * np.pi * p["click_hz"] * tb) * np.exp(-tb / 0.004)
    t = p["first_beat"]
    while t < p["seconds"]:
        i = int(round(t * SR))
        m = min(burst, n - i)
        y[i:i + m] += p["amplitude"] * click[:m]
        t += period
    return y


def noise(p):
    rng = np.random.default_rng(p["seed"])
    return p["std"] * rng.standard_normal(int(p["seconds"] * SR))


def chord(p):
    n = int(p["seconds"] * SR)
    t = np.arange(n) / SR
    y = np.zeros(n)
    for f in p["freqs"]:
        for h, a in enumerate(p["harmonic_amps"], start=1):
            y += a * np.sin(2 * np.pi * f * h * t)
    env = np.minimum(1.0, t / p["attack"]) * np.exp(-t / p["decay"])
    return p["amplitude"] * env * y / np.max(np.abs(y))


def speech(p):
    n = int(p["seconds"] * SR)
    t = np.arange(n) / SR
    f0 = np.interp(t, p["f0_times"], p["f0_hz"]) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    # Glottal-ish source: sum of harmonics with -12 dB/octave tilt.
    src = np.zeros(n)
    for h in range(1, 30):
        src += np.sin(h * phase) / h**2 * (h * f0 < SR / 2)
    y = src
    for fc, bw in zip(p["formants_hz"], p["formant_bw_hz"]):
        r = np.exp(-np.pi * bw / SR)
        a = [1, -2 * r * np.cos(2 * np.pi * fc / SR), r * r]
        y = scipy.signal.lfilter([1 - r], a, y)
    syll = 0.5 * (1 - np.cos(2 * np.pi * p["syllable_hz"] * t))
    gate = ((t % p["phrase_seconds"]) < p["phrase_seconds"] * 0.8).astype(float)
    y = y * syll * gate
    return p["amplitude"] * y / np.max(np.abs(y))


SIGNALS = {
    "sweep": (sweep, {"seconds": 3.0, "f_start": 100.0, "f_end": 8000.0, "amplitude": 0.5}),
    "clicks": (clicks, {"seconds": 6.0, "bpm": 100.0, "first_beat": 0.3, "click_hz": 1500.0,
                        "amplitude": 0.8}),
    "noise": (noise, {"seconds": 2.0, "std": 0.1, "seed": 7}),
    "chord": (chord, {"seconds": 3.0, "freqs": [261.63, 329.63, 392.0],
                      "harmonic_amps": [1.0, 0.5, 0.25, 0.12], "attack": 0.05, "decay": 1.5,
                      "amplitude": 0.7}),
    "speech": (speech, {"seconds": 3.0, "f0_times": [0.0, 1.0, 2.0, 3.0],
                        "f0_hz": [120.0, 180.0, 140.0, 110.0],
                        "formants_hz": [700.0, 1200.0, 2600.0], "formant_bw_hz": [90.0, 110.0, 160.0],
                        "syllable_hz": 4.0, "phrase_seconds": 1.5, "amplitude": 0.6}),
}


def r(x, d=7):
    return float(round(float(x), d))


def yin_f0(y, sr):
    """librosa.yin plus our voicing rule: a frame is voiced when its cumulative mean
    normalised difference has a trough below trough_threshold (0.1)."""
    f0 = librosa.yin(y, fmin=F0_MIN, fmax=F0_MAX, sr=sr, frame_length=2048)
    yp = np.pad(y, (1024, 1024), mode="constant")
    frames = librosa.util.frame(yp, frame_length=2048, hop_length=512)
    min_p = int(np.floor(sr / F0_MAX))
    max_p = min(int(np.ceil(sr / F0_MIN)), 2047)
    cmndf = librosa.core.pitch._cumulative_mean_normalized_difference(frames, min_p, max_p)
    trough = librosa.util.localmin(cmndf, axis=-2)
    trough[0, :] = cmndf[0, :] < cmndf[1, :]
    voiced = np.any(trough & (cmndf < 0.1), axis=0)
    return (float(np.median(f0[voiced])) if voiced.any() else None), f0, voiced


def features(y, sr, raw):
    S = np.abs(librosa.stft(y))
    rms = librosa.feature.rms(y=y)[0]
    mf = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13)
    chroma = librosa.feature.chroma_stft(y=y, sr=sr)
    f0, _, voiced = yin_f0(y, sr)
    try:
        pf0, pvoiced, _ = librosa.pyin(y, fmin=F0_MIN, fmax=F0_MAX, sr=sr)
        pyin_med = float(np.nanmedian(pf0[pvoiced])) if pvoiced.any() else None
    except Exception:  # pragma: no cover
        pyin_med = None
    peak = float(np.max(np.abs(raw)))
    meter = pyloudnorm.Meter(sr)
    return {
        "duration": r(len(y) / sr),
        "sampleRate": sr,
        "channels": 1 if raw.ndim == 1 else raw.shape[1],
        "peak": r(peak),
        "rms": r(np.mean(rms)),
        "crestFactor": r(peak / np.mean(rms)),
        "loudnessLufs": r(meter.integrated_loudness(raw), 5),
        "spectralCentroid": r(np.mean(librosa.feature.spectral_centroid(S=S, sr=sr)), 4),
        "spectralBandwidth": r(np.mean(librosa.feature.spectral_bandwidth(S=S, sr=sr)), 4),
        "spectralRolloff": r(np.mean(librosa.feature.spectral_rolloff(S=S, sr=sr)), 4),
        "spectralFlatness": r(np.mean(librosa.feature.spectral_flatness(S=S)), 8),
        "zeroCrossingRate": r(np.mean(librosa.feature.zero_crossing_rate(y)), 8),
        "mfcc": [r(v, 5) for v in mf.mean(axis=1)],
        "chroma": [r(v, 6) for v in chroma.mean(axis=1)],
        "f0": None if f0 is None else r(f0, 4),
        "tempo": r(librosa.feature.tempo(y=y, sr=sr)[0], 4),
        "_pyinMedianF0": None if pyin_med is None else r(pyin_med, 4),
        "_voicedFrames": int(voiced.sum()),
        "_tuning": r(librosa.estimate_tuning(S=S**2, sr=sr), 3),
    }


def rhythm(y, sr):
    env = librosa.onset.onset_strength(y=y, sr=sr)
    onsets = librosa.onset.onset_detect(onset_envelope=env, sr=sr)
    env_med = librosa.onset.onset_strength(y=y, sr=sr, aggregate=np.median)
    bpm, beats = librosa.beat.beat_track(onset_envelope=env_med, sr=sr)
    return {
        "onsetEnvelope": [r(v, 5) for v in env],
        "onsetFrames": [int(v) for v in onsets],
        "beatTempo": r(np.atleast_1d(bpm)[0], 4),
        "beatFrames": [int(v) for v in beats],
    }


def kweight(x, sr):
    m = pyloudnorm.Meter(sr)
    for f in m._filters.values():
        x = f.apply_filter(x)
    return x


def loudness(raw, sr):
    """Integrated from pyloudnorm; short-term max and LRA by EBU Tech 3342 (3 s windows,
    10 Hz, gates -70 LUFS absolute and -20 LU relative, 10th-95th percentile) on
    pyloudnorm's K-weighting; true peak as the max of 4x polyphase oversampling."""
    x = raw if raw.ndim == 2 else raw[:, None]
    z = np.stack([kweight(x[:, c], sr) for c in range(x.shape[1])], axis=1)
    G = np.array([1.0, 1.0, 1.0, 1.41, 1.41])[: x.shape[1]]
    win, hop = int(round(3.0 * sr)), int(round(0.1 * sr))
    st = []
    for start in range(0, len(z) - win + 1, hop):
        ms = np.mean(z[start:start + win] ** 2, axis=0)
        st.append(-0.691 + 10 * np.log10(np.sum(G * ms) + 1e-300))
    st = np.array(st)
    lra = None
    if len(st):
        g = st[st > -70]
        if len(g):
            rel = 10 * np.log10(np.mean(10 ** (g / 10))) - 20
            g = g[g > rel]
            lra = r(np.percentile(g, 95) - np.percentile(g, 10), 4) if len(g) else 0.0
    # 4x polyphase interpolation with a 256-tap Kaiser (beta 8) low-pass at the original
    # Nyquist; scipy's default filter is too short to be flat near Nyquist.
    h = scipy.signal.firwin(256, 0.25, window=("kaiser", 8.0))
    up = scipy.signal.resample_poly(x, 4, 1, axis=0, window=h)
    tp = max(np.max(np.abs(up)), np.max(np.abs(x)))
    return {
        "integratedLufs": r(pyloudnorm.Meter(sr).integrated_loudness(raw), 5),
        "shortTermMaxLufs": r(st.max(), 4) if len(st) else None,
        "loudnessRange": lra,
        "truePeakDbtp": r(20 * np.log10(tp), 3),
        "samplePeakDbfs": r(20 * np.log10(np.max(np.abs(x))), 4),
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    ref = {
        "generator": "tools/make_audio_fixtures.py",
        "librosa": librosa.__version__,
        "pyloudnorm": getattr(pyloudnorm, "__version__", "unknown"),
        "numpy": np.__version__,
        "f0Range": [F0_MIN, F0_MAX],
        "signals": {},
    }
    for name, (fn, params) in SIGNALS.items():
        path = os.path.join(OUT, f"{name}.wav")
        sf.write(path, fn(params), SR, subtype="PCM_16")
        y, sr = sf.read(path, dtype="float32")
        entry = {"file": f"{name}.wav", "params": params, "features": features(y, sr, y),
                 "rhythm": rhythm(y, sr), "loudness": loudness(y.astype(np.float64), sr)}
        ref["signals"][name] = entry
        print(name, entry["features"]["tempo"], entry["features"]["f0"], file=sys.stderr)

    # Stereo 44.1 kHz, 4 s, with a level change (for LRA), stored losslessly as FLAC.
    sr2 = 44100
    t = np.arange(4 * sr2) / sr2
    rng = np.random.default_rng(3)
    env = np.where(t < 2.0, 0.1, 0.4)
    left = env * np.sin(2 * np.pi * 997 * t)
    right = env * 0.5 * rng.standard_normal(len(t)).clip(-3, 3) / 3
    st_params = {"seconds": 4.0, "sampleRate": sr2, "left": "997 Hz sine", "right": "noise seed 3",
                 "levels": [0.1, 0.4], "switch_s": 2.0}
    path = os.path.join(OUT, "stereo.flac")
    sf.write(path, np.stack([left, right], axis=1), sr2, subtype="PCM_16")
    y2, _ = sf.read(path, dtype="float32")
    mono = y2.mean(axis=1)
    ref["signals"]["stereo"] = {"file": "stereo.flac", "params": st_params,
                                "features": features(mono, sr2, y2),
                                "loudness": loudness(y2.astype(np.float64), sr2)}

    # Tiny tone files for the lossy decoders: 440 Hz, 0.5 s, 44.1 kHz mono, amplitude 0.5.
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(int(0.5 * sr2)) / sr2)
    sf.write(os.path.join(OUT, "tone.ogg"), tone, sr2, format="OGG", subtype="VORBIS")
    sf.write(os.path.join(OUT, "tone.mp3"), tone, sr2, format="MP3", subtype="MPEG_LAYER_III")
    ref["tone"] = {"hz": 440.0, "amplitude": 0.5, "seconds": 0.5, "sampleRate": sr2,
                   "files": ["tone.ogg", "tone.mp3"]}

    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)


if __name__ == "__main__":
    main()
