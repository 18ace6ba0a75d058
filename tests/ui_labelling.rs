//! The real app driven by egui_kittest: drawing, editing, keyboard, autosave, errors and
//! the Export dialog, on a generated demo folder.

mod common;

use common::wait_until;

use std::path::PathBuf;

use detlab::app::image_loader::ImageSlot;
use detlab::app::settings::Settings;
use detlab::app::{AppOptions, Command, Fit};
use detlab::desktop::DetlabApp;
use detlab::formats::voc;
use detlab::geometry::BoxXyxy;
use egui::accesskit::Role;
use egui::{Key, Modifiers, Pos2};
use egui_kittest::kittest::{By, Queryable};
use egui_kittest::Harness;

struct Fixture {
    _dir: tempfile::TempDir,
    images: PathBuf,
    settings: PathBuf,
}

fn fixture(n: usize) -> Fixture {
    let f = fixture_labelled(n);
    // Start unlabelled: the tests draw their own boxes.
    for e in std::fs::read_dir(&f.images).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "xml") {
            std::fs::remove_file(p).unwrap();
        }
    }
    f
}

fn harness(f: &Fixture, single_class: bool) -> Harness<'static, DetlabApp> {
    let images = f.images.clone();
    let settings = f.settings.clone();
    let mut h = Harness::builder()
        .with_size(egui::vec2(1200.0, 800.0))
        .build_eframe(move |cc| {
            let mut app = DetlabApp::new(
                &cc.egui_ctx,
                AppOptions {
                    dir: Some(images),
                    screenshot: None,
                    model: None,
                    no_model: true,
                },
                settings,
            );
            app.state.settings.single_class_mode = single_class;
            app
        });
    wait_for_image(&mut h);
    h
}

/// Waits for the current image's pixels and labels.
fn wait_for_image(h: &mut Harness<'static, DetlabApp>) {
    wait_until(h, "the image", |app| {
        let s = &app.state;
        let Some(p) = s.current_path() else {
            return false;
        };
        s.workspace.doc.is_some()
            && matches!(
                s.workspace.loader.as_ref().and_then(|l| l.get(&p)),
                Some(ImageSlot::Ready { .. })
            )
    });
}

/// Waits until the label thread has carried out every read and write asked for.
fn wait_for_labels(h: &mut Harness<'static, DetlabApp>) {
    h.run_steps(1); // the frame that handles the input asks for them
    wait_until(h, "the label files", |app| {
        !app.state.workspace.labels.busy()
    });
}

fn screen(h: &Harness<'static, DetlabApp>, x: f64, y: f64) -> Pos2 {
    let v = &h.state().state.ui.view;
    v.origin + egui::vec2(x as f32 * v.zoom, y as f32 * v.zoom)
}

fn drag(h: &mut Harness<'static, DetlabApp>, a: Pos2, b: Pos2) {
    h.hover_at(a);
    h.run_steps(1);
    h.drag_at(a);
    h.run_steps(1);
    h.hover_at(a + (b - a) * 0.5);
    h.run_steps(1);
    h.hover_at(b);
    h.run_steps(1);
    h.drop_at(b);
    h.run_steps(2);
}

fn draw_box(h: &mut Harness<'static, DetlabApp>, b: [f64; 4]) {
    h.key_press(Key::W);
    h.run_steps(1);
    let (a, z) = (screen(h, b[0], b[1]), screen(h, b[2], b[3]));
    drag(h, a, z);
}

fn boxes(h: &Harness<'static, DetlabApp>) -> Vec<(String, BoxXyxy)> {
    h.state()
        .state
        .workspace
        .doc
        .as_ref()
        .unwrap()
        .annotation
        .boxes
        .iter()
        .map(|b| (b.class_name.clone(), b.bbox))
        .collect()
}

fn xml(f: &Fixture, index: usize) -> PathBuf {
    f.images.join(format!("shelf_{:04}.xml", index + 1))
}

#[test]
fn drawing_gives_image_pixel_coordinates_at_several_zoom_levels() {
    let f = fixture(3);
    let mut h = harness(&f, true);
    draw_box(&mut h, [20.0, 30.0, 120.0, 200.0]);
    assert_eq!(
        boxes(&h),
        [("Cola".to_string(), BoxXyxy::new(20.0, 30.0, 120.0, 200.0))]
    );

    for zoom in [2.0f32, 0.5] {
        h.state_mut().state.ui.view.fit = Fit::Manual;
        h.state_mut().state.ui.view.zoom = zoom;
        h.state_mut().state.ui.view.pan = egui::vec2(10.0, 5.0);
        h.run_steps(2);
        let before = boxes(&h).len();
        draw_box(&mut h, [40.0, 50.0, 90.0, 110.0]);
        let all = boxes(&h);
        assert_eq!(all.len(), before + 1, "zoom {zoom}");
        let b = all.last().unwrap().1;
        let tol = 1.0 / zoom as f64 + 0.5;
        for (got, want) in [(b.x1, 40.0), (b.y1, 50.0), (b.x2, 90.0), (b.y2, 110.0)] {
            assert!((got - want).abs() <= tol, "zoom {zoom}: {b:?}");
        }
    }
}

/// Where the image is on screen, found in the rendered frame (not from the app's view
/// transform): the bounding rectangle of the magenta pixels, in points.
fn magenta_rect(h: &mut Harness<'static, DetlabApp>) -> egui::Rect {
    let frame = h.render().expect("render the frame");
    let (mut min, mut max) = ((u32::MAX, u32::MAX), (0, 0));
    for (x, y, p) in frame.enumerate_pixels() {
        if p[0] > 200 && p[1] < 80 && p[2] > 200 {
            min = (min.0.min(x), min.1.min(y));
            max = (max.0.max(x), max.1.max(y));
        }
    }
    assert!(min.0 <= max.0, "no magenta pixel on screen");
    let ppp = h.ctx.pixels_per_point();
    egui::Rect::from_min_max(
        egui::pos2(min.0 as f32, min.1 as f32) / ppp,
        egui::pos2(max.0 as f32 + 1.0, max.1 as f32 + 1.0) / ppp,
    )
}

/// The drawing path checked against an independent view: a plain magenta image is found
/// in the rendered frame, and a drag at screen points computed from that rectangle alone
/// must give the expected image-pixel box — so a view-transform bug that both the canvas
/// and the tests' `screen()` share cannot cancel out.
#[test]
fn drawing_lands_where_the_image_is_rendered() {
    let f = fixture(1);
    image::RgbImage::from_pixel(320, 240, image::Rgb([255, 0, 255]))
        .save(f.images.join("shelf_0001.jpg"))
        .unwrap();
    let mut h = harness(&f, true);
    for zoom in [None, Some(1.5f32)] {
        if let Some(zoom) = zoom {
            h.state_mut().state.ui.view.fit = Fit::Manual;
            h.state_mut().state.ui.view.zoom = zoom;
            h.state_mut().state.ui.view.pan = egui::vec2(10.0, 5.0);
            h.run_steps(2);
        }
        let shown = magenta_rect(&mut h);
        let scale = shown.width() / 320.0;
        assert!(
            (shown.height() / 240.0 - scale).abs() < 0.02,
            "the image keeps its aspect ratio: {shown:?}"
        );
        let at = |x: f32, y: f32| shown.min + egui::vec2(x, y) * scale;
        let before = boxes(&h).len();
        h.key_press(Key::W);
        h.run_steps(1);
        drag(&mut h, at(40.0, 30.0), at(120.0, 100.0));
        let all = boxes(&h);
        assert_eq!(all.len(), before + 1, "zoom {zoom:?}");
        let b = all.last().unwrap().1;
        let tol = 1.0 / scale as f64 + 1.0;
        for (got, want) in [(b.x1, 40.0), (b.y1, 30.0), (b.x2, 120.0), (b.y2, 100.0)] {
            assert!(
                (got - want).abs() <= tol,
                "zoom {zoom:?}: {b:?} on {shown:?}"
            );
        }
    }
}

