//! COCO JSON in and out: ground truth files and results lists.
//!
//! Parsing is strict about types (ids are integers, boxes four numbers) and reports the
//! first bad record by section and index. A well-formed file is parsed once into typed
//! records; only when that fails is it re-read as a generic JSON tree to find the culprit.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

use super::data::{CocoGroundTruth, Detection, GtAnnotation, GtCategory, GtImage};
use super::error::{EvalError, InputKind};

#[derive(Deserialize)]
struct RawGt {
    #[serde(default)]
    images: Vec<RawImage>,
    #[serde(default)]
    annotations: Vec<RawAnn>,
    #[serde(default)]
    categories: Vec<RawCat>,
}

#[derive(Deserialize, Serialize)]
struct RawImage {
    id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file_name: Option<String>,
}

#[derive(Deserialize, Serialize)]
struct RawCat {
    id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

#[derive(Deserialize, Serialize)]
struct RawAnn {
    id: i64,
    image_id: i64,
    category_id: i64,
    bbox: [f64; 4],
    #[serde(default, skip_serializing_if = "Option::is_none")]
    area: Option<f64>,
    #[serde(default)]
    iscrowd: Crowd,
}

/// `iscrowd` as pycocotools reads it (`int(...)`, non-zero = crowd); accepts 0/1 and booleans.
#[derive(Default, Clone, Copy)]
struct Crowd(bool);

impl<'de> Deserialize<'de> for Crowd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Crowd;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("0, 1 or a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Crowd, E> {
                Ok(Crowd(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Crowd, E> {
                Ok(Crowd(v != 0))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Crowd, E> {
                Ok(Crowd(v != 0))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Crowd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(u8::from(self.0))
    }
}

#[derive(Deserialize, Serialize)]
struct RawDet {
    image_id: i64,
    category_id: i64,
    bbox: [f64; 4],
    score: f64,
}

/// serde_json's message plus a hint when the culprit is Python's `NaN`/`Infinity`.
fn json_error(kind: InputKind, bytes: &[u8], e: &serde_json::Error) -> EvalError {
    let mut message = e.to_string();
    if e.line() > 0 {
        let start = bytes
            .split(|&b| b == b'\n')
            .take(e.line() - 1)
            .map(|l| l.len() + 1)
            .sum::<usize>()
            + e.column().saturating_sub(1);
        let window = bytes.get(start.saturating_sub(1)..(start + 10).min(bytes.len()));
        let text = window.map(String::from_utf8_lossy).unwrap_or_default();
        if text.contains("NaN") || text.contains("Infinity") {
            message.push_str(" (NaN/Infinity are non-finite numbers, not valid JSON)");
        }
    }
    EvalError::Json { kind, message }
}

fn record_error(
    kind: InputKind,
    section: &'static str,
    index: usize,
    v: &serde_json::Value,
    reason: String,
) -> EvalError {
    EvalError::InvalidRecord {
        kind,
        section,
        index,
        id: v.get("id").and_then(serde_json::Value::as_i64),
        reason,
    }
}

/// Finds the first record of `section` that does not deserialize as `T`.
fn first_bad<T: for<'de> Deserialize<'de>>(
    kind: InputKind,
    section: &'static str,
    items: &[serde_json::Value],
) -> Option<EvalError> {
    items.iter().enumerate().find_map(|(i, v)| {
        T::deserialize(v)
            .err()
            .map(|e| record_error(kind, section, i, v, e.to_string()))
    })
}

impl CocoGroundTruth {
    /// Parses and validates COCO ground truth JSON (`images`, `annotations`, `categories`;
    /// each may be absent). An annotation without `area` gets `w * h`; without `iscrowd`, 0.
    pub fn from_json_slice(bytes: &[u8]) -> Result<Self, EvalError> {
        let raw: RawGt = match serde_json::from_slice(bytes) {
            Ok(r) => r,
            Err(e) => return Err(diagnose_gt(bytes, &e)),
        };
        let images = raw
            .images
            .into_iter()
            .map(|i| GtImage {
                id: i.id,
                file_name: i.file_name.unwrap_or_default(),
            })
            .collect();
        let categories = raw
            .categories
            .into_iter()
            .map(|c| GtCategory {
                id: c.id,
                name: c.name.unwrap_or_default(),
            })
            .collect();
        let annotations = raw
            .annotations
            .into_iter()
            .map(|a| GtAnnotation {
                id: a.id,
                image_id: a.image_id,
                category_id: a.category_id,
                bbox: a.bbox,
                area: a.area.unwrap_or(a.bbox[2] * a.bbox[3]),
                iscrowd: a.iscrowd.0,
            })
            .collect();
        CocoGroundTruth::new(images, categories, annotations)
    }

    /// Reads a COCO ground truth file; errors carry the path.
    pub fn from_path(path: &Path) -> Result<Self, EvalError> {
        let bytes = std::fs::read(path).map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json_slice(&bytes).map_err(|e| e.in_file(path))
    }

    /// Serializes to COCO JSON (ids, file names, boxes, areas, iscrowd, category names).
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            images: Vec<RawImage>,
            annotations: &'a [RawAnn],
            categories: Vec<RawCat>,
        }
        let anns: Vec<RawAnn> = self
            .annotations()
            .iter()
            .map(|a| RawAnn {
                id: a.id,
                image_id: a.image_id,
                category_id: a.category_id,
                bbox: a.bbox,
                area: Some(a.area),
                iscrowd: Crowd(a.iscrowd),
            })
            .collect();
        let out = Out {
            images: self
                .images()
                .iter()
                .map(|i| RawImage {
                    id: i.id,
                    file_name: Some(i.file_name.clone()),
                })
                .collect(),
            annotations: &anns,
            categories: self
                .categories()
                .iter()
                .map(|c| RawCat {
                    id: c.id,
                    name: Some(c.name.clone()),
                })
                .collect(),
        };
        serde_json::to_string(&out).unwrap_or_default()
    }
}

fn diagnose_gt(bytes: &[u8], e: &serde_json::Error) -> EvalError {
    let kind = InputKind::GroundTruth;
    let v: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e2) => return json_error(kind, bytes, &e2),
    };
    let Some(obj) = v.as_object() else {
        return EvalError::Json {
            kind,
            message: "expected a JSON object with images, annotations and categories".into(),
        };
    };
    let section = |name: &str| obj.get(name).and_then(serde_json::Value::as_array);
    for name in ["images", "annotations", "categories"] {
        if let Some(x) = obj.get(name) {
            if !x.is_array() && !x.is_null() {
                return EvalError::Json {
                    kind,
                    message: format!("`{name}` must be a list"),
                };
            }
        }
    }
    let found = section("images")
        .and_then(|s| first_bad::<RawImage>(kind, "images", s))
        .or_else(|| {
            section("annotations").and_then(|s| first_bad::<RawAnn>(kind, "annotations", s))
        })
        .or_else(|| section("categories").and_then(|s| first_bad::<RawCat>(kind, "categories", s)));
    found.unwrap_or_else(|| json_error(kind, bytes, e))
}

