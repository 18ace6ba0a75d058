//! The on-disk cache of pre-NMS candidates: one file per image, so that reopening a
//! folder (or moving the score/IoU sliders) never runs the network again.
//!
//! Layout, in a sidecar folder beside the labels (never inside the label files):
//! `<labels_dir>/.detlab/candidates/<model_id>/<image path relative to the image root>.cand`,
//! e.g. `labels/.detlab/candidates/0123456789abcdef/sub/a.jpg.cand`. The model id is a hash
//! of the model file ([`ModelId::of_file`]), so a changed model writes to another folder
//! and never sees the old entries; each entry records the image's size and modification
//! time ([`ImageStamp`]), so a changed image reads as a miss.
//!
//! File format (all integers and floats little-endian):
//!
//! | bytes  | field                                                                 |
//! | ------ | --------------------------------------------------------------------- |
//! | 8      | magic `DLCAND1\n`                                                     |
//! | 8      | image length in bytes (`u64`)                                         |
//! | 16     | image modification time, ns since the Unix epoch (`i128`)            |
//! | 5 × 4  | letterbox: source w, source h, input size, resized w, resized h (`u32`) |
//! | 8      | candidate count `n` (`u64`)                                           |
//! | n × 16 | boxes `x1, y1, x2, y2` in network-input pixels (`f32`)                |
//! | n × 4  | scores, descending (`f32`)                                            |
//! | n × 4  | classes, 0-based (`u32`)                                              |
//! | n × 4  | anchor indices (`u32`)                                                |
//!
//! The file must end exactly after the anchors. The count is checked against the file
//! length before anything is allocated, so a corrupt header cannot make a reader
//! allocate gigabytes. Files are written atomically.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::model_id::ModelId;
use crate::atomic::write_atomic;
use crate::detector::maths::box_coding::XyxyF32;
use crate::detector::maths::letterbox::Letterbox;
use crate::detector::maths::postprocess::{to_original, Candidates, Detection, SelectConfig};

/// The first eight bytes of every cache file.
pub const MAGIC: &[u8; 8] = b"DLCAND1\n";

/// Bytes of the fixed header: magic, stamp, letterbox, count.
const HEADER_LEN: usize = 8 + 8 + 16 + 5 * 4 + 8;

/// Bytes per candidate: box, score, class, anchor.
const BYTES_PER_CANDIDATE: usize = 16 + 4 + 4 + 4;

/// What an image file looked like when its candidates were computed: a different
/// length or modification time means the entry is stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ImageStamp {
    /// File length in bytes.
    pub len: u64,
    /// Modification time in nanoseconds since the Unix epoch (negative before it).
    pub modified_ns: i128,
}

impl ImageStamp {
    /// The stamp of the file at `path` (its metadata; the file is not read).
    pub fn of(path: &Path) -> io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        let modified = meta.modified()?;
        let modified_ns = match modified.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        Ok(Self {
            len: meta.len(),
            modified_ns,
        })
    }
}

/// One image's cached prediction: everything needed to re-filter without the network.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedPrediction {
    /// The image file the candidates were computed from.
    pub stamp: ImageStamp,
    /// Where the image sat in the network input.
    pub letterbox: Letterbox,
    /// Pre-NMS candidates in the network-input frame, by descending score.
    pub candidates: Candidates,
}

impl CachedPrediction {
    /// Post-processes the candidates with `cfg`; boxes in original-image pixels.
    pub fn reselect(&self, cfg: &SelectConfig) -> Vec<Detection> {
        to_original(&self.candidates.select(cfg), &self.letterbox)
    }

    /// Every candidate scoring above `threshold` (scores descend, so a prefix), with no
    /// NMS, in original-image pixels: what box fusion and click-to-box look at.
    pub fn above(&self, threshold: f32) -> Vec<Detection> {
        let c = &self.candidates;
        let n = c.count_above(threshold);
        let raw: Vec<Detection> = (0..n)
            .map(|i| {
                let b = c.boxes()[i];
                Detection {
                    bbox: crate::geometry::BoxXyxy::new(
                        b.x1 as f64,
                        b.y1 as f64,
                        b.x2 as f64,
                        b.y2 as f64,
                    ),
                    score: c.scores()[i],
                    class_id: c.classes()[i] as usize,
                }
            })
            .collect();
        to_original(&raw, &self.letterbox)
    }

    /// Width of the (EXIF-upright) original image.
    pub fn width(&self) -> u32 {
        self.letterbox.src_width
    }

    /// Height of the (EXIF-upright) original image.
    pub fn height(&self) -> u32 {
        self.letterbox.src_height
    }

