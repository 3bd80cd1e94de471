use std::process::ExitCode;

use grym_synth::engine::{OperationSpec, ParamKind};

/// `grym-synth ops [--json]`: the operation catalog.
pub fn execute(json: bool) -> anyhow::Result<ExitCode> {
    let registry = grym_synth::ops::builtin_registry();
    let specs: Vec<&OperationSpec> = registry.specs().collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&specs)?);
        return Ok(ExitCode::SUCCESS);
    }
    for spec in specs {
        println!(
            "{}\n  {}",
            spec.qualified_name(),
            spec.description.replace('\n', "\n  ")
        );
        for input in &spec.inputs {
            println!("  input  {:<22} {}", input.name, input.description);
        }
        for p in &spec.parameters {
            let default = p
                .default
                .as_ref()
                .map(|d| format!(" = {d}"))
                .unwrap_or_default();
            println!(
                "  param  {:<22} {}{default}  {}",
                p.name,
                kind(&p.kind),
                p.description
            );
        }
        for o in &spec.outputs {
            println!("  result {:<22} {}", o.name, o.description);
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

fn kind(kind: &ParamKind) -> String {
    let range = |lo: Option<String>, hi: Option<String>| match (lo, hi) {
        (None, None) => String::new(),
        (lo, hi) => format!(
            " [{}, {}]",
            lo.unwrap_or_else(|| "…".into()),
            hi.unwrap_or_else(|| "…".into())
        ),
    };
    match kind {
        ParamKind::Number { min, max } => format!(
            "number{}",
            range(min.map(|v| v.to_string()), max.map(|v| v.to_string()))
        ),
        ParamKind::Integer { min, max } => format!(
            "integer{}",
            range(min.map(|v| v.to_string()), max.map(|v| v.to_string()))
        ),
        ParamKind::Boolean => "boolean".into(),
        ParamKind::String => "string".into(),
        ParamKind::Choice { choices } => choices.join("|"),
        ParamKind::Path { .. } => "path".into(),
        ParamKind::StringList => "list of strings".into(),
        ParamKind::Json => "json".into(),
    }
}
