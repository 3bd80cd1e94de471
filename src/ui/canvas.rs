//! The node-graph canvas: an egui-snarl view of the workflow. The snarl graph is rebuilt
//! from the model whenever the model changes; what the user does on it (wiring, deleting,
//! moving, adding) comes back as [`CanvasAction`]s that the app applies to the model.

use std::collections::HashMap;

use egui::emath::TSTransform;
use egui::{Color32, Id, Pos2, Rect, RichText, Stroke, Ui, Vec2};
use egui_snarl::ui::{PinInfo, PinPlacement, SnarlPin, SnarlStyle, SnarlViewer, SnarlWidget};
use egui_snarl::{InPin, InPinId, NodeId, OutPin, OutPinId, Snarl};

use super::edits::{FlowPort, flow_target};
use super::palette::{self, PaletteItem};
use super::run::NodeStatus;
use super::theme;
use crate::workflow::{InputSource, NodePosition, StepType, Workflow};

/// The id of the canvas widget (selection state lives under it).
pub const CANVAS_ID: &str = "grym-canvas";

/// What a node stands for: a step, by id.
#[derive(Debug, Clone, PartialEq)]
pub struct StepNode {
    pub step_id: String,
}

/// A change the user asked for on the canvas.
#[derive(Debug, Clone, PartialEq)]
pub enum CanvasAction {
    /// Point a flow output at a step (`None`: remove the edge).
    SetFlow {
        from: String,
        port: FlowPort,
        to: Option<String>,
    },
    /// Make input `index` of `to` read `source`'s result (`index == len` adds an input).
    ConnectData {
        source: String,
        to: String,
        index: usize,
    },
    RemoveInput {
        step: String,
        index: usize,
    },
    DisconnectReaders(String),
    DisconnectFlowInto(String),
    Add {
        item: PaletteItem,
        pos: NodePosition,
    },
    Delete(Vec<String>),
    Duplicate(Vec<String>),
    SetInitial(String),
    Move(Vec<(String, NodePosition)>),
    Select(Option<String>),
}

/// Per-step information the nodes show.
#[derive(Default)]
pub struct NodeDecorations {
    pub status: HashMap<String, NodeStatus>,
    /// (errors, warnings) per step.
    pub problems: HashMap<String, (usize, usize)>,
    pub selected: Option<String>,
}

/// The canvas state kept between frames.
pub struct Canvas {
    snarl: Snarl<StepNode>,
    by_step: HashMap<String, NodeId>,
    synced_revision: Option<u64>,
    /// Node rectangles on screen from the last frame, by step id.
    pub node_rects: HashMap<String, Rect>,
    /// Screen positions of pins from the last frame, by (step id, pin label).
    pub pin_rows: HashMap<(String, String), Rect>,
    last_selection: Vec<NodeId>,
    to_global: TSTransform,
    frame_all: bool,
    /// The canvas area on screen in the last frame.
    screen_rect: Rect,
    search: Option<CanvasSearch>,
}

/// The search box that a double-click on the canvas opens.
struct CanvasSearch {
    screen: Pos2,
    graph: Pos2,
    query: String,
}

impl Default for Canvas {
    fn default() -> Self {
        Canvas {
            snarl: Snarl::new(),
            by_step: HashMap::new(),
            synced_revision: None,
            node_rects: HashMap::new(),
            pin_rows: HashMap::new(),
            last_selection: Vec::new(),
            to_global: TSTransform::IDENTITY,
            frame_all: true,
            screen_rect: Rect::NOTHING,
            search: None,
        }
    }
}

fn style() -> SnarlStyle {
    let mut style = SnarlStyle::new();
    style.pin_placement = Some(PinPlacement::Edge);
    style.collapsible = Some(false);
    style.bg_pattern = Some(egui_snarl::ui::BackgroundPattern::grid(
        Vec2::new(40.0, 40.0),
        0.0,
    ));
    style.node_frame = Some(egui::Frame {
        inner_margin: egui::Margin::same(6),
        corner_radius: egui::CornerRadius::same(6),
        fill: Color32::from_gray(38),
        stroke: Stroke::new(1.0, Color32::from_gray(70)),
        ..Default::default()
    });
    style
}

