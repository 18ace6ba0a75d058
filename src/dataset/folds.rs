//! K-fold cross-validation folds: a list of labelled images split into K disjoint folds,
//! stratified by class and deterministic for a seed.
//!
//! Each image is put in the stratum of its rarest class (the class present in the fewest
//! images, ties by class id; images without boxes form their own stratum, last). The
//! strata are taken rarest first; each is shuffled with one ChaCha8 RNG seeded by the seed
//! and dealt round-robin over the folds, the deal continuing from fold to fold across
//! strata. So:
//! * every image is in exactly one fold, and the fold sizes differ by at most one;
//! * the images of a stratum are spread over the folds as evenly as can be (their counts
//!   per fold differ by at most one): a class that is the rarest class of its images
//!   (all of them, for the rarest class of a set) lands in every fold, or in as many as
//!   it has images;
//! * the same images, K and seed give the same folds (whatever the machine), and the
//!   folds do not depend on the order of the classes' names, only on their ids.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Why the images cannot be split into folds.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FoldError {
    /// Fewer than two folds.
    #[error("cross-validation needs at least 2 folds, got {0}")]
    TooFewFolds(usize),
    /// More folds than images: some fold would be empty.
    #[error("{folds} folds need at least {folds} labelled images (one per fold), and there are {images}")]
    TooManyFolds {
        /// The folds asked for.
        folds: usize,
        /// The images.
        images: usize,
    },
}

/// A split of `n` images into `k` folds: the fold of each image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folds {
    k: usize,
    fold_of: Vec<usize>,
}

impl Folds {
    /// Splits the images, given by the class ids of their boxes (`image_classes[i]`: the
    /// classes of image `i`'s boxes, repeats allowed, empty for an image without boxes),
    /// into `k` stratified folds (see the module documentation). Refuses `k < 2` and more
    /// folds than images.
    pub fn stratified(
        image_classes: &[Vec<usize>],
        k: usize,
        seed: u64,
    ) -> Result<Self, FoldError> {
        if k < 2 {
            return Err(FoldError::TooFewFolds(k));
        }
        let n = image_classes.len();
        if k > n {
            return Err(FoldError::TooManyFolds {
                folds: k,
                images: n,
            });
        }
        let num_classes = image_classes.iter().flatten().max().map_or(0, |&c| c + 1);
        // In how many images each class appears.
        let mut images_with = vec![0usize; num_classes];
        for classes in image_classes {
            let mut seen = classes.clone();
            seen.sort_unstable();
            seen.dedup();
            for c in seen {
                images_with[c] += 1;
            }
        }
        // Stratum key: (images with the rarest class, its id); negatives last.
        let key = |classes: &Vec<usize>| {
            classes
                .iter()
                .map(|&c| (images_with[c], c))
                .min()
                .unwrap_or((usize::MAX, usize::MAX))
        };
        let mut strata: std::collections::BTreeMap<(usize, usize), Vec<usize>> =
            std::collections::BTreeMap::new();
        for (i, classes) in image_classes.iter().enumerate() {
            strata.entry(key(classes)).or_default().push(i);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut fold_of = vec![0; n];
        let mut next = 0usize;
        for (_, mut stratum) in strata {
            stratum.shuffle(&mut rng);
            for i in stratum {
                fold_of[i] = next % k;
                next += 1;
            }
        }
        Ok(Self { k, fold_of })
    }

    /// The number of folds.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.fold_of.len()
    }

    /// Whether there are no images (never, for folds that were made).
    pub fn is_empty(&self) -> bool {
        self.fold_of.is_empty()
    }

    /// The fold (`0..k`) of each image.
    pub fn assignment(&self) -> &[usize] {
        &self.fold_of
    }

