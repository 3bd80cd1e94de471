use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Local};

use super::common::open_engine;

/// `grym-synth history [--json] [--limit N]`: past executions, newest first.
pub fn execute(json: bool, limit: usize, data_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let engine = open_engine(data_dir)?;
    let records = engine.history(limit)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        eprintln!(
            "no executions recorded in {}",
            engine.store().path().display()
        );
    }
    for r in records {
        let started: DateTime<Local> = r.started_at.into();
        let took = r
            .finished_at
            .and_then(|f| f.duration_since(r.started_at).ok())
            .map(|d| format!("{:.2} s", d.as_secs_f64()))
            .unwrap_or_else(|| "-".into());
        println!(
            "{}  {}  {:<12} {:<28} {:>9}  {}",
            r.id,
            started.format("%Y-%m-%d %H:%M:%S"),
            r.status.as_str(),
            r.workflow_id,
            took,
            r.error.unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
