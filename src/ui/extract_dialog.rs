//! The Extract frames dialog: the video's facts, every N-th frame or R per second, the
//! output folder, progress, and the result (with a button to open the folder to label).

use crate::app::extract_frames::FramesAction;
use crate::app::jobs::PickPurpose;
use crate::app::{AppState, Command, UiState};

pub fn extract_dialog(
    ctx: &egui::Context,
    state: &AppState,
    ui_state: &mut UiState,
    out: &mut Vec<Command>,
) {
    if ui_state.extract_form.is_none() {
        return;
    }
    let jobs = &state.jobs.frames;
    let running = jobs.run.is_some();
    let mut open = true;
    let mut close = false;
    egui::Window::new("Extract frames")
        .open(&mut open)
        .collapsible(false)
        .show(ctx, |ui| {
            let Some(form) = &mut ui_state.extract_form else {
                return;
            };
            ui.label(format!("Video: {}", form.video.display()));
            let info = jobs.info.as_ref().and_then(|r| r.as_ref().ok());
            match &jobs.info {
                None => {
                    ui.label("reading the video…");
                }
                Some(Ok(info)) => {
                    let mut facts = format!("{}×{}, {}", info.width, info.height, info.codec);
                    if let Some(fps) = info.fps {
                        facts.push_str(&format!(", {fps:.2} fps"));
                    }
                    if let Some(n) = info.expected_frames() {
                        facts.push_str(&format!(", {n} frames"));
                    }
                    ui.label(facts);
                }
                Some(Err(e)) => {
                    ui.colored_label(egui::Color32::from_rgb(255, 110, 90), e);
                }
            }
            ui.add_enabled_ui(!running, |ui| {
                ui.horizontal(|ui| {
                    ui.radio_value(&mut form.per_second, true, "frames per second");
                    ui.add(
                        egui::DragValue::new(&mut form.rate)
                            .range(0.01..=240.0)
                            .speed(0.1),
                    );
                });
                ui.horizontal(|ui| {
                    ui.radio_value(&mut form.per_second, false, "every N-th frame, N =");
                    ui.add(egui::DragValue::new(&mut form.every).range(1..=100_000));
                });
                if let Some(info) = info {
                    if let Some(n) = info.expected_frames() {
                        let kept = form.sampling().kept_of(n, info.fps);
                        ui.label(format!("about {kept} images"));
                    }
                }
                ui.horizontal(|ui| {
                    ui.label("Output folder");
                    ui.text_edit_singleline(&mut form.out_dir);
                    if ui.button("Browse…").clicked() {
                        out.push(Command::Pick(PickPurpose::FramesFolder));
                    }
                });
                let can_start = !matches!(jobs.info, Some(Err(_)));
                if ui
                    .add_enabled(can_start, egui::Button::new("Extract"))
                    .clicked()
                {
                    out.push(Command::ExtractFrames(FramesAction::Start));
                }
            });
            if let Some(job) = &jobs.run {
                ui.horizontal(|ui| {
                    ui.add(egui::ProgressBar::new(job.fraction()).show_percentage());
                    if ui.button("Stop").clicked() {
                        out.push(Command::ExtractFrames(FramesAction::Stop));
                    }
                });
                let written = jobs.written.load(std::sync::atomic::Ordering::Relaxed);
                ui.label(format!("{written} images written"));
            }
            match &jobs.result {
                Some(Ok(summary)) => {
                    ui.separator();
                    ui.label(summary.report());
                    if !summary.written.is_empty()
                        && ui.button("Open the folder to label").clicked()
                    {
                        out.push(Command::OpenFolder(summary.out_dir.clone()));
                        close = true;
                    }
                }
                Some(Err(e)) => {
                    ui.colored_label(
                        egui::Color32::from_rgb(255, 110, 90),
                        format!("Extraction failed: {e}"),
                    );
                }
                None => {}
            }
        });
    if !open || close {
        ui_state.extract_form = None;
    }
}
