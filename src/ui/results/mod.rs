//! Result views: a step run's result drawn according to what it holds ([`ResultKind`]):
//! onsets, beats and sections over the analysed audio's waveform; the spectrogram with
//! MFCC and chroma heat maps for features; compare's aspects as score bars with the
//! threshold and the overall score; input and output waveforms overlaid for
//! transformations. The JSON tree is always there too.
//!
//! Decoding, level pyramids and heat maps are computed on background threads and kept per
//! file while the same run is shown; the pane only polls.

pub mod heatmap;
pub mod json;
pub mod parse;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::Receiver;
use egui::{
    Color32, FontId, Pos2, Rect, RichText, Sense, Stroke, TextureHandle, TextureOptions, Ui, Vec2,
};

pub use parse::{ResultKind, Rhythm, Scores};

use super::audio::AudioRef;
use super::run::StepRunRow;
use super::theme;
use super::waveform::{self, WaveData, WaveView};

const WAVE_HEIGHT: f32 = 120.0;
/// The features view stacks two heat maps under the spectrogram, so it is lower.
const FEATURES_WAVE_HEIGHT: f32 = 84.0;
const HEAT_ROW_HEIGHT: f32 = 6.0;
const ONSET_COLOR: Color32 = Color32::from_rgb(255, 170, 60);
const BEAT_COLOR: Color32 = Color32::from_rgba_premultiplied(120, 230, 255, 170);
const SECTION_COLOR: Color32 = Color32::from_rgb(200, 150, 255);
const AFTER_COLOR: Color32 = Color32::from_rgba_premultiplied(230, 130, 40, 150);
const CHROMA_NAMES: [&str; 12] = [
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
];

/// The run whose result is shown, with what the editor knows of its step.
pub struct ShownRun<'a> {
    /// The execution and the run's index in the run panel's rows: a different key resets
    /// the view.
    pub execution: Option<&'a str>,
    pub index: usize,
    pub row: &'a StepRunRow,
    /// Audio the step read (the first is the one analysed) and wrote.
    pub inputs: &'a [AudioRef],
    pub outputs: &'a [AudioRef],
    /// Compare's `threshold` for this step.
    pub threshold: f64,
}

/// What the pane asks the editor to do.
#[derive(Debug, Clone, PartialEq)]
pub enum ResultAction {
    /// Play and compare the step's input (A) and output (B) in the Audio tab.
    CompareAb { input: AudioRef, output: AudioRef },
}

/// How a transformation's input and output are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeforeAfter {
    Overlay,
    Before,
    After,
}

enum Decoding {
    Pending(Receiver<Result<Arc<WaveData>, String>>),
    Ready(Arc<WaveData>),
    Failed(String),
}

struct HeatTextures {
    covered: f64,
    mfcc: TextureHandle,
    chroma: TextureHandle,
}

enum HeatState {
    Pending(Receiver<Result<heatmap::HeatMaps, String>>),
    Ready(HeatTextures),
    Failed(String),
}

/// The result pane's state: which run it shows, its view, and per-file caches.
pub struct ResultPane {
    shown: Option<(Option<String>, usize)>,
    /// The shown result read into its view, and whether that was the whole result (it is
    /// read again when the whole one replaces the summary).
    kind: Option<(bool, ResultKind)>,
    pub wave: WaveView,
    pub before_after: BeforeAfter,
    audio: HashMap<PathBuf, Decoding>,
    heat: HashMap<PathBuf, HeatState>,
}

impl Default for ResultPane {
    fn default() -> Self {
        ResultPane {
            shown: None,
            kind: None,
            wave: WaveView::default(),
            before_after: BeforeAfter::Overlay,
            audio: HashMap::new(),
            heat: HashMap::new(),
        }
    }
}

impl ResultPane {
    /// Whether background work is in flight (the UI should keep repainting).
    pub fn is_busy(&self) -> bool {
        self.audio
            .values()
            .any(|d| matches!(d, Decoding::Pending(_)))
            || self
                .heat
                .values()
                .any(|h| matches!(h, HeatState::Pending(_)))
            || self.wave.is_busy()
    }

    /// Whether the heat maps of `path` have been computed and uploaded.
    pub fn heat_maps_ready(&self, path: &Path) -> bool {
        matches!(self.heat.get(path), Some(HeatState::Ready(_)))
    }

