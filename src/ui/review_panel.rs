//! The Review panel: the model, running it, the score / IoU sliders, the current image's
//! pending predictions and the disagreement list.

use crate::app::review::{ImportForm, RunScope};
use crate::app::AppState;
use crate::detector::checkpoint::ModelArch;
use crate::review::{DisagreementKind, PredictionState};

pub fn review_panel(ui: &mut egui::Ui, state: &mut AppState) {
    ui.heading("Review");
    model_section(ui, state);
    if state.review.model.is_none() {
        return;
    }
    ui.separator();
    run_section(ui, state);
    ui.separator();
    threshold_section(ui, state);
    ui.separator();
    current_image_section(ui, state);
    ui.separator();
    disagreement_section(ui, state);
}

fn model_section(ui: &mut egui::Ui, state: &mut AppState) {
    match &state.review.model {
        Some(m) => {
            let name = m
                .path
                .file_name()
                .map_or("model".into(), |n| n.to_string_lossy().into_owned());
            ui.label(egui::RichText::new(name).strong())
                .on_hover_text(m.path.display().to_string());
            ui.label(format!(
                "{} · input {} · {} · {}",
                m.arch,
                m.input_size,
                m.class_names.join(", "),
                m.device
            ));
        }
        None if state.review.model_job.is_some() => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("loading model…");
            });
        }
        None => {
            ui.label("no model loaded");
        }
    }
    if let Some(e) = &state.review.model_error {
        ui.colored_label(egui::Color32::from_rgb(230, 90, 90), e);
    }
    ui.horizontal(|ui| {
        if ui.button("Open model…").clicked() {
            state.pick(crate::app::jobs::PickPurpose::ModelFile);
        }
        if ui.button("Import .pth…").clicked() {
            state.review.import_form = Some(ImportForm {
                pth: String::new(),
                arch: ModelArch::D0,
                classes: state.classes.names().join("\n"),
            });
        }
    });
    import_window(ui.ctx(), state);
}

fn import_window(ctx: &egui::Context, state: &mut AppState) {
    let Some(form) = &mut state.review.import_form else {
        return;
    };
    let mut open = true;
    let mut submit = false;
    egui::Window::new("Import PyTorch weights")
        .open(&mut open)
        .collapsible(false)
        .show(ctx, |ui| {
            ui.label("Checkpoint (.pth / .pt, Zylo117 EfficientDet names)");
            ui.text_edit_singleline(&mut form.pth);
            egui::ComboBox::from_label("Architecture")
                .selected_text(form.arch.name())
                .show_ui(ui, |ui| {
                    for a in ModelArch::ALL {
                        ui.selectable_value(&mut form.arch, a, a.name());
                    }
                });
            ui.label("Class names, one per line, in the checkpoint's order");
            ui.add(egui::TextEdit::multiline(&mut form.classes).desired_rows(4));
            ui.label("Writes <checkpoint>.safetensors beside it, then loads it.");
            submit = ui.button("Import").clicked();
        });
    if submit {
        let form = form.clone();
        state.review.import_form = None;
        state.import_model(form);
    } else if !open {
        state.review.import_form = None;
    }
}

fn run_section(ui: &mut egui::Ui, state: &mut AppState) {
    if let Some(run) = &state.review.run {
        let done = run.done.load(std::sync::atomic::Ordering::Relaxed);
        let mut cancel = false;
        ui.horizontal(|ui| {
            ui.add(
                egui::ProgressBar::new(run.fraction())
                    .text(format!("{done}/{}", run.total))
                    .desired_width(150.0),
            );
            cancel = ui.button("Cancel").clicked();
        });
        if cancel {
            run.cancel();
        }
        return;
    }
    ui.label("Run the model on");
    ui.horizontal(|ui| {
        if ui.button("this image").clicked() {
            state.run_model(RunScope::Current);
        }
        if ui.button("all").clicked() {
            state.run_model(RunScope::All);
        }
        if ui.button("unlabelled").clicked() {
            state.run_model(RunScope::Unlabelled);
        }
    });
}

