//! The desktop editor (eframe + egui + egui-snarl).
//!
//! Shaped like rerun's viewer: data ([`document::Document`] holds the workflow model, the
//! source of truth, with its undo history), app state ([`app::Editor`]: selection, dialogs,
//! the run in progress) and drawing (canvas, palette, inspector, problems, run panel,
//! audio panel with waveform and playback) kept
//! apart. The snarl graph on the canvas is a view rebuilt from the model; edits on it come
//! back as actions that change the model. The engine is only reached through its [`Engine`]
//! handle and event channel, and calls that may wait run on background threads.

pub mod app;
pub mod audio;
pub mod autosave;
pub mod canvas;
pub mod clipboard;
pub mod document;
pub mod edits;
pub mod files;
pub mod inspector;
pub mod optimize;
pub mod palette;
pub mod problems;
pub mod run;
pub mod theme;
pub mod waveform;

use std::path::{Path, PathBuf};

pub use app::{Editor, Settings};
pub use document::Document;

use crate::engine::{Engine, EngineConfig};

/// Opens the editor window (blocks until it closes), with `file` open if given.
pub fn run_editor(file: Option<PathBuf>, data_dir: Option<&Path>) -> anyhow::Result<()> {
    let dir = data_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(EngineConfig::default_data_dir);
    let engine = Engine::start(EngineConfig::new(&dir), crate::ops::builtin_registry())
        .map_err(|e| format!("{}: {e}", dir.display()));
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("grym-synth")
            .with_inner_size([1400.0, 860.0])
            .with_min_inner_size([640.0, 400.0]),
        persist_window: true,
        ..Default::default()
    };
    eframe::run_native(
        "grym-synth",
        options,
        Box::new(move |cc| {
            Ok(Box::new(Editor::from_creation_context(
                cc,
                engine,
                file.as_deref(),
            )))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the editor window could not open: {e}"))
}
