//! One-click COCO export: a folder of labelled images → `instances_train.json`
//! (+ `instances_val.json`), in the plain layout or the one Zylo117's trainer reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::error::{ExportError, Skipped};
use super::split::{stratified_split, SplitMode};
use super::transaction::Transaction;
use crate::dataset::{
    check_label_folder, load_labels, read_image_info, scan_images, ClassList, ImageAnnotation,
};
use crate::formats::coco::{CocoAnnotation, CocoCategory, CocoDataset, CocoImage};

/// Where the exported files go and how they are laid out.
#[derive(Clone, Debug, PartialEq)]
pub enum Layout {
    /// `OUT/instances_train.json`, `OUT/instances_val.json`, `OUT/labels.txt`;
    /// `file_name` relative to the images folder.
    Plain,
    /// `OUT/datasets/NAME/{train,val}/…` (images copied), `OUT/datasets/NAME/annotations/
    /// instances_{train,val}.json` and `OUT/projects/NAME.yml` with `obj_list`.
    Zylo117 { project: String },
}

/// What to export.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub images_dir: PathBuf,
    /// Folder of the label files; `None` = beside the images.
    pub labels_dir: Option<PathBuf>,
    pub out_dir: PathBuf,
    /// Class order (category ids 1..N); names found only in labels are appended.
    pub classes: ClassList,
    pub split: SplitMode,
    pub layout: Layout,
    /// Export `difficult` boxes as `iscrowd: 1`, so that COCO evaluation ignores them.
    pub difficult_as_crowd: bool,
    /// Write nothing when any file would be skipped ([`ExportError::Strict`]).
    pub strict: bool,
}

/// What an export did.
#[derive(Clone, Debug, Default)]
pub struct ExportSummary {
    /// Images per split name (`train`, `val`, …).
    pub images: BTreeMap<String, usize>,
    /// Boxes per class name, in category order.
    pub boxes_per_class: Vec<(String, usize)>,
    /// Images without any box (exported as negatives).
    pub negatives: usize,
    pub skipped: Vec<Skipped>,
    /// Boxes dropped because they were empty after clipping to the image.
    pub dropped_boxes: Vec<Skipped>,
    /// Images whose label file gives a size other than the image header's; the export
    /// uses the header's size (that of the pixels a trainer loads) and clips to it.
    pub size_mismatches: Vec<Skipped>,
    pub files_written: Vec<PathBuf>,
    /// `instances_*.json` files of splits this export does not have (left by an earlier
    /// export with other splits), removed so that the output is one consistent set.
    pub removed_stale: Vec<PathBuf>,
}

impl ExportSummary {
    pub fn total_images(&self) -> usize {
        self.images.values().sum()
    }

    /// A human-readable report (used by the CLI and the GUI's result dialog).
    pub fn report(&self) -> String {
        let mut s = String::new();
        let splits: Vec<String> = self
            .images
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        s.push_str(&format!(
            "images: {} ({})\n",
            self.total_images(),
            splits.join(", ")
        ));
        let boxes: usize = self.boxes_per_class.iter().map(|(_, n)| n).sum();
        s.push_str(&format!("boxes: {boxes}\n"));
        for (name, n) in &self.boxes_per_class {
            s.push_str(&format!("  {name}: {n}\n"));
        }
        s.push_str(&format!(
            "negatives (images without boxes): {}\n",
            self.negatives
        ));
        if !self.dropped_boxes.is_empty() {
            s.push_str(&format!(
                "boxes dropped (empty after clipping): {}\n",
                self.dropped_boxes.len()
            ));
        }
        if !self.size_mismatches.is_empty() {
            s.push_str(&format!(
                "warning: label size differs from the image header (header size used): {}\n",
                self.size_mismatches.len()
            ));
            for k in &self.size_mismatches {
                s.push_str(&format!("  {}: {}\n", k.path.display(), k.reason));
            }
        }
        if !self.skipped.is_empty() {
            s.push_str(&format!("skipped files: {}\n", self.skipped.len()));
            for k in &self.skipped {
                s.push_str(&format!("  {}: {}\n", k.path.display(), k.reason));
            }
        }
        for f in &self.files_written {
            s.push_str(&format!("wrote {}\n", f.display()));
        }
        for f in &self.removed_stale {
            s.push_str(&format!(
                "removed {} (a split this export does not have)\n",
                f.display()
            ));
        }
        s
    }
}

/// Whether `name` can be a folder and file name of its own.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
}

