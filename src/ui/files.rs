//! File choosing: the system dialog (rfd, through the XDG desktop portal) on a background
//! thread so the UI never waits on it, and a typed path as the fallback that always works.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

/// What a chosen file is for.
#[derive(Debug, Clone, PartialEq)]
pub enum FilePurpose {
    Open,
    SaveAs,
    /// A run parameter of the run dialog.
    RunParam(String),
    /// A path parameter of a step.
    StepParam {
        step: String,
        name: String,
    },
}

struct Pending {
    purpose: FilePurpose,
    rx: Receiver<Option<PathBuf>>,
    started: Instant,
}

/// The one system file dialog that may be open, and why the last one did not appear.
#[derive(Default)]
pub struct FileDialogs {
    pending: Option<Pending>,
    /// Shown next to the typed-path fields when the system dialog could not be used.
    pub note: Option<String>,
}

/// Answers that come back faster than this were not a person cancelling a dialog.
const NO_DIALOG: Duration = Duration::from_millis(700);

/// Why the portal file dialog cannot appear on this desktop, when that is known up front.
pub fn portal_problem() -> Option<String> {
    let has_bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty())
        || std::env::var_os("XDG_RUNTIME_DIR")
            .map(|d| Path::new(&d).join("bus").exists())
            .unwrap_or(false);
    if has_bus {
        None
    } else {
        Some(
            "The system file dialog is unavailable: there is no D-Bus session bus, so the \
             XDG desktop portal that draws it cannot be reached. Type the path instead."
                .into(),
        )
    }
}

impl FileDialogs {
    pub fn is_open(&self) -> bool {
        self.pending.is_some()
    }

    /// Opens the system dialog for `purpose` on a thread. `save` picks a file to write.
    pub fn browse(&mut self, purpose: FilePurpose, save: bool, start: Option<&Path>) {
        if self.pending.is_some() {
            return;
        }
        if let Some(problem) = portal_problem() {
            self.note = Some(problem);
            return;
        }
        self.note = None;
        let (tx, rx) = crossbeam_channel::bounded(1);
        let workflow_files = matches!(purpose, FilePurpose::Open | FilePurpose::SaveAs);
        let audio = matches!(
            purpose,
            FilePurpose::RunParam(_) | FilePurpose::StepParam { .. }
        );
        let dir = start
            .and_then(|p| if p.is_dir() { Some(p) } else { p.parent() })
            .map(Path::to_path_buf);
        let name = start
            .filter(|p| !p.is_dir())
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned());
        std::thread::spawn(move || {
            let mut dialog = rfd::FileDialog::new();
            if workflow_files {
                dialog = dialog
                    .add_filter("Workflow", &["ron", "json"])
                    .add_filter("All files", &["*"]);
            } else if audio {
                dialog = dialog
                    .add_filter("Audio", &["wav", "flac", "mp3", "ogg", "aiff", "m4a"])
                    .add_filter("All files", &["*"]);
            }
            if let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty()) {
                dialog = dialog.set_directory(dir);
            }
            if let Some(name) = name {
                dialog = dialog.set_file_name(name);
            }
            let chosen = if save {
                dialog.save_file()
            } else {
                dialog.pick_file()
            };
            let _ = tx.send(chosen);
        });
        self.pending = Some(Pending {
            purpose,
            rx,
            started: Instant::now(),
        });
    }

    /// The file the dialog returned, once it closes.
    pub fn poll(&mut self) -> Option<(FilePurpose, PathBuf)> {
        let pending = self.pending.as_ref()?;
        let answer = match pending.rx.try_recv() {
            Ok(answer) => answer,
            Err(crossbeam_channel::TryRecvError::Empty) => return None,
            Err(crossbeam_channel::TryRecvError::Disconnected) => None,
        };
        let quick = pending.started.elapsed() < NO_DIALOG;
        let purpose = pending.purpose.clone();
        self.pending = None;
        match answer {
            Some(path) => Some((purpose, path)),
            None => {
                if quick {
                    self.note = Some(
                        "The system file dialog did not appear: no XDG desktop portal answered \
                         (is xdg-desktop-portal running?). Type the path instead."
                            .into(),
                    );
                }
                None
            }
        }
    }
}

/// Most recently used files, newest first, without duplicates.
pub fn push_recent(recent: &mut Vec<PathBuf>, path: &Path) {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    recent.retain(|p| p != &path);
    recent.insert(0, path);
    recent.truncate(10);
}

/// Reads a typed path: trims it and expands a leading `~`.
pub fn typed_path(text: &str) -> Option<PathBuf> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Some(rest) = text.strip_prefix("~/")
        && let Some(home) = dirs::home_dir()
    {
        return Some(home.join(rest));
    }
    Some(PathBuf::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_files_dedupe_and_cap() {
        let mut recent = Vec::new();
        for i in 0..12 {
            push_recent(&mut recent, Path::new(&format!("/nonexistent/{i}.ron")));
        }
        push_recent(&mut recent, Path::new("/nonexistent/5.ron"));
        assert_eq!(recent.len(), 10);
        assert_eq!(recent[0], PathBuf::from("/nonexistent/5.ron"));
        assert_eq!(recent.iter().filter(|p| p.ends_with("5.ron")).count(), 1);
    }

    #[test]
    fn typed_paths() {
        assert_eq!(typed_path("  "), None);
        assert_eq!(typed_path(" a.ron "), Some(PathBuf::from("a.ron")));
    }
}
