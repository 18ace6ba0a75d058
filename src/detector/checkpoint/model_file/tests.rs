//! Unit tests of the model file: round trip, key checks, refused files and metadata.

use super::meta::{KEY_ANCHORS, KEY_ARCH, KEY_CLASSES, KEY_INPUT, KEY_NORM, KEY_VERSION};
use super::*;
use crate::detector::checkpoint::arch::ModelArch;

fn tensor(name: &str, shape: &[usize], values: &[f32]) -> CheckpointTensor {
    CheckpointTensor {
        name: name.into(),
        dtype: DType::F32,
        shape: shape.to_vec(),
        data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

fn sample() -> ModelFile {
    ModelFile {
        meta: ModelMeta::for_arch(ModelArch::Lite0, vec!["Sprite".into(), "Cola".into()]),
        tensors: vec![
            tensor("a.weight", &[2, 1], &[1.5, -2.0]),
            tensor("b.bias", &[], &[3.0]),
        ],
    }
}

#[test]
fn writes_and_reads_back_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let mut m = sample();
    m.meta.source = Some("unit test".into());
    m.write(&path).unwrap();
    let back = ModelFile::read(&path).unwrap();
    assert_eq!(back.meta, m.meta);
    let mut sorted = back.tensors.clone();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(sorted, m.tensors);
    assert_eq!(back.meta.normalization, Normalization::LITE);
    assert_eq!(back.meta.anchors.anchor_scale, 3.0);
    assert_eq!(back.meta.input_size, 320);
}

#[test]
fn key_check_lists_problems() {
    let m = sample();
    let expected = vec![
        ("a.weight".to_string(), vec![2, 1]),
        ("b.bias".to_string(), vec![]),
    ];
    m.check_keys(&expected).unwrap();
    let expected = vec![
        ("a.weight".to_string(), vec![1, 2]),
        ("c".to_string(), vec![4]),
    ];
    let err = m.check_keys(&expected).unwrap_err().to_string();
    assert!(
        err.contains("1 missing, 1 unexpected and 1 mis-shaped"),
        "{err}"
    );
    assert!(err.contains("lite0"), "{err}");
    // Integer weights under the right names and shapes are not a model's.
    let mut ints = sample();
    ints.tensors[0].dtype = crate::detector::checkpoint::DType::I32;
    let expected = vec![
        ("a.weight".to_string(), vec![2, 1]),
        ("b.bias".to_string(), vec![]),
    ];
    let err = ints.check_keys(&expected).unwrap_err().to_string();
    assert!(err.contains("`a.weight` is stored as I32"), "{err}");
}

#[test]
fn rejects_foreign_and_broken_files() {
    let plain = safetensors::serialize([("x", &tensor("x", &[1], &[1.0]))], None).unwrap();
    assert!(matches!(
        ModelFile::from_bytes(&plain),
        Err(ModelFileErrorKind::NotDetlab)
    ));
    assert!(matches!(
        ModelFile::from_bytes(b"garbage"),
        Err(ModelFileErrorKind::SafeTensors(_))
    ));
    let mut meta = sample().meta.to_metadata().unwrap();
    meta.insert(KEY_ARCH.into(), "d11".into());
    let bad = safetensors::serialize([("x", &tensor("x", &[1], &[1.0]))], Some(meta)).unwrap();
    let err = ModelFile::from_bytes(&bad).unwrap_err().to_string();
    assert!(err.contains("detlab.arch") && err.contains("d11"), "{err}");
    let mut meta = sample().meta.to_metadata().unwrap();
    meta.insert(KEY_VERSION.into(), "99".into());
    let newer = safetensors::serialize([("x", &tensor("x", &[1], &[1.0]))], Some(meta)).unwrap();
    assert!(matches!(
        ModelFile::from_bytes(&newer),
        Err(ModelFileErrorKind::NewerVersion(99))
    ));
}

/// Every number of the metadata is checked when a file is read (an input size of a
/// million once made `predict` abort on a 3 TB allocation) and before one is written.
#[test]
fn absurd_numbers_are_refused_on_read_and_write() {
    let x = tensor("x", &[1], &[1.0]);
    let cases: [(&str, &str); 8] = [
        (KEY_INPUT, "1000000"),
        (KEY_INPUT, "2056"),
        (KEY_INPUT, "99999999999"),
        (KEY_INPUT, "0"),
        (
            KEY_ANCHORS,
            r#"{"anchor_scale":1e300,"scales":[1.0],"ratios":[[1.0,1.0]],"min_level":3,"max_level":7}"#,
        ),
        (
            KEY_ANCHORS,
            r#"{"anchor_scale":4.0,"scales":[1.0],"ratios":[[1.0,1e-9]],"min_level":3,"max_level":7}"#,
        ),
        (
            KEY_ANCHORS,
            r#"{"anchor_scale":4.0,"scales":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"ratios":[[1.0,1.0]],"min_level":3,"max_level":7}"#,
        ),
        (
            KEY_NORM,
            r#"{"pixel_scale":255.0,"mean":[0,0,0],"std":[0,1,1]}"#,
        ),
    ];
    for (key, value) in cases {
        let mut meta = sample().meta.to_metadata().unwrap();
        meta.insert(key.into(), value.into());
        let bytes = safetensors::serialize([("x", &x)], Some(meta)).unwrap();
        let err = ModelFile::from_bytes(&bytes).unwrap_err();
        assert!(
            matches!(err, ModelFileErrorKind::BadMetadata { key: k, .. } if k == key),
            "{key} = {value}: {err}"
        );
    }
    let many: Vec<String> = (0..=crate::detector::settings::MAX_CLASSES)
        .map(|i| format!("c{i}"))
        .collect();
    let mut meta = sample().meta.to_metadata().unwrap();
    meta.insert(KEY_CLASSES.into(), serde_json::to_string(&many).unwrap());
    let bytes = safetensors::serialize([("x", &x)], Some(meta)).unwrap();
    let err = ModelFile::from_bytes(&bytes).unwrap_err().to_string();
    assert!(err.contains("detlab.class_names"), "{err}");

    // Read through a path, the error names the file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.safetensors");
    let mut meta = sample().meta.to_metadata().unwrap();
    meta.insert(KEY_INPUT.into(), "1000000".into());
    std::fs::write(
        &path,
        safetensors::serialize([("x", &x)], Some(meta)).unwrap(),
    )
    .unwrap();
    let err = ModelFile::read(&path).unwrap_err().to_string();
    assert!(
        err.contains("huge.safetensors") && err.contains("1000000"),
        "{err}"
    );
    // And no such file is written.
    let mut m = sample();
    m.meta.input_size = 1_000_000;
    let out = dir.path().join("out.safetensors");
    assert!(m.write(&out).is_err());
    assert!(!out.exists());
}

#[test]
fn non_finite_weights_are_found() {
    let mut m = sample();
    m.check_finite().unwrap();
    m.tensors[0] = tensor("a.weight", &[2, 1], &[1.5, f32::NAN]);
    let err = m.check_finite().unwrap_err().to_string();
    assert!(err.contains("a.weight") && err.contains("NaN"), "{err}");
}

#[test]
fn failed_write_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let mut m = sample();
    m.tensors.push(tensor("a.weight", &[1], &[0.0]));
    assert!(m.write(&path).is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
