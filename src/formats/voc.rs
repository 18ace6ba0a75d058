//! Pascal VOC XML, byte-compatible with LabelImg 1.8.6.
//!
//! Writer: tab indentation, no XML declaration, integer coordinates truncated toward
//! zero with `xmin`/`ymin` clamped to at least 1, LabelImg's `truncated` heuristic,
//! `verified="yes"` only when set, `database` = Unknown, `pose` = Unspecified.
//! Reader: lenient (float coordinates, missing optional fields, declarations, unknown
//! elements kept) and strict about errors (a file that does not parse is an error,
//! never "no boxes").

use std::path::Path;

use super::error::{read_text, write_file, FormatError};
use super::xml_tree::{escape_text, XmlElement};
use crate::dataset::{ClassList, ImageAnnotation, LabelBox};
use crate::geometry::BoxXyxy;

const FORMAT: &str = "Pascal VOC";

/// Reads a VOC file.
pub fn read(path: &Path) -> Result<ImageAnnotation, FormatError> {
    let text = read_text(path)?;
    parse(&text).map_err(|reason| FormatError::invalid(path, FORMAT, reason))
}

/// Parses VOC XML text; the error is the reason, for the caller to attach a path to.
pub fn parse(xml: &str) -> Result<ImageAnnotation, String> {
    let root = XmlElement::parse_document(xml).map_err(|e| e.to_string())?;
    if root.name != "annotation" {
        return Err(format!(
            "the root element is <{}>, expected <annotation>",
            root.name
        ));
    }
    let mut ann = ImageAnnotation {
        verified: root.attribute("verified") == Some("yes"),
        depth: 3,
        ..ImageAnnotation::default()
    };
    for child in &root.children {
        match child.name.as_str() {
            "filename" => ann.filename = child.text.clone(),
            "folder" | "path" | "segmented" => {}
            "source" => {
                ann.extra_source = child
                    .children
                    .iter()
                    .filter(|c| c.name != "database")
                    .cloned()
                    .collect();
            }
            "size" => {
                ann.width = parse_size(child, "width")?;
                ann.height = parse_size(child, "height")?;
                if let Some(d) = child.child_text("depth").filter(|d| !d.is_empty()) {
                    ann.depth = d
                        .parse()
                        .map_err(|_| format!("<depth> is not an integer: {d:?}"))?;
                }
            }
            "object" => ann.boxes.push(parse_object(child, ann.boxes.len())?),
            _ => ann.extra.push(child.clone()),
        }
    }
    Ok(ann)
}

fn parse_size(size: &XmlElement, name: &str) -> Result<u32, String> {
    match size.child_text(name) {
        None | Some("") => Ok(0),
        Some(t) => {
            let v: f64 = t
                .parse()
                .map_err(|_| format!("<size><{name}> is not a number: {t:?}"))?;
            if !(0.0..=u32::MAX as f64).contains(&v) {
                return Err(format!("<size><{name}> is out of range: {t}"));
            }
            Ok(v as u32)
        }
    }
}

fn parse_object(object: &XmlElement, index: usize) -> Result<LabelBox, String> {
    let which = || format!("object {}", index + 1);
    let name = object
        .child_text("name")
        .ok_or_else(|| format!("{} has no <name>", which()))?;
    let name = ClassList::check_name(name).map_err(|r| format!("{}: <name>: {r}", which()))?;
    let bndbox = object
        .child("bndbox")
        .ok_or_else(|| format!("{} ({name}) has no <bndbox>", which()))?;
    let coordinate = |tag: &str| -> Result<f64, String> {
        let t = bndbox
            .child_text(tag)
            .ok_or_else(|| format!("{} ({name}) has no <{tag}>", which()))?;
        let v: f64 = t
            .parse()
            .map_err(|_| format!("{} ({name}): <{tag}> is not a number: {t:?}", which()))?;
        super::check_coordinate(v).map_err(|r| format!("{} ({name}): <{tag}> {r}", which()))
    };
    let bbox = BoxXyxy::new(
        coordinate("xmin")?,
        coordinate("ymin")?,
        coordinate("xmax")?,
        coordinate("ymax")?,
    );
    let flag = |tag: &str| -> bool {
        matches!(
            object.child_text(tag).map(str::trim),
            Some("1") | Some("true") | Some("True")
        )
    };
    Ok(LabelBox {
        bbox,
        class_name: name.to_string(),
        difficult: flag("difficult"),
        truncated: flag("truncated"),
        extra: object
            .children
            .iter()
            .filter(|c| {
                !matches!(
                    c.name.as_str(),
                    "name" | "pose" | "truncated" | "difficult" | "bndbox"
                )
            })
            .cloned()
            .collect(),
    })
}

