use std::path::Path;
use std::process::ExitCode;

use super::common::{exit_code, follow, open_engine, report_failure};

/// `grym-synth resume EXECUTION [--json]`: continues an interrupted execution.
pub fn execute(id: &str, json: bool, data_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let engine = open_engine(data_dir)?;
    let events = engine.subscribe();
    engine.resume(id)?;
    let steps = engine.execution(id).map(|e| e.step_runs.len()).unwrap_or(0);
    let run = follow(&engine, events, id, steps.max(1), json)?;
    engine.shutdown();
    if json {
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else {
        eprintln!("{} {}", run.id, run.status);
    }
    report_failure(&run);
    Ok(exit_code(run.status))
}
