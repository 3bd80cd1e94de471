//! The open workflow: the model (the source of truth), where it lives on disk, and its undo
//! history as whole-model snapshots.

use std::path::{Path, PathBuf};

use crate::workflow::{self, Format, Workflow, WorkflowStep};

/// How many undo steps are kept.
const UNDO_LIMIT: usize = 200;

/// One state of the model and the revision number that names it.
#[derive(Clone)]
struct Snapshot {
    workflow: Workflow,
    revision: u64,
    label: String,
}

pub struct Document {
    workflow: Workflow,
    /// Names the current state; every edit gets a fresh number, undo brings old ones back.
    revision: u64,
    /// The revision that is on disk (or that was loaded / created).
    saved_revision: u64,
    pub path: Option<PathBuf>,
    undo: Vec<Snapshot>,
    redo: Vec<Snapshot>,
    /// Consecutive edits with the same key (typing in one field, dragging one slider) merge
    /// into one undo entry until [`Document::seal`] or an edit with another key.
    coalesce: Option<String>,
}

impl Document {
    pub fn new(workflow: Workflow, path: Option<PathBuf>) -> Self {
        let first = fresh_revision();
        Document {
            workflow,
            revision: first,
            saved_revision: first,
            path,
            undo: Vec::new(),
            redo: Vec::new(),
            coalesce: None,
        }
    }

    /// A blank workflow with nothing in it yet.
    pub fn blank() -> Self {
        let mut wf = Workflow::new(
            "untitled",
            "Untitled workflow",
            WorkflowStep::new("placeholder", workflow::StepType::Analysis, ""),
        );
        wf.steps.clear();
        wf.initial_step.clear();
        Document::new(wf, None)
    }

    /// Reads a workflow file.
    pub fn open(path: &Path) -> Result<Self, workflow::FileError> {
        let wf = workflow::load(path)?;
        Ok(Document::new(wf, Some(path.to_path_buf())))
    }

    pub fn workflow(&self) -> &Workflow {
        &self.workflow
    }

    /// Changes every time the model changes (edits, undo, redo).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn is_dirty(&self) -> bool {
        self.revision != self.saved_revision
    }

    /// The name shown in the title bar.
    pub fn title(&self) -> String {
        match &self.path {
            Some(p) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string()),
            None => "untitled".to_string(),
        }
    }

    /// One undoable edit. Returns what `f` returns.
    pub fn edit<R>(&mut self, label: &str, f: impl FnOnce(&mut Workflow) -> R) -> R {
        self.edit_keyed(label, None, f)
    }

    /// An edit that merges with the previous one when both have the same `key`.
    pub fn edit_merging<R>(
        &mut self,
        label: &str,
        key: &str,
        f: impl FnOnce(&mut Workflow) -> R,
    ) -> R {
        self.edit_keyed(label, Some(key), f)
    }

    fn edit_keyed<R>(
        &mut self,
        label: &str,
        key: Option<&str>,
        f: impl FnOnce(&mut Workflow) -> R,
    ) -> R {
        let before = self.workflow.clone();
        let out = f(&mut self.workflow);
        if self.workflow == before {
            return out;
        }
        let merge = key.is_some() && self.coalesce.as_deref() == key && !self.undo.is_empty();
        if !merge {
            self.undo.push(Snapshot {
                workflow: before,
                revision: self.revision,
                label: label.to_string(),
            });
            if self.undo.len() > UNDO_LIMIT {
                self.undo.remove(0);
            }
        }
        self.coalesce = key.map(str::to_string);
        self.redo.clear();
        self.revision = fresh_revision();
        out
    }

    /// Ends merging: the next edit starts a new undo entry.
    pub fn seal(&mut self) {
        self.coalesce = None;
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    pub fn undo_label(&self) -> Option<&str> {
        self.undo.last().map(|s| s.label.as_str())
    }

    pub fn redo_label(&self) -> Option<&str> {
        self.redo.last().map(|s| s.label.as_str())
    }

    pub fn undo(&mut self) -> bool {
        self.seal();
        let Some(prev) = self.undo.pop() else {
            return false;
        };
        let current = Snapshot {
            workflow: std::mem::replace(&mut self.workflow, prev.workflow),
            revision: self.revision,
            label: prev.label.clone(),
        };
        self.redo.push(current);
        self.revision = prev.revision;
        true
    }

    pub fn redo(&mut self) -> bool {
        self.seal();
        let Some(next) = self.redo.pop() else {
            return false;
        };
        let current = Snapshot {
            workflow: std::mem::replace(&mut self.workflow, next.workflow),
            revision: self.revision,
            label: next.label.clone(),
        };
        self.undo.push(current);
        self.revision = next.revision;
        true
    }

    /// Writes the model to `path` (format from the extension, atomically) and makes it the
    /// document's file.
    pub fn save_to(&mut self, path: &Path) -> Result<(), workflow::FileError> {
        Format::from_path(path)?;
        self.seal();
        let mut wf = self.workflow.clone();
        wf.metadata.updated_at = chrono::Utc::now();
        workflow::save(path, &wf)?;
        self.workflow.metadata.updated_at = wf.metadata.updated_at;
        self.path = Some(path.to_path_buf());
        self.saved_revision = self.revision;
        Ok(())
    }
}

/// Revision numbers are unique across every document of the process, so that a view
/// synced to one document never mistakes a newly opened one for it.
fn fresh_revision() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::StepType;

    #[test]
    fn undo_redo_and_dirty() {
        let mut doc = Document::blank();
        assert!(!doc.is_dirty());
        doc.edit("add", |wf| {
            crate::ui::edits::add_step(
                wf,
                StepType::Analysis,
                "a",
                workflow::NodePosition { x: 0.0, y: 0.0 },
            )
        });
        assert!(doc.is_dirty());
        assert_eq!(doc.workflow().steps.len(), 1);
        assert!(doc.undo());
        assert!(!doc.is_dirty(), "back at the saved revision");
        assert!(doc.workflow().steps.is_empty());
        assert!(doc.redo());
        assert_eq!(doc.workflow().steps.len(), 1);
        assert!(doc.is_dirty());
    }

    #[test]
    fn merging_edits_make_one_entry() {
        let mut doc = Document::blank();
        for name in ["a", "ab", "abc"] {
            doc.edit_merging("name", "name", |wf| wf.name = name.to_string());
        }
        doc.seal();
        doc.edit_merging("name", "name", |wf| wf.name = "abcd".to_string());
        assert!(doc.undo());
        assert_eq!(doc.workflow().name, "abc");
        assert!(doc.undo());
        assert_eq!(doc.workflow().name, "Untitled workflow");
        assert!(!doc.can_undo());
    }

    #[test]
    fn no_op_edits_leave_no_entry() {
        let mut doc = Document::blank();
        doc.edit("nothing", |_| {});
        assert!(!doc.can_undo());
        assert!(!doc.is_dirty());
    }
}
