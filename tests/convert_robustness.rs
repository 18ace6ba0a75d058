//! `detlab convert` and the label-format readers against the inputs of a robustness sweep:
//! a label size that disagrees with the image, YOLO class files with blank or repeated
//! lines, class names that cannot be a class, a COCO file without `annotations`, outputs
//! in the way, and conversions with nothing to convert. Each case was once a silent
//! change of the labels (or a partial write); now it is a warning or an error naming the
//! file, and an error writes nothing.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{detlab, text};
use detlab::dataset::{ClassList, LabelFormat};
use detlab::export::{convert, ConvertOptions, Source};
use detlab::formats::voc;
use detlab::geometry::BoxXyxy;

fn write_image(path: &Path, w: u32, h: u32) {
    image::RgbImage::new(w, h).save(path).unwrap();
}

fn options(source: Source, to: LabelFormat, images: &Path, out: &Path) -> ConvertOptions {
    ConvertOptions {
        source,
        to,
        images_dir: images.to_path_buf(),
        out_dir: out.to_path_buf(),
        classes: ClassList::new(),
    }
}

fn from(format: LabelFormat) -> Source {
    Source::Labels {
        format,
        labels_dir: None,
    }
}

/// `detlab convert ARGS...`.
fn convert_cli<S: AsRef<OsStr>>(args: &[S]) -> Output {
    let mut all: Vec<&OsStr> = vec![OsStr::new("convert")];
    all.extend(args.iter().map(AsRef::as_ref));
    detlab(&all)
}

/// Every file below `dir` with its content (empty for folders), sorted.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
                out.push((p, Vec::new()));
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

const VOC_2000: &str = "<annotation><filename>img.png</filename><size><width>2000</width>\
    <height>2000</height><depth>3</depth></size><object><name>Cola</name><bndbox><xmin>10</xmin>\
    <ymin>20</ymin><xmax>300</xmax><ymax>100</ymax></bndbox></object></annotation>";

/// Bug 4: the VOC file said 2000×2000 for a 640×480 image; `export` used the header's
/// size with a warning, `convert --to yolo` silently normalised by 2000 (10,20–300,100
/// came back as 3,5–96,24).
#[test]
fn convert_uses_the_image_header_size_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    write_image(&images.join("img.png"), 640, 480);
    std::fs::write(images.join("img.xml"), VOC_2000).unwrap();
    let yolo = dir.path().join("yolo");
    let summary = convert(&options(
        from(LabelFormat::Voc),
        LabelFormat::Yolo,
        &images,
        &yolo,
    ))
    .unwrap();
    assert_eq!(summary.size_mismatches.len(), 1, "{summary:?}");
    let reason = &summary.size_mismatches[0].reason;
    assert!(
        reason.contains("2000×2000") && reason.contains("640×480"),
        "{reason}"
    );
    assert_eq!(
        std::fs::read_to_string(yolo.join("img.txt")).unwrap(),
        "0 0.242188 0.125000 0.453125 0.166667\n"
    );
    // Back to VOC: the same box, and the real size.
    let back = dir.path().join("back");
    convert(&options(
        Source::Labels {
            format: LabelFormat::Yolo,
            labels_dir: Some(yolo),
        },
        LabelFormat::Voc,
        &images,
        &back,
    ))
    .unwrap();
    let ann = voc::read(&back.join("img.xml")).unwrap();
    assert_eq!((ann.width, ann.height), (640, 480));
    assert_eq!(ann.boxes[0].bbox, BoxXyxy::new(10.0, 20.0, 300.0, 100.0));

    // The command line prints the warning.
    let o = convert_cli(&[
        OsStr::new("--from"),
        OsStr::new("voc"),
        OsStr::new("--to"),
        OsStr::new("voc"),
        OsStr::new("--images"),
        images.as_os_str(),
        OsStr::new("--out"),
        dir.path().join("voc2").as_os_str(),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("warning: label size differs from the image header") && t.contains("2000×2000"),
        "{t}"
    );
}

