//! The evaluator's COCO ground-truth reader (`CocoGroundTruth::from_json_slice`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(gt) = detlab::eval::CocoGroundTruth::from_json_slice(data) {
        let _ = gt.sorted_image_ids();
        let _ = gt.sorted_category_ids();
    }
});
