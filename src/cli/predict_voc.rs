//! `detlab predict --voc-dir`: the predictions as LabelImg VOC files in a separate folder
//! (never the images' own folder, never over existing labels).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use detlab::dataset::{find_label, ImageAnnotation, LabelBox};
use detlab::detector::inference::ImagePrediction;

use super::predict::InputImage;

/// The VOC file of each image inside `dir` (mirroring sub-folders), after checking that
/// `dir` is not an images folder and that no target file exists yet.
pub(super) fn voc_targets(
    dir: &Path,
    inputs: &[InputImage],
) -> anyhow::Result<HashMap<PathBuf, PathBuf>> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let dir_c = canon(dir);
    let mut targets = HashMap::new();
    let mut existing = Vec::new();
    for img in inputs {
        let parent = img.path.parent().unwrap_or(Path::new("."));
        if canon(parent) == dir_c {
            bail!(
                "--voc-dir {} is the folder of the images ({}), where their own labels live; \
                 choose a separate folder",
                dir.display(),
                img.path.display()
            );
        }
        let rel = Path::new(&img.name).with_extension("xml");
        let target = dir.join(rel);
        // The file we would write, or the image's labels if `dir` is its LabelImg save folder.
        if target.exists() || find_label(&img.path, Some(dir)).is_some() {
            existing.push(target.clone());
        }
        targets.insert(img.path.clone(), target);
    }
    if !existing.is_empty() {
        bail!(
            "--voc-dir {} already holds labels for {} of the images (e.g. {}); \
             predictions are never written over existing labels — choose an empty folder",
            dir.display(),
            existing.len(),
            existing[0].display()
        );
    }
    Ok(targets)
}

/// Writes one image's detections as a LabelImg VOC file.
pub(super) fn write_voc(
    target: &Path,
    image: &Path,
    pred: &ImagePrediction,
    classes: &[String],
) -> anyhow::Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let name = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut ann = ImageAnnotation::new(name, pred.width, pred.height);
    ann.boxes = pred
        .detections
        .iter()
        .map(|d| LabelBox::new(classes[d.class_id].clone(), d.bbox))
        .collect();
    detlab::formats::voc::write(target, &ann, image)
        .with_context(|| format!("writing {}", target.display()))?;
    Ok(())
}