#[test]
fn move_resize_undo_redo_and_number_key_relabel() {
    let f = fixture(2);
    let mut h = harness(&f, true);
    draw_box(&mut h, [50.0, 50.0, 150.0, 150.0]);
    // Move by dragging the inside.
    let (a, b) = (screen(&h, 100.0, 100.0), screen(&h, 120.0, 90.0));
    drag(&mut h, a, b);
    let moved = boxes(&h)[0].1;
    assert!(
        (moved.x1 - 70.0).abs() <= 1.0 && (moved.y1 - 40.0).abs() <= 1.0,
        "{moved:?}"
    );
    // Resize by dragging the right edge.
    let mid_y = (moved.y1 + moved.y2) / 2.0;
    let (a, b) = (
        screen(&h, moved.x2, mid_y),
        screen(&h, moved.x2 + 30.0, mid_y),
    );
    drag(&mut h, a, b);
    let resized = boxes(&h)[0].1;
    assert!(
        (resized.x2 - (moved.x2 + 30.0)).abs() <= 1.0 && (resized.x1 - moved.x1).abs() < 1e-9,
        "{resized:?}"
    );
    // Undo twice gets back to the drawn box; redo re-applies.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run_steps(1);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run_steps(1);
    assert_eq!(boxes(&h)[0].1, BoxXyxy::new(50.0, 50.0, 150.0, 150.0));
    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
    h.run_steps(1);
    assert_eq!(boxes(&h)[0].1, moved);
    // Number key 2 relabels the selected box to the second class.
    h.key_press(Key::Num2);
    h.run_steps(1);
    assert_eq!(boxes(&h)[0].0, "Sprite");
    // Delete removes it; Ctrl+Z brings it back.
    h.key_press(Key::Delete);
    h.run_steps(1);
    assert!(boxes(&h).is_empty());
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run_steps(1);
    assert_eq!(boxes(&h).len(), 1);
}

#[test]
fn autosave_on_d_and_on_file_list_click_and_verify() {
    let f = fixture(4);
    let mut h = harness(&f, true);
    draw_box(&mut h, [10.0, 10.0, 60.0, 90.0]);
    h.key_press(Key::D);
    wait_for_labels(&mut h);
    let saved = voc::read(&xml(&f, 0)).expect("autosaved on d");
    assert_eq!(saved.boxes.len(), 1);
    assert_eq!(h.state().state.workspace.current, Some(1));
    wait_for_image(&mut h);

    draw_box(&mut h, [30.0, 30.0, 80.0, 80.0]);
    h.get_by_label("shelf_0004.jpg").click();
    wait_for_labels(&mut h);
    assert_eq!(h.state().state.workspace.current, Some(3));
    assert_eq!(
        voc::read(&xml(&f, 1))
            .expect("autosaved on list click")
            .boxes
            .len(),
        1
    );

    wait_for_image(&mut h);
    h.key_press(Key::Space);
    wait_for_labels(&mut h);
    let text = std::fs::read_to_string(xml(&f, 3)).unwrap();
    assert!(text.starts_with("<annotation verified=\"yes\">"), "{text}");
    h.key_press(Key::Space);
    wait_for_labels(&mut h);
    assert!(std::fs::read_to_string(xml(&f, 3))
        .unwrap()
        .starts_with("<annotation>\n"));
}

#[test]
fn a_failed_autosave_keeps_the_labels_until_a_save_succeeds() {
    let f = fixture(3);
    let mut h = harness(&f, true);
    // A folder where the label file should go: the atomic rename onto it fails.
    std::fs::create_dir(xml(&f, 0)).unwrap();
    draw_box(&mut h, [10.0, 10.0, 60.0, 90.0]);
    h.key_press(Key::D);
    wait_for_labels(&mut h);
    wait_for_image(&mut h);
    assert_eq!(h.state().state.workspace.current, Some(1));
    let error = h.state().state.error.clone().unwrap_or_default();
    assert!(error.starts_with("not saved"), "{error}");
    assert_eq!(h.state().state.workspace.unsaved.len(), 1);

    // Back on the image: its box is there, still to be saved; no read replaced it.
    h.key_press(Key::A);
    wait_for_labels(&mut h);
    wait_for_image(&mut h);
    assert_eq!(boxes(&h).len(), 1);
    assert!(h.state().state.workspace.doc.as_ref().unwrap().is_dirty());

    // Once the way is clear, leaving saves it.
    std::fs::remove_dir(xml(&f, 0)).unwrap();
    h.key_press(Key::D);
    wait_for_labels(&mut h);
    assert_eq!(voc::read(&xml(&f, 0)).expect("saved").boxes.len(), 1);
    assert!(h.state().state.workspace.unsaved.is_empty());
}

#[test]
fn move_to_trash_removes_the_image_and_shows_the_next_one() {
    let f = fixture(3);
    // The freedesktop trash of this test: under its own temporary folder.
    let data_home = f.images.parent().unwrap().join("data");
    std::env::set_var("XDG_DATA_HOME", &data_home);
    let mut h = harness(&f, true);
    let first = h.state().state.current_path().unwrap();
    h.state_mut().state.ui.confirm_delete = Some(first.clone());
    h.run_steps(3); // a new window takes a sizing pass
    h.get_by_label("Move to trash").click();
    h.run_steps(1);
    wait_until(&mut h, "the trash", |app| app.state.jobs.trash.is_none());
    wait_for_image(&mut h);
    let s = &h.state().state;
    assert!(s.error.is_none(), "{:?}", s.error);
    assert!(!first.exists());
    let name = first.file_name().unwrap();
    assert!(data_home.join("Trash/files").join(name).is_file());
    assert_eq!(
        (s.workspace.image_count(), s.workspace.current),
        (2, Some(0))
    );
    assert_ne!(s.current_path().unwrap(), first);
}

#[test]
fn settings_are_written_in_the_background() {
    let f = fixture(1);
    let mut h = harness(&f, false);
    h.get_by_label("Use default label").click();
    h.run_steps(1);
    assert!(h.state().state.settings.single_class_mode);
    let on_disk = |_: &DetlabApp| Settings::load(&f.settings).0.single_class_mode;
    wait_until(&mut h, "settings.json", on_disk);
    h.get_by_label("Use default label").click();
    h.run_steps(1);
    h.state_mut().state.finish_writes(); // what closing the window does
    assert!(!Settings::load(&f.settings).0.single_class_mode);
}