/// One image ready for export.
struct Item {
    path: PathBuf,
    /// Path below the images root, `/`-separated.
    relative: String,
    annotation: ImageAnnotation,
    /// Set when the label file's size disagreed with the header (now the header's).
    size_mismatch: Option<String>,
}

/// Reads every image's labels (in parallel); failures are collected, not fatal.
fn collect(
    options: &ExportOptions,
    images: &[PathBuf],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> (Vec<Item>, Vec<Skipped>) {
    let done = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<Item, Skipped>> = images
        .par_iter()
        .map(|path| {
            let result = load_one(options, path);
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n.is_multiple_of(256) || n == images.len() {
                progress(n, images.len());
            }
            result
        })
        .collect();
    let mut items = Vec::with_capacity(results.len());
    let mut skipped = Vec::new();
    for r in results {
        match r {
            Ok(item) => items.push(item),
            Err(s) => skipped.push(s),
        }
    }
    (items, skipped)
}

fn load_one(options: &ExportOptions, path: &Path) -> Result<Item, Skipped> {
    let skip = |reason: String| Skipped {
        path: path.to_path_buf(),
        reason,
    };
    // COCO file names are JSON text: a name that is not UTF-8 cannot be carried (it would
    // become `caf\u{FFFD}.jpg`, a file that does not exist), so it is reported instead.
    let relative = path
        .strip_prefix(&options.images_dir)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            skip(
                "the file name is not valid UTF-8, and COCO file names are text (rename the file)"
                    .into(),
            )
        })?
        .join("/");
    let labels =
        load_labels(path, options.labels_dir.as_deref()).map_err(|e| skip(e.to_string()))?;
    // An image a trainer cannot open (0 bytes, text named .jpg) is not exported: its
    // labels alone would stop a training run at it.
    let info = read_image_info(path)
        .map_err(|e| skip(format!("the image cannot be read: {}", e.reason)))?;
    let mut size_mismatch = None;
    let annotation = match labels {
        Some(loaded) => {
            let mut ann = loaded.annotation;
            size_mismatch = crate::dataset::fit_labels_to_image(&info, &mut ann);
            ann
        }
        None => {
            // A `.txt` LabelImg's lookup passes over: a YOLO label without its class list.
            let txt = crate::dataset::label_path(
                path,
                options.labels_dir.as_deref(),
                crate::dataset::LabelFormat::Yolo,
            );
            if let Some(reason) = crate::formats::yolo::missing_classes(&txt) {
                return Err(skip(reason));
            }
            let name = path
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            ImageAnnotation::new(name, info.width, info.height)
        }
    };
    Ok(Item {
        path: path.to_path_buf(),
        relative,
        annotation,
        size_mismatch,
    })
}