    /// The file content (see the module doc for the format).
    pub fn to_bytes(&self) -> Vec<u8> {
        let c = &self.candidates;
        let mut out = Vec::with_capacity(HEADER_LEN + c.len() * BYTES_PER_CANDIDATE);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.stamp.len.to_le_bytes());
        out.extend_from_slice(&self.stamp.modified_ns.to_le_bytes());
        let lb = &self.letterbox;
        for v in [
            lb.src_width,
            lb.src_height,
            lb.size,
            lb.resized_width,
            lb.resized_height,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(c.len() as u64).to_le_bytes());
        for b in c.boxes() {
            for v in [b.x1, b.y1, b.x2, b.y2] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        for s in c.scores() {
            out.extend_from_slice(&s.to_le_bytes());
        }
        for v in c.classes().iter().chain(c.anchor_indices()) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Parses a file's content; the error says what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let (stamp, mut r) = read_header(bytes)?;
        let letterbox = read_letterbox(&mut r)?;
        let count = r.u64()?;
        let expected = usize::try_from(count)
            .ok()
            .and_then(|n| n.checked_mul(BYTES_PER_CANDIDATE))
            .filter(|&len| len == r.remaining())
            .ok_or_else(|| {
                format!(
                    "header says {count} candidates ({BYTES_PER_CANDIDATE} bytes each) but {} bytes follow",
                    r.remaining()
                )
            })?;
        let n = expected / BYTES_PER_CANDIDATE;
        let mut boxes = Vec::with_capacity(n);
        for _ in 0..n {
            boxes.push(XyxyF32 {
                x1: r.f32()?,
                y1: r.f32()?,
                x2: r.f32()?,
                y2: r.f32()?,
            });
        }
        let scores = (0..n).map(|_| r.f32()).collect::<Result<Vec<_>, _>>()?;
        let classes = (0..n).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
        let anchors = (0..n).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
        let candidates =
            Candidates::from_parts(boxes, scores, classes, anchors).map_err(|e| e.0)?;
        Ok(Self {
            stamp,
            letterbox,
            candidates,
        })
    }
}

/// Checks the magic and reads the stamp; returns a reader positioned after it.
fn read_header(bytes: &[u8]) -> Result<(ImageStamp, Reader<'_>), String> {
    let mut r = Reader(bytes);
    if r.take(MAGIC.len())? != MAGIC {
        return Err("not a detlab candidate file (bad magic)".into());
    }
    let len = r.u64()?;
    let modified_ns = i128::from_le_bytes(r.array()?);
    Ok((ImageStamp { len, modified_ns }, r))
}

fn read_letterbox(r: &mut Reader<'_>) -> Result<Letterbox, String> {
    let lb = Letterbox {
        src_width: r.u32()?,
        src_height: r.u32()?,
        size: r.u32()?,
        resized_width: r.u32()?,
        resized_height: r.u32()?,
    };
    let dims = [
        lb.src_width,
        lb.src_height,
        lb.size,
        lb.resized_width,
        lb.resized_height,
    ];
    if dims.contains(&0) {
        return Err(format!("letterbox has a zero dimension: {lb:?}"));
    }
    Ok(lb)
}

/// A little-endian cursor whose reads fail, rather than panic, past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.0.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("file is truncated".into());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn f32(&mut self) -> Result<f32, String> {
        Ok(f32::from_le_bytes(self.array()?))
    }
}

/// A cache file that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("candidate cache {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("candidate cache {} is corrupt: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("image path {} cannot be cached: it must be relative, without '..'", path.display())]
    BadImagePath { path: PathBuf },
}

/// The candidate cache of one model over one dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CandidateCache {
    dir: PathBuf,
}

impl CandidateCache {
    /// The cache of `model` beside the labels in `labels_dir`
    /// (`<labels_dir>/.detlab/candidates/<model>`). Nothing is created until a store.
    pub fn new(labels_dir: &Path, model: &ModelId) -> Self {
        Self {
            dir: labels_dir
                .join(super::SIDECAR_DIR)
                .join("candidates")
                .join(&model.0),
        }
    }

    /// The folder holding this model's entries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the entry of `image_rel` (relative to the image root) lives: the folder,
    /// then the relative path with `.cand` appended. Only the path's normal components
    /// are used (`load` and `store` reject paths with others).
    pub fn entry_path(&self, image_rel: &Path) -> PathBuf {
        let mut p = self.dir.clone();
        for c in image_rel.components() {
            if let Component::Normal(s) = c {
                p.push(s);
            }
        }
        let mut name = p.into_os_string();
        name.push(".cand");
        PathBuf::from(name)
    }

