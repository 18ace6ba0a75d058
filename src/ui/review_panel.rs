//! The Review panel: the model, running it, the score / IoU sliders, the current image's
//! pending predictions and the disagreement list.

use crate::app::review::{ImportForm, OnnxExportForm, RunScope, FIRST_VERDICT_IMAGES};
use crate::app::{AppState, Command, UiState};
use crate::detector::checkpoint::ModelArch;
use crate::detector::maths::nms::{NmsMethod, DEFAULT_SOFT_NMS_SIGMA};
use crate::detector::maths::tiling::{TileParams, Tiling, AUTO_TILE_FACTOR};
use crate::detector::maths::tta::Tta;
use crate::detector::precision::Precision;
use crate::review::{DisagreementKind, PredictionState};

pub fn review_panel(
    ui: &mut egui::Ui,
    state: &AppState,
    ui_state: &mut UiState,
    out: &mut Vec<Command>,
) {
    ui.heading("Review");
    model_section(ui, state, ui_state, out);
    if state.review.model.is_none() {
        if state.assist.proposals.values().any(|v| !v.is_empty()) {
            ui.separator();
            current_image_section(ui, state, out);
        }
        return;
    }
    ui.separator();
    run_section(ui, state, out);
    auto_retrain_section(ui, state, out);
    ui.separator();
    threshold_section(ui, state, out);
    ui.separator();
    current_image_section(ui, state, out);
    ui.separator();
    disagreement_section(ui, state, out);
}

fn model_section(
    ui: &mut egui::Ui,
    state: &AppState,
    ui_state: &mut UiState,
    out: &mut Vec<Command>,
) {
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
    ui.horizontal_wrapped(|ui| {
        if ui.button("Open model…").clicked() {
            out.push(Command::Pick(crate::app::jobs::PickPurpose::ModelFile));
        }
        if ui.button("Import .pth…").clicked() {
            ui_state.import_form = Some(ImportForm {
                pth: String::new(),
                arch: ModelArch::D0,
                classes: state.workspace.classes.names().join("\n"),
            });
        }
        let model = state.review.model.as_ref().map(|m| m.path.clone());
        let exporting = state.review.onnx_export_job.is_some();
        let button = ui
            .add_enabled(
                model.is_some() && !exporting,
                egui::Button::new("Export model…"),
            )
            .on_hover_text("Export the loaded model to ONNX (ONNX Runtime, Triton, TensorRT)");
        if button.clicked() {
            if let Some(path) = model {
                ui_state.onnx_export_form = Some(OnnxExportForm::for_model(&path));
            }
        }
        if exporting {
            ui.spinner();
        }
    });
    import_window(ui.ctx(), ui_state, out);
    onnx_export_window(ui.ctx(), ui_state, out);
}

/// The "Export model to ONNX" window: where to write, and which ending.
fn onnx_export_window(ctx: &egui::Context, ui_state: &mut UiState, out: &mut Vec<Command>) {
    let Some(form) = &mut ui_state.onnx_export_form else {
        return;
    };
    let mut open = true;
    let mut submit = false;
    egui::Window::new("Export model to ONNX")
        .open(&mut open)
        .collapsible(false)
        .show(ctx, |ui| {
            ui.label(format!("Model: {}", form.model.display()));
            ui.label("Write to (.onnx)");
            ui.text_edit_singleline(&mut form.out);
            ui.radio_value(&mut form.raw, false, "With NMS: boxes, scores, class ids per image");
            ui.radio_value(&mut form.raw, true, "Raw: every anchor's boxes and scores (own NMS)");
            ui.label("Input: RGB at the model's input size, NHWC float32 0–255; see the file's metadata.");
            submit = ui.button("Export").clicked();
        });
    if submit {
        out.push(Command::ExportOnnx(form.clone()));
        ui_state.onnx_export_form = None;
    } else if !open {
        ui_state.onnx_export_form = None;
    }
}

fn import_window(ctx: &egui::Context, ui_state: &mut UiState, out: &mut Vec<Command>) {
    let Some(form) = &mut ui_state.import_form else {
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
        out.push(Command::ImportModel(form.clone()));
        ui_state.import_form = None;
    } else if !open {
        ui_state.import_form = None;
    }
}