/// Exports the folder; `progress(done, total)` is called from worker threads.
pub fn export_coco(
    options: &ExportOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<ExportSummary, ExportError> {
    if let Some(labels) = &options.labels_dir {
        check_label_folder(labels)?;
    }
    if let Layout::Zylo117 { project } = &options.layout {
        if !is_plain_name(project) {
            return Err(ExportError::ProjectName(project.clone()));
        }
    }
    let images = scan_images(&options.images_dir).map_err(|source| ExportError::Scan {
        path: options.images_dir.clone(),
        source,
    })?;
    let (items, skipped) = collect(options, &images, progress);
    if items.is_empty() {
        return Err(ExportError::Nothing {
            folder: options.images_dir.clone(),
            skipped,
        });
    }
    if options.strict && !skipped.is_empty() {
        return Err(ExportError::Strict { skipped });
    }

    let mut classes = options.classes.clone();
    let image_classes: Vec<Vec<usize>> = items
        .iter()
        .map(|it| {
            it.annotation
                .boxes
                .iter()
                .map(|b| classes.ensure(&b.class_name))
                .collect()
        })
        .collect();

    // Split name and the file_name within that split, per item.
    let assignment: Vec<(String, String)> = match &options.split {
        SplitMode::None => items
            .iter()
            .map(|it| ("train".to_string(), it.relative.clone()))
            .collect(),
        SplitMode::Fraction { val_fraction, seed } => {
            let is_val = stratified_split(&image_classes, classes.len(), *val_fraction, *seed);
            items
                .iter()
                .zip(is_val)
                .map(|(it, v)| {
                    (
                        (if v { "val" } else { "train" }).to_string(),
                        it.relative.clone(),
                    )
                })
                .collect()
        }
        SplitMode::ByFolder => items
            .iter()
            .map(|it| match it.relative.split_once('/') {
                Some((folder, rest)) => (folder.to_string(), rest.to_string()),
                None => ("train".to_string(), it.relative.clone()),
            })
            .collect(),
    };

    check_unique_names(&items, &assignment)?;

    let categories: Vec<CocoCategory> = classes
        .names()
        .iter()
        .enumerate()
        .map(|(i, n)| CocoCategory {
            id: i as u64 + 1,
            name: n.clone(),
            supercategory: "none".into(),
        })
        .collect();
    let mut summary = ExportSummary {
        skipped,
        size_mismatches: items
            .iter()
            .filter_map(|it| {
                it.size_mismatch.as_ref().map(|reason| Skipped {
                    path: it.path.clone(),
                    reason: reason.clone(),
                })
            })
            .collect(),
        ..Default::default()
    };
    let mut per_class = vec![0usize; classes.len()];
    let mut splits: BTreeMap<String, CocoDataset> = BTreeMap::new();
    for (idx, (item, (split, file_name))) in items.iter().zip(&assignment).enumerate() {
        let dataset = splits.entry(split.clone()).or_insert_with(|| CocoDataset {
            info: serde_json::json!({"description": "exported by detlab", "version": env!("CARGO_PKG_VERSION")}),
            categories: categories.clone(),
            ..Default::default()
        });
        let image_id = dataset.images.len() as u64 + 1;
        let ann = &item.annotation;
        dataset.images.push(CocoImage {
            id: image_id,
            file_name: file_name.clone(),
            width: ann.width,
            height: ann.height,
        });
        let mut kept = 0;
        for (b, &class) in ann.boxes.iter().zip(&image_classes[idx]) {
            let clipped = b
                .bbox
                .normalized()
                .clamp_to(ann.width as f64, ann.height as f64);
            if clipped.width() <= 0.0 || clipped.height() <= 0.0 {
                summary.dropped_boxes.push(Skipped {
                    path: item.path.clone(),
                    reason: format!(
                        "{} box ({}, {})–({}, {}) is empty inside the {}×{} image",
                        b.class_name,
                        b.bbox.x1,
                        b.bbox.y1,
                        b.bbox.x2,
                        b.bbox.y2,
                        ann.width,
                        ann.height
                    ),
                });
                continue;
            }
            let id = dataset.annotations.len() as u64 + 1;
            let crowd = options.difficult_as_crowd && b.difficult;
            dataset.annotations.push(CocoAnnotation::from_box(
                id,
                image_id,
                class as u64 + 1,
                clipped.to_xywh(),
                crowd,
            ));
            per_class[class] += 1;
            kept += 1;
        }
        if kept == 0 {
            summary.negatives += 1;
        }
        *summary.images.entry(split.clone()).or_default() += 1;
    }
    summary.boxes_per_class = classes.names().iter().cloned().zip(per_class).collect();
    write_layout(
        options,
        &classes,
        &splits,
        &items,
        &assignment,
        &mut summary,
    )?;
    Ok(summary)
}

/// Refuses two images with the same file name in one split (by folder, `x.jpg` at the top
/// and `train/x.jpg` are both `train`'s `x.jpg`).
fn check_unique_names(items: &[Item], assignment: &[(String, String)]) -> Result<(), ExportError> {
    let mut seen: std::collections::HashMap<&(String, String), &Path> =
        std::collections::HashMap::new();
    for (item, key) in items.iter().zip(assignment) {
        if let Some(first) = seen.insert(key, &item.path) {
            return Err(ExportError::SameName {
                split: key.0.clone(),
                file_name: key.1.clone(),
                first: first.to_path_buf(),
                second: item.path.clone(),
            });
        }
    }
    Ok(())
}

/// `instances_*.json` files in `dir` other than those of `splits`.
fn stale_splits(dir: &Path, splits: &BTreeMap<String, CocoDataset>) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let split = name.strip_prefix("instances_")?.strip_suffix(".json")?;
            (!splits.contains_key(split) && e.path().is_file()).then(|| e.path())
        })
        .collect()
}