/// LabelImg's integer box: truncation toward zero, `xmin`/`ymin` clamped to ≥ 1.
pub fn labelimg_int_box(b: &BoxXyxy) -> [i64; 4] {
    let b = b.normalized();
    [
        b.x1.max(1.0).trunc() as i64,
        b.y1.max(1.0).trunc() as i64,
        b.x2.trunc() as i64,
        b.y2.trunc() as i64,
    ]
}

/// Serialises `ann` exactly as LabelImg 1.8.6 would for the image at `image_path`
/// (`folder` is the image's parent folder name, `path` the image path as given).
pub fn to_string(ann: &ImageAnnotation, image_path: &Path) -> String {
    let folder = image_path
        .parent()
        .and_then(Path::file_name)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let filename = if ann.filename.is_empty() {
        image_path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        ann.filename.clone()
    };
    let mut out = String::with_capacity(512 + 256 * ann.boxes.len());
    out.push_str(if ann.verified {
        "<annotation verified=\"yes\">\n"
    } else {
        "<annotation>\n"
    });
    leaf(&mut out, 1, "folder", &folder);
    leaf(&mut out, 1, "filename", &filename);
    leaf(&mut out, 1, "path", &image_path.to_string_lossy());
    out.push_str("\t<source>\n");
    leaf(&mut out, 2, "database", "Unknown");
    for e in &ann.extra_source {
        e.write_pretty(&mut out, 2);
    }
    out.push_str("\t</source>\n\t<size>\n");
    leaf(&mut out, 2, "width", &ann.width.to_string());
    leaf(&mut out, 2, "height", &ann.height.to_string());
    leaf(&mut out, 2, "depth", &ann.depth.to_string());
    out.push_str("\t</size>\n");
    leaf(&mut out, 1, "segmented", "0");
    for e in &ann.extra {
        e.write_pretty(&mut out, 1);
    }
    for b in &ann.boxes {
        let [xmin, ymin, xmax, ymax] = labelimg_int_box(&b.bbox);
        let (w, h) = (ann.width as i64, ann.height as i64);
        let truncated = ymax == h || ymin == 1 || xmax == w || xmin == 1;
        out.push_str("\t<object>\n");
        leaf(&mut out, 2, "name", &b.class_name);
        leaf(&mut out, 2, "pose", "Unspecified");
        leaf(&mut out, 2, "truncated", if truncated { "1" } else { "0" });
        leaf(
            &mut out,
            2,
            "difficult",
            if b.difficult { "1" } else { "0" },
        );
        out.push_str("\t\t<bndbox>\n");
        leaf(&mut out, 3, "xmin", &xmin.to_string());
        leaf(&mut out, 3, "ymin", &ymin.to_string());
        leaf(&mut out, 3, "xmax", &xmax.to_string());
        leaf(&mut out, 3, "ymax", &ymax.to_string());
        out.push_str("\t\t</bndbox>\n");
        for e in &b.extra {
            e.write_pretty(&mut out, 2);
        }
        out.push_str("\t</object>\n");
    }
    out.push_str("</annotation>\n");
    out
}

/// Writes `ann` as a LabelImg VOC file at `path`, atomically.
pub fn write(path: &Path, ann: &ImageAnnotation, image_path: &Path) -> Result<(), FormatError> {
    write_file(path, to_string(ann, image_path).as_bytes())
}

