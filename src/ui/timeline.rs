//! The timeline (Gantt) of an execution: one row per step, a bar per step run from its start
//! to its finish coloured by status, loop iterations and retries as bars of their own, the
//! waits between runs as gaps, a time axis, tooltips, and a click that selects the step and
//! shows that run's result.
//!
//! Data and drawing are apart: [`TimelineLayout`] places the run panel's rows on the time
//! axis once per change, and each frame draws only the bars in the visible range (found by
//! binary search per row), merging bars that fall into the same pixel, so executions with
//! thousands of step runs cost about as much as short ones.

use std::collections::HashMap;
use std::time::SystemTime;

use egui::{Color32, FontId, Id, Pos2, Rect, RichText, Sense, Stroke, Ui, Vec2};

use super::run::{NodeStatus, Phase, RunState, StepRunRow};
use super::theme;

const AXIS_HEIGHT: f32 = 18.0;
const ROW_HEIGHT: f32 = 22.0;
const GUTTER_WIDTH: f32 = 150.0;
/// Narrower bars than this (in points) are drawn at this width, so instant runs (cached
/// results) stay visible.
const MIN_BAR_WIDTH: f32 = 2.0;
/// Bars narrower than this merge with neighbours that touch them.
const MERGE_WIDTH: f32 = 3.0;

/// What a bar's colour says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKind {
    Completed,
    Cached,
    Failed,
    Cancelled,
    Running,
}

impl BarKind {
    fn of(status: &NodeStatus) -> BarKind {
        match status {
            NodeStatus::Done => BarKind::Completed,
            NodeStatus::Cached => BarKind::Cached,
            NodeStatus::Failed(_) => BarKind::Failed,
            NodeStatus::Cancelled | NodeStatus::Skipped => BarKind::Cancelled,
            NodeStatus::Running { .. } | NodeStatus::Pending => BarKind::Running,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            BarKind::Completed => "completed",
            BarKind::Cached => "cached",
            BarKind::Failed => "failed",
            BarKind::Cancelled => "cancelled",
            BarKind::Running => "running",
        }
    }

    pub fn color(self) -> Color32 {
        theme::status_color(&match self {
            BarKind::Completed => NodeStatus::Done,
            BarKind::Cached => NodeStatus::Cached,
            BarKind::Failed => NodeStatus::Failed(String::new()),
            BarKind::Cancelled => NodeStatus::Cancelled,
            BarKind::Running => NodeStatus::Pending,
        })
        .gamma_multiply(if self == BarKind::Running { 1.0 } else { 0.9 })
    }

    /// Which colour wins when several runs share a pixel: problems first.
    fn rank(self) -> u8 {
        match self {
            BarKind::Failed => 4,
            BarKind::Cancelled => 3,
            BarKind::Running => 2,
            BarKind::Completed => 1,
            BarKind::Cached => 0,
        }
    }
}

const LEGEND: [BarKind; 5] = [
    BarKind::Completed,
    BarKind::Cached,
    BarKind::Failed,
    BarKind::Cancelled,
    BarKind::Running,
];

/// One step run placed on the time axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Index into the run panel's rows.
    pub run: usize,
    /// Which timeline row (step) it is on.
    pub row: usize,
    /// Seconds from the execution's start.
    pub start: f64,
    /// `None` while it runs.
    pub end: Option<f64>,
    pub kind: BarKind,
    pub iteration: u32,
    pub attempt: u32,
    pub branch: Option<bool>,
    /// How long it waited after the run before it ended (retry back-offs, scheduling);
    /// `None` for the first run and for runs that overlap the one before.
    pub wait: Option<f64>,
}

impl Bar {
    /// Its end, or `now` while it runs.
    pub fn end_or(&self, now: f64) -> f64 {
        self.end.unwrap_or(now).max(self.start)
    }
}

