//! Responsiveness of the labelling app, measured headless (egui without a window: the
//! UI code, layout and tessellation are timed; GPU upload and presentation are not).
//!
//! * time to the first frame after opening a folder of 10,000 images (the scan runs in
//!   the background) and time until the scan has classified every image;
//! * decoding a 12-megapixel JPEG for display (what a cold "next image" costs), and the
//!   time to show the next image when it was prefetched;
//! * frame time with 2,000 boxes on one image;
//! * frame time with 500 boxes of 60 classes on one 12-megapixel image, fitted to the
//!   window (a dense shelf: most class names are too small or too crowded to draw).

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::headless::{frame, new_app, wait, MAX_SIDE};
use super::{time, Report};
use detlab::app::image_loader::{decode_for_display, ImageSlot};
use detlab::dataset::{ImageAnnotation, LabelBox};
use detlab::desktop::DetlabApp;
use detlab::geometry::BoxXyxy;

fn ready(app: &DetlabApp, index: usize) -> bool {
    let s = &app.state.workspace;
    let Some(path) = s
        .session
        .as_ref()
        .and_then(|x| x.images.get(index))
        .map(|e| e.path.clone())
    else {
        return false;
    };
    matches!(
        s.loader.as_ref().and_then(|l| l.get(&path)),
        Some(ImageSlot::Ready { .. })
    )
}

/// Image `index` is the current one, with its pixels and its labels.
fn shown(app: &DetlabApp, index: usize) -> bool {
    let ws = &app.state.workspace;
    ws.current == Some(index) && ws.doc.is_some() && ready(app, index)
}

/// A 12-megapixel JPEG with photo-like content (gradients and noise), quality 90.
fn write_12mp_jpeg(path: &Path, seed: u32) -> anyhow::Result<()> {
    let (w, h) = (4000u32, 3000u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let n = (x.wrapping_mul(73856093) ^ y.wrapping_mul(19349663) ^ seed.wrapping_mul(83492791))
            % 23;
        image::Rgb([
            ((x / 16 + n) % 256) as u8,
            ((y / 12 + n * 3) % 256) as u8,
            (((x + y) / 20 + seed) % 256) as u8,
        ])
    });
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90).encode_image(&img)?;
    std::fs::write(path, bytes)?;
    Ok(())
}

