//! The COCO reader used by `convert` (serde into `CocoDataset` + `validate`), then the
//! conversion of an accepted file into per-image annotations.
#![no_main]
use detlab::formats::coco::CocoDataset;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dataset) = serde_json::from_slice::<CocoDataset>(data) else {
        return;
    };
    if dataset.validate().is_ok() {
        let _ = detlab::export::coco_to_annotations(&dataset, std::path::Path::new("images"));
    }
});
