//! The waveform view: a min/max overview drawn from a level pyramid (computed off the UI
//! thread when a file loads), zoom (Ctrl+wheel or pinch) and scroll (wheel), a time ruler,
//! a selection (drag), a playhead, and a spectrogram of the visible range (computed on a
//! background thread).

pub mod levels;
pub mod spectrogram;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::Receiver;
use egui::{
    Color32, ColorImage, FontId, Mesh, Pos2, Rect, Sense, Shape, Stroke, TextureHandle,
    TextureOptions, Ui, Vec2,
};

pub use levels::Levels;
use spectrogram::SpecRequest;

use crate::audio::{AudioBuffer, decode_file};

const RULER_HEIGHT: f32 = 18.0;
const WAVE_COLOR: Color32 = Color32::from_rgb(110, 190, 255);
const SELECTION_COLOR: Color32 = Color32::from_rgba_premultiplied(60, 60, 20, 60);
const PLAYHEAD_COLOR: Color32 = Color32::from_rgb(255, 220, 90);
/// Most frequency rows in a spectrogram image.
const SPEC_ROWS: usize = 256;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Decoded audio with its level pyramids, ready to draw.
pub struct WaveData {
    /// Unique per loaded audio, so caches know what they were computed from.
    pub id: u64,
    pub path: PathBuf,
    pub audio: Arc<AudioBuffer>,
    pub levels: Vec<Levels>,
}

impl WaveData {
    /// Builds the level pyramids of every channel (a pass over all samples: off the UI
    /// thread for long audio).
    pub fn new(path: PathBuf, audio: Arc<AudioBuffer>) -> WaveData {
        let levels = audio.channels().iter().map(|c| Levels::build(c)).collect();
        WaveData {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            path,
            audio,
            levels,
        }
    }

    pub fn duration(&self) -> f64 {
        self.audio.frames() as f64 / f64::from(self.audio.sample_rate())
    }

    pub fn sample_rate(&self) -> f64 {
        f64::from(self.audio.sample_rate())
    }
}

/// Decodes `path` and builds its levels on a background thread.
pub fn load(path: &Path) -> Receiver<Result<Arc<WaveData>, String>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let result = decode_file(&path)
            .map(|audio| Arc::new(WaveData::new(path.clone(), Arc::new(audio))))
            .map_err(|e| e.to_string());
        let _ = tx.send(result);
    });
    rx
}

/// Per-column min/max of one channel for one view, kept while the view does not change.
#[derive(Default)]
struct Envelope {
    key: Option<(u64, usize, u64, u64, usize)>,
    columns: Vec<Option<(f32, f32)>>,
}

#[derive(Default)]
struct Spectrogram {
    texture: Option<TextureHandle>,
    shown: Option<SpecRequest>,
    pending: Option<(SpecRequest, Receiver<ColorImage>)>,
}

/// What the user did in the view this frame.
#[derive(Debug, Clone, PartialEq)]
pub struct WaveEvents {
    /// Clicked at this time (seconds): move the playhead there.
    pub seek: Option<f64>,
    /// The selection changed (see [`WaveView::selection`]).
    pub selection_changed: bool,
    /// Where the waves were drawn (below the ruler), for drawing over them.
    pub area: Rect,
    /// The visible range: seconds at the left edge and seconds across.
    pub visible: (f64, f64),
}

impl Default for WaveEvents {
    fn default() -> Self {
        WaveEvents {
            seek: None,
            selection_changed: false,
            area: Rect::NOTHING,
            visible: (0.0, 0.0),
        }
    }
}

/// The view's state: what is visible, the selection, the caches.
pub struct WaveView {
    /// Seconds at the left edge.
    pub start: f64,
    /// Seconds across the view; `None` shows the whole clip.
    pub span: Option<f64>,
    /// Selected range in seconds (start < end).
    pub selection: Option<(f64, f64)>,
    pub show_spectrogram: bool,
    /// Keep the playhead in view while playing.
    pub follow: bool,
    drag_from: Option<f64>,
    envelopes: Vec<Envelope>,
    spectrogram: Spectrogram,
}

impl Default for WaveView {
    fn default() -> Self {
        WaveView {
            start: 0.0,
            span: None,
            selection: None,
            show_spectrogram: false,
            follow: true,
            drag_from: None,
            envelopes: Vec::new(),
            spectrogram: Spectrogram::default(),
        }
    }
}

impl WaveView {
    /// Shows the whole clip again.
    pub fn zoom_all(&mut self) {
        self.start = 0.0;
        self.span = None;
    }

