//! Each NHWC kernel against the libtorch operation it replaces, and the whole engine
//! against the libtorch network.

use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

use super::depthwise::Depthwise;
use super::map::{BufferPool, FeatureMap};
use super::pointwise::Pointwise;
use super::resample::{fuse, max_pool_same, upsample_nearest};
use super::stem::Stem;
use super::NhwcEfficientDet;
use crate::detector::model::norm::randomise_statistics;
use crate::detector::model::same_pad::{SameConv2d, SameConvConfig, SameMaxPool2d};
use crate::detector::model::{Activation, EfficientDet, EfficientDetConfig};
use crate::detector::precision::{cpu_has_bf16, Precision};

const OPTS: (Kind, Device) = (Kind::Float, Device::Cpu);

/// An NCHW tensor as a pooled NHWC map.
fn to_map(pool: &BufferPool, t: &Tensor) -> FeatureMap {
    let s: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let mut map = pool.map(s[0], s[2], s[3], s[1]);
    let nhwc = Vec::<f32>::try_from(t.permute([0, 2, 3, 1]).contiguous().flatten(0, -1)).unwrap();
    map.values_mut().copy_from_slice(&nhwc);
    map
}

/// Max |a − b| relative to max |b| (at least 1).
/// `len` deterministic test values `((i · step) mod modulus) / scale − shift`, which
/// spread over `[−shift, modulus / scale − shift)` without a visible pattern.
pub(super) fn scattered(
    len: usize,
    step: usize,
    modulus: usize,
    scale: f32,
    shift: f32,
) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * step) % modulus) as f32 / scale - shift)
        .collect()
}

fn rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    let scale = b.abs().max().double_value(&[]).max(1.0);
    (a - b).abs().max().double_value(&[]) / scale
}

fn conv(vs: &VarStore, cin: i64, cout: i64, k: i64, cfg: SameConvConfig) -> SameConv2d {
    let conv = SameConv2d::new(&vs.root(), cin, cout, k, cfg);
    if let Some(b) = &conv.bs {
        tch::no_grad(|| {
            b.shallow_clone()
                .copy_(&(Tensor::randn([cout], OPTS) * 0.5))
        });
    }
    conv
}

fn act_ref(act: Option<Activation>, t: Tensor) -> Tensor {
    act.map_or(t.shallow_clone(), |a| a.apply(&t))
}

#[test]
fn depthwise_matches_libtorch_with_same_padding_strides_and_means() {
    tch::manual_seed(1);
    let pool = BufferPool::default();
    // (batch, height, width, channels, kernel, stride): odd sizes, channel counts that
    // are and are not multiples of the 32/8 blocks and of the AVX-512 kernel's 16, rows
    // that end in groups of 8, 4, 2 and 1 pixels, borders narrower than the kernel.
    for (b, h, w, c, k, s) in [
        (2, 13, 10, 40, 3, 2),
        (1, 16, 16, 72, 5, 1),
        (1, 7, 9, 3, 3, 1),
        (1, 4, 3, 33, 5, 2),
        (1, 20, 24, 32, 5, 1),
        (1, 11, 23, 48, 3, 1),
        (2, 9, 29, 16, 5, 2),
        (1, 6, 30, 64, 3, 2),
        (1, 3, 2, 16, 5, 1),
    ] {
        let vs = VarStore::new(Device::Cpu);
        let dw = conv(&vs, c, c, k, SameConvConfig::default().groups(c).stride(s));
        let x = Tensor::randn([b, c, h, w], OPTS);
        let plan = Depthwise::from_conv(&dw).unwrap();
        for (act, threads) in [
            (None, 1),
            (Some(Activation::Swish), 2),
            (Some(Activation::Relu6), 1),
        ] {
            let want = tch::no_grad(|| act_ref(act, dw.forward_t(&x, false)));
            let (got, means) = plan.run(&pool, &to_map(&pool, &x), act, true, threads);
            let err = rel_diff(&got.to_nchw(), &want);
            assert!(err < 1e-5, "{b}×{h}×{w}×{c} k{k} s{s} {act:?}: {err:e}");
            let means = Tensor::from_slice(&means.unwrap()).view([b, c]);
            assert!(rel_diff(&means, &want.mean_dim(&[2i64, 3][..], false, Kind::Float)) < 1e-5);
        }
    }
}

