use std::collections::{BTreeSet, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use grym_synth::engine::{Event, ExecutionSnapshot, ExecutionStatus, RunOptions};
use grym_synth::workflow::{self, ParamMap};
use serde::Serialize;
use serde_json::{Value, json};

use super::common::{open_engine, output_dir, parse_assignments};

/// Everything `grym-synth batch` was asked.
#[derive(Debug, clap::Args)]
pub struct BatchArgs {
    /// Workflow file (.ron or .json).
    pub workflow: PathBuf,
    /// Files: glob patterns (quote them), paths, or @LIST (a file of paths, one per line).
    #[arg(long, required = true, num_args = 1.., value_name = "GLOB|FILE|@LIST")]
    pub inputs: Vec<String>,
    /// The run parameter that receives each file (default: the one audio parameter).
    #[arg(long, value_name = "NAME")]
    pub input_param: Option<String>,
    /// Run parameter for every file, as key=value.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Take share I of N (from 0) of the sorted inputs, or `auto` for the index of a
    /// Slurm array job or a Kubernetes Indexed Job.
    #[arg(long, value_name = "I/N|auto")]
    pub shard: Option<String>,
    /// Files in flight at once (default: the engine's concurrency limit).
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Write the summary here: CSV, or JSON for a .json path.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Folder for exported files, one subfolder per input.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// One file's outcome.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct FileOutcome {
    file: PathBuf,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    execution_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seconds: Option<f64>,
    /// Step runs answered from the cache (a re-run of a file already done), of all.
    cached_steps: usize,
    steps: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The latest result of every step.
    results: serde_json::Map<String, Value>,
}

/// `grym-synth batch WORKFLOW --inputs GLOB|FILE|@LIST ... [--shard I/N|auto]`
pub fn execute(args: &BatchArgs, data_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let wf = workflow::load(&args.workflow)?;
    let fixed = parse_assignments(&args.params)?;
    let all = expand_inputs(&args.inputs)?;
    if all.is_empty() {
        bail!("--inputs matched no files");
    }
    let shard = match args.shard.as_deref() {
        Some(spec) => Shard::parse(spec, &|name| std::env::var(name).ok())?,
        None => Shard::WHOLE,
    };
    let files = shard.select(&all);
    let engine = open_engine(data_dir)?;
    let input_param = match args.input_param.as_deref() {
        Some(p) => p.to_string(),
        None => {
            let candidates = engine.registry().file_parameters(&wf);
            match candidates.as_slice() {
                [one] => one.clone(),
                [] => bail!(
                    "{}: no run parameter feeds an audio input; name one with --input-param",
                    args.workflow.display()
                ),
                many => bail!(
                    "{}: several run parameters name files ({}); choose one with --input-param",
                    args.workflow.display(),
                    many.join(", ")
                ),
            }
        }
    };
    if !wf.parameters.contains_key(&input_param) {
        bail!(
            "{}: the workflow has no run parameter `{input_param}`",
            args.workflow.display()
        );
    }
    engine
        .register(wf.clone())
        .with_context(|| args.workflow.display().to_string())?;
    let out_root = output_dir(args.out.as_deref())?;
    let parallel = args
        .parallel
        .unwrap_or(engine.config().max_concurrent_tasks)
        .max(1);
    if !args.json {
        eprintln!(
            "{} of {} files{} through `{}`, {} at a time",
            files.len(),
            all.len(),
            shard.describe(),
            wf.id,
            parallel
        );
    }

    let bar = (!args.json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(files.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let say = |line: String| match &bar {
        Some(bar) => bar.println(line),
        None if !args.json => eprintln!("{line}"),
        None => {}
    };

    let events = engine.subscribe();
    let out_names = output_names(&files);
    let mut outcomes: Vec<Option<FileOutcome>> = vec![None; files.len()];
    let mut in_flight: HashMap<String, usize> = HashMap::new();
    let mut next = 0;
    let mut done = 0;
    while done < files.len() {
        while next < files.len() && in_flight.len() < parallel {
            let index = next;
            next += 1;
            let file = &files[index];
            let mut params: ParamMap = fixed.clone();
            params.insert(
                input_param.clone(),
                Value::String(file.to_string_lossy().into_owned()),
            );
            let options = RunOptions {
                output_dir: out_root.as_ref().map(|r| r.join(&out_names[index])),
            };
            match engine.start_execution(&wf.id, params, options) {
                Ok(id) => {
                    in_flight.insert(id, index);
                }
                Err(e) => {
                    say(format!("✗ {}: {e}", file.display()));
                    outcomes[index] = Some(FileOutcome {
                        file: file.clone(),
                        status: "refused".into(),
                        execution_id: None,
                        seconds: None,
                        cached_steps: 0,
                        steps: 0,
                        error: Some(e.to_string()),
                        results: Default::default(),
                    });
                    done += 1;
                    if let Some(bar) = &bar {
                        bar.inc(1);
                    }
                }
            }
        }
        if in_flight.is_empty() {
            continue;
        }
        let finished: Vec<String> = match events.recv_timeout(Duration::from_millis(200)) {
            Ok(Event::ExecutionFinished { execution_id, .. })
                if in_flight.contains_key(&execution_id) =>
            {
                vec![execution_id]
            }
            // A missed event must not stall the batch: look now and then.
            Err(_) => in_flight
                .keys()
                .filter(|id| engine.execution(id).is_ok_and(|s| s.status.is_finished()))
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        for id in finished {
            let Some(index) = in_flight.remove(&id) else {
                continue;
            };
            let run = engine.wait(&id, Some(Duration::from_secs(5)))?;
            let outcome = outcome_of(&files[index], &run);
            match &outcome.error {
                Some(e) => say(format!("✗ {}: {e}", files[index].display())),
                None => say(format!(
                    "✓ {}{}",
                    files[index].display(),
                    cached_note(&outcome)
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                )),
            }
            outcomes[index] = Some(outcome);
            done += 1;
            if let Some(bar) = &bar {
                bar.inc(1);
                bar.set_message(files[index].display().to_string());
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    engine.shutdown();

    let outcomes: Vec<FileOutcome> = outcomes.into_iter().flatten().collect();
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    if let Some(path) = &args.summary {
        write_summary(path, &outcomes)?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "workflow": wf.id,
                "shard": shard.describe().trim(),
                "files": outcomes,
            }))?
        );
    } else {
        print_table(&outcomes);
        eprintln!(
            "{} completed, {} failed{}",
            outcomes.len() - failed,
            failed,
            args.summary
                .as_ref()
                .map(|p| format!("; summary in {}", p.display()))
                .unwrap_or_default()
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cached_note(outcome: &FileOutcome) -> Option<String> {
    (outcome.cached_steps > 0)
        .then(|| format!("{} of {} steps cached", outcome.cached_steps, outcome.steps))
}

fn outcome_of(file: &Path, run: &ExecutionSnapshot) -> FileOutcome {
    let error = (run.status != ExecutionStatus::Completed).then(|| {
        let error = run.error.as_deref().unwrap_or(run.status.as_str());
        match run.failed_step.as_deref() {
            Some(step) if !error.contains(&format!("`{step}`")) => {
                format!("step `{step}`: {error}")
            }
            _ => error.to_string(),
        }
    });
    let mut results: Vec<(&String, &Value)> = run.results.iter().collect();
    results.sort_by_key(|(step, _)| {
        run.step_runs
            .iter()
            .position(|r| &&r.step_id == step)
            .unwrap_or(usize::MAX)
    });
    FileOutcome {
        file: file.to_path_buf(),
        status: run.status.as_str().to_string(),
        execution_id: Some(run.id.clone()),
        seconds: run.duration().map(|d| d.as_secs_f64()),
        cached_steps: run.step_runs.iter().filter(|r| r.cached).count(),
        steps: run.step_runs.len(),
        error,
        results: results
            .into_iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// Every file the `--inputs` arguments name: glob patterns, plain paths, and `@LIST` files
/// of one path per line (blank lines and `#` comments skipped), relative paths in a list
/// read from the list's folder. Sorted and without repeats, so that every shard of an array
/// job sees the same order.
fn expand_inputs(args: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = BTreeSet::new();
    for arg in args {
        if let Some(list) = arg.strip_prefix('@') {
            let list = Path::new(list);
            let text = std::fs::read_to_string(list)
                .with_context(|| format!("reading the input list {}", list.display()))?;
            let base = list.parent().unwrap_or(Path::new("."));
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                files.insert(absolute(&base.join(line))?);
            }
        } else if arg.contains(['*', '?', '[']) {
            let paths = glob::glob(arg).with_context(|| format!("--inputs `{arg}`"))?;
            for path in paths {
                let path = path.with_context(|| format!("--inputs `{arg}`"))?;
                if path.is_file() {
                    files.insert(absolute(&path)?);
                }
            }
        } else {
            let path = Path::new(arg);
            if !path.is_file() {
                bail!("--inputs {arg}: no such file");
            }
            files.insert(absolute(path)?);
        }
    }
    Ok(files.into_iter().collect())
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// A deterministic share of the inputs: file `k` (in sorted order) belongs to shard
/// `k mod count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// `I/N`, or `auto`: the array index of a Slurm array job (`SLURM_ARRAY_TASK_ID` from
    /// `SLURM_ARRAY_TASK_MIN`, of `SLURM_ARRAY_TASK_COUNT`) or of a Kubernetes Indexed Job
    /// (`JOB_COMPLETION_INDEX`, of `GRYM_SHARD_COUNT`, which the job sets to its
    /// completions).
    fn parse(spec: &str, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Shard> {
        let number = |name: &str| -> anyhow::Result<Option<usize>> {
            env(name)
                .map(|v| {
                    v.trim()
                        .parse::<usize>()
                        .with_context(|| format!("${name} is `{v}`, not a whole number"))
                })
                .transpose()
        };
        let shard = if spec == "auto" {
            if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
                let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
                let count = match number("SLURM_ARRAY_TASK_COUNT")? {
                    Some(c) => c,
                    None => match number("SLURM_ARRAY_TASK_MAX")? {
                        Some(max) => max.saturating_sub(min) + 1,
                        None => bail!(
                            "--shard auto: $SLURM_ARRAY_TASK_ID is set but neither $SLURM_ARRAY_TASK_COUNT nor $SLURM_ARRAY_TASK_MAX is"
                        ),
                    },
                };
                Shard {
                    index: id.saturating_sub(min),
                    count,
                }
            } else if let Some(index) = number("JOB_COMPLETION_INDEX")? {
                let Some(count) = number("GRYM_SHARD_COUNT")? else {
                    bail!(
                        "--shard auto: $JOB_COMPLETION_INDEX is set; set $GRYM_SHARD_COUNT to the job's completions"
                    );
                };
                Shard { index, count }
            } else {
                bail!(
                    "--shard auto: no array index found ($SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX)"
                );
            }
        } else {
            let Some((i, n)) = spec.split_once('/') else {
                bail!("--shard `{spec}`: write I/N (e.g. 0/4) or auto");
            };
            let parse = |s: &str| {
                s.trim()
                    .parse::<usize>()
                    .with_context(|| format!("--shard `{spec}`: `{s}` is not a whole number"))
            };
            Shard {
                index: parse(i)?,
                count: parse(n)?,
            }
        };
        if shard.count == 0 || shard.index >= shard.count {
            bail!(
                "--shard {}/{}: the index must be below the count, counting from 0",
                shard.index,
                shard.count
            );
        }
        Ok(shard)
    }

    fn select(&self, files: &[PathBuf]) -> Vec<PathBuf> {
        files
            .iter()
            .enumerate()
            .filter(|(k, _)| k % self.count == self.index)
            .map(|(_, f)| f.clone())
            .collect()
    }

    fn describe(&self) -> String {
        if self.count == 1 {
            String::new()
        } else {
            format!(" (shard {}/{})", self.index, self.count)
        }
    }
}

/// An output folder name per file: its stem, with a number added where stems repeat.
fn output_names(files: &[PathBuf]) -> Vec<String> {
    let stem = |f: &PathBuf| {
        f.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "input".into())
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    files
        .iter()
        .map(|f| {
            let s = stem(f);
            let n = seen.entry(s.clone()).or_insert(0);
            *n += 1;
            if *n == 1 { s } else { format!("{s}-{n}") }
        })
        .collect()
}

/// The scalar figures of a file's results as `step.key` columns (numbers, strings,
/// booleans, and an audio artifact's path).
fn flatten(results: &serde_json::Map<String, Value>) -> Vec<(String, String)> {
    let mut columns = Vec::new();
    for (step, result) in results {
        let Some(fields) = result.as_object() else {
            continue;
        };
        for (key, value) in fields {
            let cell = match value {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Object(o) => match o.get("path").and_then(Value::as_str) {
                    Some(path) => path.to_string(),
                    None => continue,
                },
                _ => continue,
            };
            columns.push((format!("{step}.{key}"), cell));
        }
    }
    columns
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The summary as CSV (one row per file, a column per result figure) or, for a `.json`
/// path, JSON; written atomically.
fn write_summary(path: &Path, outcomes: &[FileOutcome]) -> anyhow::Result<()> {
    let text = if path.extension().is_some_and(|e| e == "json") {
        serde_json::to_string_pretty(outcomes)?
    } else {
        let fixed = [
            "file",
            "status",
            "seconds",
            "cachedSteps",
            "steps",
            "executionId",
            "error",
        ];
        let rows: Vec<Vec<(String, String)>> =
            outcomes.iter().map(|o| flatten(&o.results)).collect();
        let mut columns: Vec<String> = Vec::new();
        for row in &rows {
            for (name, _) in row {
                if !columns.contains(name) {
                    columns.push(name.clone());
                }
            }
        }
        let mut text = fixed
            .iter()
            .map(|s| s.to_string())
            .chain(columns.iter().cloned())
            .map(|c| csv_cell(&c))
            .collect::<Vec<_>>()
            .join(",");
        text.push('\n');
        for (o, row) in outcomes.iter().zip(&rows) {
            let mut cells = vec![
                o.file.display().to_string(),
                o.status.clone(),
                o.seconds.map(|s| format!("{s:.3}")).unwrap_or_default(),
                o.cached_steps.to_string(),
                o.steps.to_string(),
                o.execution_id.clone().unwrap_or_default(),
                o.error.clone().unwrap_or_default(),
            ];
            for c in &columns {
                cells.push(
                    row.iter()
                        .find(|(n, _)| n == c)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default(),
                );
            }
            text.push_str(
                &cells
                    .iter()
                    .map(|c| csv_cell(c))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            text.push('\n');
        }
        text
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn print_table(outcomes: &[FileOutcome]) {
    let width = outcomes
        .iter()
        .map(|o| o.file.display().to_string().chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 60);
    println!(
        "{:<width$}  {:<10} {:>8}  note",
        "file", "status", "seconds"
    );
    for o in outcomes {
        let name = o.file.display().to_string();
        let name = if name.chars().count() > width {
            let tail: String = name.chars().rev().take(width - 1).collect();
            format!("…{}", tail.chars().rev().collect::<String>())
        } else {
            name
        };
        let note = match &o.error {
            Some(e) => e.clone(),
            None => cached_note(o).unwrap_or_default(),
        };
        println!(
            "{:<width$}  {:<10} {:>8}  {}",
            name,
            o.status,
            o.seconds.map(|s| format!("{s:.2}")).unwrap_or_default(),
            note
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn shards_split_the_inputs_without_overlap() {
        let files: Vec<PathBuf> = (0..10).map(|i| PathBuf::from(format!("{i}.wav"))).collect();
        let mut seen = Vec::new();
        for i in 0..3 {
            let part = Shard { index: i, count: 3 }.select(&files);
            assert!(part.len() == 3 || part.len() == 4);
            seen.extend(part);
        }
        seen.sort();
        let mut all = files.clone();
        all.sort();
        assert_eq!(seen, all);
    }

    #[test]
    fn shard_specs_parse_from_arguments_and_array_jobs() {
        let none = env(&[]);
        assert_eq!(
            Shard::parse("1/4", &none).unwrap(),
            Shard { index: 1, count: 4 }
        );
        assert!(Shard::parse("4/4", &none).is_err());
        assert!(Shard::parse("1-4", &none).is_err());
        assert!(Shard::parse("auto", &none).is_err());
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_MAX", "8"),
        ]);
        assert_eq!(
            Shard::parse("auto", &slurm).unwrap(),
            Shard { index: 2, count: 4 }
        );
        let k8s = env(&[("JOB_COMPLETION_INDEX", "3"), ("GRYM_SHARD_COUNT", "10")]);
        assert_eq!(
            Shard::parse("auto", &k8s).unwrap(),
            Shard {
                index: 3,
                count: 10
            }
        );
        let k8s_without_count = env(&[("JOB_COMPLETION_INDEX", "3")]);
        let e = Shard::parse("auto", &k8s_without_count).unwrap_err();
        assert!(e.to_string().contains("GRYM_SHARD_COUNT"));
    }

    #[test]
    fn repeated_stems_get_distinct_output_folders() {
        let files = vec![
            PathBuf::from("a/take.wav"),
            PathBuf::from("b/take.wav"),
            PathBuf::from("c/other.flac"),
        ];
        assert_eq!(output_names(&files), ["take", "take-2", "other"]);
    }

    #[test]
    fn results_flatten_to_scalar_columns() {
        let results: serde_json::Map<String, Value> = serde_json::from_value(json!({
            "measure": {"integratedLufs": -20.5, "peak": 0.9, "bands": [1, 2]},
            "export": {"audio": {"path": "/x/y.wav", "sampleRate": 48000}, "format": "wav"}
        }))
        .unwrap();
        let cols = flatten(&results);
        assert!(cols.contains(&("measure.integratedLufs".into(), "-20.5".into())));
        assert!(cols.contains(&("export.audio".into(), "/x/y.wav".into())));
        assert!(!cols.iter().any(|(n, _)| n == "measure.bands"));
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