fn write_layout(
    options: &ExportOptions,
    classes: &ClassList,
    splits: &BTreeMap<String, CocoDataset>,
    items: &[Item],
    assignment: &[(String, String)],
    summary: &mut ExportSummary,
) -> Result<(), ExportError> {
    let out = &options.out_dir;
    // An export killed while renaming its files into place is completed first.
    let journal = out.join(crate::atomic::COMMIT_JOURNAL);
    crate::atomic::finish_interrupted_commit(&journal).map_err(|source| ExportError::Write {
        path: journal,
        source,
    })?;
    let mut tx = Transaction::new(out);
    let json = |path: &Path, dataset: &CocoDataset| {
        serde_json::to_vec(dataset).map_err(|e| {
            ExportError::Format(crate::formats::FormatError::invalid(
                path,
                "COCO",
                e.to_string(),
            ))
        })
    };
    let mut listed = Vec::new();
    let annotations_dir = match &options.layout {
        Layout::Plain => {
            tx.mkdir(out)?;
            for (split, dataset) in splits {
                let path = out.join(format!("instances_{split}.json"));
                tx.stage(&path, &json(&path, dataset)?)?;
                listed.push(path);
            }
            let labels = out.join("labels.txt");
            tx.stage(&labels, classes.to_file_content().as_bytes())?;
            listed.push(labels);
            out.clone()
        }
        Layout::Zylo117 { project } => {
            let root = out.join("datasets").join(project);
            let annotations = root.join("annotations");
            tx.mkdir(&annotations)?;
            for (item, (split, file_name)) in items.iter().zip(assignment) {
                let target = root.join(split).join(file_name);
                if let Some(parent) = target.parent() {
                    tx.mkdir(parent)?;
                }
                tx.stage_image(&item.path, &target)?;
            }
            for (split, dataset) in splits {
                let path = annotations.join(format!("instances_{split}.json"));
                tx.stage(&path, &json(&path, dataset)?)?;
                listed.push(path);
            }
            let projects = out.join("projects");
            tx.mkdir(&projects)?;
            let yml = projects.join(format!("{project}.yml"));
            tx.stage(
                &yml,
                zylo117_project_yml(project, classes, splits.contains_key("val")).as_bytes(),
            )?;
            listed.push(yml);
            annotations
        }
    };
    tx.commit()?;
    summary.files_written.extend(listed);
    for stale in stale_splits(&annotations_dir, splits) {
        if std::fs::remove_file(&stale).is_ok() {
            summary.removed_stale.push(stale);
        }
    }
    Ok(())
}

/// The `projects/NAME.yml` that Zylo117's `train.py` reads.
pub fn zylo117_project_yml(project: &str, classes: &ClassList, has_val: bool) -> String {
    let names: Vec<String> = classes
        .names()
        .iter()
        .map(|n| format!("'{}'", n.replace('\'', "''")))
        .collect();
    format!(
        "project_name: {project}  # also the folder name of the dataset under data_path\n\
         train_set: train\n\
         val_set: {val}\n\
         num_gpus: 1\n\
         \n\
         # mean and std in RGB order\n\
         mean: [0.485, 0.456, 0.406]\n\
         std: [0.229, 0.224, 0.225]\n\
         \n\
         anchors_scales: '[2 ** 0, 2 ** (1.0 / 3.0), 2 ** (2.0 / 3.0)]'\n\
         anchors_ratios: '[(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)]'\n\
         \n\
         # category ids 1..N in this order\n\
         obj_list: [{list}]\n",
        val = if has_val { "val" } else { "train" },
        list = names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An export without a val split after one with it: the old `instances_val.json`
    /// would overlap the new train file, so it is removed and listed.
    #[test]
    fn a_split_the_new_export_lacks_is_removed_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images");
        std::fs::create_dir_all(&images).unwrap();
        for i in 0..4 {
            image::RgbImage::new(8, 6)
                .save(images.join(format!("i{i}.png")))
                .unwrap();
        }
        let out = dir.path().join("out");
        let mut options = ExportOptions {
            images_dir: images,
            labels_dir: None,
            out_dir: out.clone(),
            classes: ClassList::new(),
            split: SplitMode::Fraction {
                val_fraction: 0.5,
                seed: 1,
            },
            layout: Layout::Plain,
            difficult_as_crowd: false,
            strict: false,
        };
        export_coco(&options, &|_, _| {}).unwrap();
        assert!(out.join("instances_val.json").is_file());
        std::fs::write(out.join("notes.json"), "{}").unwrap();
        options.split = SplitMode::None;
        let summary = export_coco(&options, &|_, _| {}).unwrap();
        assert_eq!(summary.removed_stale, [out.join("instances_val.json")]);
        assert!(summary
            .report()
            .contains("instances_val.json (a split this export"));
        let mut left: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["instances_train.json", "labels.txt", "notes.json"]);
    }
}
