//! The Evaluate page: the 12 COCO numbers, per-class AP and PR curves of the loaded model
//! on the labelled images it has predictions for.

use egui_plot::{Legend, Line, Plot};

use crate::app::{AppState, Command};
use crate::eval::STAT_NAMES;

pub fn evaluation_page(ui: &mut egui::Ui, state: &AppState, out: &mut Vec<Command>) {
    egui::ScrollArea::vertical().show(ui, |ui| {
        ui.heading("Evaluate the model on these labels");
        let Some(model) = &state.review.model else {
            ui.label("Load a model in the Review panel first.");
            return;
        };
        ui.label(format!(
            "{} on the labelled images with predictions ({} predicted so far). COCO rules: score > 0.05, 100 detections per image, NMS IoU as on the Review panel.",
            model.path.display(),
            state.review.predictions.len()
        ));
        ui.horizontal(|ui| {
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
                ui.label(format!("{} images", ev.images));
                egui::Grid::new("coco_stats")
                    .num_columns(6)
                    .striped(true)
                    .show(ui, |ui| {
                        for (i, (name, v)) in STAT_NAMES.iter().zip(ev.result.stats).enumerate() {
                            ui.label(*name);
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
                ui.label("Precision–recall at IoU 0.50 (area all, 100 detections)");
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

fn format_stat(v: f64) -> String {
    if v < 0.0 {
        "–".into()
    } else {
        format!("{v:.3}")
    }
}
