//! The simulated labeller (`detlab bench labelling`) on a tiny folder whose action count
//! is known by hand: flat products on a plain wall, so a click grows the exact box and
//! "find similar" finds the exact copies.

use std::path::Path;
use std::time::Duration;

use detlab::app::simulated_labeller::{simulate, SimOptions};
use detlab::dataset::{save_labels, ClassList, ImageAnnotation, LabelBox, LabelFormat};
use detlab::geometry::BoxXyxy;
use image::{Rgb, RgbImage};

/// A flat product: `(x, y, w, h, colour, class)`.
type Product<'a> = (u32, u32, u32, u32, [u8; 3], &'a str);

/// Writes `name` (200×120, grey wall) with `items` and its VOC labels.
fn shelf(dir: &Path, name: &str, items: &[Product]) {
    let mut img = RgbImage::from_pixel(200, 120, Rgb([128, 128, 128]));
    let mut ann = ImageAnnotation::new(name, 200, 120);
    for &(x, y, w, h, colour, class) in items {
        // A product: its colour, with a white label band a third of the way down.
        for yy in y..y + h {
            for xx in x..x + w {
                let label = yy >= y + h / 3 && yy < y + h / 3 + h / 5;
                img.put_pixel(xx, yy, Rgb(if label { [240, 240, 240] } else { colour }));
            }
        }
        ann.boxes.push(LabelBox::new(
            class,
            BoxXyxy::new(x as f64, y as f64, (x + w) as f64, (y + h) as f64),
        ));
    }
    let path = dir.join(name);
    img.save(&path).unwrap();
    save_labels(&path, None, LabelFormat::Voc, &ann, &mut ClassList::new()).unwrap();
}

fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("shelf");
    std::fs::create_dir_all(&images).unwrap();
    let red = [200, 30, 30];
    shelf(
        &images,
        "a.png",
        &[
            (20, 30, 30, 50, red, "Cola"),
            (80, 30, 30, 50, red, "Cola"),
            (140, 30, 30, 50, red, "Cola"),
        ],
    );
    shelf(
        &images,
        "b.png",
        &[(60, 20, 40, 60, [30, 60, 200], "Sprite")],
    );
    dir
}

fn run(assistants: bool) -> detlab::app::simulated_labeller::SimReport {
    let dir = folder();
    let work = dir.path().join("work");
    simulate(
        &SimOptions {
            images: dir.path().join("shelf"),
            labels: None,
            model: None,
            assistants,
            timeout: Duration::from_secs(60),
        },
        &work,
    )
    .unwrap()
}

#[test]
fn by_hand_it_costs_what_labelimg_costs() {
    let r = run(false);
    // a.png: Cola typed (w, drag, "Cola", Enter, Enter) = 5, then 2 × (w, drag, key) = 6;
    // next 1; b.png: Sprite typed = 5. 17 actions for 4 boxes.
    assert_eq!((r.images, r.boxes, r.missed, r.extra), (2, 4, 0, 0));
    assert_eq!(r.actions, 17, "{:?}", r.by_kind);
    assert_eq!(r.manual_actions_per_box, 17.0 / 4.0);
}

#[test]
fn click_and_find_similar_cut_the_count() {
    let r = run(true);
    // a.png: w + click, "Cola" Enter Enter (5); f (1); accept all and next (1).
    // b.png: w + click, "Sprite" Enter Enter (5). 12 actions for 4 boxes.
    assert_eq!((r.images, r.boxes, r.missed, r.extra), (2, 4, 0, 0));
    assert_eq!(r.by_kind.get("find_similar"), Some(&1), "{:?}", r.by_kind);
    assert_eq!(
        r.by_kind.get("accept_all_next"),
        Some(&1),
        "{:?}",
        r.by_kind
    );
    assert_eq!(r.actions, 12, "{:?}", r.by_kind);
}