    /// Whether the audio of `path` is decoded.
    pub fn audio_ready(&self, path: &Path) -> bool {
        matches!(self.audio.get(path), Some(Decoding::Ready(_)))
    }

    /// A new run to show: a fresh view; caches of files it does not use are dropped.
    fn switch_to(&mut self, key: (Option<String>, usize), run: &ShownRun<'_>, kind: &ResultKind) {
        let used: Vec<&Path> = run
            .inputs
            .iter()
            .chain(run.outputs)
            .map(|a| a.path.as_path())
            .collect();
        self.audio.retain(|p, _| used.contains(&p.as_path()));
        self.heat.retain(|p, _| used.contains(&p.as_path()));
        self.wave = WaveView::default();
        self.wave.show_spectrogram = *kind == ResultKind::Features;
        self.shown = Some(key);
    }

    fn poll(&mut self, ctx: &egui::Context) {
        for d in self.audio.values_mut() {
            if let Decoding::Pending(rx) = d
                && let Ok(result) = rx.try_recv()
            {
                *d = match result {
                    Ok(data) => Decoding::Ready(data),
                    Err(e) => Decoding::Failed(e),
                };
            }
        }
        for (path, h) in self.heat.iter_mut() {
            if let HeatState::Pending(rx) = h
                && let Ok(result) = rx.try_recv()
            {
                *h = match result {
                    Ok(maps) => {
                        let name = path.display().to_string();
                        let load = |what: &str, image| {
                            ctx.load_texture(
                                format!("{what} {name}"),
                                image,
                                TextureOptions::NEAREST,
                            )
                        };
                        HeatState::Ready(HeatTextures {
                            covered: maps.covered,
                            mfcc: load("mfcc", maps.mfcc),
                            chroma: load("chroma", maps.chroma),
                        })
                    }
                    Err(e) => HeatState::Failed(e),
                };
            }
        }
    }

    /// The decoded audio of `path`, decoding it on a thread the first time it is asked for.
    fn audio(&mut self, path: &Path) -> Result<Option<Arc<WaveData>>, String> {
        let entry = self
            .audio
            .entry(path.to_path_buf())
            .or_insert_with(|| Decoding::Pending(waveform::load(path)));
        match entry {
            Decoding::Pending(_) => Ok(None),
            Decoding::Ready(d) => Ok(Some(Arc::clone(d))),
            Decoding::Failed(e) => Err(e.clone()),
        }
    }

    /// Draws the result of `run`.
    pub fn show(&mut self, ui: &mut Ui, run: &ShownRun<'_>) -> Option<ResultAction> {
        let row = run.row;
        let result = row.best_result();
        let key = (run.execution.map(str::to_string), run.index);
        let whole = row.result.is_some();
        if self.shown.as_ref() != Some(&key) || self.kind.as_ref().is_none_or(|k| k.0 != whole) {
            // Read once per shown result, not every frame (results can be long).
            let kind = result.map_or(ResultKind::Json, |r| {
                ResultKind::of(r, !run.inputs.is_empty(), !run.outputs.is_empty())
            });
            if self.shown.as_ref() != Some(&key) {
                self.switch_to(key, run, &kind);
            }
            self.kind = Some((whole, kind));
        }
        // Out of the pane while the pane draws with it, then back.
        let (whole, kind) = self.kind.take().unwrap_or((whole, ResultKind::Json));
        let action = self.draw(ui, run, &kind);
        self.kind = Some((whole, kind));
        action
    }

    fn draw(&mut self, ui: &mut Ui, run: &ShownRun<'_>, kind: &ResultKind) -> Option<ResultAction> {
        let row = run.row;
        let result = row.best_result();
        self.poll(ui.ctx());
        if self.is_busy() {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(30));
        }