/// Bug 9: the COCO image said width 100 for a 640-wide image: the box at x=300 was dropped
/// as outside and `<width>100</width>` written, exit 0.
#[test]
fn coco_import_uses_the_image_header_size_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    write_image(&images.join("a.png"), 640, 480);
    let coco = dir.path().join("c.json");
    std::fs::write(
        &coco,
        r#"{"images":[{"id":1,"file_name":"a.png","width":100,"height":480}],"categories":[{"id":1,"name":"Cola"}],
            "annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[300,100,50,50],"area":2500,"iscrowd":0}]}"#,
    )
    .unwrap();
    let out = dir.path().join("voc");
    let summary = convert(&options(
        Source::Coco(coco),
        LabelFormat::Voc,
        &images,
        &out,
    ))
    .unwrap();
    assert!(summary.dropped_boxes.is_empty(), "{summary:?}");
    assert_eq!(summary.size_mismatches.len(), 1, "{summary:?}");
    assert!(summary.size_mismatches[0].reason.contains("100×480"));
    let ann = voc::read(&out.join("a.xml")).unwrap();
    assert_eq!((ann.width, ann.height), (640, 480));
    assert_eq!(ann.boxes[0].bbox, BoxXyxy::new(300.0, 100.0, 350.0, 150.0));
}

/// Bug 5: with `classes.txt` `Cola, Cola, Sprite, Fanta` (or a blank second line), YOLO
/// id 2 (the third line: Sprite for LabelImg and Ultralytics) was read as Fanta.
#[test]
fn yolo_class_ids_are_classes_txt_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("yolo");
    std::fs::create_dir_all(&images).unwrap();
    write_image(&images.join("img.png"), 640, 480);
    std::fs::write(images.join("img.txt"), "2 0.5 0.5 0.2 0.2\n").unwrap();
    for classes in ["Cola\nCola\nSprite\nFanta\n", "Cola\n\nSprite\nFanta\n"] {
        std::fs::write(images.join("classes.txt"), classes).unwrap();
        let out = dir.path().join("voc");
        let err = convert(&options(
            from(LabelFormat::Yolo),
            LabelFormat::Voc,
            &images,
            &out,
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("img.txt") && err.contains("classes.txt, line 2"),
            "{classes:?}: {err}"
        );
        assert!(!out.exists(), "{classes:?}: nothing written");
    }
    // Trailing blank lines are fine, and id 2 is the third line.
    std::fs::write(
        images.join("classes.txt"),
        "Cola\nDiet Cola\nSprite\nFanta\n\n\n",
    )
    .unwrap();
    let out = dir.path().join("voc");
    convert(&options(
        from(LabelFormat::Yolo),
        LabelFormat::Voc,
        &images,
        &out,
    ))
    .unwrap();
    assert_eq!(
        voc::read(&out.join("img.xml")).unwrap().boxes[0].class_name,
        "Sprite"
    );

    // `--classes` gives YOLO ids too: a repeated line is refused, naming it.
    let list = dir.path().join("order.txt");
    std::fs::write(&list, "Sprite\nFanta\nSprite\n").unwrap();
    let o = convert_cli(&[
        OsStr::new("--from"),
        OsStr::new("voc"),
        OsStr::new("--to"),
        OsStr::new("yolo"),
        OsStr::new("--images"),
        out.as_os_str(),
        OsStr::new("--out"),
        dir.path().join("y2").as_os_str(),
        OsStr::new("--classes"),
        list.as_os_str(),
    ]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("order.txt, line 3") && t.contains("repeats line 1"),
        "{t}"
    );
}

