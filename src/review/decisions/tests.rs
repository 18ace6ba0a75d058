//! Tests of the review log: reading and writing it, recognising a prediction again, provenance, merging two writers, and bad files.

use super::*;

fn decision(model: &str, class: &str, b: [f64; 4], verdict: Verdict) -> Decision {
    let accepted = verdict != Verdict::Rejected;
    Decision {
        model: model.into(),
        class_name: class.into(),
        predicted: b,
        score: 0.75,
        verdict,
        label: accepted.then_some(b),
        label_class: accepted.then(|| class.to_string()),
    }
}

#[test]
fn missing_file_is_an_empty_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = ReviewLog::load(dir.path()).unwrap();
    assert!(log.is_empty());
    assert_eq!(
        ReviewLog::path(dir.path()),
        dir.path().join(".detlab").join("review.json")
    );
}

#[test]
fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = ReviewLog::new();
    let a = Path::new("sub/a.jpg");
    log.record(
        a,
        decision("m1", "cola", [1.0, 2.0, 30.0, 40.0], Verdict::Accepted),
    )
    .unwrap();
    let mut fixed = decision("m1", "sprite", [100.0, 2.0, 130.0, 40.0], Verdict::Fixed);
    fixed.label = Some([101.5, 2.0, 131.0, 44.0]);
    fixed.label_class = Some("fanta".into());
    log.record(a, fixed).unwrap();
    log.record(
        Path::new("b.jpg"),
        decision("m2", "cola", [0.5, 0.25, 9.0, 9.0], Verdict::Rejected),
    )
    .unwrap();
    log.save(dir.path()).unwrap();
    let text = std::fs::read_to_string(ReviewLog::path(dir.path())).unwrap();
    assert!(text.contains("\"version\": 1"), "{text}");
    assert!(text.contains("\"sub/a.jpg\""), "{text}");
    assert!(text.contains("\"rejected\""), "{text}");
    let back = ReviewLog::load(dir.path()).unwrap();
    assert_eq!(back, log);
    assert_eq!(back.decisions(a).len(), 2);
    assert_eq!(back.decisions(Path::new("./sub/a.jpg")).len(), 2);
    assert!(back.decisions(Path::new("c.jpg")).is_empty());
    assert_eq!(back.images().count(), 2);
}

#[test]
fn find_recognises_a_rerun_prediction() {
    let mut log = ReviewLog::new();
    let a = Path::new("a.jpg");
    log.record(
        a,
        decision("m1", "cola", [0.0, 0.0, 100.0, 100.0], Verdict::Rejected),
    )
    .unwrap();
    // IoU 0.95 with the decided box: the same prediction.
    let near = BoxXyxy::new(0.0, 0.0, 100.0, 95.0);
    assert_eq!(
        log.find(a, "m1", "cola", &near).unwrap().verdict,
        Verdict::Rejected
    );
    // IoU 0.8: another prediction.
    assert!(log
        .find(a, "m1", "cola", &BoxXyxy::new(0.0, 0.0, 100.0, 80.0))
        .is_none());
    // Other model, class or image.
    assert!(log.find(a, "m2", "cola", &near).is_none());
    assert!(log.find(a, "m1", "sprite", &near).is_none());
    assert!(log.find(Path::new("b.jpg"), "m1", "cola", &near).is_none());
    // Deciding again replaces the verdict; the closest box wins.
    log.record(
        a,
        decision("m1", "cola", [0.0, 0.0, 100.0, 99.0], Verdict::Accepted),
    )
    .unwrap();
    assert_eq!(log.decisions(a).len(), 1);
    assert_eq!(
        log.find(a, "m1", "cola", &near).unwrap().verdict,
        Verdict::Accepted
    );
    log.record(
        a,
        decision("m1", "cola", [0.0, 0.0, 100.0, 80.0], Verdict::Rejected),
    )
    .unwrap();
    assert_eq!(log.decisions(a).len(), 2);
    let d = log.find(a, "m1", "cola", &BoxXyxy::new(0.0, 0.0, 100.0, 81.0));
    assert_eq!(d.unwrap().predicted[3], 80.0);
    // Undo.
    let removed = log.remove(a, "m1", "cola", &BoxXyxy::new(0.0, 0.0, 100.0, 81.0));
    assert_eq!(removed.unwrap().predicted[3], 80.0);
    assert_eq!(log.decisions(a).len(), 1);
}