        ui.horizontal_wrapped(|ui| {
            ui.strong(format!("Result of {}", row.step_id));
            ui.weak(format!(
                "iteration {}, attempt {}",
                row.iteration, row.attempt
            ));
            theme::status_badge(ui, &row.status);
            if let Some(ms) = row.duration_ms {
                ui.weak(super::timeline::format_duration(ms / 1e3));
            }
            if let Some(b) = row.branch {
                ui.weak(format!("branch {b}"));
            }
        });
        if let Some(e) = &row.error {
            ui.label(RichText::new(e).color(theme::ERROR));
        }
        let Some(result) = result else {
            ui.weak("This run has no result.");
            return None;
        };
        let mut action = None;
        match kind {
            ResultKind::Rhythm(rhythm) => self.rhythm(ui, rhythm, run.inputs.first()),
            ResultKind::Features => self.features(ui, run.inputs.first()),
            ResultKind::Scores(scores) => {
                title(ui, kind, None);
                score_bars(ui, scores, run.threshold);
            }
            ResultKind::BeforeAfter => {
                if let (Some(i), Some(o)) = (run.inputs.first(), run.outputs.first()) {
                    action = self.before_after(ui, i, o);
                }
            }
            ResultKind::Audio => {
                if let Some(o) = run.outputs.first() {
                    self.audio_view(ui, o);
                }
            }
            ResultKind::Json => {}
        }
        egui::CollapsingHeader::new("JSON")
            .id_salt(("result-json", run.execution, run.index))
            .default_open(*kind == ResultKind::Json)
            .show(ui, |ui| {
                json::tree(ui, result, egui::Id::new(("result-tree", run.index)))
            });
        action
    }

    /// The wave view of `audio` (or why there is none); returns where it drew and what
    /// range it shows.
    fn wave(
        &mut self,
        ui: &mut Ui,
        audio: &AudioRef,
        height: f32,
    ) -> Option<(Arc<WaveData>, Rect, (f64, f64))> {
        match self.audio(&audio.path) {
            Ok(Some(data)) => {
                let events = self.wave.show(ui, &data, None, false, height);
                Some((data, events.area, events.visible))
            }
            Ok(None) => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("Loading {}…", audio.path.display()));
                });
                None
            }
            Err(e) => {
                ui.label(RichText::new(e).color(theme::ERROR));
                None
            }
        }
    }

    fn rhythm(&mut self, ui: &mut Ui, rhythm: &Rhythm, input: Option<&AudioRef>) {
        ui.horizontal_wrapped(|ui| {
            title(ui, &ResultKind::Rhythm(Rhythm::default()), input);
            ui.toggle_value(&mut self.wave.show_spectrogram, "Spectrogram");
        });
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new("■").color(ONSET_COLOR));
            ui.label(format!("{} onsets", rhythm.onsets.len()));
            ui.label(RichText::new("■").color(BEAT_COLOR));
            let tempo = rhythm
                .tempo
                .map_or(String::new(), |t| format!(" at {t:.1} BPM"));
            ui.label(format!("{} beats{tempo}", rhythm.beats.len()));
            ui.label(RichText::new("■").color(SECTION_COLOR));
            ui.label(format!("{} sections", rhythm.sections.len()));
            if let Some(r) = rhythm.regularity {
                ui.weak(format!("regularity {r:.2}"));
            }
        });
        if rhythm.shortened {
            ui.weak("Showing the first items; the whole result loads when the run finishes.");
        }
        let drawn = match input {
            Some(audio) => self
                .wave(ui, audio, WAVE_HEIGHT)
                .map(|(_, area, visible)| (area, visible)),
            None => {
                ui.weak("The analysed audio is not known (the step is not in the open workflow); the marks alone:");
                let (rect, _) = ui.allocate_exact_size(
                    Vec2::new(ui.available_width(), WAVE_HEIGHT * 0.6),
                    Sense::hover(),
                );
                ui.painter().rect_filled(rect, 2.0, Color32::from_gray(18));
                Some((rect, (0.0, (rhythm.last_time() * 1.05).max(1.0))))
            }
        };
        if let Some((area, visible)) = drawn {
            paint_rhythm(&ui.painter_at(area), area, visible, rhythm);
        }
    }

    fn features(&mut self, ui: &mut Ui, input: Option<&AudioRef>) {
        let Some(audio) = input else {
            ui.weak("The analysed audio is not known (the step is not in the open workflow).");
            return;
        };
        ui.horizontal_wrapped(|ui| {
            title(ui, &ResultKind::Features, Some(audio));
            ui.toggle_value(&mut self.wave.show_spectrogram, "Spectrogram");
            if ui.button("Zoom all").clicked() {
                self.wave.zoom_all();
            }
        });
        let Some((data, area, visible)) = self.wave(ui, audio, FEATURES_WAVE_HEIGHT) else {
            return;
        };
        if !self.heat.contains_key(&audio.path) {
            // From the audio the wave view decoded, so the file is read once.
            let (tx, rx) = crossbeam_channel::bounded(1);
            let samples = Arc::clone(&data.audio);
            std::thread::spawn(move || {
                let _ = tx.send(heatmap::compute(&samples));
            });
            self.heat.insert(audio.path.clone(), HeatState::Pending(rx));
        }
        match self.heat.get(&audio.path) {
            Some(HeatState::Ready(maps)) => {
                let x_range = (area.left(), area.right());
                let mfcc_rows: Vec<String> = (0..13).map(|i| i.to_string()).collect();
                heat_map(
                    ui,
                    "MFCC (13 coefficients × frames, each scaled to its own range)",
                    &maps.mfcc,
                    maps.covered,
                    x_range,
                    visible,
                    &mfcc_rows,
                );
                let chroma_rows: Vec<String> = CHROMA_NAMES.iter().map(|s| s.to_string()).collect();
                heat_map(
                    ui,
                    "Chroma (12 pitch classes × frames)",
                    &maps.chroma,
                    maps.covered,
                    x_range,
                    visible,
                    &chroma_rows,
                );
            }
            Some(HeatState::Pending(_)) | None => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Computing MFCC and chroma per frame…");
                });
            }
            Some(HeatState::Failed(e)) => {
                ui.label(RichText::new(e).color(theme::ERROR));
            }
        }
    }

    fn before_after(
        &mut self,
        ui: &mut Ui,
        input: &AudioRef,
        output: &AudioRef,
    ) -> Option<ResultAction> {
        let mut action = None;
        ui.horizontal_wrapped(|ui| {
            title(ui, &ResultKind::BeforeAfter, Some(input));
            for (mode, label) in [
                (BeforeAfter::Overlay, "Overlay"),
                (BeforeAfter::Before, "Before"),
                (BeforeAfter::After, "After"),
            ] {
                ui.selectable_value(&mut self.before_after, mode, label);
            }
            let overlay = self.before_after == BeforeAfter::Overlay;
            ui.add_enabled_ui(!overlay, |ui| {
                ui.toggle_value(&mut self.wave.show_spectrogram, "Spectrogram");
            });
            if ui
                .button("A/B in the Audio tab")
                .on_hover_text("Play the input and the output, switching at the same position")
                .clicked()
            {
                action = Some(ResultAction::CompareAb {
                    input: input.clone(),
                    output: output.clone(),
                });
            }
        });
        match self.before_after {
            BeforeAfter::Overlay => {
                self.wave.show_spectrogram = false;
                ui.horizontal(|ui| {
                    ui.label(RichText::new("■").color(Color32::from_rgb(110, 190, 255)));
                    ui.label("before (input)");
                    ui.label(RichText::new("■").color(AFTER_COLOR));
                    ui.label("after (output)");
                });
                let after = self.audio(&output.path);
                if let Some((before, area, visible)) = self.wave(ui, input, WAVE_HEIGHT) {
                    match after {
                        Ok(Some(after)) => waveform::paint_envelope(
                            &ui.painter_at(area),
                            &after,
                            area,
                            before.audio.num_channels(),
                            visible,
                            AFTER_COLOR,
                        ),
                        Ok(None) => {
                            ui.weak("Loading the output…");
                        }
                        Err(e) => {
                            ui.label(RichText::new(e).color(theme::ERROR));
                        }
                    }
                }
            }
            BeforeAfter::Before => {
                self.wave(ui, input, WAVE_HEIGHT);
            }
            BeforeAfter::After => {
                self.wave(ui, output, WAVE_HEIGHT);
            }
        }
        action
    }

    fn audio_view(&mut self, ui: &mut Ui, output: &AudioRef) {
        ui.horizontal_wrapped(|ui| {
            title(ui, &ResultKind::Audio, Some(output));
            ui.toggle_value(&mut self.wave.show_spectrogram, "Spectrogram");
        });
        self.wave(ui, output, WAVE_HEIGHT);
    }
}

