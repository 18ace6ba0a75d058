//! The image with its boxes: drawing, selecting, moving, resizing, zooming and panning.
//! Boxes live in image pixels; only this module converts to and from screen points
//! ([`Transform`]): [`geometry`] edits boxes, [`interaction`] turns the pointer into
//! commands, [`paint`] draws.

use egui::{Color32, Pos2, Rect, Sense, Vec2};

mod geometry;
mod interaction;
mod paint;

use self::interaction::{box_at, context_menu, interact};
use self::paint::{paint_boxes, paint_predictions};
use crate::app::image_loader::ImageSlot;
use crate::app::{AppState, Command, Fit, UiState, View};
use crate::geometry::BoxXyxy;

/// Screen distance (points) within which a handle or edge is grabbed.
const GRAB: f32 = 6.0;
/// Smallest box (image pixels) that drawing creates.
const MIN_BOX: f64 = 2.0;

/// Image ↔ screen mapping for this frame.
#[derive(Clone, Copy, Debug)]
pub struct Transform {
    pub origin: Pos2,
    pub zoom: f32,
}

impl Transform {
    pub fn to_screen(self, x: f64, y: f64) -> Pos2 {
        self.origin + Vec2::new(x as f32 * self.zoom, y as f32 * self.zoom)
    }

    pub fn to_image(self, p: Pos2) -> [f64; 2] {
        let v = (p - self.origin) / self.zoom;
        [v.x as f64, v.y as f64]
    }

    pub fn rect(self, b: &BoxXyxy) -> Rect {
        Rect::from_two_pos(self.to_screen(b.x1, b.y1), self.to_screen(b.x2, b.y2))
    }
}

/// Draws the canvas into the remaining space.
pub fn canvas(ui: &mut egui::Ui, state: &AppState, ui_state: &mut UiState, out: &mut Vec<Command>) {
    let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
    let painter = ui.painter_at(rect);
    let doc = state.workspace.doc.as_ref();
    let verified = doc.is_some_and(|d| d.annotation.verified);
    painter.rect_filled(
        rect,
        0.0,
        if verified {
            Color32::from_rgb(150, 190, 60)
        } else {
            Color32::from_gray(40)
        },
    );

    let Some(path) = state.current_path() else {
        centred_message(&painter, rect, "no image", 18.0, Color32::GRAY);
        return;
    };
    let slot = state.workspace.loader.as_ref().and_then(|l| l.get(&path));
    let (texture, full_size, image_warning) = match slot {
        Some(ImageSlot::Ready {
            texture,
            full_size,
            warning,
        }) => (texture.clone(), *full_size, *warning),
        Some(ImageSlot::Failed(reason)) => {
            let text = format!("cannot show {}:\n{reason}", path.display());
            centred_message(&painter, rect, text, 16.0, Color32::from_rgb(255, 120, 120));
            return;
        }
        _ => {
            centred_message(&painter, rect, "loading…", 18.0, Color32::GRAY);
            return;
        }
    };
    if doc.is_some_and(|d| !d.annotation.has_size()) {
        out.push(Command::ImageSize(full_size));
    }
    let (w, h) = (full_size[0] as f32, full_size[1] as f32);
    let t = update_view(ui, &mut ui_state.view, rect, &response, w, h);

    let image_rect = Rect::from_min_size(t.origin, Vec2::new(w * t.zoom, h * t.zoom));
    let b = ui_state.view.brightness;
    let tint = if b < 0.0 {
        Color32::from_gray((255.0 * (1.0 + b)) as u8)
    } else {
        Color32::WHITE
    };
    painter.image(
        texture.id(),
        image_rect,
        Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
        tint,
    );
    if b > 0.0 {
        painter.rect_filled(
            image_rect,
            0.0,
            Color32::from_white_alpha((b * 160.0) as u8),
        );
    }

    let predictions = state.shown_predictions();
    interact(
        ui,
        state,
        ui_state,
        out,
        &response,
        t,
        full_size,
        &predictions,
    );
    context_menu(&response, state, ui_state, out);
    let hovered = response
        .hover_pos()
        .and_then(|p| box_at(state, ui_state, t, p));
    paint_boxes(ui, state, ui_state, &painter, t, hovered);
    paint_predictions(ui, state, ui_state, &painter, t, &predictions);
    let mut notes = Vec::new();
    if let Some(err) = doc.and_then(|d| d.load_error.clone()) {
        notes.push(format!(
            "labels not loaded — the file is left untouched:\n{err}"
        ));
    }
    if let Some(w) = image_warning {
        notes.push(format!("image incomplete: {w}"));
    }
    match &ui_state.label_formats {
        Some(f) if f.image == path => {
            if let Some(w) = f.warning(state.settings.format) {
                notes.push(w);
            }
        }
        // Saves finish on the label thread: look again once none is pending.
        _ if !state.workspace.labels.busy() => out.push(Command::CheckLabelFormats),
        _ => {}
    }
    if !notes.is_empty() {
        painter.text(
            rect.left_top() + Vec2::new(8.0, 8.0),
            egui::Align2::LEFT_TOP,
            notes.join("\n"),
            egui::FontId::proportional(14.0),
            Color32::from_rgb(255, 110, 110),
        );
    }
}

