//! Time the pieces of an AudioLDM run on a pipeline directory (diffusers layout), printing
//! the best and median wall time of each as JSON. Used by tools/bench_vs_diffusers; the CPU
//! thread count follows RAYON_NUM_THREADS.
//!
//!     cargo run --release --example audioldm_bench -- MODEL_DIR BENCH_DIR
//!
//! BENCH_DIR holds what to time:
//! - `settings.json`: `{"timestep", "guidanceScale", "steps", "samples", "repeats", "device",
//!   "prompt", "seconds", "runSteps"}`;
//! - `inputs.safetensors`: `latents` (1, channels, frames / scale, mels / scale) and `labels`
//!   (2, projection dim), the unconditional embedding first.
//!
//! Timed, after one warm-up each, `repeats` times:
//! - `step`: one denoising step with classifier-free guidance, as the pipeline runs it: the
//!   latents doubled into a batch of 2, the UNet, the guidance mix and a scheduler step;
//! - `tail`: the VAE decode and the vocoder of one clip (`vae` and `vocoder` are the two
//!   parts of the same passes), the waveform copied out;
//! - `run` (only when `runSteps` > 0, once): a whole text-to-audio run from the same latents,
//!   text encoding included.
//!
//! What the timed code computed is written to BENCH_DIR/outputs.safetensors (`step`, `wave`,
//! and `run` when timed), so the caller can check both sides computed the same thing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{DType, Device, Tensor};
use grym_synth::models::audioldm::{AudioLdm, GenerateRequest, Hooks, Scheduler};
use grym_synth::models::{DeviceChoice, ModelRepo};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Settings {
    timestep: usize,
    guidance_scale: f64,
    /// The schedule the timed step belongs to.
    steps: usize,
    /// Waveform samples kept by the tail.
    samples: usize,
    repeats: usize,
    device: String,
    prompt: String,
    seconds: f64,
    run_steps: usize,
}

/// Best and median of `repeats` timings of `f` after one warm-up, and the warm-up's result.
fn time<T>(
    repeats: usize,
    mut f: impl FnMut() -> anyhow::Result<(T, Vec<f64>)>,
) -> anyhow::Result<(T, Vec<serde_json::Value>)> {
    let (out, first) = f()?;
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); first.len()];
    for _ in 0..repeats.max(1) {
        let (_, parts) = f()?;
        for (all, t) in times.iter_mut().zip(parts) {
            all.push(t);
        }
    }
    let stats = times
        .into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            serde_json::json!({"best_s": t[0], "median_s": t[t.len() / 2]})
        })
        .collect();
    Ok((out, stats))
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: audioldm_bench MODEL_DIR BENCH_DIR";
    let model_dir = args.next().context(usage)?;
    let bench_dir = PathBuf::from(args.next().context(usage)?);
    let settings: Settings = serde_json::from_str(
        &std::fs::read_to_string(bench_dir.join("settings.json"))
            .context("reading settings.json")?,
    )?;
    let device = settings.device.parse::<DeviceChoice>()?.device()?;
    let sync = |d: &Device| d.synchronize();

    let repo = ModelRepo::open(&model_dir, None)?;
    let t = Instant::now();
    let model = AudioLdm::load(&repo, &device, &mut |_| {})?;
    let load_s = t.elapsed().as_secs_f64();

    let inputs = candle_core::safetensors::load(bench_dir.join("inputs.safetensors"), &device)?;
    let get = |name: &str| inputs.get(name).context(format!("inputs: no `{name}`"));
    let latents = get("latents")?.to_dtype(DType::F32)?;
    let labels = get("labels")?.to_dtype(DType::F32)?;
    if labels.dim(0)? != 2 || latents.dim(0)? != 1 {
        bail!("inputs: latents must have batch 1 and labels batch 2");
    }
    let mut scheduler = Scheduler::new(&model.scheduler_config).map_err(anyhow::Error::msg)?;
    scheduler
        .set_timesteps(settings.steps)
        .map_err(anyhow::Error::msg)?;
    if !scheduler.timesteps().contains(&settings.timestep) {
        bail!(
            "timestep {} is not in the {}-step schedule",
            settings.timestep,
            settings.steps
        );
    }

    // One denoising step, as AudioLdm::generate runs it with guidance.
    let g = settings.guidance_scale;
    let (step_out, step) = time(settings.repeats, || {
        let t = Instant::now();
        let mut sched = scheduler.clone();
        let input = Tensor::cat(&[&latents, &latents], 0)?;
        let pred = model.unet.forward(&input, settings.timestep as f64, &labels)?;
        let uncond = pred.narrow(0, 0, 1)?;
        let cond = pred.narrow(0, 1, 1)?;
        let pred = (&uncond + ((cond - &uncond)? * g)?)?;
        let next = sched.step(&pred, settings.timestep, &latents)?;
        sync(&device)?;
        Ok((next, vec![t.elapsed().as_secs_f64()]))
    })?;

    // The tail: AudioLdm::decode in two timed halves.
    let (wave, tail) = time(settings.repeats, || {
        let t = Instant::now();
        let scaled = latents.affine(1.0 / model.vae.config.scaling_factor, 0.0)?;
        let mel = model.vae.decode(&scaled)?.squeeze(1)?;
        sync(&device)?;
        let vae_s = t.elapsed().as_secs_f64();
        let audio = model.vocoder.forward(&mel)?.to_dtype(DType::F32)?;
        let mut wave = audio.to_vec2::<f32>()?;
        for w in &mut wave {
            w.truncate(settings.samples);
        }
        let all_s = t.elapsed().as_secs_f64();
        Ok((wave, vec![all_s, vae_s, all_s - vae_s]))
    })?;

    let mut outputs: HashMap<String, Tensor> = HashMap::new();
    outputs.insert("step".into(), step_out.to_device(&Device::Cpu)?);
    outputs.insert("wave".into(), Tensor::new(wave, &Device::Cpu)?);

    let mut run_s = serde_json::Value::Null;
    if settings.run_steps > 0 {
        let mut req = GenerateRequest::new(settings.prompt.clone());
        req.steps = settings.run_steps;
        req.guidance_scale = g;
        req.duration = Some(settings.seconds);
        req.init_latents = Some(latents.clone());
        let t = Instant::now();
        let generated = model.generate(&req, &Hooks::none())?;
        run_s = t.elapsed().as_secs_f64().into();
        outputs.insert(
            "run".into(),
            Tensor::new(generated.waveforms, &Device::Cpu)?,
        );
    }
    candle_core::safetensors::save(&outputs, bench_dir.join("outputs.safetensors"))?;

    println!(
        "{}",
        serde_json::json!({
            "load_s": load_s,
            "step": step[0],
            "tail": tail[0],
            "vae": tail[1],
            "vocoder": tail[2],
            "run_s": run_s,
            "threads": candle_core::utils::get_num_threads(),
        })
    );
    Ok(())
}
