//! Time Wav2Vec2 inference on a model directory and a WAV file, printing the best and
//! median wall time of `REPEATS` runs (after one warm-up) as JSON. Used by
//! tools/bench_vs_torch; the thread count follows RAYON_NUM_THREADS.
//!
//!     cargo run --release --example wav2vec2_infer -- MODEL_DIR FILE.wav [REPEATS] [DEVICE]

use std::time::Instant;

use grym_synth::models::wav2vec2::{Layer, Wav2Vec2Model, Windowing};
use grym_synth::models::{DeviceChoice, ModelRepo};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: wav2vec2_infer MODEL_DIR FILE.wav [REPEATS] [DEVICE]";
    let model_dir = args.next().ok_or(usage)?;
    let wav = args.next().ok_or(usage)?;
    let repeats: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5)
        .max(1);
    let device: DeviceChoice = args.next().as_deref().unwrap_or("cpu").parse()?;
    let device = device.device()?;

    let mut reader = hound::WavReader::open(&wav)?;
    let spec = reader.spec();
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>()?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1i64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|s| s as f32 * scale))
                .collect::<Result<_, _>>()?
        }
    };
    let repo = ModelRepo::open(&model_dir, None)?;
    let t = Instant::now();
    let model = Wav2Vec2Model::load(&repo, &device, &mut |_| {})?;
    let load_s = t.elapsed().as_secs_f64();
    let never = || false;
    let run = || -> Result<f64, Box<dyn std::error::Error>> {
        let t = Instant::now();
        let frames = model.frames(&samples, Layer::Last, true, Windowing::DEFAULT, &never)?;
        // Copying the logits out waits for a GPU to finish.
        let _: Vec<Vec<f32>> = frames.logits.ok_or("no logits")?.to_vec2()?;
        Ok(t.elapsed().as_secs_f64())
    };
    run()?;
    let mut times: Vec<f64> = (0..repeats).map(|_| run()).collect::<Result<_, _>>()?;
    times.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "load_s": load_s,
            "best_s": times[0],
            "median_s": times[times.len() / 2],
            "audio_s": samples.len() as f64 / spec.sample_rate as f64,
        })
    );
    Ok(())
}
