//! The desktop app on top of every layer: the `eframe::App` that owns the
//! [`AppState`], polls its background work, applies window events, calls the
//! [`crate::ui`] root each frame and applies the commands it returns.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::app::image_loader::ImageLoader;
use crate::app::saving::CloseAnswer;
use crate::app::settings::{default_settings_path, Settings};
use crate::app::{AppOptions, AppState};

/// Memory kept for decoded images on the GPU.
const TEXTURE_BUDGET_BYTES: usize = 768 * 1024 * 1024;

/// The desktop app.
pub struct DetlabApp {
    pub state: AppState,
    screenshot: Option<PathBuf>,
    frames: u64,
}

impl DetlabApp {
    /// Builds the app on `ctx`, reading settings from `settings_path`.
    pub fn new(ctx: &egui::Context, args: AppOptions, settings_path: PathBuf) -> Self {
        let max_side = ctx.input(|i| i.max_texture_side).max(2048);
        Self::with_texture_limit(ctx, args, settings_path, max_side)
    }

    /// Like [`Self::new`], with the GPU's largest texture side (bigger images are shown
    /// downscaled; box coordinates stay in full-resolution pixels).
    pub fn with_texture_limit(
        ctx: &egui::Context,
        args: AppOptions,
        settings_path: PathBuf,
        max_side: usize,
    ) -> Self {
        let (settings, warning) = Settings::load(&settings_path);
        let loader = ImageLoader::new(ctx, 2, max_side, TEXTURE_BUDGET_BYTES);
        let mut state = AppState::new(settings, settings_path, Some(loader), Some(ctx.clone()));
        if let Some(w) = warning {
            state.info(w);
        }
        match (&args.model, args.no_model) {
            (Some(model), _) => state.load_model(model.clone()),
            (None, true) => state.review.default_requested = true,
            (None, false) => {}
        }
        if let Some(dir) = args.dir {
            state.dropped(dir);
        }
        Self {
            state,
            screenshot: args.screenshot,
            frames: 0,
        }
    }
}

impl eframe::App for DetlabApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        let state = &mut self.state;
        state.poll_background();
        for file in ctx.input(|i| i.raw.dropped_files.clone()) {
            state.dropped(file.path().to_path_buf());
        }
        if ctx.input(|i| i.viewport().close_requested()) && !state.quit_requested {
            let size = ctx.input(|i| i.viewport().inner_rect.map(|r| [r.width(), r.height()]));
            if state.close_requested(size) == CloseAnswer::Refuse {
                ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
                return;
            }
        }
        if state.quit_requested {
            state.quit_requested = false;
            state.save_settings();
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let commands = crate::ui::root(ui, &mut self.state);
        self.state.apply_all(commands);
        self.frames += 1;
        if let Some(path) = self.screenshot.clone() {
            take_screenshot_and_quit(ui.ctx(), &path, self.frames);
        }
    }

    fn on_exit(&mut self) {
        self.state.finish_background_work();
        self.state.leave_current_image();
        self.state.save_settings();
        self.state.finish_writes();
    }
}

/// `--screenshot PATH`: once the folder is shown, saves a screenshot and closes.
fn take_screenshot_and_quit(ctx: &egui::Context, path: &std::path::Path, frames: u64) {
    if frames == 30 {
        let path = path.to_path_buf();
        let repaint = ctx.clone();
        let callback =
            egui::ScreenshotCallback::new(move |image: std::sync::Arc<egui::ColorImage>| {
                let [w, h] = image.size;
                let bytes: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
                match image::RgbaImage::from_raw(w as u32, h as u32, bytes) {
                    Some(img) => {
                        if let Err(e) = img.save(&path) {
                            eprintln!("cannot save screenshot {}: {e}", path.display());
                        }
                    }
                    None => eprintln!("screenshot had an unexpected size"),
                }
                repaint.send_viewport_cmd(egui::ViewportCommand::Close);
                repaint.request_repaint();
            });
        ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(callback));
    }
    // Keep frames coming (with a short pause so background decoding can finish).
    ctx.request_repaint_after(std::time::Duration::from_millis(50));
}

/// Opens the main window and runs until it is closed.
pub fn run_gui(args: AppOptions) -> anyhow::Result<()> {
    let settings_path = default_settings_path();
    let (settings, _) = Settings::load(&settings_path);
    let size = settings.window_size.unwrap_or([1280.0, 800.0]);
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("detlab")
            .with_inner_size(size)
            .with_min_inner_size([640.0, 400.0])
            .with_drag_and_drop(true),
        // Ctrl+V must reach detlab as a key (copy the previous image's boxes), not as a
        // paste event that egui-winit drops when the clipboard is empty; text fields get
        // cut / copy / paste from `ui::shortcuts`.
        clipboard_shortcuts: false,
        ..Default::default()
    };
    eframe::run_native(
        "detlab",
        options,
        Box::new(move |cc| {
            let limit = cc
                .wgpu_render_state
                .as_ref()
                .map(|rs| rs.device.limits().max_texture_dimension_2d as usize)
                .unwrap_or(2048);
            Ok(Box::new(DetlabApp::with_texture_limit(
                &cc.egui_ctx,
                args,
                settings_path,
                limit,
            )))
        }),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
    .context("cannot open the detlab window (is a display available?)")
}
