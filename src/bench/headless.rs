//! The headless egui harness of the app benchmarks: a 1600×1000 window without a GPU, so
//! UI code, layout and tessellation are timed; GPU upload and presentation are not.

use std::path::Path;
use std::time::{Duration, Instant};

use detlab::app::AppOptions;
use detlab::desktop::DetlabApp;

/// GPU texture side assumed for the benchmarks (a common wgpu limit).
pub const MAX_SIDE: usize = 8192;

/// The input of one frame: the window's size and texture limit.
pub fn input() -> egui::RawInput {
    egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(1600.0, 1000.0),
        )),
        max_texture_side: Some(MAX_SIDE),
        ..Default::default()
    }
}

/// Runs one frame of the whole UI and tessellates it.
pub fn frame(ctx: &egui::Context, app: &mut DetlabApp) {
    let mut out = ctx.run_ui(input(), |ui| {
        app.state.poll_background();
        let commands = detlab::ui::root(ui, &mut app.state);
        app.state.apply_all(commands);
    });
    out.textures_delta.clear();
    let _ = ctx.tessellate(out.shapes, out.pixels_per_point);
}

/// The app on `folder` without a model, its settings in `work`.
pub fn new_app(folder: &Path, work: &Path) -> (egui::Context, DetlabApp) {
    let ctx = egui::Context::default();
    ctx.run_ui(input(), |_| {}).textures_delta.clear();
    let args = AppOptions {
        dir: Some(folder.to_path_buf()),
        screenshot: None,
        model: None,
        no_model: true,
    };
    let app = DetlabApp::with_texture_limit(&ctx, args, work.join("settings.json"), MAX_SIDE);
    (ctx, app)
}

/// Runs frames until `done` (at most ten minutes); returns the seconds it took and the
/// slowest frame's.
pub fn wait(
    ctx: &egui::Context,
    app: &mut DetlabApp,
    what: &str,
    done: impl Fn(&DetlabApp) -> bool,
) -> anyhow::Result<(f64, f64)> {
    let start = Instant::now();
    let mut slowest = 0.0f64;
    while !done(app) {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(600),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
        let t = Instant::now();
        frame(ctx, app);
        slowest = slowest.max(t.elapsed().as_secs_f64());
    }
    Ok((start.elapsed().as_secs_f64(), slowest))
}