fn run_section(ui: &mut egui::Ui, state: &AppState, out: &mut Vec<Command>) {
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
            out.push(Command::CancelRun);
        }
        return;
    }
    precision_choice(ui, state, out);
    tiling_choice(ui, state, out);
    tta_choice(ui, state, out);
    ui.label("Run the model on");
    ui.horizontal(|ui| {
        if ui.button("this image").clicked() {
            out.push(Command::RunModel(RunScope::Current));
        }
        if ui.button("all").clicked() {
            out.push(Command::RunModel(RunScope::All));
        }
        if ui.button("unlabelled").clicked() {
            out.push(Command::RunModel(RunScope::Unlabelled));
        }
    });
}

/// Whole photos, tiles of a chosen size, or auto (the model's training crops).
fn tiling_choice(ui: &mut egui::Ui, state: &AppState, out: &mut Vec<Command>) {
    let Some(model) = &state.review.model else {
        return;
    };
    let auto_help = match model.train_tile {
        Some(t) => format!(
            "this model was trained on {t}-pixel crops: photos over {} pixels are detected \
             in {t}-pixel tiles plus one whole-photo pass",
            AUTO_TILE_FACTOR * t
        ),
        None => "this model was trained on whole photos: it sees whole photos".into(),
    };
    let mut tiling = state.review.tiling;
    let mut size = match tiling {
        Tiling::Tiles(p) => p.size,
        _ => model.train_tile.unwrap_or(model.input_size),
    };
    ui.horizontal(|ui| {
        ui.label("Tiles");
        ui.radio_value(&mut tiling, Tiling::Auto, "auto")
            .on_hover_text(auto_help);
        ui.radio_value(&mut tiling, Tiling::Off, "off")
            .on_hover_text("each photo whole, letterboxed into the network input");
        let fixed = matches!(tiling, Tiling::Tiles(_));
        if ui
            .radio(fixed, "size")
            .on_hover_text(
                "overlapping tiles of this many photo pixels at native resolution, plus \
                 one whole-photo pass for large objects; merged with the NMS below",
            )
            .clicked()
        {
            tiling = Tiling::Tiles(TileParams::new(size));
        }
        if let Tiling::Tiles(p) = &mut tiling {
            if ui
                .add(
                    egui::DragValue::new(&mut size)
                        .range(64..=4096)
                        .suffix(" px"),
                )
                .changed()
            {
                p.size = size;
            }
        }
    });
    if tiling != state.review.tiling {
        out.push(Command::SetTiling(tiling));
    }
}

/// Test-time augmentation: off, the mirror image, or the mirror image and two scales, with
/// what each costs (measured on `cola-sprite/val`, BENCHMARKS.md).
fn tta_choice(ui: &mut egui::Ui, state: &AppState, out: &mut Vec<Command>) {
    if state.review.model.is_none() {
        return;
    }
    let mut tta = state.review.tta;
    ui.horizontal(|ui| {
        ui.label("TTA").on_hover_text(
            "test-time augmentation: extra network passes whose candidates are pooled \
             before NMS, so the sliders below re-filter them as usual; with Refine boxes \
             on, each box is fused with them (on cola-sprite/val: AP 0.66 → 0.71 with \
             flip, 0.74 with flip + scales)",
        );
        ui.radio_value(&mut tta, Tta::Off, "off 1×")
            .on_hover_text("one pass per photo");
        ui.radio_value(&mut tta, Tta::Flip, "flip ≈2×")
            .on_hover_text("the photo and its mirror image: 2 passes, about 2× slower");
        ui.radio_value(&mut tta, Tta::flip_scales(), "flip + scales ≈5–6×")
            .on_hover_text(
                "also the photo at 0.83× and 1.2× (two windows): 5 passes on a 4:3 photo, \
                 about 5–6× slower; tiled photos get the flip only",
            );
    });
    if tta != state.review.tta {
        out.push(Command::SetTta(tta));
    }
    let mut auto = state.review.auto_tta;
    let verdict = state.review.tta_judge.verdicts.last();
    ui.checkbox(&mut auto, "auto: off or flip, by your labels")
        .on_hover_text(format!(
            "after {}, {}, {}… images labelled with this model, takes whichever of off and \
             flip would have cost fewer review actions on them (choosing a setting above \
             turns auto off){}",
            FIRST_VERDICT_IMAGES,
            2 * FIRST_VERDICT_IMAGES,
            4 * FIRST_VERDICT_IMAGES,
            verdict
                .map(|v| format!("\n\nlast verdict: {v}"))
                .unwrap_or_default()
        ));
    if auto != state.review.auto_tta {
        out.push(Command::SetAutoTta(auto));
    }
}

