//! `detlab predict --gt`: matching the model's classes and the images to a COCO ground
//! truth's category and image ids, and the COCO `[x, y, w, h]` box of a detection.

use std::collections::HashMap;

use anyhow::bail;

use detlab::detector::maths::postprocess::Detection;
use detlab::eval::CocoGroundTruth;

/// COCO category id for each model class: the GT category with the same name; when no
/// class name occurs in the GT at all (e.g. an imported model with `class1..`), the
/// 1-based class index. `None`: a class the GT does not have (its detections are dropped).
pub fn category_ids(class_names: &[String], gt: &CocoGroundTruth) -> Vec<Option<i64>> {
    let by_name: HashMap<&str, i64> = gt
        .categories()
        .iter()
        .map(|c| (c.name.as_str(), c.id))
        .collect();
    let named: Vec<Option<i64>> = class_names
        .iter()
        .map(|n| by_name.get(n.as_str()).copied())
        .collect();
    if named.iter().all(Option::is_none) {
        eprintln!(
            "note: no model class name is a ground-truth category name; using the 1-based class index as category_id"
        );
        (1..=class_names.len() as i64).map(Some).collect()
    } else {
        named
    }
}

/// Matches image names to GT image ids: by the whole relative name, else by the file name
/// alone when that is unique in the GT. Errors listing the names that match nothing.
pub fn match_image_ids(names: &[&str], gt: &CocoGroundTruth) -> anyhow::Result<Vec<i64>> {
    let norm = |s: &str| s.replace('\\', "/");
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    let mut full: HashMap<String, i64> = HashMap::new();
    let mut by_base: HashMap<String, Option<i64>> = HashMap::new();
    for img in gt.images() {
        let f = norm(&img.file_name);
        by_base
            .entry(base(&f))
            .and_modify(|v| {
                if *v != Some(img.id) {
                    *v = None
                }
            })
            .or_insert(Some(img.id));
        full.insert(f, img.id);
    }
    let mut ids = Vec::with_capacity(names.len());
    let mut unmatched = Vec::new();
    for name in names {
        let n = norm(name);
        match full
            .get(&n)
            .copied()
            .or_else(|| by_base.get(&base(&n)).copied().flatten())
        {
            Some(id) => ids.push(id),
            None => unmatched.push(n),
        }
    }
    if !unmatched.is_empty() {
        const SHOW: usize = 20;
        let mut msg = format!(
            "{} of {} images are not in the ground truth (matched by file name):",
            unmatched.len(),
            names.len()
        );
        for n in unmatched.iter().take(SHOW) {
            msg.push_str(&format!("\n  {n}"));
        }
        if unmatched.len() > SHOW {
            msg.push_str(&format!("\n  … and {} more", unmatched.len() - SHOW));
        }
        bail!(msg);
    }
    Ok(ids)
}

/// COCO `[x, y, w, h]` of a detection.
pub fn xywh(d: &Detection) -> [f64; 4] {
    [d.bbox.x1, d.bbox.y1, d.bbox.width(), d.bbox.height()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use detlab::eval::{GtCategory, GtImage};

    fn gt() -> CocoGroundTruth {
        let img = |id, f: &str| GtImage {
            id,
            file_name: f.into(),
        };
        let cat = |id, n: &str| GtCategory { id, name: n.into() };
        CocoGroundTruth::new(
            vec![
                img(7, "train/a.jpg"),
                img(8, "b.jpg"),
                img(9, "x/c.jpg"),
                img(10, "y/c.jpg"),
            ],
            vec![cat(3, "Cola"), cat(5, "Sprite")],
            vec![],
        )
        .unwrap()
    }

    #[test]
    fn images_match_by_path_then_unique_file_name() {
        let gt = gt();
        assert_eq!(
            match_image_ids(&["train/a.jpg", "a.jpg", "sub/b.jpg", "y/c.jpg"], &gt).unwrap(),
            vec![7, 7, 8, 10]
        );
        let err = match_image_ids(&["c.jpg", "zzz.png"], &gt)
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 of 2") && err.contains("zzz.png"), "{err}");
    }

    #[test]
    fn categories_match_by_name() {
        let gt = gt();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            category_ids(&names(&["Sprite", "Fanta", "Cola"]), &gt),
            vec![Some(5), None, Some(3)]
        );
        assert_eq!(
            category_ids(&names(&["class1", "class2"]), &gt),
            vec![Some(1), Some(2)]
        );
    }
}
