//! YOLO txt + `classes.txt`, with LabelImg's conventions.
//!
//! One line per box: `class cx cy w h`, normalised by the (EXIF-upright) image size,
//! written with `%.6f`. Boxes are first turned into LabelImg's integer box (see
//! [`super::voc::labelimg_int_box`]), as LabelImg does before writing any format.
//! Unlike LabelImg, the class index comes from the project's class list (so it is
//! stable across sessions) and a bad line is an error naming the line.

use std::path::Path;

use super::error::{read_text, write_file, FormatError};
use super::voc::labelimg_int_box;
use crate::dataset::{ClassList, ImageAnnotation, LabelBox};
use crate::geometry::BoxXyxy;

const FORMAT: &str = "YOLO";

/// The largest magnitude a YOLO value (normalised to the image size) may have: a little
/// slack beyond 0..1 for other tools' rounding, nothing like `1e308`.
const MAX_ABS_NORMALISED: f64 = 16.0;

/// The `classes.txt` that belongs to a YOLO label file (same folder).
pub fn classes_path(label_path: &Path) -> std::path::PathBuf {
    label_path.with_file_name("classes.txt")
}

/// Why the `.txt` file `label` cannot be read as YOLO labels: it is there, but the
/// `classes.txt` beside it is not, so its class ids name nothing. `None` when `label` is
/// not a file or its `classes.txt` is there. LabelImg's lookup passes over such a `.txt`
/// ([`crate::dataset::find_label`] does not count it); a reader that does so can report
/// this instead of treating the image as unlabelled.
pub fn missing_classes(label: &Path) -> Option<String> {
    let classes = classes_path(label);
    (label.is_file() && !classes.exists()).then(|| {
        format!(
            "{} looks like a YOLO label file, but {}",
            label.display(),
            no_classes_txt(&classes)
        )
    })
}

/// Why a YOLO label file cannot be read without its `classes.txt`.
fn no_classes_txt(classes: &Path) -> String {
    format!(
        "{} is missing, so its class ids name no class (add classes.txt beside it: one \
         class name per line, line 1 = id 0)",
        classes.display()
    )
}

/// Serialises the boxes; new class names are appended to `classes`.
pub fn to_string(ann: &ImageAnnotation, classes: &mut ClassList) -> String {
    let (w, h) = (ann.width.max(1) as f64, ann.height.max(1) as f64);
    let mut out = String::new();
    for b in &ann.boxes {
        let [x1, y1, x2, y2] = labelimg_int_box(&b.bbox).map(|v| v as f64);
        let id = classes.ensure(&b.class_name);
        out.push_str(&format!(
            "{id} {:.6} {:.6} {:.6} {:.6}\n",
            (x1 + x2) / 2.0 / w,
            (y1 + y2) / 2.0 / h,
            (x2 - x1) / w,
            (y2 - y1) / h
        ));
    }
    out
}

/// Writes the label file and rewrites `classes.txt` beside it (both atomically).
pub fn write(
    path: &Path,
    ann: &ImageAnnotation,
    classes: &mut ClassList,
) -> Result<(), FormatError> {
    let text = to_string(ann, classes);
    write_file(path, text.as_bytes())?;
    write_file(&classes_path(path), classes.to_file_content().as_bytes())
}

/// Parses YOLO lines for an image of `width`×`height`; coordinates are clipped to the
/// image and rounded to whole pixels (ties to even), as LabelImg's reader does — the
/// values were written from whole-pixel boxes, so this undoes the `%.6f` rounding.
pub fn parse(
    text: &str,
    classes: &ClassList,
    width: u32,
    height: u32,
) -> Result<Vec<LabelBox>, String> {
    let (w, h) = (width as f64, height as f64);
    let mut boxes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "line {}: expected 5 fields, found {}",
                i + 1,
                fields.len()
            ));
        }
        let class: usize = fields[0].parse().map_err(|_| {
            format!(
                "line {}: class index {:?} is not a non-negative integer",
                i + 1,
                fields[0]
            )
        })?;
        let name = classes.name(class).ok_or_else(|| {
            format!(
                "line {}: class index {class} is not in classes.txt ({} classes)",
                i + 1,
                classes.len()
            )
        })?;
        let mut v = [0.0f64; 4];
        for (k, f) in fields[1..].iter().enumerate() {
            v[k] = f
                .parse()
                .map_err(|_| format!("line {}: {f:?} is not a number", i + 1))?;
            if !v[k].is_finite() {
                return Err(format!("line {}: {f:?} is not finite", i + 1));
            }
            if v[k].abs() > MAX_ABS_NORMALISED {
                return Err(format!(
                    "line {}: {f} is not a normalised coordinate (|value| > {MAX_ABS_NORMALISED})",
                    i + 1
                ));
            }
        }
        let [cx, cy, bw, bh] = v;
        // Both ends are clipped to the image: a box wholly outside it becomes empty (and
        // is dropped by the export and by `convert`, with a report), never inverted.
        let edge = |v: f64, side: f64| (v.clamp(0.0, 1.0) * side).round_ties_even();
        let bbox = BoxXyxy::new(
            edge(cx - bw / 2.0, w),
            edge(cy - bh / 2.0, h),
            edge(cx + bw / 2.0, w),
            edge(cy + bh / 2.0, h),
        );
        boxes.push(LabelBox::new(name, bbox));
    }
    Ok(boxes)
}