/// Applies fit modes, the wheel (pan), Ctrl+wheel (zoom at the cursor) and keyboard zoom.
fn update_view(
    ui: &egui::Ui,
    view: &mut View,
    rect: Rect,
    response: &egui::Response,
    w: f32,
    h: f32,
) -> Transform {
    match view.fit {
        Fit::Window => {
            view.zoom = (rect.width() / w).min(rect.height() / h).max(1e-3);
            view.pan = (rect.size() - Vec2::new(w, h) * view.zoom) / 2.0;
        }
        Fit::Width => {
            view.zoom = (rect.width() / w).max(1e-3);
            view.pan.x = 0.0;
        }
        Fit::Manual => {}
    }
    let zoom_about = |factor: f32, about: Pos2, view: &mut View| {
        let new_zoom = (view.zoom * factor).clamp(0.01, 64.0);
        let origin = rect.min + view.pan;
        let new_origin = about - (about - origin) * (new_zoom / view.zoom);
        view.pan = new_origin - rect.min;
        view.zoom = new_zoom;
        view.fit = Fit::Manual;
    };
    if view.pending_zoom != 1.0 {
        let f = view.pending_zoom;
        view.pending_zoom = 1.0;
        zoom_about(f, rect.center(), view);
    }
    if response.hovered() {
        let (zoom, scroll, pointer, shift) = ui.input(|i| {
            (
                i.zoom_delta(),
                i.smooth_scroll_delta,
                i.pointer.hover_pos(),
                i.events.iter().rev().find_map(|e| match e {
                    egui::Event::MouseWheel { modifiers: m, .. } => Some(m.shift && m.command),
                    _ => None,
                }),
            )
        });
        // egui smooths a wheel turn over frames: a Ctrl+Shift turn stays brightness.
        if let Some(brightness) = shift {
            view.wheel_brightness = brightness;
        }
        if view.wheel_brightness && zoom != 1.0 {
            // Ctrl+Shift+wheel: brightness (LabelImg), not zoom.
            view.brightness = (view.brightness + zoom.ln() * 0.5).clamp(-1.0, 1.0);
        } else if zoom != 1.0 {
            zoom_about(zoom, pointer.unwrap_or(rect.center()), view);
        } else if scroll != Vec2::ZERO {
            view.pan += scroll;
            if view.fit == Fit::Window {
                view.fit = Fit::Manual;
            }
        }
    }
    view.origin = rect.min + view.pan;
    Transform {
        origin: view.origin,
        zoom: view.zoom,
    }
}

fn drag_id() -> egui::Id {
    egui::Id::unique("detlab_canvas_drag")
}

/// A message in the middle of the canvas instead of the image.
fn centred_message(
    painter: &egui::Painter,
    rect: egui::Rect,
    text: impl ToString,
    size: f32,
    color: Color32,
) {
    painter.text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        text,
        egui::FontId::proportional(size),
        color,
    );
}
