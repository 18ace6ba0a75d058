//! The class a new box looks like: the class of the nearest labelled box by appearance
//! ([`Descriptor`]) and pack size ([`PackSizes`]: its height at its shelf row's scale),
//! over the boxes of the images labelled so far, taken instead of the default label only
//! when it is clearly nearer than any box of the default label.
//!
//! A labeller with *Use default label* pays a class key each time the class changes; on
//! photos where the classes look different (a red can and a green bottle), the look
//! answers that key. Where look-alike SKUs sit side by side, the margin keeps the default
//! label unless the look is sure.
//!
//! A class that the folder's labels never hold twice on one photo (on at least
//! [`ONCE_MIN_IMAGES`] photos) is not given to a second box on a photo that has it: one
//! Cola and one Sprite held up per photo, a second box is the other product, however much
//! hand and sleeve it shows. On shelves, where facings repeat, it never applies.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;

use super::descriptor::{describe, thumbnail, Descriptor};
use crate::assist::shelf_row::PackSizes;
use crate::dataset::image_info::decode_upright_rgb;
use crate::dataset::LabelBox;
use crate::geometry::BoxXyxy;

/// The longest side of the pixels that boxes are described from: a thumbnail is at most
/// 96 pixels, so a larger image only costs memory (one image is kept, about 8 MB).
pub const LOOK_SIDE: u32 = 1600;

/// Another class than the default label wins only when its nearest box is nearer than
/// this fraction of the distance to the default label's nearest box. Chosen on folders
/// that are not the benchmark's (`cola-sprite/train` after its first 200 photos, three
/// dense demo shelves, a sparse demo folder): 0.8 made 108 → 22 and 73 → 6 class keys on
/// the first and the last, and left the dense shelves' 128 about unchanged (129); at 1.0
/// the dense shelves paid 138, at 0.6 `cola-sprite` paid 44 (BENCHMARKS.md).
pub const LOOK_MARGIN: f32 = 0.8;

/// The look answers only once this many boxes are indexed: a vote among a handful of
/// boxes is a coin toss (on `cola-sprite/val` the shipped model's accepted boxes were 4
/// when the first box was drawn by hand, and the look chose wrong); on the folders
/// above, waiting for 20 boxes cost no class key (and saved 2 on the demo folder).
pub const MIN_INDEXED: usize = 20;

/// A class is taken for one per image (and not proposed for a second box on an image
/// that has it) once this many indexed images hold it, none of them twice.
pub const ONCE_MIN_IMAGES: usize = 10;

/// One image's pixels, scaled to [`LOOK_SIDE`], to describe its boxes from.
#[derive(Debug)]
pub struct LookPixels {
    pub image: PathBuf,
    pixels: RgbImage,
    /// Scaled pixels per image pixel (at most 1).
    scale: f64,
}

impl LookPixels {
    /// Decodes `image` (upright) and scales it down to [`LOOK_SIDE`].
    pub fn decode(image: &Path) -> Result<Self, String> {
        let full = decode_upright_rgb(image).map_err(|e| e.to_string())?;
        Ok(Self::from_pixels(image.to_path_buf(), &full))
    }

    /// `full`, the image's pixels at full resolution, scaled down to [`LOOK_SIDE`].
    pub fn from_pixels(image: PathBuf, full: &RgbImage) -> Self {
        let longest = full.width().max(full.height()).max(1);
        if longest <= LOOK_SIDE {
            return Self {
                image,
                pixels: full.clone(),
                scale: 1.0,
            };
        }
        let scale = LOOK_SIDE as f64 / longest as f64;
        let w = ((full.width() as f64 * scale).round() as u32).max(1);
        let h = ((full.height() as f64 * scale).round() as u32).max(1);
        let pixels = image::imageops::resize(full, w, h, image::imageops::FilterType::Triangle);
        Self {
            image,
            pixels,
            scale,
        }
    }

    /// The descriptor of `bbox` (image pixels) at the typical size; `None` when it lies
    /// outside the image.
    fn describe(&self, bbox: &BoxXyxy) -> Option<Descriptor> {
        let s = self.scale;
        let scaled = BoxXyxy::new(bbox.x1 * s, bbox.y1 * s, bbox.x2 * s, bbox.y2 * s);
        thumbnail(&self.pixels, &scaled).map(|t| describe(&t))
    }
}

/// A labelled box as the index keeps it.
#[derive(Clone, Debug)]
struct Entry {
    bbox: BoxXyxy,
    class_name: String,
    descriptor: Descriptor,
}