#[test]
fn pointwise_matches_libtorch_with_residual_and_gates() {
    tch::manual_seed(2);
    let pool = BufferPool::default();
    let vs = VarStore::new(Device::Cpu);
    let pw = conv(&vs, 24, 40, 1, SameConvConfig::default());
    let plan = Pointwise::from_conv(&pw, Precision::Fp32).unwrap();
    // 2 × 70 × 50 pixels: several row blocks per image and a ragged last one.
    let x = Tensor::randn([2, 24, 70, 50], OPTS);
    let residual = Tensor::randn([2, 40, 70, 50], OPTS);
    let gates = Tensor::rand([2, 24], OPTS);
    let gate_values = Vec::<f32>::try_from(gates.flatten(0, -1)).unwrap();
    let xm = to_map(&pool, &x);
    let rm = to_map(&pool, &residual);
    for threads in [1, 2] {
        let want = tch::no_grad(|| (pw.forward_t(&x, false)).silu());
        let got = plan
            .run(&pool, &xm, Some(Activation::Swish), None, None, threads)
            .unwrap();
        assert!(rel_diff(&got.to_nchw(), &want) < 1e-5);

        let gated = &x * gates.view([2, 24, 1, 1]);
        let want = tch::no_grad(|| pw.forward_t(&gated, false) + &residual);
        let got = plan
            .run(&pool, &xm, None, Some(&rm), Some(&gate_values), threads)
            .unwrap();
        assert!(rel_diff(&got.to_nchw(), &want) < 1e-5);
    }
}

#[test]
fn stem_matches_libtorch_on_even_and_odd_inputs() {
    tch::manual_seed(3);
    let pool = BufferPool::default();
    let vs = VarStore::new(Device::Cpu);
    for cout in [32, 40, 13] {
        let stem = conv(&vs, 3, cout, 3, SameConvConfig::default().stride(2));
        let plan = Stem::new(&stem, Activation::Swish).unwrap();
        for (h, w) in [(64, 48), (33, 21)] {
            let x = Tensor::randn([2, 3, h, w], OPTS);
            let want = tch::no_grad(|| stem.forward_t(&x, false).silu());
            let got = plan.run(&pool, &x, 2).unwrap();
            assert!(rel_diff(&got.to_nchw(), &want) < 1e-5, "{cout} {h}×{w}");
        }
    }
}

#[test]
fn resampling_and_fusion_match_libtorch() {
    tch::manual_seed(4);
    let pool = BufferPool::default();
    // Negative values: the SAME max-pool pads with zeros, which then win at the borders.
    for (from, to) in [
        ((3, 3), (5, 5)),
        ((5, 4), (10, 8)),
        ((4, 4), (8, 8)),
        ((5, 5), (10, 9)),
    ] {
        let x = Tensor::randn([2, 16, from.0, from.1], OPTS) - 1.0;
        let want = x.upsample_nearest2d([to.0, to.1], None, None);
        let got = upsample_nearest(&pool, &to_map(&pool, &x), (to.0 as usize, to.1 as usize));
        assert_eq!(rel_diff(&got.to_nchw(), &want), 0.0);

        let big = Tensor::randn([2, 16, to.0, to.1], OPTS) - 1.0;
        let op = SameMaxPool2d::to_size(to, from);
        let want = op.forward_t(&big, false);
        let got = max_pool_same(&pool, &to_map(&pool, &big), op);
        assert_eq!(rel_diff(&got.to_nchw(), &want), 0.0);
    }
    let xs: Vec<Tensor> = (0..3).map(|_| Tensor::randn([1, 8, 6, 5], OPTS)).collect();
    let maps: Vec<FeatureMap> = xs.iter().map(|x| to_map(&pool, x)).collect();
    let refs: Vec<&FeatureMap> = maps.iter().collect();
    let w = [0.2f32, 0.5, 0.3];
    let want = (&xs[0] * 0.2f64 + &xs[1] * 0.5f64 + &xs[2] * 0.3f64).silu();
    let got = fuse(&pool, &refs, Some(&w), Activation::Swish);
    assert!(rel_diff(&got.to_nchw(), &want) < 1e-6);
    let want = (&xs[0] + &xs[1] + &xs[2]).clamp(0.0, 6.0);
    let got = fuse(&pool, &refs, None, Activation::Relu6);
    assert!(rel_diff(&got.to_nchw(), &want) < 1e-6);
}

/// Randomises BatchNorm statistics and affine parameters and the fusion weights, so that
/// folding and fusion are not trivial.
fn randomise(vs: &VarStore) {
    randomise_statistics(vs);
    tch::no_grad(|| {
        for (name, mut v) in vs.variables() {
            let n = v.size();
            if name.contains("_w") && n.len() == 1 && n[0] <= 3 {
                v.copy_(&(Tensor::rand(&n, OPTS) * 2.0 - 0.5));
            }
        }
    });
}

