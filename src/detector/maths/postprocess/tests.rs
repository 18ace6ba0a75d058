use super::*;

/// Three anchors (yxyx), two classes. Anchor 0 and 1 overlap heavily; anchor 2 is apart.
const ANCHORS: [[f32; 4]; 3] = [
    [0.0, 0.0, 10.0, 10.0],
    [0.0, 1.0, 10.0, 11.0],
    [50.0, 50.0, 70.0, 90.0],
];
const REGRESSION: [[f32; 4]; 3] = [[0.0; 4]; 3];

fn outputs<'a>(cls: &'a [f32]) -> ImageOutputs<'a> {
    ImageOutputs {
        regression: DeltaRows::new(&REGRESSION),
        classification: cls,
        num_classes: 2,
        anchors: YxyxRows::new(&ANCHORS),
        input_width: 64,
        input_height: 64,
    }
}

#[test]
fn per_class_and_agnostic_nms() {
    // Anchor 0: class 0 (0.9); anchor 1: class 1 (0.8); anchor 2: class 0 (0.3).
    let cls = [0.9, 0.1, 0.2, 0.8, 0.3, 0.25];
    let cfg = SelectConfig {
        score_threshold: 0.2,
        iou_threshold: 0.5,
        class_agnostic: false,
        nms: Default::default(),
        max_detections: None,
    };
    let d = postprocess(&outputs(&cls), None, &cfg).unwrap();
    assert_eq!(
        d.iter().map(|d| (d.class_id, d.score)).collect::<Vec<_>>(),
        vec![(0, 0.9), (1, 0.8), (0, 0.3)]
    );
    // Anchor 2 is clipped by the 64×64 input: x2 90 → 63, y2 70 → 63.
    assert_eq!(d[2].bbox, BoxXyxy::new(50.0, 50.0, 63.0, 63.0));
    let agnostic = SelectConfig {
        class_agnostic: true,
        ..cfg
    };
    let d = postprocess(&outputs(&cls), None, &agnostic).unwrap();
    assert_eq!(d.iter().map(|d| d.class_id).collect::<Vec<_>>(), vec![0, 0]);
}

#[test]
fn thresholds_are_strict_and_caps_apply() {
    let cls = [0.9, 0.1, 0.2, 0.8, 0.3, 0.25];
    let c = Candidates::from_outputs(&outputs(&cls), 0.05, None).unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(c.scores(), [0.9, 0.8, 0.3]);
    let base = SelectConfig {
        score_threshold: 0.3,
        iou_threshold: 0.5,
        class_agnostic: false,
        nms: Default::default(),
        max_detections: None,
    };
    assert_eq!(c.select(&base).len(), 2); // 0.3 is not > 0.3
    assert_eq!(
        c.select(&SelectConfig {
            max_detections: Some(1),
            ..base
        })
        .len(),
        1
    );
    assert_eq!(
        c.select(&SelectConfig {
            max_detections: Some(0),
            ..base
        })
        .len(),
        0
    );
    // Pre-NMS top-k keeps the best k anchors.
    let top1 = Candidates::from_outputs(&outputs(&cls), 0.05, Some(1)).unwrap();
    assert_eq!(
        (top1.anchors.clone(), top1.classes.clone()),
        (vec![0], vec![0])
    );
}

#[test]
fn mismatched_lengths_are_errors() {
    assert!(Candidates::from_outputs(&outputs(&[0.5; 5]), 0.05, None).is_err());
}

#[test]
fn detections_map_back_to_the_original_image() {
    let lb = Letterbox::new(640, 480, 512);
    let dets = [
        Detection {
            bbox: BoxXyxy::new(0.0, 0.0, 512.0, 384.0),
            score: 0.5,
            class_id: 1,
        },
        Detection {
            bbox: BoxXyxy::new(10.0, 400.0, 20.0, 500.0),
            score: 0.4,
            class_id: 0,
        }, // in the padding
    ];
    let back = to_original(&dets, &lb);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].bbox, BoxXyxy::new(0.0, 0.0, 640.0, 480.0));
}

