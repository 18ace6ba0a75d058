//! YOLO label lines (`formats::yolo::parse`) with a classes.txt (`ClassList::parse`).
//! Input layout: 4 bytes of image size (two u16), the classes file, a NUL, the label text.
#![no_main]
use detlab::dataset::ClassList;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let w = u16::from_le_bytes([data[0], data[1]]) as u32;
    let h = u16::from_le_bytes([data[2], data[3]]) as u32;
    let rest = &data[4..];
    let (classes, labels) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&b"a\nb\nc\n"[..], rest),
    };
    let Ok(classes) = ClassList::parse(classes) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(labels) else {
        return;
    };
    if let Ok(boxes) = detlab::formats::yolo::parse(text, &classes, w, h) {
        for b in &boxes {
            assert!(classes.id(&b.class_name).is_some());
        }
    }
});
