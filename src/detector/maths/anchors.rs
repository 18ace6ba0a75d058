//! EfficientDet anchor boxes, in the reference's `(y1, x1, y2, x2)` order.
//!
//! For every pyramid level `l` (3..=7, or 3..=8 for D7x) the feature map has
//! `f_l = (f_{l-1} − 1) / 2 + 1` rows and columns (integer division, starting from the input
//! size: this is exactly the size that TF-"SAME" stride-2 convolutions and pools produce), and
//! the level's stride is `input / f_l` per axis. For inputs divisible by `2^max_level` the
//! stride is exactly `2^l`, as in the reference port; for other sizes (EfficientDet-Lite0 at
//! 320, where P7 is 3×3) this is the official automl generalisation, so anchors always line
//! up with the feature map.
//!
//! At every position, anchors are enumerated scale-major, ratio-minor:
//! `for scale in scales { for ratio in ratios { … } }` (like `itertools.product`), so the
//! anchor index is `level_offset + (y·W + x)·A + scale_idx·R + ratio_idx`, matching the
//! channel layout of the box and class heads (`a·4 + k`, `a·C + c`). The maths is done in
//! `f64` and stored as `f32`, like the reference (NumPy float64, cast to float32).

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// An anchor box in input-image pixels, in the reference's `(y1, x1, y2, x2)` order.
///
/// A distinct type from the `x1,y1,x2,y2` boxes used everywhere else
/// (`crate::geometry::BoxXyxy`), so the two orders cannot be mixed up silently.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[repr(C)]
pub struct AnchorYxyx {
    pub y1: f32,
    pub x1: f32,
    pub y2: f32,
    pub x2: f32,
}

impl AnchorYxyx {
    /// The four numbers in storage order `[y1, x1, y2, x2]`.
    pub fn to_array(self) -> [f32; 4] {
        [self.y1, self.x1, self.y2, self.x2]
    }

    /// Centre as `(cy, cx)`.
    pub fn center_yx(&self) -> (f32, f32) {
        ((self.y1 + self.y2) / 2.0, (self.x1 + self.x2) / 2.0)
    }

    pub fn height(&self) -> f32 {
        self.y2 - self.y1
    }

    pub fn width(&self) -> f32 {
        self.x2 - self.x1
    }
}

/// How anchors are laid out: pyramid levels, the base size multiplier, and the
/// per-position scales and aspect ratios (spec §1.5). A model file stores it as its
/// `detlab.anchors` metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnchorConfig {
    /// Base anchor side = `anchor_scale · stride · scale` (4.0; 5.0 for D7; 3.0 for Lite).
    pub anchor_scale: f64,
    /// Octave scales (default `2^0, 2^(1/3), 2^(2/3)`).
    pub scales: Vec<f64>,
    /// Aspect ratios as `(x multiplier, y multiplier)` (default `(1,1), (1.4,0.7), (0.7,1.4)`).
    pub ratios: Vec<(f64, f64)>,
    /// First pyramid level (3: stride 8).
    pub min_level: u32,
    /// Last pyramid level, inclusive (7; 8 for D7x).
    pub max_level: u32,
}

impl Default for AnchorConfig {
    /// EfficientDet-D0's anchors: P3–P7, anchor scale 4.
    fn default() -> Self {
        Self::reference(4.0, 7)
    }
}

impl AnchorConfig {
    /// The reference port's default scales and ratios with the given anchor scale and last
    /// level (levels start at P3).
    pub fn reference(anchor_scale: f64, max_level: u32) -> Self {
        Self {
            min_level: 3,
            max_level,
            anchor_scale,
            scales: vec![1.0, 2f64.powf(1.0 / 3.0), 2f64.powf(2.0 / 3.0)],
            ratios: vec![(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)],
        }
    }

    /// Anchors per feature-map position (`scales × ratios`, 9 by default).
    pub fn anchors_per_location(&self) -> usize {
        self.scales.len() * self.ratios.len()
    }

    /// Number of pyramid levels.
    pub fn num_levels(&self) -> usize {
        (self.max_level + 1).saturating_sub(self.min_level) as usize
    }