#[test]
fn ctrl_v_copies_the_previous_images_boxes_once() {
    let f = fixture(2);
    let mut h = harness(&f, true);
    draw_box(&mut h, [10.0, 10.0, 60.0, 90.0]);
    h.key_press(Key::D);
    wait_for_labels(&mut h);
    wait_for_image(&mut h);
    assert!(boxes(&h).is_empty());
    // Read from the file just saved, on the label thread; a second copy adds nothing.
    // Once as the key, once as the paste event that egui-winit makes of Ctrl+V where its
    // clipboard shortcuts are on.
    h.key_press_modifiers(Modifiers::COMMAND, Key::V);
    wait_for_labels(&mut h);
    h.event(egui::Event::Paste("anything".into()));
    wait_for_labels(&mut h);
    let note = h.state().state.messages.join("\n");
    assert_eq!(note.matches("copied").count(), 2, "{note}");
    let copied = boxes(&h);
    assert_eq!(copied.len(), 1, "{copied:?}");
    assert_eq!(copied[0].1, BoxXyxy::new(10.0, 10.0, 60.0, 90.0));
}

#[test]
fn the_folders_class_file_sets_the_class_order() {
    let f = fixture(1);
    std::fs::write(f.images.join("predefined_classes.txt"), "Pepsi\nFanta\n").unwrap();
    let mut h = harness(&f, true);
    // Read on the scan thread, before the images are listed.
    let names = h.state().state.workspace.classes.names().to_vec();
    assert_eq!(names[..2], ["Pepsi", "Fanta"], "{names:?}");
    // Single-class mode labels new boxes with the first class.
    h.state_mut().state.settings.default_label = None;
    draw_box(&mut h, [10.0, 10.0, 60.0, 60.0]);
    assert_eq!(boxes(&h)[0].0, "Pepsi");
}

#[test]
fn label_picker_takes_a_typed_class() {
    let f = fixture(2);
    let mut h = harness(&f, false);
    draw_box(&mut h, [10.0, 10.0, 50.0, 50.0]);
    assert!(
        h.state().state.ui.pending_label.is_some(),
        "the label picker opens"
    );
    // The box stays drawn while the picker is open, and the picker opens beside it.
    let (top_left, bottom_right) = (screen(&h, 10.0, 10.0), screen(&h, 50.0, 50.0));
    let frame = h.render().expect("render the frame");
    let edge = frame.get_pixel(
        top_left.x as u32 + 1,
        ((top_left.y + bottom_right.y) / 2.0) as u32,
    );
    assert!(
        edge[1] > 200 && edge[0] < 80 && edge[2] < 80,
        "the pending box is drawn: {edge:?}"
    );
    // The rightmost text field (the file list's filter is on the left).
    let field = h
        .get_all_by_role(Role::TextInput)
        .map(|n| n.rect())
        .max_by(|a, b| a.left().total_cmp(&b.left()))
        .unwrap();
    assert!(
        field.left() > bottom_right.x && field.left() < bottom_right.x + 120.0,
        "the picker is right of the box: {field:?}, box ends at {bottom_right:?}"
    );
    assert!(
        (field.top() - top_left.y).abs() < 80.0,
        "{field:?} vs {top_left:?}"
    );
    // Typed as a user types: text events to the field the picker focuses.
    h.event(egui::Event::Text("Pepsi".into()));
    h.run_steps(1);
    assert_eq!(
        h.state().state.ui.pending_label.as_ref().unwrap().text,
        "Pepsi"
    );
    // A new class needs an explicit confirmation: the first Enter asks, the second adds it.
    h.key_press(Key::Enter);
    h.run_steps(2);
    assert!(boxes(&h).is_empty(), "a new class is not created at once");
    assert!(
        h.state()
            .state
            .ui
            .pending_label
            .as_ref()
            .unwrap()
            .confirm_new
    );
    h.key_press(Key::Enter);
    h.run_steps(2);
    assert_eq!(
        boxes(&h),
        [("Pepsi".to_string(), BoxXyxy::new(10.0, 10.0, 50.0, 50.0))]
    );
    assert!(h.state().state.workspace.classes.id("Pepsi").is_some());
}

#[test]
fn broken_xml_is_shown_and_never_overwritten() {
    let f = fixture(3);
    let broken = b"<annotation><filename>shelf_0002.jpg</filename><object><name>Cola</na";
    std::fs::write(xml(&f, 1), broken).unwrap();
    let mut h = harness(&f, true);
    h.key_press(Key::D);
    h.run_steps(2);
    wait_for_image(&mut h);
    let err = h
        .state()
        .state
        .workspace
        .doc
        .as_ref()
        .unwrap()
        .load_error
        .clone();
    assert!(
        err.as_deref().is_some_and(|e| e.contains("shelf_0002.xml")),
        "{err:?}"
    );
    // Edits are refused on the canvas, Space does not save, and leaving keeps the file.
    draw_box(&mut h, [10.0, 10.0, 60.0, 60.0]);
    assert!(boxes(&h).is_empty(), "the canvas refused the box");
    h.key_press(Key::Space);
    h.run_steps(1);
    assert!(
        !h.state()
            .state
            .workspace
            .doc
            .as_ref()
            .unwrap()
            .annotation
            .verified
    );
    h.state_mut().state.error = None;
    h.key_press(Key::D);
    wait_for_labels(&mut h);
    wait_for_image(&mut h);
    h.key_press(Key::A);
    wait_for_labels(&mut h);
    wait_for_image(&mut h);
    // Every write asked for is on disk now (the label thread's barrier, then the other
    // writers), so an unchanged file means no write was made.
    h.state_mut().state.finish_writes();
    assert_eq!(std::fs::read(xml(&f, 1)).unwrap(), broken);
}

#[test]
fn export_dialog_writes_coco() {
    let f = fixture(4);
    let mut h = harness(&f, true);
    draw_box(&mut h, [10.0, 10.0, 60.0, 90.0]);
    let out = f.images.parent().unwrap().join("coco-out");
    // Ctrl+Shift+E (Ctrl+E edits a label, as in LabelImg).
    h.key_press_modifiers(CTRL_SHIFT, Key::E);
    h.run_steps(2);
    h.state_mut().state.ui.export_form.as_mut().unwrap().out_dir =
        out.to_string_lossy().into_owned();
    h.run_steps(1);
    h.get_by_label("Export").click();
    h.run_steps(1);
    wait_until(&mut h, "the export", |app| {
        app.state.jobs.export_result.is_some()
    });
    let summary = h.state().state.jobs.export_result.clone().unwrap().unwrap();
    assert_eq!(summary.total_images(), 4);
    let train =
        detlab::formats::coco::CocoDataset::read(&out.join("instances_train.json")).unwrap();
    let val = detlab::formats::coco::CocoDataset::read(&out.join("instances_val.json")).unwrap();
    assert_eq!(train.images.len() + val.images.len(), 4);
    assert_eq!(
        train.annotations.len() + val.annotations.len(),
        1,
        "the drawn box was saved before the export"
    );
    let order = std::fs::read_to_string(out.join("labels.txt")).unwrap();
    let categories: Vec<&str> = train.categories.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(order.lines().collect::<Vec<_>>(), categories, "{order}");
    assert_eq!(categories[..3], ["Cola", "Sprite", "Fanta"]);
}

