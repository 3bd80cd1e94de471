use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use grym_synth::engine::operation::CancellationToken;
use grym_synth::engine::optimize::{
    OptimizeError, RunSettings, StartDesign, Study, StudyDefinition, StudyEvent, best_of,
};
use grym_synth::engine::store::{StudyRecord, TrialRecord, TrialState};
use grym_synth::workflow::{self, Direction, Tunable};
use serde_json::{Value, json};

use super::common::{open_engine, parse_assignment};

/// Everything `grym-synth optimize` was asked.
#[derive(Debug, clap::Args)]
pub struct OptimizeArgs {
    /// Workflow file (.ron or .json); its `optimization` section names the objective and
    /// the tunable parameters, which --param and --objective add to or replace.
    #[arg(required_unless_present_any = ["resume", "show"])]
    pub workflow: Option<PathBuf>,
    /// NAME=RANGE tunes a run parameter (`1..5`, `1e-3..1:log`, `10..50` for integers,
    /// `a|b|c` for choices); NAME=VALUE fixes one for every trial.
    #[arg(long = "param", value_name = "NAME=SPEC")]
    pub params: Vec<String>,
    /// Trials to run (default: the workflow's budget, else 20).
    #[arg(long)]
    pub budget: Option<u32>,
    /// Trials in flight at once.
    #[arg(long, default_value_t = 2)]
    pub parallel: usize,
    /// Trials of the start design before the estimator takes over.
    #[arg(long)]
    pub startup: Option<u32>,
    /// Start from a grid instead of random points.
    #[arg(long)]
    pub grid: bool,
    /// Stop after this many trials in a row without improvement.
    #[arg(long)]
    pub patience: Option<u32>,
    /// Seed of the start design and the sampler.
    #[arg(long)]
    pub seed: Option<u64>,
    /// What to improve: `<step>.result.<path>`.
    #[arg(long)]
    pub objective: Option<String>,
    /// maximize (default) or minimize.
    #[arg(long)]
    pub direction: Option<String>,
    /// Continue a recorded study.
    #[arg(long, value_name = "STUDY", conflicts_with = "workflow")]
    pub resume: Option<String>,
    /// Print a recorded study's trials and stop.
    #[arg(long, value_name = "STUDY", conflicts_with_all = ["workflow", "resume"])]
    pub show: Option<String>,
    /// Store the workflow with the best values as its defaults, as a new version.
    #[arg(long)]
    pub apply: bool,
    #[arg(long)]
    pub json: bool,
}

