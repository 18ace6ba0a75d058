//! Reading other tools' label files leniently, and EXIF-upright image sizes.

use std::path::{Path, PathBuf};

use detlab::dataset::{read_image_info, ClassList};
use detlab::formats::{createml, voc, yolo};
use detlab::geometry::BoxXyxy;

/// VOC2007-style file: declaration, `owner`, extra `source` children, float
/// coordinates, `occluded`, no `pose`, no `verified`.
const VOC2007_STYLE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<annotation>
  <folder>VOC2007</folder>
  <filename>000005.jpg</filename>
  <source><database>The VOC2007 Database</database><annotation>PASCAL VOC2007</annotation><image>flickr</image></source>
  <owner><flickrid>someone</flickrid><name>?</name></owner>
  <size><width>500</width><height>375</height><depth>3</depth></size>
  <segmented>0</segmented>
  <object>
    <name>chair</name>
    <truncated>0</truncated>
    <difficult>0</difficult>
    <occluded>1</occluded>
    <bndbox><xmin>263.5</xmin><ymin>211</ymin><xmax>324</xmax><ymax>339.25</ymax></bndbox>
  </object>
  <object>
    <name>chair</name>
    <bndbox><xmin>165</xmin><ymin>264</ymin><xmax>253</xmax><ymax>372</ymax></bndbox>
    <attributes><attribute><name>rotation</name><value>0.0</value></attribute></attributes>
  </object>
</annotation>
"#;

#[test]
fn voc2007_and_cvat_style_files_read_and_round_trip_their_extras() {
    let ann = voc::parse(VOC2007_STYLE).unwrap();
    assert_eq!((ann.width, ann.height), (500, 375));
    assert_eq!(ann.boxes.len(), 2);
    assert_eq!(ann.boxes[0].bbox, BoxXyxy::new(263.5, 211.0, 324.0, 339.25));
    assert!(!ann.boxes[0].difficult && !ann.verified);
    assert_eq!(ann.boxes[1].extra[0].name, "attributes");
    let written = voc::to_string(&ann, std::path::Path::new("/data/VOC2007/000005.jpg"));
    assert!(
        written.contains("\t<owner>\n\t\t<flickrid>someone</flickrid>\n"),
        "{written}"
    );
    assert!(
        written.contains("\t\t<annotation>PASCAL VOC2007</annotation>\n"),
        "{written}"
    );
    let again = voc::parse(&written).unwrap();
    assert_eq!(again.extra, ann.extra);
    assert_eq!(again.extra_source, ann.extra_source);
    assert_eq!(again.boxes[1].extra, ann.boxes[1].extra);
    // A second write is stable.
    assert_eq!(
        voc::to_string(&again, std::path::Path::new("/data/VOC2007/000005.jpg")),
        written
    );
}

#[test]
fn hostile_xml_is_refused_not_expanded() {
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>
        <annotation><filename>&lol2;</filename></annotation>"#;
    let err = voc::parse(bomb).unwrap_err();
    assert!(err.contains("entity"), "{err}");
    let deep = format!(
        "<annotation>{}{}</annotation>",
        "<a>".repeat(1000),
        "</a>".repeat(1000)
    );
    assert!(voc::parse(&deep).unwrap_err().contains("nesting"));
}

#[test]
fn other_tools_yolo_and_createml_read() {
    let classes = ClassList::from_names(["Sprite", "Cola"]);
    // Extra spaces, CRLF, and a trailing blank line.
    let boxes = yolo::parse(
        "1  0.5 0.5 0.25 0.5\r\n0 0.1 0.1 0.2 0.2\r\n\r\n",
        &classes,
        640,
        480,
    )
    .unwrap();
    assert_eq!(boxes[0].class_name, "Cola");
    assert_eq!(boxes[0].bbox, BoxXyxy::new(240.0, 120.0, 400.0, 360.0));
    // Roboflow-style CreateML with integer coordinates and no "verified".
    let text = r#"[{"image":"a.jpg","annotations":[{"label":"Cola","coordinates":{"x":50,"y":40,"width":20,"height":10}}]}]"#;
    let ann = createml::parse(text, "a.jpg").unwrap();
    assert_eq!(ann.boxes[0].bbox, BoxXyxy::new(40.0, 35.0, 60.0, 45.0));
}

