use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use grym_synth::engine::RunOptions;
use grym_synth::workflow::{InputSource, StepInput, StepType, Workflow, WorkflowStep};

use super::common::{
    exit_code, follow, open_engine, output_dir, parse_assignment, parse_assignments, report_failure,
};

/// `grym-synth op TYPE/OPERATION [--input name=path]... [--param key=value]... [--json]`:
/// runs one operation as a one-step workflow, so it is recorded and cached like any other.
pub fn execute(
    operation: &str,
    inputs: &[String],
    params: &[String],
    json: bool,
    out: Option<&Path>,
    data_dir: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let Some((type_name, name)) = operation.split_once('/') else {
        bail!("`{operation}`: write the operation as TYPE/NAME, e.g. analysis/features");
    };
    let step_type = StepType::parse(type_name).ok_or_else(|| {
        anyhow!(
            "`{type_name}` is not a step type (analysis, generation, conditional, transformation)"
        )
    })?;
    let engine = open_engine(data_dir)?;
    if engine.registry().get(step_type, name).is_none() {
        let names: Vec<String> = engine
            .registry()
            .specs()
            .map(|s| s.qualified_name())
            .collect();
        bail!(
            "there is no operation `{operation}`; run `grym-synth ops` to list them ({})",
            names.join(", ")
        );
    }
    let mut step = WorkflowStep::new("op", step_type, name);
    step.parameters = parse_assignments(params)?;
    let inputs = inputs
        .iter()
        .map(|a| parse_assignment(a))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut wf = Workflow::new(&format!("op-{step_type}-{name}"), operation, step.clone());
    // A name given several times (a variadic input such as mix's `audio`) is one input per
    // value, in order, each read from a parameter of its own.
    let repeats = |n: &str| inputs.iter().filter(|(other, _)| other == n).count();
    for (i, (input_name, value)) in inputs.iter().enumerate() {
        let key = if repeats(input_name) > 1 {
            format!("input.{input_name}.{i}")
        } else {
            format!("input.{input_name}")
        };
        wf.parameters.insert(key.clone(), value.clone());
        let mut input = StepInput::new(InputSource::Parameter, &key);
        input.name = Some(input_name.clone());
        step.inputs.push(input);
    }
    wf.steps.insert("op".into(), step);
    let events = engine.subscribe();
    let id = engine.run(
        wf,
        Default::default(),
        RunOptions {
            output_dir: output_dir(out)?,
        },
    )?;
    let run = follow(&engine, events, &id, 1, json)?;
    engine.shutdown();
    if let Some(result) = run.results.get("op") {
        println!("{}", serde_json::to_string_pretty(result)?);
    }
    report_failure(&run);
    Ok(exit_code(run.status))
}