/// `grym-synth optimize WORKFLOW [--param NAME=RANGE|CHOICES|VALUE]... --budget N ...`
pub fn execute(args: &OptimizeArgs, data_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let engine = open_engine(data_dir)?;
    if let Some(id) = &args.show {
        let study = Study::open(&engine, id)?;
        print_study(study.record(), study.trials(), None, args.json)?;
        engine.shutdown();
        return Ok(ExitCode::SUCCESS);
    }
    let mut study = match (&args.resume, args.workflow.as_deref()) {
        (Some(id), _) => Study::open(&engine, id)?,
        (None, Some(file)) => {
            let wf = workflow::load(file)?;
            let id = wf.id.clone();
            let mut definition = StudyDefinition {
                objective: args.objective.clone(),
                seed: args.seed,
                ..Default::default()
            };
            if let Some(d) = &args.direction {
                definition.direction =
                    Some(Direction::parse(d).with_context(|| {
                        format!("--direction `{d}`: write maximize or minimize")
                    })?);
            }
            for arg in &args.params {
                let (name, value) = parse_assignment(arg)?;
                let text = arg.split_once('=').map_or("", |(_, v)| v);
                match Tunable::parse_cli(text) {
                    Some(Ok(tunable)) => {
                        definition.tune.insert(name, tunable);
                    }
                    Some(Err(e)) => bail!("--param {name}: {e}"),
                    None => {
                        definition.fixed.insert(name, value);
                    }
                }
            }
            engine
                .register(wf)
                .with_context(|| format!("{}", file.display()))?;
            match Study::create(&engine, &id, definition) {
                Err(OptimizeError::Invalid { problems, .. }) => {
                    eprintln!("{}: cannot optimise this workflow", file.display());
                    for p in problems {
                        eprintln!("{p}");
                    }
                    return Ok(ExitCode::from(2));
                }
                other => other?,
            }
        }
        (None, None) => bail!("give a workflow file, --resume STUDY or --show STUDY"),
    };
    let settings = RunSettings {
        budget: args.budget,
        parallel: args.parallel,
        startup: args.startup,
        start: if args.grid {
            StartDesign::Grid
        } else {
            StartDesign::Random
        },
        patience: args.patience,
    };
    let direction = study.record().direction();
    if !args.json {
        eprintln!(
            "study {} of `{}`: {} {}",
            study.id(),
            study.record().workflow_id,
            direction.as_str(),
            study.record().optimization.objective
        );
    }
    let mut best: Option<f64> = study.best().and_then(|t| t.score);
    let stop = study.run(&settings, &CancellationToken::new(), |event| {
        if args.json {
            return;
        }
        if let StudyEvent::TrialFinished(trial) = event {
            let improved = trial
                .score
                .is_some_and(|s| best.is_none_or(|b| direction.better(s, b)));
            if improved {
                best = trial.score;
            }
            eprintln!(
                "trial {:>3}  {:<10} {:>12}  {}{}",
                trial.number,
                trial.state.as_str(),
                trial.score.map_or_else(String::new, |s| format!("{s:.6}")),
                format_params(&trial.params),
                if improved { "  ← best" } else { "" }
            );
            if let Some(e) = &trial.error {
                eprintln!("           {e}");
            }
        }
    })?;
    let applied = if args.apply {
        study.apply_best("grym-synth optimize")?
    } else {
        None
    };
    print_study(study.record(), study.trials(), Some(json!(stop)), args.json)?;
    if let Some((version, trial)) = &applied {
        if args.json {
            println!(
                "{}",
                json!({"appliedVersion": version, "trial": trial.number})
            );
        } else {
            eprintln!(
                "stored version {version} of `{}` with trial {}'s values as its defaults",
                study.record().workflow_id,
                trial.number
            );
        }
    }
    engine.shutdown();
    let any_scored = study.best().is_some();
    Ok(if any_scored {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn format_params(params: &Value) -> String {
    params
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| match v.as_f64() {
                    Some(f) if !v.is_i64() => format!("{k}={f:.4}"),
                    _ => format!("{k}={v}"),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn print_study(
    study: &StudyRecord,
    trials: &[TrialRecord],
    stop: Option<Value>,
    json: bool,
) -> anyhow::Result<()> {
    let best = best_of(trials, study.direction());
    if json {
        let mut out = json!({
            "study": study,
            "trials": trials,
            "best": best,
        });
        if let Some(stop) = stop {
            out["stopped"] = stop;
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let completed = trials
        .iter()
        .filter(|t| t.state == TrialState::Completed)
        .count();
    println!(
        "study {}  workflow {}  {} {}",
        study.id,
        study.workflow_id,
        study.direction().as_str(),
        study.optimization.objective
    );
    println!(
        "{:>5}  {:<11} {:>12}  parameters",
        "trial", "state", "score"
    );
    for t in trials {
        println!(
            "{:>5}  {:<11} {:>12}  {}",
            t.number,
            t.state.as_str(),
            t.score
                .map_or_else(|| "—".to_string(), |s| format!("{s:.6}")),
            format_params(&t.params)
        );
    }
    let stopped = stop
        .as_ref()
        .and_then(|s| s.get("reason"))
        .and_then(Value::as_str)
        .map(|r| format!(", stopped: {}", r.replace('_', " ")))
        .unwrap_or_default();
    match best {
        Some(b) => println!(
            "{completed} of {} trials scored{stopped}; best: trial {} with {:.6} ({})",
            trials.len(),
            b.number,
            b.score.unwrap_or(f64::NAN),
            format_params(&b.params)
        ),
        None => println!("no trial scored ({} run){stopped}", trials.len()),
    }
    Ok(())
}