/// Parses a COCO results list `[{image_id, category_id, bbox, score}, ...]` (other fields,
/// such as `id`, `area` or `segmentation`, are ignored, as `loadRes` overwrites them).
/// Only the record shapes are checked here; [`super::evaluate`] checks them against the GT.
pub fn detections_from_json_slice(bytes: &[u8]) -> Result<Vec<Detection>, EvalError> {
    let kind = InputKind::Detections;
    match serde_json::from_slice::<Vec<RawDet>>(bytes) {
        Ok(raw) => Ok(raw
            .into_iter()
            .map(|r| Detection {
                image_id: r.image_id,
                category_id: r.category_id,
                bbox: r.bbox,
                score: r.score,
            })
            .collect()),
        Err(e) => {
            let v: serde_json::Value = match serde_json::from_slice(bytes) {
                Ok(v) => v,
                Err(e2) => return Err(json_error(kind, bytes, &e2)),
            };
            let Some(items) = v.as_array() else {
                return Err(EvalError::Json {
                    kind,
                    message: "a results file must be a JSON list of detections".into(),
                });
            };
            Err(first_bad::<RawDet>(kind, "results", items)
                .unwrap_or_else(|| json_error(kind, bytes, &e)))
        }
    }
}

/// Reads a COCO results file; errors carry the path.
pub fn load_detections(path: &Path) -> Result<Vec<Detection>, EvalError> {
    let bytes = std::fs::read(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    detections_from_json_slice(&bytes).map_err(|e| e.in_file(path))
}

/// Serializes detections as a COCO results list.
pub fn detections_to_json(dets: &[Detection]) -> String {
    let raw: Vec<RawDet> = dets
        .iter()
        .map(|d| RawDet {
            image_id: d.image_id,
            category_id: d.category_id,
            bbox: d.bbox,
            score: d.score,
        })
        .collect();
    serde_json::to_string(&raw).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gt_defaults_and_crowd_forms() {
        let gt = CocoGroundTruth::from_json_slice(
            br#"{"images":[{"id":1}],"categories":[{"id":2,"name":"x"}],
                "annotations":[{"id":5,"image_id":1,"category_id":2,"bbox":[0,0,4,5]},
                               {"id":6,"image_id":1,"category_id":2,"bbox":[0,0,1,1],"area":3,"iscrowd":true}]}"#,
        )
        .expect("valid");
        assert_eq!(gt.annotations()[0].area, 20.0);
        assert!(!gt.annotations()[0].iscrowd);
        assert!(gt.annotations()[1].iscrowd);
        assert_eq!(gt.annotations()[1].area, 3.0);
    }

    #[test]
    fn string_image_id_names_the_record() {
        let e = CocoGroundTruth::from_json_slice(
            br#"{"images":[{"id":1},{"id":"2299"}],"categories":[],"annotations":[]}"#,
        )
        .expect_err("string id");
        let msg = e.to_string();
        assert!(msg.contains("images[1]") && msg.contains("2299"), "{msg}");
    }

    #[test]
    fn bad_detection_record_is_named() {
        let e = detections_from_json_slice(
            br#"[{"image_id":1,"category_id":1,"bbox":[0,0,1,1],"score":0.5},
                 {"image_id":1,"category_id":1,"bbox":[0,0,1],"score":0.5}]"#,
        )
        .expect_err("short bbox");
        assert!(e.to_string().contains("results[1]"), "{e}");
        let e = detections_from_json_slice(
            br#"[{"image_id":1,"category_id":1,"bbox":[0,0,1,1],"score":NaN}]"#,
        )
        .expect_err("nan");
        assert!(e.to_string().contains("non-finite"), "{e}");
        let e = detections_from_json_slice(br#"{"annotations":[]}"#).expect_err("dict");
        assert!(e.to_string().contains("list"), "{e}");
        assert!(detections_from_json_slice(b"[]").expect("empty").is_empty());
    }

    #[test]
    fn round_trip() {
        let dets = vec![Detection {
            image_id: 3,
            category_id: 4,
            bbox: [0.1, 0.2, 10.000000000000002, 3.0],
            score: 0.30000000000000004,
        }];
        let back = detections_from_json_slice(detections_to_json(&dets).as_bytes()).expect("parse");
        assert_eq!(back, dets);
    }
}
