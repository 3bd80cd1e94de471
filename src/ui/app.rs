//! The editor's app state and frame: menus, panels, dialogs, shortcuts. Data lives in
//! [`Document`]; the canvas, inspector, problems and run panels draw from it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use egui::{Color32, Id, Key, KeyboardShortcut, Modifiers, RichText, Ui};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::api_link::{ApiLink, SavedElsewhere};
use super::audio::{self, AudioPanel};
use super::autosave::Autosave;
use super::canvas::{Canvas, CanvasAction, NodeDecorations};
use super::clipboard;
use super::document::Document;
use super::edits;
use super::files::{self, FileDialogs, FilePurpose};
use super::inspector::{self, InspectorAction, InspectorState};
use super::optimize::{self, OptimizeAction, OptimizePanel};
use super::palette::{self, PaletteItem};
use super::problems;
use super::results::{ResultAction, ResultPane, ShownRun};
use super::run::{self, RunPanelAction, RunState};
use super::timeline::{self, TimelineAction, TimelineView};
use super::versions::{self, VersionsAction, VersionsWindow};
use crate::engine::{Engine, OperationRegistry};
use crate::workflow::{NodePosition, ParamMap, Report, Workflow, templates};

/// What persists between runs of the editor (eframe storage).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub recent: Vec<PathBuf>,
    pub show_palette: bool,
    pub show_inspector: bool,
    pub show_bottom: bool,
    pub bottom_tab: BottomTab,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            recent: Vec::new(),
            show_palette: true,
            show_inspector: true,
            show_bottom: true,
            bottom_tab: BottomTab::Problems,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BottomTab {
    Problems,
    Run,
    /// The execution's timeline with the selected run's result drawn beside it.
    Timeline,
    Audio,
    Optimize,
}

impl BottomTab {
    /// A tab by its name on the command line (`optimise` or `optimize`).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "problems" => BottomTab::Problems,
            "run" => BottomTab::Run,
            "timeline" => BottomTab::Timeline,
            "audio" => BottomTab::Audio,
            "optimise" | "optimize" => BottomTab::Optimize,
            _ => return None,
        })
    }
}

const SETTINGS_KEY: &str = "grym-synth-editor";

/// Run parameters from typed text (read as JSON where it parses); an empty field keeps the
/// workflow's default, and is refused where the default is `null`.
fn typed_parameters(workflow: &Workflow, values: &[(String, String)]) -> Result<ParamMap, String> {
    let mut params = ParamMap::new();
    for (k, text) in values {
        if text.trim().is_empty() {
            if workflow.parameters.get(k).is_none_or(Value::is_null) {
                return Err(format!("`{k}` needs a value"));
            }
            continue;
        }
        params.insert(k.clone(), inspector::parse_loose(text.trim()));
    }
    Ok(params)
}

/// Something that would throw away unsaved edits, waiting for the user's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Pending {
    New(Option<&'static str>),
    OpenPath(PathBuf),
    OpenPrompt,
    /// Open a workflow the engine holds (one saved through the API).
    OpenRegistered(String),
    Close,
}

/// The typed-path prompt for Open and Save As.
pub struct PathPrompt {
    pub purpose: FilePurpose,
    pub text: String,
    pub error: Option<String>,
}

/// The run dialog: values for the workflow's parameters as typed text.
pub struct RunDialog {
    pub values: Vec<(String, String)>,
    pub error: Option<String>,
}

pub struct Editor {
    pub doc: Document,
    pub settings: Settings,
    pub selected: Option<String>,
    pub canvas: Canvas,
    pub run: RunState,
    /// Waveform and playback of a step's audio or a file.
    pub audio: AudioPanel,
    /// The timeline of the shown execution and the run whose result is drawn.
    pub timeline: TimelineView,
    /// The result view next to the timeline.
    pub results: ResultPane,
    /// A step to select once the execution being loaded arrives.
    pending_step: Option<String>,
    /// Autosave of unsaved changes and the recovery offered at start.
    pub autosave: Autosave,
    /// Optimisation studies of the open workflow.
    pub optimize: OptimizePanel,
    /// Typed values of the run parameters a study does not tune.
    pub optimize_fixed: Vec<(String, String)>,
    /// The REST API served from the editor, and what arrived through it.
    pub api_link: ApiLink,
    /// Stored versions of the open workflow.
    pub versions: VersionsWindow,
    pub report: Report,
    report_revision: Option<u64>,
    engine: Option<Engine>,
    engine_error: Option<String>,
    fallback_registry: OperationRegistry,
    items: Vec<PaletteItem>,
    palette_query: String,
    inspector: InspectorState,
    pub files: FileDialogs,
    pub prompt: Option<PathPrompt>,
    pub pending: Option<Pending>,
    pub run_dialog: Option<RunDialog>,
    /// Messages for the status bar (errors of file operations and such).
    pub status: Option<(String, bool)>,
    allow_close: bool,
    last_title: String,
}

impl Editor {
    /// An editor on `engine` (or without one, saying why), showing `doc`.
    pub fn new(engine: Result<Engine, String>, doc: Document, settings: Settings) -> Self {
        let (engine, engine_error) = match engine {
            Ok(e) => (Some(e), None),
            Err(e) => (None, Some(e)),
        };
        let fallback_registry = OperationRegistry::new();
        let items = palette::items(engine.as_ref().map_or(&fallback_registry, Engine::registry));
        let run = RunState::new(engine.as_ref());
        let autosave = Autosave::new(
            engine
                .as_ref()
                .map(|e| e.config().data_dir.join("autosave")),
        );
        let mut editor = Editor {
            doc,
            settings,
            selected: None,
            canvas: Canvas::default(),
            run,
            audio: AudioPanel::default(),
            timeline: TimelineView::default(),
            results: ResultPane::default(),
            pending_step: None,
            autosave,
            optimize: OptimizePanel::default(),
            optimize_fixed: Vec::new(),
            api_link: ApiLink::default(),
            versions: VersionsWindow::default(),
            report: Report::default(),
            report_revision: None,
            engine,
            engine_error,
            fallback_registry,
            items,
            palette_query: String::new(),
            inspector: InspectorState::default(),
            files: FileDialogs::default(),
            prompt: None,
            pending: None,
            run_dialog: None,
            status: None,
            allow_close: false,
            last_title: String::new(),
        };
        editor.prepare_layout();
        editor
    }