/// Bug 6 (the `convert` half): YOLO files without `classes.txt` are named, with the
/// missing file, and nothing is written.
#[test]
fn yolo_labels_without_classes_txt_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("yolo");
    std::fs::create_dir_all(&images).unwrap();
    write_image(&images.join("img.png"), 64, 48);
    std::fs::write(images.join("img.txt"), "0 0.5 0.5 0.2 0.2\n").unwrap();
    let out = dir.path().join("voc");
    let err = convert(&options(
        from(LabelFormat::Yolo),
        LabelFormat::Voc,
        &images,
        &out,
    ))
    .unwrap_err()
    .to_string();
    let missing = images.join("classes.txt").display().to_string();
    assert!(
        err.contains("img.txt") && err.contains(&format!("{missing} is missing")),
        "{err}"
    );
    assert!(!out.exists());
}

/// Bug 7: a category `"Diet\nCola"` became two lines of `classes.txt`, so that Sprite
/// boxes read back as Cola; control characters and empty names broke VOC files.
#[test]
fn class_names_that_cannot_be_a_class_are_refused_naming_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    write_image(&images.join("a.png"), 64, 48);
    let out = dir.path().join("out");
    for (name, expected) in [
        ("Diet\nCola", "U+000A"),
        ("Diet\u{1}Cola", "U+0001"),
        ("Diet\0Cola", "U+0000"),
        ("", "empty"),
    ] {
        let coco = dir.path().join("c.json");
        std::fs::write(
            &coco,
            format!(
                r#"{{"images":[{{"id":1,"file_name":"a.png","width":64,"height":48}}],
                    "categories":[{{"id":1,"name":{}}},{{"id":2,"name":"Sprite"}}],
                    "annotations":[{{"id":1,"image_id":1,"category_id":1,"bbox":[1,1,9,9]}},
                                   {{"id":2,"image_id":1,"category_id":2,"bbox":[20,20,9,9]}}]}}"#,
                serde_json::to_string(name).unwrap()
            ),
        )
        .unwrap();
        for to in [LabelFormat::Yolo, LabelFormat::Voc] {
            let err = convert(&options(Source::Coco(coco.clone()), to, &images, &out))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("c.json")
                    && err.contains("categories[0] (id 1)")
                    && err.contains(expected),
                "{name:?}: {err}"
            );
            assert!(!out.exists(), "{name:?}: nothing written");
        }
    }

    // A VOC `<name>` with a line break: the file and the object are named.
    let voc_dir = dir.path().join("voc");
    std::fs::create_dir_all(&voc_dir).unwrap();
    write_image(&voc_dir.join("b.png"), 64, 48);
    std::fs::write(
        voc_dir.join("b.xml"),
        "<annotation><object><name>Sprite</name><bndbox><xmin>1</xmin><ymin>1</ymin>\
         <xmax>9</xmax><ymax>9</ymax></bndbox></object><object><name>Diet\nCola</name>\
         <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>\
         </annotation>",
    )
    .unwrap();
    let err = convert(&options(
        from(LabelFormat::Voc),
        LabelFormat::Yolo,
        &voc_dir,
        &out,
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("b.xml") && err.contains("object 2: <name>") && err.contains("U+000A"),
        "{err}"
    );
    assert!(!out.exists());
}

/// Bug 8: a COCO file without `"annotations"` was read as "no boxes" and replaced the
/// existing VOC files with empty ones (exit 0).
#[test]
fn a_coco_file_without_annotations_is_an_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    write_image(&images.join("a.png"), 64, 48);
    let voc_text = "<annotation><size><width>64</width><height>48</height></size><object>\
                    <name>Cola</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax>\
                    <ymax>9</ymax></bndbox></object></annotation>";
    std::fs::write(images.join("a.xml"), voc_text).unwrap();
    let before = snapshot(&images);
    let coco = dir.path().join("c.json");
    std::fs::write(
        &coco,
        r#"{"images":[{"id":1,"file_name":"a.png","width":64,"height":48}],"categories":[{"id":1,"name":"Cola"}]}"#,
    )
    .unwrap();
    let err = convert(&options(
        Source::Coco(coco.clone()),
        LabelFormat::Voc,
        &images,
        &images,
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("c.json") && err.contains("missing field `annotations`"),
        "{err}"
    );
    assert_eq!(snapshot(&images), before);
    // An explicit empty list is a file without boxes.
    std::fs::write(
        &coco,
        r#"{"images":[{"id":1,"file_name":"a.png","width":64,"height":48}],"categories":[],"annotations":[]}"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let summary = convert(&options(
        Source::Coco(coco),
        LabelFormat::Voc,
        &images,
        &out,
    ))
    .unwrap();
    assert_eq!((summary.written, summary.boxes), (1, 0));
}