/// Where no native file dialog can open (no portal, no zenity: forced here with
/// `DETLAB_BUILTIN_DIALOG`), File → Open Dir… shows detlab's own dialog, and a folder
/// chosen in it opens.
#[test]
fn open_dir_falls_back_to_the_builtin_dialog() {
    std::env::set_var("DETLAB_BUILTIN_DIALOG", "1");
    let f = fixture(2);
    let settings = f.settings.clone();
    let mut h = Harness::builder()
        .with_size(egui::vec2(1200.0, 800.0))
        .build_eframe(move |cc| {
            DetlabApp::new(
                &cc.egui_ctx,
                AppOptions {
                    no_model: true,
                    ..AppOptions::default()
                },
                settings,
            )
        });
    h.run_steps(2);
    h.key_press_modifiers(Modifiers::COMMAND, Key::U);
    h.run_steps(1);
    wait_until(&mut h, "the built-in dialog", |app| {
        app.state.ui.file_browser.is_some()
    });
    let note = h.state().state.messages.join("\n");
    assert!(note.contains("DETLAB_BUILTIN_DIALOG"), "{note}");
    // Type the folder into the dialog's path field (it shows the working folder) and
    // press Enter, as a user would; then Open.
    let cwd = std::env::current_dir()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    h.get(By::new().role(Role::TextInput).value(&cwd)).click();
    h.run_steps(1);
    h.key_press_modifiers(Modifiers::COMMAND, Key::A);
    h.event(egui::Event::Text(f.images.to_string_lossy().into_owned()));
    h.run_steps(1);
    h.key_press(Key::Enter);
    h.run_steps(1);
    wait_until(&mut h, "the folder listing", |app| {
        let b = app.state.ui.file_browser.as_ref().unwrap();
        b.dir == f.images && b.entries.as_ref().is_ok_and(|e| e.is_empty())
    });
    h.get_by_label("Open").click();
    h.run_steps(1);
    wait_for_image(&mut h);
    let s = &h.state().state;
    assert!(s.ui.file_browser.is_none());
    assert_eq!(s.workspace.image_count(), 2);
    assert_eq!(
        s.workspace
            .session
            .as_ref()
            .unwrap()
            .root
            .canonicalize()
            .unwrap(),
        f.images.canonicalize().unwrap()
    );
}

// ---- The labeller's hands (issue 20) -------------------------------------------------

/// Types `text` as a key press with its text event, as a keyboard does.
fn type_char(h: &mut Harness<'static, DetlabApp>, key: Key, text: &str) {
    h.key_down(key);
    h.event(egui::Event::Text(text.into()));
    h.run_steps(1);
    h.key_up(key);
    h.run_steps(2);
}

fn click_with(h: &mut Harness<'static, DetlabApp>, pos: Pos2, modifiers: Modifiers) {
    h.hover_at(pos);
    h.event(egui::Event::ModifiersChanged(modifiers));
    h.run_steps(1);
    for pressed in [true, false] {
        h.event(egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers,
        });
        h.run_steps(1);
    }
    h.event(egui::Event::ModifiersChanged(Modifiers::NONE));
    h.run_steps(1);
}

const CTRL_SHIFT: Modifiers = Modifiers {
    shift: true,
    ..Modifiers::COMMAND
};

#[test]
fn digit_in_an_empty_label_dialog_picks_the_nth_class_and_makes_no_class() {
    let f = fixture(1);
    std::fs::write(f.images.join("predefined_classes.txt"), "Cola\nSprite\n").unwrap();
    let mut h = harness(&f, false);
    h.state_mut().state.settings.default_label = None;
    draw_box(&mut h, [10.0, 10.0, 50.0, 50.0]);
    assert_eq!(h.state().state.ui.pending_label.as_ref().unwrap().text, "");
    type_char(&mut h, Key::Num2, "2");
    assert_eq!(
        boxes(&h),
        [("Sprite".to_string(), BoxXyxy::new(10.0, 10.0, 50.0, 50.0))]
    );
    assert!(h.state().state.workspace.classes.id("2").is_none());
    assert!(h.state().state.ui.pending_label.is_none());
}

#[test]
fn enter_never_takes_a_class_that_merely_starts_with_the_typed_text() {
    let f = fixture(1);
    std::fs::write(
        f.images.join("predefined_classes.txt"),
        "Cola Zero\nSprite\n",
    )
    .unwrap();
    let mut h = harness(&f, false);
    h.state_mut().state.settings.default_label = None;
    draw_box(&mut h, [10.0, 10.0, 50.0, 50.0]);
    h.event(egui::Event::Text("Cola".into()));
    h.run_steps(1);
    h.key_press(Key::Enter);
    h.run_steps(2);
    assert!(
        boxes(&h).is_empty(),
        "not taken as Cola Zero: {:?}",
        boxes(&h)
    );
    h.key_press(Key::Enter);
    h.run_steps(2);
    assert_eq!(boxes(&h)[0].0, "Cola");
    // The fuzzy filter still finds a class, and the arrow keys highlight it for Enter.
    draw_box(&mut h, [60.0, 10.0, 100.0, 50.0]);
    h.state_mut()
        .state
        .ui
        .pending_label
        .as_mut()
        .unwrap()
        .text
        .clear();
    h.run_steps(1);
    h.event(egui::Event::Text("czr".into()));
    h.run_steps(1);
    h.key_press(Key::ArrowDown);
    h.run_steps(1);
    h.key_press(Key::Enter);
    h.run_steps(2);
    assert_eq!(boxes(&h)[1].0, "Cola Zero");
}

#[test]
fn labelimg_keys_do_what_they_do_in_labelimg() {
    let f = fixture(2);
    let mut h = harness(&f, true);
    draw_box(&mut h, [10.0, 10.0, 60.0, 60.0]);
    // Ctrl+Shift+D: delete the image (asks first), never a duplicate box.
    h.key_press_modifiers(CTRL_SHIFT, Key::D);
    h.run_steps(2);
    assert_eq!(boxes(&h).len(), 1, "Ctrl+Shift+D duplicated the box");
    assert!(h.state().state.ui.confirm_delete.is_some());
    h.state_mut().state.ui.confirm_delete = None;
    h.run_steps(1);
    // Ctrl+E edits the selected box's label, it does not open the export.
    h.key_press_modifiers(Modifiers::COMMAND, Key::E);
    h.run_steps(2);
    let s = &h.state().state;
    assert!(s.ui.export_form.is_none());
    assert_eq!(s.ui.pending_label.as_ref().unwrap().targets, [0]);
    h.key_press(Key::Escape);
    h.run_steps(2);
    // Ctrl+Y cycles the save format, it is not redo.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Y);
    h.run_steps(2);
    assert_eq!(
        h.state().state.settings.format,
        detlab::dataset::LabelFormat::Yolo
    );
    h.key_press_modifiers(Modifiers::COMMAND, Key::Y);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Y);
    h.run_steps(2);
    assert_eq!(
        h.state().state.settings.format,
        detlab::dataset::LabelFormat::Voc
    );
    // Ctrl++ / Ctrl+- zoom the image; the interface keeps its scale.
    let zoom = h.state().state.ui.view.zoom;
    h.key_press_modifiers(Modifiers::COMMAND, Key::Plus);
    h.run_steps(2);
    let ctx = h.ctx.clone();
    assert_eq!(ctx.zoom_factor(), 1.0, "the interface was zoomed");
    let zoomed = h.state().state.ui.view.zoom;
    assert!((zoomed / zoom - 1.25).abs() < 0.01, "{zoom} → {zoomed}");
    h.key_press_modifiers(Modifiers::COMMAND, Key::Minus);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Equals);
    h.run_steps(2);
    assert_eq!(ctx.zoom_factor(), 1.0);
    // Ctrl+Shift+wheel changes the brightness, not the zoom.
    let zoom = h.state().state.ui.view.zoom;
    let centre = screen(&h, 100.0, 100.0);
    h.hover_at(centre);
    h.run_steps(1);
    h.event_modifiers(
        egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Line,
            delta: egui::vec2(0.0, 2.0),
            modifiers: CTRL_SHIFT,
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Wheel,
        },
        CTRL_SHIFT,
    );
    h.run_steps(3);
    let v = h.state().state.ui.view;
    assert!(v.brightness > 0.0, "brightness {}", v.brightness);
    assert_eq!(v.zoom, zoom);
    // Ctrl+Shift+R: draw squares, remembered; squares take the shorter side.
    h.key_press_modifiers(CTRL_SHIFT, Key::R);
    h.run_steps(2);
    assert!(h.state().state.settings.draw_squares);
    draw_box(&mut h, [100.0, 100.0, 200.0, 160.0]);
    assert_eq!(boxes(&h)[1].1, BoxXyxy::new(100.0, 100.0, 160.0, 160.0));
    // Ctrl+Shift+P: names on boxes; Ctrl+Shift+L: the labels panel.
    h.key_press_modifiers(CTRL_SHIFT, Key::P);
    h.key_press_modifiers(CTRL_SHIFT, Key::L);
    h.run_steps(2);
    assert!(!h.state().state.settings.show_box_labels);
    assert!(h.state().state.ui.labels_panel_hidden);
}