impl Canvas {
    /// Asks the next frame to fit every node into view.
    /// Step ids of the nodes selected on the canvas (as of the last frame).
    pub fn selected_ids(&self) -> Vec<String> {
        self.last_selection
            .iter()
            .filter_map(|n| self.snarl.get_node(*n).map(|s| s.step_id.clone()))
            .collect()
    }

    pub fn frame_all(&mut self) {
        self.frame_all = true;
    }

    /// Makes the snarl graph match the model (when the model changed since the last sync).
    pub fn sync(&mut self, workflow: &Workflow, revision: u64) {
        if self.synced_revision == Some(revision) {
            return;
        }
        self.synced_revision = Some(revision);
        // Nodes.
        let stale: Vec<String> = self
            .by_step
            .keys()
            .filter(|id| !workflow.steps.contains_key(*id))
            .cloned()
            .collect();
        for id in stale {
            if let Some(node) = self.by_step.remove(&id) {
                self.snarl.remove_node(node);
            }
        }
        for (i, id) in workflow.steps.keys().enumerate() {
            let pos = super::edits::position(workflow, id)
                .map(|p| Pos2::new(p.x, p.y))
                .unwrap_or_else(|| Pos2::new(40.0 + 260.0 * i as f32, 40.0));
            match self.by_step.get(id) {
                Some(&node) => {
                    if let Some(info) = self.snarl.get_node_info_mut(node) {
                        info.pos = pos;
                    }
                }
                None => {
                    let node = self.snarl.insert_node(
                        pos,
                        StepNode {
                            step_id: id.clone(),
                        },
                    );
                    self.by_step.insert(id.clone(), node);
                }
            }
        }
        // Wires: drop them all and draw the model's.
        let wires: Vec<(OutPinId, InPinId)> = self.snarl.wires().collect();
        for (from, to) in wires {
            self.snarl.disconnect(from, to);
        }
        for (id, step) in &workflow.steps {
            let Some(&from) = self.by_step.get(id) else {
                continue;
            };
            for (k, port) in FlowPort::for_type(step.step_type).iter().enumerate() {
                if let Some(target) = flow_target(step, *port)
                    && let Some(&to) = self.by_step.get(target)
                {
                    self.snarl.connect(
                        OutPinId {
                            node: from,
                            output: 1 + k,
                        },
                        InPinId { node: to, input: 0 },
                    );
                }
            }
            for (j, input) in step.inputs.iter().enumerate() {
                if let Some(source) = input.referenced_step()
                    && let Some(&src) = self.by_step.get(source)
                {
                    self.snarl.connect(
                        OutPinId {
                            node: src,
                            output: 0,
                        },
                        InPinId {
                            node: from,
                            input: 1 + j,
                        },
                    );
                }
            }
        }
    }

    /// The graph-to-screen transform of the last frame.
    pub fn transform(&self) -> TSTransform {
        self.to_global
    }

    /// A free place for a new node in the visible part of the canvas (graph coordinates):
    /// near the top left of the view, moved down and right past nodes already there.
    pub fn free_spot(&self, workflow: &Workflow) -> NodePosition {
        let view = if self.screen_rect.is_finite() && self.screen_rect.area() > 0.0 {
            self.to_global.inverse() * self.screen_rect
        } else {
            Rect::from_min_size(Pos2::ZERO, Vec2::new(800.0, 600.0))
        };
        let taken = |p: Pos2| {
            workflow.steps.keys().any(|id| {
                super::edits::position(workflow, id)
                    .is_some_and(|q| (q.x - p.x).abs() < 220.0 && (q.y - p.y).abs() < 140.0)
            })
        };
        let start = view.min + Vec2::new(40.0, 40.0);
        for col in 0..6 {
            for row in 0..6 {
                let p = start + Vec2::new(col as f32 * 260.0, row as f32 * 160.0);
                if !taken(p) {
                    return NodePosition { x: p.x, y: p.y };
                }
            }
        }
        NodePosition {
            x: start.x,
            y: start.y,
        }
    }

