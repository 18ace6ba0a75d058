//! `detlab predict --voc-dir`: the predictions as LabelImg VOC files in a separate folder
//! (never the images' own folder, never over existing labels).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use detlab::dataset::{find_label, ImageAnnotation, LabelBox};
use detlab::detector::inference::ImagePrediction;

use detlab::file_id::FileId;

use super::predict::InputImage;

/// The VOC file of each image inside `dir` (mirroring sub-folders), after checking that
/// `dir` is (or can be made) a folder and is not an images folder, that no target file
/// exists yet, that no two images share a target, and that the JSON output `out` is
/// none of them.
pub(super) fn voc_targets(
    dir: &Path,
    inputs: &[InputImage],
    out: &Path,
) -> anyhow::Result<HashMap<PathBuf, PathBuf>> {
    check_folder(dir, dir)?;
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let dir_c = canon(dir);
    let dir_id = FileId::of(dir);
    let out_id = FileId::of(out);
    if dir_id.path().starts_with(out_id.path()) {
        bail!(
            "--out {} and --voc-dir {} collide: the JSON file would stand where the VOC \
             folder goes; choose another --out (nothing was written)",
            out.display(),
            dir.display()
        );
    }
    let mut targets = HashMap::new();
    let mut owners: HashMap<PathBuf, &Path> = HashMap::new();
    let mut folders = std::collections::HashSet::new();
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
        let target = dir.join(&rel);
        if let Some(first) = owners.insert(target.clone(), &img.path) {
            bail!(
                "{} and {} would both get the VOC file {}: predict them in separate runs \
                 (nothing was written)",
                first.display(),
                img.path.display(),
                target.display()
            );
        }
        if dir_id.path().join(&rel).starts_with(out_id.path()) {
            bail!(
                "--out {} is where the VOC file of {} goes; choose another --out (nothing \
                 was written)",
                out.display(),
                img.path.display()
            );
        }
        if let Some(folder) = target.parent() {
            if folder != dir && folders.insert(folder.to_path_buf()) {
                check_folder(dir, folder)?;
            }
        }
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

/// Checks that `dir` (`--voc-dir voc_dir` or a folder in it) is a folder or can be
/// created as one: it is not a file, and neither is the nearest of its parents that exists.
fn check_folder(voc_dir: &Path, dir: &Path) -> anyhow::Result<()> {
    let mut at = dir;
    loop {
        if at.as_os_str().is_empty() || at.is_dir() {
            return Ok(());
        }
        if at.exists() || at.is_symlink() {
            if at == voc_dir {
                bail!(
                    "--voc-dir {} is a file, not a folder (nothing was written)",
                    voc_dir.display()
                );
            }
            bail!(
                "--voc-dir {}: {} is a file, not a folder (nothing was written)",
                voc_dir.display(),
                at.display()
            );
        }
        match at.parent() {
            Some(parent) => at = parent,
            None => return Ok(()),
        }
    }
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
