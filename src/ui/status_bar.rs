//! The status bar: position, zoom, image counter and the latest message.

use crate::app::AppState;

pub fn status_bar(ui: &mut egui::Ui, state: &mut AppState) {
    ui.horizontal(|ui| {
        if let Some(session) = &state.session {
            let n = session.images.len();
            let i = state.current.map_or(0, |i| i + 1);
            ui.label(format!("{i} / {n}"));
            if session.scanning {
                ui.spinner();
                ui.label("scanning…");
            }
            ui.separator();
            ui.label(format!("zoom {:.0} %", state.view.zoom * 100.0));
            ui.separator();
            ui.label(&state.canvas_info);
            if let Some(doc) = &state.doc {
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