/// A view's title, and the audio it draws (its file on hover).
fn title(ui: &mut Ui, kind: &ResultKind, audio: Option<&AudioRef>) {
    ui.label(RichText::new(kind.title()).strong());
    if let Some(a) = audio {
        ui.weak(format!("of {}", a.label))
            .on_hover_text(a.path.display().to_string());
    }
}

/// Draws onsets (ticks from the bottom, as tall as their strength), beats (full-height
/// lines) and sections (bands along the top) over `area`, which shows `visible`.
pub fn paint_rhythm(painter: &egui::Painter, area: Rect, (start, span): (f64, f64), r: &Rhythm) {
    let span = span.max(1e-9);
    let x_of = |t: f64| area.left() + ((t - start) / span) as f32 * area.width();
    let end = start + span;
    // Only the marks in view: the arrays are in time order.
    let beats = {
        let a = r.beats.partition_point(|&t| t < start);
        a..r.beats.partition_point(|&t| t <= end).max(a)
    };
    let onsets = {
        let a = r.onsets.partition_point(|o| o.0 < start);
        a..r.onsets.partition_point(|o| o.0 <= end).max(a)
    };
    for (i, &(a, b)) in r.sections.iter().enumerate() {
        if b < start || a > end {
            continue;
        }
        let band = Rect::from_min_max(
            Pos2::new(x_of(a).max(area.left()), area.top()),
            Pos2::new(x_of(b).min(area.right()), area.top() + 12.0),
        );
        let alpha = if i % 2 == 0 { 90 } else { 45 };
        painter.rect_filled(
            band,
            0.0,
            SECTION_COLOR.linear_multiply(alpha as f32 / 255.0),
        );
        if i > 0 {
            painter.line_segment(
                [
                    Pos2::new(band.left(), area.top()),
                    Pos2::new(band.left(), area.bottom()),
                ],
                Stroke::new(1.5, SECTION_COLOR),
            );
        }
        if band.width() > 14.0 {
            painter.text(
                Pos2::new(band.left() + 3.0, band.center().y),
                egui::Align2::LEFT_CENTER,
                (i + 1).to_string(),
                FontId::proportional(10.0),
                Color32::WHITE,
            );
        }
    }
    for &t in &r.beats[beats] {
        let x = x_of(t);
        painter.line_segment(
            [Pos2::new(x, area.top() + 12.0), Pos2::new(x, area.bottom())],
            Stroke::new(1.0, BEAT_COLOR),
        );
    }

    let strongest = r.onsets.iter().fold(0.0f64, |m, o| m.max(o.1)).max(1e-9);
    for &(t, strength) in &r.onsets[onsets] {
        let x = x_of(t);
        let h = area.height() * (0.25 + 0.6 * (strength / strongest).clamp(0.0, 1.0) as f32);
        painter.line_segment(
            [Pos2::new(x, area.bottom()), Pos2::new(x, area.bottom() - h)],
            Stroke::new(2.0, ONSET_COLOR),
        );
    }
}

