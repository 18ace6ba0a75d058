//! Tiled detection geometry: cutting a large photo into overlapping tiles at native
//! resolution, and merging the tiles' candidates back into one image.
//!
//! A 4000-pixel shelf photo letterboxed whole into a 384-pixel input shrinks a 60-pixel can
//! to 6 pixels, below what any EfficientDet level finds. Tiles of the network's own size
//! keep the can at 60 pixels. Seams are handled by one rule, so that an object cut by a
//! seam is reported once with its whole box:
//!
//! * a tile's candidate that touches one of the tile's **inner** edges (an edge that is not
//!   the photo's border), within [`seam_margin`], is dropped: it may be a cut object, and
//!   an object no larger than the overlap lies whole in a neighbouring tile;
//! * the optional whole-image pass contributes only boxes that no tile holds whole (away
//!   from its inner edges): objects too large for the tiles, or cut in every tile. What a
//!   tile could see whole, it saw at a higher resolution than the whole-photo pass. A
//!   whole-photo box that mostly covers a higher-scoring tile box of its class
//!   (intersection over the smaller box ≥ [`WHOLE_PASS_COVER`]) is the coarse pass's
//!   loose view of that object and is dropped too;
//! * the merged candidates then go through the usual NMS (or Soft-NMS), which removes the
//!   duplicates of objects seen whole by two tiles.

use super::box_coding::XyxyF32;
use super::letterbox::Letterbox;
use super::postprocess::{Candidates, ShapeError};
use crate::geometry::BoxXyxy;

/// The default overlap between neighbouring tiles, as a fraction of the tile size: objects
/// up to a quarter of a tile are always whole in some tile.
pub const DEFAULT_TILE_OVERLAP: f32 = 0.25;

/// A photo is tiled automatically when its longer side is more than this many tile sizes.
pub const AUTO_TILE_FACTOR: u32 = 2;

/// A whole-photo candidate is dropped when its intersection with a higher-scoring tile
/// candidate of the same class covers this fraction of the smaller of the two boxes.
pub const WHOLE_PASS_COVER: f64 = 0.7;

/// Tiles of `size × size` original pixels overlapping by `overlap · size`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TileParams {
    /// Tile side in original-image pixels (each tile is letterboxed to the network input,
    /// so a tile of the input size runs at native resolution).
    pub size: u32,
    /// Overlap of neighbouring tiles as a fraction of `size`, in `[0, 0.9]`.
    pub overlap: f32,
    /// Also run the whole photo once, for objects larger than the overlap.
    pub whole_image: bool,
}

impl TileParams {
    /// Tiles of `size` with the default overlap and the whole-image pass.
    pub fn new(size: u32) -> Self {
        Self {
            size,
            overlap: DEFAULT_TILE_OVERLAP,
            whole_image: true,
        }
    }

    /// The overlap in pixels.
    pub fn overlap_px(&self) -> f64 {
        f64::from(self.size) * f64::from(self.overlap.clamp(0.0, 0.9))
    }
}

/// How photos are cut into tiles for detection.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Tiling {
    /// Always the whole photo, letterboxed into the network input.
    Off,
    /// Tiles of the size the model was trained on (its `train_tile`) when the photo's
    /// longer side is more than [`AUTO_TILE_FACTOR`] tiles; a model trained on whole
    /// photos sees whole photos.
    #[default]
    Auto,
    /// These tiles whenever one tile does not cover the photo.
    Tiles(TileParams),
}

impl Tiling {
    /// The tiles to use on a `width × height` photo for a model trained on tiles of
    /// `train_tile` pixels (`None`: on whole photos); `None` for one whole-photo pass.
    pub fn plan(&self, width: u32, height: u32, train_tile: Option<u32>) -> Option<TileParams> {
        let long = width.max(height);
        match *self {
            Tiling::Off => None,
            Tiling::Tiles(p) => (p.size >= 8 && long > p.size).then_some(p),
            Tiling::Auto => train_tile
                .filter(|&t| t >= 8 && long > AUTO_TILE_FACTOR * t)
                .map(TileParams::new),
        }
    }

