use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::common::{open_engine, roots_or_current};

/// `grym-synth mcp [--root DIR]...`: the MCP server on stdio. Stdout carries the protocol,
/// so everything else goes to stderr.
pub fn execute(roots: Vec<PathBuf>, data_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let engine = open_engine(data_dir)?;
    let loaded = engine.load_saved_workflows()?;
    tracing::info!("{loaded} saved workflow(s) loaded");
    let roots = roots_or_current(roots)?;
    let served = grym_synth::api::mcp::serve_stdio(engine.clone(), &roots);
    // The client is gone: nobody will read what is still running, so stop it and keep the
    // records.
    for execution in engine.executions() {
        if !execution.status.is_finished() {
            let _ = engine.cancel(&execution.id);
        }
    }
    engine.shutdown();
    served?;
    Ok(ExitCode::SUCCESS)
}
