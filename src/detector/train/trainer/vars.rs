//! Checks and switches on the run's variables: the first one that is not finite (a
//! diverged run), and freezing or unfreezing the backbone.

use tch::nn::VarStore;
use tch::Tensor;

/// The first floating-point variable of `vs` with a NaN or infinite value.
pub(super) fn first_non_finite_variable(vs: &VarStore) -> Option<String> {
    let mut vars = vs.variables().into_iter().collect::<Vec<_>>();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        vars.into_iter()
            .filter(|(_, t)| t.is_floating_point())
            .find(|(_, t)| t.isfinite().all().int64_value(&[]) == 0)
            .map(|(name, _)| name)
    })
}

/// Sets requires-grad on the backbone's trainable parameters.
pub(super) fn set_backbone_trainable(params: &[(String, Tensor)], trainable: bool) {
    for (name, t) in params {
        if name.starts_with("backbone_net.") {
            let _ = t.set_requires_grad(trainable);
        }
    }
}