    /// Whether a spectrogram image of some view has arrived and is shown.
    pub fn spectrogram_ready(&self) -> bool {
        self.spectrogram.shown.is_some() && self.spectrogram.texture.is_some()
    }

    /// Whether background work is in flight (the UI should keep repainting).
    pub fn is_busy(&self) -> bool {
        self.spectrogram.pending.is_some()
    }

    fn visible(&self, duration: f64) -> (f64, f64) {
        let span = self
            .span
            .unwrap_or(duration)
            .clamp(1e-4, duration.max(1e-4));
        let start = self.start.clamp(0.0, (duration - span).max(0.0));
        (start, span)
    }

    /// Draws the view of `data` in the space available (`height` points tall) with the
    /// playhead at `playhead` seconds.
    pub fn show(
        &mut self,
        ui: &mut Ui,
        data: &WaveData,
        playhead: Option<f64>,
        playing: bool,
        height: f32,
    ) -> WaveEvents {
        let mut events = WaveEvents::default();
        let duration = data.duration();
        let width = ui.available_width().max(50.0);
        let (rect, response) = ui.allocate_exact_size(
            Vec2::new(width, height.max(RULER_HEIGHT + 20.0)),
            Sense::click_and_drag(),
        );
        let (mut start, mut span) = self.visible(duration);

        // Zoom around the pointer (Ctrl+wheel, pinch) and scroll (wheel, horizontal wheel).
        if response.hovered() {
            let (zoom, scroll) = ui.input(|i| (i.zoom_delta(), i.smooth_scroll_delta()));
            let pointer_t = response.hover_pos().map_or(start + span / 2.0, |p| {
                start + f64::from((p.x - rect.left()) / rect.width()) * span
            });
            if zoom != 1.0 {
                let min_span = 32.0 / data.sample_rate();
                let new_span = (span / f64::from(zoom)).clamp(min_span, duration.max(min_span));
                start = pointer_t - (pointer_t - start) * new_span / span;
                span = new_span;
                self.span = Some(span);
            } else {
                let delta = if scroll.x != 0.0 { scroll.x } else { scroll.y };
                if delta != 0.0 {
                    start -= f64::from(delta / rect.width()) * span;
                }
            }
            self.start = start;
            (start, span) = self.visible(duration);
            self.start = start;
        }

        // Follow the playhead page by page while playing.
        if let (Some(t), true, true) = (playhead, playing, self.follow)
            && self.span.is_some()
            && (t < start || t > start + span)
        {
            self.start = t;
            (start, span) = self.visible(duration);
            self.start = start;
        }

        let waves = Rect::from_min_max(Pos2::new(rect.left(), rect.top() + RULER_HEIGHT), rect.max);
        events.area = waves;
        events.visible = (start, span);
        let x_of = |t: f64| waves.left() + ((t - start) / span) as f32 * waves.width();
        let t_of = |x: f32| {
            (start + f64::from((x - waves.left()) / waves.width()) * span).clamp(0.0, duration)
        };

        // Selection by dragging, seek by clicking.
        if response.drag_started()
            && let Some(p) = response.interact_pointer_pos()
        {
            self.drag_from = Some(t_of(p.x));
        }
        if response.dragged()
            && let (Some(from), Some(p)) = (self.drag_from, response.interact_pointer_pos())
        {
            let to = t_of(p.x);
            let sel = (from.min(to), from.max(to));
            if sel.1 > sel.0 && self.selection != Some(sel) {
                self.selection = Some(sel);
                events.selection_changed = true;
            }
        }
        if response.drag_stopped() {
            self.drag_from = None;
        }
        if response.clicked()
            && let Some(p) = response.interact_pointer_pos()
        {
            events.seek = Some(t_of(p.x));
        }
        if response.double_clicked() && self.selection.is_some() {
            self.selection = None;
            events.selection_changed = true;
        }

        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 2.0, Color32::from_gray(18));
        self.ruler(&painter, rect, start, span);

        if self.show_spectrogram {
            self.spectrogram(ui, &painter, data, waves, start, span);
        } else {
            self.waves(&painter, data, waves, start, span);
        }