#[test]
fn shortcuts_that_cannot_act_say_why() {
    let f = fixture(2);
    let mut h = harness(&f, true);
    for (m, k, expect) in [
        (Modifiers::COMMAND, Key::D, "select a box"),
        (Modifiers::COMMAND, Key::E, "select a box"),
        (Modifiers::NONE, Key::Delete, "select a box"),
        (Modifiers::COMMAND, Key::V, "first image"),
    ] {
        h.key_press_modifiers(m, k);
        h.run_steps(2);
        let last = h.state().state.messages.last().cloned().unwrap_or_default();
        assert!(last.contains(expect), "{k:?}: {last:?}");
    }
}

#[test]
fn continuous_drawing_draws_a_box_per_drag() {
    let f = fixture(1);
    let mut h = harness(&f, true);
    h.key_press_modifiers(CTRL_SHIFT, Key::A);
    h.run_steps(2);
    for x in [10.0, 80.0, 150.0] {
        let (a, b) = (screen(&h, x, 20.0), screen(&h, x + 50.0, 80.0));
        drag(&mut h, a, b);
    }
    assert_eq!(boxes(&h).len(), 3, "{:?}", boxes(&h));
    h.key_press(Key::Escape);
    h.run_steps(2);
    assert_eq!(h.state().state.ui.tool, detlab::app::Tool::Edit);
    assert!(!h.state().state.ui.continuous);
}

/// One image with the classes Cola, Sprite, Fanta and three Cola boxes drawn side by side
/// at x = 10, 80 and 150 (50 × 60 image pixels each).
fn three_cola_boxes() -> (Fixture, Harness<'static, DetlabApp>) {
    let f = fixture(1);
    std::fs::write(
        f.images.join("predefined_classes.txt"),
        "Cola\nSprite\nFanta\n",
    )
    .unwrap();
    let mut h = harness(&f, true);
    for x in [10.0, 80.0, 150.0] {
        draw_box(&mut h, [x, 20.0, x + 50.0, 80.0]);
    }
    (f, h)
}

#[test]
fn multi_select_bulk_relabel_and_delete() {
    let (_f, mut h) = three_cola_boxes();
    let p = |h: &Harness<'static, DetlabApp>, x: f64| screen(h, x + 25.0, 50.0);
    let (a, b) = (p(&h, 10.0), p(&h, 80.0));
    click_with(&mut h, a, Modifiers::NONE);
    click_with(&mut h, b, Modifiers::SHIFT);
    assert_eq!(h.state().state.selection(), [0, 1]);
    // Bulk relabel through the label dialog (Ctrl+E), picking class 3 by its digit.
    h.key_press_modifiers(Modifiers::COMMAND, Key::E);
    h.run_steps(2);
    type_char(&mut h, Key::Num3, "3");
    let names: Vec<String> = boxes(&h).into_iter().map(|b| b.0).collect();
    assert_eq!(names, ["Fanta", "Fanta", "Cola"]);
    // Rubber band (Shift+drag on empty canvas) selects the boxes inside it.
    let (from, to) = (screen(&h, 70.0, 5.0), screen(&h, 260.0, 120.0));
    h.event(egui::Event::ModifiersChanged(Modifiers::SHIFT));
    drag(&mut h, from, to);
    h.event(egui::Event::ModifiersChanged(Modifiers::NONE));
    h.run_steps(1);
    assert_eq!(h.state().state.selection(), [1, 2]);
    h.key_press(Key::Delete);
    h.run_steps(2);
    assert_eq!(boxes(&h).len(), 1);
    assert_eq!(boxes(&h)[0].1, BoxXyxy::new(10.0, 20.0, 60.0, 80.0));
}

#[test]
fn the_readme_has_the_keyboard_table_of_the_code() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = detlab::ui::shortcuts::markdown_table();
    assert!(
        readme.contains(&table),
        "README's keyboard table differs from:\n{table}"
    );
}

#[test]
fn a_format_switch_that_leaves_two_label_files_says_so() {
    let f = fixture(2);
    let mut h = harness(&f, true);
    draw_box(&mut h, [10.0, 10.0, 60.0, 60.0]);
    draw_box(&mut h, [80.0, 10.0, 140.0, 60.0]);
    h.key_press_modifiers(Modifiers::COMMAND, Key::S);
    wait_for_labels(&mut h);
    // Switch to YOLO, delete a box, save: the .xml (two boxes) is still read first.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Y);
    h.run_steps(1);
    h.key_press(Key::Delete);
    h.key_press_modifiers(Modifiers::COMMAND, Key::S);
    wait_for_labels(&mut h);
    h.key_press(Key::D);
    wait_for_labels(&mut h);
    wait_for_image(&mut h);
    h.key_press(Key::A);
    wait_for_labels(&mut h);
    wait_for_image(&mut h);
    wait_until(&mut h, "the label format check", |app| {
        app.state.ui.label_formats.is_some()
    });
    let s = &h.state().state;
    let warning =
        s.ui.label_formats
            .as_ref()
            .unwrap()
            .warning(s.settings.format)
            .expect("two label files are reported");
    assert!(
        warning.contains("Pascal VOC, YOLO") && warning.contains("showing Pascal VOC"),
        "{warning}"
    );
}

// ---- Labelling assistants (issue 16) ---------------------------------------------------

/// The exact labels the demo generator wrote for image `index` of [`fixture`]'s folder.
fn generator_labels(index: usize) -> Vec<detlab::dataset::LabelBox> {
    let dir = tempfile::tempdir().unwrap();
    detlab::demo::generate(&detlab::demo::DemoOptions {
        out_dir: dir.path().to_path_buf(),
        images: index + 1,
        seed: 5,
        width: 320,
        height: 240,
    })
    .unwrap();
    voc::read(&dir.path().join(format!("shelf_{:04}.xml", index + 1)))
        .unwrap()
        .boxes
}

