use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use grym_synth::workflow;

/// `grym-synth convert IN OUT`
pub fn execute(input: &Path, output: &Path) -> anyhow::Result<ExitCode> {
    if input == output {
        bail!("{}: input and output are the same file", input.display());
    }
    workflow::Format::from_path(output)?;
    let wf = workflow::load(input)?;
    workflow::save(output, &wf).with_context(|| format!("writing {}", output.display()))?;
    eprintln!("wrote {}", output.display());
    Ok(ExitCode::SUCCESS)
}