/// 20,000 deterministic candidates, 2 classes, scores uniform in [0, 1). `clusters`:
/// candidates jitter around that many objects (most are suppressed, so NMS visits all of
/// them); 0 for uniformly random boxes. `jitter` is the centre jitter in pixels: small
/// (4) gives near-duplicates (IoU ≫ 0.5), large (30) spreads the IoUs over the whole
/// 0–1 range, so that the thresholds decide.
fn many_candidates(clusters: usize, jitter: f32) -> Candidates {
    let n = 20_000;
    let mut anchors = Vec::with_capacity(n);
    let mut cls = Vec::with_capacity(n * 2);
    let mut state = 12345u64;
    let mut rnd = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let centres: Vec<(f32, f32, f32)> = (0..clusters)
        .map(|_| (rnd() * 400.0, rnd() * 400.0, 20.0 + rnd() * 80.0))
        .collect();
    for i in 0..n {
        let (y, x, s) = if clusters == 0 {
            (rnd() * 500.0, rnd() * 500.0, 8.0 + rnd() * 100.0)
        } else {
            let (cy, cx, cs) = centres[i % clusters];
            (
                cy + rnd() * jitter,
                cx + rnd() * jitter,
                cs * (0.95 + rnd() * 0.1),
            )
        };
        anchors.push([y, x, y + s, x + s * 0.7]);
        cls.push(rnd());
        cls.push(rnd());
    }
    let reg = vec![[0.0f32; 4]; n];
    let out = ImageOutputs {
        regression: DeltaRows::new(&reg),
        classification: &cls,
        num_classes: 2,
        anchors: YxyxRows::new(&anchors),
        input_width: 512,
        input_height: 512,
    };
    let c = Candidates::from_outputs(&out, 0.0, None).unwrap();
    assert_eq!(c.len(), n);
    c
}

