//! The `metadata_props` of an exported file: everything someone holding only the `.onnx`
//! needs to reproduce detlab's input and read its outputs. Every value is JSON.
//!
//! | key | value |
//! |---|---|
//! | `classes` | class names; class id `i` is `classes[i]` |
//! | `input_size` | the square input side `S` |
//! | `letterbox` | how an image becomes the input (see [`letterbox_description`]) |
//! | `pad_rgb` | the pixel value that normalises to zero, filling the unused input |
//! | `normalization` | `{pixel_scale, mean, std}`, applied inside the graph |
//! | `layout` | `"NHWC"` or `"NCHW"` |
//! | `input_dtype` | `"float32"` or `"uint8"` |
//! | `variant` | `"nms"` or `"raw"` |
//! | `outputs` | the output names, in order |
//! | `score_threshold`, `iou_threshold`, `max_detections`, `class_agnostic` | the NMS settings (baked into an `nms` graph; detlab's defaults for a `raw` one) |
//! | `box_format` | `"xyxy input pixels"` |
//! | `arch`, `anchors` | the architecture and its anchor settings |
//! | `detlab_version` | the detlab that wrote the file |

use serde_json::{json, Value};

use super::efficientdet::names;
use super::options::{ExportOptions, Variant};
use super::proto::StringStringEntryProto;
use crate::detector::checkpoint::ModelMeta;

/// The letterbox detlab applies before the network, in words and numbers.
pub fn letterbox_description(meta: &ModelMeta) -> Value {
    json!({
        "scale": "s = input_size / max(width, height)",
        "resized": "round(width * s) x round(height * s), at least 1",
        "resize": "bilinear with half-pixel centres and no antialiasing (OpenCV INTER_LINEAR), not rounded for float32 input",
        "position": "top-left",
        "fill": "pad_rgb",
        "boxes_to_image": "x * width / resized_width, y * height / resized_height, clipped to [0, width] x [0, height]; drop empty boxes",
        "input_size": meta.input_size,
    })
}

/// The pixel value (per RGB channel) that normalises to zero: `mean · pixel_scale`.
pub fn pad_rgb(meta: &ModelMeta) -> [f32; 3] {
    let n = meta.normalization;
    n.mean.map(|m| m * n.pixel_scale)
}

/// An f32 setting as the decimal it was typed as (0.05, not 0.0500000007).
fn decimal(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

/// The `metadata_props` entries.
pub fn metadata_props(meta: &ModelMeta, opts: &ExportOptions) -> Vec<StringStringEntryProto> {
    let outputs: Vec<&str> = match opts.variant {
        Variant::Nms => vec![
            names::BOXES,
            names::SCORES,
            names::CLASS_IDS,
            names::NUM_DETECTIONS,
        ],
        Variant::Raw => vec![names::BOXES, names::SCORES],
    };
    let entries: Vec<(&str, Value)> = vec![
        ("classes", json!(meta.class_names)),
        ("input_size", json!(meta.input_size)),
        ("letterbox", letterbox_description(meta)),
        ("pad_rgb", json!(pad_rgb(meta))),
        ("normalization", json!(meta.normalization)),
        ("layout", json!(opts.layout.name().to_ascii_uppercase())),
        ("input_dtype", json!(opts.input_dtype.name())),
        ("variant", json!(opts.variant.name())),
        ("outputs", json!(outputs)),
        ("score_threshold", json!(decimal(opts.score_threshold))),
        ("iou_threshold", json!(decimal(opts.iou_threshold))),
        ("max_detections", json!(opts.max_detections)),
        ("class_agnostic", json!(opts.class_agnostic)),
        ("box_format", json!("xyxy input pixels")),
        ("arch", json!(meta.arch.name())),
        ("anchors", json!(meta.anchors)),
        ("detlab_version", json!(env!("CARGO_PKG_VERSION"))),
    ];
    entries
        .into_iter()
        .map(|(k, v)| StringStringEntryProto {
            key: Some(k.to_string()),
            value: Some(v.to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::checkpoint::ModelArch;

    #[test]
    fn every_value_is_json_and_pad_normalises_to_zero() {
        let meta = ModelMeta::for_arch(ModelArch::D0, vec!["Cola".into(), "Sprite".into()]);
        let props = metadata_props(&meta, &ExportOptions::default());
        for p in &props {
            let v: Value = serde_json::from_str(p.value.as_deref().unwrap()).unwrap();
            assert!(!v.is_null(), "{:?}", p.key);
        }
        let get = |k: &str| {
            props
                .iter()
                .find(|p| p.key.as_deref() == Some(k))
                .and_then(|p| p.value.clone())
                .unwrap()
        };
        assert_eq!(get("classes"), r#"["Cola","Sprite"]"#);
        assert_eq!(get("layout"), r#""NHWC""#);
        let n = meta.normalization;
        for (c, p) in pad_rgb(&meta).iter().enumerate() {
            assert!(n.apply(c, *p).abs() < 1e-6);
        }
    }
}
