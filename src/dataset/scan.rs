//! Finding images in a folder: recursive, natural case-insensitive order (like LabelImg).

use std::path::{Path, PathBuf};

/// File extensions (lower-case) detlab opens as images.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff"];

/// Whether `path` has an image extension (any case).
pub fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

/// All images under `dir`, recursively, in natural case-insensitive order of their path
/// relative to `dir` (`img2` before `img10`). Hidden files and folders are skipped;
/// unreadable sub-folders are skipped too (the caller may list them from `errors`).
pub fn scan_images(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} is not a folder", dir.display()),
        ));
    }
    let mut images: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && is_image_path(e.path()))
        .map(|e| e.into_path())
        .collect();
    sort_naturally(&mut images, dir);
    Ok(images)
}

/// Sorts paths in natural, case-insensitive order of their part below `root`.
pub fn sort_naturally(paths: &mut [PathBuf], root: &Path) {
    let key = |p: &PathBuf| {
        p.strip_prefix(root)
            .unwrap_or(p)
            .to_string_lossy()
            .to_lowercase()
    };
    paths.sort_by_cached_key(|p| NaturalKey(key(p)));
}

#[derive(PartialEq, Eq)]
struct NaturalKey(String);

impl PartialOrd for NaturalKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NaturalKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        natord::compare(&self.0, &other.0).then_with(|| self.0.cmp(&other.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_recursive_scan_skips_non_images_and_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::create_dir_all(d.join(".cache")).unwrap();
        for f in [
            "img10.jpg",
            "img2.JPG",
            "Img1.png",
            "sub/a.jpeg",
            "notes.txt",
            "Thumbs.db",
            ".cache/x.jpg",
            ".h.jpg",
        ] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        let found: Vec<String> = scan_images(d)
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(d).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(found, ["Img1.png", "img2.JPG", "img10.jpg", "sub/a.jpeg"]);
    }
}
