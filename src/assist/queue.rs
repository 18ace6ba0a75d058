//! "Label next": which unlabelled image teaches the model most.
//!
//! An image's usefulness is its **uncertainty** (how many of the model's detections sit
//! near the decision boundary) times its **novelty** (how unlike the already-labelled
//! images its predicted contents are):
//!
//! * uncertainty `U = Σ_d 1 − |2 s_d − 1|` over the image's detections with score
//!   `s_d ≥` [`MIN_SCORE`]: a detection at 0.5 counts 1, one at 0.05 or 0.95 almost
//!   nothing. Summed, not averaged, so a shelf with 40 doubtful facings outranks a
//!   photo with one.
//! * novelty `N = min_l ½‖p − p_l‖₁` over labelled images `l`, where `p` is the image's
//!   class profile (score mass per class, normalised to sum 1; an image with no
//!   detection has the uniform profile). 0 for a copy of a labelled image's contents, 1
//!   for contents never labelled; 1 when nothing is labelled yet.
//! * usefulness `U · (½ + ½ N)`: novelty re-weights, uncertainty decides.

use crate::detector::maths::postprocess::Detection;

/// Detections below this score are noise, not doubt.
pub const MIN_SCORE: f32 = 0.05;

/// What the model's detections say about one image.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageSignal {
    pub uncertainty: f64,
    /// Score mass per class, summing to 1.
    pub profile: Vec<f64>,
}

impl ImageSignal {
    /// The signal of an image's detections (any threshold at or below [`MIN_SCORE`])
    /// for a model with `classes` classes.
    pub fn of(detections: &[Detection], classes: usize) -> Self {
        let classes = classes.max(1);
        let mut profile = vec![0.0; classes];
        let mut uncertainty = 0.0;
        for d in detections.iter().filter(|d| d.score >= MIN_SCORE) {
            let s = d.score.clamp(0.0, 1.0) as f64;
            uncertainty += 1.0 - (2.0 * s - 1.0).abs();
            if let Some(p) = profile.get_mut(d.class_id) {
                *p += s;
            }
        }
        let total: f64 = profile.iter().sum();
        if total > 0.0 {
            profile.iter_mut().for_each(|p| *p /= total);
        } else {
            profile.iter_mut().for_each(|p| *p = 1.0 / classes as f64);
        }
        Self {
            uncertainty,
            profile,
        }
    }

    /// How unlike every labelled image this one is (see the module doc).
    pub fn novelty(&self, labelled: &[ImageSignal]) -> f64 {
        labelled
            .iter()
            .map(|l| {
                0.5 * self
                    .profile
                    .iter()
                    .zip(&l.profile)
                    .map(|(a, b)| (a - b).abs())
                    .sum::<f64>()
            })
            .fold(1.0, f64::min)
    }

    /// How much labelling this image is worth (see the module doc).
    pub fn usefulness(&self, labelled: &[ImageSignal]) -> f64 {
        self.uncertainty * (0.5 + 0.5 * self.novelty(labelled))
    }
}

/// The order in which to label `unlabelled` (indices into it), most useful first; images
/// the model has not seen yet (`None`) come last, in their given order. Ties keep the
/// given order.
pub fn order(unlabelled: &[Option<ImageSignal>], labelled: &[ImageSignal]) -> Vec<usize> {
    let mut keyed: Vec<(usize, f64)> = unlabelled
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                i,
                s.as_ref()
                    .map_or(f64::NEG_INFINITY, |s| s.usefulness(labelled)),
            )
        })
        .collect();
    keyed.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    keyed.into_iter().map(|(i, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BoxXyxy;

    fn dets(scores: &[(f32, usize)]) -> Vec<Detection> {
        scores
            .iter()
            .map(|&(score, class_id)| Detection {
                bbox: BoxXyxy::new(0.0, 0.0, 10.0, 10.0),
                score,
                class_id,
            })
            .collect()
    }

    #[test]
    fn uncertainty_peaks_at_one_half() {
        let s = ImageSignal::of(&dets(&[(0.5, 0), (0.95, 0), (0.01, 1)]), 2);
        assert!(
            (s.uncertainty - (1.0 + 0.1)).abs() < 1e-6,
            "{}",
            s.uncertainty
        );
        assert_eq!(s.profile.len(), 2);
        assert!((s.profile.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_order_follows_the_models_doubt() {
        let confident = Some(ImageSignal::of(&dets(&[(0.97, 0), (0.96, 0)]), 2));
        let doubtful = Some(ImageSignal::of(&dets(&[(0.5, 0), (0.45, 0), (0.6, 0)]), 2));
        let unseen = None;
        assert_eq!(
            order(&[confident.clone(), doubtful.clone(), unseen], &[]),
            [1, 0, 2]
        );
        // The same images with the model's doubt moved to the first one: the order turns.
        let doubtful_first = Some(ImageSignal::of(&dets(&[(0.5, 0), (0.5, 0), (0.5, 0)]), 2));
        let confident_second = Some(ImageSignal::of(&dets(&[(0.99, 0)]), 2));
        assert_eq!(order(&[doubtful_first, confident_second], &[]), [0, 1]);
    }

    #[test]
    fn novelty_breaks_ties_between_equally_doubtful_images() {
        let cola = ImageSignal::of(&dets(&[(0.5, 0), (0.5, 0)]), 2);
        let sprite = ImageSignal::of(&dets(&[(0.5, 1), (0.5, 1)]), 2);
        let labelled = [ImageSignal::of(&dets(&[(0.9, 0)]), 2)];
        assert_eq!(cola.novelty(&labelled), 0.0);
        assert_eq!(sprite.novelty(&labelled), 1.0);
        assert_eq!(order(&[Some(cola), Some(sprite)], &labelled), [1, 0]);
    }
}