/// A row's bars in start order, with the running maximum of their ends: bars that end
/// before a time form a prefix, so the visible ones are found by binary search.
#[derive(Debug, Clone, Default, PartialEq)]
struct Lane {
    bars: Vec<usize>,
    reach: Vec<f64>,
}

/// The bars of an execution's step runs, by step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimelineLayout {
    /// The step of each row, in the order the steps first ran.
    pub steps: Vec<String>,
    pub bars: Vec<Bar>,
    /// Whether a row's step ran more than once (its bars are labelled with iterations).
    pub repeated: Vec<bool>,
    /// Seconds from the execution's start to the last known end.
    pub end: f64,
    lanes: Vec<Lane>,
}

/// Seconds from `origin` to `t` (negative when `t` is earlier).
fn offset(origin: SystemTime, t: SystemTime) -> f64 {
    match t.duration_since(origin) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

impl TimelineLayout {
    /// Places `rows` on the time axis, from `origin` (else the earliest start). Rows that
    /// never started are left out.
    pub fn build(rows: &[StepRunRow], origin: Option<SystemTime>) -> TimelineLayout {
        let Some(origin) = origin.or_else(|| rows.iter().filter_map(|r| r.started_at).min()) else {
            return TimelineLayout::default();
        };
        let mut layout = TimelineLayout::default();
        let mut row_of: HashMap<&str, usize> = HashMap::new();
        for (run, r) in rows.iter().enumerate() {
            let Some(started) = r.started_at else {
                continue;
            };
            let start = offset(origin, started);
            let kind = BarKind::of(&r.status);
            let end = match (r.finished_at, kind) {
                (Some(f), _) => Some(offset(origin, f).max(start)),
                (None, BarKind::Running) => None,
                (None, _) => Some(start + r.duration_ms.unwrap_or(0.0).max(0.0) / 1e3),
            };
            let row = *row_of.entry(r.step_id.as_str()).or_insert_with(|| {
                layout.steps.push(r.step_id.clone());
                layout.repeated.push(false);
                layout.lanes.push(Lane::default());
                layout.steps.len() - 1
            });
            if r.iteration > 1 {
                layout.repeated[row] = true;
            }
            layout.end = layout.end.max(end.unwrap_or(start));
            layout.bars.push(Bar {
                run,
                row,
                start,
                end,
                kind,
                iteration: r.iteration,
                attempt: r.attempt,
                branch: r.branch,
                wait: None,
            });
        }
        // Waits: the gap between the latest end so far and each start, in start order.
        let mut order: Vec<usize> = (0..layout.bars.len()).collect();
        order.sort_by(|&a, &b| layout.bars[a].start.total_cmp(&layout.bars[b].start));
        let mut latest_end: Option<f64> = None;
        let mut running_before = false;
        for &i in &order {
            let bar = &mut layout.bars[i];
            if let Some(e) = latest_end
                && !running_before
                && bar.start >= e
            {
                bar.wait = Some(bar.start - e);
            }
            match bar.end {
                Some(e) => latest_end = Some(latest_end.map_or(e, |l: f64| l.max(e))),
                None => running_before = true,
            }
        }
        for &i in &order {
            let bar = &layout.bars[i];
            let lane = &mut layout.lanes[bar.row];
            let reach = lane
                .reach
                .last()
                .copied()
                .unwrap_or(f64::NEG_INFINITY)
                .max(bar.end.unwrap_or(f64::INFINITY));
            lane.bars.push(i);
            lane.reach.push(reach);
        }
        layout
    }

    /// Indices into `bars` of row `row`'s bars that overlap `t0..=t1`, in start order.
    pub fn visible(&self, row: usize, t0: f64, t1: f64) -> impl Iterator<Item = usize> + '_ {
        let lane = self.lanes.get(row);
        let first = lane.map_or(0, |l| l.reach.partition_point(|&r| r < t0));
        lane.into_iter()
            .flat_map(move |l| l.bars[first.min(l.bars.len())..].iter().copied())
            .take_while(move |&i| self.bars[i].start <= t1)
    }

    /// Number of bars in row `row`.
    pub fn bars_in_row(&self, row: usize) -> usize {
        self.lanes.get(row).map_or(0, |l| l.bars.len())
    }

    /// Whether a bar has no end yet.
    pub fn is_running(&self) -> bool {
        self.bars.iter().any(|b| b.end.is_none())
    }
}