fn leaf(out: &mut String, depth: usize, name: &str, text: &str) {
    for _ in 0..depth {
        out.push('\t');
    }
    if text.is_empty() {
        out.push_str(&format!("<{name}/>\n"));
    } else {
        out.push_str(&format!("<{name}>{}</{name}>\n", escape_text(text)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LabelImg 1.8.6's output for these boxes (the reference's §1.4 example).
    const LABELIMG_OUTPUT: &str = "<annotation verified=\"yes\">\n\t<folder>shelf</folder>\n\t<filename>IMG_0001.jpg</filename>\n\t<path>/data/shelf/IMG_0001.jpg</path>\n\t<source>\n\t\t<database>Unknown</database>\n\t</source>\n\t<size>\n\t\t<width>1920</width>\n\t\t<height>1080</height>\n\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n\t<object>\n\t\t<name>cola</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>1</truncated>\n\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>1</xmin>\n\t\t\t<ymin>5</ymin>\n\t\t\t<xmax>200</xmax>\n\t\t\t<ymax>1080</ymax>\n\t\t</bndbox>\n\t</object>\n</annotation>\n";

    #[test]
    fn writer_is_byte_identical_to_labelimg() {
        let mut ann = ImageAnnotation::new("IMG_0001.jpg", 1920, 1080);
        ann.verified = true;
        ann.boxes.push(LabelBox::new(
            "cola",
            BoxXyxy::new(-3.2, 5.7, 200.9, 1080.0),
        ));
        assert_eq!(
            to_string(&ann, Path::new("/data/shelf/IMG_0001.jpg")),
            LABELIMG_OUTPUT
        );
    }

    #[test]
    fn reader_keeps_floats_flags_and_unknown_elements() {
        let xml = "<?xml version='1.0' encoding='utf-8'?>\n<annotation><filename>a.b.jpg</filename><owner><name>me</name></owner>\
            <size><width>640</width><height>480</height></size>\
            <object><name>Sprite</name><difficult>1</difficult><occluded>0</occluded>\
            <bndbox><xmin>10.5</xmin><ymin>20</ymin><xmax>30.25</xmax><ymax>40</ymax></bndbox></object></annotation>";
        let ann = parse(xml).unwrap();
        assert_eq!(ann.filename, "a.b.jpg");
        assert_eq!((ann.width, ann.height, ann.depth), (640, 480, 3));
        assert!(!ann.verified);
        let b = &ann.boxes[0];
        assert_eq!(b.bbox, BoxXyxy::new(10.5, 20.0, 30.25, 40.0));
        assert!(b.difficult);
        assert_eq!(b.extra[0].name, "occluded");
        assert_eq!(ann.extra[0].name, "owner");
        // A write keeps the unknown elements, and reads back the same.
        let again = parse(&to_string(&ann, Path::new("x/a.b.jpg"))).unwrap();
        assert_eq!(again.extra, ann.extra);
        assert_eq!(again.boxes[0].extra, ann.boxes[0].extra);
        assert_eq!(again.boxes[0].bbox, BoxXyxy::new(10.0, 20.0, 30.0, 40.0));
    }

    #[test]
    fn errors_name_the_problem() {
        let cases = [
            ("<annotation><object><name>a</name></object></annotation>", "no <bndbox>"),
            ("<annotation><object><bndbox/></object></annotation>", "no <name>"),
            ("<annotation><object><name>a</name><bndbox><xmin>x</xmin></bndbox></object></annotation>", "not a number"),
            ("<annotation><size><width>12", "ends inside"),
            ("<html/>", "root element"),
        ];
        for (xml, expected) in cases {
            let err = parse(xml).unwrap_err();
            assert!(err.contains(expected), "{xml}: {err}");
        }
    }

    #[test]
    fn class_names_are_escaped() {
        let mut ann = ImageAnnotation::new("a.jpg", 10, 10);
        ann.boxes
            .push(LabelBox::new("R&D <x>", BoxXyxy::new(2.0, 2.0, 5.0, 5.0)));
        let xml = to_string(&ann, Path::new("d/a.jpg"));
        assert!(xml.contains("<name>R&amp;D &lt;x&gt;</name>"));
        assert_eq!(parse(&xml).unwrap().boxes[0].class_name, "R&D <x>");
    }

    /// A `<name>` with a line break or a control character became a broken `classes.txt`
    /// (two lines) or VOC that Python's XML parser refuses; an empty one a nameless class.
    #[test]
    fn names_that_cannot_be_a_class_are_refused() {
        let object = |name: &str| {
            format!(
                "<annotation><object><name>Cola</name><bndbox><xmin>1</xmin><ymin>1</ymin>\
                 <xmax>5</xmax><ymax>5</ymax></bndbox></object><object><name>{name}</name>\
                 <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox>\
                 </object></annotation>"
            )
        };
        for (name, expected) in [
            ("Diet\nCola", "U+000A"),
            ("Diet&#1;Cola", "U+0001"),
            ("a\0b", "U+0000"),
            ("Diet\u{7}Cola", "U+0007"),
            ("", "empty"),
            ("  ", "empty"),
        ] {
            let err = parse(&object(name)).unwrap_err();
            assert!(
                err.starts_with("object 2: <name>: ") && err.contains(expected),
                "{name:?}: {err}"
            );
        }
        let ok = parse(&object(" Diet Cola ")).unwrap();
        assert_eq!(ok.boxes[1].class_name, "Diet Cola");
    }

    /// Defect 11 of issue 21: `xmax` = 1e308 reached the canvas and broke it.
    #[test]
    fn absurd_and_non_finite_coordinates_are_refused() {
        for (value, expected) in [
            ("1e308", "<xmax> 100000000"),
            ("-70000", "<xmax> -70000 is outside"),
            ("inf", "<xmax> is not finite"),
            ("NaN", "<xmax> is not finite"),
        ] {
            let xml = format!(
                "<annotation><object><name>Cola</name><bndbox><xmin>1</xmin><ymin>1</ymin>\
                 <xmax>{value}</xmax><ymax>5</ymax></bndbox></object></annotation>"
            );
            let err = parse(&xml).unwrap_err();
            assert!(
                err.starts_with("object 1 (Cola): ") && err.contains(expected),
                "{value}: {err}"
            );
        }
        let ok = "<annotation><object><name>a</name><bndbox><xmin>-5</xmin><ymin>1</ymin>\
                  <xmax>65536</xmax><ymax>5</ymax></bndbox></object></annotation>";
        assert_eq!(parse(ok).unwrap().boxes[0].bbox.x2, 65536.0);
    }
}
