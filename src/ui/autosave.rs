//! Autosave and crash recovery: while the open workflow has unsaved changes it is written
//! every so often (atomically) to the data folder; a clean state removes it. What is found
//! there at the next start was left by a session that ended without saving, and is offered
//! for recovery.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::document::Document;
use crate::workflow::file::{parse_str, to_string, write_atomically};
use crate::workflow::{Format, Workflow};

/// How often a dirty workflow is written.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(30);
const WORKFLOW_FILE: &str = "workflow.ron";
/// The path of the file the autosaved workflow belongs to (empty when never saved).
const ORIGIN_FILE: &str = "origin.txt";

/// A workflow left behind by an earlier session.
#[derive(Debug, Clone)]
pub struct Recovery {
    pub workflow: Workflow,
    /// The file it was opened from or last saved to.
    pub origin: Option<PathBuf>,
    pub saved_at: Option<SystemTime>,
}

pub struct Autosave {
    dir: Option<PathBuf>,
    /// Time between writes of a dirty workflow.
    pub every: Duration,
    last_write: Option<Instant>,
    written_revision: Option<u64>,
    file_exists: bool,
    /// Found at start and not yet answered; autosaving waits until it is.
    pub recovery: Option<Recovery>,
    /// The last write error, shown once.
    pub error: Option<String>,
}

impl Autosave {
    /// Autosaves into `dir` (none: autosave is off) and reads what an earlier session left.
    pub fn new(dir: Option<PathBuf>) -> Autosave {
        let recovery = dir.as_deref().and_then(read);
        let file_exists = dir
            .as_deref()
            .is_some_and(|d| d.join(WORKFLOW_FILE).is_file());
        Autosave {
            dir,
            every: DEFAULT_EVERY,
            last_write: None,
            written_revision: None,
            file_exists,
            recovery,
            error: None,
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Called every frame: writes `doc` when it is dirty, changed since the last write and
    /// the interval has passed; removes the autosave once `doc` is clean.
    pub fn tick(&mut self, doc: &Document) {
        let Some(dir) = self.dir.clone() else { return };
        if self.recovery.is_some() {
            return;
        }
        if !doc.is_dirty() {
            if self.file_exists {
                self.clear();
            }
            return;
        }
        if self.written_revision == Some(doc.revision()) {
            return;
        }
        if self.last_write.is_some_and(|t| t.elapsed() < self.every) {
            return;
        }
        self.last_write = Some(Instant::now());
        match write(&dir, doc) {
            Ok(()) => {
                self.written_revision = Some(doc.revision());
                self.file_exists = true;
            }
            Err(e) => self.error = Some(format!("Autosave to {} failed: {e}", dir.display())),
        }
    }

    /// Removes the autosave (after a save, a discard, or a declined recovery).
    pub fn clear(&mut self) {
        if let Some(dir) = &self.dir {
            for name in [WORKFLOW_FILE, ORIGIN_FILE] {
                let path = dir.join(name);
                if let Err(e) = std::fs::remove_file(&path)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    self.error = Some(format!("{}: {e}", path.display()));
                }
            }
        }
        self.file_exists = false;
        self.written_revision = None;
    }
}

fn write(dir: &Path, doc: &Document) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let origin = doc
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    write_atomically(&dir.join(ORIGIN_FILE), origin.as_bytes()).map_err(|e| e.to_string())?;
    let text = to_string(doc.workflow(), Format::Ron).map_err(|e| e.to_string())?;
    write_atomically(&dir.join(WORKFLOW_FILE), text.as_bytes()).map_err(|e| e.to_string())
}

fn read(dir: &Path) -> Option<Recovery> {
    let path = dir.join(WORKFLOW_FILE);
    let text = std::fs::read_to_string(&path).ok()?;
    let workflow = match parse_str(&text, Format::Ron) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("{}: unreadable autosave: {e}", path.display());
            return None;
        }
    };
    let origin = std::fs::read_to_string(dir.join(ORIGIN_FILE))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    let saved_at = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    Some(Recovery {
        workflow,
        origin,
        saved_at,
    })
}
