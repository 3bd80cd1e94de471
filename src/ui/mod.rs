//! The desktop editor (eframe + egui + egui-snarl).
//!
//! Shaped like rerun's viewer: data ([`document::Document`] holds the workflow model, the
//! source of truth, with its undo history), app state ([`app::Editor`]: selection, dialogs,
//! the run in progress) and drawing (canvas, palette, inspector, problems, run panel,
//! timeline with result views, audio panel with waveform and playback) kept
//! apart. The snarl graph on the canvas is a view rebuilt from the model; edits on it come
//! back as actions that change the model. The engine is only reached through its [`Engine`]
//! handle and event channel, and calls that may wait run on background threads.

pub mod api_link;
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
pub mod results;
pub mod run;
pub mod theme;
pub mod timeline;
pub mod versions;
pub mod waveform;

use std::path::{Path, PathBuf};

pub use app::{Editor, Settings};
pub use document::Document;

use crate::engine::{Engine, EngineConfig};

/// A recorded execution to show when the editor opens.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowExecution {
    /// An execution id, or [`run::LATEST`].
    pub id: String,
    /// The step whose result to show beside the timeline.
    pub step: Option<String>,
}

/// Opens the editor window (blocks until it closes), with `file` open if given and
/// `show`'s execution on the timeline.
pub fn run_editor(
    file: Option<PathBuf>,
    data_dir: Option<&Path>,
    show: Option<ShowExecution>,
    tab: Option<app::BottomTab>,
) -> anyhow::Result<()> {
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
            let mut editor = Editor::from_creation_context(cc, engine, file.as_deref());
            if let Some(tab) = tab {
                editor.settings.show_bottom = true;
                editor.settings.bottom_tab = tab;
            }
            if let Some(show) = show {
                editor.open_execution(&show.id, show.step);
            }
            Ok(Box::new(editor))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the editor window could not open: {e}"))
}
