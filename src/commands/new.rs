use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use grym_synth::workflow::{self, templates};

/// `grym-synth new --template NAME OUT`
pub fn execute(
    template: Option<&str>,
    list: bool,
    output: Option<&Path>,
    force: bool,
) -> anyhow::Result<ExitCode> {
    if list {
        for t in templates::TEMPLATES {
            println!("{:<24} {}", t.name, t.description);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(name), Some(output)) = (template, output) else {
        bail!("give --template NAME and an output file");
    };
    let template = templates::find(name).ok_or_else(|| {
        let names: Vec<&str> = templates::TEMPLATES.iter().map(|t| t.name).collect();
        anyhow!(
            "no template named `{name}`; the templates are: {}",
            names.join(", ")
        )
    })?;
    if output.exists() && !force {
        bail!(
            "{} already exists; pass --force to replace it",
            output.display()
        );
    }
    workflow::Format::from_path(output)?;
    let mut wf = template.load()?;
    let now = chrono::Utc::now();
    wf.metadata.created_at = now;
    wf.metadata.updated_at = now;
    workflow::save(output, &wf).with_context(|| format!("writing {}", output.display()))?;
    eprintln!("wrote {} from template `{name}`", output.display());
    Ok(ExitCode::SUCCESS)
}
