use super::*;
use crate::detector::maths::postprocess::SelectConfig;

fn cpu(fold: bool) -> DetectorOptions {
    DetectorOptions {
        device: DeviceChoice::Cpu,
        threads: Some(1),
        fold_batchnorm: fold,
        nhwc_engine: true,
        precision: Default::default(),
    }
}

/// Lite0 at a 64-pixel input, BN statistics and affine parameters randomised so that
/// folding is not trivial.
fn small_model() -> ModelFile {
    tch::manual_seed(3);
    let mut meta = ModelMeta::for_arch(ModelArch::Lite0, vec!["Sprite".into(), "Cola".into()]);
    meta.input_size = 64;
    let det = Detector::fresh_with_meta(meta, &cpu(false)).unwrap();
    crate::detector::model::norm::randomise_statistics(&det.vs);
    det.to_model_file().unwrap()
}

fn pattern(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 7 % 256) as u8,
            (y * 13 % 256) as u8,
            ((x + y) * 3 % 256) as u8,
        ])
    })
}

#[test]
fn folded_and_plain_detectors_agree_and_boxes_stay_inside() {
    let file = small_model();
    let plain = Detector::from_model_file(&file, &cpu(false)).unwrap();
    let folded = Detector::from_model_file(&file, &cpu(true)).unwrap();
    assert!(folded.is_folded() && !plain.is_folded());
    assert!(folded.uses_nhwc_engine() && !plain.uses_nhwc_engine());
    // The engine takes one image per CPU thread (this model is small); libtorch one at a
    // time.
    assert_eq!(
        folded.default_batch_size(),
        tch::get_num_threads().max(1) as usize
    );
    assert_eq!(plain.default_batch_size(), 1);
    let mut unfolded = Detector::from_model_file(&file, &cpu(false)).unwrap();
    assert!(matches!(
        unfolded.set_nhwc_engine(true),
        Err(InferenceError::NhwcEngine)
    ));
    assert!(matches!(
        folded.to_model_file(),
        Err(InferenceError::Folded)
    ));
    let img = pattern(90, 50);
    let (x, _) = plain.preprocess(&img);
    let xs = Tensor::from_slice(&x).view([1, 3, 64, 64]);
    let (a, b) = (plain.forward(&xs).unwrap(), folded.forward(&xs).unwrap());
    let diff = |p: &Tensor, q: &Tensor| (p - q).abs().max().double_value(&[]);
    assert!(diff(&a.regression, &b.regression) < 1e-4);
    assert!(diff(&a.classification, &b.classification) < 1e-4);

    // Every anchor kept (floor 0): the same candidates, to float noise.
    let cfg = PredictConfig {
        select: SelectConfig {
            score_threshold: 0.0,
            ..SelectConfig::default()
        },
        batch_size: 2,
        ..PredictConfig::default()
    };
    let imgs = [img.clone(), pattern(40, 70), img];
    let p = plain.predict_images(&imgs, &cfg).unwrap();
    let f = folded.predict_images(&imgs, &cfg).unwrap();
    assert_eq!(p.len(), 3);
    assert_eq!(p[0].candidates.len(), plain.anchors.len());
    for (pp, ff) in p.iter().zip(&f) {
        let (ps, fs) = (pp.candidates.scores(), ff.candidates.scores());
        assert!(ps.iter().zip(fs).all(|(a, b)| (a - b).abs() < 1e-5));
        assert!(!pp.detections.is_empty() && pp.detections.len() <= 100);
        for d in &pp.detections {
            assert!(d.bbox.x1 >= 0.0 && d.bbox.y1 >= 0.0);
            assert!(d.bbox.x2 <= f64::from(pp.width) && d.bbox.y2 <= f64::from(pp.height));
            assert!(d.bbox.width() > 0.0 && d.bbox.height() > 0.0);
        }
        // Re-thresholding reuses the candidates.
        let strict = SelectConfig {
            score_threshold: 0.5,
            ..cfg.select
        };
        assert!(pp.reselect(&strict).iter().all(|d| d.score > 0.5));
    }
    // Batching does not change results beyond float noise: images 0 and 2 are the same
    // picture, in different batches.
    let (a, b) = (p[0].candidates.scores(), p[2].candidates.scores());
    assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5));
}

#[test]
fn engine_batches_hold_one_image_per_thread_up_to_eight_512_inputs() {
    assert_eq!(engine_batch_size(2, 512), 2);
    assert_eq!(engine_batch_size(16, 512), 8);
    assert_eq!(engine_batch_size(16, 320), 16);
    assert_eq!(engine_batch_size(16, 1024), 2);
    assert_eq!(engine_batch_size(16, 1536), 1);
    assert_eq!(engine_batch_size(0, 64), 1);
}

#[test]
fn bad_model_files_are_refused_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = small_model();
    file.meta.partial = true;
    let path = dir.path().join("partial.safetensors");
    file.write(&path).unwrap();
    let err = Detector::load(&path, &cpu(true)).unwrap_err().to_string();
    assert!(
        err.contains("partial") && err.contains("partial.safetensors"),
        "{err}"
    );

    let mut file = small_model();
    file.meta.partial = false;
    file.meta.class_names.push("Fanta".into()); // 3 classes, weights for 2
    let path = dir.path().join("classes.safetensors");
    file.write(&path).unwrap();
    let err = Detector::load(&path, &cpu(true)).unwrap_err().to_string();
    assert!(
        err.contains("classes.safetensors") && err.contains("mis-shaped"),
        "{err}"
    );

    let path = dir.path().join("junk.safetensors");
    std::fs::write(&path, b"not a model").unwrap();
    let err = Detector::load(&path, &cpu(true)).unwrap_err().to_string();
    assert!(err.contains("junk.safetensors"), "{err}");

    let det = Detector::from_model_file(&small_model(), &cpu(true)).unwrap();
    let wrong = Tensor::zeros([1, 3, 32, 32], (Kind::Float, Device::Cpu));
    assert!(matches!(
        det.forward(&wrong),
        Err(InferenceError::InputShape { size: 64, .. })
    ));
}

#[test]
fn expected_keys_are_the_models_variables() {
    let keys = expected_keys(ModelArch::Lite0, 2).unwrap();
    let file = small_model();
    file.check_keys(&keys).unwrap();
    assert!(expected_keys(ModelArch::Lite0, 0).is_err());
}
