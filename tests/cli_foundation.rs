//! The foundation CLI end to end: `--help`, `demo`, `export coco`, `convert`, with
//! awkward file names and broken files.

mod common;

use common::{detlab, text};

use std::path::Path;

use detlab::dataset::{ImageAnnotation, LabelBox};
use detlab::formats::coco::CocoDataset;
use detlab::geometry::BoxXyxy;

#[test]
fn help_lists_every_subcommand() {
    let out = detlab(&["--help"]);
    assert!(out.status.success());
    let help = text(&out);
    for cmd in ["gui", "export", "convert", "demo", "info"] {
        assert!(help.contains(cmd), "{cmd} missing from --help:\n{help}");
    }
}

#[test]
fn demo_is_deterministic_and_exports() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for d in [&a, &b] {
        let o = detlab(&[
            "demo",
            "--out",
            d.path().to_str().unwrap(),
            "--images",
            "6",
            "--seed",
            "3",
            "--width",
            "160",
            "--height",
            "120",
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let mut names: Vec<_> = std::fs::read_dir(a.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names.len(), 6 * 2 + 1);
    for n in &names {
        let (x, y) = (a.path().join(n), b.path().join(n));
        if x.extension().is_some_and(|e| e == "xml") {
            // Same boxes; only <folder>/<path> name the different output folders.
            let (px, py) = (
                detlab::formats::voc::read(&x).unwrap(),
                detlab::formats::voc::read(&y).unwrap(),
            );
            assert!(px == py, "{n:?} differs");
        } else {
            assert!(
                std::fs::read(&x).unwrap() == std::fs::read(&y).unwrap(),
                "{n:?} differs"
            );
        }
    }
    let out = tempfile::tempdir().unwrap();
    let o = export_with_classes(
        a.path(),
        out.path(),
        &a.path().join("predefined_classes.txt"),
        &["--val-fraction", "0.5", "--seed", "1"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let train = CocoDataset::read(&out.path().join("instances_train.json")).unwrap();
    let val = CocoDataset::read(&out.path().join("instances_val.json")).unwrap();
    assert_eq!(train.images.len() + val.images.len(), 6);
    assert_eq!(
        train
            .categories
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["Cola", "Sprite", "Fanta"]
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("labels.txt")).unwrap(),
        "Cola\nSprite\nFanta\n"
    );
    // A repeated name in the class file is kept once, and said.
    let classes = a.path().join("repeated.txt");
    std::fs::write(&classes, "Cola\nSprite\nCola\nFanta\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = export_with_classes(a.path(), out.path(), &classes, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("warning: class file")
            && stderr.contains("line 3: \"Cola\" repeats class 1"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("labels.txt")).unwrap(),
        "Cola\nSprite\nFanta\n"
    );
}

/// `detlab export coco --images IMAGES --out OUT --classes CLASSES` with `more` options.
fn export_with_classes(
    images: &Path,
    out: &Path,
    classes: &Path,
    more: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "export",
        "coco",
        "--images",
        images.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--classes",
        classes.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    detlab(&args)
}

fn write_image(path: &Path, w: u32, h: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([120, 30, 30]));
    let format =
        image::ImageFormat::from_extension(path.extension().unwrap().to_ascii_lowercase()).unwrap();
    img.save_with_format(path, format).unwrap();
}

fn write_voc(image: &Path, boxes: &[(&str, [f64; 4])]) {
    let mut ann = ImageAnnotation::new(image.file_name().unwrap().to_string_lossy(), 64, 48);
    for (name, b) in boxes {
        ann.boxes
            .push(LabelBox::new(*name, BoxXyxy::new(b[0], b[1], b[2], b[3])));
    }
    detlab::formats::voc::write(&image.with_extension("xml"), &ann, image).unwrap();
}

#[test]
fn awkward_names_and_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("imgs");
    let names = [
        "with space.jpg",
        "cola.v2.jpg",
        "UPPER.JPG",
        "可乐 雪碧.png",
        "sub/deeper/x.jpg",
        "nolabel.jpg",
        "empty.jpg",
        "broken.jpg",
    ];
    for n in names {
        write_image(&d.join(n), 64, 48);
    }
    write_voc(
        &d.join("with space.jpg"),
        &[("Cola", [2.0, 3.0, 20.0, 30.0])],
    );
    write_voc(
        &d.join("cola.v2.jpg"),
        &[
            ("Sprite", [5.0, 5.0, 60.0, 40.0]),
            ("Cola", [1.0, 1.0, 10.0, 10.0]),
        ],
    );
    write_voc(&d.join("UPPER.JPG"), &[("Cola", [10.0, 10.0, 64.0, 48.0])]);
    write_voc(
        &d.join("可乐 雪碧.png"),
        &[("雪碧", [3.0, 3.0, 30.0, 30.0])],
    );
    write_voc(
        &d.join("sub/deeper/x.jpg"),
        &[("Cola", [4.0, 4.0, 8.0, 8.0])],
    );
    write_voc(&d.join("empty.jpg"), &[]);
    let broken = b"<annotation><filename>broken.jpg</filename><object><name>Cola</name><bnd";
    std::fs::write(d.join("broken.xml"), broken).unwrap();

    let out = dir.path().join("out");
    let args = [
        "export",
        "coco",
        "--images",
        d.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let o = detlab(&args);
    let report = text(&o);
    assert!(o.status.success(), "{report}");
    assert!(
        report.contains("broken.jpg") && report.contains("broken.xml"),
        "{report}"
    );
    assert!(report.contains("skipped files: 1"), "{report}");
    assert_eq!(
        std::fs::read(d.join("broken.xml")).unwrap(),
        broken,
        "the broken file is untouched"
    );

    let coco = CocoDataset::read(&out.join("instances_train.json")).unwrap();
    let files: Vec<&str> = coco.images.iter().map(|i| i.file_name.as_str()).collect();
    assert_eq!(
        files,
        [
            "cola.v2.jpg",
            "empty.jpg",
            "nolabel.jpg",
            "sub/deeper/x.jpg",
            "UPPER.JPG",
            "with space.jpg",
            "可乐 雪碧.png"
        ]
    );
    assert_eq!(coco.annotations.len(), 6);
    let ids: Vec<u64> = coco.annotations.iter().map(|a| a.id).collect();
    assert_eq!(ids, (1..=6).collect::<Vec<_>>());
    assert!(coco.categories.iter().any(|c| c.name == "雪碧"));
    for a in &coco.annotations {
        assert!(
            (a.area - a.bbox[2] * a.bbox[3]).abs() < 1e-9 && a.bbox[2] > 0.0 && a.bbox[3] > 0.0
        );
        assert!(a.bbox[0] >= 0.0 && a.bbox[0] + a.bbox[2] <= 64.0 && a.bbox[1] + a.bbox[3] <= 48.0);
    }

    let strict = detlab(&[&args[..], &["--strict"]].concat());
    assert!(
        !strict.status.success(),
        "--strict must fail on a skipped file"
    );

    // COCO → YOLO and back into VOC keeps the boxes.
    let yolo = dir.path().join("yolo");
    let o = detlab(&[
        "convert",
        "--from",
        "coco",
        "--to",
        "yolo",
        "--coco",
        out.join("instances_train.json").to_str().unwrap(),
        "--images",
        d.to_str().unwrap(),
        "--out",
        yolo.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(yolo.join("cola.v2.txt").is_file() && yolo.join("classes.txt").is_file());
    let voc_again = dir.path().join("voc");
    let o = detlab(&[
        "convert",
        "--from",
        "yolo",
        "--to",
        "voc",
        "--labels",
        yolo.to_str().unwrap(),
        "--images",
        d.to_str().unwrap(),
        "--out",
        voc_again.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let back = detlab::formats::voc::read(&voc_again.join("cola.v2.xml")).unwrap();
    assert_eq!(back.boxes.len(), 2);
    assert_eq!(back.boxes[0].class_name, "Sprite");
    assert_eq!(
        detlab::formats::voc::labelimg_int_box(&back.boxes[0].bbox),
        [5, 5, 60, 40]
    );
}

#[test]
fn zylo117_layout_has_yml_and_images() {
    let src = tempfile::tempdir().unwrap();
    let o = detlab(&[
        "demo",
        "--out",
        src.path().to_str().unwrap(),
        "--images",
        "4",
        "--width",
        "128",
        "--height",
        "96",
    ]);
    assert!(o.status.success());
    let out = tempfile::tempdir().unwrap();
    let o = detlab(&[
        "export",
        "coco",
        "--images",
        src.path().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--layout",
        "zylo117",
        "--project",
        "shelf",
        "--val-fraction",
        "0.25",
        "--classes",
        src.path().join("predefined_classes.txt").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let yml = std::fs::read_to_string(out.path().join("projects/shelf.yml")).unwrap();
    assert!(
        yml.contains("obj_list: ['Cola', 'Sprite', 'Fanta']"),
        "{yml}"
    );
    let root = out.path().join("datasets/shelf");
    let mut all = Vec::new();
    for split in ["train", "val"] {
        let coco =
            CocoDataset::read(&root.join(format!("annotations/instances_{split}.json"))).unwrap();
        // 4 images with a quarter in val: neither split may be empty.
        assert!(!coco.images.is_empty(), "the {split} split is empty");
        let mut listed: Vec<String> = coco.images.iter().map(|im| im.file_name.clone()).collect();
        listed.sort();
        // The split folder holds exactly the images its annotation file lists.
        let mut on_disk: Vec<String> = std::fs::read_dir(root.join(split))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        assert_eq!(on_disk, listed, "{split}");
        all.extend(listed);
    }
    // Every demo image is in exactly one split.
    all.sort();
    let mut demo: Vec<String> = std::fs::read_dir(src.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jpg") || n.ends_with(".png"))
        .collect();
    demo.sort();
    assert_eq!(demo.len(), 4, "{demo:?}");
    assert_eq!(all, demo);
}

#[test]
fn demo_refuses_a_folder_holding_its_files_and_huge_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mine");
    write_image(&out.join("shelf_0002.jpg"), 64, 48);
    let before = std::fs::read(out.join("shelf_0002.jpg")).unwrap();
    let demo = |w: &str| {
        detlab(&[
            "demo",
            "--out",
            out.to_str().unwrap(),
            "--images",
            "3",
            "--width",
            w,
            "--height",
            "96",
        ])
    };
    let o = demo("128");
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("shelf_0002.jpg already exists"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read(out.join("shelf_0002.jpg")).unwrap(), before);
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        1,
        "nothing written"
    );
    // Refused before rendering (a 100,000² photo is 30 GB of pixels).
    let o = demo("100000");
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("too large"), "{}", text(&o));
    assert!(!text(&o).contains("backtrace"), "{}", text(&o));
}

#[test]
fn export_names_every_skipped_file_and_strict_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("imgs");
    write_image(&d.join("a.jpg"), 64, 48);
    write_voc(&d.join("a.jpg"), &[("Cola", [2.0, 3.0, 20.0, 30.0])]);
    write_image(&d.join("b.jpg"), 64, 48);
    write_voc(&d.join("b.jpg"), &[("Sprite", [5.0, 5.0, 30.0, 40.0])]);
    let out = dir.path().join("out");
    let export = |strict: bool| {
        let mut args = vec![
            "export",
            "coco",
            "--images",
            d.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        if strict {
            args.push("--strict");
        }
        detlab(&args)
    };
    let o = export(false);
    assert!(o.status.success(), "{}", text(&o));
    // What a killed export leaves behind goes with the next complete one.
    std::fs::write(out.join(".instances_train.json.99999999.0.tmp"), b"partial").unwrap();
    let o = export(false);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!out.join(".instances_train.json.99999999.0.tmp").exists());
    let exported = std::fs::read(out.join("instances_train.json")).unwrap();

    std::fs::write(d.join("b.xml"), "<annotation><object>").unwrap();
    let o = export(true);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("b.xml"), "{}", text(&o));
    assert!(text(&o).contains("nothing was written"), "{}", text(&o));
    assert_eq!(
        std::fs::read(out.join("instances_train.json")).unwrap(),
        exported,
        "--strict left the previous export as it was"
    );

    std::fs::write(d.join("a.xml"), "<annotation><object>").unwrap();
    for strict in [false, true] {
        let o = export(strict);
        assert!(!o.status.success(), "{}", text(&o));
        let t = text(&o);
        assert!(t.contains("every image was left out (2)"), "{t}");
        assert!(t.contains("a.xml") && t.contains("b.xml"), "{t}");
    }
}

#[test]
fn export_refuses_two_images_of_one_name_and_odd_project_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("imgs");
    for p in ["x.jpg", "train/x.jpg"] {
        write_image(&d.join(p), 64, 48);
        write_voc(&d.join(p), &[("Cola", [2.0, 3.0, 20.0, 30.0])]);
    }
    let out = dir.path().join("out");
    let o = detlab(&[
        "export",
        "coco",
        "--images",
        d.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--split-by-folder",
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("would both be train/x.jpg"),
        "{}",
        text(&o)
    );
    assert!(!out.exists(), "nothing written");
    std::fs::remove_file(d.join("x.jpg")).unwrap();
    for project in ["../../evil", "", ".hidden", "a/b"] {
        let o = detlab(&[
            "export",
            "coco",
            "--images",
            d.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--layout",
            "zylo117",
            "--project",
            project,
        ]);
        assert!(!o.status.success(), "{project}: {}", text(&o));
        assert!(text(&o).contains("plain folder name"), "{}", text(&o));
    }
    assert!(!out.exists() && !dir.path().join("evil").exists());
}

#[test]
fn export_names_a_yolo_label_without_its_class_list() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("imgs");
    write_image(&d.join("a.jpg"), 64, 48);
    write_voc(&d.join("a.jpg"), &[("Cola", [2.0, 3.0, 20.0, 30.0])]);
    write_image(&d.join("c.jpg"), 64, 48);
    std::fs::write(d.join("c.txt"), "0 0.5 0.5 0.2 0.2\n").unwrap();
    let out = dir.path().join("out");
    let o = detlab(&[
        "export",
        "coco",
        "--images",
        d.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // Skipped and named, not exported as an image without boxes.
    assert!(
        text(&o).contains("c.txt looks like a YOLO label file"),
        "{}",
        text(&o)
    );
    let train = CocoDataset::read(&out.join("instances_train.json")).unwrap();
    assert_eq!(train.images.len(), 1);
}
