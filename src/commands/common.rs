//! What the engine-driving subcommands share: opening the engine, parsing `key=value`
//! arguments, and following an execution's events.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use grym_synth::engine::{Engine, EngineConfig, Event, ExecutionSnapshot, ExecutionStatus};
use grym_synth::workflow::ParamMap;
use serde_json::Value;

/// Opens the engine on the data folder (`--data-dir`, `$GRYM_DATA_DIR`, or the platform's).
pub fn open_engine(data_dir: Option<&Path>) -> anyhow::Result<Engine> {
    let dir = data_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(EngineConfig::default_data_dir);
    let mut config = EngineConfig::new(&dir);
    if let Some(n) = std::env::var("GRYM_MAX_CONCURRENT_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.max_concurrent_tasks = n;
    }
    Engine::start(config, grym_synth::ops::builtin_registry())
        .with_context(|| format!("opening the engine in {}", dir.display()))
}

/// `key=value`, the value read as JSON where it parses (`0.5`, `true`, `[1,2]`, `"x"`),
/// else taken as a string (`audio.wav`).
pub fn parse_assignment(arg: &str) -> anyhow::Result<(String, Value)> {
    let Some((key, value)) = arg.split_once('=') else {
        bail!("`{arg}` is not key=value");
    };
    let key = key.trim();
    if key.is_empty() {
        bail!("`{arg}` has no key before `=`");
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
    Ok((key.to_string(), value))
}

pub fn parse_assignments(args: &[String]) -> anyhow::Result<ParamMap> {
    args.iter().map(|a| parse_assignment(a)).collect()
}

/// Follows an execution's events until it finishes: a progress bar on a terminal, one line
/// per step otherwise (unless `quiet`). Returns the final snapshot.
pub fn follow(
    engine: &Engine,
    events: crossbeam_channel::Receiver<Event>,
    execution_id: &str,
    total_steps: usize,
    quiet: bool,
) -> anyhow::Result<ExecutionSnapshot> {
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(total_steps as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let say = |line: String| match &bar {
        Some(bar) => bar.println(line),
        None if !quiet => eprintln!("{line}"),
        None => {}
    };
    loop {
        let event = match events.recv_timeout(Duration::from_millis(200)) {
            Ok(e) => e,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if engine.execution(execution_id)?.status.is_finished() {
                    break;
                }
                continue;
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        if event.execution_id() != Some(execution_id) {
            continue;
        }
        match event {
            Event::StepStarted {
                step_id, iteration, ..
            } => {
                if let Some(bar) = &bar {
                    bar.set_message(format!("{step_id} (run {iteration})"));
                }
            }
            Event::StepProgress {
                step_id,
                fraction,
                message,
                ..
            } => {
                if let Some(bar) = &bar {
                    bar.set_message(format!("{step_id} {:.0}% {message}", fraction * 100.0));
                }
            }
            Event::StepFinished {
                step_id,
                iteration,
                duration_ms,
                cached,
                branch,
                ..
            } => {
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
                let mut line = format!("✓ {step_id}");
                if iteration > 1 {
                    line.push_str(&format!(" (run {iteration})"));
                }
                line.push_str(&format!(" {}", format_ms(duration_ms)));
                if cached {
                    line.push_str(" cached");
                }
                if let Some(b) = branch {
                    line.push_str(&format!(" → {b}"));
                }
                say(line);
            }
            Event::StepFailed {
                step_id,
                error,
                will_retry,
                attempt,
                ..
            } => {
                let retry = if will_retry { ", retrying" } else { "" };
                say(format!("✗ {step_id} (attempt {attempt}): {error}{retry}"));
            }
            Event::ExecutionFinished { .. } => break,
            _ => {}
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(engine.wait(execution_id, None)?)
}

pub fn format_ms(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0} µs", ms * 1e3)
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1e3)
    }
}

/// The exit status for a finished execution: 0 completed, 1 otherwise.
pub fn exit_code(status: ExecutionStatus) -> std::process::ExitCode {
    if status == ExecutionStatus::Completed {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}

/// Prints why an execution did not complete, naming the step.
pub fn report_failure(run: &ExecutionSnapshot) {
    if run.status == ExecutionStatus::Completed {
        return;
    }
    let step = run
        .failed_step
        .as_deref()
        .map(|s| format!(" at step `{s}`"))
        .unwrap_or_default();
    eprintln!(
        "error: execution {} {}{step}: {}",
        run.id,
        run.status,
        run.error.as_deref().unwrap_or("no reason recorded")
    );
}

/// `--out DIR`, made absolute so that the recorded output folder means the same later.
pub fn output_dir(out: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
    out.map(|p| {
        std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
        std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))
    })
    .transpose()
}

/// The workspace roots a server confines request paths to: those given, else the current
/// folder.
pub fn roots_or_current(roots: Vec<PathBuf>) -> anyhow::Result<Vec<PathBuf>> {
    if roots.is_empty() {
        Ok(vec![std::env::current_dir()?])
    } else {
        Ok(roots)
    }
}
