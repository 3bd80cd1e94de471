//! `grym-synth models list|fetch`: the models in the local Hugging Face cache, and
//! downloading one ahead of time so that runs work offline.

use std::process::ExitCode;

use anyhow::Context;
use grym_synth::models::repo::{HubOptions, cached_models};
use grym_synth::models::{ModelRepo, wav2vec2};

pub fn list(json: bool) -> anyhow::Result<ExitCode> {
    let models =
        cached_models(&HubOptions::from_env()).context("reading the Hugging Face cache")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&models)?);
        return Ok(ExitCode::SUCCESS);
    }
    if models.is_empty() {
        println!("no models in the Hugging Face cache yet");
        println!(
            "the operations' default Wav2Vec2 model is {}; fetch it with `grym-synth models fetch {}`",
            wav2vec2::DEFAULT_MODEL,
            wav2vec2::DEFAULT_MODEL
        );
        return Ok(ExitCode::SUCCESS);
    }
    for m in &models {
        println!(
            "{:<48} {:>9.1} MB  {}",
            m.id,
            m.bytes as f64 / 1e6,
            m.revisions.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn fetch(id: &str, revision: Option<&str>) -> anyhow::Result<ExitCode> {
    let repo = ModelRepo::open(id, revision)?;
    if repo.local_dir().is_some() {
        println!("{id} is a local directory: nothing to fetch");
        return Ok(ExitCode::SUCCESS);
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let files = repo.fetch_all(&mut |p| {
        bar.set_message(p.file.to_string());
        bar.set_length(p.total);
        bar.set_position(p.done);
    })?;
    bar.finish_and_clear();
    println!("{}: {} files in the cache", repo.name(), files.len());
    Ok(ExitCode::SUCCESS)
}