    /// A short description for logs and the UI.
    pub fn describe(&self) -> String {
        match self {
            Tiling::Off => "off".into(),
            Tiling::Auto => "auto".into(),
            Tiling::Tiles(p) => format!(
                "{} px, overlap {:.0} %{}",
                p.size,
                p.overlap * 100.0,
                if p.whole_image {
                    ""
                } else {
                    ", no whole-image pass"
                }
            ),
        }
    }
}

/// One tile: a rectangle of the photo in original pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Tile {
    /// Whether box `b` (original pixels) lies in this tile of a `width × height` photo and
    /// keeps more than `margin` away from each of the tile's inner edges (those that are
    /// not the photo's border): the tile saw the object whole, not cut by its edge.
    pub fn holds_whole(&self, b: &BoxXyxy, width: u32, height: u32, margin: f64) -> bool {
        let (x0, y0) = (f64::from(self.x), f64::from(self.y));
        let (x1, y1) = (x0 + f64::from(self.width), y0 + f64::from(self.height));
        // Inner edges need the margin; the photo's own border half a pixel of slack.
        let low = |edge: f64, inner: bool| if inner { edge + margin } else { edge - 0.5 };
        let high = |edge: f64, inner: bool| if inner { edge - margin } else { edge + 0.5 };
        b.x1 >= low(x0, self.x > 0)
            && b.y1 >= low(y0, self.y > 0)
            && b.x2 <= high(x1, self.x + self.width < width)
            && b.y2 <= high(y1, self.y + self.height < height)
    }
}

/// Start offsets of tiles of `size` along an axis of `len` pixels: the first at 0, the last
/// ending at `len`, evenly spread so that neighbours overlap by at least `overlap_px`.
fn axis_starts(len: u32, size: u32, overlap_px: f64) -> Vec<u32> {
    if len <= size {
        return vec![0];
    }
    let span = f64::from(len - size);
    let step = (f64::from(size) - overlap_px).max(1.0);
    let n = (span / step).ceil() as u32 + 1;
    (0..n)
        .map(|i| (span * f64::from(i) / f64::from(n - 1)).round() as u32)
        .collect()
}

/// The tiles covering a `width × height` photo, row by row.
pub fn tile_grid(width: u32, height: u32, params: &TileParams) -> Vec<Tile> {
    let size = params.size.max(1);
    let overlap = params.overlap_px();
    let xs = axis_starts(width, size, overlap);
    let ys = axis_starts(height, size, overlap);
    ys.iter()
        .flat_map(|&y| {
            xs.iter().map(move |&x| Tile {
                x,
                y,
                width: size.min(width - x),
                height: size.min(height - y),
            })
        })
        .collect()
}

/// How close (in original pixels) a box edge may come to a tile's inner edge before the
/// box counts as cut: 1/64 of the tile, at least 2 pixels.
pub fn seam_margin(tile_size: u32) -> f64 {
    (f64::from(tile_size) / 64.0).max(2.0)
}

/// The candidates of one tile (in its network-input frame) and where the tile lies.
#[derive(Clone, Copy, Debug)]
pub struct TileCandidates<'a> {
    pub tile: Tile,
    /// How the tile was letterboxed into the network input.
    pub letterbox: Letterbox,
    pub candidates: &'a Candidates,
}