/// The exact boxes the demo generator drew on image `index` of [`fixture`]'s folder.
fn generator_boxes(index: usize) -> Vec<BoxXyxy> {
    generator_labels(index)
        .into_iter()
        .map(|b| b.bbox)
        .collect()
}

fn wait_for_assistant(h: &mut Harness<'static, DetlabApp>) {
    h.run_steps(1);
    wait_until(h, "the assistant", |app| !app.state.assist.busy());
}

fn best_iou(b: &BoxXyxy, truth: &[BoxXyxy]) -> f64 {
    truth.iter().map(|t| t.iou(b)).fold(0.0, f64::max)
}

#[test]
fn a_click_in_drawing_mode_boxes_the_object_without_a_model() {
    let f = fixture(1);
    let truth = generator_boxes(0);
    let mut h = harness(&f, true);
    // The largest object: a click on its middle.
    let target = *truth
        .iter()
        .max_by(|a, b| a.area().total_cmp(&b.area()))
        .unwrap();
    let (cx, cy) = target.center();
    h.key_press(Key::W);
    h.run_steps(1);
    let at = screen(&h, cx, cy);
    click_with(&mut h, at, Modifiers::NONE);
    wait_for_assistant(&mut h);
    let got = boxes(&h);
    assert_eq!(got.len(), 1, "{got:?}");
    let iou = got[0].1.iou(&target);
    assert!(
        iou >= 0.9,
        "click-to-box IoU {iou:.3}: {:?} vs {target:?}",
        got[0].1
    );
}

#[test]
fn t_tightens_a_loose_box_onto_the_object() {
    let f = fixture(1);
    let truth = generator_boxes(0);
    let mut h = harness(&f, true);
    let target = *truth
        .iter()
        .max_by(|a, b| a.area().total_cmp(&b.area()))
        .unwrap();
    let pad = (target.width() * 0.12).max(3.0);
    let loose = [
        target.x1 - pad,
        target.y1 - pad * 0.5,
        target.x2 + pad * 0.7,
        target.y2 + 1.0,
    ];
    draw_box(&mut h, loose);
    let before = boxes(&h)[0].1.iou(&target);
    assert!(before < 0.85, "the drawn box is already tight: {before:.3}");
    h.key_press(Key::T);
    wait_for_assistant(&mut h);
    let after = boxes(&h)[0].1.iou(&target);
    assert!(after >= 0.9, "tightened IoU {after:.3} (was {before:.3})");
    // One undo step brings the loose box back.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run_steps(2);
    assert!((boxes(&h)[0].1.iou(&target) - before).abs() < 1e-9);
}

#[test]
fn f_proposes_similar_facings_and_shift_enter_accepts_them() {
    let f = fixture(1);
    let truth = generator_labels(0);
    let mut h = harness(&f, false);
    // Label the first object of the most frequent class, then ask for similar ones.
    let class = truth
        .iter()
        .map(|b| &b.class_name)
        .max_by_key(|c| truth.iter().filter(|b| &b.class_name == *c).count())
        .unwrap()
        .clone();
    let example = truth.iter().find(|b| b.class_name == class).unwrap();
    h.state_mut().state.apply(Command::AddBox {
        bbox: example.bbox,
        label: class.clone(),
    });
    h.run_steps(1);
    h.key_press(Key::F);
    wait_for_assistant(&mut h);
    let proposed = h.state().state.shown_predictions();
    assert!(!proposed.is_empty(), "no proposals");
    assert!(proposed
        .iter()
        .all(|p| p.class_name == class && p.proposal.is_some()));
    h.key_press_modifiers(Modifiers::SHIFT, Key::Enter);
    h.run_steps(2);
    let got = boxes(&h);
    assert_eq!(got.len(), 1 + proposed.len(), "{got:?}");
    assert!(h.state().state.shown_predictions().is_empty());
    let same: Vec<BoxXyxy> = truth
        .iter()
        .filter(|b| b.class_name == class)
        .map(|b| b.bbox)
        .collect();
    // Demo facings of one class differ in size (bottles, cans); the matcher's own
    // quality on identical facings is measured in `assist::similar`'s tests.
    let right = got
        .iter()
        .filter(|(_, b)| best_iou(b, &same) >= 0.85)
        .count();
    assert!(
        right * 3 >= got.len() * 2,
        "{right} of {} accepted boxes match a {class} facing",
        got.len()
    );
}

/// `k` on a dense shelf with one facing of each product labelled: the others are
/// proposed with their classes, mostly right, and Shift+Enter takes them.
#[test]
fn k_proposes_every_facing_of_the_products_labelled_on_the_photo() {
    let f = fixture_made_by(detlab::demo::generate_dense, 1, 4, 1000, 750);
    let truth = voc::read(&xml(&f, 0)).unwrap().boxes;
    std::fs::remove_file(xml(&f, 0)).unwrap();
    let mut h = harness(&f, false);
    let mut labelled: Vec<&detlab::dataset::LabelBox> = Vec::new();
    for b in &truth {
        let several = truth
            .iter()
            .filter(|t| t.class_name == b.class_name)
            .count()
            > 1;
        if several && labelled.iter().all(|l| l.class_name != b.class_name) {
            h.state_mut().state.apply(Command::AddBox {
                bbox: b.bbox,
                label: b.class_name.clone(),
            });
            labelled.push(b);
        }
    }
    h.run_steps(1);
    h.key_press(Key::K);
    wait_for_assistant(&mut h);
    let proposed = h.state().state.shown_predictions();
    let right = proposed
        .iter()
        .filter(|p| {
            truth
                .iter()
                .any(|t| t.class_name == p.class_name && t.bbox.iou(&p.detection.bbox) >= 0.5)
        })
        .count();
    let others = truth.len() - labelled.len();
    println!(
        "k: {} products labelled, {} proposals for {others} other facings, {right} right \
         (IoU >= 0.5, right class)",
        labelled.len(),
        proposed.len()
    );
    assert!(proposed.iter().all(|p| p.proposal.is_some()));
    assert!(
        proposed.len() * 2 >= others,
        "under half the shelf proposed"
    );
    assert!(
        right * 10 >= proposed.len() * 7,
        "{right} of {} right",
        proposed.len()
    );
    h.key_press_modifiers(Modifiers::SHIFT, Key::Enter);
    h.run_steps(2);
    assert!(boxes(&h).len() * 10 >= (labelled.len() + right) * 9);
}

// ---- Dense shelves: 500 boxes, 60 classes ---------------------------------------------

/// The open label picker's typed text.
fn picker_text(h: &mut Harness<'static, DetlabApp>, text: &str) {
    h.state_mut()
        .state
        .ui
        .pending_label
        .as_mut()
        .expect("the label picker is open")
        .text
        .clear();
    h.run_steps(1);
    if !text.is_empty() {
        h.event(egui::Event::Text(text.into()));
    }
    h.run_steps(2);
}