    /// The node of a step, for tests and selection.
    pub fn node_of(&self, step: &str) -> Option<NodeId> {
        self.by_step.get(step).copied()
    }

    /// Draws the canvas and returns what the user did.
    pub fn show(
        &mut self,
        ui: &mut Ui,
        workflow: &Workflow,
        specs: &[palette::PaletteItem],
        deco: &NodeDecorations,
    ) -> Vec<CanvasAction> {
        // Labels on nodes must not take clicks and drags from the nodes.
        ui.style_mut().interaction.selectable_labels = false;
        let mut viewer = Viewer {
            workflow,
            deco,
            items: specs,
            actions: Vec::new(),
            node_rects: HashMap::new(),
            pin_rows: HashMap::new(),
            to_global: self.to_global,
            frame_all: std::mem::take(&mut self.frame_all),
            framed: false,
            canvas_rect: ui.available_rect_before_wrap(),
            menu_query: ui
                .ctx()
                .data(|d| d.get_temp::<String>(Id::new("grym-graph-menu-query")))
                .unwrap_or_default(),
        };
        let response = SnarlWidget::new()
            .id(Id::new(CANVAS_ID))
            .style(style())
            .show(&mut self.snarl, &mut viewer, ui);
        let Viewer {
            mut actions,
            node_rects,
            pin_rows,
            to_global,
            menu_query,
            frame_all,
            framed,
            ..
        } = viewer;
        // Framing waits until there are nodes and a real canvas size.
        self.frame_all = frame_all && !framed;
        self.screen_rect = response.rect;
        ui.ctx().data_mut(|d| {
            d.insert_temp(Id::new("grym-graph-menu-query"), menu_query);
        });
        // The viewer saw graph coordinates; keep screen coordinates.
        self.node_rects = node_rects
            .into_iter()
            .map(|(k, r)| (k, to_global * r))
            .collect();
        self.pin_rows = pin_rows
            .into_iter()
            .map(|(k, r)| (k, to_global * r))
            .collect();
        self.to_global = to_global;

        if workflow.steps.is_empty() && response.rect.is_finite() {
            ui.painter().text(
                response.rect.center(),
                egui::Align2::CENTER_CENTER,
                "Empty workflow. Add a step from the palette, or double-click here to search.",
                egui::FontId::proportional(15.0),
                Color32::GRAY,
            );
        }

        // Drop from the palette.
        if let Some(item) = response.dnd_release_payload::<PaletteItem>()
            && let Some(p) = ui.ctx().pointer_interact_pos()
        {
            let g = self.to_global.inverse() * p;
            actions.push(CanvasAction::Add {
                item: (*item).clone(),
                pos: NodePosition { x: g.x, y: g.y },
            });
        }

        // Double-click on empty canvas opens the search box.
        let double = ui.input(|i| {
            i.pointer
                .button_double_clicked(egui::PointerButton::Primary)
        });
        if double
            && let Some(p) = ui.ctx().pointer_interact_pos()
            && response.rect.contains(p)
            && !self.node_rects.values().any(|r| r.contains(p))
        {
            self.search = Some(CanvasSearch {
                screen: p,
                graph: self.to_global.inverse() * p,
                query: String::new(),
            });
        }
        self.show_search(ui, specs, &mut actions);

        // A click on a node selects it; a click on empty canvas shows the workflow.
        let clicked = ui.input(|i| i.pointer.primary_clicked());
        let mut click_selected = false;
        if clicked
            && let Some(p) = ui.ctx().pointer_interact_pos()
            && response.rect.contains(p)
            && ui
                .ctx()
                .layer_id_at(p)
                .is_none_or(|l| l.order == ui.layer_id().order)
            && self.search.is_none()
        {
            let hit = self
                .node_rects
                .iter()
                .find(|(_, r)| r.contains(p))
                .map(|(id, _)| id.clone());
            actions.push(CanvasAction::Select(hit));
            click_selected = true;
        }

        // Selection made on the canvas (shift-click, rectangle).
        let selected = egui_snarl::ui::get_selected_nodes(Id::new(CANVAS_ID), ui.ctx());
        if selected != self.last_selection {
            if !click_selected
                && let Some(node) = selected.last()
                && let Some(n) = self.snarl.get_node(*node)
            {
                actions.push(CanvasAction::Select(Some(n.step_id.clone())));
            }
            self.last_selection = selected.clone();
        }

        // Keyboard: Delete / Ctrl+D on the selected nodes, when no text field has focus.
        let typing = ui.ctx().egui_wants_keyboard_input();
        let hovering = ui
            .ctx()
            .pointer_hover_pos()
            .is_some_and(|p| response.rect.contains(p));
        if !typing && (hovering || !selected.is_empty()) {
            let ids: Vec<String> = selected
                .iter()
                .filter_map(|n| self.snarl.get_node(*n).map(|s| s.step_id.clone()))
                .collect();
            let ids = if ids.is_empty() {
                deco.selected.iter().cloned().collect()
            } else {
                ids
            };
            if !ids.is_empty() {
                let (delete, duplicate) = ui.input_mut(|i| {
                    (
                        i.consume_key(egui::Modifiers::NONE, egui::Key::Delete)
                            || i.consume_key(egui::Modifiers::NONE, egui::Key::Backspace),
                        i.consume_key(egui::Modifiers::COMMAND, egui::Key::D),
                    )
                });
                if delete {
                    actions.push(CanvasAction::Delete(ids));
                } else if duplicate {
                    actions.push(CanvasAction::Duplicate(ids));
                }
            }
        }

        // Moves: written to the model when the drag ends.
        let dragging = ui.input(|i| i.pointer.any_down());
        if !dragging {
            let mut moved = Vec::new();
            for (_, pos, node) in self.snarl.nodes_pos_ids() {
                let model = super::edits::position(workflow, &node.step_id);
                let changed =
                    model.is_none_or(|m| (m.x - pos.x).abs() > 0.5 || (m.y - pos.y).abs() > 0.5);
                if changed && workflow.steps.contains_key(&node.step_id) {
                    moved.push((node.step_id.clone(), NodePosition { x: pos.x, y: pos.y }));
                }
            }
            if !moved.is_empty() {
                actions.push(CanvasAction::Move(moved));
            }
        }
        actions
    }