/// fp32, or bf16 products where the CPU engine runs the model on a CPU with AVX512-BF16.
fn precision_choice(ui: &mut egui::Ui, state: &AppState, out: &mut Vec<Command>) {
    let on_cpu = state
        .review
        .model
        .as_ref()
        .is_none_or(|m| m.device == "Cpu");
    let unavailable = match Precision::Bf16.effective().1 {
        Some(why) => Some(why.to_string()),
        None if !on_cpu => Some("bf16 runs on the CPU engine; this model runs on a GPU".into()),
        None => None,
    };
    let mut precision = state.review.precision;
    ui.horizontal(|ui| {
        ui.label("Precision");
        ui.radio_value(&mut precision, Precision::Fp32, "fp32");
        let bf16 = ui
            .add_enabled(
                unavailable.is_none(),
                egui::RadioButton::new(precision == Precision::Bf16, "bf16"),
            )
            .on_hover_text(
                "bfloat16 products, float32 accumulation (AMX or AVX512-BF16): 1.3-1.7x \
                 faster with AMX, scores within 0.01 of fp32; cached predictions kept",
            )
            .on_disabled_hover_text(unavailable.unwrap_or_default());
        if bf16.clicked() {
            precision = Precision::Bf16;
        }
    });
    if precision != state.review.precision {
        out.push(Command::SetPrecision(precision));
    }
}

fn auto_retrain_section(ui: &mut egui::Ui, state: &AppState, out: &mut Vec<Command>) {
    let every = state.settings.auto_retrain_every;
    let mut on = every > 0;
    let mut n = if on { every } else { 20 };
    ui.horizontal(|ui| {
        let toggled = ui
            .checkbox(&mut on, "Retrain every")
            .on_hover_text(
                "fine-tune the review model in the background after this many newly labelled images. New weights that score better on the labelled hold-out go on trial: they replace the model only if their predictions would have cost fewer review actions on the next images you label, which they never saw. With no model yet, the first generation trains one with the Train tab's settings",
            )
            .changed();
        let moved = ui
            .add_enabled(on, egui::DragValue::new(&mut n).range(2..=10_000))
            .changed();
        ui.label("labelled images");
        if toggled || moved {
            out.push(Command::SetAutoRetrain(if on { n } else { 0 }));
        }
    });
    let auto = &state.auto_retrain;
    if let Some(run) = &auto.run {
        let h = &run.history;
        ui.label(format!(
            "generation {}: epoch {}/{}{}",
            auto.generation,
            h.epoch,
            h.epochs,
            h.baseline_ap
                .map_or(String::new(), |a| format!(", to beat: AP {a:.3}"))
        ));
    }
    if let Some(trial) = &auto.trial {
        let done = state.trial_progress(trial).min(trial.images_needed);
        ui.label(if trial.job.is_some() {
            format!(
                "generation {}: judging it on {done} images",
                trial.generation
            )
        } else {
            format!(
                "generation {} on trial: {done} of {} images labelled since it started",
                trial.generation, trial.images_needed
            )
        });
    }
    if let Some(line) = auto.log.last() {
        ui.label(egui::RichText::new(line).small());
    }
    if auto.previous_model.is_some() && ui.button("Back to the previous model").clicked() {
        out.push(Command::RevertAutoModel);
    }
}

fn threshold_section(ui: &mut egui::Ui, state: &AppState, out: &mut Vec<Command>) {
    let mut show = state.review.show;
    if ui.checkbox(&mut show, "Show predictions").changed() {
        out.push(Command::ShowPredictions(show));
    }
    let mut select = state.review.select;
    ui.add(
        egui::Slider::new(&mut select.score_threshold, 0.02..=1.0)
            .text("score")
            .fixed_decimals(2),
    );
    ui.horizontal(|ui| {
        ui.add(
            egui::Slider::new(&mut select.iou_threshold, 0.05..=0.95)
                .text("NMS IoU")
                .fixed_decimals(2),
        );
        nms_method_choice(ui, &mut select.nms);
    });
    if let NmsMethod::Gaussian { sigma } = &mut select.nms {
        ui.add(
            egui::Slider::new(sigma, 0.05..=2.0)
                .text("Soft-NMS σ")
                .fixed_decimals(2),
        )
        .on_hover_text("Gaussian Soft-NMS: score × exp(−IoU²/σ); smaller σ suppresses harder");
    }
    ui.checkbox(&mut select.class_agnostic, "Class-agnostic NMS");
    let mut refine = state.review.refine_boxes;
    if ui
        .checkbox(&mut refine, "Refine boxes")
        .on_hover_text(
            "show each prediction with the score-weighted mean box of the candidates overlapping it (IoU ≥ 0.6): tighter boxes to accept as they are",
        )
        .changed()
    {
        out.push(Command::SetRefineBoxes(refine));
    }
    if select != state.review.select {
        out.push(Command::SetReviewSelect(select));
    }
}

