//! Reading and writing workflow files: `.ron` (native) and `.json`. Saves are atomic.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::model::{SCHEMA_VERSION, Workflow};

/// Files larger than this are refused before they are read.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The two file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ron,
    Json,
}

impl Format {
    /// The format a path's extension names.
    pub fn from_path(path: &Path) -> Result<Format, FileError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("ron") => Ok(Format::Ron),
            Some("json") => Ok(Format::Json),
            _ => Err(FileError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// Where in a file a parse error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
    /// The offending line, as it is in the file.
    pub source_line: String,
}

/// Why a workflow file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{}: cannot tell the format: use a .ron or .json file name", path.display())]
    UnknownFormat { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: the file is {size} bytes; workflow files are limited to {limit} bytes", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{}", format_parse_error(path.as_deref(), location.as_ref(), message))]
    Parse {
        path: Option<PathBuf>,
        location: Option<Location>,
        message: String,
    },
    #[error(
        "{}: written by a newer grym-synth (workflow schema version {found}); this build reads versions up to {supported}. Update grym-synth to open it.",
        path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "<input>".into())
    )]
    NewerSchema {
        path: Option<PathBuf>,
        found: u64,
        supported: u32,
    },
    #[error("cannot serialize the workflow: {0}")]
    Serialize(String),
}

fn format_parse_error(path: Option<&Path>, location: Option<&Location>, message: &str) -> String {
    let name = path
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<input>".into());
    match location {
        Some(loc) => format!(
            "{name}:{}:{}: {message}\n  {} | {}\n  {} | {}^",
            loc.line,
            loc.column,
            loc.line,
            loc.source_line,
            " ".repeat(loc.line.to_string().len()),
            " ".repeat(loc.column.saturating_sub(1)),
        ),
        None => format!("{name}: {message}"),
    }
}

impl FileError {
    /// Attaches the file name to an error from parsing text.
    pub fn with_path(self, path: &Path) -> Self {
        match self {
            FileError::Parse {
                location, message, ..
            } => FileError::Parse {
                path: Some(path.to_path_buf()),
                location,
                message,
            },
            FileError::NewerSchema {
                found, supported, ..
            } => FileError::NewerSchema {
                path: Some(path.to_path_buf()),
                found,
                supported,
            },
            other => other,
        }
    }
}

fn location_in(text: &str, line: usize, column: usize) -> Option<Location> {
    if line == 0 {
        return None;
    }
    let source_line = text.lines().nth(line - 1).unwrap_or("");
    // Keep quoted lines readable when the "line" is a megabyte of minified JSON.
    let source_line = if source_line.chars().count() > 200 {
        let start = column.saturating_sub(80);
        source_line
            .chars()
            .skip(start)
            .take(160)
            .collect::<String>()
    } else {
        source_line.to_string()
    };
    Some(Location {
        line,
        column: column.max(1),
        source_line,
    })
}

/// Parses workflow text in the given format.
pub fn parse_str(text: &str, format: Format) -> Result<Workflow, FileError> {
    if text.trim().is_empty() {
        return Err(FileError::Parse {
            path: None,
            location: None,
            message: "the file is empty".into(),
        });
    }
    let workflow = match format {
        Format::Json => parse_json(text)?,
        Format::Ron => parse_ron(text)?,
    };
    check_finite_numbers(&workflow)?;
    Ok(workflow)
}

/// RON reads `inf` and `NaN`, JSON cannot write them: refuse them in the model's own number
/// fields so that every workflow that loads also saves in both formats.
fn check_finite_numbers(workflow: &Workflow) -> Result<(), FileError> {
    let refuse = |field: String, value: f64| FileError::Parse {
        path: None,
        location: None,
        message: format!("{field} is {value}; it must be a finite number"),
    };
    for (id, step) in &workflow.steps {
        if let Some(t) = step.timeout_seconds
            && !t.is_finite()
        {
            return Err(refuse(format!("steps.{id}.timeoutSeconds"), t));
        }
    }
    if let Some(layout) = &workflow.layout {
        for (id, p) in &layout.nodes {
            for (axis, v) in [("x", p.x), ("y", p.y)] {
                if !v.is_finite() {
                    return Err(refuse(format!("layout.nodes.{id}.{axis}"), f64::from(v)));
                }
            }
        }
    }
    Ok(())
}