    fn show_search(&mut self, ui: &mut Ui, items: &[PaletteItem], actions: &mut Vec<CanvasAction>) {
        let Some(search) = &mut self.search else {
            return;
        };
        let mut close = false;
        egui::Area::new(Id::new("grym-canvas-search"))
            .order(egui::Order::Foreground)
            .fixed_pos(search.screen)
            .show(ui.ctx(), |ui| {
                egui::Frame::popup(ui.style()).show(ui, |ui| {
                    ui.set_width(260.0);
                    let edit = ui.add(
                        egui::TextEdit::singleline(&mut search.query)
                            .hint_text("Search operations…")
                            .id(Id::new("grym-canvas-search-text")),
                    );
                    edit.request_focus();
                    let matches = palette::filter(items, &search.query);
                    let mut chosen = None;
                    egui::ScrollArea::vertical()
                        .max_height(240.0)
                        .show(ui, |ui| {
                            for item in &matches {
                                if ui
                                    .button(item.label())
                                    .on_hover_text(&item.description)
                                    .clicked()
                                {
                                    chosen = Some((*item).clone());
                                }
                            }
                            if matches.is_empty() {
                                ui.weak("No operation matches.");
                            }
                        });
                    if ui.input(|i| i.key_pressed(egui::Key::Enter))
                        && let Some(first) = matches.first()
                    {
                        chosen = Some((*first).clone());
                    }
                    if ui.input(|i| i.key_pressed(egui::Key::Escape)) {
                        close = true;
                    }
                    if let Some(item) = chosen {
                        actions.push(CanvasAction::Add {
                            item,
                            pos: NodePosition {
                                x: search.graph.x,
                                y: search.graph.y,
                            },
                        });
                        close = true;
                    }
                });
            });
        if close {
            self.search = None;
        }
    }
}