        if let Some((a, b)) = self.selection {
            let r = Rect::from_x_y_ranges(
                x_of(a).max(waves.left())..=x_of(b).min(waves.right()),
                waves.y_range(),
            );
            if r.width() > 0.0 {
                painter.rect_filled(r, 0.0, SELECTION_COLOR);
            }
        }
        if let Some(t) = playhead
            && t >= start
            && t <= start + span
        {
            let x = x_of(t);
            painter.line_segment(
                [Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())],
                Stroke::new(1.5, PLAYHEAD_COLOR),
            );
        }
        events
    }

    fn ruler(&self, painter: &egui::Painter, rect: Rect, start: f64, span: f64) {
        let width = rect.width().max(1.0);
        // A tick about every 90 points, on a round number of seconds.
        let raw = span * 90.0 / f64::from(width);
        let step = nice_step(raw);
        let font = FontId::proportional(10.0);
        let mut t = (start / step).ceil() * step;
        while t <= start + span {
            let x = rect.left() + ((t - start) / span) as f32 * width;
            painter.line_segment(
                [
                    Pos2::new(x, rect.top() + RULER_HEIGHT - 5.0),
                    Pos2::new(x, rect.top() + RULER_HEIGHT),
                ],
                Stroke::new(1.0, Color32::GRAY),
            );
            painter.text(
                Pos2::new(x + 2.0, rect.top() + 1.0),
                egui::Align2::LEFT_TOP,
                format_time(t, step),
                font.clone(),
                Color32::GRAY,
            );
            t += step;
        }
    }

    fn waves(
        &mut self,
        painter: &egui::Painter,
        data: &WaveData,
        rect: Rect,
        start: f64,
        span: f64,
    ) {
        let channels = data.audio.num_channels().max(1);
        let columns = rect.width().round().max(1.0) as usize;
        let sr = data.sample_rate();
        let per_column = span * sr / columns as f64;
        let first = start * sr;
        self.envelopes.resize_with(channels, Envelope::default);
        let lane_h = rect.height() / channels as f32;
        let mut mesh = Mesh::default();
        for (c, env) in self.envelopes.iter_mut().enumerate() {
            let lane = Rect::from_min_size(
                Pos2::new(rect.left(), rect.top() + c as f32 * lane_h),
                Vec2::new(rect.width(), lane_h),
            );
            let mid = lane.center().y;
            let half = lane_h * 0.45;
            painter.line_segment(
                [Pos2::new(lane.left(), mid), Pos2::new(lane.right(), mid)],
                Stroke::new(1.0, Color32::from_gray(50)),
            );
            let samples = &data.audio.channels()[c];
            if per_column < 1.0 {
                // Zoomed in past one sample per column: a line through the samples.
                let a = first.floor().max(0.0) as usize;
                let b = ((first + span * sr).ceil() as usize + 1).min(samples.len());
                let points: Vec<Pos2> = (a..b)
                    .map(|i| {
                        let x = rect.left() + ((i as f64 - first) / per_column) as f32;
                        Pos2::new(x, mid - samples[i].clamp(-1.0, 1.0) * half)
                    })
                    .collect();
                painter.add(Shape::line(points, Stroke::new(1.0, WAVE_COLOR)));
                continue;
            }
            let key = (data.id, columns, first.to_bits(), per_column.to_bits(), c);
            if env.key != Some(key) {
                env.key = Some(key);
                env.columns.clear();
                env.columns.extend((0..columns).map(|i| {
                    let a = (first + i as f64 * per_column) as usize;
                    let b = ((first + (i + 1) as f64 * per_column) as usize).max(a + 1);
                    data.levels[c].min_max(samples, a..b)
                }));
            }
            mesh.reserve_vertices(columns * 4);
            mesh.reserve_triangles(columns * 2);
            for (i, mm) in env.columns.iter().enumerate() {
                let Some((lo, hi)) = *mm else { continue };
                let x = rect.left() + i as f32;
                let top = mid - hi.clamp(-1.0, 1.0) * half;
                let bottom = (mid - lo.clamp(-1.0, 1.0) * half).max(top + 1.0);
                mesh.add_colored_rect(
                    Rect::from_min_max(Pos2::new(x, top), Pos2::new(x + 1.0, bottom)),
                    WAVE_COLOR,
                );
            }
        }
        painter.add(Shape::mesh(mesh));
    }

    fn spectrogram(
        &mut self,
        ui: &Ui,
        painter: &egui::Painter,
        data: &WaveData,
        rect: Rect,
        start: f64,
        span: f64,
    ) {
        let columns = rect.width().round().max(1.0) as usize;
        let sr = data.sample_rate();
        let want = SpecRequest {
            data_id: data.id,
            start: start * sr,
            step: span * sr / columns as f64,
            columns,
            rows: (rect.height().round() as usize).clamp(16, SPEC_ROWS),
        };
        let spec = &mut self.spectrogram;
        if let Some((req, rx)) = &spec.pending
            && let Ok(image) = rx.try_recv()
        {
            let req = *req;
            match &mut spec.texture {
                Some(t) => t.set(image, TextureOptions::LINEAR),
                None => {
                    spec.texture = Some(ui.ctx().load_texture(
                        "spectrogram",
                        image,
                        TextureOptions::LINEAR,
                    ));
                }
            }
            spec.shown = Some(req);
            spec.pending = None;
        }
        // One job at a time; the newest view is asked for when the last one is done.
        if spec.pending.is_none() && spec.shown != Some(want) {
            let (tx, rx) = crossbeam_channel::bounded(1);
            let audio = Arc::clone(&data.audio);
            std::thread::spawn(move || {
                let _ = tx.send(spectrogram::compute(&audio, &want));
            });
            spec.pending = Some((want, rx));
        }
        if spec.pending.is_some() {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(30));
        }
        match (&spec.texture, spec.shown) {
            (Some(texture), Some(shown)) if shown.data_id == data.id => {
                // A stale image is stretched to where its range lies until the new one comes.
                let x0 = rect.left() + ((shown.start - want.start) / want.step) as f32;
                let w = (shown.step * shown.columns as f64 / want.step) as f32;
                let r = Rect::from_min_size(Pos2::new(x0, rect.top()), Vec2::new(w, rect.height()));
                painter.image(
                    texture.id(),
                    r,
                    Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                    Color32::WHITE,
                );
            }
            _ => {
                painter.text(
                    rect.center(),
                    egui::Align2::CENTER_CENTER,
                    "computing spectrogram…",
                    FontId::proportional(12.0),
                    Color32::GRAY,
                );
            }
        }
    }
}

