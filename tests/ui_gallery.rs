//! The crop gallery driven by egui_kittest on a generated demo folder (real images and
//! VOC files): opened from the View menu, two crops selected with click and Ctrl+click, a
//! class key relabels them in every label file they come from; Ctrl+Z undoes it on the
//! open image; a double-click shows a crop's box in its image.

mod common;

use common::wait_until;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use detlab::app::image_loader::ImageSlot;
use detlab::app::AppOptions;
use detlab::desktop::DetlabApp;
use detlab::formats::voc;
use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;

struct Fixture {
    _dir: tempfile::TempDir,
    images: PathBuf,
    settings: PathBuf,
}

/// A demo folder of `n` small labelled images.
fn fixture(n: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("shelf");
    detlab::demo::generate(&detlab::demo::DemoOptions {
        out_dir: images.clone(),
        images: n,
        seed: 11,
        width: 320,
        height: 240,
    })
    .unwrap();
    let settings = dir.path().join("config/settings.json");
    Fixture {
        _dir: dir,
        images,
        settings,
    }
}

fn harness(f: &Fixture) -> Harness<'static, DetlabApp> {
    let (images, settings) = (f.images.clone(), f.settings.clone());
    let mut h = Harness::builder()
        .with_size(egui::vec2(1200.0, 800.0))
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
    wait_until(&mut h, "the image", |app| {
        let s = &app.state;
        s.current_path().is_some_and(|p| {
            s.workspace.doc.is_some()
                && matches!(
                    s.workspace.loader.as_ref().and_then(|l| l.get(&p)),
                    Some(ImageSlot::Ready { .. })
                )
        })
    });
    h
}

fn wait_for_labels(h: &mut Harness<'static, DetlabApp>) {
    h.run_steps(1);
    wait_until(h, "the label files", |app| {
        !app.state.workspace.labels.busy()
    });
}

/// Opens View → Crop gallery and waits until every crop is read and grouped.
fn open_gallery(h: &mut Harness<'static, DetlabApp>) {
    h.get_by_label("View").click();
    h.run_steps(2);
    h.get_by_label("Crop gallery  (Ctrl+G)").click();
    h.run_steps(1);
    wait_until(h, "the gallery", |app| {
        app.state
            .gallery
            .as_ref()
            .is_some_and(|g| g.visible && !g.scanning() && g.grouped)
    });
}

/// The class of box `index` in the VOC file of `image`, as on disk.
fn class_on_disk(image: &Path, index: usize) -> String {
    voc::read(&image.with_extension("xml")).unwrap().boxes[index]
        .class_name
        .clone()
}

/// (position shown, image, box index, class) of every crop shown.
fn crops(h: &Harness<'static, DetlabApp>) -> Vec<(usize, PathBuf, usize, String)> {
    let g = h.state().state.gallery.as_ref().unwrap();
    g.shown
        .iter()
        .enumerate()
        .map(|(at, &id)| {
            let c = &g.crops[id];
            (at, c.image.clone(), c.index, c.class_name.clone())
        })
        .collect()
}

#[test]
fn gallery_selects_two_crops_and_a_class_key_relabels_their_files() {
    let f = fixture(3);
    let mut h = harness(&f);
    open_gallery(&mut h);
    let state = &h.state().state;
    let target = state.workspace.classes.name(1).unwrap().to_string();
    let open = state.current_path().unwrap();
    let total: usize = (0..3)
        .map(|i| {
            let xml = f
                .images
                .join(detlab::demo::image_name(i))
                .with_extension("xml");
            voc::read(&xml).unwrap().boxes.len()
        })
        .sum();
    let all = crops(&h);
    assert_eq!(all.len(), total, "every box of the folder is a crop");
    // One crop of the open image and one of another, neither of class 2 yet.
    let pick = |on_open: bool| {
        all.iter()
            .find(|(_, image, _, class)| (*image == open) == on_open && *class != target)
            .cloned()
            .expect("a crop to relabel")
    };
    let (a, b) = (pick(true), pick(false));

    h.get_by_label(&format!("crop {}", a.0 + 1)).click();
    h.run_steps(1);
    h.get_by_label(&format!("crop {}", b.0 + 1))
        .click_modifiers(Modifiers::COMMAND);
    h.run_steps(1);
    let g = h.state().state.gallery.as_ref().unwrap();
    assert_eq!(g.selection.len(), 2, "click, then Ctrl+click adds");

    h.key_press(Key::Num2);
    wait_for_labels(&mut h);
    assert_eq!(class_on_disk(&a.1, a.2), target, "the open image's file");
    assert_eq!(class_on_disk(&b.1, b.2), target, "another image's file");
    let doc = h.state().state.workspace.doc.as_ref().unwrap();
    assert_eq!(
        doc.annotation.boxes[a.2].class_name, target,
        "the document too"
    );
    let g = h.state().state.gallery.as_ref().unwrap();
    let shown_class = |p: usize| g.crops[g.shown[p]].class_name.clone();
    assert_eq!(
        (shown_class(a.0), shown_class(b.0)),
        (target.clone(), target.clone())
    );

    // Ctrl+Z undoes it on the open image (and autosave writes that back).
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run_steps(1);
    let doc = h.state().state.workspace.doc.as_ref().unwrap();
    assert_eq!(doc.annotation.boxes[a.2].class_name, a.3);
}

