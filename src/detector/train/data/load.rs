//! Loading a [`DataSource`] (an image folder with VOC / YOLO / CreateML labels, or a COCO
//! JSON) and the validation split into a [`Dataset`] with one fixed class order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{DataError, DataSource, Dataset, Sample, ValSplit};
use crate::dataset::{load_labels, scan_images, ClassList};
use crate::export::stratified_split;
use crate::formats::coco::CocoDataset;
use crate::geometry::BoxXyxy;

/// Named boxes of one image, before class ids are fixed.
struct RawSample {
    path: PathBuf,
    width: u32,
    height: u32,
    boxes: Vec<(BoxXyxy, String)>,
}

fn read_err(path: &Path, reason: impl ToString) -> DataError {
    DataError::Read {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Loads a source's images and named boxes, with the class order it declares (a class
/// file, or COCO categories by id).
fn load_raw(
    source: &DataSource,
    skipped: &mut Vec<(PathBuf, String)>,
) -> Result<(Vec<RawSample>, Vec<String>), DataError> {
    match source {
        DataSource::Folder { images, labels } => {
            let paths = scan_images(images).map_err(|e| read_err(images, e))?;
            let mut declared = Vec::new();
            for dir in [Some(images.as_path()), labels.as_deref()]
                .into_iter()
                .flatten()
            {
                for name in ["predefined_classes.txt", "classes.txt"] {
                    let p = dir.join(name);
                    if p.is_file() && declared.is_empty() {
                        if let Ok(list) = ClassList::read(&p) {
                            declared = list.names().to_vec();
                        }
                    }
                }
            }
            let results: Vec<_> = paths
                .par_iter()
                .map(|p| (p.clone(), load_labels(p, labels.as_deref())))
                .collect();
            let mut out = Vec::new();
            for (path, r) in results {
                match r {
                    Ok(Some(l)) => {
                        let a = l.annotation;
                        let boxes = a
                            .boxes
                            .into_iter()
                            .map(|b| (b.bbox.normalized(), b.class_name))
                            .filter(|(b, _)| b.is_finite() && b.width() >= 1.0 && b.height() >= 1.0)
                            .collect();
                        out.push(RawSample {
                            path,
                            width: a.width,
                            height: a.height,
                            boxes,
                        });
                    }
                    Ok(None) => skipped.push((path, "no label file".into())),
                    Err(e) => skipped.push((path, e.to_string())),
                }
            }
            if out.is_empty() {
                return Err(DataError::NoImages(images.clone()));
            }
            Ok((out, declared))
        }
        DataSource::Coco { json, images } => {
            let coco = CocoDataset::read(json).map_err(|e| read_err(json, e))?;
            let root = images
                .clone()
                .unwrap_or_else(|| json.parent().map(Path::to_path_buf).unwrap_or_default());
            let mut cats: Vec<_> = coco.categories.iter().collect();
            cats.sort_by_key(|c| c.id);
            let cat_name: BTreeMap<u64, String> =
                cats.iter().map(|c| (c.id, c.name.clone())).collect();
            let mut by_image: BTreeMap<u64, Vec<(BoxXyxy, String)>> = BTreeMap::new();
            for a in &coco.annotations {
                let b = a.bbox_xywh().to_xyxy();
                if a.iscrowd != 0 || !b.is_finite() || b.width() < 1.0 || b.height() < 1.0 {
                    continue;
                }
                let name = cat_name
                    .get(&a.category_id)
                    .cloned()
                    .ok_or_else(|| read_err(json, format!("unknown category {}", a.category_id)))?;
                by_image.entry(a.image_id).or_default().push((b, name));
            }
            let out: Vec<RawSample> = coco
                .images
                .iter()
                .map(|img| RawSample {
                    path: root.join(&img.file_name),
                    width: img.width,
                    height: img.height,
                    boxes: by_image.remove(&img.id).unwrap_or_default(),
                })
                .collect();
            if out.is_empty() {
                return Err(DataError::NoImages(json.clone()));
            }
            Ok((out, cats.iter().map(|c| c.name.clone()).collect()))
        }
    }
}

/// The `train/` and `val/` sub-folders of a folder source, when both hold images.
fn existing_split(source: &DataSource) -> Option<(DataSource, DataSource)> {
    let DataSource::Folder { images, labels } = source else {
        return None;
    };
    let (t, v) = (images.join("train"), images.join("val"));
    let has_images = |d: &Path| scan_images(d).is_ok_and(|v| !v.is_empty());
    (has_images(&t) && has_images(&v)).then(|| {
        let sub = |name: &str| DataSource::Folder {
            images: images.join(name),
            labels: labels.as_ref().map(|l| {
                let s = l.join(name);
                if s.is_dir() {
                    s
                } else {
                    l.clone()
                }
            }),
        };
        (sub("train"), sub("val"))
    })
}

/// Loads the training (and validation) data and fixes the class order: the declared
/// order (class file / COCO categories) first, then other names in sorted order.
pub fn load_dataset(train: &DataSource, val: &ValSplit) -> Result<Dataset, DataError> {
    let mut skipped = Vec::new();
    let (train_src, val_src) = match (val, existing_split(train)) {
        (ValSplit::Source(v), _) => (train.clone(), Some(v.clone())),
        (ValSplit::Fraction { .. }, Some((t, v))) => (t, Some(v)),
        (ValSplit::Fraction { .. }, None) => (train.clone(), None),
    };
    let (train_raw, declared) = load_raw(&train_src, &mut skipped)?;
    let val_raw = match &val_src {
        Some(v) => load_raw(v, &mut skipped)?.0,
        None => Vec::new(),
    };
    let mut classes = ClassList::from_names(declared);
    let used: BTreeSet<&str> = train_raw
        .iter()
        .flat_map(|s| s.boxes.iter().map(|(_, n)| n.as_str()))
        .collect();
    for name in used {
        classes.ensure(name);
    }
    let unknown: BTreeSet<&str> = val_raw
        .iter()
        .flat_map(|s| s.boxes.iter().map(|(_, n)| n.as_str()))
        .filter(|n| classes.id(n).is_none())
        .collect();
    if !unknown.is_empty() {
        return Err(DataError::UnknownValClasses(
            unknown.into_iter().collect::<Vec<_>>().join(", "),
        ));
    }
    let resolve = |raw: Vec<RawSample>| -> Vec<Sample> {
        raw.into_iter()
            .map(|r| {
                let (boxes, classes): (Vec<_>, Vec<_>) = r
                    .boxes
                    .into_iter()
                    .map(|(b, n)| (b, classes.id(&n).unwrap_or(0)))
                    .unzip();
                Sample {
                    path: r.path,
                    width: r.width,
                    height: r.height,
                    boxes,
                    classes,
                }
            })
            .collect()
    };
    let mut train_samples = resolve(train_raw);
    let mut val_samples = resolve(val_raw);
    if let (None, ValSplit::Fraction { fraction, seed }) = (&val_src, val) {
        if *fraction > 0.0 && train_samples.len() > 1 {
            let per_image: Vec<Vec<usize>> =
                train_samples.iter().map(|s| s.classes.clone()).collect();
            let is_val = stratified_split(&per_image, classes.len(), *fraction, *seed);
            let all = std::mem::take(&mut train_samples);
            for (s, v) in all.into_iter().zip(is_val) {
                if v {
                    val_samples.push(s);
                } else {
                    train_samples.push(s);
                }
            }
        }
    }
    Ok(Dataset {
        class_names: classes.names().to_vec(),
        train: train_samples,
        val: val_samples,
        skipped,
        unreadable: Vec::new(),
        fitted: Vec::new(),
    })
}