/// What the user asked for in the timeline.
#[derive(Debug, Clone, PartialEq)]
pub enum TimelineAction {
    /// A bar was clicked: select its step and show the result of that run (an index into
    /// the run panel's rows).
    Select { step: String, run: usize },
}

/// What a layout was built from: the execution, the rows' revision and their number.
type LayoutKey = (Option<String>, u64, usize);

/// The view's state: the visible time range, vertical scroll, the selected run and the
/// cached layout.
#[derive(Default)]
pub struct TimelineView {
    /// Seconds at the left edge.
    pub start: f64,
    /// Seconds across; `None` fits the whole execution (and follows a live one).
    pub span: Option<f64>,
    /// Points scrolled down when there are more rows than fit.
    pub scroll_y: f32,
    /// The run whose result is shown (an index into the run panel's rows).
    pub selected: Option<usize>,
    cache: Option<(LayoutKey, TimelineLayout)>,
}

impl TimelineView {
    /// The layout of `run`'s rows, rebuilt only when they changed.
    pub fn layout(&mut self, run: &RunState) -> &TimelineLayout {
        let key = (run.execution_id.clone(), run.revision, run.rows.len());
        let cache = match self.cache.take() {
            Some((k, layout)) if k == key => (k, layout),
            _ => (
                key,
                TimelineLayout::build(&run.rows, run.execution_started_at),
            ),
        };
        &self.cache.insert(cache).1
    }

    pub fn zoom_all(&mut self) {
        self.start = 0.0;
        self.span = None;
    }
}

/// Seconds as people read them: `850 ms`, `2.40 s`, `3 min 05 s`.
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 0.01 {
        format!("{:.2} ms", s * 1e3)
    } else if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else if s < 60.0 {
        format!("{s:.2} s")
    } else {
        format!("{} min {:02.0} s", (s / 60.0).floor(), s % 60.0)
    }
}

/// A tick label at `t` seconds for ticks `step` apart.
fn tick_label(t: f64, step: f64) -> String {
    if step < 1e-3 {
        format!("{:.1} ms", t * 1e3)
    } else if step < 1.0 && t < 1.0 {
        format!("{:.0} ms", t * 1e3)
    } else if step < 60.0 {
        let decimals = if step >= 1.0 {
            0
        } else {
            (-step.log10()).ceil() as usize
        };
        format!("{t:.decimals$} s")
    } else {
        super::waveform::format_time(t, step)
    }
}

/// The accessible name of a bar: what a screen reader says and what tests look for.
pub fn bar_label(step: &str, bar: &Bar) -> String {
    format!(
        "{step}, iteration {}, attempt {}: {}",
        bar.iteration,
        bar.attempt,
        bar.kind.label()
    )
}

fn phase_summary(run: &RunState) -> (String, Color32) {
    match &run.phase {
        Phase::Idle => ("not run yet".into(), Color32::GRAY),
        Phase::Starting => ("starting…".into(), theme::DATA),
        Phase::Running => ("running".into(), theme::DATA),
        Phase::Finished(s) | Phase::Past(s) => (
            s.as_str().to_string(),
            if *s == crate::engine::ExecutionStatus::Completed {
                theme::TRUE
            } else {
                theme::ERROR
            },
        ),
    }
}

/// A group of bars drawn as one rectangle (one bar, or several within a pixel or two).
struct Drawn {
    x0: f32,
    x1: f32,
    kind: BarKind,
    first: usize,
    last: usize,
    count: usize,
}