/// The candidates of a tiled photo in one frame, original-image pixels (so that the
/// prediction's letterbox is [`identity_letterbox`]), by descending score, at most `limit`.
pub fn merge_tiles(
    width: u32,
    height: u32,
    params: &TileParams,
    tiles: &[TileCandidates<'_>],
    whole: Option<(&Candidates, &Letterbox)>,
    limit: Option<usize>,
) -> Result<Candidates, ShapeError> {
    let margin = seam_margin(params.size);
    let mut rows: Vec<(f32, u32, u32, XyxyF32)> = Vec::new();
    for t in tiles {
        let (x0, y0) = (f64::from(t.tile.x), f64::from(t.tile.y));
        let c = t.candidates;
        for i in 0..c.len() {
            let b = t.letterbox.to_original(&c.boxes()[i].to_box());
            let b = b.translated(x0, y0);
            if t.tile.holds_whole(&b, width, height, margin) {
                rows.push((
                    c.scores()[i],
                    c.classes()[i],
                    c.anchor_indices()[i],
                    narrow(&b),
                ));
            }
        }
    }
    if let Some((c, lb)) = whole {
        let from_tiles = rows.len();
        for i in 0..c.len() {
            let b = lb.to_original(&c.boxes()[i].to_box());
            let (score, class) = (c.scores()[i], c.classes()[i]);
            let held = tiles
                .iter()
                .any(|t| t.tile.holds_whole(&b, width, height, margin));
            let covers_better = || {
                rows[..from_tiles].iter().any(|&(s, k, _, t)| {
                    let t = t.to_box();
                    k == class
                        && s > score
                        && b.intersection(&t) >= WHOLE_PASS_COVER * b.area().min(t.area())
                })
            };
            if !held && !covers_better() {
                rows.push((score, class, c.anchor_indices()[i], narrow(&b)));
            }
        }
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    if let Some(k) = limit {
        rows.truncate(k);
    }
    let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (score, class, anchor, b) in rows {
        columns.0.push(b);
        columns.1.push(score);
        columns.2.push(class);
        columns.3.push(anchor);
    }
    Candidates::from_parts(columns.0, columns.1, columns.2, columns.3)
}

fn narrow(b: &BoxXyxy) -> XyxyF32 {
    XyxyF32 {
        x1: b.x1 as f32,
        y1: b.y1 as f32,
        x2: b.x2 as f32,
        y2: b.y2 as f32,
    }
}

/// The letterbox of a photo onto itself (scale 1, no padding): the frame of merged tiled
/// candidates.
pub fn identity_letterbox(width: u32, height: u32) -> Letterbox {
    Letterbox::new(width, height, width.max(height))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(rows: &[([f32; 4], f32, u32)]) -> Candidates {
        Candidates::from_rows(rows)
    }

    #[test]
    fn the_grid_covers_the_photo_with_the_overlap() {
        let p = TileParams::new(384);
        let tiles = tile_grid(4000, 3000, &p);
        let xs: Vec<u32> = tiles.iter().filter(|t| t.y == 0).map(|t| t.x).collect();
        assert_eq!(xs.first(), Some(&0));
        assert_eq!(*xs.last().unwrap() + 384, 4000);
        for w in xs.windows(2) {
            assert!(w[0] + 384 - w[1] >= 96, "{w:?} overlap below 96 px");
        }
        assert!(tiles.iter().all(|t| t.width == 384 && t.height == 384));
        let cols = xs.len();
        assert_eq!(tiles.len() % cols, 0);
        assert_eq!(cols, 14, "ceil(3616 / 288) + 1");
        assert_eq!(tiles.len() / cols, 11, "ceil(2616 / 288) + 1");
        // A photo narrower than a tile in one axis gets one partial tile across it.
        let thin = tile_grid(300, 1000, &p);
        assert!(thin.iter().all(|t| t.x == 0 && t.width == 300));
    }

    #[test]
    fn auto_tiles_only_for_models_trained_on_tiles_and_large_photos() {
        assert_eq!(Tiling::Auto.plan(4000, 3000, None), None);
        assert_eq!(Tiling::Auto.plan(700, 500, Some(384)), None);
        assert_eq!(Tiling::Auto.plan(800, 500, Some(384)).unwrap().size, 384);
        assert_eq!(Tiling::Off.plan(4000, 3000, Some(384)), None);
        let fixed = Tiling::Tiles(TileParams::new(512));
        assert_eq!(fixed.plan(512, 300, None), None, "one tile covers it");
        assert!(fixed.plan(513, 300, None).is_some());
    }

    /// Two tiles side by side over a 600 × 300 photo (tile 384, overlap 168 px: x = 0 and
    /// 216), each letterboxed at scale 1. An object at x 300–400 crosses the first tile's
    /// right edge (384): the first tile sees it cut (300–383), the second whole.
    #[test]
    fn an_object_cut_by_a_seam_is_kept_once_with_its_whole_box() {
        let p = TileParams {
            size: 384,
            overlap: 168.0 / 384.0,
            whole_image: false,
        };
        let tiles = tile_grid(600, 300, &p);
        assert_eq!(tiles.iter().map(|t| t.x).collect::<Vec<_>>(), vec![0, 216]);
        let lb = Letterbox::new(384, 300, 384);
        let left = cands(&[
            ([300.0, 50.0, 383.0, 150.0], 0.9, 0),
            ([10.0, 10.0, 60.0, 60.0], 0.8, 1),
        ]);
        // In the second tile's frame the object spans 84–184.
        let right = cands(&[([84.0, 50.0, 184.0, 150.0], 0.7, 0)]);
        let merged = merge_tiles(
            600,
            300,
            &p,
            &[
                TileCandidates {
                    tile: tiles[0],
                    letterbox: lb,
                    candidates: &left,
                },
                TileCandidates {
                    tile: tiles[1],
                    letterbox: lb,
                    candidates: &right,
                },
            ],
            None,
            None,
        )
        .unwrap();
        assert_eq!(merged.len(), 2, "the cut box is dropped");
        assert_eq!(merged.scores(), &[0.8, 0.7]);
        let whole = merged.boxes()[1];
        assert_eq!((whole.x1, whole.x2), (300.0, 400.0));
    }

    #[test]
    fn the_whole_image_pass_adds_only_objects_no_tile_holds_whole() {
        let p = TileParams::new(384);
        let grid = tile_grid(1600, 1200, &p);
        let none = Candidates::default();
        let tiles: Vec<TileCandidates> = grid
            .iter()
            .map(|&tile| TileCandidates {
                tile,
                letterbox: Letterbox::new(tile.width, tile.height, 384),
                candidates: &none,
            })
            .collect();
        let photo = Letterbox::new(1600, 1200, 400); // scale 1/4
        let whole = cands(&[
            ([0.0, 0.0, 100.0, 100.0], 0.9, 0),   // 400 px: larger than a tile
            ([10.0, 10.0, 20.0, 20.0], 0.8, 0),   // 40 px: whole in the first tile
            ([100.0, 20.0, 150.0, 60.0], 0.7, 0), // 200 × 160 px: some tile holds it
        ]);
        let merged = merge_tiles(1600, 1200, &p, &tiles, Some((&whole, &photo)), None).unwrap();
        assert_eq!(merged.len(), 1, "only the object no tile holds whole");
        assert_eq!(merged.boxes()[0].x2, 400.0);
    }

    #[test]
    fn a_tile_holds_whole_only_boxes_clear_of_its_inner_edges() {
        let t = Tile {
            x: 0,
            y: 0,
            width: 384,
            height: 384,
        };
        let m = seam_margin(384);
        assert!(t.holds_whole(&BoxXyxy::new(0.0, 0.0, 100.0, 100.0), 1000, 1000, m));
        assert!(!t.holds_whole(&BoxXyxy::new(300.0, 0.0, 380.0, 100.0), 1000, 1000, m));
        assert!(
            t.holds_whole(&BoxXyxy::new(300.0, 0.0, 384.0, 100.0), 384, 1000, m),
            "photo border"
        );
    }

    #[test]
    fn the_identity_letterbox_maps_boxes_to_themselves() {
        let lb = identity_letterbox(4000, 3000);
        let b = BoxXyxy::new(10.5, 20.0, 3999.0, 2999.0);
        assert_eq!(lb.to_original(&b), b);
        assert_eq!(lb.to_input(&b), b);
    }
}