/// A JPEG whose EXIF orientation says "rotate 90° clockwise" (6).
fn jpeg_with_orientation(w: u32, h: u32, orientation: u16) -> Vec<u8> {
    let mut plain = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut plain, 80)
        .encode_image(&image::RgbImage::new(w, h))
        .unwrap();
    // TIFF header (little endian), one IFD entry: 0x0112 Orientation, SHORT, 1, value.
    let mut tiff = vec![
        b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0,
    ];
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

#[test]
fn image_size_is_after_exif_orientation() {
    let dir = tempfile::tempdir().unwrap();
    let rotated = dir.path().join("phone.jpg");
    std::fs::write(&rotated, jpeg_with_orientation(64, 48, 6)).unwrap();
    let info = read_image_info(&rotated).unwrap();
    assert_eq!(
        (info.width, info.height, info.exif_transformed),
        (48, 64, true)
    );
    let upright = detlab::dataset::image_info::decode_upright_rgb(&rotated).unwrap();
    assert_eq!(upright.dimensions(), (48, 64));
    let plain = dir.path().join("plain.jpg");
    std::fs::write(&plain, jpeg_with_orientation(64, 48, 1)).unwrap();
    assert_eq!(read_image_info(&plain).unwrap().width, 64);
}

#[test]
fn broken_and_hostile_images_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("truncated.jpg");
    let full = jpeg_with_orientation(64, 48, 1);
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    let err = detlab::dataset::image_info::decode_upright_rgb(&truncated).unwrap_err();
    assert!(err.to_string().contains("truncated.jpg"), "{err}");
    let garbage = dir.path().join("garbage.png");
    std::fs::write(&garbage, b"not an image at all").unwrap();
    assert!(read_image_info(&garbage)
        .unwrap_err()
        .to_string()
        .contains("garbage.png"));
}

/// A folder `images` under `dir` with a photo EXIF turns 90° (stored 64×48, shown 48×64)
/// and a VOC file labelled on its stored pixels (LabelImg before 1.8.4): one Cola box at
/// stored x 40..60, y 2..12, upright x 36..46, y 40..60. Returns the photo and the XML.
fn stored_frame_photo(images: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(images).unwrap();
    let photo = images.join("phone.jpg");
    std::fs::write(&photo, jpeg_with_orientation(64, 48, 6)).unwrap();
    let mut ann = detlab::dataset::ImageAnnotation::new("phone.jpg", 64, 48);
    ann.boxes.push(detlab::dataset::LabelBox::new(
        "Cola",
        BoxXyxy::new(40.0, 2.0, 60.0, 12.0),
    ));
    let xml = images.join("phone.xml");
    voc::write(&xml, &ann, &photo).unwrap();
    (photo, xml)
}

/// Labels made on a phone photo's stored pixels (LabelImg before 1.8.4 ignored EXIF: the
/// VOC size is the stored 64×48 of a photo shown 48×64) are turned upright by the export,
/// with a warning, so that the COCO file matches the photo as trainers decode it.
#[test]
fn labels_in_the_stored_orientation_are_exported_upright() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    stored_frame_photo(&images);
    let out = dir.path().join("out");
    let summary = detlab::export::export_coco(
        &detlab::export::ExportOptions {
            images_dir: images,
            labels_dir: None,
            out_dir: out.clone(),
            classes: ClassList::new(),
            split: detlab::export::SplitMode::None,
            layout: detlab::export::Layout::Plain,
            difficult_as_crowd: false,
            strict: false,
        },
        &|_, _| {},
    )
    .unwrap();
    assert!(
        summary.report().contains("its boxes were turned upright"),
        "{}",
        summary.report()
    );
    let coco = detlab::formats::coco::CocoDataset::read(&out.join("instances_train.json")).unwrap();
    assert_eq!((coco.images[0].width, coco.images[0].height), (48, 64));
    // Turned 90° clockwise: stored x 40..60, y 2..12 → upright x 36..46, y 40..60.
    assert_eq!(coco.annotations[0].bbox, [36.0, 40.0, 10.0, 20.0]);
}