/// A heat map under the wave view, covering the same time range (`visible`) across the
/// same `x_range`, with row names over its left edge.
fn heat_map(
    ui: &mut Ui,
    title: &str,
    texture: &TextureHandle,
    covered: f64,
    x_range: (f32, f32),
    (start, span): (f64, f64),
    row_names: &[String],
) {
    let rows = row_names.len().max(1);
    let height = rows as f32 * HEAT_ROW_HEIGHT;
    let (outer, response) =
        ui.allocate_exact_size(Vec2::new(ui.available_width(), height), Sense::hover());
    response.widget_info(|| egui::WidgetInfo::labeled(egui::WidgetType::Image, true, title));
    let rect = Rect::from_min_max(
        Pos2::new(x_range.0.max(outer.left()), outer.top()),
        Pos2::new(x_range.1.min(outer.right()), outer.bottom()),
    );
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::from_gray(18));
    let span = span.max(1e-9);
    let covered = covered.max(1e-9);
    let x_of = |t: f64| rect.left() + ((t - start) / span) as f32 * rect.width();
    let (a, b) = (start.max(0.0), (start + span).min(covered));
    if b > a {
        let image = Rect::from_min_max(
            Pos2::new(x_of(a), rect.top()),
            Pos2::new(x_of(b), rect.bottom()),
        );
        let uv = Rect::from_min_max(
            Pos2::new((a / covered) as f32, 0.0),
            Pos2::new((b / covered) as f32, 1.0),
        );
        painter.image(texture.id(), image, uv, Color32::WHITE);
    }
    // Every row's name where rows are tall enough, else every other one.
    let every = if HEAT_ROW_HEIGHT >= 9.0 { 1 } else { 2 };
    for (i, name) in row_names.iter().enumerate().step_by(every) {
        let y = rect.bottom() - (i as f32 + 0.5) * HEAT_ROW_HEIGHT;
        painter.text(
            Pos2::new(rect.left() + 2.0, y),
            egui::Align2::LEFT_CENTER,
            name,
            FontId::monospace(7.0),
            Color32::WHITE,
        );
    }
    // The title over the top right corner, on a dark backing to stay legible.
    let galley = painter.layout_no_wrap(
        title.to_string(),
        FontId::proportional(10.0),
        Color32::WHITE,
    );
    let at = Pos2::new(rect.right() - galley.size().x - 4.0, rect.top() + 1.0);
    painter.rect_filled(
        Rect::from_min_size(at, galley.size()).expand(1.0),
        2.0,
        Color32::from_black_alpha(170),
    );
    painter.galley(at, galley, Color32::WHITE);
    if let Some(p) = response.hover_pos()
        && rect.contains(p)
    {
        let t = start + f64::from((p.x - rect.left()) / rect.width()) * span;
        let row = (((rect.bottom() - p.y) / HEAT_ROW_HEIGHT) as usize).min(rows - 1);
        response.on_hover_text(format!(
            "{} at {}",
            row_names.get(row).map_or("", String::as_str),
            waveform::format_time(t.max(0.0), 0.01)
        ));
    }
}

