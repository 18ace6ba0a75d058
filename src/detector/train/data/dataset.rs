//! The labelled images: one [`Sample`] per image, where a set comes from
//! ([`DataSource`]), how validation images are chosen ([`ValSplit`]), and the resulting
//! [`Dataset`] with its checks (unreadable files, classes without boxes).

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::DataError;
use crate::dataset::image_info::{fit_boxes_to_image, read_image_info, ImageInfo};
use crate::geometry::BoxXyxy;

/// One labelled image; boxes in original (upright) image pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub boxes: Vec<BoxXyxy>,
    /// Class ids (indices into [`Dataset::class_names`]), one per box.
    pub classes: Vec<usize>,
}

/// Where a set of labelled images comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// An image folder (recursive) with VOC / YOLO / CreateML labels beside the images or
    /// in `labels`.
    Folder {
        images: PathBuf,
        labels: Option<PathBuf>,
    },
    /// A COCO JSON; `file_name`s are relative to `images` (default: the JSON's folder).
    Coco {
        json: PathBuf,
        images: Option<PathBuf>,
    },
}

impl DataSource {
    /// A `.json` path is a COCO file, anything else a folder; `aux` is the labels folder
    /// (folder) or the image root (COCO).
    pub fn from_path(path: &Path, aux: Option<&Path>) -> Self {
        let aux = aux.map(Path::to_path_buf);
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            Self::Coco {
                json: path.to_path_buf(),
                images: aux,
            }
        } else {
            Self::Folder {
                images: path.to_path_buf(),
                labels: aux,
            }
        }
    }
}

/// How the validation images are chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum ValSplit {
    /// A separate labelled set.
    Source(DataSource),
    /// A seeded, class-stratified fraction of the training source (when the training
    /// folder has `train/` and `val/` sub-folders, those are used instead).
    Fraction { fraction: f64, seed: u64 },
}

/// Training and validation images with one class list.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub class_names: Vec<String>,
    pub train: Vec<Sample>,
    pub val: Vec<Sample>,
    /// Images left out (no label file, unreadable labels), with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// Labelled images whose file cannot be read as an image (empty, not an image, a
    /// broken header), with the reason: [`Dataset::drop_unreadable`] moves them here from
    /// `train` and `val`, and training skips them (with a warning and their count).
    pub unreadable: Vec<(PathBuf, String)>,
    /// Images whose label file disagreed with the image header, with what
    /// [`Dataset::drop_unreadable`] changed: boxes labelled on a phone photo's stored
    /// pixels turned upright, or the header's size taken (as `export` does).
    pub fitted: Vec<(PathBuf, String)>,
}

impl Dataset {
    /// Number of training boxes per class.
    pub fn train_box_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.class_names.len()];
        for s in &self.train {
            for &c in &s.classes {
                counts[c] += 1;
            }
        }
        counts
    }

    /// Reads the header of every training and validation image (in parallel, without
    /// decoding the pixels) and moves the images that cannot be read to
    /// [`Dataset::unreadable`]: one 0-byte file or text file named `.jpg` no longer stops
    /// a run at its first batch. The labels of the others are fitted to their header
    /// ([`crate::dataset::fit_boxes_to_image`], recorded in [`Dataset::fitted`]).
    /// Returns how many were moved.
    pub fn drop_unreadable(&mut self) -> usize {
        let before = self.unreadable.len();
        for set in [&mut self.train, &mut self.val] {
            let verdicts: Vec<Result<ImageInfo, String>> = set
                .par_iter()
                .map(|s| read_image_info(&s.path).map_err(|e| e.reason))
                .collect();
            let all = std::mem::take(set);
            for (mut sample, verdict) in all.into_iter().zip(verdicts) {
                match verdict {
                    Err(reason) => self.unreadable.push((sample.path, reason)),
                    Ok(info) if sample.width == 0 || sample.height == 0 => {
                        (sample.width, sample.height) = (info.width, info.height);
                        set.push(sample);
                    }
                    Ok(info) => {
                        let mut size = (sample.width, sample.height);
                        if let Some(what) = fit_boxes_to_image(&info, &mut size, &mut sample.boxes)
                        {
                            (sample.width, sample.height) = size;
                            self.fitted.push((sample.path.clone(), what));
                        }
                        set.push(sample);
                    }
                }
            }
        }
        self.unreadable.len() - before
    }

    /// Refuses a set without boxes, or with a class that has no training box.
    pub fn check_trainable(&self) -> Result<(), DataError> {
        let counts = self.train_box_counts();
        if counts.iter().sum::<usize>() == 0 {
            return Err(DataError::NoBoxes);
        }
        let empty: Vec<&str> = self
            .class_names
            .iter()
            .zip(&counts)
            .filter(|(_, &n)| n == 0)
            .map(|(name, _)| name.as_str())
            .collect();
        if !empty.is_empty() {
            return Err(DataError::ClassesWithoutBoxes(empty.join(", ")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::sample_at;
    use super::*;
    use image::RgbImage;

    /// A 0-byte file and a text file named `.jpg` are set aside with their reason; the
    /// readable images stay in their sets.
    #[test]
    fn unreadable_images_are_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.png");
        RgbImage::new(40, 30).save(&good).unwrap();
        let empty = dir.path().join("empty.jpg");
        std::fs::write(&empty, b"").unwrap();
        let text = dir.path().join("text.jpg");
        std::fs::write(&text, b"this is not a JPEG\n").unwrap();
        let mut data = Dataset {
            class_names: vec!["a".into()],
            train: vec![sample_at(good.clone()), sample_at(empty.clone())],
            val: vec![sample_at(text.clone()), sample_at(good.clone())],
            skipped: vec![],
            unreadable: vec![],
            fitted: Vec::new(),
        };
        assert_eq!(data.drop_unreadable(), 2);
        assert_eq!(data.train, vec![sample_at(good.clone())]);
        assert_eq!(data.val, vec![sample_at(good)]);
        let set_aside: Vec<&PathBuf> = data.unreadable.iter().map(|(p, _)| p).collect();
        assert_eq!(set_aside, vec![&empty, &text]);
        assert!(data.unreadable.iter().all(|(_, why)| !why.is_empty()));
        assert_eq!(data.drop_unreadable(), 0);
    }
}