/// Greedy NMS written out plainly, as the reference for `select`: walk the candidates by
/// descending score (stable: equal scores keep their order), keep those scoring strictly
/// above the threshold whose IoU (in f64, from the corners) with every box already kept in
/// their group (their class, or one group when class-agnostic) is at most the IoU
/// threshold, until the cap. Returns the indices of the kept candidates, in order.
fn reference_nms(c: &Candidates, cfg: &SelectConfig) -> Vec<usize> {
    let boxes = c.boxes();
    let iou = |a: &XyxyF32, b: &XyxyF32| -> f64 {
        let [ax1, ay1, ax2, ay2] = [a.x1, a.y1, a.x2, a.y2].map(f64::from);
        let [bx1, by1, bx2, by2] = [b.x1, b.y1, b.x2, b.y2].map(f64::from);
        let w = (ax2.min(bx2) - ax1.max(bx1)).max(0.0);
        let h = (ay2.min(by2) - ay1.max(by1)).max(0.0);
        let inter = w * h;
        inter / ((ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter)
    };
    let mut order: Vec<usize> = (0..c.len()).collect();
    order.sort_by(|&i, &j| c.scores()[j].total_cmp(&c.scores()[i]));
    let cap = cfg.max_detections.unwrap_or(usize::MAX);
    let mut kept: Vec<usize> = Vec::new();
    for i in order {
        if kept.len() >= cap {
            break;
        }
        if c.scores()[i] <= cfg.score_threshold {
            continue;
        }
        let same_group = |k: usize| cfg.class_agnostic || c.classes()[k] == c.classes()[i];
        if kept
            .iter()
            .all(|&k| !same_group(k) || iou(&boxes[k], &boxes[i]) <= cfg.iou_threshold)
        {
            kept.push(i);
        }
    }
    kept
}

/// Re-filtering 20,000 candidates (the review sliders' case) keeps exactly what a plain
/// greedy NMS keeps, for near-duplicate clusters, spread-out clusters and random boxes,
/// per-class and class-agnostic, three IoU thresholds, with and without the cap.
/// How fast it is, is a benchmark, not a timed assertion here: `detlab bench review`
/// (BENCHMARKS.md) times `select` on 20,000 candidates, its "10 centres" rows in this
/// worst case of the app's settings, where the cap is never reached.
#[test]
fn refiltering_many_candidates_matches_a_plain_greedy_nms() {
    let sets = [
        ("random", many_candidates(0, 0.0), vec![Some(100)]),
        (
            "10 tight clusters",
            many_candidates(10, 4.0),
            vec![Some(100), None],
        ),
        (
            "60 loose clusters",
            many_candidates(60, 30.0),
            vec![Some(100), None],
        ),
    ];
    for (name, c, caps) in &sets {
        for &max_detections in caps {
            for class_agnostic in [false, true] {
                for iou_threshold in [0.3, 0.5, 0.7] {
                    let cfg = SelectConfig {
                        score_threshold: 0.05,
                        iou_threshold,
                        class_agnostic,
                        nms: Default::default(),
                        max_detections,
                    };
                    let got = c.select(&cfg);
                    let want: Vec<Detection> = reference_nms(c, &cfg)
                        .into_iter()
                        .map(|i| Detection {
                            bbox: BoxXyxy::new(
                                f64::from(c.boxes()[i].x1),
                                f64::from(c.boxes()[i].y1),
                                f64::from(c.boxes()[i].x2),
                                f64::from(c.boxes()[i].y2),
                            ),
                            score: c.scores()[i],
                            class_id: c.classes()[i] as usize,
                        })
                        .collect();
                    assert!(
                        got == want,
                        "{name}, {cfg:?}: select keeps {} boxes, the reference {}; first \
                         difference at {:?}",
                        got.len(),
                        want.len(),
                        got.iter().zip(&want).position(|(a, b)| a != b)
                    );
                }
            }
        }
    }
    // The sets do what their names say: the cap binds on random boxes; tight clusters
    // keep far fewer than 100, so every candidate is visited.
    let cfg = SelectConfig {
        score_threshold: 0.0,
        iou_threshold: 0.5,
        class_agnostic: false,
        nms: Default::default(),
        max_detections: Some(100),
    };
    assert_eq!(sets[0].1.select(&cfg).len(), 100);
    let kept = sets[1].1.select(&cfg).len();
    assert!((10..100).contains(&kept), "{kept}");
}

#[test]
fn from_parts_round_trips_and_validates() {
    let cls = [0.9, 0.1, 0.2, 0.8, 0.3, 0.25];
    let c = Candidates::from_outputs(&outputs(&cls), 0.05, None).unwrap();
    let rebuilt = Candidates::from_parts(
        c.boxes().to_vec(),
        c.scores().to_vec(),
        c.classes().to_vec(),
        c.anchor_indices().to_vec(),
    )
    .unwrap();
    assert_eq!(rebuilt, c); // areas recomputed identically
    let cfg = SelectConfig::default();
    assert_eq!(rebuilt.select(&cfg), c.select(&cfg));

    let b = XyxyF32 {
        x1: 0.0,
        y1: 0.0,
        x2: 4.0,
        y2: 4.0,
    };
    let empty = Candidates::from_parts(vec![], vec![], vec![], vec![]).unwrap();
    assert!(empty.is_empty());
    // Mismatched lengths.
    let e = Candidates::from_parts(vec![b], vec![0.5, 0.4], vec![0, 0], vec![0, 1]);
    assert!(e.unwrap_err().0.contains("do not match"));
    // Non-finite score.
    let e = Candidates::from_parts(vec![b, b], vec![0.5, f32::NAN], vec![0, 0], vec![0, 1]);
    assert!(e.unwrap_err().0.contains("non-finite"));
    // Ascending scores.
    let e = Candidates::from_parts(vec![b, b], vec![0.4, 0.5], vec![0, 0], vec![0, 1]);
    assert!(e.unwrap_err().0.contains("descending"));
    // Ties are fine.
    let ok = Candidates::from_parts(vec![b, b], vec![0.5, 0.5], vec![0, 1], vec![0, 1]).unwrap();
    assert_eq!(ok.len(), 2);
}

/// Soft-NMS through the review's live filter: on the same candidates, hard NMS with
/// Soft-NMS's `Hard` equals the default path; linear Soft-NMS keeps the overlapping
/// facing hard NMS removes, with its score decayed by `1 − IoU`, and the score threshold
/// applies to the decayed score.
#[test]
fn select_with_soft_nms() {
    let xy = |x1, y1, x2, y2| XyxyF32 { x1, y1, x2, y2 };
    // Two touching-and-overlapping facings: IoU(0, 1) = 0.5 exactly; box 2 far away.
    let c = Candidates::from_parts(
        vec![
            xy(0.0, 0.0, 10.0, 10.0),
            xy(0.0, 0.0, 10.0, 5.0),
            xy(50.0, 0.0, 60.0, 10.0),
        ],
        vec![0.9, 0.8, 0.5],
        vec![0, 0, 0],
        vec![0, 1, 2],
    )
    .unwrap();
    let hard = SelectConfig {
        score_threshold: 0.1,
        iou_threshold: 0.3,
        ..SelectConfig::default()
    };
    let scores = |cfg: &SelectConfig| c.select(cfg).iter().map(|d| d.score).collect::<Vec<_>>();
    assert_eq!(scores(&hard), vec![0.9, 0.5]);
    let linear = SelectConfig {
        nms: NmsMethod::Linear,
        ..hard
    };
    assert_eq!(scores(&linear), vec![0.9, 0.5, 0.4]);
    assert_eq!(c.select(&linear)[2].bbox, xy(0.0, 0.0, 10.0, 5.0).to_box());
    // The decayed 0.4 is below a 0.45 threshold.
    assert_eq!(
        scores(&SelectConfig {
            score_threshold: 0.45,
            ..linear
        }),
        vec![0.9, 0.5]
    );
    // Gaussian σ = 0.5: 0.8 · exp(−0.25 / 0.5) = 0.485225 (above 0.5? no: it ranks last).
    let gauss = c.select(&SelectConfig {
        nms: NmsMethod::Gaussian { sigma: 0.5 },
        ..hard
    });
    assert_eq!(gauss.len(), 3);
    assert!((f64::from(gauss[2].score) - 0.8 * (-0.5f64).exp()).abs() < 1e-6);
    // The cap counts kept boxes.
    assert_eq!(
        c.select(&SelectConfig {
            max_detections: Some(2),
            ..linear
        })
        .len(),
        2
    );
}