/// Draws the header (status, counts, zoom, legend) and the timeline of `run`.
pub fn show(ui: &mut Ui, view: &mut TimelineView, run: &RunState) -> Option<TimelineAction> {
    let running = run.is_active();
    view.layout(run);
    // Out of the view while it draws (the view is changed as it draws), then back.
    let (key, layout) = view.cache.take()?;
    let action = show_layout(ui, view, run, &layout, running);
    view.cache = Some((key, layout));
    action
}

fn show_layout(
    ui: &mut Ui,
    view: &mut TimelineView,
    run: &RunState,
    layout: &TimelineLayout,
    running: bool,
) -> Option<TimelineAction> {
    let now = if running {
        run.execution_started_at
            .or_else(|| run.rows.iter().filter_map(|r| r.started_at).min())
            .map_or(layout.end, |o| offset(o, SystemTime::now()))
            .max(layout.end)
    } else {
        layout.end
    };
    ui.horizontal(|ui| {
        ui.strong("Timeline");
        let (text, color) = phase_summary(run);
        ui.label(RichText::new(text).color(color));
        if let Some(id) = &run.execution_id {
            ui.weak(id.chars().take(8).collect::<String>());
        }
        ui.weak(format!(
            "{} step runs over {} in {}",
            layout.bars.len(),
            format_duration(now),
            match layout.steps.len() {
                1 => "1 step".to_string(),
                n => format!("{n} steps"),
            }
        ));
        if ui
            .button("Zoom all")
            .on_hover_text("Show the whole execution (Ctrl+wheel zooms, drag pans)")
            .clicked()
        {
            view.zoom_all();
        }
    });
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 4.0;
        for kind in LEGEND {
            ui.label(RichText::new("■").color(kind.color()));
            ui.label(RichText::new(kind.label()).small().weak());
            ui.add_space(6.0);
        }
        ui.label(RichText::new("··· wait").small().weak());
    });
    if layout.bars.is_empty() {
        ui.weak(
            "No step runs to show: run the workflow, or open a past execution \
             (Run tab → Past executions).",
        );
        return None;
    }
    draw(ui, view, run, layout, now)
}