/// Training reads the same stored-frame labels upright: the sample takes the header's
/// size and the turned box, and says so.
#[test]
fn labels_in_the_stored_orientation_are_trained_upright() {
    use detlab::detector::train::data::{load_dataset, DataSource, ValSplit};
    let dir = tempfile::tempdir().unwrap();
    stored_frame_photo(dir.path());
    let source = DataSource::Folder {
        images: dir.path().to_path_buf(),
        labels: None,
    };
    let split = ValSplit::Fraction {
        fraction: 0.0,
        seed: 0,
    };
    let mut data = load_dataset(&source, &split).unwrap();
    assert_eq!(data.drop_unreadable(), 0);
    let s = &data.train[0];
    assert_eq!((s.width, s.height), (48, 64));
    assert_eq!(s.boxes, [BoxXyxy::new(36.0, 40.0, 46.0, 60.0)]);
    assert_eq!(data.fitted.len(), 1);
    assert!(
        data.fitted[0].1.contains("its boxes were turned upright"),
        "{:?}",
        data.fitted
    );
}

/// The app reads such a file upright too (and says so); a save writes it upright with the
/// upright size, and reading it again turns nothing twice.
#[test]
fn labels_in_the_stored_orientation_open_upright_in_the_app() {
    use detlab::app::{AppState, Command};
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("photos");
    let (_, xml) = stored_frame_photo(&images);
    let open = |app: &mut AppState| {
        app.apply(Command::OpenFolder(images.clone()));
        let start = std::time::Instant::now();
        while app.workspace.doc.is_none() || app.workspace.labels.busy() {
            assert!(start.elapsed().as_secs() < 30, "the document never came");
            app.poll_background();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    };
    let settings_path = dir.path().join("settings.json");
    let mut app = AppState::new(Default::default(), settings_path.clone(), None, None);
    open(&mut app);
    let upright = BoxXyxy::new(36.0, 40.0, 46.0, 60.0);
    let doc = app.workspace.doc.as_ref().unwrap();
    assert_eq!(doc.annotation.boxes[0].bbox, upright);
    assert_eq!((doc.annotation.width, doc.annotation.height), (48, 64));
    assert!(
        app.messages
            .iter()
            .any(|m| m.contains("phone.xml") && m.contains("turned upright")),
        "{:?}",
        app.messages
    );
    // An edit and a save: the file becomes upright.
    app.apply(Command::AddBox {
        bbox: BoxXyxy::new(2.0, 2.0, 20.0, 20.0),
        label: "Sprite".into(),
    });
    app.apply(Command::Save);
    let start = std::time::Instant::now();
    while app.workspace.labels.busy() || app.workspace.doc.as_ref().unwrap().is_dirty() {
        assert!(start.elapsed().as_secs() < 30, "the save never ended");
        app.poll_background();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let saved = voc::read(&xml).unwrap();
    assert_eq!((saved.width, saved.height), (48, 64));
    assert_eq!(saved.boxes[0].bbox, upright);
    assert_eq!(saved.boxes.len(), 2);
    let mut again = AppState::new(Default::default(), settings_path, None, None);
    open(&mut again);
    let doc = again.workspace.doc.as_ref().unwrap();
    assert_eq!(doc.annotation.boxes[0].bbox, upright);
    assert_eq!(doc.annotation.boxes.len(), 2);
}