#[test]
fn ctrl_a_selects_every_crop_shown_and_a_jump_selects_the_box() {
    let f = fixture(3);
    let mut h = harness(&f);
    open_gallery(&mut h);
    h.key_press_modifiers(Modifiers::COMMAND, Key::A);
    h.run_steps(1);
    let g = h.state().state.gallery.as_ref().unwrap();
    assert_eq!(g.selection.len(), g.shown.len());
    h.key_press(Key::Escape);
    h.run_steps(1);
    assert!(h
        .state()
        .state
        .gallery
        .as_ref()
        .unwrap()
        .selection
        .is_empty());

    // A crop of another image: its image is shown, with that box selected.
    let open = h.state().state.current_path().unwrap();
    let (at, image, index, _) = crops(&h)
        .into_iter()
        .find(|(_, image, _, _)| *image != open)
        .unwrap();
    let id = h.state().state.gallery.as_ref().unwrap().shown[at];
    h.state_mut().state.apply(detlab::app::Command::Gallery(
        detlab::app::gallery::GalleryAction::Jump(id),
    ));
    wait_until(&mut h, "the jump", |app| {
        let s = &app.state;
        s.current_path().as_ref() == Some(&image)
            && s.workspace
                .doc
                .as_ref()
                .is_some_and(|d| d.selected == Some(index))
    });
    assert!(!h.state().state.gallery.as_ref().unwrap().visible, "hidden");
    // Ctrl+G shows it again, with the crops already read.
    h.key_press_modifiers(Modifiers::COMMAND, Key::G);
    h.run_steps(1);
    let g = h.state().state.gallery.as_ref().unwrap();
    assert!(g.visible && !g.scanning());
}

/// On the dense demo (37 similar SKUs, small and large packs of one look), with every box
/// relabelled "product": a crop's nearest crop by descriptor is nearly always the same
/// product, and the grouped order has far fewer runs of one product than the file order.
#[test]
fn dense_demo_crops_of_one_product_sit_together() {
    use detlab::app::gallery::grouping::order_by_look;
    use detlab::app::gallery::scan::{CropScan, ScanEvent, ScanInput};

    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("dense");
    detlab::demo::generate_dense(&detlab::demo::DemoOptions {
        out_dir: images.clone(),
        images: 3,
        seed: 3,
        width: 1750,
        height: 1300,
    })
    .unwrap();
    let paths: Vec<PathBuf> = (0..3)
        .map(|i| images.join(detlab::demo::image_name(i)))
        .collect();
    let truth: Vec<Vec<String>> = paths
        .iter()
        .map(|p| {
            let xml = p.with_extension("xml");
            let mut a = voc::read(&xml).unwrap();
            let names = a.boxes.iter().map(|b| b.class_name.clone()).collect();
            for b in &mut a.boxes {
                b.class_name = "product".into();
            }
            voc::write(&xml, &a, p).unwrap();
            names
        })
        .collect();
    let (_, saves_done) = std::sync::mpsc::channel();
    let scan = CropScan::spawn(
        ScanInput {
            images: paths.clone(),
            save_dir: None,
            in_memory: Default::default(),
            saves_done,
        },
        || {},
    );
    let mut crops = Vec::new();
    let start = Instant::now();
    loop {
        match scan.poll() {
            Ok(Some(ScanEvent::Crops(c))) => crops.extend(c),
            Ok(Some(ScanEvent::Failed(e))) => panic!("{e}"),
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(()) => break,
        }
        assert!(start.elapsed() < Duration::from_secs(60));
    }
    let total: usize = truth.iter().map(Vec::len).sum();
    assert_eq!(crops.len(), total);
    crops.sort_by_key(|c| (c.image_rank, c.index));
    let product = |k: usize| &truth[crops[k].image_rank][crops[k].index];
    assert!(crops.iter().all(|c| c.class_name == "product"));

    let n = crops.len();
    let nearest_same = (0..n)
        .filter(|&i| {
            let d = |j: usize| crops[i].descriptor.distance(&crops[j].descriptor);
            let j = (0..n)
                .filter(|&j| j != i)
                .min_by(|&a, &b| d(a).total_cmp(&d(b)))
                .unwrap();
            product(i) == product(j)
        })
        .count();
    assert!(
        nearest_same * 100 >= n * 90,
        "nearest crop the same product: {nearest_same} of {n}"
    );
    let runs = |order: &[usize]| {
        1 + order
            .windows(2)
            .filter(|w| product(w[0]) != product(w[1]))
            .count()
    };
    let descriptors: Vec<_> = crops.iter().map(|c| &c.descriptor).collect();
    let grouped = runs(&order_by_look(&descriptors));
    let file = runs(&(0..n).collect::<Vec<_>>());
    assert!(
        grouped * 10 <= file * 6,
        "runs: grouped {grouped}, file order {file}"
    );
}