fn check_schema_version(version: Option<&Value>) -> Result<(), FileError> {
    if let Some(found) = version.and_then(Value::as_u64)
        && found > u64::from(SCHEMA_VERSION)
    {
        return Err(FileError::NewerSchema {
            path: None,
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

fn parse_json(text: &str) -> Result<Workflow, FileError> {
    let json_error = |e: serde_json::Error| FileError::Parse {
        path: None,
        location: location_in(text, e.line(), e.column()),
        message: e
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    // Look at the schema version before the strict parse, so a newer file is refused with
    // the right reason instead of an "unknown field" from a field we have never heard of.
    let value: Value = serde_json::from_str(text).map_err(json_error)?;
    check_schema_version(value.get("schemaVersion"))?;
    serde_json::from_str(text).map_err(json_error)
}

fn parse_ron(text: &str) -> Result<Workflow, FileError> {
    let ron_error = |e: ron::error::SpannedError| FileError::Parse {
        path: None,
        location: location_in(text, e.span.start.line, e.span.start.col),
        message: e.code.to_string(),
    };
    match ron::Options::default().from_str::<Workflow>(text) {
        Ok(workflow) => {
            check_schema_version(Some(&Value::from(workflow.schema_version)))?;
            Ok(workflow)
        }
        Err(e) => {
            // A newer file may fail on fields this build has never heard of: say why.
            if let Some(found) = ron_schema_version(text) {
                check_schema_version(Some(&Value::from(found)))?;
            }
            Err(ron_error(e))
        }
    }
}

/// Guesses `schemaVersion: N` in RON text that does not parse, to explain the failure.
fn ron_schema_version(text: &str) -> Option<u64> {
    let at = text.find("schemaVersion")?;
    let rest = text[at + "schemaVersion".len()..]
        .trim_start()
        .strip_prefix(':')?;
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Serializes a workflow in the given format, pretty-printed.
pub fn to_string(workflow: &Workflow, format: Format) -> Result<String, FileError> {
    match format {
        Format::Json => serde_json::to_string_pretty(workflow)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| FileError::Serialize(e.to_string())),
        Format::Ron => {
            // `implicit_some` keeps hand-edited files free of `Some(...)` wrappers.
            let config = ron::ser::PrettyConfig::new()
                .struct_names(false)
                .extensions(ron::extensions::Extensions::IMPLICIT_SOME)
                .indentor("    ".to_string());
            ron::Options::default()
                .to_string_pretty(workflow, config)
                .map(|mut s| {
                    s.push('\n');
                    s
                })
                .map_err(|e| FileError::Serialize(e.to_string()))
        }
    }
}

/// Reads a workflow file; the format follows the extension.
pub fn load(path: &Path) -> Result<Workflow, FileError> {
    let format = Format::from_path(path)?;
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_FILE_BYTES {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit: MAX_FILE_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let text = String::from_utf8(bytes).map_err(|e| FileError::Parse {
        path: Some(path.to_path_buf()),
        location: None,
        message: format!(
            "not a text file: invalid UTF-8 at byte {}",
            e.utf8_error().valid_up_to()
        ),
    })?;
    parse_str(&text, format).map_err(|e| e.with_path(path))
}

/// Writes a workflow atomically: a temporary file beside the target is written, flushed to
/// disk and renamed over it, so a failed save never leaves a truncated file.
pub fn save(path: &Path, workflow: &Workflow) -> Result<(), FileError> {
    let format = Format::from_path(path)?;
    let text = to_string(workflow, format)?;
    write_atomically(path, text.as_bytes())
}

/// Replaces `path` with `bytes` atomically.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".grym-save-")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    // Make the rename itself durable.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Ron => "ron",
            Format::Json => "json",
        })
    }
}