#[test]
fn label_picker_counts_boxes_lists_recent_classes_and_filters_fuzzily() {
    let f = fixture(1);
    std::fs::write(
        f.images.join("predefined_classes.txt"),
        "coke-zero\ncoke\nsprite\nfanta\n",
    )
    .unwrap();
    let mut h = harness(&f, false);
    h.state_mut().state.settings.default_label = None;
    draw_box(&mut h, [10.0, 10.0, 50.0, 50.0]);
    assert!(
        h.query_by_label("Recent:").is_none(),
        "nothing was assigned yet"
    );
    type_char(&mut h, Key::Num1, "1");
    // The next box's picker: the class just assigned is in the Recent row, and the class
    // list counts the image's boxes of each class.
    draw_box(&mut h, [60.0, 10.0, 100.0, 50.0]);
    assert!(h.query_by_label("Recent:").is_some(), "no Recent row");
    // One image: the folder's count is the image's ("here · folder").
    assert!(h.query_by_label("1 · 1").is_some(), "no count of coke-zero");
    // Typing filters fuzzily and hides the Recent row.
    picker_text(&mut h, "cok");
    assert!(h.query_by_label("Recent:").is_none());
    assert!(h.query_by_label("coke").is_some());
    assert!(
        h.query_by_label("sprite").is_none(),
        "sprite is not a match"
    );
    picker_text(&mut h, "spt");
    h.key_press(Key::ArrowDown);
    h.run_steps(1);
    h.key_press(Key::Enter);
    h.run_steps(2);
    assert_eq!(boxes(&h)[1].0, "sprite");
    assert_eq!(
        h.state().state.ui.recent_classes.names(),
        ["sprite", "coke-zero"]
    );
    // With nothing typed: digits stay in class-list order, counts of both classes, and a
    // click in the Recent row assigns the class.
    draw_box(&mut h, [110.0, 10.0, 150.0, 50.0]);
    picker_text(&mut h, "");
    assert!(h.query_by_label("1 coke-zero").is_some());
    assert!(h.query_by_label("3 sprite").is_some());
    assert_eq!(h.query_all_by_label("1 · 1").count(), 2);
    h.get_by_label("coke-zero").click();
    h.run_steps(2);
    let names: Vec<String> = boxes(&h).into_iter().map(|b| b.0).collect();
    assert_eq!(names, ["coke-zero", "sprite", "coke-zero"]);
    assert_eq!(
        h.state().state.ui.recent_classes.names(),
        ["coke-zero", "sprite"]
    );
}

#[test]
fn label_picker_counts_the_folders_boxes_of_each_class() {
    let f = fixture(3);
    std::fs::write(
        f.images.join("predefined_classes.txt"),
        "Cola\nSprite\nFanta\n",
    )
    .unwrap();
    // Image 2: two Cola and a Sprite; image 3: three Cola; image 1 (shown first): none.
    let write = |index: usize, classes: &[&str]| {
        let image = f.images.join(format!("shelf_{:04}.jpg", index + 1));
        let mut ann = detlab::dataset::ImageAnnotation::new(
            image.file_name().unwrap().to_string_lossy(),
            320,
            240,
        );
        for (k, c) in classes.iter().enumerate() {
            let x = 200.0 + 30.0 * k as f64;
            ann.boxes.push(detlab::dataset::LabelBox::new(
                *c,
                BoxXyxy::new(x, 150.0, x + 25.0, 200.0),
            ));
        }
        voc::write(&xml(&f, index), &ann, &image).unwrap();
    };
    write(1, &["Cola", "Cola", "Sprite"]);
    write(2, &["Cola", "Cola", "Cola"]);
    let mut h = harness(&f, false);
    h.state_mut().state.settings.default_label = None;
    wait_until(&mut h, "the folder scan", |app| {
        app.state
            .workspace
            .session
            .as_ref()
            .is_some_and(|s| !s.scanning)
    });
    assert_eq!(h.state().state.workspace.current, Some(0));
    // "here · folder": the folder's counts come from the scan, not from this image.
    draw_box(&mut h, [10.0, 10.0, 50.0, 50.0]);
    assert!(
        h.query_by_label("0 · 5").is_some(),
        "no folder count of Cola"
    );
    assert!(
        h.query_by_label("0 · 1").is_some(),
        "no folder count of Sprite"
    );
    type_char(&mut h, Key::Num1, "1");
    // The new box counts at once (the image's live labels), before any save. (The picker
    // now starts with the class just assigned typed: clear it to list every class.)
    draw_box(&mut h, [60.0, 10.0, 100.0, 50.0]);
    picker_text(&mut h, "");
    assert!(
        h.query_by_label("1 · 6").is_some(),
        "the new Cola box is not counted"
    );
    assert!(h.query_by_label("0 · 5").is_none());
    assert!(h.query_by_label("0 · 1").is_some());
    h.key_press(Key::Escape);
    h.run_steps(2);
    assert!(h.state().state.ui.pending_label.is_none());
    // Saved on the way to image 2: the box stays counted (now from its label file), and
    // image 2 counts with its own labels.
    h.key_press(Key::D);
    wait_for_labels(&mut h);
    wait_for_image(&mut h);
    assert_eq!(h.state().state.workspace.current, Some(1));
    draw_box(&mut h, [10.0, 10.0, 50.0, 50.0]);
    picker_text(&mut h, "");
    assert!(h.query_by_label("2 · 6").is_some(), "Cola after the save");
    assert!(h.query_by_label("1 · 1").is_some(), "Sprite on image 2");
    type_char(&mut h, Key::Num2, "2");
    draw_box(&mut h, [60.0, 10.0, 100.0, 50.0]);
    picker_text(&mut h, "");
    assert!(h.query_by_label("2 · 2").is_some(), "the new Sprite box");
    assert!(h.query_by_label("2 · 6").is_some());
}

#[test]
fn bulk_relabel_by_class_key_and_in_the_picker() {
    let (_f, mut h) = three_cola_boxes();
    let p = |h: &Harness<'static, DetlabApp>, x: f64| screen(h, x + 25.0, 50.0);
    let (a, c) = (p(&h, 10.0), p(&h, 150.0));
    click_with(&mut h, a, Modifiers::NONE);
    click_with(&mut h, c, Modifiers::COMMAND);
    assert_eq!(h.state().state.selection(), [0, 2]);
    let names = |h: &Harness<'static, DetlabApp>| -> Vec<String> {
        boxes(h).into_iter().map(|b| b.0).collect()
    };
    // The class key, no dialog: every selected box.
    type_char(&mut h, Key::Num2, "2");
    assert_eq!(names(&h), ["Sprite", "Cola", "Sprite"]);
    // The picker (Ctrl+E): a click on a class.
    h.key_press_modifiers(Modifiers::COMMAND, Key::E);
    h.run_steps(2);
    assert!(h.query_by_label("2 boxes selected").is_some());
    h.get_by_label("3 Fanta").click();
    h.run_steps(2);
    assert_eq!(names(&h), ["Fanta", "Cola", "Fanta"]);
    assert!(h.state().state.ui.pending_label.is_none());
    // The picker's Recent row.
    h.key_press_modifiers(Modifiers::COMMAND, Key::E);
    h.run_steps(2);
    h.get_by_label("Sprite").click();
    h.run_steps(2);
    assert_eq!(names(&h), ["Sprite", "Cola", "Sprite"]);
}

/// Whether the rendered pixel at `p` (points) has the colour `c`.
fn pixel_is(frame: &image::RgbaImage, p: Pos2, c: egui::Color32) -> bool {
    let px = frame.get_pixel(p.x as u32, p.y as u32);
    [px[0], px[1], px[2]]
        .iter()
        .zip([c.r(), c.g(), c.b()])
        .all(|(a, b)| a.abs_diff(b) <= 12)
}