/// Two labelled 64×48 images `a.png`, `b.png` with VOC files, in `dir/images`.
fn two_voc_images(dir: &Path) -> PathBuf {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for n in ["a", "b"] {
        write_image(&images.join(format!("{n}.png")), 64, 48);
        std::fs::write(
            images.join(format!("{n}.xml")),
            "<annotation><size><width>64</width><height>48</height></size><object>\
             <name>Cola</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax>\
             <ymax>9</ymax></bndbox></object></annotation>",
        )
        .unwrap();
    }
    images
}

/// Bug 10: with a folder in the way of the second label file (or a read-only one), the
/// first label file and `classes.txt` had already been replaced when the error came, and
/// it did not say so. Now nothing is replaced.
#[test]
fn an_output_in_the_way_stops_the_conversion_before_any_write() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let images = two_voc_images(dir.path());
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("a.txt"), "0 0.5 0.5 0.1 0.1\n").unwrap();
    std::fs::write(out.join("classes.txt"), "Old\n").unwrap();
    std::fs::create_dir(out.join("b.txt")).unwrap();
    let before = snapshot(&out);
    let o = options(from(LabelFormat::Voc), LabelFormat::Yolo, &images, &out);
    let err = convert(&o).unwrap_err().to_string();
    assert!(
        err.contains("b.txt is a folder") && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(snapshot(&out), before);

    // A read-only label file: refused while writing the set, before any rename.
    std::fs::remove_dir(out.join("b.txt")).unwrap();
    std::fs::write(out.join("b.txt"), "0 0.5 0.5 0.1 0.1\n").unwrap();
    std::fs::set_permissions(out.join("b.txt"), std::fs::Permissions::from_mode(0o444)).unwrap();
    let before = snapshot(&out);
    let err = convert(&o).unwrap_err().to_string();
    assert!(
        err.contains("b.txt") && err.contains("read-only") && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(
        snapshot(&out),
        before,
        "no file replaced, no temporary file left"
    );

    // Once writable, the whole set is written, classes.txt keeping the old id.
    std::fs::set_permissions(out.join("b.txt"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let summary = convert(&o).unwrap();
    assert_eq!(summary.written, 2);
    assert_eq!(
        std::fs::read_to_string(out.join("classes.txt")).unwrap(),
        "Old\nCola\n"
    );
    assert!(std::fs::read_to_string(out.join("b.txt"))
        .unwrap()
        .starts_with("1 "));
}

/// Bug 11: nothing converted (every label file skipped, or none found) was exit 0 and
/// still created OUT with an empty `classes.txt`.
#[test]
fn nothing_to_convert_is_an_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("yolo");
    std::fs::create_dir_all(&images).unwrap();
    write_image(&images.join("img.png"), 64, 48);
    std::fs::write(images.join("classes.txt"), "Cola\n").unwrap();
    std::fs::write(images.join("img.txt"), "0 0.5 x 0.2 0.2\n").unwrap();
    let out = dir.path().join("out");
    let o = convert_cli(&[
        OsStr::new("--from"),
        OsStr::new("yolo"),
        OsStr::new("--to"),
        OsStr::new("voc"),
        OsStr::new("--images"),
        images.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
    ]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("nothing to convert")
            && t.contains("img.png")
            && t.contains("\"x\" is not a number"),
        "{t}"
    );
    assert!(!out.exists(), "{t}");

    // No label file of the format at all.
    let err = convert(&options(
        from(LabelFormat::Voc),
        LabelFormat::Yolo,
        &images,
        &out,
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("nothing to convert") && err.contains("no Pascal VOC label file"),
        "{err}"
    );
    assert!(!out.exists());
}

/// The minor messages: `--out` a file, `--to coco`, an OS error printed twice, a VOC
/// syntax error at a byte offset.
#[test]
fn convert_messages_say_what_is_wrong_once() {
    let dir = tempfile::tempdir().unwrap();
    let images = two_voc_images(dir.path());
    let afile = dir.path().join("afile");
    std::fs::write(&afile, "hi").unwrap();
    let run = |args: &[&OsStr]| {
        let base = [
            OsStr::new("--from"),
            OsStr::new("voc"),
            OsStr::new("--images"),
        ];
        convert_cli(&[&base[..], args].concat())
    };

    let o = run(&[
        images.as_os_str(),
        OsStr::new("--to"),
        OsStr::new("yolo"),
        OsStr::new("--out"),
        afile.as_os_str(),
    ]);
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("is a file, not a folder"),
        "{t}"
    );
    assert_eq!(std::fs::read_to_string(&afile).unwrap(), "hi");

    let o = run(&[
        images.as_os_str(),
        OsStr::new("--to"),
        OsStr::new("coco"),
        OsStr::new("--out"),
        dir.path().join("x").as_os_str(),
    ]);
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("detlab export coco"),
        "{t}"
    );
    let help = text(&convert_cli(&["--help"]));
    let to_line = help
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("--to"))
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        to_line.contains("voc, yolo, createml")
            && !to_line.contains("createml, coco")
            && to_line.contains("export coco"),
        "{help}"
    );

    // The cause once, not "…: No such file or directory (os error 2): No such file…".
    let missing = dir.path().join("nope");
    let o = run(&[
        missing.as_os_str(),
        OsStr::new("--to"),
        OsStr::new("yolo"),
        OsStr::new("--out"),
        dir.path().join("x").as_os_str(),
    ]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("nope"), "{t}");
    let first_line = t.lines().find(|l| l.starts_with("error:")).unwrap();
    let cause = first_line.rsplit(": ").next().unwrap();
    assert_eq!(first_line.matches(cause).count(), 1, "{t}");

    // A VOC syntax error gives the line.
    std::fs::write(
        images.join("b.xml"),
        "<annotation>\n<size><width>64</width><height>48</height></size>\n<object><name>Cola</name>\n<bndbox><xmin>1</xmin></ymin></bndbox></object></annotation>\n",
    )
    .unwrap();
    let o = run(&[
        images.as_os_str(),
        OsStr::new("--to"),
        OsStr::new("yolo"),
        OsStr::new("--out"),
        dir.path().join("y").as_os_str(),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("skipped") && t.contains("b.xml") && t.contains("(line 4, column 30)"),
        "{t}"
    );

    // A dropped box is given as corners, not as Rust's debug text.
    std::fs::write(
        images.join("a.xml"),
        "<annotation><size><width>64</width><height>48</height></size><object><name>Cola\
         </name><bndbox><xmin>700</xmin><ymin>1</ymin><xmax>800</xmax><ymax>50</ymax>\
         </bndbox></object></annotation>",
    )
    .unwrap();
    let o = run(&[
        images.as_os_str(),
        OsStr::new("--to"),
        OsStr::new("yolo"),
        OsStr::new("--out"),
        dir.path().join("z").as_os_str(),
    ]);
    let t = text(&o);
    assert!(
        o.status.success()
            && t.contains("Cola box (700, 1)–(800, 50) is empty inside the 64×48 image"),
        "{t}"
    );
}
