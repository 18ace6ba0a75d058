//! Anchor aspect ratios fitted to a dataset's boxes.
//!
//! The reference ratios `(1,1), (1.4,0.7), (0.7,1.4)` reach a height/width of 2 at most;
//! bottles on a shelf are 2.5–4 times taller than wide, so no anchor overlaps them well and
//! the IoU-based assignment finds few positives. [`fit_ratios`] clusters the boxes'
//! `ln(h / w)` with 1-D k-means and turns each centre `r` into an area-preserving ratio
//! `(x, y) = (1/√r, √r)`.

use super::data::Sample;

/// How many ratios [`super::AnchorChoice::Fitted`] fits (the reference count, so that the heads
/// keep their shape).
pub const FITTED_RATIOS: usize = 3;

/// `(width, height)` of every box of `samples`, the input of [`fit_ratios`].
pub fn box_shapes(samples: &[Sample]) -> Vec<(f64, f64)> {
    samples
        .iter()
        .flat_map(|s| s.boxes.iter().map(|b| (b.width(), b.height())))
        .collect()
}

/// `k` ratios `(x multiplier, y multiplier)` fitted to boxes given as `(width, height)`,
/// sorted from wide to tall. Degenerate boxes are ignored; with fewer distinct shapes than
/// `k` the centres repeat. `None` when there is no usable box or `k == 0`.
pub fn fit_ratios(boxes: &[(f64, f64)], k: usize) -> Option<Vec<(f64, f64)>> {
    let mut logs: Vec<f64> = boxes
        .iter()
        .filter(|(w, h)| *w > 0.0 && *h > 0.0 && w.is_finite() && h.is_finite())
        .map(|(w, h)| (h / w).ln())
        .collect();
    if logs.is_empty() || k == 0 {
        return None;
    }
    logs.sort_by(f64::total_cmp);
    // Start at the quantiles (i + ½)/k, then Lloyd iterations until nothing moves.
    let mut centres: Vec<f64> = (0..k)
        .map(|i| logs[((2 * i + 1) * logs.len() / (2 * k)).min(logs.len() - 1)])
        .collect();
    for _ in 0..100 {
        let mut sums = vec![(0.0, 0usize); k];
        for &v in &logs {
            let nearest = (0..k)
                .min_by(|&a, &b| (v - centres[a]).abs().total_cmp(&(v - centres[b]).abs()))
                .unwrap_or(0);
            sums[nearest].0 += v;
            sums[nearest].1 += 1;
        }
        let next: Vec<f64> = sums
            .iter()
            .zip(&centres)
            .map(|(&(s, n), &c)| if n > 0 { s / n as f64 } else { c })
            .collect();
        let moved = next.iter().zip(&centres).any(|(a, b)| (a - b).abs() > 1e-9);
        centres = next;
        if !moved {
            break;
        }
    }
    centres.sort_by(f64::total_cmp);
    Some(
        centres
            .into_iter()
            .map(|c| {
                let r = c.exp();
                (1.0 / r.sqrt(), r.sqrt())
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_shapes_give_their_own_ratios() {
        // Squares and boxes four times taller than wide.
        let mut boxes = vec![(10.0, 10.0); 20];
        boxes.extend(vec![(10.0, 40.0); 30]);
        let r = fit_ratios(&boxes, 2).unwrap();
        assert!(
            (r[0].0 - 1.0).abs() < 1e-9 && (r[0].1 - 1.0).abs() < 1e-9,
            "{r:?}"
        );
        assert!(
            (r[1].0 - 0.5).abs() < 1e-9 && (r[1].1 - 2.0).abs() < 1e-9,
            "{r:?}"
        );
        // Area-preserving: x · y = 1.
        assert!(r.iter().all(|(x, y)| (x * y - 1.0).abs() < 1e-12));
    }

    #[test]
    fn centres_are_means_of_their_clusters_in_log_space() {
        // ln(h/w) values −1, −1, 1, 2 with k = 2 settle at −1 and 1.5.
        let boxes = [
            (1.0, (-1f64).exp()),
            (2.0, 2.0 * (-1f64).exp()),
            (1.0, 1f64.exp()),
            (1.0, 2f64.exp()),
        ];
        let r = fit_ratios(&boxes, 2).unwrap();
        assert!((r[0].1.powi(2).ln() - -1.0).abs() < 1e-9, "{r:?}");
        assert!((r[1].1.powi(2).ln() - 1.5).abs() < 1e-9, "{r:?}");
    }

    #[test]
    fn degenerate_input_gives_none_or_repeats() {
        assert_eq!(fit_ratios(&[], 3), None);
        assert_eq!(fit_ratios(&[(0.0, 5.0), (3.0, f64::NAN)], 3), None);
        assert_eq!(fit_ratios(&[(4.0, 4.0)], 0), None);
        let r = fit_ratios(&[(4.0, 4.0)], 3).unwrap();
        assert_eq!(r, vec![(1.0, 1.0); 3]);
    }
}
