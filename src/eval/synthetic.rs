//! A seeded synthetic detection benchmark set, the shape of the one in the reference
//! (§1.4): 640×480 images, log-uniform box sizes, 1% crowd GT, 75% of detections jittered
//! copies of GT (some with the wrong class), the rest random false positives, scores
//! rounded to 3 decimals so that ties are common.

use super::data::{CocoGroundTruth, Detection, GtAnnotation, GtCategory, GtImage};

/// Sizes and seed of a synthetic set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyntheticSpec {
    /// Number of images.
    pub n_images: usize,
    /// Number of GT boxes.
    pub n_gt: usize,
    /// Number of detections.
    pub n_dets: usize,
    /// Number of categories (ids 1..=n_classes).
    pub n_classes: usize,
    /// PRNG seed; the same spec always gives the same set.
    pub seed: u64,
}

impl Default for SyntheticSpec {
    /// The benchmark size: 5,000 images, 50,000 GT, 100,000 detections, 10 classes.
    fn default() -> Self {
        SyntheticSpec {
            n_images: 5_000,
            n_gt: 50_000,
            n_dets: 100_000,
            n_classes: 10,
            seed: 20261127,
        }
    }
}

/// SplitMix64: tiny, fast, and stable across crate versions.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }
}

const W: f64 = 640.0;
const H: f64 = 480.0;

/// Rounds to 2 decimals, as exported pixel coordinates usually are.
fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn random_box(rng: &mut Rng) -> [f64; 4] {
    let side = (rng.range(8f64.ln(), 300f64.ln())).exp();
    let aspect = rng.range(0.5f64.ln(), 2f64.ln()).exp();
    let w = (side * aspect.sqrt()).min(W);
    let h = (side / aspect.sqrt()).min(H);
    let x = rng.range(0.0, W - w);
    let y = rng.range(0.0, H - h);
    [r2(x), r2(y), r2(w), r2(h)]
}

/// Builds the synthetic ground truth and detections for `spec`.
pub fn synthetic(spec: &SyntheticSpec) -> (CocoGroundTruth, Vec<Detection>) {
    let mut rng = Rng(spec.seed);
    let n_images = spec.n_images.max(1);
    let n_classes = spec.n_classes.max(1);
    let images: Vec<GtImage> = (1..=n_images as i64)
        .map(|id| GtImage {
            id,
            file_name: format!("{id:06}.jpg"),
        })
        .collect();
    let categories: Vec<GtCategory> = (1..=n_classes as i64)
        .map(|id| GtCategory {
            id,
            name: format!("class_{id}"),
        })
        .collect();
    let annotations: Vec<GtAnnotation> = (0..spec.n_gt)
        .map(|j| {
            let bbox = random_box(&mut rng);
            GtAnnotation {
                id: j as i64 + 1,
                image_id: rng.below(n_images) as i64 + 1,
                category_id: rng.below(n_classes) as i64 + 1,
                bbox,
                area: bbox[2] * bbox[3],
                iscrowd: rng.f64() < 0.01,
            }
        })
        .collect();
    let mut dets = Vec::with_capacity(spec.n_dets);
    for _ in 0..spec.n_dets {
        if !annotations.is_empty() && rng.f64() < 0.75 {
            let g = &annotations[rng.below(annotations.len())];
            let [x, y, w, h] = g.bbox;
            let j = rng.range(0.0, 0.15);
            let bbox = [
                r2(x + w * j * rng.range(-1.0, 1.0)),
                r2(y + h * j * rng.range(-1.0, 1.0)),
                r2(w * (1.0 + j * rng.range(-1.0, 1.0))),
                r2(h * (1.0 + j * rng.range(-1.0, 1.0))),
            ];
            let category_id = if rng.f64() < 0.9 {
                g.category_id
            } else {
                rng.below(n_classes) as i64 + 1
            };
            let score = (rng.range(0.3, 1.0) * 1000.0).round() / 1000.0;
            dets.push(Detection {
                image_id: g.image_id,
                category_id,
                bbox,
                score,
            });
        } else {
            let score = (rng.range(0.0, 0.7) * 1000.0).round() / 1000.0;
            dets.push(Detection {
                image_id: rng.below(n_images) as i64 + 1,
                category_id: rng.below(n_classes) as i64 + 1,
                bbox: random_box(&mut rng),
                score,
            });
        }
    }
    // Every record is valid by construction (ids unique, boxes finite and non-negative).
    let gt = CocoGroundTruth::new(images, categories, annotations).unwrap_or_default();
    (gt, dets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_valid() {
        let spec = SyntheticSpec {
            n_images: 20,
            n_gt: 100,
            n_dets: 300,
            n_classes: 3,
            seed: 7,
        };
        let (g1, d1) = synthetic(&spec);
        let (g2, d2) = synthetic(&spec);
        assert_eq!(g1.annotations(), g2.annotations());
        assert_eq!(d1, d2);
        assert_eq!(g1.annotations().len(), 100);
        assert!(crate::eval::validate_detections(&g1, &d1).is_ok());
    }
}
