//! Pascal VOC XML (`formats::voc::parse`, over `xml_tree`), and a write/re-parse round trip
//! of whatever it accepts.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ann) = detlab::formats::voc::parse(xml) {
        let again = detlab::formats::voc::to_string(&ann, std::path::Path::new("img.jpg"));
        detlab::formats::voc::parse(&again).expect("detlab's own VOC output must parse");
    }
});