fn threshold_section(ui: &mut egui::Ui, state: &mut AppState) {
    let r = &mut state.review;
    ui.checkbox(&mut r.show, "Show predictions");
    ui.add(
        egui::Slider::new(&mut r.select.score_threshold, 0.02..=1.0)
            .text("score")
            .fixed_decimals(2),
    );
    ui.add(
        egui::Slider::new(&mut r.select.iou_threshold, 0.05..=0.95)
            .text("NMS IoU")
            .fixed_decimals(2),
    );
    ui.checkbox(&mut r.select.class_agnostic, "Class-agnostic NMS");
}

fn current_image_section(ui: &mut egui::Ui, state: &mut AppState) {
    let shown = state.shown_predictions();
    let pending = shown
        .iter()
        .filter(|p| p.state == PredictionState::Pending)
        .count();
    ui.label(format!(
        "{} predictions here, {pending} pending",
        shown.len()
    ));
    ui.horizontal(|ui| {
        if ui
            .add_enabled(pending > 0, egui::Button::new("Accept all"))
            .on_hover_text("Shift+Enter")
            .clicked()
        {
            state.accept_all_shown();
        }
        if ui.button("Next pending").on_hover_text("Tab").clicked() {
            state.next_pending();
        }
    });
    let names = state
        .review
        .model
        .as_ref()
        .map(|m| m.class_names.clone())
        .unwrap_or_default();
    egui::ScrollArea::vertical()
        .id_salt("predictions")
        .max_height(160.0)
        .show(ui, |ui| {
            for (i, p) in shown.iter().enumerate() {
                let name = names.get(p.detection.class_id).map_or("?", String::as_str);
                let text = format!(
                    "{name} {:.2}  {}",
                    p.detection.score,
                    match p.state {
                        PredictionState::Pending => "pending",
                        PredictionState::MatchesLabel => "= label",
                        PredictionState::Accepted => "accepted",
                        PredictionState::Fixed => "fixed",
                        PredictionState::Rejected => "rejected",
                    }
                );
                if ui
                    .selectable_label(state.review.selected == Some(i), text)
                    .clicked()
                {
                    state.review.selected = Some(i);
                    if let Some(doc) = &mut state.doc {
                        doc.selected = None;
                    }
                }
            }
        });
}

fn disagreement_section(ui: &mut egui::Ui, state: &mut AppState) {
    ui.horizontal(|ui| {
        if ui
            .button("Find disagreements")
            .on_hover_text("rank labelled images by where the model and the labels disagree")
            .clicked()
        {
            state.find_disagreements();
        }
        if state.review.disagreement_job.is_some() {
            ui.spinner();
        }
    });
    if state.review.disagreements.is_empty() {
        return;
    }
    egui::ComboBox::from_id_salt("disagreement_kind")
        .selected_text(kind_name(state.review.disagreement_kind))
        .show_ui(ui, |ui| {
            for k in [
                DisagreementKind::Any,
                DisagreementKind::Missed,
                DisagreementKind::Extra,
                DisagreementKind::ClassMismatch,
                DisagreementKind::Loose,
            ] {
                ui.selectable_value(&mut state.review.disagreement_kind, k, kind_name(k));
            }
        });
    let list = state.disagreement_list();
    let current = state.current_path();
    let mut go = None;
    egui::ScrollArea::vertical()
        .id_salt("disagreements")
        .max_height(220.0)
        .show(ui, |ui| {
            for (path, d) in &list {
                let name = path
                    .file_name()
                    .map_or(String::new(), |n| n.to_string_lossy().into_owned());
                let text = format!(
                    "{name}  missed {} · extra {} · class {} · loose {}",
                    d.missed_labels, d.confident_extras, d.class_mismatches, d.loose_boxes
                );
                if ui
                    .selectable_label(current.as_deref() == Some(path.as_path()), text)
                    .clicked()
                {
                    go = Some(path.clone());
                }
            }
        });
    if let Some(path) = go {
        state.go_to_path(&path);
    }
}

fn kind_name(k: DisagreementKind) -> &'static str {
    match k {
        DisagreementKind::Any => "all disagreements",
        DisagreementKind::Missed => "missed labels",
        DisagreementKind::Extra => "confident extras",
        DisagreementKind::ClassMismatch => "class mismatches",
        DisagreementKind::Loose => "loose boxes",
    }
}
