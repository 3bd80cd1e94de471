//! `transformation/report`: gathers what a workflow measured into one JSON file in the run's
//! output folder.

use std::io::Write;

use serde_json::{Value, json};

use super::support::{FnOperation, SpecExt, plain_file_name, spec};
use crate::engine::{OpContext, OpError, ParamKind};
use crate::workflow::StepType;

pub fn report() -> FnOperation {
    let mut report = FnOperation {
        spec: spec(
            StepType::Transformation,
            "report",
            "Writes a JSON report into the run's output folder. `content` is an object of \
             names to values; a value `\"context.<step>.result.<path>\"` is replaced by that \
             part of an earlier step's result and `\"parameter.<name>\"` by a run parameter \
             before the step runs (at any depth), so one step gathers what the workflow \
             measured into one file. The file is written atomically; the result holds its \
             path and the report.",
        )
        .param(
            "content",
            ParamKind::Json,
            None,
            "the report: an object of names to values or references",
        )
        .param(
            "fileName",
            ParamKind::String,
            Some(json!("report.json")),
            "name of the file in the output folder (.json is added when missing)",
        )
        .output("report", "the report as written")
        .output("path", "the written file"),
        run: run_report,
    };
    if let Some(content) = report.spec.parameters.first_mut() {
        content.required = true;
    }
    // The file belongs to the run's output folder: every run writes its own.
    report.spec.deterministic = false;
    report
}

fn run_report(ctx: &OpContext<'_>) -> Result<Value, OpError> {
    let content = ctx
        .param("content")
        .filter(|c| c.is_object())
        .ok_or_else(|| OpError::invalid("parameter `content` must be an object"))?;
    let name = plain_file_name(ctx.str_param("fileName")?, "json")?;
    let text = serde_json::to_vec_pretty(content)
        .map_err(|e| OpError::failed(format!("cannot encode the report: {e}")))?;
    let folder = ctx.output_dir;
    let failed = |e: std::io::Error| OpError::failed(format!("{}: {e}", folder.display()));
    std::fs::create_dir_all(folder).map_err(failed)?;
    let target = folder.join(name);
    // Write beside the target, then rename, so a reader never sees half a report.
    let mut scratch = tempfile::Builder::new()
        .prefix(".grym-report-")
        .suffix(".json")
        .tempfile_in(folder)
        .map_err(failed)?;
    scratch.write_all(&text).map_err(failed)?;
    scratch.write_all(b"\n").map_err(failed)?;
    scratch
        .persist(&target)
        .map_err(|e| OpError::failed(format!("{}: {}", target.display(), e.error)))?;
    Ok(json!({ "report": content, "path": target }))
}
