//! Print the `analysis/features` result of an audio file as JSON, with the time taken
//! (decode and analysis separately) on stderr. Used by tools/bench_vs_librosa.
//!
//!     cargo run --release --example audio_features -- FILE [REPEATS]

use std::path::PathBuf;
use std::time::Instant;

use grym_synth::audio::{FeatureParams, decode_file, extract_features};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().ok_or("usage: audio_features FILE [REPEATS]")?);
    let repeats: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1)
        .max(1);
    let t0 = Instant::now();
    let audio = decode_file(&path)?;
    let decode_s = t0.elapsed().as_secs_f64();
    let mut best = f64::INFINITY;
    let mut features = None;
    for _ in 0..repeats {
        let t = Instant::now();
        features = Some(extract_features(&audio, &FeatureParams::default())?);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("{}", serde_json::to_string(&features)?);
    eprintln!("decode_s={decode_s:.4} features_s={best:.4}");
    Ok(())
}
