//! CreateML JSON, with LabelImg's conventions: a JSON array of
//! `{"image", "verified", "annotations": [{"label", "coordinates": {x, y, width, height}}]}`
//! where `x`, `y` is the box centre in pixels. Writing replaces the entry of the same
//! image and keeps the others. Output is formatted like Python's `json.dumps`.

use std::path::Path;

use serde_json::{Map, Value};

use super::error::{read_text, write_file, FormatError};
use crate::dataset::{ClassList, ImageAnnotation, LabelBox};
use crate::geometry::BoxXyxy;

const FORMAT: &str = "CreateML";

/// Parses the entry for `image_filename` (or the first entry when none matches by name).
pub fn parse(text: &str, image_filename: &str) -> Result<ImageAnnotation, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let entries = value
        .as_array()
        .ok_or("the top level is not a JSON array")?;
    let entry = entries
        .iter()
        .find(|e| e.get("image").and_then(Value::as_str) == Some(image_filename))
        .or_else(|| entries.first());
    let mut ann = ImageAnnotation::new(image_filename, 0, 0);
    let Some(entry) = entry else { return Ok(ann) };
    ann.verified = entry
        .get("verified")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let annotations = match entry.get("annotations") {
        None | Some(Value::Null) => return Ok(ann),
        Some(Value::Array(a)) => a,
        Some(_) => return Err("\"annotations\" is not an array".into()),
    };
    for (i, a) in annotations.iter().enumerate() {
        let label = a
            .get("label")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("annotation {} has no string \"label\"", i + 1))?;
        let label = ClassList::check_name(label)
            .map_err(|r| format!("annotation {}: \"label\": {r}", i + 1))?;
        let c = a
            .get("coordinates")
            .ok_or_else(|| format!("annotation {} has no \"coordinates\"", i + 1))?;
        let num = |k: &str| {
            c.get(k)
                .and_then(Value::as_f64)
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    format!(
                        "annotation {} ({label}): \"{k}\" is missing or not a number",
                        i + 1
                    )
                })
        };
        let (x, y, w, h) = (num("x")?, num("y")?, num("width")?, num("height")?);
        for (k, v) in [("x", x), ("y", y), ("width", w), ("height", h)] {
            super::check_coordinate(v)
                .map_err(|r| format!("annotation {} ({label}): \"{k}\" {r}", i + 1))?;
        }
        let bbox = BoxXyxy::new(x - w / 2.0, y - h / 2.0, x + w / 2.0, y + h / 2.0).normalized();
        ann.boxes.push(LabelBox::new(label, bbox));
    }
    Ok(ann)
}

/// The new file content: `existing` (if any) with this image's entry replaced or appended.
pub fn to_string(existing: Option<&str>, ann: &ImageAnnotation) -> Result<String, String> {
    let mut entries: Vec<Value> = match existing {
        Some(text) if !text.trim().is_empty() => {
            match serde_json::from_str(text).map_err(|e| e.to_string())? {
                Value::Array(a) => a,
                _ => return Err("the existing file's top level is not a JSON array".into()),
            }
        }
        _ => Vec::new(),
    };
    let annotations: Vec<Value> = ann
        .boxes
        .iter()
        .map(|b| {
            let b2 = b.bbox.normalized();
            let (w, h) = (b2.width(), b2.height());
            let mut coordinates = Map::new();
            coordinates.insert("x".into(), Value::from(b2.x1 + w / 2.0));
            coordinates.insert("y".into(), Value::from(b2.y1 + h / 2.0));
            coordinates.insert("width".into(), Value::from(w));
            coordinates.insert("height".into(), Value::from(h));
            let mut a = Map::new();
            a.insert("label".into(), Value::from(b.class_name.clone()));
            a.insert("coordinates".into(), Value::Object(coordinates));
            Value::Object(a)
        })
        .collect();
    let mut entry = Map::new();
    entry.insert("image".into(), Value::from(ann.filename.clone()));
    entry.insert("verified".into(), Value::from(ann.verified));
    entry.insert("annotations".into(), Value::Array(annotations));
    let entry = Value::Object(entry);
    match entries
        .iter_mut()
        .find(|e| e.get("image").and_then(Value::as_str) == Some(&ann.filename))
    {
        Some(slot) => *slot = entry,
        None => entries.push(entry),
    }
    let mut out = String::new();
    python_json(&Value::Array(entries), &mut out);
    Ok(out)
}

/// Reads a CreateML file for `image_filename`.
pub fn read(path: &Path, image_filename: &str) -> Result<ImageAnnotation, FormatError> {
    let text = read_text(path)?;
    parse(&text, image_filename).map_err(|r| FormatError::invalid(path, FORMAT, r))
}