struct Viewer<'a> {
    workflow: &'a Workflow,
    deco: &'a NodeDecorations,
    items: &'a [PaletteItem],
    actions: Vec<CanvasAction>,
    node_rects: HashMap<String, Rect>,
    pin_rows: HashMap<(String, String), Rect>,
    to_global: TSTransform,
    frame_all: bool,
    framed: bool,
    canvas_rect: Rect,
    menu_query: String,
}

impl Viewer<'_> {
    fn step_of<'s>(&self, snarl: &'s Snarl<StepNode>, node: NodeId) -> Option<&'s str> {
        snarl.get_node(node).map(|n| n.step_id.as_str())
    }

    fn record_pin(&mut self, step: &str, label: &str, ui: &Ui) {
        self.pin_rows
            .insert((step.to_string(), label.to_string()), ui.max_rect());
    }
}

/// The label of data input `index` of a step.
pub fn input_label(workflow: &Workflow, step: &str, index: usize) -> String {
    let Some(s) = workflow.steps.get(step) else {
        return String::new();
    };
    match s.inputs.get(index) {
        Some(input) => {
            let name = input
                .name
                .as_deref()
                .map(|n| format!("{n}: "))
                .unwrap_or_default();
            match input.source {
                InputSource::Parameter => format!("{name}param {}", input.key),
                InputSource::PreviousStep => format!("{name}{}", input.key),
                InputSource::Context => format!("{name}context {}", input.key),
            }
        }
        None => "+ input".to_string(),
    }
}

