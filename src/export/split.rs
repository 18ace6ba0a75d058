//! Deterministic train/val splits.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// How images are divided between train and val.
#[derive(Clone, Debug, PartialEq)]
pub enum SplitMode {
    /// Everything in train.
    None,
    /// A seeded random fraction in val, stratified by class.
    Fraction { val_fraction: f64, seed: u64 },
    /// By the first folder below the images root (`train/`, `val/`, …); images directly
    /// in the root go to train.
    ByFolder,
}

/// Picks the val images among `n` images, stratified by class.
///
/// Each image is put in the stratum of its rarest class (negatives form their own
/// stratum), each stratum is shuffled with a ChaCha8 RNG seeded by `seed` and its first
/// `round(fraction · len)` images go to val. Returns a flag per image (`true` = val).
pub fn stratified_split(
    image_classes: &[Vec<usize>],
    num_classes: usize,
    fraction: f64,
    seed: u64,
) -> Vec<bool> {
    let mut frequency = vec![0usize; num_classes];
    for classes in image_classes {
        for &c in classes {
            frequency[c] += 1;
        }
    }
    // Stratum key: the rarest class present (ties by id), or `num_classes` for negatives.
    let mut strata: Vec<Vec<usize>> = vec![Vec::new(); num_classes + 1];
    for (i, classes) in image_classes.iter().enumerate() {
        let key = classes
            .iter()
            .copied()
            .min_by_key(|&c| (frequency[c], c))
            .unwrap_or(num_classes);
        strata[key].push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut is_val = vec![false; image_classes.len()];
    let fraction = fraction.clamp(0.0, 1.0);
    for mut stratum in strata {
        stratum.shuffle(&mut rng);
        let take = (fraction * stratum.len() as f64).round() as usize;
        for &i in &stratum[..take] {
            is_val[i] = true;
        }
    }
    is_val
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_deterministic_and_stratified() {
        let images: Vec<Vec<usize>> = (0..100)
            .map(|i| if i % 10 == 0 { vec![1] } else { vec![0] })
            .collect();
        let a = stratified_split(&images, 2, 0.2, 7);
        assert_eq!(a, stratified_split(&images, 2, 0.2, 7));
        assert_ne!(a, stratified_split(&images, 2, 0.2, 8));
        let rare_in_val = (0..100).filter(|&i| i % 10 == 0 && a[i]).count();
        assert_eq!(rare_in_val, 2);
        assert_eq!(a.iter().filter(|&&v| v).count(), 20);
    }
}