    /// The images of `fold` (held out when it is validated), in index order.
    pub fn held_out(&self, fold: usize) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| self.fold_of[i] == fold)
            .collect()
    }

    /// The images of every other fold (trained on when `fold` is validated), in index order.
    pub fn training(&self, fold: usize) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| self.fold_of[i] != fold)
            .collect()
    }

    /// The number of images in each fold.
    pub fn sizes(&self) -> Vec<usize> {
        let mut sizes = vec![0; self.k];
        for &f in &self.fold_of {
            sizes[f] += 1;
        }
        sizes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Images per fold that contain `class`.
    fn per_fold(folds: &Folds, images: &[Vec<usize>], class: usize) -> Vec<usize> {
        let mut counts = vec![0; folds.k()];
        for (i, classes) in images.iter().enumerate() {
            if classes.contains(&class) {
                counts[folds.assignment()[i]] += 1;
            }
        }
        counts
    }

    fn spread(counts: &[usize]) -> usize {
        counts.iter().max().unwrap() - counts.iter().min().unwrap()
    }

    /// Every image is in exactly one fold: the held-out sets are disjoint, cover every
    /// image, and each fold's training set is the rest.
    #[test]
    fn folds_are_disjoint_and_cover_every_image() {
        let images: Vec<Vec<usize>> = (0..23).map(|i| vec![i % 3]).collect();
        let folds = Folds::stratified(&images, 5, 7).unwrap();
        assert_eq!(folds.k(), 5);
        let mut seen = vec![0; images.len()];
        for f in 0..5 {
            for i in folds.held_out(f) {
                seen[i] += 1;
            }
            let mut both = folds.held_out(f);
            both.extend(folds.training(f));
            both.sort_unstable();
            assert_eq!(both, (0..23).collect::<Vec<_>>(), "fold {f}");
            assert!(folds
                .training(f)
                .iter()
                .all(|&i| folds.assignment()[i] != f));
        }
        assert_eq!(seen, vec![1; 23]);
        // 23 = 5 + 5 + 5 + 4 + 4.
        let mut sizes = folds.sizes();
        sizes.sort_unstable();
        assert_eq!(sizes, vec![4, 4, 5, 5, 5]);
        assert_eq!(folds.sizes().iter().sum::<usize>(), 23);
    }

    /// The same images, K and seed give the same folds; another seed other folds.
    #[test]
    fn folds_are_deterministic_for_a_seed() {
        let images: Vec<Vec<usize>> = (0..40).map(|i| vec![i % 4, (i / 4) % 2]).collect();
        let a = Folds::stratified(&images, 5, 0).unwrap();
        assert_eq!(a, Folds::stratified(&images, 5, 0).unwrap());
        assert_ne!(a, Folds::stratified(&images, 5, 1).unwrap());
        // Pinned: the seeded shuffle must not change between builds (tables of earlier
        // runs name their folds by K and seed).
        let small: Vec<Vec<usize>> = vec![
            vec![0],
            vec![0],
            vec![1],
            vec![0, 1],
            vec![],
            vec![0],
            vec![1],
            vec![0],
        ];
        let pinned = Folds::stratified(&small, 3, 42).unwrap();
        assert_eq!(pinned, Folds::stratified(&small, 3, 42).unwrap());
        assert_eq!(pinned.assignment(), PINNED);
    }

    /// What `folds_are_deterministic_for_a_seed` pins for K = 3, seed 42.
    const PINNED: &[usize] = &[0, 1, 2, 1, 1, 2, 0, 0];

    /// A rare class is spread over the folds like the common one: 3 rare images in 3
    /// folds go one to a fold, 9 common images three to a fold.
    #[test]
    fn folds_are_stratified_by_the_rarest_class() {
        let mut images: Vec<Vec<usize>> = vec![vec![0]; 9];
        images.extend(vec![vec![0, 1]; 3]);
        for seed in 0..20 {
            let folds = Folds::stratified(&images, 3, seed).unwrap();
            assert_eq!(per_fold(&folds, &images, 1), vec![1, 1, 1], "seed {seed}");
            assert_eq!(per_fold(&folds, &images, 0), vec![4, 4, 4], "seed {seed}");
            assert_eq!(folds.sizes(), vec![4, 4, 4]);
        }
        // Three classes of 10, 5 and 2 images, and 3 images without boxes, in 2 folds:
        // each class (and the negatives) split as evenly as its count allows.
        let mut images: Vec<Vec<usize>> = Vec::new();
        images.extend(vec![vec![0]; 10]);
        images.extend(vec![vec![1, 1]; 5]);
        images.extend(vec![vec![2]; 2]);
        images.extend(vec![vec![]; 3]);
        for seed in 0..20 {
            let folds = Folds::stratified(&images, 2, seed).unwrap();
            assert_eq!(per_fold(&folds, &images, 2), vec![1, 1], "seed {seed}");
            assert_eq!(spread(&per_fold(&folds, &images, 1)), 1, "seed {seed}");
            assert_eq!(spread(&per_fold(&folds, &images, 0)), 0, "seed {seed}");
            let negatives: Vec<usize> = (17..20).map(|i| folds.assignment()[i]).collect();
            assert!(
                negatives.contains(&0) && negatives.contains(&1),
                "{negatives:?}"
            );
            assert_eq!(folds.sizes(), vec![10, 10]);
        }
        // A class with fewer images than folds is in as many folds as it has images.
        let mut images: Vec<Vec<usize>> = vec![vec![0]; 8];
        images.extend(vec![vec![1]; 2]);
        let folds = Folds::stratified(&images, 5, 3).unwrap();
        let rare = per_fold(&folds, &images, 1);
        assert_eq!(rare.iter().filter(|&&c| c == 1).count(), 2, "{rare:?}");
        assert_eq!(folds.sizes(), vec![2; 5]);
    }

    /// Fewer than 2 folds, or more folds than images, are refused with a clear message.
    #[test]
    fn impossible_folds_are_refused() {
        let images = vec![vec![0]; 4];
        assert_eq!(
            Folds::stratified(&images, 1, 0),
            Err(FoldError::TooFewFolds(1))
        );
        assert_eq!(
            Folds::stratified(&images, 0, 0),
            Err(FoldError::TooFewFolds(0))
        );
        let err = Folds::stratified(&images, 5, 0).unwrap_err();
        assert_eq!(
            err,
            FoldError::TooManyFolds {
                folds: 5,
                images: 4
            }
        );
        assert_eq!(
            err.to_string(),
            "5 folds need at least 5 labelled images (one per fold), and there are 4"
        );
        // K = number of images: one image per fold.
        let folds = Folds::stratified(&images, 4, 0).unwrap();
        assert_eq!(folds.sizes(), vec![1; 4]);
    }
}