/// Compare's overall score and one bar per aspect (0–1), with the threshold under which an
/// aspect becomes an improvement area.
pub fn score_bars(ui: &mut Ui, scores: &Scores, threshold: f64) {
    let name_width = 150.0;
    let value_width = 90.0;
    let bar_width = (ui.available_width() - name_width - value_width - 16.0).max(60.0);
    let bar = |ui: &mut Ui,
               name: &str,
               score: f64,
               weight: Option<f64>,
               detail: &str,
               big: bool| {
        ui.horizontal(|ui| {
            let label = if big {
                RichText::new(name).strong()
            } else {
                RichText::new(name)
            };
            ui.add_sized([name_width, 18.0], egui::Label::new(label).truncate());
            let height = if big { 18.0 } else { 13.0 };
            let (rect, response) =
                ui.allocate_exact_size(Vec2::new(bar_width, height), Sense::hover());
            let painter = ui.painter_at(rect.expand(2.0));
            painter.rect_filled(rect, 2.0, Color32::from_gray(35));
            let below = score < threshold;
            let color = match (big, below) {
                (true, _) => theme::DATA,
                (false, true) => theme::WARNING,
                (false, false) => theme::TRUE,
            };
            let filled = Rect::from_min_size(
                rect.min,
                Vec2::new(rect.width() * score.clamp(0.0, 1.0) as f32, rect.height()),
            );
            painter.rect_filled(filled, 2.0, color);
            if !big {
                let x = rect.left() + rect.width() * threshold.clamp(0.0, 1.0) as f32;
                painter.line_segment(
                    [
                        Pos2::new(x, rect.top() - 2.0),
                        Pos2::new(x, rect.bottom() + 2.0),
                    ],
                    Stroke::new(1.5, Color32::WHITE),
                );
            }
            let accessible = if big {
                format!("{name} {score:.2}")
            } else {
                format!("{name} score {score:.2}")
            };
            response.widget_info(|| {
                egui::WidgetInfo::labeled(egui::WidgetType::ProgressIndicator, true, &accessible)
            });
            if !detail.is_empty() {
                response.on_hover_text(detail);
            }
            let value = match weight {
                Some(w) => format!("{score:.2}  ×{w:.2}"),
                None => format!("{score:.2}"),
            };
            ui.label(RichText::new(value).monospace());
        });
    };
    bar(
        ui,
        "Quality score",
        scores.quality,
        None,
        "the weighted mean of the aspects",
        true,
    );
    for a in &scores.aspects {
        bar(ui, &a.name, a.score, Some(a.weight), &a.detail, false);
    }
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("|").strong().color(Color32::WHITE));
        ui.weak(format!(
            "threshold {threshold:.2}: aspects under it are improvement areas"
        ));
    });
    if !scores.improvement_areas.is_empty() {
        ui.label(
            RichText::new(format!(
                "Improvement areas: {}",
                scores.improvement_areas.join(", ")
            ))
            .color(theme::WARNING),
        );
    }
}