    fn validate(&self) -> Result<(), AnchorError> {
        if self.min_level > self.max_level || self.max_level > 16 {
            return Err(AnchorError::Levels {
                min: self.min_level,
                max: self.max_level,
            });
        }
        if self.scales.is_empty() || self.ratios.is_empty() {
            return Err(AnchorError::Empty);
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.anchor_scale)
            || !self.scales.iter().all(|&s| positive(s))
            || !self.ratios.iter().all(|&(x, y)| positive(x) && positive(y))
        {
            return Err(AnchorError::NonPositive);
        }
        Ok(())
    }
}

/// Why anchors could not be generated.
#[derive(Debug, Error, PartialEq)]
pub enum AnchorError {
    #[error("input size {height}x{width} is empty")]
    EmptyInput { height: usize, width: usize },
    #[error("invalid pyramid levels {min}..={max}")]
    Levels { min: u32, max: u32 },
    #[error("anchor scales and ratios must not be empty")]
    Empty,
    #[error("anchor scale, scales and ratios must be positive and finite")]
    NonPositive,
}

/// Size of a feature map `level` stride-2 steps below an input side of `input` pixels:
/// `(f − 1) / 2 + 1` applied `level` times (= ⌈f / 2⌉, what a TF-"SAME" stride-2 conv gives).
pub fn feature_size(input: usize, level: u32) -> usize {
    (0..level).fold(input, |f, _| if f == 0 { 0 } else { (f - 1) / 2 + 1 })
}

/// Where one pyramid level's anchors sit in the flat anchor list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelLayout {
    /// Pyramid level (3 = stride 8).
    pub level: u32,
    /// Feature-map rows.
    pub height: usize,
    /// Feature-map columns.
    pub width: usize,
    /// Index of the level's first anchor.
    pub offset: usize,
    /// `height · width · anchors_per_location`.
    pub count: usize,
}

/// All anchors of one input size, level-major (P3 first), then row-major position, then the
/// `scales × ratios` anchor types.
#[derive(Clone, Debug, PartialEq)]
pub struct Anchors {
    pub boxes: Vec<AnchorYxyx>,
    pub levels: Vec<LevelLayout>,
}

impl Anchors {
    pub fn len(&self) -> usize {
        self.boxes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.boxes.is_empty()
    }

    /// The anchors as a flat `[y1, x1, y2, x2, y1, …]` array (`N·4` values), e.g. to build a
    /// `[1, N, 4]` tensor like the reference's `anchors` output.
    pub fn to_flat(&self) -> Vec<f32> {
        self.boxes.iter().flat_map(|a| a.to_array()).collect()
    }
}

/// Feature-map sizes `(height, width)` per level for an input of `height × width` pixels.
pub fn level_layouts(
    cfg: &AnchorConfig,
    height: usize,
    width: usize,
) -> Result<Vec<LevelLayout>, AnchorError> {
    cfg.validate()?;
    if height == 0 || width == 0 {
        return Err(AnchorError::EmptyInput { height, width });
    }
    let per_location = cfg.anchors_per_location();
    let mut offset = 0;
    Ok((cfg.min_level..=cfg.max_level)
        .map(|level| {
            let (h, w) = (feature_size(height, level), feature_size(width, level));
            let count = h * w * per_location;
            let layout = LevelLayout {
                level,
                height: h,
                width: w,
                offset,
                count,
            };
            offset += count;
            layout
        })
        .collect())
}

/// Number of anchors for an input of `height × width` pixels (49,104 for D0 at 512).
pub fn anchor_count(cfg: &AnchorConfig, height: usize, width: usize) -> Result<usize, AnchorError> {
    Ok(level_layouts(cfg, height, width)?
        .iter()
        .map(|l| l.count)
        .sum())
}