/// Draws `data`'s min/max envelope over `rect` in `color`, showing `start .. start + span`
/// seconds, channel `c` in lane `c` of `lanes` (as [`WaveView`] lays them out): a second
/// clip over the one a view shows, for before/after comparison.
pub fn paint_envelope(
    painter: &egui::Painter,
    data: &WaveData,
    rect: Rect,
    lanes: usize,
    (start, span): (f64, f64),
    color: Color32,
) {
    let lanes = lanes.max(1);
    let columns = rect.width().round().max(1.0) as usize;
    let sr = data.sample_rate();
    let per_column = span * sr / columns as f64;
    let first = start * sr;
    let lane_h = rect.height() / lanes as f32;
    let mut mesh = Mesh::default();
    for (c, samples) in data.audio.channels().iter().enumerate().take(lanes) {
        let mid = rect.top() + (c as f32 + 0.5) * lane_h;
        let half = lane_h * 0.45;
        for i in 0..columns {
            let a = (first + i as f64 * per_column).max(0.0) as usize;
            let b = ((first + (i + 1) as f64 * per_column).max(0.0) as usize).max(a + 1);
            let Some((lo, hi)) = data.levels[c].min_max(samples, a..b) else {
                continue;
            };
            let x = rect.left() + i as f32;
            let top = mid - hi.clamp(-1.0, 1.0) * half;
            let bottom = (mid - lo.clamp(-1.0, 1.0) * half).max(top + 1.0);
            mesh.add_colored_rect(
                Rect::from_min_max(Pos2::new(x, top), Pos2::new(x + 1.0, bottom)),
                color,
            );
        }
    }
    painter.add(Shape::mesh(mesh));
}

/// A round tick interval (1, 2 or 5 × a power of ten seconds, or minutes) near `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if raw >= 60.0 {
        for m in [1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0] {
            if raw <= m * 60.0 {
                return m * 60.0;
            }
        }
        return (raw / 3600.0).ceil() * 3600.0;
    }
    let p = 10f64.powf(raw.max(1e-6).log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if raw <= m * p {
            return m * p;
        }
    }
    10.0 * p
}

/// `m:ss` with as many decimals as the tick step needs.
pub fn format_time(t: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil() as usize
    };
    let m = (t / 60.0).floor();
    let s = t - m * 60.0;
    let width = if decimals == 0 { 2 } else { decimals + 3 };
    format!("{}:{s:0width$.decimals$}", m as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(0.013), 0.02);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(100.0), 120.0);
        assert_eq!(format_time(75.0, 1.0), "1:15");
        assert_eq!(format_time(1.25, 0.05), "0:01.25");
    }
}