/// Reads a YOLO label file and its `classes.txt` for an image of known size. The class id
/// is the line number in `classes.txt` ([`ClassList::read_indexed`]: a blank or repeated
/// line inside the list is an error, not skipped).
pub fn read(
    path: &Path,
    image_filename: &str,
    width: u32,
    height: u32,
) -> Result<ImageAnnotation, FormatError> {
    let classes_file = classes_path(path);
    if !classes_file.exists() {
        return Err(FormatError::invalid(
            path,
            FORMAT,
            no_classes_txt(&classes_file),
        ));
    }
    let classes = ClassList::read_indexed(&classes_file)
        .map_err(|e| FormatError::invalid(path, FORMAT, e.to_string()))?;
    let text = read_text(path)?;
    let boxes =
        parse(&text, &classes, width, height).map_err(|r| FormatError::invalid(path, FORMAT, r))?;
    let mut ann = ImageAnnotation::new(image_filename, width, height);
    ann.boxes = boxes;
    Ok(ann)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_labelimg_lines_and_reads_them_back() {
        let mut ann = ImageAnnotation::new("a.jpg", 640, 480);
        ann.boxes.push(LabelBox::new(
            "Cola",
            BoxXyxy::new(10.0, 20.0, 110.0, 220.0),
        ));
        ann.boxes.push(LabelBox::new(
            "Sprite",
            BoxXyxy::new(0.0, 0.0, 640.0, 480.0),
        ));
        let mut classes = ClassList::from_names(["Sprite"]);
        let text = to_string(&ann, &mut classes);
        assert_eq!(
            text,
            "1 0.093750 0.250000 0.156250 0.416667\n0 0.500781 0.501042 0.998437 0.997917\n"
        );
        assert_eq!(classes.names(), ["Sprite", "Cola"]);
        let boxes = parse(&text, &classes, 640, 480).unwrap();
        assert_eq!(boxes[0].class_name, "Cola");
        assert_eq!(boxes[0].bbox, BoxXyxy::new(10.0, 20.0, 110.0, 220.0));
        assert_eq!(boxes[1].bbox, BoxXyxy::new(1.0, 1.0, 640.0, 480.0));
    }

    #[test]
    fn bad_lines_are_errors_with_line_numbers() {
        let classes = ClassList::from_names(["a"]);
        assert!(parse("0 0.5 0.5 0.1\n", &classes, 10, 10)
            .unwrap_err()
            .contains("line 1"));
        assert!(parse("\n3 0.5 0.5 0.1 0.1\n", &classes, 10, 10)
            .unwrap_err()
            .contains("line 2: class index 3"));
        assert!(parse("0 x 0.5 0.1 0.1", &classes, 10, 10).is_err());
        assert!(parse("0 NaN 0.5 0.1 0.1", &classes, 10, 10).is_err());
    }

    /// Class id 2 is the third line of `classes.txt` (LabelImg, Ultralytics): with a
    /// duplicate or blank line before it, it was read as the fourth name (`Fanta`), silently.
    #[test]
    fn class_ids_are_line_numbers_of_classes_txt() {
        let dir = tempfile::tempdir().unwrap();
        let label = dir.path().join("img.txt");
        std::fs::write(&label, "2 0.5 0.5 0.2 0.2\n").unwrap();
        let classes = dir.path().join("classes.txt");
        std::fs::write(&classes, "Cola\nDiet Cola\nSprite\nFanta\n\n").unwrap();
        let ann = read(&label, "img.jpg", 640, 480).unwrap();
        assert_eq!(ann.boxes[0].class_name, "Sprite");
        for (content, line) in [
            ("Cola\nCola\nSprite\nFanta\n", "line 2"),
            ("Cola\n\nSprite\nFanta\n", "line 2"),
        ] {
            std::fs::write(&classes, content).unwrap();
            let err = read(&label, "img.jpg", 640, 480).unwrap_err().to_string();
            assert!(
                err.contains("img.txt") && err.contains("classes.txt") && err.contains(line),
                "{content:?}: {err}"
            );
        }
    }

    /// A `.txt` without `classes.txt`: the reason names both files.
    #[test]
    fn a_label_without_classes_txt_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let label = dir.path().join("img.txt");
        assert_eq!(missing_classes(&label), None);
        std::fs::write(&label, "0 0.5 0.5 0.2 0.2\n").unwrap();
        let reason = missing_classes(&label).unwrap();
        assert!(
            reason.contains("img.txt looks like a YOLO label file")
                && reason.contains("classes.txt is missing"),
            "{reason}"
        );
        let err = read(&label, "img.jpg", 640, 480).unwrap_err().to_string();
        assert!(
            err.contains("img.txt is not a valid YOLO file")
                && err.contains("classes.txt is missing"),
            "{err}"
        );
        std::fs::write(dir.path().join("classes.txt"), "Cola\n").unwrap();
        assert_eq!(missing_classes(&label), None);
    }

    /// Defect 12 of issue 21: `1e308` and a box wholly left of the image came out of
    /// `convert` as `xmax 9223372036854775807` and `xmin 1 > xmax -100`.
    #[test]
    fn absurd_values_are_refused_and_outside_boxes_are_clipped() {
        let classes = ClassList::from_names(["a"]);
        let err = parse("0 1e308 0.5 0.1 0.1\n", &classes, 640, 480).unwrap_err();
        assert!(
            err.contains("line 1") && err.contains("not a normalised"),
            "{err}"
        );
        let boxes = parse("0 -0.5 0.5 0.1 0.1\n", &classes, 640, 480).unwrap();
        let b = boxes[0].bbox;
        assert!(b.x1 <= b.x2 && b.x1 == 0.0 && b.x2 == 0.0, "{b:?}");
    }
}
