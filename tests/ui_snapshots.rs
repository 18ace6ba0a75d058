//! Small snapshot images of the app, rendered headless (wgpu on Mesa's lavapipe, which
//! `make test` installs). Regenerate with `UPDATE_SNAPSHOTS=1 make test`.

use std::time::{Duration, Instant};

use detlab::app::image_loader::ImageSlot;
use detlab::app::AppOptions;
use detlab::desktop::DetlabApp;
use egui_kittest::Harness;

fn app_on_demo(size: egui::Vec2) -> (tempfile::TempDir, Harness<'static, DetlabApp>) {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("shelf");
    let options = detlab::demo::DemoOptions {
        out_dir: images.clone(),
        images: 3,
        seed: 11,
        width: 320,
        height: 240,
    };
    detlab::demo::generate(&options).unwrap();
    let settings = dir.path().join("settings.json");
    let mut h = Harness::builder()
        .with_size(size)
        .wgpu()
        .build_eframe(move |cc| {
            DetlabApp::new(
                &cc.egui_ctx,
                AppOptions {
                    dir: Some(images),
                    screenshot: None,
                    model: None,
                    no_model: true,
                },
                settings,
            )
        });
    let start = Instant::now();
    loop {
        h.step();
        let s = &h.state().state;
        // The image's pixels and its labels (read on the label thread).
        let ready = s.workspace.doc.is_some()
            && s.current_path().is_some_and(|p| {
                matches!(
                    s.workspace.loader.as_ref().and_then(|l| l.get(&p)),
                    Some(ImageSlot::Ready { .. })
                )
            });
        if ready && !s.workspace.session.as_ref().unwrap().scanning {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the demo image did not load"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Paths of the temp folder must not reach the picture.
    h.state_mut().state.messages.clear();
    h.run_steps(3);
    (dir, h)
}

#[test]
fn canvas_with_boxes_and_panels() {
    let (_dir, mut h) = app_on_demo(egui::vec2(960.0, 540.0));
    h.state_mut().state.workspace.doc.as_mut().unwrap().selected = Some(0);
    h.run_steps(2);
    h.snapshot("app_demo_selected_box");
}
