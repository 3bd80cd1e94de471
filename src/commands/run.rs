use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use grym_synth::engine::RunOptions;
use grym_synth::workflow::{self, Severity};

use super::common::{
    exit_code, follow, open_engine, output_dir, parse_assignments, report_failure,
};

/// `grym-synth run WORKFLOW [--param key=value]... [--json] [--out DIR]`
pub fn execute(
    file: &Path,
    params: &[String],
    json: bool,
    out: Option<&Path>,
    data_dir: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let wf = workflow::load(file)?;
    let params = parse_assignments(params)?;
    let engine = open_engine(data_dir)?;
    let report = match engine.register(wf.clone()) {
        Ok(report) => report,
        Err(grym_synth::engine::EngineError::Invalid { report, .. }) => {
            eprintln!("{}: the workflow is invalid", file.display());
            for p in report.errors() {
                eprintln!("  error[{}] {}: {}", p.code, p.field, p.message);
                if let Some(h) = &p.hint {
                    eprintln!("    hint: {h}");
                }
            }
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    for p in report
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Warning)
    {
        eprintln!("warning[{}] {}: {}", p.code, p.field, p.message);
    }
    let events = engine.subscribe();
    let options = RunOptions {
        output_dir: output_dir(out)?,
    };
    let id = engine
        .start_execution(&wf.id, params, options)
        .with_context(|| format!("starting {}", file.display()))?;
    let run = follow(&engine, events, &id, wf.steps.len(), json)?;
    engine.shutdown();
    if json {
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else {
        let took = run
            .duration()
            .map(|d| format!(" in {:.2} s", d.as_secs_f64()))
            .unwrap_or_default();
        // The output folder exists only when a step wrote into it.
        let output = if run.output_dir.is_dir() {
            format!(", output in {}", run.output_dir.display())
        } else {
            String::new()
        };
        eprintln!(
            "{} {}{took}: {} step run(s){output}",
            run.id,
            run.status,
            run.step_runs.len(),
        );
    }
    report_failure(&run);
    Ok(exit_code(run.status))
}