fn draw(
    ui: &mut Ui,
    view: &mut TimelineView,
    run: &RunState,
    layout: &TimelineLayout,
    now: f64,
) -> Option<TimelineAction> {
    let mut action = None;
    let size = Vec2::new(
        ui.available_width().max(GUTTER_WIDTH + 100.0),
        ui.available_height().max(AXIS_HEIGHT + ROW_HEIGHT),
    );
    let (rect, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
    let plot = Rect::from_min_max(
        Pos2::new(rect.left() + GUTTER_WIDTH, rect.top() + AXIS_HEIGHT),
        rect.max,
    );
    let gutter = Rect::from_min_max(
        Pos2::new(rect.left(), plot.top()),
        Pos2::new(plot.left(), rect.bottom()),
    );
    let extent = (now * 1.02).max(1e-3);
    let content_height = layout.steps.len() as f32 * ROW_HEIGHT;
    let max_scroll = (content_height - plot.height()).max(0.0);

    // Visible range: fit, or the user's zoom.
    let clamp = |start: f64, span: f64| {
        let span = span.clamp(1e-4, extent.max(1e-4) * 4.0);
        (
            start.clamp(-span * 0.5, (extent - span * 0.5).max(0.0)),
            span,
        )
    };
    let (mut start, mut span) = match view.span {
        None => (0.0, extent),
        Some(s) => clamp(view.start, s),
    };
    if response.hovered() {
        let (zoom, scroll) = ui.input(|i| (i.zoom_delta(), i.smooth_scroll_delta()));
        let pointer_t = response.hover_pos().map_or(start + span / 2.0, |p| {
            start + f64::from((p.x - plot.left()) / plot.width()) * span
        });
        if zoom != 1.0 {
            let new_span = span / f64::from(zoom);
            start = pointer_t - (pointer_t - start) * new_span / span;
            (start, span) = clamp(start, new_span);
            view.span = Some(span);
        } else if scroll.x != 0.0 {
            start -= f64::from(scroll.x / plot.width()) * span;
            view.span = Some(span);
        } else if scroll.y != 0.0 {
            if max_scroll > 0.0 {
                view.scroll_y = (view.scroll_y - scroll.y).clamp(0.0, max_scroll);
            } else {
                start -= f64::from(scroll.y / plot.width()) * span;
                view.span = Some(span);
            }
        }
    }
    if response.dragged() {
        let d = response.drag_delta();
        start -= f64::from(d.x / plot.width()) * span;
        view.span = Some(span);
        view.scroll_y = (view.scroll_y - d.y).clamp(0.0, max_scroll);
    }
    if response.double_clicked() {
        view.zoom_all();
        (start, span) = (0.0, extent);
    }
    if view.span.is_some() {
        (start, span) = clamp(start, span);
        view.start = start;
    }
    view.scroll_y = view.scroll_y.clamp(0.0, max_scroll);

    let x_of = |t: f64| plot.left() + ((t - start) / span) as f32 * plot.width();
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, Color32::from_gray(20));

    // Time axis with grid lines.
    let step = super::waveform::nice_step(span * 110.0 / f64::from(plot.width().max(1.0)));
    let font = FontId::proportional(10.0);
    let mut t = (start / step).ceil() * step;
    while t <= start + span {
        let x = x_of(t);
        painter.line_segment(
            [Pos2::new(x, plot.top()), Pos2::new(x, plot.bottom())],
            Stroke::new(1.0, Color32::from_gray(40)),
        );
        painter.text(
            Pos2::new(x + 2.0, rect.top() + 2.0),
            egui::Align2::LEFT_TOP,
            tick_label(t.max(0.0), step),
            font.clone(),
            Color32::GRAY,
        );
        t += step;
    }

    let first_row = (view.scroll_y / ROW_HEIGHT).floor() as usize;
    let rows_in_view = (plot.height() / ROW_HEIGHT).ceil() as usize + 1;
    let plot_painter = painter.with_clip_rect(plot);
    let gutter_painter = painter.with_clip_rect(gutter);
    let (t0, t1) = (start, start + span);
    for row in first_row..(first_row + rows_in_view).min(layout.steps.len()) {
        let step_id = &layout.steps[row];
        let top = plot.top() + row as f32 * ROW_HEIGHT - view.scroll_y;
        let lane = Rect::from_min_max(
            Pos2::new(plot.left(), top),
            Pos2::new(plot.right(), top + ROW_HEIGHT),
        );
        if row % 2 == 1 {
            plot_painter.rect_filled(lane, 0.0, Color32::from_gray(26));
        }
        // The step's name, which selects the step too.
        let label_rect = Rect::from_min_max(
            Pos2::new(gutter.left(), top),
            Pos2::new(gutter.right(), top + ROW_HEIGHT),
        );
        gutter_painter.text(
            Pos2::new(label_rect.left() + 6.0, label_rect.center().y),
            egui::Align2::LEFT_CENTER,
            step_id,
            FontId::monospace(12.0),
            Color32::LIGHT_GRAY,
        );
        let label_response = ui
            .interact(
                label_rect.intersect(gutter),
                Id::new(("timeline-row", step_id)),
                Sense::click(),
            )
            .on_hover_text(format!("{step_id}: {} run(s)", layout.bars_in_row(row)));
        label_response.widget_info(|| {
            egui::WidgetInfo::labeled(
                egui::WidgetType::Label,
                true,
                format!("timeline row {step_id}"),
            )
        });
        if label_response.clicked()
            && let Some(&last) = layout.lanes.get(row).and_then(|l| l.bars.last())
        {
            action = Some(TimelineAction::Select {
                step: step_id.clone(),
                run: layout.bars[last].run,
            });
        }

        // Bars in view, neighbours within a pixel merged.
        let mut groups: Vec<Drawn> = Vec::new();
        for i in layout.visible(row, t0, t1) {
            let bar = &layout.bars[i];
            let x0 = x_of(bar.start);
            let x1 = x_of(bar.end_or(now)).max(x0 + MIN_BAR_WIDTH);
            match groups.last_mut() {
                Some(g)
                    if x1 - x0 < MERGE_WIDTH
                        && g.x1 - g.x0 < MERGE_WIDTH * 2.0
                        && x0 <= g.x1 + 1.0 =>
                {
                    g.x1 = g.x1.max(x1);
                    g.last = i;
                    g.count += 1;
                    if bar.kind.rank() > g.kind.rank() {
                        g.kind = bar.kind;
                    }
                }
                _ => groups.push(Drawn {
                    x0,
                    x1,
                    kind: bar.kind,
                    first: i,
                    last: i,
                    count: 1,
                }),
            }
        }
        for g in &groups {
            let bar = &layout.bars[g.first];
            let r = Rect::from_min_max(
                Pos2::new(g.x0.max(plot.left() - 2.0), lane.top() + 3.0),
                Pos2::new(g.x1.min(plot.right() + 2.0), lane.bottom() - 3.0),
            );
            // The wait before a run, as a dotted line through the gap.
            if g.count == 1
                && let Some(w) = bar.wait
            {
                let from = x_of(bar.start - w);
                if g.x0 - from >= 4.0 {
                    let y = lane.center().y;
                    plot_painter.extend(egui::Shape::dashed_line(
                        &[Pos2::new(from, y), Pos2::new(g.x0, y)],
                        Stroke::new(1.0, Color32::from_gray(110)),
                        3.0,
                        3.0,
                    ));
                }
            }
            plot_painter.rect_filled(r, 2.0, g.kind.color());
            let selected = view
                .selected
                .is_some_and(|s| (g.first..=g.last).any(|i| layout.bars[i].run == s));
            if selected {
                plot_painter.rect_stroke(
                    r,
                    2.0,
                    Stroke::new(2.0, theme::SELECTED),
                    egui::StrokeKind::Outside,
                );
            }
            if g.count == 1 && r.width() > 24.0 {
                let mut text = String::new();
                if layout.repeated[row] {
                    text.push_str(&format!("#{}", bar.iteration));
                }
                if bar.attempt > 1 {
                    text.push_str(&format!(" try {}", bar.attempt));
                }
                let d = format_duration(bar.end_or(now) - bar.start);
                let full = if text.is_empty() {
                    d.clone()
                } else {
                    format!("{} · {d}", text.trim())
                };
                // The duration too where it fits, else the iteration alone (clipped).
                let font = FontId::proportional(11.0);
                let mut galley = plot_painter.layout_no_wrap(full, font.clone(), Color32::BLACK);
                if galley.size().x + 8.0 > r.width() {
                    galley =
                        plot_painter.layout_no_wrap(text.trim().to_string(), font, Color32::BLACK);
                }
                let at = Pos2::new(r.left() + 4.0, r.center().y - galley.size().y / 2.0);
                plot_painter
                    .with_clip_rect(r.intersect(plot))
                    .galley(at, galley, Color32::BLACK);
            }

            let id = Id::new(("timeline-bar", bar.run));
            let hit = r.intersect(plot);
            if !hit.is_positive() {
                continue;
            }
            let response = ui.interact(hit, id, Sense::click());
            let label = if g.count == 1 {
                bar_label(step_id, bar)
            } else {
                format!("{} runs of {step_id}", g.count)
            };
            response.widget_info(|| {
                egui::WidgetInfo::selected(egui::WidgetType::Button, true, selected, &label)
            });
            let clicked = response.clicked();
            response.on_hover_ui(|ui| {
                if g.count == 1 {
                    bar_tooltip(ui, step_id, bar, run.rows.get(bar.run), now);
                } else {
                    let last = &layout.bars[g.last];
                    ui.strong(format!("{} runs of {step_id}", g.count));
                    ui.label(format!(
                        "iterations {}–{}, from {} to {}",
                        bar.iteration,
                        last.iteration,
                        format_duration(bar.start),
                        format_duration(last.end_or(now))
                    ));
                    ui.weak("Zoom in (Ctrl+wheel) to tell them apart.");
                }
            });
            if clicked {
                action = Some(TimelineAction::Select {
                    step: step_id.clone(),
                    run: layout.bars[g.last].run,
                });
            }
        }
    }
    if let Some(TimelineAction::Select { run, .. }) = &action {
        view.selected = Some(*run);
    }
    action
}

