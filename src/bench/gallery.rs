//! The crop gallery with 5,000 crops, measured headless (egui without a window: UI code,
//! layout and tessellation are timed; GPU upload and presentation are not):
//!
//! * reading the crops (labels, decoding, thumbnails, descriptors) in the background;
//! * grouping them by look (one class of 5,000: the k-means path);
//! * the frame time with the gallery shown and everything selected.

use std::path::Path;
use std::time::Instant;

use super::headless::{frame, new_app, wait};
use super::Report;
use detlab::app::gallery::look_class::{LookIndex, LookPixels};
use detlab::app::gallery::GalleryAction;
use detlab::app::Command;
use detlab::dataset::{ImageAnnotation, LabelBox};
use detlab::geometry::BoxXyxy;

/// Images, and boxes per image (a 10 × 10 shelf).
const IMAGES: usize = 50;
const PER_IMAGE: usize = 100;

/// The product at facing `k` of shelf `image` (as drawn by [`write_shelf`]).
fn sku_at(image: usize, col: u32, row: u32) -> usize {
    ((col / 2 + row * 3 + image as u32) % 8) as usize
}

/// A shelf photo: 10 × 10 facings of 8 products (colour blocks with a band and a
/// label), every box labelled "product".
fn write_shelf(dir: &Path, index: usize) -> anyhow::Result<()> {
    const SKUS: [([u8; 3], [u8; 3]); 8] = [
        ([200, 20, 30], [250, 250, 250]),
        ([20, 140, 40], [250, 230, 40]),
        ([250, 140, 20], [30, 60, 200]),
        ([30, 30, 30], [220, 30, 30]),
        ([240, 240, 240], [20, 90, 200]),
        ([120, 40, 160], [240, 200, 60]),
        ([20, 170, 200], [250, 250, 250]),
        ([180, 150, 90], [60, 40, 20]),
    ];
    let (w, h) = (1000u32, 800u32);
    let (cw, ch) = (w / 10, h / 10);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let (col, row) = (x / cw, y / ch);
        let (fx, fy) = (x % cw, y % ch);
        if fx < 6 || fx >= cw - 6 || fy < 4 || fy >= ch - 4 {
            return image::Rgb([90, 80, 70]); // the shelf between facings
        }
        let (body, band) = SKUS[sku_at(index, col, row)];
        let noise = ((x * 31 + y * 17 + index as u32 * 7) % 11) as u8;
        let c = if (ch / 3..ch / 2).contains(&fy) {
            band
        } else {
            body
        };
        image::Rgb(c.map(|v| v.saturating_add(noise)))
    });
    let name = format!("shelf_{index:03}.jpg");
    let path = dir.join(&name);
    img.save(&path)?;
    let mut ann = ImageAnnotation::new(name, w, h);
    for k in 0..PER_IMAGE as u32 {
        let (col, row) = (k % 10, k / 10);
        let (x, y) = ((col * cw) as f64, (row * ch) as f64);
        ann.boxes.push(LabelBox::new(
            "product",
            BoxXyxy::new(x + 6.0, y + 4.0, x + cw as f64 - 6.0, y + ch as f64 - 4.0),
        ));
    }
    detlab::formats::voc::write(&path.with_extension("xml"), &ann, &path)?;
    Ok(())
}

/// The median time of *Class by look*'s index to take one changed label on one photo
/// among the folder's ([`LookIndex::sync`]: the changed box described, the pack sizes of
/// all boxes fitted again).
fn look_refit(folder: &Path) -> anyhow::Result<f64> {
    let mut index = LookIndex::default();
    let mut photos = Vec::new();
    for i in 0..IMAGES {
        let path = folder.join(format!("shelf_{i:03}.jpg"));
        let labels = detlab::dataset::load_labels(&path, None)?
            .map(|l| l.annotation.boxes)
            .unwrap_or_default();
        let pixels = LookPixels::decode(&path).map_err(anyhow::Error::msg)?;
        index.sync(&pixels, &labels);
        photos.push((pixels, labels));
    }
    let (pixels, labels) = photos.last_mut().expect("photos");
    let mut times = Vec::new();
    for round in 0..11 {
        labels[0].class_name = format!("product {round}");
        let t = Instant::now();
        index.sync(pixels, labels);
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

pub fn run() -> anyhow::Result<Report> {
    let work = std::env::temp_dir().join(format!("detlab-bench-gallery-{}", std::process::id()));
    let folder = work.join("shelves");
    std::fs::create_dir_all(&folder)?;
    for i in 0..IMAGES {
        write_shelf(&folder, i)?;
    }
    let crops = IMAGES * PER_IMAGE;
    let mut report = Report {
        title: format!("Crop gallery, {crops} crops (headless egui, 1600×1000)"),
        ..Default::default()
    };
    let (ctx, mut app) = new_app(&folder, &work);
    wait(&ctx, &mut app, "the folder", |a| {
        a.state.workspace.doc.is_some()
    })?;

    let t0 = Instant::now();
    app.state.apply(Command::Gallery(GalleryAction::Open));
    frame(&ctx, &mut app);
    report.row(
        "open the gallery: first frame",
        t0.elapsed().as_secs_f64() * 1e3,
        "ms",
    );
    let mut worst = 0.0f64;
    let (read, slowest) = wait(&ctx, &mut app, "the crops", |a| {
        a.state.gallery.as_ref().is_some_and(|g| !g.scanning())
    })?;
    let loaded = app.state.gallery.as_ref().map_or(0, |g| g.crops.len());
    anyhow::ensure!(loaded == crops, "{loaded} crops read, {crops} expected");
    report.row(
        "read + thumbnail + describe every crop (background)",
        read * 1e3,
        "ms",
    );
    report.row(
        "slowest frame while they stream in (thumbnails uploaded)",
        slowest * 1e3,
        "ms",
    );
    let (grouped, _) = wait(&ctx, &mut app, "the grouping", |a| {
        a.state.gallery.as_ref().is_some_and(|g| g.grouped)
    })?;
    report.row("group by look (background)", grouped * 1e3, "ms");
    if let Some(g) = &app.state.gallery {
        let product = |id: usize| {
            let c = &g.crops[id];
            sku_at(c.image_rank, (c.index % 10) as u32, (c.index / 10) as u32)
        };
        let same = g
            .shown
            .windows(2)
            .filter(|w| product(w[0]) == product(w[1]))
            .count();
        report.row(
            "neighbours in the grouped order that are the same product",
            same as f64 * 100.0 / (g.shown.len() - 1).max(1) as f64,
            "%",
        );
    }
    app.state.apply(Command::Gallery(GalleryAction::SelectAll));
    let frames = 60;
    let t = Instant::now();
    for _ in 0..frames {
        let f = Instant::now();
        frame(&ctx, &mut app);
        worst = worst.max(f.elapsed().as_secs_f64());
    }
    report.row(
        "frame time, gallery shown, all selected (UI + tessellation)",
        t.elapsed().as_secs_f64() * 1e3 / frames as f64,
        "ms",
    );
    report.row("worst frame of those", worst * 1e3, "ms");
    report.row(
        "class by look: pack sizes refitted after a label change (UI thread)",
        look_refit(&folder)? * 1e3,
        "ms",
    );
    report.notes.push(format!(
        "{IMAGES} generated 1000×800 shelf photos of {PER_IMAGE} facings each (8 products), every box \"product\". Headless: GPU upload and presentation are not included."
    ));
    drop(app);
    let _ = std::fs::remove_dir_all(&work);
    Ok(report)
}
