//! The status bar: position, zoom, image counter and the latest message.

use crate::app::{AppState, UiState};

pub fn status_bar(ui: &mut egui::Ui, state: &AppState, ui_state: &UiState) {
    ui.horizontal(|ui| {
        let ws = &state.workspace;
        if let Some(session) = &ws.session {
            let n = session.images.len();
            let i = ws.current.map_or(0, |i| i + 1);
            ui.label(format!("{i} / {n}"));
            if session.scanning {
                ui.spinner();
                ui.label("scanning…");
            }
            ui.separator();
            ui.label(format!("zoom {:.0} %", ui_state.view.zoom * 100.0));
            ui.separator();
            ui.label(&ui_state.canvas_info);
            if let Some(doc) = &ws.doc {
                ui.separator();
                ui.label(format!(
                    "{} · {}",
                    doc.format.name(),
                    if doc.is_dirty() { "modified" } else { "saved" }
                ));
            }
        }
        if let Some(m) = state.messages.last() {
            ui.separator();
            ui.label(m);
        }
    });
}
