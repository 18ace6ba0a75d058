use super::*;
use crate::dataset::{load_labels, LabelBox};
use crate::geometry::BoxXyxy;

fn annotation() -> ImageAnnotation {
    let mut ann = ImageAnnotation::new("a.jpg", 64, 48);
    ann.boxes
        .push(LabelBox::new("Cola", BoxXyxy::new(5.0, 6.0, 30.0, 40.0)));
    ann
}

fn save_voc(io: &mut LabelIo, image: &Path) {
    io.save(
        image,
        None,
        LabelFormat::Voc,
        annotation(),
        ClassList::new(),
        None,
    );
}

#[test]
fn requests_run_in_order_and_a_barrier_waits_for_the_saves_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("a.jpg");
    let mut io = LabelIo::new(None);
    save_voc(&mut io, &image);
    let ticket = io.load(LoadPurpose::Open, &image, None, LabelFormat::Yolo);
    io.barrier().recv().unwrap();
    assert!(dir.path().join("a.xml").is_file());
    assert!(matches!(io.wait(), Some(LabelReply::Saved { .. })));
    match io.wait() {
        Some(LabelReply::Loaded { ticket: t, doc, .. }) => {
            assert_eq!(t, ticket);
            assert_eq!(doc.format, LabelFormat::Voc);
            assert_eq!(doc.annotation.boxes, annotation().boxes);
        }
        other => panic!("{other:?}"),
    }
    assert!(!io.busy() && io.wait().is_none());
}

#[test]
fn a_reader_on_another_thread_sees_the_saves_asked_for_before() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("a.jpg");
    let mut io = LabelIo::new(None);
    let reader = io.reader();
    save_voc(&mut io, &image);
    let read = std::thread::spawn(move || reader.read(&image, None))
        .join()
        .unwrap();
    assert_eq!(read.unwrap().unwrap().boxes, annotation().boxes);
    assert!(matches!(io.wait(), Some(LabelReply::Saved { .. })));
    assert!(io.wait().is_none(), "a read answers on its own channel");
}

/// Two saves asked for before the first reply (an accept, then a relabel of the
/// accepted box) carry the same base: the second is not merged with the first as if
/// someone else had written it (that gave one box of each class).
#[test]
fn saves_in_quick_succession_do_not_merge_with_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("a.jpg");
    let mut io = LabelIo::new(None);
    io.load(LoadPurpose::Open, &image, None, LabelFormat::Voc);
    let Some(LabelReply::Loaded { doc, .. }) = io.wait() else {
        panic!("no document")
    };
    let base = doc.base.clone().expect("a base");
    let mut sprite = annotation();
    sprite.boxes[0].class_name = "Sprite".into();
    for ann in [sprite, annotation(), annotation()] {
        let base = Some(base.clone());
        io.save(&image, None, LabelFormat::Voc, ann, ClassList::new(), base);
    }
    for _ in 0..3 {
        match io.wait() {
            Some(LabelReply::Saved {
                annotation, other, ..
            }) => {
                assert_eq!(other, None);
                assert_eq!(annotation.boxes.len(), 1, "{annotation:?}");
            }
            other => panic!("{other:?}"),
        }
    }
    let on_disk = load_labels(&image, None).unwrap().unwrap().annotation;
    assert_eq!(on_disk.boxes, annotation().boxes);
}

#[test]
fn a_save_merges_what_someone_else_wrote_since_the_read() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("a.jpg");
    let mut io = LabelIo::new(None);
    // Read: no label file yet.
    io.load(LoadPurpose::Open, &image, None, LabelFormat::Voc);
    let Some(LabelReply::Loaded { doc, .. }) = io.wait() else {
        panic!("no document")
    };
    let base = doc.base.clone().expect("a base");
    assert!(base.stamp.is_none());
    // Someone else saves a box meanwhile.
    save_voc(&mut io, &image);
    assert!(matches!(
        io.wait(),
        Some(LabelReply::Saved { other: None, .. })
    ));
    // We save another box, based on the read.
    let mut ours = annotation();
    ours.boxes[0] = LabelBox::new("Fanta", BoxXyxy::new(40.0, 6.0, 60.0, 40.0));
    io.save(
        &image,
        None,
        LabelFormat::Voc,
        ours,
        ClassList::new(),
        Some(base),
    );
    match io.wait() {
        Some(LabelReply::Saved {
            annotation: written,
            other,
            base,
            ..
        }) => {
            assert_eq!(other, Some(OtherWriter::Merged));
            assert_eq!(written.boxes.len(), 2);
            assert_eq!(base.annotation.boxes.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    let on_disk = load_labels(&image, None).unwrap().unwrap().annotation;
    assert_eq!(on_disk.boxes.len(), 2, "both boxes are in the file");
}

#[test]
fn a_relabel_finds_moved_boxes_and_saves() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("a.jpg");
    let mut io = LabelIo::new(None);
    let mut two = annotation();
    two.boxes
        .push(LabelBox::new("Cola", BoxXyxy::new(40.0, 6.0, 60.0, 40.0)));
    io.save(&image, None, LabelFormat::Voc, two, ClassList::new(), None);
    assert!(matches!(io.wait(), Some(LabelReply::Saved { .. })));
    // Box 1 as read, and a box that is gone; box 0 is asked for at a stale index.
    let wanted = vec![
        (0, BoxXyxy::new(40.0, 6.0, 60.0, 40.0)),
        (1, BoxXyxy::new(1.0, 1.0, 2.0, 2.0)),
    ];
    let (v, c) = (LabelFormat::Voc, ClassList::new());
    io.relabel(&image, None, v, wanted, "Fanta".into(), c);
    match io.wait() {
        Some(LabelReply::Relabelled {
            missing: 1,
            error: None,
            saved: Some(saved),
            ..
        }) => assert!(matches!(*saved, LabelReply::Saved { .. })),
        other => panic!("{other:?}"),
    }
    let on_disk = load_labels(&image, None).unwrap().unwrap().annotation;
    let names: Vec<&str> = on_disk
        .boxes
        .iter()
        .map(|b| b.class_name.as_str())
        .collect();
    assert_eq!(names, ["Cola", "Fanta"]);
}

#[test]
fn a_failed_save_hands_the_labels_back() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where the label file should go: the atomic rename onto it fails.
    std::fs::create_dir(dir.path().join("a.xml")).unwrap();
    let mut io = LabelIo::new(None);
    let image = dir.path().join("a.jpg");
    save_voc(&mut io, &image);
    match io.wait() {
        Some(LabelReply::SaveFailed { doc, message, .. }) => {
            assert!(doc.is_dirty(), "{message}");
            assert_eq!(doc.annotation.boxes, annotation().boxes);
        }
        other => panic!("{other:?}"),
    }
}