impl SnarlViewer<StepNode> for Viewer<'_> {
    fn title(&mut self, node: &StepNode) -> String {
        node.step_id.clone()
    }

    fn node_frame(
        &mut self,
        default: egui::Frame,
        node: NodeId,
        _inputs: &[InPin],
        _outputs: &[OutPin],
        snarl: &Snarl<StepNode>,
    ) -> egui::Frame {
        let Some(id) = self.step_of(snarl, node) else {
            return default;
        };
        let mut frame = default;
        if let Some(step) = self.workflow.steps.get(id) {
            frame.stroke = Stroke::new(1.5, theme::type_color(step.step_type));
        }
        if self.deco.problems.get(id).is_some_and(|(e, _)| *e > 0) {
            frame.stroke = Stroke::new(2.0, theme::ERROR);
        }
        if self.deco.selected.as_deref() == Some(id) {
            frame.stroke = Stroke::new(3.0, theme::SELECTED);
        }
        frame
    }

    fn header_frame(
        &mut self,
        default: egui::Frame,
        node: NodeId,
        _inputs: &[InPin],
        _outputs: &[OutPin],
        snarl: &Snarl<StepNode>,
    ) -> egui::Frame {
        let color = self
            .step_of(snarl, node)
            .and_then(|id| self.workflow.steps.get(id))
            .map(|s| theme::type_color(s.step_type));
        match color {
            Some(c) => default.fill(c.gamma_multiply(0.45)),
            None => default,
        }
    }

    fn show_header(
        &mut self,
        node: NodeId,
        _inputs: &[InPin],
        _outputs: &[OutPin],
        ui: &mut Ui,
        snarl: &mut Snarl<StepNode>,
    ) {
        let Some(id) = self.step_of(snarl, node).map(str::to_string) else {
            return;
        };
        ui.horizontal(|ui| {
            if self.workflow.initial_step == id {
                ui.label(RichText::new("▶").color(Color32::LIGHT_GREEN))
                    .on_hover_text("initial step");
            }
            painted_label(ui, RichText::new(&id).strong().color(Color32::WHITE));
        });
    }

    fn inputs(&mut self, node: &StepNode) -> usize {
        self.workflow
            .steps
            .get(&node.step_id)
            .map_or(1, |s| 2 + s.inputs.len())
    }

    fn outputs(&mut self, node: &StepNode) -> usize {
        self.workflow
            .steps
            .get(&node.step_id)
            .map_or(1, |s| 1 + FlowPort::for_type(s.step_type).len())
    }

    fn show_input(
        &mut self,
        pin: &InPin,
        ui: &mut Ui,
        snarl: &mut Snarl<StepNode>,
    ) -> impl SnarlPin + 'static {
        let Some(id) = self.step_of(snarl, pin.id.node).map(str::to_string) else {
            return PinInfo::circle();
        };
        if pin.id.input == 0 {
            painted_label(ui, RichText::new("flow").color(theme::FLOW));
            self.record_pin(&id, "flow", ui);
            return PinInfo::triangle()
                .with_fill(theme::FLOW)
                .with_wire_color(theme::FLOW);
        }
        let index = pin.id.input - 1;
        let label = input_label(self.workflow, &id, index);
        let source = self
            .workflow
            .steps
            .get(&id)
            .and_then(|s| s.inputs.get(index))
            .map(|i| i.source);
        let color = match source {
            Some(InputSource::PreviousStep) => theme::DATA,
            Some(InputSource::Parameter) => theme::PARAM,
            Some(InputSource::Context) => theme::CONTEXT,
            None => Color32::GRAY,
        };
        painted_label(ui, RichText::new(&label).small().color(color));
        self.record_pin(&id, &format!("in{index}"), ui);
        PinInfo::circle()
            .with_fill(color)
            .with_wire_color(theme::DATA)
    }

    fn show_output(
        &mut self,
        pin: &OutPin,
        ui: &mut Ui,
        snarl: &mut Snarl<StepNode>,
    ) -> impl SnarlPin + 'static {
        let Some(id) = self.step_of(snarl, pin.id.node).map(str::to_string) else {
            return PinInfo::circle();
        };
        if pin.id.output == 0 {
            painted_label(ui, RichText::new("result").color(theme::DATA));
            self.record_pin(&id, "result", ui);
            return PinInfo::circle()
                .with_fill(theme::DATA)
                .with_wire_color(theme::DATA);
        }
        let port = self
            .workflow
            .steps
            .get(&id)
            .and_then(|s| {
                FlowPort::for_type(s.step_type)
                    .get(pin.id.output - 1)
                    .copied()
            })
            .unwrap_or(FlowPort::Default);
        let color = match port {
            FlowPort::Default => theme::FLOW,
            FlowPort::Branch(true) => theme::TRUE,
            FlowPort::Branch(false) => theme::FALSE,
        };
        painted_label(ui, RichText::new(port.label()).color(color));
        self.record_pin(&id, port.label(), ui);
        PinInfo::triangle().with_fill(color).with_wire_color(color)
    }

    fn has_body(&mut self, _node: &StepNode) -> bool {
        true
    }

    fn show_body(
        &mut self,
        node: NodeId,
        _inputs: &[InPin],
        _outputs: &[OutPin],
        ui: &mut Ui,
        snarl: &mut Snarl<StepNode>,
    ) {
        let Some(id) = self.step_of(snarl, node).map(str::to_string) else {
            return;
        };
        let Some(step) = self.workflow.steps.get(&id) else {
            return;
        };
        ui.vertical(|ui| {
            ui.set_min_width(110.0);
            let op = if step.operation.is_empty() {
                step.step_type.as_str().to_string()
            } else {
                step.qualified_operation()
            };
            painted_label(
                ui,
                RichText::new(op)
                    .monospace()
                    .small()
                    .color(Color32::LIGHT_GRAY),
            );
            if let Some(status) = self.deco.status.get(&id) {
                theme::status_badge(ui, status);
            }
            if let Some((errors, warnings)) = self.deco.problems.get(&id) {
                if *errors > 0 {
                    ui.label(
                        RichText::new(format!("⚠ {errors} error{}", plural(*errors)))
                            .small()
                            .color(theme::ERROR),
                    );
                } else if *warnings > 0 {
                    ui.label(
                        RichText::new(format!("⚠ {warnings} warning{}", plural(*warnings)))
                            .small()
                            .color(theme::WARNING),
                    );
                }
            }
        });
    }

    fn final_node_rect(
        &mut self,
        node: NodeId,
        rect: Rect,
        ui: &mut Ui,
        snarl: &mut Snarl<StepNode>,
    ) {
        let _ = ui;
        if let Some(id) = self.step_of(snarl, node) {
            self.node_rects.insert(id.to_string(), rect);
        }
    }

    fn has_node_menu(&mut self, _node: &StepNode) -> bool {
        true
    }

    fn show_node_menu(
        &mut self,
        node: NodeId,
        _inputs: &[InPin],
        _outputs: &[OutPin],
        ui: &mut Ui,
        snarl: &mut Snarl<StepNode>,
    ) {
        let Some(id) = self.step_of(snarl, node).map(str::to_string) else {
            return;
        };
        if ui.button("Duplicate").clicked() {
            self.actions.push(CanvasAction::Duplicate(vec![id.clone()]));
            ui.close();
        }
        if ui.button("Set as initial step").clicked() {
            self.actions.push(CanvasAction::SetInitial(id.clone()));
            ui.close();
        }
        if ui.button("Delete").clicked() {
            self.actions.push(CanvasAction::Delete(vec![id]));
            ui.close();
        }
    }

    fn has_graph_menu(&mut self, _pos: Pos2, _snarl: &mut Snarl<StepNode>) -> bool {
        true
    }

    fn show_graph_menu(&mut self, pos: Pos2, ui: &mut Ui, _snarl: &mut Snarl<StepNode>) {
        ui.label("Add step");
        ui.add(
            egui::TextEdit::singleline(&mut self.menu_query)
                .hint_text("Search…")
                .desired_width(200.0),
        );
        let matches = palette::filter(self.items, &self.menu_query);
        egui::ScrollArea::vertical()
            .max_height(260.0)
            .show(ui, |ui| {
                for item in matches {
                    if ui
                        .button(item.label())
                        .on_hover_text(&item.description)
                        .clicked()
                    {
                        self.actions.push(CanvasAction::Add {
                            item: item.clone(),
                            pos: NodePosition { x: pos.x, y: pos.y },
                        });
                        self.menu_query.clear();
                        ui.close();
                    }
                }
            });
    }

    fn connect(&mut self, from: &OutPin, to: &InPin, snarl: &mut Snarl<StepNode>) {
        let (Some(src), Some(dst)) = (
            self.step_of(snarl, from.id.node).map(str::to_string),
            self.step_of(snarl, to.id.node).map(str::to_string),
        ) else {
            return;
        };
        let Some(step) = self.workflow.steps.get(&src) else {
            return;
        };
        match (from.id.output, to.id.input) {
            (0, 0) => {}
            (0, input) => self.actions.push(CanvasAction::ConnectData {
                source: src,
                to: dst,
                index: input - 1,
            }),
            (out, 0) => {
                if let Some(port) = FlowPort::for_type(step.step_type).get(out - 1) {
                    self.actions.push(CanvasAction::SetFlow {
                        from: src,
                        port: *port,
                        to: Some(dst),
                    });
                }
            }
            // A flow output cannot feed a data input.
            _ => {}
        }
    }

    fn disconnect(&mut self, from: &OutPin, to: &InPin, snarl: &mut Snarl<StepNode>) {
        let (Some(src), Some(dst)) = (
            self.step_of(snarl, from.id.node).map(str::to_string),
            self.step_of(snarl, to.id.node).map(str::to_string),
        ) else {
            return;
        };
        if to.id.input == 0 {
            if let Some(step) = self.workflow.steps.get(&src)
                && let Some(port) =
                    FlowPort::for_type(step.step_type).get(from.id.output.wrapping_sub(1))
            {
                self.actions.push(CanvasAction::SetFlow {
                    from: src,
                    port: *port,
                    to: None,
                });
            }
        } else {
            self.actions.push(CanvasAction::RemoveInput {
                step: dst,
                index: to.id.input - 1,
            });
        }
    }

    fn drop_outputs(&mut self, pin: &OutPin, snarl: &mut Snarl<StepNode>) {
        let Some(src) = self.step_of(snarl, pin.id.node).map(str::to_string) else {
            return;
        };
        if pin.id.output == 0 {
            self.actions.push(CanvasAction::DisconnectReaders(src));
        } else if let Some(step) = self.workflow.steps.get(&src)
            && let Some(port) = FlowPort::for_type(step.step_type).get(pin.id.output - 1)
        {
            self.actions.push(CanvasAction::SetFlow {
                from: src,
                port: *port,
                to: None,
            });
        }
    }

    fn drop_inputs(&mut self, pin: &InPin, snarl: &mut Snarl<StepNode>) {
        let Some(dst) = self.step_of(snarl, pin.id.node).map(str::to_string) else {
            return;
        };
        if pin.id.input == 0 {
            self.actions.push(CanvasAction::DisconnectFlowInto(dst));
        } else {
            self.actions.push(CanvasAction::RemoveInput {
                step: dst,
                index: pin.id.input - 1,
            });
        }
    }

    fn current_transform(&mut self, to_global: &mut TSTransform, snarl: &mut Snarl<StepNode>) {
        if self.frame_all {
            let mut bb = Rect::NOTHING;
            for (pos, _) in snarl.nodes_pos() {
                bb.extend_with(pos);
                bb.extend_with(pos + Vec2::new(360.0, 130.0));
            }
            if bb.is_finite() && self.canvas_rect.is_finite() && self.canvas_rect.area() > 0.0 {
                let bb = bb.expand(30.0);
                let scale = (self.canvas_rect.size() / bb.size())
                    .min_elem()
                    .clamp(0.2, 1.0);
                *to_global = TSTransform {
                    scaling: scale,
                    translation: self.canvas_rect.center().to_vec2()
                        - bb.center().to_vec2() * scale,
                };
                self.framed = true;
            }
        }
        self.to_global = *to_global;
    }
}

/// Text drawn without a widget: a node carries a dozen labels, and with hundreds of nodes
/// on screen egui's per-widget bookkeeping (ids, hit-test rects, responses) costs more than
/// the drawing. The text is laid out (and cached) exactly as a label's, so nodes look the
/// same; it is just not interactive, which these labels never were.
fn painted_label(ui: &mut Ui, text: RichText) {
    let galley = egui::WidgetText::from(text).into_galley(
        ui,
        Some(egui::TextWrapMode::Extend),
        f32::INFINITY,
        egui::TextStyle::Body,
    );
    let (_, rect) = ui.allocate_space(galley.size());
    if ui.is_rect_visible(rect) {
        let color = ui.visuals().text_color();
        ui.painter().galley(rect.min, galley, color);
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Step types in palette order, for grouping.
pub const TYPE_ORDER: [StepType; 4] = StepType::ALL;
