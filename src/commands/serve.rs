use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use grym_synth::api::{ApiConfig, serve};

use super::common::{open_engine, roots_or_current};

/// `grym-synth serve [--bind ADDR] [--token TOKEN] [--root DIR]...`
pub fn execute(
    bind: SocketAddr,
    token: Option<String>,
    roots: Vec<PathBuf>,
    data_dir: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    // Refuse before opening anything.
    grym_synth::api::security::check_bind(bind, token.as_deref()).map_err(anyhow::Error::msg)?;
    let engine = open_engine(data_dir)?;
    let loaded = engine.load_saved_workflows()?;
    tracing::info!("{loaded} saved workflow(s) loaded");
    let roots = roots_or_current(roots)?;
    serve(
        engine,
        ApiConfig {
            bind,
            token: token.filter(|t| !t.is_empty()),
            roots,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