#[test]
fn provenance_traces_a_label_to_its_decision() {
    let mut log = ReviewLog::new();
    let a = Path::new("a.jpg");
    let mut fixed = decision("m1", "cola", [0.0, 0.0, 50.0, 50.0], Verdict::Fixed);
    fixed.label = Some([2.0, 3.0, 52.0, 49.0]);
    log.record(a, fixed).unwrap();
    log.record(
        a,
        decision("m1", "cola", [60.0, 0.0, 90.0, 50.0], Verdict::Rejected),
    )
    .unwrap();
    let label = LabelBox::new("cola", BoxXyxy::new(2.4, 2.6, 52.0, 49.5));
    assert_eq!(log.provenance(a, &label).unwrap().verdict, Verdict::Fixed);
    let moved = LabelBox::new("cola", BoxXyxy::new(2.6, 3.0, 52.0, 49.0));
    assert!(log.provenance(a, &moved).is_none());
    let renamed = LabelBox::new("sprite", BoxXyxy::new(2.0, 3.0, 52.0, 49.0));
    assert!(log.provenance(a, &renamed).is_none());
    // A rejected prediction never produced a label.
    let rejected = LabelBox::new("cola", BoxXyxy::new(60.0, 0.0, 90.0, 50.0));
    assert!(log.provenance(a, &rejected).is_none());
}

#[test]
fn merge_keeps_the_decisions_of_both_writers() {
    let a = Path::new("a.jpg");
    let mut base = ReviewLog::new();
    base.record(
        a,
        decision("m", "cola", [0.0, 0.0, 10.0, 10.0], Verdict::Accepted),
    )
    .unwrap();
    base.record(
        a,
        decision("m", "cola", [50.0, 0.0, 60.0, 10.0], Verdict::Accepted),
    )
    .unwrap();
    let mut ours = base.clone();
    let mut theirs = base.clone();
    // Each side decides on another prediction (and another image).
    ours.record(
        a,
        decision("m", "cola", [20.0, 0.0, 30.0, 10.0], Verdict::Accepted),
    )
    .unwrap();
    theirs
        .record(
            a,
            decision("m", "cola", [30.0, 20.0, 40.0, 30.0], Verdict::Rejected),
        )
        .unwrap();
    theirs
        .record(
            Path::new("b.jpg"),
            decision("m", "fanta", [1.0, 1.0, 9.0, 9.0], Verdict::Accepted),
        )
        .unwrap();
    // We undo the first; they reject the second (a change on their side only).
    ours.remove(a, "m", "cola", &BoxXyxy::new(0.0, 0.0, 10.0, 10.0))
        .unwrap();
    theirs
        .record(
            a,
            decision("m", "cola", [50.0, 0.0, 60.0, 10.0], Verdict::Rejected),
        )
        .unwrap();
    let merged = ReviewLog::merge(&base, &ours, &theirs);
    let d = merged.decisions(a);
    assert_eq!(d.len(), 3, "{d:?}");
    let verdict = |x: f64, y: f64| {
        merged
            .find(a, "m", "cola", &BoxXyxy::new(x, y, x + 10.0, y + 10.0))
            .map(|d| d.verdict)
    };
    assert_eq!(verdict(0.0, 0.0), None, "undone here");
    assert_eq!(verdict(50.0, 0.0), Some(Verdict::Rejected), "changed there");
    assert_eq!(verdict(20.0, 0.0), Some(Verdict::Accepted), "ours");
    assert_eq!(verdict(30.0, 20.0), Some(Verdict::Rejected), "theirs");
    assert_eq!(merged.decisions(Path::new("b.jpg")).len(), 1);
    // Merging is idempotent with nothing new on either side.
    assert_eq!(ReviewLog::merge(&merged, &merged, &merged), merged);
}

#[test]
fn non_finite_decisions_are_refused() {
    let mut log = ReviewLog::new();
    let mut d = decision("m1", "cola", [0.0, 0.0, 5.0, 5.0], Verdict::Accepted);
    d.score = f32::NAN;
    let e = log.record(Path::new("a.jpg"), d).unwrap_err();
    assert!(e.to_string().contains("a.jpg"), "{e}");
    assert!(log.is_empty());
}

#[test]
fn corrupt_file_is_an_error_naming_it_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = ReviewLog::path(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    for bad in [
        &b"{\"version\": 1, \"images\": {\"a.jpg\": [{\"model\": 3}]}}"[..],
        b"{\"images\": {}}",
        b"{\"version\": \"one\", \"images\": {}}",
        b"not json",
        b"",
        b"[1, 2]",
    ] {
        std::fs::write(&path, bad).unwrap();
        let e = ReviewLog::load(dir.path()).unwrap_err();
        assert!(matches!(e, ReviewLogError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("review.json"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), bad);
    }
}

#[test]
fn future_version_is_rejected_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = ReviewLog::path(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"{\"version\": 2, \"images\": {}, \"extra\": [1]}").unwrap();
    let e = ReviewLog::load(dir.path()).unwrap_err();
    match &e {
        ReviewLogError::UnsupportedVersion {
            found, supported, ..
        } => assert_eq!((*found, *supported), (2, 1)),
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("version 2") && msg.contains("newer"), "{msg}");
}