    /// Reads the entry of `image_rel`. `Ok(None)` when there is none or it was computed
    /// from another version of the image (`current` differs from its stamp).
    ///
    /// # Errors
    /// [`CacheError::Corrupt`] for a file that is not a valid cache entry and
    /// [`CacheError::Io`] for one that cannot be read, both naming the file; callers
    /// treat either as a miss and run the model again (the next store replaces it).
    pub fn load(
        &self,
        image_rel: &Path,
        current: &ImageStamp,
    ) -> Result<Option<CachedPrediction>, CacheError> {
        let path = self.checked_entry_path(image_rel)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CacheError::Io { path, source }),
        };
        let corrupt = |reason: String| CacheError::Corrupt {
            path: path.clone(),
            reason,
        };
        let (stamp, _) = read_header(&bytes).map_err(corrupt)?;
        if stamp != *current {
            return Ok(None);
        }
        CachedPrediction::from_bytes(&bytes)
            .map(Some)
            .map_err(corrupt)
    }

    /// Writes the entry of `image_rel` atomically, creating folders as needed.
    pub fn store(&self, image_rel: &Path, pred: &CachedPrediction) -> Result<(), CacheError> {
        let path = self.checked_entry_path(image_rel)?;
        let io_err = |source| CacheError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err)?;
        }
        write_atomic(&path, &pred.to_bytes()).map_err(io_err)
    }

    fn checked_entry_path(&self, image_rel: &Path) -> Result<PathBuf, CacheError> {
        let mut normal = 0;
        for c in image_rel.components() {
            match c {
                Component::Normal(_) => normal += 1,
                Component::CurDir => {}
                _ => {
                    return Err(CacheError::BadImagePath {
                        path: image_rel.to_path_buf(),
                    })
                }
            }
        }
        if normal == 0 {
            return Err(CacheError::BadImagePath {
                path: image_rel.to_path_buf(),
            });
        }
        Ok(self.entry_path(image_rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CachedPrediction {
        let b = |x1, y1, x2, y2| XyxyF32 { x1, y1, x2, y2 };
        let candidates = Candidates::from_parts(
            vec![
                b(10.0, 10.0, 100.0, 200.0),
                b(12.0, 11.0, 101.0, 198.0),
                b(300.0, 40.0, 380.0, 160.0),
                b(0.0, 0.0, 5.0, 5.0),
            ],
            vec![0.9, 0.8, 0.6, 0.01],
            vec![0, 0, 1, 1],
            vec![7, 3, 1000, 2],
        )
        .unwrap();
        CachedPrediction {
            stamp: ImageStamp {
                len: 123_456,
                modified_ns: -42_000_000_123,
            },
            letterbox: Letterbox::new(1920, 1080, 512),
            candidates,
        }
    }

    fn rel() -> &'static Path {
        Path::new("sub/a.jpg")
    }

    #[test]
    fn entry_path_is_beside_the_labels() {
        let cache = CandidateCache::new(Path::new("labels"), &ModelId("00ff".into()));
        assert_eq!(
            cache.entry_path(rel()),
            Path::new("labels/.detlab/candidates/00ff/sub/a.jpg.cand")
        );
    }

    #[test]
    fn round_trip_reselects_identically() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CandidateCache::new(dir.path(), &ModelId::of_bytes(b"model"));
        let pred = sample();
        cache.store(rel(), &pred).unwrap();
        assert!(cache.entry_path(rel()).is_file());
        let back = cache.load(rel(), &pred.stamp).unwrap().unwrap();
        assert_eq!(back, pred);
        assert_eq!((back.width(), back.height()), (1920, 1080));
        for cfg in [
            SelectConfig::default(),
            SelectConfig {
                score_threshold: 0.5,
                iou_threshold: 0.3,
                class_agnostic: true,
                nms: Default::default(),
                max_detections: None,
            },
        ] {
            let d = back.reselect(&cfg);
            assert!(!d.is_empty());
            assert_eq!(d, pred.reselect(&cfg));
        }
        // Storing again replaces the entry.
        cache.store(rel(), &pred).unwrap();
        assert_eq!(cache.load(rel(), &pred.stamp).unwrap().unwrap(), pred);
    }

    #[test]
    fn missing_and_stale_entries_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CandidateCache::new(dir.path(), &ModelId::of_bytes(b"model"));
        let pred = sample();
        assert!(cache.load(rel(), &pred.stamp).unwrap().is_none());
        cache.store(rel(), &pred).unwrap();
        let newer = ImageStamp {
            modified_ns: pred.stamp.modified_ns + 1,
            ..pred.stamp
        };
        assert!(cache.load(rel(), &newer).unwrap().is_none());
        let longer = ImageStamp {
            len: pred.stamp.len + 1,
            ..pred.stamp
        };
        assert!(cache.load(rel(), &longer).unwrap().is_none());
        // Another model's cache does not see the entry.
        let other = CandidateCache::new(dir.path(), &ModelId::of_bytes(b"model2"));
        assert!(other.load(rel(), &pred.stamp).unwrap().is_none());
    }

    #[test]
    fn image_stamp_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.jpg");
        std::fs::write(&f, b"abc").unwrap();
        let s = ImageStamp::of(&f).unwrap();
        assert_eq!(s.len, 3);
        std::fs::write(&f, b"abcd").unwrap();
        assert_ne!(ImageStamp::of(&f).unwrap(), s);
        assert!(ImageStamp::of(&dir.path().join("missing.jpg")).is_err());
    }

    fn write_entry(cache: &CandidateCache, bytes: &[u8]) {
        let path = cache.entry_path(rel());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    fn corrupt_reason(cache: &CandidateCache, stamp: &ImageStamp) -> String {
        match cache.load(rel(), stamp) {
            Err(e @ CacheError::Corrupt { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("a.jpg.cand"), "{msg}");
                msg
            }
            other => panic!("expected a corrupt-file error, got {other:?}"),
        }
    }

    #[test]
    fn truncated_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CandidateCache::new(dir.path(), &ModelId::of_bytes(b"model"));
        let pred = sample();
        let bytes = pred.to_bytes();
        for cut in [
            bytes.len() - 1,
            bytes.len() - 17,
            HEADER_LEN + 3,
            HEADER_LEN - 1,
            20,
        ] {
            write_entry(&cache, &bytes[..cut]);
            corrupt_reason(&cache, &pred.stamp);
        }
        // Trailing bytes are as wrong as missing ones.
        let mut longer = bytes.clone();
        longer.push(0);
        write_entry(&cache, &longer);
        corrupt_reason(&cache, &pred.stamp);
    }

    #[test]
    fn garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CandidateCache::new(dir.path(), &ModelId::of_bytes(b"model"));
        let stamp = sample().stamp;
        write_entry(&cache, b"");
        corrupt_reason(&cache, &stamp);
        write_entry(&cache, &[0xA5; 4096]);
        assert!(corrupt_reason(&cache, &stamp).contains("magic"));
        // Valid header but scores out of order.
        let mut pred = sample();
        let c = &pred.candidates;
        let mut scores = c.scores().to_vec();
        scores.swap(0, 2);
        let bytes = pred.to_bytes();
        let scores_at = HEADER_LEN + c.len() * 16;
        let mut bad = bytes.clone();
        for (i, s) in scores.iter().enumerate() {
            bad[scores_at + 4 * i..scores_at + 4 * i + 4].copy_from_slice(&s.to_le_bytes());
        }
        write_entry(&cache, &bad);
        assert!(corrupt_reason(&cache, &pred.stamp).contains("descending"));
        // A zero letterbox dimension would divide by zero later.
        pred.letterbox.resized_width = 0;
        write_entry(&cache, &pred.to_bytes());
        assert!(corrupt_reason(&cache, &pred.stamp).contains("letterbox"));
    }

    #[test]
    fn huge_count_is_rejected_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CandidateCache::new(dir.path(), &ModelId::of_bytes(b"model"));
        let pred = sample();
        let mut bytes = pred.to_bytes();
        for count in [u64::MAX, u64::MAX / BYTES_PER_CANDIDATE as u64, 1 << 40] {
            bytes[HEADER_LEN - 8..HEADER_LEN].copy_from_slice(&count.to_le_bytes());
            write_entry(&cache, &bytes);
            let msg = corrupt_reason(&cache, &pred.stamp);
            assert!(msg.contains(&count.to_string()), "{msg}");
        }
    }

    #[test]
    fn paths_outside_the_cache_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CandidateCache::new(dir.path(), &ModelId::of_bytes(b"model"));
        let pred = sample();
        for bad in ["../a.jpg", "/abs/a.jpg", "", "."] {
            let e = cache.store(Path::new(bad), &pred).unwrap_err();
            assert!(matches!(e, CacheError::BadImagePath { .. }), "{bad}: {e}");
            assert!(cache.load(Path::new(bad), &pred.stamp).is_err());
        }
        cache.store(Path::new("./b.jpg"), &pred).unwrap();
        assert!(cache
            .load(Path::new("b.jpg"), &pred.stamp)
            .unwrap()
            .is_some());
    }
}