fn bar_tooltip(ui: &mut Ui, step: &str, bar: &Bar, row: Option<&StepRunRow>, now: f64) {
    ui.strong(step);
    egui::Grid::new("timeline-tip")
        .num_columns(2)
        .show(ui, |ui| {
            let mut line = |k: &str, v: String| {
                ui.weak(k);
                ui.label(v);
                ui.end_row();
            };
            line("status", bar.kind.label().to_string());
            line("iteration", bar.iteration.to_string());
            line("attempt", bar.attempt.to_string());
            line("started", format!("+{}", format_duration(bar.start)));
            let took = bar.end_or(now) - bar.start;
            line(
                "duration",
                if bar.end.is_none() {
                    format!("{} so far", format_duration(took))
                } else {
                    format_duration(took)
                },
            );
            if let Some(w) = bar.wait.filter(|&w| w > 0.0) {
                line("waited before", format_duration(w));
            }
            line(
                "cached",
                if bar.kind == BarKind::Cached {
                    "yes"
                } else {
                    "no"
                }
                .into(),
            );
            if let Some(b) = bar.branch {
                line("branch", b.to_string());
            }
        });
    if let Some(e) = row.and_then(|r| r.error.as_ref()) {
        let short: String = e.chars().take(200).collect();
        ui.label(RichText::new(short).color(theme::ERROR));
    }
    ui.weak("Click to select the step and show this run's result.");
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn row(
        step: &str,
        iteration: u32,
        attempt: u32,
        status: NodeStatus,
        from_ms: u64,
        to_ms: Option<u64>,
    ) -> StepRunRow {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        StepRunRow {
            step_id: step.into(),
            iteration,
            attempt,
            status,
            started: None,
            started_at: Some(t0 + Duration::from_millis(from_ms)),
            finished_at: to_ms.map(|t| t0 + Duration::from_millis(t)),
            duration_ms: to_ms.map(|t| (t - from_ms) as f64),
            error: None,
            summary: None,
            result: None,
            branch: None,
        }
    }

    fn origin() -> Option<SystemTime> {
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000))
    }

    fn running() -> NodeStatus {
        NodeStatus::Running {
            fraction: None,
            message: String::new(),
            iteration: 1,
        }
    }

    #[test]
    fn one_row_per_step_and_a_bar_per_run() {
        let rows = vec![
            row("load", 1, 1, NodeStatus::Done, 0, Some(100)),
            row("loop", 1, 1, NodeStatus::Done, 150, Some(250)),
            row("check", 1, 1, NodeStatus::Done, 250, Some(260)),
            row("loop", 2, 1, NodeStatus::Failed("x".into()), 300, Some(320)),
            row("loop", 2, 2, NodeStatus::Done, 420, Some(500)),
            row("check", 2, 1, NodeStatus::Cached, 500, Some(500)),
        ];
        let l = TimelineLayout::build(&rows, origin());
        assert_eq!(l.steps, ["load", "loop", "check"]);
        assert_eq!(l.repeated, [false, true, true]);
        assert_eq!(l.bars.len(), 6);
        let rows_of: Vec<usize> = l.bars.iter().map(|b| b.row).collect();
        assert_eq!(rows_of, [0, 1, 2, 1, 1, 2]);
        let b = &l.bars[4];
        assert_eq!((b.iteration, b.attempt, b.kind), (2, 2, BarKind::Completed));
        assert!((b.start - 0.42).abs() < 1e-9 && (b.end.unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(l.bars[3].kind, BarKind::Failed);
        assert_eq!(l.bars[5].kind, BarKind::Cached);
        // Waits are the gaps since the last end: 50 ms before the loop, 100 ms of back-off
        // before the retry, none between back-to-back runs.
        let waits: Vec<Option<f64>> = l
            .bars
            .iter()
            .map(|b| b.wait.map(|w| (w * 1e3).round()))
            .collect();
        assert_eq!(
            waits,
            [
                None,
                Some(50.0),
                Some(0.0),
                Some(40.0),
                Some(100.0),
                Some(0.0)
            ]
        );
        assert!((l.end - 0.5).abs() < 1e-9);
    }

    #[test]
    fn visible_bars_are_found_by_time() {
        // A loop of 10 000 runs, 1 ms each with 1 ms between.
        let rows: Vec<StepRunRow> = (0..10_000u64)
            .map(|i| {
                row(
                    "tick",
                    i as u32 + 1,
                    1,
                    NodeStatus::Done,
                    2 * i,
                    Some(2 * i + 1),
                )
            })
            .collect();
        let l = TimelineLayout::build(&rows, origin());
        assert_eq!(l.bars_in_row(0), 10_000);
        let shown: Vec<usize> = l.visible(0, 1.0, 1.01).collect();
        // Runs 501..=506 overlap 1.000 s – 1.010 s (run 501 starts at 1.000 s).
        assert_eq!(shown.first().map(|&i| l.bars[i].iteration), Some(501));
        assert_eq!(shown.len(), 6);
        assert_eq!(l.visible(0, 100.0, 200.0).count(), 0);
        assert_eq!(l.visible(0, -1.0, 0.0).count(), 1);
        assert_eq!(l.visible(5, 0.0, 1.0).count(), 0, "no such row");
    }

    #[test]
    fn a_running_bar_reaches_now_and_stays_visible() {
        let rows = vec![
            row("a", 1, 1, NodeStatus::Done, 0, Some(10)),
            row("b", 1, 1, running(), 20, None),
        ];
        let l = TimelineLayout::build(&rows, origin());
        assert!(l.is_running());
        assert_eq!(l.bars[1].end, None);
        assert!((l.bars[1].end_or(5.0) - 5.0).abs() < 1e-9);
        assert_eq!(l.visible(1, 3.0, 4.0).count(), 1, "still running at 3 s");
        assert_eq!(l.visible(0, 3.0, 4.0).count(), 0);
    }

    #[test]
    fn origin_defaults_to_the_first_start_and_unstarted_rows_are_left_out() {
        let mut rows = vec![row("a", 1, 1, NodeStatus::Done, 500, Some(700))];
        let mut never = row("b", 1, 1, NodeStatus::Pending, 0, None);
        never.started_at = None;
        rows.push(never);
        let l = TimelineLayout::build(&rows, None);
        assert_eq!(l.steps, ["a"]);
        assert!(l.bars[0].start.abs() < 1e-9);
        assert!(TimelineLayout::build(&[], None).bars.is_empty());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(0.0042), "4.20 ms");
        assert_eq!(format_duration(0.25), "250 ms");
        assert_eq!(format_duration(2.4), "2.40 s");
        assert_eq!(format_duration(185.0), "3 min 05 s");
        assert_eq!(tick_label(0.05, 0.05), "50 ms");
        assert_eq!(tick_label(1.5, 0.5), "1.5 s");
        assert_eq!(tick_label(0.0002, 0.0001), "0.2 ms");
    }
}
