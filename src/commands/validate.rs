use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use grym_synth::workflow::{self, Problem, Severity, StepCatalog};
use serde::Serialize;

/// The `--json` report: one entry per file, in the order given.
#[derive(Serialize)]
struct JsonReport {
    valid: bool,
    files: Vec<FileReport>,
}

#[derive(Serialize)]
struct FileReport {
    path: PathBuf,
    /// `valid`, `invalid` or `unreadable`.
    status: &'static str,
    /// Why the file could not be read or parsed (only when `unreadable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    problems: Vec<Problem>,
}

fn check_file(path: &Path, catalog: Option<&dyn StepCatalog>) -> FileReport {
    match workflow::load(path) {
        Err(e) => FileReport {
            path: path.to_path_buf(),
            status: "unreadable",
            error: Some(e.to_string()),
            problems: Vec::new(),
        },
        Ok(wf) => {
            let report = workflow::validate(&wf, catalog);
            FileReport {
                path: path.to_path_buf(),
                status: if report.is_valid() {
                    "valid"
                } else {
                    "invalid"
                },
                error: None,
                problems: report.problems,
            }
        }
    }
}

/// `grym-synth validate FILE... [--json]`, checking steps against `catalog` when given.
pub fn execute_with(
    files: &[PathBuf],
    json: bool,
    catalog: Option<&dyn StepCatalog>,
) -> anyhow::Result<ExitCode> {
    let reports: Vec<FileReport> = files.iter().map(|f| check_file(f, catalog)).collect();
    let code = if reports.iter().any(|r| r.status == "unreadable") {
        2
    } else if reports.iter().any(|r| r.status == "invalid") {
        1
    } else {
        0
    };
    let mut out = std::io::stdout().lock();
    if json {
        let report = JsonReport {
            valid: code == 0,
            files: reports,
        };
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        for r in &reports {
            print_human(&mut out, r)?;
        }
    }
    Ok(ExitCode::from(code))
}

fn print_human(out: &mut impl Write, r: &FileReport) -> std::io::Result<()> {
    if let Some(error) = &r.error {
        return writeln!(out, "{error}");
    }
    let count = |s| r.problems.iter().filter(|p| p.severity == s).count();
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    writeln!(
        out,
        "{}: {} ({} error{}, {} warning{})",
        r.path.display(),
        r.status,
        errors,
        if errors == 1 { "" } else { "s" },
        warnings,
        if warnings == 1 { "" } else { "s" },
    )?;
    for p in &r.problems {
        let label = match p.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "note",
        };
        writeln!(out, "  {label}[{}] {}: {}", p.code, p.field, p.message)?;
        if let Some(hint) = &p.hint {
            writeln!(out, "    hint: {hint}")?;
        }
    }
    Ok(())
}
