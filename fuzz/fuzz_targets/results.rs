//! The evaluator's results-list reader (`detections_from_json_slice`), then a full
//! evaluation of small accepted lists against a fixed ground truth (which validates the
//! detections first and runs the matching on whatever boxes and scores they carry).
#![no_main]
use libfuzzer_sys::fuzz_target;

const GT: &[u8] = br#"{"images":[{"id":1},{"id":2}],"categories":[{"id":1},{"id":3}],
"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[0,0,10,10]},
{"id":2,"image_id":2,"category_id":3,"bbox":[5,5,100,50],"iscrowd":1}]}"#;

fuzz_target!(|data: &[u8]| {
    if let Ok(dets) = detlab::eval::detections_from_json_slice(data) {
        if dets.len() <= 64 {
            let gt = detlab::eval::CocoGroundTruth::from_json_slice(GT).unwrap();
            let _ = detlab::eval::evaluate(&gt, &dets, &detlab::eval::Params::default());
        }
    }
});
