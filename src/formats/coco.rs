//! The COCO detection JSON: serde types, a writer and a lenient reader.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{read_text, write_file, FormatError};
use crate::geometry::BoxXywh;

/// A whole COCO file. All five top-level keys are written (`COCO.info()` needs `info`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CocoDataset {
    #[serde(default)]
    pub info: Value,
    #[serde(default)]
    pub licenses: Vec<Value>,
    pub images: Vec<CocoImage>,
    /// Required: a file without the key (an image-info file, or a broken one) is not read
    /// as "no boxes"; a file with no boxes has `"annotations": []`.
    pub annotations: Vec<CocoAnnotation>,
    #[serde(default)]
    pub categories: Vec<CocoCategory>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CocoImage {
    pub id: u64,
    /// Path relative to the split's image root, with `/` separators.
    pub file_name: String,
    pub width: u32,
    pub height: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CocoAnnotation {
    pub id: u64,
    pub image_id: u64,
    pub category_id: u64,
    /// `[x, y, w, h]` in absolute pixels.
    pub bbox: [f64; 4],
    #[serde(default)]
    pub area: f64,
    #[serde(default)]
    pub iscrowd: u8,
    #[serde(default, skip_serializing_if = "Segmentation::is_none")]
    pub segmentation: Segmentation,
}

/// An annotation's `segmentation`: polygons (what detlab writes for boxes) or anything
/// else another tool wrote (e.g. RLE), kept as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(untagged)]
pub enum Segmentation {
    #[default]
    None,
    Polygons(Vec<Vec<f64>>),
    Other(Value),
}

impl Segmentation {
    pub fn is_none(&self) -> bool {
        matches!(self, Segmentation::None)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CocoCategory {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub supercategory: String,
}

impl CocoAnnotation {
    /// A box annotation with `area = w·h` and the 4-corner polygon as segmentation.
    pub fn from_box(id: u64, image_id: u64, category_id: u64, b: BoxXywh, iscrowd: bool) -> Self {
        let (x1, y1, x2, y2) = (b.x, b.y, b.x + b.w, b.y + b.h);
        Self {
            id,
            image_id,
            category_id,
            bbox: [b.x, b.y, b.w, b.h],
            area: b.w * b.h,
            iscrowd: iscrowd as u8,
            segmentation: Segmentation::Polygons(vec![vec![x1, y1, x2, y1, x2, y2, x1, y2]]),
        }
    }

    pub fn bbox_xywh(&self) -> BoxXywh {
        BoxXywh {
            x: self.bbox[0],
            y: self.bbox[1],
            w: self.bbox[2],
            h: self.bbox[3],
        }
    }
}

impl CocoDataset {
    /// Reads and checks a COCO file: an `annotations` list (an empty one is fine, a missing
    /// one is an error), unique image and annotation ids, references that resolve, finite
    /// boxes within [`super::MAX_ABS_COORDINATE`], category names that can be class names
    /// (trimmed; see [`crate::dataset::ClassList::check_name`]).
    pub fn read(path: &Path) -> Result<Self, FormatError> {
        let text = read_text(path)?;
        let invalid = |r: String| FormatError::invalid(path, "COCO", r);
        let mut dataset: CocoDataset = serde_json::from_str(&text).map_err(|e| {
            let mut reason = e.to_string();
            if reason.starts_with("missing field `annotations`") {
                reason.push_str(
                    " (a COCO file without boxes has \"annotations\": []; without the key it \
                     is not read as \"no boxes\")",
                );
            }
            invalid(reason)
        })?;
        for c in &mut dataset.categories {
            let trimmed = c.name.trim();
            if trimmed.len() != c.name.len() {
                c.name = trimmed.to_string();
            }
        }
        dataset.validate().map_err(invalid)?;
        Ok(dataset)
    }

    /// Checks ids, references and category names; the error names the first bad record.
    pub fn validate(&self) -> Result<(), String> {
        use std::collections::HashSet;
        let mut image_ids = HashSet::new();
        for (i, im) in self.images.iter().enumerate() {
            if !image_ids.insert(im.id) {
                return Err(format!("images[{i}]: duplicate image id {}", im.id));
            }
        }
        let mut category_ids = HashSet::new();
        for (i, c) in self.categories.iter().enumerate() {
            if !category_ids.insert(c.id) {
                return Err(format!("categories[{i}]: duplicate category id {}", c.id));
            }
            crate::dataset::ClassList::check_name(&c.name)
                .map_err(|r| format!("categories[{i}] (id {}): \"name\": {r}", c.id))?;
        }
        let mut ann_ids = HashSet::new();
        for (i, a) in self.annotations.iter().enumerate() {
            if !ann_ids.insert(a.id) {
                return Err(format!(
                    "annotations[{i}]: duplicate annotation id {}",
                    a.id
                ));
            }
            if !image_ids.contains(&a.image_id) {
                return Err(format!(
                    "annotations[{i}] (id {}): image_id {} is not in images",
                    a.id, a.image_id
                ));
            }
            if !category_ids.contains(&a.category_id) {
                return Err(format!(
                    "annotations[{i}] (id {}): category_id {} is not in categories",
                    a.id, a.category_id
                ));
            }
            if a.bbox.iter().any(|&v| super::check_coordinate(v).is_err())
                || a.bbox[2] < 0.0
                || a.bbox[3] < 0.0
            {
                return Err(format!(
                    "annotations[{i}] (id {}): bbox {:?} is not a valid box",
                    a.id, a.bbox
                ));
            }
        }
        Ok(())
    }

    /// Writes the file atomically (compact JSON).
    pub fn write(&self, path: &Path) -> Result<(), FormatError> {
        let bytes = serde_json::to_vec(self)
            .map_err(|e| FormatError::invalid(path, "COCO", e.to_string()))?;
        write_file(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_box_sets_area_and_polygon() {
        let a = CocoAnnotation::from_box(
            1,
            2,
            3,
            BoxXywh {
                x: 1.0,
                y: 2.0,
                w: 3.0,
                h: 4.0,
            },
            false,
        );
        assert_eq!(a.area, 12.0);
        assert_eq!(
            serde_json::to_value(&a.segmentation).unwrap(),
            serde_json::json!([[1.0, 2.0, 4.0, 2.0, 4.0, 6.0, 1.0, 6.0]])
        );
        let rle: Segmentation =
            serde_json::from_str(r#"{"counts": [1, 2], "size": [4, 4]}"#).unwrap();
        assert!(matches!(rle, Segmentation::Other(_)));
    }

    /// A file without `"annotations"` was read as "no boxes": `convert --from coco` then
    /// replaced every label file with an empty one. `[]` is still fine.
    #[test]
    fn a_missing_annotations_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.json");
        let head = r#""images":[{"id":1,"file_name":"a.jpg","width":4,"height":4}],"categories":[{"id":1,"name":"Cola"}]"#;
        std::fs::write(&p, format!("{{{head}}}")).unwrap();
        let err = CocoDataset::read(&p).unwrap_err().to_string();
        assert!(
            err.contains("c.json") && err.contains("missing field `annotations`"),
            "{err}"
        );
        std::fs::write(&p, format!("{{{head},\"annotations\":[]}}")).unwrap();
        assert!(CocoDataset::read(&p).unwrap().annotations.is_empty());
    }

    /// A category `"Diet\nCola"` became two lines of `classes.txt` (shifting every YOLO id
    /// after it); an empty or control-character name broke VOC files.
    #[test]
    fn category_names_are_trimmed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.json");
        let file = |name: &str| {
            format!(
                r#"{{"images":[],"annotations":[],"categories":[{{"id":1,"name":"Cola"}},{{"id":7,"name":{}}}]}}"#,
                serde_json::to_string(name).unwrap()
            )
        };
        for (name, expected) in [
            ("Diet\nCola", "U+000A"),
            ("a\u{1}", "U+0001"),
            ("a\0", "U+0000"),
            ("", "empty"),
        ] {
            std::fs::write(&p, file(name)).unwrap();
            let err = CocoDataset::read(&p).unwrap_err().to_string();
            assert!(
                err.contains("c.json")
                    && err.contains("categories[1] (id 7): \"name\"")
                    && err.contains(expected),
                "{name:?}: {err}"
            );
        }
        std::fs::write(&p, file(" Sprite ")).unwrap();
        assert_eq!(CocoDataset::read(&p).unwrap().categories[1].name, "Sprite");
    }

    #[test]
    fn validate_reports_dangling_and_duplicate_ids() {
        let mut d = CocoDataset {
            images: vec![CocoImage {
                id: 1,
                file_name: "a.jpg".into(),
                width: 4,
                height: 4,
            }],
            categories: vec![CocoCategory {
                id: 1,
                name: "a".into(),
                supercategory: String::new(),
            }],
            ..Default::default()
        };
        d.annotations.push(CocoAnnotation::from_box(
            1,
            9,
            1,
            BoxXywh {
                x: 0.0,
                y: 0.0,
                w: 1.0,
                h: 1.0,
            },
            false,
        ));
        assert!(d.validate().unwrap_err().contains("image_id 9"));
        d.annotations[0].image_id = 1;
        d.images.push(d.images[0].clone());
        assert!(d.validate().unwrap_err().contains("duplicate image id"));
    }
}