#[test]
fn small_boxes_name_their_class_only_when_hovered() {
    let f = fixture(1);
    let mut h = harness(&f, true);
    let zoom = h.state().state.ui.view.zoom;
    // Big: 60 px tall. Small: 10 points tall on screen, under the 14-point threshold.
    let small_h = (10.0 / zoom as f64).max(2.0);
    for (label, bbox) in [
        ("Sprite", BoxXyxy::new(20.0, 40.0, 80.0, 100.0)),
        ("Cola", BoxXyxy::new(150.0, 60.0, 230.0, 60.0 + small_h)),
    ] {
        let command = Command::AddBox {
            bbox,
            label: label.into(),
        };
        h.state_mut().state.apply(command);
    }
    h.state_mut().state.apply(Command::SelectBox(None));
    let colors = h.state().state.settings.class_colors.clone();
    let color = |name: &str| detlab::ui::colors::class_color(name, &colors);
    // A point inside where each name's background would be: just above the box's
    // top-left corner.
    let tag =
        |h: &Harness<'static, DetlabApp>, x: f64, y: f64| screen(h, x, y) + egui::vec2(1.5, -8.0);
    h.hover_at(Pos2::new(2.0, 2.0));
    h.run_steps(2);
    let frame = h.render().expect("render the frame");
    assert!(
        pixel_is(&frame, tag(&h, 20.0, 40.0), color("Sprite")),
        "the big box shows its name"
    );
    assert!(
        !pixel_is(&frame, tag(&h, 150.0, 60.0), color("Cola")),
        "the small box shows no name"
    );
    h.hover_at(screen(&h, 190.0, 60.0 + small_h / 2.0));
    h.run_steps(2);
    let frame = h.render().expect("render the frame");
    assert!(
        pixel_is(&frame, tag(&h, 150.0, 60.0), color("Cola")),
        "the hovered small box shows its name"
    );
    // Selected: shown without the pointer.
    h.state_mut().state.apply(Command::SelectBox(Some(1)));
    h.hover_at(Pos2::new(2.0, 2.0));
    h.run_steps(2);
    let frame = h.render().expect("render the frame");
    assert!(pixel_is(&frame, tag(&h, 150.0, 60.0), color("Cola")));
}

#[test]
fn a_drawn_box_takes_the_class_it_looks_like_and_the_checkbox_turns_that_off() {
    // Four labelled demo images (13, 12, 0 and 24 boxes); the last one's labels are the
    // boxes to draw. The first image is shown; the second one's labels are read in the
    // background when the folder opens: 25 boxes vote.
    let f = fixture_labelled(4);
    let truth = voc::read(&xml(&f, 3)).unwrap().boxes;
    std::fs::remove_file(xml(&f, 3)).unwrap();
    let mut h = harness(&f, true);
    h.state_mut().state.apply(Command::GoTo(3));
    h.run_steps(1);
    wait_for_image(&mut h);
    wait_until(&mut h, "the look", |app| {
        app.state.class_by_look_ready() && app.state.looks.index.len() == 25
    });
    h.state_mut()
        .state
        .apply(Command::SetDefaultLabel("Cola".into()));
    let mut right = 0;
    // What the default label alone gives: the class of the box before.
    let mut right_by_default = 0;
    let mut previous = "Cola".to_string();
    for t in &truth {
        let b = &t.bbox;
        draw_box(&mut h, [b.x1, b.y1, b.x2, b.y2]);
        let (class, _) = boxes(&h).last().cloned().unwrap();
        right += usize::from(class == t.class_name);
        right_by_default += usize::from(previous == t.class_name);
        previous = t.class_name.clone();
    }
    assert_eq!(boxes(&h).len(), truth.len());
    assert!(
        right >= 20 && right > right_by_default + 5,
        "{right} of {} boxes took their class by look (the default label alone: {right_by_default})",
        truth.len()
    );
    assert!(
        h.state()
            .state
            .messages
            .iter()
            .any(|m| m.contains("by its look")),
        "the status bar says when the look overrode the default label"
    );

    h.get_by_label("Class by look").click();
    h.run_steps(1);
    assert!(!h.state().state.settings.class_by_look);
    let sprite = truth.iter().find(|t| t.class_name == "Sprite").unwrap();
    h.state_mut()
        .state
        .apply(Command::SetDefaultLabel("Cola".into()));
    let b = sprite.bbox;
    draw_box(&mut h, [b.x1 + 1.0, b.y1 + 1.0, b.x2 - 1.0, b.y2 - 1.0]);
    assert_eq!(
        boxes(&h).last().unwrap().0,
        "Cola",
        "off: the default label"
    );
}

/// A demo folder of `n` images with the generator's labels.
fn fixture_labelled(n: usize) -> Fixture {
    fixture_made_by(detlab::demo::generate, n, 5, 320, 240)
}

/// A folder `generate` (the demo or the dense demo) fills with `n` labelled images.
fn fixture_made_by<E: std::fmt::Debug, S>(
    generate: fn(&detlab::demo::DemoOptions) -> Result<S, E>,
    n: usize,
    seed: u64,
    width: u32,
    height: u32,
) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("shelf");
    generate(&detlab::demo::DemoOptions {
        out_dir: images.clone(),
        images: n,
        seed,
        width,
        height,
    })
    .unwrap();
    let settings = dir.path().join("config/settings.json");
    Fixture {
        _dir: dir,
        images,
        settings,
    }
}

/// A name with a control character (pasted, say) is no class name: the dialog says why
/// and stays open, Enter takes nothing, and no class is made; the command refuses it too.
#[test]
fn a_class_name_with_a_control_character_is_refused_in_the_dialog() {
    let f = fixture(1);
    let mut h = harness(&f, false);
    h.state_mut().state.settings.default_label = None;
    draw_box(&mut h, [10.0, 10.0, 50.0, 50.0]);
    h.event(egui::Event::Text("cola\u{7}zero".into()));
    h.run_steps(1);
    for _ in 0..2 {
        h.key_press(Key::Enter);
        h.run_steps(2);
    }
    assert!(boxes(&h).is_empty(), "{:?}", boxes(&h));
    assert!(
        h.state().state.ui.pending_label.is_some(),
        "the dialog stays"
    );
    assert!(h
        .state()
        .state
        .workspace
        .classes
        .id("cola\u{7}zero")
        .is_none());
    h.get(By::new().label_contains("control character U+0007"));
    h.state_mut().state.apply(Command::AddBox {
        bbox: BoxXyxy::new(60.0, 10.0, 100.0, 50.0),
        label: "cola\nzero".into(),
    });
    assert!(boxes(&h).is_empty(), "{:?}", boxes(&h));
    let messages = &h.state().state.messages;
    assert!(
        messages
            .last()
            .is_some_and(|m| m.starts_with("not labelled")),
        "{messages:?}"
    );
}

/// A class file with a repeated name opens with the name once and a message naming the
/// file and the line.
#[test]
fn a_repeated_name_in_the_class_file_is_said() {
    let f = fixture(1);
    std::fs::write(
        f.images.join("predefined_classes.txt"),
        "Cola\nSprite\nCola\n",
    )
    .unwrap();
    let h = harness(&f, false);
    let state = &h.state().state;
    assert_eq!(state.workspace.classes.names(), ["Cola", "Sprite"]);
    assert!(
        state
            .messages
            .iter()
            .any(|m| m.contains("predefined_classes.txt")
                && m.contains("line 3: \"Cola\" repeats class 1 (kept once)")),
        "{:?}",
        state.messages
    );
}
