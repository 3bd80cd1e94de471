//! The audio panel: which audio a step reads and writes, its waveform, and playback with
//! A/B comparison of a step's input and output. Decoding, levels, resampling and opening
//! the output device all happen on background threads; the panel only polls.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::Receiver;
use egui::{Key, RichText, Ui};
use serde_json::Value;

use super::run::RunState;
use super::waveform::{self, WaveData, WaveView};
use crate::audio::playback::{Clip, Player, Slot};
use crate::engine::operation::audio_source;
use crate::engine::{OperationRegistry, ParamKind};
use crate::workflow::{InputSource, Workflow};

/// An audio file the panel can show, with what it is to the step.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioRef {
    pub label: String,
    pub path: PathBuf,
}

/// The audio a step reads (inputs and audio parameters) and writes (its latest result).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepAudio {
    pub inputs: Vec<AudioRef>,
    pub outputs: Vec<AudioRef>,
}

/// The latest result of `step` in the run panel, if any.
fn latest_result<'a>(run: &'a RunState, step: &str) -> Option<&'a Value> {
    run.rows
        .iter()
        .rev()
        .filter(|r| r.step_id == step)
        .find_map(|r| r.summary.as_ref())
}

/// Audio files in a result: its `audio` artifact and an exported `path`.
pub fn result_audio(result: &Value) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if result.get("audio").is_some()
        && let Ok((path, _)) = audio_source(result)
    {
        out.push(path);
    }
    if let Some(Value::String(p)) = result.get("path") {
        let p = PathBuf::from(p);
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Finds the audio `step` reads and writes: parameter inputs (from the run's parameters,
/// else the workflow's defaults), inputs from earlier steps' results, audio path
/// parameters, and the step's own latest result.
pub fn step_audio(
    wf: &Workflow,
    run: &RunState,
    registry: &OperationRegistry,
    step: &str,
) -> StepAudio {
    let mut audio = StepAudio::default();
    let Some(s) = wf.steps.get(step) else {
        return audio;
    };
    for input in &s.inputs {
        let value = match input.source {
            InputSource::Parameter => run
                .parameters
                .get(&input.key)
                .or_else(|| wf.parameters.get(&input.key))
                .cloned(),
            InputSource::PreviousStep | InputSource::Context => {
                let source = input.key.split('.').next().unwrap_or_default();
                latest_result(run, source).cloned()
            }
        };
        if let Some(v) = value
            && let Ok((path, _)) = audio_source(&v)
        {
            audio.inputs.push(AudioRef {
                label: format!("input {}", input.key),
                path,
            });
        }
    }
    if let Some(op) = registry.get(s.step_type, &s.operation) {
        for p in &op.spec().parameters {
            if let (ParamKind::Path { audio: true }, Some(Value::String(v))) =
                (&p.kind, s.parameters.get(&p.name))
                && !v.is_empty()
            {
                audio.inputs.push(AudioRef {
                    label: format!("parameter {}", p.name),
                    path: PathBuf::from(v),
                });
            }
        }
    }
    if let Some(result) = latest_result(run, step) {
        for path in result_audio(result) {
            audio.outputs.push(AudioRef {
                label: "output".to_string(),
                path,
            });
        }
    }
    audio
}

enum Loading {
    Pending(Receiver<Result<Arc<WaveData>, String>>),
    Ready(Arc<WaveData>),
    Failed(String),
}

enum ClipState {
    Waiting,
    Preparing(Receiver<Result<Clip, String>>),
    Loaded,
    Failed(String),
}

struct Source {
    audio: AudioRef,
    data: Loading,
    clip: ClipState,
}

impl Source {
    fn new(audio: AudioRef) -> Source {
        let data = Loading::Pending(waveform::load(&audio.path));
        Source {
            audio,
            data,
            clip: ClipState::Waiting,
        }
    }

    fn data(&self) -> Option<&Arc<WaveData>> {
        match &self.data {
            Loading::Ready(d) => Some(d),
            _ => None,
        }
    }
}

/// Whether the output device is open.
pub enum PlayerState {
    NotOpened,
    Opening(Receiver<Result<Player, String>>),
    Ready(Box<Player>),
    Unavailable(String),
}

/// The panel's state.
pub struct AudioPanel {
    pub view: WaveView,
    pub player: PlayerState,
    sources: [Option<Source>; 2],
    active: Slot,
    pub looping: bool,
    /// The typed path of "Show file".
    pub path_text: String,
}

impl Default for AudioPanel {
    fn default() -> Self {
        AudioPanel {
            view: WaveView::default(),
            player: PlayerState::NotOpened,
            sources: [None, None],
            active: Slot::A,
            looping: false,
            path_text: String::new(),
        }
    }
}

fn slot_index(slot: Slot) -> usize {
    match slot {
        Slot::A => 0,
        Slot::B => 1,
    }
}

impl AudioPanel {
    /// Shows `a` (and `b` for A/B comparison).
    pub fn set_sources(&mut self, a: AudioRef, b: Option<AudioRef>) {
        let same_a = self.sources[0].as_ref().is_some_and(|s| s.audio == a);
        let same_b = match (&self.sources[1], &b) {
            (Some(s), Some(b)) => s.audio == *b,
            (None, None) => true,
            _ => false,
        };
        if same_a && same_b {
            return;
        }
        if let Some(c) = self.controller_mut() {
            c.stop();
        }
        self.sources = [Some(Source::new(a)), b.map(Source::new)];
        self.select(Slot::A);
        let spectrogram = self.view.show_spectrogram;
        self.view = WaveView::default();
        self.view.show_spectrogram = spectrogram;
        self.open_player();
    }

    /// Shows audio that is already decoded, with its levels (no background decoding).
    pub fn set_loaded(&mut self, audio: AudioRef, data: Arc<WaveData>) {
        self.set_sources(audio, None);
        if let Some(s) = &mut self.sources[0] {
            s.data = Loading::Ready(data);
        }
    }

    /// What is shown in `slot`.
    pub fn source(&self, slot: Slot) -> Option<&AudioRef> {
        self.sources[slot_index(slot)].as_ref().map(|s| &s.audio)
    }

    /// The loaded audio of the active slot, once decoded.
    pub fn data(&self) -> Option<&Arc<WaveData>> {
        self.sources[slot_index(self.active)]
            .as_ref()
            .and_then(Source::data)
    }

    pub fn active(&self) -> Slot {
        self.active
    }

    pub fn has_ab(&self) -> bool {
        self.sources[1].is_some()
    }

    /// Why playback is unavailable, once that is known.
    pub fn unavailable(&self) -> Option<&str> {
        match &self.player {
            PlayerState::Unavailable(why) => Some(why),
            _ => None,
        }
    }

    /// Opens the output device on a background thread, once.
    pub fn open_player(&mut self) {
        if matches!(self.player, PlayerState::NotOpened) {
            let (tx, rx) = crossbeam_channel::bounded(1);
            std::thread::spawn(move || {
                let _ = tx.send(Player::open().map_err(|e| e.to_string()));
            });
            self.player = PlayerState::Opening(rx);
        }
    }

    fn controller_mut(&mut self) -> Option<&mut crate::audio::playback::Controller> {
        match &mut self.player {
            PlayerState::Ready(p) => Some(p.controller_mut()),
            _ => None,
        }
    }

    fn controller(&self) -> Option<&crate::audio::playback::Controller> {
        match &self.player {
            PlayerState::Ready(p) => Some(p.controller()),
            _ => None,
        }
    }

    /// Whether background work is in flight (the UI should keep repainting).
    pub fn is_busy(&self) -> bool {
        let loading = self.sources.iter().flatten().any(|s| {
            matches!(s.data, Loading::Pending(_)) || matches!(s.clip, ClipState::Preparing(_))
        });
        loading
            || matches!(self.player, PlayerState::Opening(_))
            || self.is_playing()
            || self.view.is_busy()
    }

    /// Whether the active clip is on the output device, ready to play.
    pub fn can_play(&self) -> bool {
        self.controller().is_some()
            && self.sources[slot_index(self.active)]
                .as_ref()
                .is_some_and(|s| matches!(s.clip, ClipState::Loaded))
    }

    /// The playhead in seconds, when the output device is open.
    pub fn position(&self) -> Option<f64> {
        self.controller().map(|c| c.position())
    }

    pub fn is_playing(&self) -> bool {
        self.controller().is_some_and(|c| c.is_playing())
    }

    /// Reads what background threads finished since the last frame.
    pub fn poll(&mut self) {
        if let PlayerState::Opening(rx) = &self.player
            && let Ok(result) = rx.try_recv()
        {
            self.player = match result {
                Ok(p) => PlayerState::Ready(Box::new(p)),
                Err(e) => PlayerState::Unavailable(e),
            };
        }
        if let PlayerState::Ready(p) = &self.player
            && let Some(e) = p.take_error()
        {
            tracing::warn!("audio output: {e}");
        }
        let rate = self.controller().map(|c| c.sample_rate());
        let mut loads = Vec::new();
        for (i, source) in self.sources.iter_mut().enumerate() {
            let Some(source) = source else { continue };
            if let Loading::Pending(rx) = &source.data
                && let Ok(result) = rx.try_recv()
            {
                source.data = match result {
                    Ok(d) => Loading::Ready(d),
                    Err(e) => Loading::Failed(e),
                };
            }
            if let (ClipState::Waiting, Some(rate), Loading::Ready(data)) =
                (&source.clip, rate, &source.data)
            {
                let (tx, rx) = crossbeam_channel::bounded(1);
                let audio = Arc::clone(&data.audio);
                std::thread::spawn(move || {
                    let _ = tx.send(Clip::prepare(audio, rate).map_err(|e| e.to_string()));
                });
                source.clip = ClipState::Preparing(rx);
            }
            if let ClipState::Preparing(rx) = &source.clip
                && let Ok(result) = rx.try_recv()
            {
                match result {
                    Ok(clip) => loads.push((i, clip)),
                    Err(e) => source.clip = ClipState::Failed(e),
                }
            }
        }
        for (i, clip) in loads {
            let slot = if i == 0 { Slot::A } else { Slot::B };
            let ok = self.controller_mut().is_some_and(|c| c.load(slot, clip));
            if let Some(s) = &mut self.sources[i] {
                s.clip = if ok {
                    ClipState::Loaded
                } else {
                    ClipState::Failed("the audio device is not taking commands".into())
                };
            }
        }
    }

    /// Switches between A and B at the same position.
    pub fn select(&mut self, slot: Slot) {
        if self.sources[slot_index(slot)].is_none() {
            return;
        }
        self.active = slot;
        if let Some(c) = self.controller_mut() {
            c.select(slot);
        }
    }

    pub fn toggle_play(&mut self) {
        let looping = self.looping.then_some(self.view.selection).flatten();
        if let Some(c) = self.controller_mut() {
            if c.is_playing() {
                c.pause();
            } else {
                c.set_loop(looping);
                c.play();
            }
        }
    }

    pub fn stop(&mut self) {
        if let Some(c) = self.controller_mut() {
            c.stop();
        }
    }

    fn sync_loop(&mut self) {
        let looping = self.looping.then_some(self.view.selection).flatten();
        if let Some(c) = self.controller_mut() {
            c.set_loop(looping);
        }
    }

    /// Space plays or pauses when the panel shows audio and no text field has focus.
    pub fn shortcuts(&mut self, ui: &Ui) {
        if self.data().is_none() || ui.ctx().egui_wants_keyboard_input() {
            return;
        }
        if ui.input_mut(|i| i.consume_key(egui::Modifiers::NONE, Key::Space)) {
            self.toggle_play();
        }
    }

    /// Draws the panel. `step_audio` is the audio of the selected step, offered as buttons.
    pub fn show(&mut self, ui: &mut Ui, step: Option<(&str, &StepAudio)>) {
        self.open_player();
        self.poll();
        if self.is_busy() {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(30));
        }
        ui.horizontal_wrapped(|ui| {
            match step {
                Some((id, audio)) if !audio.inputs.is_empty() || !audio.outputs.is_empty() => {
                    ui.label(format!("Step {id}:"));
                    for a in audio.inputs.iter().chain(&audio.outputs) {
                        if ui
                            .button(&a.label)
                            .on_hover_text(a.path.display().to_string())
                            .clicked()
                        {
                            self.set_sources(a.clone(), None);
                        }
                    }
                    if let (Some(i), Some(o)) = (audio.inputs.first(), audio.outputs.first())
                        && ui.button("Compare input and output (A/B)").clicked()
                    {
                        self.set_sources(i.clone(), Some(o.clone()));
                    }
                }
                Some((id, _)) => {
                    ui.weak(format!("Step {id} has no audio yet (run the workflow)."));
                }
                None => {
                    ui.weak("Select a step to list its audio, or show a file:");
                }
            }
            ui.separator();
            let l = ui.label("File");
            let r = ui
                .add(
                    egui::TextEdit::singleline(&mut self.path_text)
                        .desired_width(220.0)
                        .hint_text("/path/to/audio.wav"),
                )
                .labelled_by(l.id);
            let enter = r.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
            if (ui.button("Show").clicked() || enter) && !self.path_text.trim().is_empty() {
                let path = PathBuf::from(self.path_text.trim());
                self.set_sources(file_ref(&path), None);
            }
        });
        self.transport(ui);
        self.waveform(ui);
    }

    fn transport(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            let ready = self.can_play();
            if ui
                .add_enabled(ready, egui::Button::new("⏹"))
                .on_hover_text("Stop")
                .clicked()
            {
                self.stop();
            }
            let playing = self.is_playing();
            let label = if playing { "⏸" } else { "▶" };
            if ui
                .add_enabled(ready, egui::Button::new(label))
                .on_hover_text("Play / pause (Space)")
                .clicked()
            {
                self.toggle_play();
            }
            if ui
                .toggle_value(&mut self.looping, "🔁 Loop")
                .on_hover_text("Loop the selection (drag on the waveform to select)")
                .changed()
            {
                self.sync_loop();
            }
            if self.has_ab() {
                for slot in [Slot::A, Slot::B] {
                    let name = self
                        .source(slot)
                        .map(|s| s.label.clone())
                        .unwrap_or_default();
                    if ui
                        .selectable_label(self.active == slot, format!("{} {name}", slot.label()))
                        .on_hover_text("Switch at the same position")
                        .clicked()
                    {
                        self.select(slot);
                    }
                }
            }
            ui.toggle_value(&mut self.view.show_spectrogram, "Spectrogram");
            if ui.button("Zoom all").clicked() {
                self.view.zoom_all();
            }
            if let Some(d) = self.data() {
                let pos = self.controller().map_or(0.0, |c| c.position());
                ui.monospace(format!(
                    "{} / {}",
                    waveform::format_time(pos, 0.01),
                    waveform::format_time(d.duration(), 0.01)
                ));
                ui.weak(format!(
                    "{} Hz, {} ch",
                    d.audio.sample_rate(),
                    d.audio.num_channels()
                ));
            }
            match &self.player {
                PlayerState::NotOpened | PlayerState::Opening(_) => {
                    ui.weak("opening the audio output…");
                }
                PlayerState::Ready(p) => {
                    ui.weak(format!("output: {}", p.device()));
                }
                PlayerState::Unavailable(why) => {
                    ui.label(
                        RichText::new(format!("Playback unavailable: {why}"))
                            .color(super::theme::WARNING),
                    );
                }
            }
        });
    }

    fn waveform(&mut self, ui: &mut Ui) {
        let Some(source) = self.sources[slot_index(self.active)].as_ref() else {
            ui.weak("No audio shown.");
            return;
        };
        let name = source.audio.path.display().to_string();
        match &source.data {
            Loading::Pending(_) => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("Loading {name}…"));
                });
            }
            Loading::Failed(e) => {
                ui.label(RichText::new(e).color(super::theme::ERROR));
            }
            Loading::Ready(data) => {
                let data = Arc::clone(data);
                let (pos, playing) = self
                    .controller()
                    .map_or((None, false), |c| (Some(c.position()), c.is_playing()));
                ui.horizontal(|ui| {
                    ui.weak(format!("{}: {name}", source.audio.label));
                    if let ClipState::Failed(e) = &source.clip {
                        ui.label(
                            RichText::new(format!("cannot play: {e}")).color(super::theme::ERROR),
                        );
                    }
                });
                let height = (ui.available_height() - 4.0).max(60.0);
                let events = self.view.show(ui, &data, pos, playing, height);
                if let Some(t) = events.seek
                    && let Some(c) = self.controller_mut()
                {
                    c.seek(t);
                }
                if events.selection_changed {
                    self.sync_loop();
                }
            }
        }
    }
}

/// A file the user named, labelled by its file name.
pub fn file_ref(path: &Path) -> AudioRef {
    let label = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    AudioRef {
        label,
        path: path.to_path_buf(),
    }
}
