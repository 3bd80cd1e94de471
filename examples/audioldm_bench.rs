//! Time the pieces of an AudioLDM run on a pipeline directory (diffusers layout), one piece
//! per command read from stdin, answering each with a line of JSON on stdout. Driven by
//! tools/bench_vs_diffusers, which alternates these runs with diffusers' so that both see
//! the same load on a shared machine; the CPU thread count follows RAYON_NUM_THREADS.
//!
//!     cargo run --release --example audioldm_bench -- MODEL_DIR BENCH_DIR < COMMANDS
//!
//! BENCH_DIR holds what to time:
//! - `settings.json`: `{"timestep", "guidanceScale", "steps", "samples", "device", "prompt",
//!   "seconds", "runSteps"}`;
//! - `inputs.safetensors`: `latents` (1, channels, frames / scale, mels / scale) and `labels`
//!   (2, projection dim), the unconditional embedding first.
//!
//! The first line out, once the model is loaded, is `{"load_s", "threads"}`. Commands:
//! - `step`: one denoising step with classifier-free guidance, as the pipeline runs it: the
//!   latents doubled into a batch of 2, the UNet, the guidance mix and a scheduler step, at
//!   `timestep` of a `steps`-step schedule; answers `{"step": seconds}`;
//! - `tail`: the VAE decode and the vocoder of one clip, the waveform copied out; answers
//!   `{"tail", "vae", "vocoder"}` in seconds (the two parts of the same pass);
//! - `run`: a whole text-to-audio run of `runSteps` steps from the same latents, text
//!   encoding included; answers `{"run": seconds}`;
//! - `save`: writes what the last of each computed to BENCH_DIR/outputs.safetensors (`step`,
//!   `wave`, `run`), so the caller can check that both sides computed the same thing.
//!
//! Each timed answer also gives the process's CPU time over the same span (all threads, user
//! and system, where /proc has it) as `<piece>_cpu`: on a machine shared with other work it is
//! steadier than the wall time, which also counts waiting for a core.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{DType, Device, Tensor};
use grym_synth::models::audioldm::{AudioLdm, GenerateRequest, Hooks, Scheduler};
use grym_synth::models::{DeviceChoice, ModelRepo};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Settings {
    timestep: usize,
    guidance_scale: f64,
    /// The schedule the timed step belongs to.
    steps: usize,
    /// Waveform samples kept by the tail.
    samples: usize,
    device: String,
    prompt: String,
    seconds: f64,
    run_steps: usize,
}

/// CPU time of every thread of this process so far, in seconds; `None` without /proc.
fn cpu_seconds() -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 * 1e-9)
}

/// `end - start` of two [`cpu_seconds`] readings, null when either is missing.
fn cpu_span(start: Option<f64>, end: Option<f64>) -> serde_json::Value {
    start
        .zip(end)
        .map(|(s, e)| json!(e - s))
        .unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    grym_synth::models::memory::keep_freed_buffers();
    let mut args = std::env::args().skip(1);
    let usage = "usage: audioldm_bench MODEL_DIR BENCH_DIR < COMMANDS";
    let model_dir = args.next().context(usage)?;
    let bench_dir = PathBuf::from(args.next().context(usage)?);
    let settings: Settings = serde_json::from_str(
        &std::fs::read_to_string(bench_dir.join("settings.json"))
            .context("reading settings.json")?,
    )?;
    let device = settings.device.parse::<DeviceChoice>()?.device()?;

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
    let g = settings.guidance_scale;

    let mut stdout = std::io::stdout().lock();
    let mut answer = |value: serde_json::Value| -> anyhow::Result<()> {
        writeln!(stdout, "{value}")?;
        Ok(stdout.flush()?)
    };
    answer(json!({"load_s": load_s, "threads": candle_core::utils::get_num_threads()}))?;

    let mut outputs: HashMap<String, Tensor> = HashMap::new();
    for line in std::io::stdin().lock().lines() {
        match line?.trim() {
            "step" => {
                // As AudioLdm::generate runs a step with guidance.
                let (t, cpu) = (Instant::now(), cpu_seconds());
                let mut sched = scheduler.clone();
                let input = Tensor::cat(&[&latents, &latents], 0)?;
                let pred = model
                    .unet
                    .forward(&input, settings.timestep as f64, &labels)?;
                let uncond = pred.narrow(0, 0, 1)?;
                let cond = pred.narrow(0, 1, 1)?;
                let pred = (&uncond + ((cond - &uncond)? * g)?)?;
                let next = sched.step(&pred, settings.timestep, &latents)?;
                device.synchronize()?;
                let step_s = t.elapsed().as_secs_f64();
                let step_cpu = cpu_span(cpu, cpu_seconds());
                outputs.insert("step".into(), next);
                answer(json!({"step": step_s, "step_cpu": step_cpu}))?;
            }
            "tail" => {
                // AudioLdm::decode, timed in two parts.
                let (t, cpu) = (Instant::now(), cpu_seconds());
                let scaled = latents.affine(1.0 / model.vae.config.scaling_factor, 0.0)?;
                let mel = model.vae.decode(&scaled)?.squeeze(1)?;
                device.synchronize()?;
                let vae_s = t.elapsed().as_secs_f64();
                let vae_cpu = cpu_seconds();
                let audio = model.vocoder.forward(&mel)?.to_dtype(DType::F32)?;
                let mut wave = audio.to_vec2::<f32>()?;
                for w in &mut wave {
                    w.truncate(settings.samples);
                }
                let tail_s = t.elapsed().as_secs_f64();
                let end_cpu = cpu_seconds();
                outputs.insert("wave".into(), Tensor::new(wave, &Device::Cpu)?);
                answer(json!({
                    "tail": tail_s,
                    "vae": vae_s,
                    "vocoder": tail_s - vae_s,
                    "tail_cpu": cpu_span(cpu, end_cpu),
                    "vae_cpu": cpu_span(cpu, vae_cpu),
                    "vocoder_cpu": cpu_span(vae_cpu, end_cpu),
                }))?;
            }
            "run" => {
                let mut req = GenerateRequest::new(settings.prompt.clone());
                req.steps = settings.run_steps;
                req.guidance_scale = g;
                req.duration = Some(settings.seconds);
                req.init_latents = Some(latents.clone());
                let (t, cpu) = (Instant::now(), cpu_seconds());
                let generated = model.generate(&req, &Hooks::none())?;
                let run_s = t.elapsed().as_secs_f64();
                let run_cpu = cpu_span(cpu, cpu_seconds());
                outputs.insert(
                    "run".into(),
                    Tensor::new(generated.waveforms, &Device::Cpu)?,
                );
                answer(json!({"run": run_s, "run_cpu": run_cpu}))?;
            }
            "save" => {
                let on_cpu = outputs
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), v.to_device(&Device::Cpu)?)))
                    .collect::<candle_core::Result<HashMap<_, _>>>()?;
                candle_core::safetensors::save(&on_cpu, bench_dir.join("outputs.safetensors"))?;
                answer(json!({"saved": on_cpu.len()}))?;
            }
            "" => {}
            other => bail!("unknown command `{other}` (step, tail, run, save)"),
        }
    }
    Ok(())
}