#[test]
fn engine_matches_the_libtorch_network() {
    tch::manual_seed(5);
    // D0 (swish, squeeze-excitation, weighted fusion) at a small non-square input whose
    // P7 is not half of P6; Lite0 (ReLU6, sum fusion) at 320, where the reference breaks.
    for (cfg, h, w) in [
        (EfficientDetConfig::d(0).unwrap(), 192, 320),
        (EfficientDetConfig::lite0(), 320, 320),
    ] {
        let vs = VarStore::new(Device::Cpu);
        let mut net = EfficientDet::new(&vs.root(), &cfg, 3).unwrap();
        randomise(&vs);
        let x = Tensor::randn([2, 3, h, w], OPTS);
        let want = tch::no_grad(|| net.forward_t(&x, false));
        assert!(matches!(
            NhwcEfficientDet::new(&net, Precision::Fp32),
            Err(crate::detector::model::ModelError::NotFolded)
        ));
        tch::no_grad(|| net.fold_batchnorm());
        let engine = NhwcEfficientDet::new(&net, Precision::Fp32).unwrap();
        // One thread (expansion fused into the depthwise convolutions, and for Lite0 the
        // projection too), two threads on one image (rows split in bands) and on two (one
        // image per thread), the first two twice: the second pass runs on recycled buffers.
        for (threads, images) in [(1, 2), (1, 2), (2, 1), (2, 1), (2, 2)] {
            let got = engine
                .forward_threads(&x.narrow(0, 0, images), threads)
                .unwrap();
            let expected = |t: &Tensor| t.narrow(0, 0, images);
            for (a, b) in got.features.iter().zip(&want.features) {
                let d = rel_diff(a, &expected(b));
                assert!(d < 1e-4, "{h}×{w} {threads} threads feature: {d:e}");
            }
            assert!(rel_diff(&got.regression, &expected(&want.regression)) < 1e-4);
            assert!(rel_diff(&got.classification, &expected(&want.classification)) < 1e-4);
        }
        assert!(engine.forward(&Tensor::zeros([1, 4, 8, 8], OPTS)).is_err());
    }
}

/// The bfloat16 engine computes the float32 network to bfloat16's accuracy: heads within a
/// few percent of their range, on one and two threads, and not bit-identical (its large
/// products did run in bfloat16).
#[test]
fn bf16_engine_stays_close_to_fp32() {
    if !cpu_has_bf16() {
        eprintln!("SKIP: this CPU has no AVX512-BF16");
        return;
    }
    tch::manual_seed(5);
    // D0 (squeeze-excitation) and Lite0 (whose blocks project the depthwise rows as they
    // come).
    for cfg in [
        EfficientDetConfig::d(0).unwrap(),
        EfficientDetConfig::lite0(),
    ] {
        let vs = VarStore::new(Device::Cpu);
        let mut net = EfficientDet::new(&vs.root(), &cfg, 3).unwrap();
        randomise(&vs);
        tch::no_grad(|| net.fold_batchnorm());
        let x = Tensor::randn([2, 3, 256, 256], OPTS);
        let want = NhwcEfficientDet::new(&net, Precision::Fp32)
            .unwrap()
            .forward_threads(&x, 1)
            .unwrap();
        let engine = NhwcEfficientDet::new(&net, Precision::Bf16).unwrap();
        assert_eq!(engine.precision(), Precision::Bf16);
        for threads in [1, 2] {
            let got = engine.forward_threads(&x, threads).unwrap();
            for (a, b) in [
                (&got.regression, &want.regression),
                (&got.classification, &want.classification),
            ] {
                let d = rel_diff(a, b);
                assert!(d > 1e-6 && d < 0.05, "{threads} threads: {d:e}");
            }
        }
    }
}

#[test]
fn engine_matches_the_libtorch_network_on_every_architecture() {
    tch::manual_seed(7);
    // Every variant's layer mix (depths, widths, BiFPN repeats, D6+'s fusion, D7x's extra
    // level, Lite0's activation), at a 64-px input so the large networks stay quick.
    let configs = (0..=8u8)
        .map(|n| (format!("d{n}"), EfficientDetConfig::d(n).unwrap()))
        .chain([("lite0".to_string(), EfficientDetConfig::lite0())]);
    for (name, cfg) in configs {
        let start = std::time::Instant::now();
        let vs = VarStore::new(Device::Cpu);
        let mut net = EfficientDet::new(&vs.root(), &cfg, 2).unwrap();
        randomise(&vs);
        let x = Tensor::randn([1, 3, 64, 64], OPTS);
        let want = tch::no_grad(|| net.forward_t(&x, false));
        tch::no_grad(|| net.fold_batchnorm());
        let engine = NhwcEfficientDet::new(&net, Precision::Fp32).unwrap();
        // Threads are covered by the test above; one is enough here.
        for threads in [1] {
            let got = engine.forward_threads(&x, threads).unwrap();
            assert_eq!(got.features.len(), want.features.len(), "{name}");
            for (level, (a, b)) in got.features.iter().zip(&want.features).enumerate() {
                let d = rel_diff(a, b);
                assert!(d < 1e-4, "{name} {threads} threads P{}: {d:e}", level + 3);
            }
            let d = rel_diff(&got.regression, &want.regression);
            assert!(d < 1e-4, "{name} {threads} threads regression: {d:e}");
            let d = rel_diff(&got.classification, &want.classification);
            assert!(d < 1e-4, "{name} {threads} threads classification: {d:e}");
        }
        eprintln!("{name}: {:.1?}", start.elapsed());
    }
}