/// The labelled boxes of the images described so far, by image (each image's shared, so
/// that a copy for a background job costs one count per image), and the pack sizes
/// fitted to them.
#[derive(Clone, Debug, Default)]
pub struct LookIndex {
    by_image: HashMap<PathBuf, Arc<Vec<Entry>>>,
    sizes: Arc<Sizes>,
    /// The boxes changed since `sizes` was fitted (refitted at the next [`Self::sync`]).
    stale: bool,
}

/// The pack sizes fitted to the index's boxes ([`PackSizes`]), and each box's size at
/// the common scale, from the other boxes of its photo (by image, in the index's order).
#[derive(Debug, Default)]
struct Sizes {
    model: PackSizes,
    of_boxes: HashMap<PathBuf, Vec<Option<f64>>>,
}

impl Sizes {
    /// Fits the pack sizes to `by_image` (photos in path order: the fit's sums, and so
    /// its answers, do not depend on a hash map's order).
    fn fit(by_image: &HashMap<PathBuf, Arc<Vec<Entry>>>) -> Self {
        let mut images: Vec<(&PathBuf, &Arc<Vec<Entry>>)> = by_image.iter().collect();
        images.sort_by(|a, b| a.0.cmp(b.0));
        let photos: Vec<Vec<(BoxXyxy, &str)>> = images
            .iter()
            .map(|(_, v)| v.iter().map(|e| (e.bbox, e.class_name.as_str())).collect())
            .collect();
        let (model, sizes) = PackSizes::fit_and_size(&photos);
        let of_boxes = images
            .iter()
            .map(|(path, _)| (*path).clone())
            .zip(sizes)
            .collect();
        Self { model, of_boxes }
    }
}

