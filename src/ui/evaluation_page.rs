//! The Evaluate page: the 12 COCO numbers, per-class AP and PR curves of the loaded model
//! on the labelled images it has predictions for.

use egui_plot::{Legend, Line, Plot};

use crate::app::{AppState, Command};
use crate::eval::{MaxDets, COCO_MAX_DETS, DENSE_BOXES_PER_IMAGE, DENSE_MAX_DETS};

pub fn evaluation_page(ui: &mut egui::Ui, state: &AppState, out: &mut Vec<Command>) {
    egui::ScrollArea::vertical().show(ui, |ui| {
        ui.heading("Evaluate the model on these labels");
        let Some(model) = &state.review.model else {
            ui.label("Load a model in the Review panel first.");
            return;
        };
        ui.label(format!(
            "{} on the labelled images with predictions ({} predicted so far). COCO rules: score > 0.05, as many detections per image as AP reads (at least 100), NMS as on the Review panel.",
            model.path.display(),
            state.review.predictions.len()
        ));
        ui.horizontal(|ui| {
            max_dets_choice(ui, state.review.eval_max_dets, out);
            if ui.button("Evaluate").clicked() {
                out.push(Command::EvaluateModel);
            }
            if state.review.evaluation_job.is_some() {
                ui.spinner();
            }
        });
        match &state.review.evaluation {
            None => {}
            Some(Err(e)) => {
                ui.colored_label(egui::Color32::from_rgb(230, 90, 90), e);
            }
            Some(Ok(ev)) => {
                ui.label(format!(
                    "{} images, maxDets {}{}",
                    ev.images,
                    ev.max_dets,
                    if ev.auto_max_dets && ev.max_dets != COCO_MAX_DETS {
                        format!(
                            " (dense labels: {} boxes on one image, more than {DENSE_BOXES_PER_IMAGE})",
                            ev.densest
                        )
                    } else {
                        String::new()
                    }
                ));
                egui::Grid::new("coco_stats")
                    .num_columns(6)
                    .striped(true)
                    .show(ui, |ui| {
                        let names = ev.result.stat_names();
                        for (i, (name, v)) in names.iter().zip(ev.result.stats).enumerate() {
                            ui.label(name.as_str());
                            ui.monospace(format_stat(v));
                            if i % 3 == 2 {
                                ui.end_row();
                            }
                        }
                    });
                ui.add_space(6.0);
                egui::Grid::new("per_class")
                    .num_columns(3)
                    .striped(true)
                    .show(ui, |ui| {
                        ui.strong("class");
                        ui.strong("AP");
                        ui.strong("AP50");
                        ui.end_row();
                        for c in &ev.result.per_category {
                            ui.label(&c.name);
                            ui.monospace(format_stat(c.ap));
                            ui.monospace(format_stat(c.ap50));
                            ui.end_row();
                        }
                    });
                ui.add_space(6.0);
                ui.label(format!(
                    "Precision–recall at IoU 0.50 (area all, {} detections)",
                    ev.max_dets.last()
                ));
                Plot::new("pr_curves")
                    .height(260.0)
                    .legend(Legend::default())
                    .include_x(0.0)
                    .include_x(1.0)
                    .include_y(0.0)
                    .include_y(1.05)
                    .x_axis_label("recall")
                    .y_axis_label("precision")
                    .allow_scroll(false)
                    .show(ui, |p| {
                        let last_m = ev.result.params.max_dets.len().saturating_sub(1);
                        for (k, c) in ev.result.per_category.iter().enumerate() {
                            if let Some(curve) = ev.result.pr_curve(0, k, 0, last_m) {
                                let points: Vec<[f64; 2]> =
                                    curve.into_iter().map(|(r, p)| [r, p]).collect();
                                p.line(Line::new(c.name.clone(), points));
                            }
                        }
                    });
            }
        }
    });
}

/// The maxDets picker: auto (from the labels), pycocotools' 1,10,100, dense 1,10,300, or
/// any three increasing counts typed in (applied when they parse).
fn max_dets_choice(ui: &mut egui::Ui, current: Option<MaxDets>, out: &mut Vec<Command>) {
    ui.label("maxDets");
    let text = |m: Option<MaxDets>| match m {
        None => "auto".to_string(),
        Some(m) => m.to_string(),
    };
    egui::ComboBox::from_id_salt("eval_max_dets")
        .selected_text(text(current))
        .show_ui(ui, |ui| {
            for choice in [None, Some(COCO_MAX_DETS), Some(DENSE_MAX_DETS)] {
                if ui
                    .selectable_label(current == choice, text(choice))
                    .on_hover_text(match choice {
                        None => "1,10,300 when a labelled image holds more than 100 boxes, else 1,10,100",
                        Some(m) if m == COCO_MAX_DETS => "pycocotools' default",
                        Some(_) => "dense shelves (SKU-110K's protocol)",
                    })
                    .clicked()
                {
                    out.push(Command::SetEvalMaxDets(choice));
                }
            }
        });
    let id = egui::Id::unique("eval_max_dets_custom");
    let mut custom: String = ui.data_mut(|d| d.get_temp(id)).unwrap_or_default();
    let edit = ui.add(
        egui::TextEdit::singleline(&mut custom)
            .hint_text("e.g. 1,10,500")
            .desired_width(80.0),
    );
    let parsed = custom.parse::<MaxDets>();
    if edit.lost_focus() {
        if let Ok(m) = parsed {
            out.push(Command::SetEvalMaxDets(Some(m)));
        }
    }
    if !custom.trim().is_empty() {
        if let Err(e) = &parsed {
            edit.on_hover_text(e.to_string());
        }
    }
    ui.data_mut(|d| d.insert_temp(id, custom));
}

fn format_stat(v: f64) -> String {
    if v < 0.0 {
        "–".into()
    } else {
        format!("{v:.3}")
    }
}