    /// Builds the editor inside eframe: settings from eframe storage, then `file` if given.
    pub fn from_creation_context(
        cc: &eframe::CreationContext<'_>,
        engine: Result<Engine, String>,
        file: Option<&Path>,
    ) -> Self {
        let settings: Settings = cc
            .storage
            .and_then(|s| eframe::get_value(s, SETTINGS_KEY))
            .unwrap_or_default();
        let mut editor = Editor::new(engine, Document::blank(), settings);
        if let Some(path) = file {
            editor.open_now(path);
        }
        editor
    }

    pub fn registry(&self) -> &OperationRegistry {
        self.engine
            .as_ref()
            .map_or(&self.fallback_registry, Engine::registry)
    }

    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }

    /// A workflow without positions gets an automatic layout (not an undoable edit: it is
    /// how the file is shown, and it is saved with the next save).
    fn prepare_layout(&mut self) {
        let wf = self.doc.workflow();
        let missing = wf.steps.keys().any(|id| edits::position(wf, id).is_none());
        if missing {
            let mut wf = wf.clone();
            edits::auto_layout(&mut wf, true);
            let path = self.doc.path.clone();
            self.doc = Document::new(wf, path);
        }
        self.canvas.frame_all();
        self.selected = None;
        self.run = RunState::new(self.engine.as_ref());
        self.timeline = TimelineView::default();
        self.results = ResultPane::default();
    }

    /// Loads a recorded execution (an id, or [`run::LATEST`]) into the run panel and shows
    /// its timeline, with `step`'s result once it has arrived.
    pub fn open_execution(&mut self, id: &str, step: Option<String>) {
        let Some(engine) = &self.engine else {
            self.error("Cannot open an execution: the engine did not start");
            return;
        };
        self.run.open_past(engine, id);
        self.pending_step = step;
        self.settings.show_bottom = true;
        self.settings.bottom_tab = BottomTab::Timeline;
    }

    /// Selects `step` and shows the result of run `index` (into the run panel's rows) next
    /// to the timeline.
    pub fn show_result(&mut self, step: String, index: usize) {
        self.select(Some(step));
        self.timeline.selected = Some(index);
        self.settings.show_bottom = true;
        self.settings.bottom_tab = BottomTab::Timeline;
    }

    /// The run whose result the result view shows: the one picked on the timeline when it is
    /// the selected step's, else the selected step's latest.
    pub fn shown_run(&self) -> Option<usize> {
        let step = self.selected.as_ref()?;
        match self.timeline.selected {
            Some(i) if self.run.rows.get(i).is_some_and(|r| &r.step_id == step) => Some(i),
            _ => self.run.rows.iter().rposition(|r| &r.step_id == step),
        }
    }

    /// A number parameter of `step`: its value in the workflow, else its operation's
    /// default.
    fn step_number(&self, step: &str, name: &str) -> Option<f64> {
        let s = self.doc.workflow().steps.get(step)?;
        s.parameters.get(name).and_then(Value::as_f64).or_else(|| {
            let op = self.registry().get(s.step_type, &s.operation)?;
            let spec = op.spec().parameters.iter().find(|p| p.name == name)?;
            spec.default.as_ref().and_then(Value::as_f64)
        })
    }

    /// Shows the audio of `step` in the audio panel: its output and its input side by side
    /// for A/B comparison when it has both.
    pub fn show_step_audio(&mut self, step: &str) {
        let found = audio::step_audio(self.doc.workflow(), &self.run, self.registry(), step);
        let (a, b) = match (found.inputs.first(), found.outputs.first()) {
            (Some(i), Some(o)) => (i.clone(), Some(o.clone())),
            (Some(only), None) | (None, Some(only)) => (only.clone(), None),
            (None, None) => {
                self.error(format!("Step {step} has no audio to show"));
                return;
            }
        };
        self.audio.set_sources(a, b);
        if !found.outputs.is_empty() && !found.inputs.is_empty() {
            // The output is what was asked for; A stays the input for comparison.
            self.audio.select(crate::audio::playback::Slot::B);
        }
        self.settings.show_bottom = true;
        self.settings.bottom_tab = BottomTab::Audio;
    }

    /// Shows an audio file in the audio panel.
    pub fn show_audio_file(&mut self, path: &Path) {
        self.audio.set_sources(audio::file_ref(path), None);
        self.settings.show_bottom = true;
        self.settings.bottom_tab = BottomTab::Audio;
    }

    /// Autosaves into `dir` instead (none: off), offering what is there for recovery.
    pub fn set_autosave_dir(&mut self, dir: Option<PathBuf>) {
        let every = self.autosave.every;
        self.autosave = Autosave::new(dir);
        self.autosave.every = every;
    }

    /// Puts the selected steps on the clipboard as RON text.
    pub fn copy_selection(&mut self, ctx: &egui::Context) {
        let mut ids = self.canvas.selected_ids();
        if ids.is_empty() {
            ids.extend(self.selected.iter().cloned());
        }
        if let Some(text) = clipboard::copy(self.doc.workflow(), &ids) {
            ctx.copy_text(text);
            self.info(format!("Copied {} step(s)", ids.len()));
        }
    }

    /// Adds the steps in `text` (copied steps) to the workflow.
    pub fn paste(&mut self, text: &str) {
        let mut wf = self.doc.workflow().clone();
        match clipboard::paste(&mut wf, text) {
            Ok(ids) => {
                self.doc.edit("Paste", |w| *w = wf);
                self.info(format!("Pasted {} step(s)", ids.len()));
                self.select(ids.last().cloned());
            }
            Err(e) => self.error(e),
        }
    }

    /// Replaces the document with the autosaved workflow, as unsaved changes to its file.
    fn recover(&mut self) {
        let Some(found) = self.autosave.recovery.take() else {
            return;
        };
        let mut doc = found
            .origin
            .as_deref()
            .filter(|p| p.is_file())
            .and_then(|p| Document::open(p).ok())
            .unwrap_or_else(Document::blank);
        // An edit from the file's state (or a blank one), so the work shows as unsaved.
        let mut wf = found.workflow;
        edits::auto_layout(&mut wf, true);
        doc.edit("Recover autosave", |w| *w = wf);
        doc.path = found.origin;
        self.doc = doc;
        self.prepare_layout();
        self.info("Recovered the autosaved workflow; save it to keep it");
    }

    fn info(&mut self, text: impl Into<String>) {
        self.status = Some((text.into(), false));
    }

    fn error(&mut self, text: impl Into<String>) {
        self.status = Some((text.into(), true));
    }

    /// Opens a file now (no unsaved-changes check).
    pub fn open_now(&mut self, path: &Path) {
        match Document::open(path) {
            Ok(doc) => {
                self.doc = doc;
                self.prepare_layout();
                files::push_recent(&mut self.settings.recent, path);
                self.info(format!("Opened {}", path.display()));
            }
            Err(e) => self.error(format!("Could not open {}: {e}", path.display())),
        }
    }

    /// Starts a new workflow now, blank or from a template.
    pub fn new_now(&mut self, template: Option<&str>) {
        let doc = match template.map(|name| templates::find(name).map(|t| t.load())) {
            None => Document::blank(),
            Some(Some(Ok(wf))) => Document::new(wf, None),
            Some(Some(Err(e))) => {
                self.error(format!("The template does not load: {e}"));
                return;
            }
            Some(None) => {
                self.error("No such template");
                return;
            }
        };
        self.doc = doc;
        self.prepare_layout();
    }

    /// Opens the engine's current version of workflow `id` as a new, unsaved document.
    pub fn open_registered(&mut self, id: &str) {
        match self.engine.as_ref().and_then(|e| e.workflow(id)) {
            Some(wf) => {
                self.doc = Document::new((*wf).clone(), None);
                self.prepare_layout();
                self.info(format!("Opened workflow {id} from the engine"));
            }
            None => self.error(format!("The engine has no workflow {id}")),
        }
    }

    /// Follows versions stored through the API: a new version of the open workflow
    /// replaces its content as an undoable edit (positions kept, new steps placed); others
    /// are listed in the API menu to open.
    fn follow_api(&mut self, saved: Vec<SavedElsewhere>) {
        for notice in saved {
            let open_id = self.doc.workflow().id.clone();
            if notice.workflow_id == open_id && !notice.deleted {
                let Some(stored) = self.engine.as_ref().and_then(|e| e.workflow(&open_id)) else {
                    continue;
                };
                let mut incoming = (*stored).clone();
                if incoming == *self.doc.workflow() {
                    continue;
                }
                if incoming.layout.is_none() {
                    incoming.layout = self.doc.workflow().layout.clone();
                }
                edits::auto_layout(&mut incoming, true);
                self.doc
                    .edit(&format!("Update from {}", notice.created_by), |w| {
                        *w = incoming
                    });
                self.fix_selection();
                self.info(format!(
                    "{} stored version {} of this workflow; Ctrl+Z takes it back",
                    notice.created_by, notice.version
                ));
            } else {
                self.api_link
                    .saved
                    .retain(|s| s.workflow_id != notice.workflow_id);
                self.api_link.saved.push(notice);
            }
        }
    }

    pub fn versions_action(&mut self, action: VersionsAction) {
        let Some(engine) = self.engine.clone() else {
            return;
        };
        match action {
            VersionsAction::Refresh => self.versions.refresh(&engine),
            VersionsAction::Open(v) => match self.versions.workflow_of(v) {
                Some(mut wf) => {
                    edits::auto_layout(&mut wf, true);
                    self.doc.edit(&format!("Open version {v}"), |w| *w = wf);
                    self.fix_selection();
                }
                None => self.error(format!("Version {v} cannot be opened")),
            },
            VersionsAction::RollBack(v) => {
                let id = self.versions.workflow_id.clone();
                match engine.rollback(&id, v, "editor") {
                    Ok((_, new_version)) => {
                        if let Some(wf) = engine.workflow(&id) {
                            let mut wf = (*wf).clone();
                            edits::auto_layout(&mut wf, true);
                            self.doc
                                .edit(&format!("Roll back to version {v}"), |w| *w = wf);
                            self.fix_selection();
                        }
                        self.info(format!(
                            "Rolled back to version {v}, stored as version {new_version}"
                        ));
                        self.versions.refresh(&engine);
                    }
                    Err(e) => self.error(format!("Roll back: {e}")),
                }
            }
        }
    }

    /// Saves to the document's file, or asks for one.
    pub fn save(&mut self) -> bool {
        match self.doc.path.clone() {
            Some(path) => self.save_to(&path),
            None => {
                self.ask_path(FilePurpose::SaveAs);
                false
            }
        }
    }

    pub fn save_to(&mut self, path: &Path) -> bool {
        match self.doc.save_to(path) {
            Ok(()) => {
                files::push_recent(&mut self.settings.recent, path);
                self.info(format!("Saved {}", path.display()));
                true
            }
            Err(e) => {
                self.error(format!("Could not save {}: {e}", path.display()));
                false
            }
        }
    }

    fn ask_path(&mut self, purpose: FilePurpose) {
        let text = match (&purpose, &self.doc.path) {
            (FilePurpose::SaveAs, Some(p)) => p.display().to_string(),
            (FilePurpose::SaveAs, None) => {
                format!("{}.ron", edits::sanitize_id(&self.doc.workflow().id))
            }
            _ => String::new(),
        };
        self.prompt = Some(PathPrompt {
            purpose,
            text,
            error: None,
        });
    }

    /// Runs `action` now, or asks about unsaved changes first.
    pub fn request(&mut self, action: Pending) {
        if self.doc.is_dirty() {
            self.pending = Some(action);
        } else {
            self.perform(action);
        }
    }

    fn perform(&mut self, action: Pending) {
        match action {
            Pending::New(t) => self.new_now(t),
            Pending::OpenPath(p) => self.open_now(&p),
            Pending::OpenPrompt => self.ask_path(FilePurpose::Open),
            Pending::OpenRegistered(id) => self.open_registered(&id),
            Pending::Close => {
                self.allow_close = true;
            }
        }
    }

    fn select(&mut self, step: Option<String>) {
        if self.selected != step {
            self.doc.seal();
        }
        self.selected = step;
    }

    pub fn undo(&mut self) {
        if self.doc.undo() {
            self.fix_selection();
        }
    }

    pub fn redo(&mut self) {
        if self.doc.redo() {
            self.fix_selection();
        }
    }

    fn fix_selection(&mut self) {
        if let Some(s) = &self.selected
            && !self.doc.workflow().steps.contains_key(s)
        {
            self.selected = None;
        }
    }

    /// Adds a step for a palette entry; returns its id.
    pub fn add_item(&mut self, item: &PaletteItem, pos: Option<NodePosition>) -> String {
        let pos = pos.unwrap_or_else(|| self.canvas.free_spot(self.doc.workflow()));
        let id = self.doc.edit(&format!("Add {}", item.label()), |w| {
            edits::add_step(w, item.step_type, &item.operation, pos)
        });
        self.select(Some(id.clone()));
        id
    }

    pub fn apply_canvas(&mut self, action: CanvasAction) {
        match action {
            CanvasAction::SetFlow { from, port, to } => {
                let label = if to.is_some() {
                    "Connect"
                } else {
                    "Disconnect"
                };
                self.doc
                    .edit(label, |w| edits::set_flow(w, &from, port, to.as_deref()));
            }
            CanvasAction::ConnectData { source, to, index } => {
                self.doc.edit("Connect data", |w| {
                    edits::connect_data(w, &source, &to, index)
                });
            }
            CanvasAction::RemoveInput { step, index } => {
                self.doc
                    .edit("Disconnect data", |w| edits::remove_input(w, &step, index));
            }
            CanvasAction::DisconnectReaders(s) => {
                self.doc
                    .edit("Disconnect data", |w| edits::disconnect_all_readers(w, &s));
            }
            CanvasAction::DisconnectFlowInto(s) => {
                self.doc
                    .edit("Disconnect", |w| edits::disconnect_all_flow_into(w, &s));
            }
            CanvasAction::Add { item, pos } => {
                self.add_item(&item, Some(pos));
            }
            CanvasAction::Delete(ids) => {
                self.doc.edit("Delete", |w| {
                    for id in &ids {
                        edits::delete_step(w, id);
                    }
                });
                self.fix_selection();
            }
            CanvasAction::Duplicate(ids) => {
                let copies = self.doc.edit("Duplicate", |w| {
                    ids.iter()
                        .filter_map(|id| edits::duplicate_step(w, id))
                        .collect::<Vec<_>>()
                });
                if let Some(last) = copies.last() {
                    self.select(Some(last.clone()));
                }
            }
            CanvasAction::SetInitial(id) => {
                self.doc.edit("Set initial step", |w| w.initial_step = id);
            }
            CanvasAction::Move(moves) => {
                self.doc.edit("Move", |w| {
                    let layout = w.layout.get_or_insert_with(Default::default);
                    for (id, pos) in moves {
                        layout.nodes.insert(id, pos);
                    }
                });
            }
            CanvasAction::Select(s) => self.select(s),
        }
    }

    /// Opens the run dialog (or runs straight away when there is nothing to ask).
    pub fn ask_run(&mut self) {
        if self.engine.is_none() {
            let why = self.engine_error.clone().unwrap_or_default();
            self.error(format!("Cannot run: the engine did not start ({why})"));
            return;
        }
        let values = self
            .doc
            .workflow()
            .parameters
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect();
        self.run_dialog = Some(RunDialog {
            values,
            error: None,
        });
    }

    /// Starts the run with the dialog's values.
    pub fn start_run(&mut self) {
        let Some(dialog) = &mut self.run_dialog else {
            return;
        };
        let Some(engine) = &self.engine else {
            return;
        };
        let params = match typed_parameters(self.doc.workflow(), &dialog.values) {
            Ok(p) => p,
            Err(e) => {
                dialog.error = Some(e);
                return;
            }
        };
        if !self.report.is_valid() {
            dialog.error = Some("The workflow has errors (see Problems); fix them first.".into());
            return;
        }
        self.run.start(engine, self.doc.workflow().clone(), params);
        self.run_dialog = None;
        self.settings.show_bottom = true;
        // The timeline follows the run too; from elsewhere, the run panel shows it.
        if self.settings.bottom_tab != BottomTab::Timeline {
            self.settings.bottom_tab = BottomTab::Run;
        }
    }

    pub fn cancel_run(&mut self) {
        if let Some(engine) = &self.engine {
            self.run.cancel(engine);
        }
    }

    fn revalidate(&mut self) {
        if self.report_revision == Some(self.doc.revision()) {
            return;
        }
        self.report_revision = Some(self.doc.revision());
        self.report = crate::workflow::validate(self.doc.workflow(), Some(self.registry()));
    }

    fn shortcuts(&mut self, ui: &Ui) {
        let typing = ui.ctx().egui_wants_keyboard_input();
        let cmd = Modifiers::COMMAND;
        let shift = Modifiers::COMMAND | Modifiers::SHIFT;
        let (redo, undo, save, save_as, open, new) = ui.input_mut(|i| {
            let redo = !typing
                && (i.consume_shortcut(&KeyboardShortcut::new(shift, Key::Z))
                    || i.consume_shortcut(&KeyboardShortcut::new(cmd, Key::Y)));
            let undo = !typing && i.consume_shortcut(&KeyboardShortcut::new(cmd, Key::Z));
            let save_as = i.consume_shortcut(&KeyboardShortcut::new(shift, Key::S));
            let save = i.consume_shortcut(&KeyboardShortcut::new(cmd, Key::S));
            let open = i.consume_shortcut(&KeyboardShortcut::new(cmd, Key::O));
            let new = i.consume_shortcut(&KeyboardShortcut::new(cmd, Key::N));
            (redo, undo, save, save_as, open, new)
        });
        // Ctrl+C / Ctrl+V arrive as copy and paste events from the platform (or as keys).
        if !typing {
            let (copy, paste) = ui.input_mut(|i| {
                let mut copy = i.consume_shortcut(&KeyboardShortcut::new(cmd, Key::C));
                let mut paste = None;
                for e in &i.events {
                    match e {
                        egui::Event::Copy => copy = true,
                        egui::Event::Paste(text) => paste = Some(text.clone()),
                        _ => {}
                    }
                }
                (copy, paste)
            });
            if copy {
                self.copy_selection(ui.ctx());
            }
            if let Some(text) = paste {
                self.paste(&text);
            }
        }
        if redo {
            self.redo();
        } else if undo {
            self.undo();
        }
        if save_as {
            self.ask_path(FilePurpose::SaveAs);
        } else if save {
            self.save();
        }
        if open {
            self.request(Pending::OpenPrompt);
        }
        if new {
            self.request(Pending::New(None));
        }
    }

    /// Draws one frame of the whole editor.
    pub fn show(&mut self, ui: &mut Ui) {
        // Background work first: engine events, file dialogs.
        self.run.poll(self.engine.as_ref());
        self.optimize.poll(self.engine.as_ref());
        self.versions.poll();
        let saved = self.api_link.poll();
        if !saved.is_empty() {
            self.follow_api(saved);
        }
        if let Some((purpose, path)) = self.files.poll() {
            self.file_chosen(purpose, path);
        }
        if let Some(step) = &self.pending_step
            && matches!(self.run.phase, run::Phase::Past(_))
        {
            let step = step.clone();
            self.pending_step = None;
            if let Some(index) = self.run.rows.iter().rposition(|r| r.step_id == step) {
                self.show_result(step, index);
            }
        }
        if self.api_link.is_serving() {
            // Requests arrive at any time; look for their effects a few times a second.
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(250));
        }
        if self.run.is_busy()
            || self.optimize.is_busy()
            || self.versions.is_busy()
            || self.files.is_open()
        {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(50));
        }
        self.handle_close(ui);
        self.shortcuts(ui);
        self.autosave.tick(&self.doc);
        if let Some(e) = self.autosave.error.take() {
            self.error(e);
        }
        if self.settings.show_bottom && self.settings.bottom_tab == BottomTab::Audio {
            self.audio.shortcuts(ui);
        }
        self.revalidate();

        let title = format!(
            "{}{} — grym-synth",
            if self.doc.is_dirty() { "● " } else { "" },
            self.doc.title()
        );
        if title != self.last_title {
            ui.ctx()
                .send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.last_title = title;
        }

        egui::Panel::top("menu").show(ui, |ui| self.menu_bar(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        if self.settings.show_bottom {
            let panel = egui::Panel::bottom("bottom")
                .resizable(true)
                .default_size(200.0);
            // The timeline, its result views and the optimisation plot need room to be read.
            let panel = if matches!(
                self.settings.bottom_tab,
                BottomTab::Timeline | BottomTab::Optimize
            ) {
                panel.min_size(350.0)
            } else {
                panel
            };
            panel.show(ui, |ui| self.bottom_panel(ui));
        }
        if self.settings.show_palette {
            egui::Panel::left("palette")
                .resizable(true)
                .default_size(220.0)
                .show(ui, |ui| {
                    if let Some(item) = palette::show(ui, &self.items, &mut self.palette_query) {
                        self.add_item(&item, None);
                    }
                });
        }
        if self.settings.show_inspector {
            egui::Panel::right("inspector")
                .resizable(true)
                .default_size(320.0)
                .show(ui, |ui| {
                    let registry = self
                        .engine
                        .as_ref()
                        .map_or(&self.fallback_registry, Engine::registry);
                    let actions = inspector::show(
                        ui,
                        &mut self.doc,
                        self.selected.as_deref(),
                        registry,
                        &mut self.inspector,
                        &mut self.files,
                    );
                    for a in actions {
                        match a {
                            InspectorAction::Renamed(id) => self.selected = Some(id),
                        }
                    }
                    if self.selected.is_some() {
                        ui.separator();
                        if ui.button("Show workflow settings").clicked() {
                            self.select(None);
                        }
                    }
                });
        }
        egui::CentralPanel::default()
            .frame(egui::Frame::NONE)
            .show(ui, |ui| {
                self.canvas.sync(self.doc.workflow(), self.doc.revision());
                let deco = NodeDecorations {
                    status: self.run.statuses.clone(),
                    problems: problems::per_step(&self.report),
                    selected: self.selected.clone(),
                };
                let actions = self
                    .canvas
                    .show(ui, self.doc.workflow(), &self.items, &deco);
                for a in actions {
                    self.apply_canvas(a);
                }
            });

        self.dialogs(ui);
        for action in versions::show(ui.ctx(), &mut self.versions, self.doc.workflow()) {
            self.versions_action(action);
        }
    }

    fn handle_close(&mut self, ui: &Ui) {
        if ui.ctx().input(|i| i.viewport().close_requested())
            && !self.allow_close
            && self.doc.is_dirty()
        {
            ui.ctx()
                .send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.pending = Some(Pending::Close);
        }
        if self.allow_close && self.pending.is_none() && self.doc.is_dirty() {
            // The user chose to discard: close for real, leaving nothing to recover.
            self.autosave.clear();
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    fn menu_bar(&mut self, ui: &mut Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("New").clicked() {
                    self.request(Pending::New(None));
                    ui.close();
                }
                ui.menu_button("New from template", |ui| {
                    for t in templates::TEMPLATES {
                        if ui.button(t.name).on_hover_text(t.description).clicked() {
                            self.request(Pending::New(Some(t.name)));
                            ui.close();
                        }
                    }
                });
                if ui.button("Open…").clicked() {
                    self.request(Pending::OpenPrompt);
                    ui.close();
                }
                ui.menu_button("Open recent", |ui| {
                    if self.settings.recent.is_empty() {
                        ui.weak("(none)");
                    }
                    for p in self.settings.recent.clone() {
                        if ui.button(p.display().to_string()).clicked() {
                            self.request(Pending::OpenPath(p));
                            ui.close();
                        }
                    }
                });
                ui.separator();
                if ui.button("Save").clicked() {
                    self.save();
                    ui.close();
                }
                if ui.button("Save As…").clicked() {
                    self.ask_path(FilePurpose::SaveAs);
                    ui.close();
                }
            });
            ui.menu_button("Edit", |ui| {
                let undo = self
                    .doc
                    .undo_label()
                    .map_or("Undo".to_string(), |l| format!("Undo {l}"));
                if ui
                    .add_enabled(self.doc.can_undo(), egui::Button::new(undo))
                    .clicked()
                {
                    self.undo();
                    ui.close();
                }
                let redo = self
                    .doc
                    .redo_label()
                    .map_or("Redo".to_string(), |l| format!("Redo {l}"));
                if ui
                    .add_enabled(self.doc.can_redo(), egui::Button::new(redo))
                    .clicked()
                {
                    self.redo();
                    ui.close();
                }
                ui.separator();
                let sel = self.selected.clone();
                if ui
                    .add_enabled(sel.is_some(), egui::Button::new("Duplicate step"))
                    .clicked()
                {
                    self.apply_canvas(CanvasAction::Duplicate(sel.iter().cloned().collect()));
                    ui.close();
                }
                if ui
                    .add_enabled(sel.is_some(), egui::Button::new("Delete step"))
                    .clicked()
                {
                    self.apply_canvas(CanvasAction::Delete(sel.iter().cloned().collect()));
                    ui.close();
                }
                ui.separator();
                if ui.button("Auto-layout").clicked() {
                    self.doc
                        .edit("Auto-layout", |w| edits::auto_layout(w, false));
                    self.canvas.frame_all();
                    ui.close();
                }
            });
            ui.menu_button("Workflow", |ui| {
                if ui
                    .add_enabled(self.engine.is_some(), egui::Button::new("Versions…"))
                    .on_hover_text("every stored version of this workflow: who, when, what changed; open or roll back")
                    .clicked()
                {
                    if let Some(engine) = &self.engine {
                        let id = self.doc.workflow().id.clone();
                        self.versions.show_for(engine, &id);
                    }
                    ui.close();
                }
            });
            ui.menu_button("API", |ui| self.api_menu(ui));
            ui.menu_button("View", |ui| {
                ui.checkbox(&mut self.settings.show_palette, "Palette");
                ui.checkbox(&mut self.settings.show_inspector, "Inspector");
                ui.checkbox(
                    &mut self.settings.show_bottom,
                    "Problems, run and audio panel",
                );
                if ui.button("Frame all").clicked() {
                    self.canvas.frame_all();
                    ui.close();
                }
            });
            ui.separator();
            if self.run.is_active() {
                if ui.button("⏹ Cancel").clicked() {
                    self.cancel_run();
                }
            } else if ui
                .add_enabled(self.engine.is_some(), egui::Button::new("▶ Run"))
                .on_disabled_hover_text(self.engine_error.clone().unwrap_or_default())
                .clicked()
            {
                self.ask_run();
            }
        });
    }

    fn api_menu(&mut self, ui: &mut Ui) {
        let Some(engine) = self.engine.clone() else {
            ui.weak("No engine: the API cannot be served");
            return;
        };
        let mut serving = self.api_link.is_serving();
        ui.horizontal(|ui| {
            if ui
                .checkbox(&mut serving, "Serve the REST API on 127.0.0.1:")
                .on_hover_text("programs and LLMs can then build and run workflows in this editor's engine; what they save to the open workflow appears on the canvas")
                .changed()
            {
                if serving {
                    self.api_link.start(&engine);
                } else {
                    self.api_link.stop();
                }
            }
            ui.add_enabled(
                !self.api_link.is_serving(),
                egui::DragValue::new(&mut self.api_link.port).range(1..=65535),
            );
        });
        if let Some(url) = self.api_link.url() {
            ui.label(RichText::new(&url).monospace());
            if ui.button("Copy address").clicked() {
                ui.ctx().copy_text(url);
                ui.close();
            }
        }
        if let Some(e) = &self.api_link.error {
            ui.colored_label(super::theme::ERROR, e);
        }
        if !self.api_link.saved.is_empty() {
            ui.separator();
            ui.weak("Saved through the API:");
            for s in self.api_link.saved.clone().iter().rev() {
                let label = format!("{} (v{}, {})", s.workflow_id, s.version, s.created_by);
                if s.deleted {
                    ui.weak(format!("{label}: deleted"));
                } else if ui.button(format!("Open {label}")).clicked() {
                    self.request(Pending::OpenRegistered(s.workflow_id.clone()));
                    ui.close();
                }
            }
        }
    }

    fn status_bar(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            let path = self
                .doc
                .path
                .as_ref()
                .map_or("not saved yet".to_string(), |p| p.display().to_string());
            ui.weak(path);
            if self.doc.is_dirty() {
                ui.label(RichText::new("unsaved changes").color(super::theme::WARNING));
            }
            if let Some(e) = &self.engine_error {
                ui.label(
                    RichText::new(format!("engine unavailable: {e}")).color(super::theme::ERROR),
                );
            }
            if let Some(url) = self.api_link.url() {
                ui.label(RichText::new(format!("API on {url}")).color(super::theme::DATA));
            }
            if let Some((text, is_error)) = &self.status {
                let color = if *is_error {
                    super::theme::ERROR
                } else {
                    Color32::GRAY
                };
                ui.label(RichText::new(text).color(color));
            }
        });
    }

    fn bottom_panel(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            let errors = self.report.errors().count();
            let warnings = self.report.warnings().count();
            let label = format!("Problems ({errors} errors, {warnings} warnings)");
            ui.selectable_value(&mut self.settings.bottom_tab, BottomTab::Problems, label);
            ui.selectable_value(&mut self.settings.bottom_tab, BottomTab::Run, "Run");
            ui.selectable_value(
                &mut self.settings.bottom_tab,
                BottomTab::Timeline,
                "Timeline",
            );
            ui.selectable_value(&mut self.settings.bottom_tab, BottomTab::Audio, "Audio");
            ui.selectable_value(
                &mut self.settings.bottom_tab,
                BottomTab::Optimize,
                "Optimise",
            );
        });
        ui.separator();
        match self.settings.bottom_tab {
            BottomTab::Problems => {
                if let Some(step) = problems::show(ui, &self.report) {
                    self.select(Some(step));
                }
            }
            BottomTab::Run => {
                for action in run::show(ui, &self.run) {
                    match action {
                        RunPanelAction::Cancel => self.cancel_run(),
                        RunPanelAction::RefreshHistory => {
                            if let Some(e) = &self.engine {
                                self.run.refresh_history(e);
                            }
                        }
                        RunPanelAction::OpenPast(id) => {
                            if let Some(e) = &self.engine {
                                self.run.open_past(e, &id);
                            }
                        }
                        RunPanelAction::Select(s) => self.select(Some(s)),
                        RunPanelAction::ShowAudio(s) => self.show_step_audio(&s),
                        RunPanelAction::ShowResult(index) => {
                            if let Some(row) = self.run.rows.get(index) {
                                self.show_result(row.step_id.clone(), index);
                            }
                        }
                    }
                }
            }
            BottomTab::Optimize => {
                self.sync_optimize_fixed();
                let wf = self.doc.workflow();
                if let Some(engine) = &self.engine {
                    self.optimize.ensure_listed(engine, &wf.id);
                }
                let actions = optimize::show(ui, &mut self.optimize, wf, &mut self.optimize_fixed);
                for action in actions {
                    self.optimize_action(action);
                }
            }
            BottomTab::Timeline => self.timeline_tab(ui),
            BottomTab::Audio => {
                let step = self.selected.clone().map(|id| {
                    let found =
                        audio::step_audio(self.doc.workflow(), &self.run, self.registry(), &id);
                    (id, found)
                });
                self.audio
                    .show(ui, step.as_ref().map(|(id, a)| (id.as_str(), a)));
            }
        }
    }

    /// Keeps one typed value per untuned run parameter, prefilled with its default.
    fn sync_optimize_fixed(&mut self) {
        let wf = self.doc.workflow();
        let names = optimize::untuned_parameters(wf);
        let current: Vec<&str> = self
            .optimize_fixed
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        if current == names.iter().map(String::as_str).collect::<Vec<_>>() {
            return;
        }
        self.optimize_fixed = names
            .into_iter()
            .map(|n| {
                let typed = self
                    .optimize_fixed
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.clone());
                let default = match wf.parameters.get(&n) {
                    Some(Value::Null) | None => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                };
                (n, typed.unwrap_or(default))
            })
            .collect();
    }

    pub fn optimize_action(&mut self, action: OptimizeAction) {
        let Some(engine) = self.engine.clone() else {
            self.error("No engine: optimisation is unavailable");
            return;
        };
        match action {
            OptimizeAction::Start => {
                if !self.report.is_valid() {
                    self.optimize.error =
                        Some("The workflow has errors (see Problems); fix them first.".into());
                    return;
                }
                let fixed = match typed_parameters(self.doc.workflow(), &self.optimize_fixed) {
                    Ok(p) => p,
                    Err(e) => {
                        self.optimize.error = Some(e);
                        return;
                    }
                };
                self.optimize
                    .start(&engine, self.doc.workflow().clone(), fixed);
            }
            OptimizeAction::Cancel => self.optimize.cancel(),
            OptimizeAction::ApplyBest => self.apply_best_trial(),
            OptimizeAction::OpenExecution(id) => {
                self.run.open_past(&engine, &id);
                self.settings.bottom_tab = BottomTab::Run;
            }
            OptimizeAction::LoadStudy(id) => self.optimize.load_study(&engine, &id),
            OptimizeAction::RefreshStudies => {
                let id = self.doc.workflow().id.clone();
                self.optimize.refresh_studies(&engine, &id);
            }
        }
    }

    /// Puts the best trial's values into the workflow's parameter defaults (an undoable
    /// edit of the document) and stores that as a new version of the workflow.
    fn apply_best_trial(&mut self) {
        let Some(best) = self.optimize.view.best().cloned() else {
            return;
        };
        let Some(values) = best.params.as_object().cloned() else {
            return;
        };
        self.doc.edit("Apply optimised parameters", |w| {
            for (k, v) in values {
                w.parameters.insert(k, v);
            }
        });
        let Some(engine) = &self.engine else {
            return;
        };
        let note = format!(
            "parameters from optimisation study {}, trial {}",
            self.optimize
                .view
                .record
                .as_ref()
                .map_or("", |r| r.id.as_str()),
            best.number
        );
        match engine.register_noted(self.doc.workflow().clone(), "editor", Some(&note)) {
            Ok((_, version)) => {
                self.optimize.view.applied = Some(version);
                self.info(format!(
                    "Applied trial {}'s values; stored as version {version}",
                    best.number
                ));
            }
            Err(e) => self.error(format!("Applying the best values: {e}")),
        }
    }

    /// The timeline, with the shown run's result in a resizable pane on its right.
    fn timeline_tab(&mut self, ui: &mut Ui) {
        let shown = self.shown_run();
        // The timeline highlights the run whose result is shown.
        self.timeline.selected = shown;
        let found = shown.and_then(|i| self.run.rows.get(i)).map(|row| {
            let inputs = audio::step_audio(
                self.doc.workflow(),
                &self.run,
                self.registry(),
                &row.step_id,
            )
            .inputs;
            let outputs: Vec<audio::AudioRef> = row
                .best_result()
                .map(audio::result_audio)
                .unwrap_or_default()
                .into_iter()
                .map(|path| audio::AudioRef {
                    label: "output".into(),
                    path,
                })
                .collect();
            let threshold = self.step_number(&row.step_id, "threshold").unwrap_or(0.7);
            (inputs, outputs, threshold)
        });
        let mut result_action = None;
        let width = ui.available_width();
        egui::Panel::right("result-pane")
            .resizable(true)
            .default_size(width * 0.45)
            .size_range(240.0..=(width - 320.0).max(240.0))
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("result-scroll")
                    .auto_shrink([false, false])
                    .show(ui, |ui| match (shown, &found) {
                        (Some(index), Some((inputs, outputs, threshold))) => {
                            let shown_run = ShownRun {
                                execution: self.run.execution_id.as_deref(),
                                index,
                                row: &self.run.rows[index],
                                inputs,
                                outputs,
                                threshold: *threshold,
                            };
                            result_action = self.results.show(ui, &shown_run);
                        }
                        _ => {
                            ui.weak(
                                "Click a bar of the timeline (or select a step that has run) \
                                 to see its result drawn here.",
                            );
                        }
                    });
            });
        let mut action = None;
        egui::CentralPanel::default().show(ui, |ui| {
            action = timeline::show(ui, &mut self.timeline, &self.run);
        });
        if self.results.is_busy() {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(30));
        }
        if let Some(TimelineAction::Select { step, run }) = action {
            self.show_result(step, run);
        }
        if let Some(ResultAction::CompareAb { input, output }) = result_action {
            self.audio.set_sources(input, Some(output));
            self.audio.select(crate::audio::playback::Slot::B);
            self.settings.bottom_tab = BottomTab::Audio;
        }
    }

    fn file_chosen(&mut self, purpose: FilePurpose, path: PathBuf) {
        match purpose {
            FilePurpose::Open => {
                self.prompt = None;
                self.open_now(&path);
            }
            FilePurpose::SaveAs => {
                if self.save_to(&path) {
                    self.prompt = None;
                }
            }
            FilePurpose::RunParam(name) => {
                if let Some(d) = &mut self.run_dialog
                    && let Some(v) = d.values.iter_mut().find(|(k, _)| *k == name)
                {
                    v.1 = path.display().to_string();
                }
            }
            FilePurpose::StepParam { step, name } => {
                let v = Value::String(path.display().to_string());
                self.doc.edit("Choose file", |w| {
                    if let Some(s) = w.steps.get_mut(&step) {
                        s.parameters.insert(name, v);
                    }
                });
            }
        }
    }

    fn dialogs(&mut self, ui: &mut Ui) {
        let ctx = ui.ctx().clone();
        // Work left by a session that ended without saving.
        if let Some(found) = &self.autosave.recovery {
            let mut answer = None;
            egui::Modal::new(Id::new("recover")).show(&ctx, |ui| {
                ui.heading("Recover unsaved work?");
                let what = found.origin.as_ref().map_or_else(
                    || "a workflow that was never saved".to_string(),
                    |p| p.display().to_string(),
                );
                let when = found.saved_at.map_or_else(String::new, |t| {
                    chrono::DateTime::<chrono::Local>::from(t)
                        .format(" (autosaved %Y-%m-%d %H:%M:%S)")
                        .to_string()
                });
                ui.label(format!(
                    "The last session ended with unsaved changes to {what}{when}: {} step(s).",
                    found.workflow.steps.len()
                ));
                ui.horizontal(|ui| {
                    if ui.button("Recover").clicked() {
                        answer = Some(true);
                    }
                    if ui.button("Discard").clicked() {
                        answer = Some(false);
                    }
                });
            });
            match answer {
                Some(true) => self.recover(),
                Some(false) => {
                    self.autosave.recovery = None;
                    self.autosave.clear();
                }
                None => {}
            }
        }
        // Unsaved changes.
        if let Some(pending) = self.pending.clone() {
            let mut answer = None;
            egui::Modal::new(Id::new("unsaved")).show(&ctx, |ui| {
                ui.heading("Unsaved changes");
                ui.label(format!(
                    "{} has changes that are not saved. Save them first?",
                    self.doc.title()
                ));
                ui.horizontal(|ui| {
                    if ui.button("Save").clicked() {
                        answer = Some(0);
                    }
                    if ui.button("Discard").clicked() {
                        answer = Some(1);
                    }
                    if ui.button("Cancel").clicked() {
                        answer = Some(2);
                    }
                });
            });
            match answer {
                Some(0) => {
                    if self.save() {
                        self.pending = None;
                        self.perform(pending);
                    } else {
                        self.pending = None;
                    }
                }
                Some(1) => {
                    self.pending = None;
                    if pending == Pending::Close {
                        self.allow_close = true;
                    } else {
                        self.perform(pending);
                    }
                }
                Some(2) => self.pending = None,
                _ => {}
            }
        }

        // Typed path for Open / Save As, with the system dialog as a button.
        let mut close_prompt = false;
        let mut chosen: Option<(FilePurpose, PathBuf)> = None;
        let mut browse = None;
        if let Some(prompt) = &mut self.prompt {
            let (title, verb) = match prompt.purpose {
                FilePurpose::SaveAs => ("Save workflow as", "Save"),
                _ => ("Open workflow", "Open"),
            };
            egui::Window::new(title)
                .collapsible(false)
                .resizable(false)
                .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
                .show(&ctx, |ui| {
                    ui.horizontal(|ui| {
                        let l = ui.label("Path");
                        let r = ui
                            .add(
                                egui::TextEdit::singleline(&mut prompt.text)
                                    .desired_width(360.0)
                                    .hint_text("/path/to/workflow.ron"),
                            )
                            .labelled_by(l.id);
                        if r.lost_focus()
                            && ui.input(|i| i.key_pressed(Key::Enter))
                            && let Some(p) = files::typed_path(&prompt.text)
                        {
                            chosen = Some((prompt.purpose.clone(), p));
                        }
                        if ui.button("Browse…").clicked() {
                            browse = Some(prompt.purpose.clone());
                        }
                    });
                    ui.weak(".ron or .json; the format follows the extension.");
                    if let Some(note) = &self.files.note {
                        ui.label(RichText::new(note).color(super::theme::WARNING).small());
                    }
                    if let Some(e) = &prompt.error {
                        ui.label(RichText::new(e).color(super::theme::ERROR));
                    }
                    if prompt.purpose == FilePurpose::Open && !self.settings.recent.is_empty() {
                        ui.separator();
                        ui.label("Recent");
                        for p in &self.settings.recent {
                            if ui.link(p.display().to_string()).clicked() {
                                chosen = Some((FilePurpose::Open, p.clone()));
                            }
                        }
                    }
                    ui.horizontal(|ui| {
                        if ui.button(verb).clicked() {
                            match files::typed_path(&prompt.text) {
                                Some(p) => chosen = Some((prompt.purpose.clone(), p)),
                                None => prompt.error = Some("Type a path first.".into()),
                            }
                        }
                        if ui.button("Cancel").clicked() {
                            close_prompt = true;
                        }
                    });
                });
        }
        if let Some(purpose) = browse {
            let start = self
                .prompt
                .as_ref()
                .and_then(|p| files::typed_path(&p.text));
            self.files.browse(
                purpose.clone(),
                purpose == FilePurpose::SaveAs,
                start.as_deref(),
            );
        }
        if close_prompt {
            self.prompt = None;
        }
        if let Some((purpose, path)) = chosen {
            match purpose {
                FilePurpose::Open => {
                    if path.is_file() {
                        self.prompt = None;
                        self.open_now(&path);
                    } else if let Some(p) = &mut self.prompt {
                        p.error = Some(format!("{} is not a file", path.display()));
                    }
                }
                FilePurpose::SaveAs => {
                    if let Err(e) = crate::workflow::Format::from_path(&path) {
                        if let Some(p) = &mut self.prompt {
                            p.error = Some(e.to_string());
                        }
                    } else if self.save_to(&path) {
                        self.prompt = None;
                    } else if let Some(p) = &mut self.prompt {
                        p.error = self.status.as_ref().map(|(t, _)| t.clone());
                    }
                }
                other => self.file_chosen(other, path),
            }
        }

        // Run parameters.
        let mut run_now = false;
        let mut cancel = false;
        let mut browse_param = None;
        if let Some(dialog) = &mut self.run_dialog {
            egui::Window::new("Run workflow")
                .collapsible(false)
                .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
                .show(&ctx, |ui| {
                    if dialog.values.is_empty() {
                        ui.label("This workflow takes no parameters.");
                    }
                    egui::Grid::new("run-params").num_columns(3).show(ui, |ui| {
                        for (k, v) in &mut dialog.values {
                            let l = ui.label(format!("{k} ="));
                            ui.add(egui::TextEdit::singleline(v).desired_width(280.0))
                                .labelled_by(l.id);
                            if ui
                                .small_button("…")
                                .on_hover_text("Choose a file")
                                .clicked()
                            {
                                browse_param = Some(k.clone());
                            }
                            ui.end_row();
                        }
                    });
                    if let Some(note) = &self.files.note {
                        ui.label(RichText::new(note).color(super::theme::WARNING).small());
                    }
                    if let Some(e) = &dialog.error {
                        ui.label(RichText::new(e).color(super::theme::ERROR));
                    }
                    ui.horizontal(|ui| {
                        if ui.button("Start").clicked() {
                            run_now = true;
                        }
                        if ui.button("Cancel").clicked() {
                            cancel = true;
                        }
                    });
                });
        }
        if let Some(name) = browse_param {
            self.files.browse(FilePurpose::RunParam(name), false, None);
        }
        if cancel {
            self.run_dialog = None;
        } else if run_now {
            self.start_run();
        }
    }
}

impl eframe::App for Editor {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, SETTINGS_KEY, &self.settings);
    }
}

/// Problem counts by step, for tests and badges.
pub fn problem_counts(report: &Report) -> HashMap<String, (usize, usize)> {
    problems::per_step(report)
}
