//! CreateML JSON (`formats::createml::parse`), and `to_string` merging into the same text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ann) = detlab::formats::createml::parse(text, "img.jpg") {
        let _ = detlab::formats::createml::to_string(Some(text), &ann);
    }
});