/// Generates the anchors for an input of `height × width` pixels (the padded network input,
/// not the original image). Anchors are not clipped to the image, like the reference.
pub fn generate_anchors(
    cfg: &AnchorConfig,
    height: usize,
    width: usize,
) -> Result<Anchors, AnchorError> {
    let levels = level_layouts(cfg, height, width)?;
    let total = levels.iter().map(|l| l.count).sum();
    let mut boxes = Vec::with_capacity(total);
    for layout in &levels {
        // Stride per axis: input / feature size (exactly 2^level when the input is divisible).
        let stride_y = height as f64 / layout.height as f64;
        let stride_x = width as f64 / layout.width as f64;
        // Half sizes per anchor type, in scale-major, ratio-minor order.
        let halves: Vec<(f64, f64)> = cfg
            .scales
            .iter()
            .flat_map(|&scale| {
                cfg.ratios.iter().map(move |&(rx, ry)| {
                    let base_x = cfg.anchor_scale * stride_x * scale;
                    let base_y = cfg.anchor_scale * stride_y * scale;
                    (base_y * ry / 2.0, base_x * rx / 2.0)
                })
            })
            .collect();
        for iy in 0..layout.height {
            let cy = stride_y / 2.0 + iy as f64 * stride_y;
            for ix in 0..layout.width {
                let cx = stride_x / 2.0 + ix as f64 * stride_x;
                boxes.extend(halves.iter().map(|&(hh, hw)| AnchorYxyx {
                    y1: (cy - hh) as f32,
                    x1: (cx - hw) as f32,
                    y2: (cy + hh) as f32,
                    x2: (cx + hw) as f32,
                }));
            }
        }
    }
    Ok(Anchors { boxes, levels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d0_at_512_matches_reference_counts_and_corners() {
        let a = generate_anchors(&AnchorConfig::default(), 512, 512).unwrap();
        assert_eq!(a.len(), 49_104);
        assert_eq!(a.boxes[0].to_array(), [-12.0, -12.0, 20.0, 20.0]);
        let b = a.boxes[1].to_array();
        let want = [-7.2f32, -18.4, 15.2, 26.4];
        for (x, y) in b.iter().zip(want) {
            assert!((x - y).abs() < 1e-5, "{b:?}");
        }
        let last = a.boxes.last().unwrap().to_array();
        let want = [-120.9f32, 163.5, 1016.9, 732.5];
        for (x, y) in last.iter().zip(want) {
            assert!((x - y).abs() < 0.1, "{last:?}");
        }
    }

    #[test]
    fn reference_counts_for_all_sizes() {
        let cases = [
            (640, 7, 76_725),
            (768, 7, 110_484),
            (896, 7, 150_381),
            (1024, 7, 196_416),
            (1280, 7, 306_900),
            (1536, 7, 441_936),
            (1536, 8, 442_260),
        ];
        for (size, max_level, want) in cases {
            let cfg = AnchorConfig::reference(4.0, max_level);
            assert_eq!(anchor_count(&cfg, size, size).unwrap(), want, "{size}");
        }
    }

    #[test]
    fn lite0_at_320_uses_feature_strides() {
        let cfg = AnchorConfig::reference(3.0, 7);
        let a = generate_anchors(&cfg, 320, 320).unwrap();
        assert_eq!(a.len(), 19_206);
        let sizes: Vec<_> = a.levels.iter().map(|l| l.height).collect();
        assert_eq!(sizes, [40, 20, 10, 5, 3]);
        // P7 centres at 53.3, 160, 266.7.
        let p7 = a.levels[4];
        let c = a.boxes[p7.offset + p7.count - 1].center_yx();
        assert!((c.0 - 266.666_66).abs() < 1e-3 && (c.1 - 266.666_66).abs() < 1e-3);
    }

    #[test]
    fn rectangular_inputs_and_errors() {
        let cfg = AnchorConfig::default();
        let a = generate_anchors(&cfg, 384, 512).unwrap();
        assert_eq!(a.levels[0].height, 48);
        assert_eq!(a.levels[0].width, 64);
        assert!(generate_anchors(&cfg, 0, 512).is_err());
        let bad = AnchorConfig {
            scales: vec![],
            ..cfg
        };
        assert_eq!(
            generate_anchors(&bad, 64, 64).unwrap_err(),
            AnchorError::Empty
        );
    }
}