pub fn run() -> anyhow::Result<Report> {
    let work = std::env::temp_dir().join(format!("detlab-bench-gui-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let mut report = Report {
        title: "Labelling app responsiveness (headless egui, 1600×1000)".into(),
        ..Default::default()
    };

    // 1. A folder of 10,000 images: the first frame must not wait for the scan.
    let big = work.join("big");
    std::fs::create_dir_all(&big)?;
    let demo = detlab::demo::DemoOptions {
        out_dir: work.join("demo"),
        images: 1,
        seed: 0,
        width: 640,
        height: 480,
    };
    detlab::demo::generate(&demo)?;
    let sample = std::fs::read(demo.out_dir.join(detlab::demo::image_name(0)))?;
    for i in 0..10_000 {
        std::fs::write(big.join(format!("img_{i:05}.jpg")), &sample)?;
    }
    let t0 = Instant::now();
    let (ctx, mut app) = new_app(&big, &work);
    frame(&ctx, &mut app);
    let first = t0.elapsed().as_secs_f64();
    report.row("10,000-image folder: open + first frame", first * 1e3, "ms");
    let (scanned, _) = wait(&ctx, &mut app, "the scan", |a| {
        a.state
            .workspace
            .session
            .as_ref()
            .is_some_and(|s| !s.scanning)
    })?;
    report.row(
        "10,000-image folder: background scan finished after",
        (first + scanned) * 1e3,
        "ms",
    );
    drop(app);

    // 2. 12-megapixel photos: cold decode, and next image with prefetch.
    let photos = work.join("photos");
    std::fs::create_dir_all(&photos)?;
    for i in 0..4 {
        write_12mp_jpeg(&photos.join(format!("p{i}.jpg")), i)?;
    }
    let (decoded, cold) = time(|| decode_for_display(&photos.join("p0.jpg"), MAX_SIDE));
    decoded.map_err(anyhow::Error::msg)?;
    report.row(
        "12 MP JPEG: decode for display (one thread, cold)",
        cold * 1e3,
        "ms",
    );
    let (ctx, mut app) = new_app(&photos, &work);
    wait(&ctx, &mut app, "the first photo", |a| ready(a, 0))?;
    wait(&ctx, &mut app, "the prefetch of the next photo", |a| {
        ready(a, 1)
    })?;
    let t = Instant::now();
    app.state.next();
    frame(&ctx, &mut app);
    wait(&ctx, &mut app, "the next photo", |a| shown(a, 1))?;
    report.row(
        "12 MP JPEG: next image (d) when prefetched, to its frame",
        t.elapsed().as_secs_f64() * 1e3,
        "ms",
    );
    drop(app);

    // 3. 2,000 boxes on one image.
    let crowd = work.join("crowd");
    std::fs::create_dir_all(&crowd)?;
    let image_path = crowd.join("shelf.jpg");
    write_12mp_jpeg(&image_path, 9)?;
    let mut ann = ImageAnnotation::new("shelf.jpg", 4000, 3000);
    for i in 0..2000 {
        let (x, y) = ((i % 50) as f64 * 80.0, (i / 50) as f64 * 75.0);
        ann.boxes.push(LabelBox::new(
            ["Cola", "Sprite", "Fanta"][i % 3],
            BoxXyxy::new(x + 2.0, y + 2.0, x + 70.0, y + 70.0),
        ));
    }
    detlab::formats::voc::write(&crowd.join("shelf.xml"), &ann, &image_path)?;
    let (ctx, mut app) = new_app(&crowd, &work);
    wait(&ctx, &mut app, "the crowded image", |a| shown(a, 0))?;
    app.state.apply(detlab::app::Command::SelectBox(Some(0)));
    let frames = 60;
    let t = Instant::now();
    for _ in 0..frames {
        frame(&ctx, &mut app);
    }
    report.row(
        "2,000 boxes: frame time (UI + tessellation)",
        t.elapsed().as_secs_f64() * 1e3 / frames as f64,
        "ms",
    );
    drop(app);

    // 4. A dense shelf: 500 boxes of 60 classes on a 12 MP image, fitted to the window.
    let (ms, zoom) = dense_shelf_frame_time(&work)?;
    report.row(
        "500 boxes of 60 classes, 12 MP image fitted to the window: frame time",
        ms,
        "ms",
    );
    report.notes.push(format!(
        "Dense shelf: fitted to the window at a zoom of {:.0} % (boxes about {:.0} × {:.0} points).",
        zoom * 100.0,
        150.0 * zoom,
        140.0 * zoom
    ));
    report.notes.push(format!(
        "Headless: GPU upload and presentation are not included. Images are downscaled to at most {MAX_SIDE} px for display; box coordinates stay in full-resolution pixels."
    ));
    let _ = std::fs::remove_dir_all(PathBuf::from(&work));
    Ok(report)
}

/// 60 class names of shelf products ("coke-zero-330ml" and the like).
fn shelf_classes() -> Vec<String> {
    let brands = [
        "coke-zero",
        "coke",
        "sprite",
        "fanta-orange",
        "pepsi-max",
        "7up",
        "dr-pepper",
        "schweppes",
        "lipton-ice-tea",
        "red-bull",
        "monster",
        "evian",
    ];
    let sizes = ["330ml", "500ml", "1l", "1.5l", "6-pack"];
    brands
        .iter()
        .flat_map(|b| sizes.iter().map(move |s| format!("{b}-{s}")))
        .collect()
}

/// The frame time (ms, mean of 60 frames) with 500 boxes of 60 classes on one 4000×3000
/// image fitted to the window, and the zoom it was shown at.
fn dense_shelf_frame_time(work: &Path) -> anyhow::Result<(f64, f32)> {
    let shelf = work.join("dense");
    std::fs::create_dir_all(&shelf)?;
    let image_path = shelf.join("shelf.jpg");
    write_12mp_jpeg(&image_path, 11)?;
    let classes = shelf_classes();
    std::fs::write(
        shelf.join("predefined_classes.txt"),
        classes.join("\n") + "\n",
    )?;
    // 20 shelves of 25 facings, 160 × 150 px cells.
    let mut ann = ImageAnnotation::new("shelf.jpg", 4000, 3000);
    for i in 0..500 {
        let (x, y) = ((i % 25) as f64 * 160.0, (i / 25) as f64 * 150.0);
        ann.boxes.push(LabelBox::new(
            classes[(i * 7) % classes.len()].clone(),
            BoxXyxy::new(x + 4.0, y + 4.0, x + 154.0, y + 144.0),
        ));
    }
    detlab::formats::voc::write(&shelf.join("shelf.xml"), &ann, &image_path)?;
    let (ctx, mut app) = new_app(&shelf, work);
    wait(&ctx, &mut app, "the dense shelf", |a| shown(a, 0))?;
    app.state.ui.view.fit = detlab::app::Fit::Window;
    app.state.apply(detlab::app::Command::SelectBox(Some(0)));
    frame(&ctx, &mut app);
    let frames = 60;
    let t = Instant::now();
    for _ in 0..frames {
        frame(&ctx, &mut app);
    }
    let ms = t.elapsed().as_secs_f64() * 1e3 / frames as f64;
    Ok((ms, app.state.ui.view.zoom))
}