impl LookIndex {
    /// How many boxes are indexed.
    pub fn len(&self) -> usize {
        self.by_image.values().map(|v| v.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes `boxes` the indexed labels of `pixels`' image, describing only the boxes
    /// not described yet (cheap when nothing changed: one comparison per box), and fits
    /// the pack sizes again when the index changed since the last fit.
    pub fn sync(&mut self, pixels: &LookPixels, boxes: &[LabelBox]) {
        let old = self.by_image.get(&pixels.image);
        let same = old.is_some_and(|old| {
            old.len() == boxes.len()
                && old
                    .iter()
                    .zip(boxes)
                    .all(|(e, b)| e.bbox == b.bbox && e.class_name == b.class_name)
        });
        if !(same || (old.is_none() && boxes.is_empty())) {
            self.replace(pixels, boxes);
        }
        if self.stale {
            self.sizes = Arc::new(Sizes::fit(&self.by_image));
            self.stale = false;
        }
    }

    /// Describes `boxes` as `pixels`' image's indexed labels.
    fn replace(&mut self, pixels: &LookPixels, boxes: &[LabelBox]) {
        let old = self.by_image.get(&pixels.image);
        let reuse: HashMap<[u64; 4], Descriptor> = old
            .into_iter()
            .flat_map(|v| v.iter())
            .map(|e| (key(&e.bbox), e.descriptor.clone()))
            .collect();
        let looks = ImageLooks::describe(pixels, boxes, reuse);
        self.by_image
            .insert(pixels.image.clone(), Arc::new(looks.0));
        self.stale = true;
    }

    /// Gives the indexed box of `image` at exactly `bbox` the class `class` (a relabel
    /// made elsewhere than on the shown image, such as in the crop gallery).
    pub fn relabel(&mut self, image: &Path, bbox: &BoxXyxy, class: &str) {
        let entries = self
            .by_image
            .get_mut(image)
            .into_iter()
            .flat_map(|v| Arc::make_mut(v).iter_mut());
        for e in entries.filter(|e| e.bbox == *bbox) {
            e.class_name = class.to_string();
            self.stale = true;
        }
    }

    /// Adds the boxes of an image described elsewhere (read from its label file when the
    /// folder opened), unless the image is indexed already (its labels as shown win).
    pub fn insert_if_absent(&mut self, image: PathBuf, looks: ImageLooks) {
        if let std::collections::hash_map::Entry::Vacant(v) = self.by_image.entry(image) {
            v.insert(Arc::new(looks.0));
            self.stale = true;
        }
    }

    /// The class `bbox` on `pixels`' image looks like, given the default label: the
    /// nearest indexed box's class when it is the default label's or clearly nearer
    /// ([`LOOK_MARGIN`]), leaving out the classes that come once per photo and are on
    /// this one already; `None` with fewer than [`MIN_INDEXED`] boxes indexed or a box
    /// outside the image.
    ///
    /// Besides the look, boxes are compared by their pack sizes ([`PackSizes`], as of the
    /// last [`Self::sync`]) where the photo's labels give `bbox` a scale: the small and
    /// the large pack of a product look alike.
    pub fn class_for(
        &self,
        pixels: &LookPixels,
        bbox: &BoxXyxy,
        default: Option<&str>,
    ) -> Option<String> {
        if self.len() < MIN_INDEXED {
            return None;
        }
        let descriptor = pixels.describe(bbox)?;
        let same_image = self.by_image.get(&pixels.image);
        let fitted = (!self.stale).then_some(&*self.sizes);
        let size = fitted.zip(same_image).and_then(|(fitted, v)| {
            let labels = v.iter().map(|e| (&e.bbox, e.class_name.as_str()));
            fitted.model.log_size(labels, bbox)
        });
        let mut nearest: HashMap<&str, f32> = HashMap::new();
        for (image, entries) in &self.by_image {
            let sizes = fitted.and_then(|f| f.of_boxes.get(image));
            for (k, e) in entries.iter().enumerate() {
                let own = sizes.and_then(|s| s.get(k).copied().flatten());
                let gap = size.zip(own).map(|(a, b)| a - b);
                let d = e.descriptor.distance_at_sizes(&descriptor, gap);
                let best = nearest
                    .entry(e.class_name.as_str())
                    .or_insert(f32::INFINITY);
                *best = best.min(d);
            }
        }
        let here: HashSet<&str> = same_image
            .into_iter()
            .flat_map(|v| v.iter())
            .map(|e| e.class_name.as_str())
            .collect();
        let ruled_out = self.once_per_image(&here);
        nearest.retain(|class, _| !ruled_out.contains(class));
        let default = default.filter(|c| !ruled_out.contains(c));
        choose(&nearest, default).map(str::to_string)
    }

    /// Those of `classes` never labelled twice on one image, among those on at least
    /// [`ONCE_MIN_IMAGES`] indexed images (nothing to count for none).
    fn once_per_image<'a>(&'a self, classes: &HashSet<&'a str>) -> HashSet<&'a str> {
        if classes.is_empty() {
            return HashSet::new();
        }
        let mut images: HashMap<&str, (usize, bool)> = HashMap::new();
        for entries in self.by_image.values() {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for e in entries
                .iter()
                .filter(|e| classes.contains(e.class_name.as_str()))
            {
                *counts.entry(e.class_name.as_str()).or_default() += 1;
            }
            for (class, n) in counts {
                let seen = images.entry(class).or_default();
                seen.0 += 1;
                seen.1 |= n > 1;
            }
        }
        images
            .into_iter()
            .filter(|(_, (n, twice))| *n >= ONCE_MIN_IMAGES && !twice)
            .map(|(class, _)| class)
            .collect()
    }
}

/// One image's labelled boxes, described.
pub struct ImageLooks(Vec<Entry>);

impl ImageLooks {
    /// Describes `boxes` on `pixels`.
    pub fn of(pixels: &LookPixels, boxes: &[LabelBox]) -> Self {
        Self::describe(pixels, boxes, HashMap::new())
    }

    /// Describes `boxes` on `pixels`, taking the descriptors in `reuse` (by exact
    /// corners) instead of describing those boxes again.
    fn describe(
        pixels: &LookPixels,
        boxes: &[LabelBox],
        mut reuse: HashMap<[u64; 4], Descriptor>,
    ) -> Self {
        let entries = boxes
            .iter()
            .filter_map(|b| {
                let descriptor = reuse
                    .remove(&key(&b.bbox))
                    .or_else(|| pixels.describe(&b.bbox))?;
                Some(Entry {
                    bbox: b.bbox,
                    class_name: b.class_name.clone(),
                    descriptor,
                })
            })
            .collect();
        Self(entries)
    }
}

/// The class to take from each class's nearest distance (see [`LookIndex::class_for`]).
fn choose<'a>(nearest: &HashMap<&'a str, f32>, default: Option<&'a str>) -> Option<&'a str> {
    let (&best, &d_best) = nearest
        .iter()
        .min_by(|a, b| a.1.total_cmp(b.1).then(a.0.cmp(b.0)))?;
    match default.and_then(|c| nearest.get(c).map(|&d| (c, d))) {
        Some((c, d_default)) if d_best >= LOOK_MARGIN * d_default => Some(c),
        _ => Some(best),
    }
}

/// The exact corners, as a hash key.
fn key(b: &BoxXyxy) -> [u64; 4] {
    [
        b.x1.to_bits(),
        b.y1.to_bits(),
        b.x2.to_bits(),
        b.y2.to_bits(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten red blocks in a row over ten green ones, each 40×30 pixels.
    fn blocks() -> LookPixels {
        let px = RgbImage::from_fn(500, 100, |x, y| match (x % 48 < 40, y) {
            (true, 10..40) => image::Rgb([220, 30, 30]),
            (true, 60..90) => image::Rgb([30, 200, 40]),
            _ => image::Rgb([240, 240, 240]),
        });
        LookPixels::from_pixels(PathBuf::from("a.jpg"), &px)
    }

    /// Block `k` of the red (`row` 0) or green (1) row.
    fn block(k: usize, row: usize) -> BoxXyxy {
        let (x, y) = (48.0 * k as f64, 10.0 + 50.0 * row as f64);
        BoxXyxy::new(x, y, x + 40.0, y + 30.0)
    }

    fn labels(red: &str, green: &str, n: usize) -> Vec<LabelBox> {
        (0..n)
            .flat_map(|k| {
                [
                    LabelBox::new(red.to_string(), block(k, 0)),
                    LabelBox::new(green.to_string(), block(k, 1)),
                ]
            })
            .collect()
    }

    #[test]
    fn a_box_takes_the_class_it_looks_like_not_the_default() {
        let px = blocks();
        let mut index = LookIndex::default();
        index.sync(&px, &labels("red", "green", 9));
        assert_eq!(index.len(), 18);
        let green = block(9, 1);
        assert_eq!(
            index.class_for(&px, &green, Some("red")),
            None,
            "too few boxes"
        );
        index.sync(&px, &labels("red", "green", 10));
        assert_eq!(index.len(), MIN_INDEXED);
        assert_eq!(
            index.class_for(&px, &green, Some("red")).as_deref(),
            Some("green")
        );
        assert_eq!(
            index.class_for(&px, &block(9, 0), Some("green")).as_deref(),
            Some("red")
        );
        // A relabel is seen at the next sync, or when made elsewhere (the gallery).
        index.sync(&px, &labels("red", "lime", 10));
        assert_eq!(index.class_for(&px, &green, None).as_deref(), Some("lime"));
        for k in 0..10 {
            index.relabel(Path::new("a.jpg"), &block(k, 1), "olive");
        }
        assert_eq!(index.class_for(&px, &green, None).as_deref(), Some("olive"));
    }

    #[test]
    fn a_class_never_seen_twice_on_a_photo_is_not_given_to_a_second_box_there() {
        let image = |name: &str| LookPixels::from_pixels(PathBuf::from(name), &blocks().pixels);
        let one_cola_two_sprites = vec![
            LabelBox::new("cola".to_string(), block(0, 0)),
            LabelBox::new("sprite".to_string(), block(0, 1)),
            LabelBox::new("sprite".to_string(), block(1, 1)),
        ];
        let mut index = LookIndex::default();
        for i in 0..ONCE_MIN_IMAGES - 2 {
            index.sync(&image(&format!("{i}.jpg")), &one_cola_two_sprites);
        }
        let query = image("query.jpg");
        index.sync(&query, &one_cola_two_sprites[..1]);
        let red = block(1, 0);
        // Too few photos hold cola (this one too) to know it comes once: the look says
        // what it sees.
        assert_eq!(
            index.class_for(&query, &red, Some("cola")).as_deref(),
            Some("cola")
        );
        let last = image("last.jpg");
        index.sync(&last, &one_cola_two_sprites);
        assert_eq!(
            index.class_for(&query, &red, Some("cola")).as_deref(),
            Some("sprite"),
            "cola is on this photo already, and no photo has two"
        );
        // Sprite comes twice on a photo: a second sprite box stays sprite.
        index.sync(&query, &one_cola_two_sprites[..2]);
        let green = block(2, 1);
        assert_eq!(
            index.class_for(&query, &green, Some("sprite")).as_deref(),
            Some("sprite")
        );
        // One photo with two colas, and cola may come twice.
        let mut two_colas = one_cola_two_sprites.clone();
        two_colas.push(LabelBox::new("cola".to_string(), block(2, 0)));
        index.sync(&last, &two_colas);
        assert_eq!(
            index.class_for(&query, &red, Some("cola")).as_deref(),
            Some("cola")
        );
    }

    /// A pack of `size` (of its row's height of 100 pixels at scale 1) standing on row
    /// `row` (floor at 100 or 290) at `x`, seen at `scale`: as wide as half its height.
    fn pack(row: usize, scale: f64, x: f64, size: f64) -> BoxXyxy {
        let floor = [100.0, 290.0][row];
        let h = 100.0 * size * scale;
        BoxXyxy::new(x, floor - h, x + 0.5 * h, floor)
    }

    /// `packs` painted on a grey wall: red ones for classes starting with "red".
    fn shelf(name: &str, packs: &[LabelBox]) -> LookPixels {
        let px = RgbImage::from_fn(900, 300, |x, y| {
            let (x, y) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            let on = packs
                .iter()
                .find(|p| p.bbox.x1 <= x && x < p.bbox.x2 && p.bbox.y1 <= y && y < p.bbox.y2);
            match on {
                Some(p) if p.class_name.starts_with("red") => image::Rgb([200, 30, 30]),
                Some(_) => image::Rgb([30, 170, 60]),
                None => image::Rgb([90, 90, 90]),
            }
        });
        LookPixels::from_pixels(PathBuf::from(name), &px)
    }

    /// A red pack in two sizes (70 % and 92 % of a row's height, alike in all else) and
    /// a green one. On the photo asked about, the lower row is seen 1.4 times as large as
    /// the upper one: its small red pack is taller than any small one labelled before,
    /// and as tall against the photo's labels as a large one. The green pack beside it
    /// gives its row's scale, and so its size.
    #[test]
    fn a_packs_size_is_read_against_its_rows_scale() {
        let mut labelled = Vec::new();
        for row in 0..2 {
            let mut x = 5.0;
            for (class, size) in [("red-S", 0.7), ("red-L", 0.92), ("green", 0.8)] {
                for _ in 0..4 {
                    let b = pack(row, 1.0, x, size);
                    x = b.x2 + 4.0;
                    labelled.push(LabelBox::new(class.to_string(), b));
                }
            }
        }
        let mut index = LookIndex::default();
        index.sync(&shelf("1.jpg", &labelled), &labelled);
        let labels = vec![
            LabelBox::new("red-S".to_string(), pack(0, 1.0, 5.0, 0.7)),
            LabelBox::new("green".to_string(), pack(0, 1.0, 60.0, 0.8)),
            LabelBox::new("green".to_string(), pack(1, 1.4, 5.0, 0.8)),
        ];
        let small = LabelBox::new("red-S".to_string(), pack(1, 1.4, 200.0, 0.7));
        let large = LabelBox::new("red-L".to_string(), pack(1, 1.4, 400.0, 0.92));
        let mut painted = labels.clone();
        painted.extend([small.clone(), large.clone()]);
        let photo = shelf("2.jpg", &painted);
        index.sync(&photo, &labels);
        assert_eq!(
            index
                .class_for(&photo, &small.bbox, Some("red-L"))
                .as_deref(),
            Some("red-S")
        );
        assert_eq!(
            index
                .class_for(&photo, &large.bbox, Some("red-S"))
                .as_deref(),
            Some("red-L")
        );
        // A relabel elsewhere is in the sizes after the next sync.
        for b in labelled.iter().filter(|b| b.class_name == "red-L") {
            index.relabel(Path::new("1.jpg"), &b.bbox, "red-XL");
        }
        index.sync(&photo, &labels);
        assert_eq!(
            index
                .class_for(&photo, &large.bbox, Some("red-S"))
                .as_deref(),
            Some("red-XL")
        );
    }

    #[test]
    fn the_default_label_stays_unless_another_class_is_clearly_nearer() {
        let nearest = HashMap::from([("cola", 1.0f32), ("sprite", 0.85)]);
        assert_eq!(choose(&nearest, Some("cola")), Some("cola"));
        let nearest = HashMap::from([("cola", 1.0f32), ("sprite", 0.5)]);
        assert_eq!(choose(&nearest, Some("cola")), Some("sprite"));
        // A default label with no box yet, or none at all: the nearest class.
        assert_eq!(choose(&nearest, Some("fanta")), Some("sprite"));
        assert_eq!(choose(&nearest, None), Some("sprite"));
        assert_eq!(choose(&HashMap::new(), Some("cola")), None);
    }

    #[test]
    fn large_images_are_described_at_the_look_side() {
        let px = LookPixels::from_pixels(PathBuf::from("big.jpg"), &RgbImage::new(3200, 800));
        assert_eq!((px.pixels.width(), px.pixels.height()), (1600, 400));
        assert!(px
            .describe(&BoxXyxy::new(100.0, 100.0, 300.0, 500.0))
            .is_some());
        assert!(px
            .describe(&BoxXyxy::new(4000.0, 0.0, 4100.0, 10.0))
            .is_none());
    }
}