/// Hard NMS or Soft-NMS (linear, Gaussian), beside the IoU slider: the cached candidates
/// are re-filtered with it at once.
fn nms_method_choice(ui: &mut egui::Ui, nms: &mut NmsMethod) {
    let sigma = match *nms {
        NmsMethod::Gaussian { sigma } => sigma,
        _ => DEFAULT_SOFT_NMS_SIGMA,
    };
    egui::ComboBox::from_id_salt("review_nms_method")
        .width(90.0)
        .selected_text(nms.name())
        .show_ui(ui, |ui| {
            for (choice, hover) in [
                (
                    NmsMethod::Hard,
                    "remove boxes overlapping a kept box by more than the IoU",
                ),
                (
                    NmsMethod::Linear,
                    "Soft-NMS: score × (1 − IoU) above the IoU; keeps touching facings",
                ),
                (
                    NmsMethod::Gaussian { sigma },
                    "Soft-NMS: score × exp(−IoU²/σ) for every overlap",
                ),
            ] {
                let on = nms.name() == choice.name();
                if ui
                    .selectable_label(on, choice.name())
                    .on_hover_text(hover)
                    .clicked()
                    && !on
                {
                    *nms = choice;
                }
            }
        });
}

fn current_image_section(ui: &mut egui::Ui, state: &AppState, out: &mut Vec<Command>) {
    let shown = state.shown_predictions();
    let pending = shown
        .iter()
        .filter(|p| p.state == PredictionState::Pending)
        .count();
    let taken = state.accept_all_choice(&shown).len();
    let mut summary = format!("{} predictions here, {pending} pending", shown.len());
    if taken < pending {
        summary += &format!("; Accept all takes {taken} (the rest overlap a better one)");
    }
    ui.label(summary);
    ui.horizontal(|ui| {
        if ui
            .add_enabled(pending > 0, egui::Button::new("Accept all"))
            .on_hover_text(
                "Shift+Enter: every pending prediction, best first, but none that would be a \
                 second label on an object (IoU ≥ 0.5 with a label of its class)",
            )
            .clicked()
        {
            out.push(Command::AcceptAllShown);
        }
        if ui
            .add_enabled(pending > 0, egui::Button::new("Reject the rest"))
            .on_hover_text(
                "Shift+Delete: every prediction still pending here (Ctrl+Delete: and go to \
                 the next unlabelled image)",
            )
            .clicked()
        {
            out.push(Command::RejectAllPending);
        }
        if ui.button("Next pending").on_hover_text("Tab").clicked() {
            out.push(Command::NextPending);
        }
    });
    egui::ScrollArea::vertical()
        .id_salt("predictions")
        .max_height(160.0)
        .show(ui, |ui| {
            for (i, p) in shown.iter().enumerate() {
                let name = p.class_name.as_str();
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
                    out.push(Command::SelectPrediction(Some(i)));
                }
            }
        });
}

fn disagreement_section(ui: &mut egui::Ui, state: &AppState, out: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        if ui
            .button("Find disagreements")
            .on_hover_text("rank labelled images by where the model and the labels disagree")
            .clicked()
        {
            out.push(Command::FindDisagreements);
        }
        if state.review.disagreement_job.is_some() {
            ui.spinner();
        }
    });
    if state.review.disagreements.is_empty() {
        return;
    }
    let mut kind = state.review.disagreement_kind;
    egui::ComboBox::from_id_salt("disagreement_kind")
        .selected_text(kind_name(kind))
        .show_ui(ui, |ui| {
            for k in [
                DisagreementKind::Any,
                DisagreementKind::Missed,
                DisagreementKind::Extra,
                DisagreementKind::ClassMismatch,
                DisagreementKind::Loose,
            ] {
                ui.selectable_value(&mut kind, k, kind_name(k));
            }
        });
    if kind != state.review.disagreement_kind {
        out.push(Command::SetDisagreementKind(kind));
    }
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
        out.push(Command::GoToPath(path));
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