/// The new content of the CreateML file at `path`: the file as it is now (if any) with
/// `ann`'s entry replaced or appended. An existing file that does not parse is an error.
pub fn merged(path: &Path, ann: &ImageAnnotation) -> Result<String, FormatError> {
    let existing = if path.exists() {
        Some(read_text(path)?)
    } else {
        None
    };
    to_string(existing.as_deref(), ann).map_err(|r| FormatError::invalid(path, FORMAT, r))
}

/// Writes (merges) `ann` into the CreateML file at `path`, atomically. An existing file
/// that does not parse is an error and is left untouched.
pub fn write(path: &Path, ann: &ImageAnnotation) -> Result<(), FormatError> {
    write_file(path, merged(path, ann)?.as_bytes())
}

/// JSON as Python's `json.dumps` writes it: `", "` and `": "` separators, non-ASCII
/// escaped, floats in shortest round-trip form with a `.0` on integral values.
fn python_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) if !n.is_f64() => out.push_str(&i.to_string()),
            (_, Some(f)) => out.push_str(&format!("{f:?}")),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                        let mut buf = [0u16; 2];
                        for unit in c.encode_utf16(&mut buf) {
                            out.push_str(&format!("\\u{unit:04x}"));
                        }
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_json(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_json(&Value::String(k.clone()), out);
                out.push_str(": ");
                python_json(x, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_like_labelimg_and_merges_by_image() {
        let mut ann = ImageAnnotation::new("IMG_0001.jpg", 1920, 1080);
        ann.verified = true;
        ann.boxes
            .push(LabelBox::new("cola", BoxXyxy::new(1.0, 5.0, 200.0, 1080.0)));
        let text = to_string(None, &ann).unwrap();
        assert_eq!(
            text,
            r#"[{"image": "IMG_0001.jpg", "verified": true, "annotations": [{"label": "cola", "coordinates": {"x": 100.5, "y": 542.5, "width": 199.0, "height": 1075.0}}]}]"#
        );
        let other = ImageAnnotation::new("b.jpg", 1, 1);
        let merged = to_string(Some(&text), &other).unwrap();
        let again = to_string(Some(&merged), &ann).unwrap();
        assert_eq!(again, merged);
        let back = parse(&merged, "IMG_0001.jpg").unwrap();
        assert_eq!(back.boxes[0].bbox, BoxXyxy::new(1.0, 5.0, 200.0, 1080.0));
        assert!(back.verified);
        assert!(parse(&merged, "b.jpg").unwrap().boxes.is_empty());
    }

    #[test]
    fn non_ascii_is_escaped_like_python() {
        let mut ann = ImageAnnotation::new("可乐.jpg", 1, 1);
        ann.boxes
            .push(LabelBox::new("雪碧", BoxXyxy::new(0.0, 0.0, 1.0, 1.0)));
        let text = to_string(None, &ann).unwrap();
        assert!(text.contains("\\u53ef\\u4e50.jpg") && text.contains("\\u96ea\\u78a7"));
        assert_eq!(
            parse(&text, "可乐.jpg").unwrap().boxes[0].class_name,
            "雪碧"
        );
    }

    #[test]
    fn malformed_json_is_an_error() {
        // Each file is refused for its own reason, which the message names.
        for (text, reason) in [
            ("{", "EOF while parsing an object at line 1 column 1"),
            ("{}", "the top level is not a JSON array"),
            (
                r#"[{"image":"a","annotations":{}}]"#,
                "\"annotations\" is not an array",
            ),
            (
                r#"[{"image":"a","annotations":[{"coordinates":{}}]}]"#,
                "annotation 1 has no string \"label\"",
            ),
            (
                r#"[{"image":"a","annotations":[{"label":"Diet\nCola","coordinates":{}}]}]"#,
                "annotation 1: \"label\": the class name \"Diet\\nCola\" contains the control \
                 character U+000A; a class name is one line of printable text",
            ),
            (
                r#"[{"image":"a","annotations":[{"label":" ","coordinates":{}}]}]"#,
                "annotation 1: \"label\": the class name is empty",
            ),
            (
                r#"[{"image":"a","annotations":[{"label":"x"}]}]"#,
                "annotation 1 has no \"coordinates\"",
            ),
            (
                r#"[{"image":"a","annotations":[{"label":"x","coordinates":{"x":1,"y":1,"width":"2","height":2}}]}]"#,
                "annotation 1 (x): \"width\" is missing or not a number",
            ),
            (
                r#"[{"image":"a","annotations":[{"label":"x","coordinates":{"x":-70000,"y":1,"width":2,"height":2}}]}]"#,
                "annotation 1 (x): \"x\" -70000 is outside the range a label can hold (±65536 pixels)",
            ),
        ] {
            assert_eq!(parse(text, "a").unwrap_err(), reason, "{text}");
        }
    }
}
