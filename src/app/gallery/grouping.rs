//! The gallery's order: crops grouped by class (in class-list order), and within a class
//! by look, so that similar crops sit side by side and a crop unlike its neighbours
//! stands out.
//!
//! Within a group the order is a short path through the crops' descriptors, built by
//! greedy edge matching (closest pairs joined first). That is quadratic, so a group over
//! [`CHAIN_LIMIT`] crops is first cut into k-means clusters of about [`CLUSTER_SIZE`]:
//! the clusters are chained by their centres and each cluster's crops are chained in
//! turn. Deterministic: the same crops in the same input order give the same order.

use super::descriptor::{Descriptor, DESCRIPTOR_LEN};

/// Groups up to this size are chained directly.
pub const CHAIN_LIMIT: usize = 600;
/// The typical cluster size for larger groups.
pub const CLUSTER_SIZE: usize = 80;
/// k-means iterations.
const KMEANS_ROUNDS: usize = 8;

/// The display order of `items` (`(class rank, descriptor)`): by class rank, then by
/// look within each class. Returns indices into `items`.
pub fn order_by_class_then_look(items: &[(usize, &Descriptor)]) -> Vec<usize> {
    let mut ranks: Vec<usize> = items.iter().map(|(r, _)| *r).collect();
    ranks.sort_unstable();
    ranks.dedup();
    let mut order = Vec::with_capacity(items.len());
    for rank in ranks {
        let members: Vec<usize> = (0..items.len()).filter(|&i| items[i].0 == rank).collect();
        let descriptors: Vec<&Descriptor> = members.iter().map(|&i| items[i].1).collect();
        order.extend(order_by_look(&descriptors).into_iter().map(|k| members[k]));
    }
    order
}

/// The order of `items` by look alone (indices into `items`).
pub fn order_by_look(items: &[&Descriptor]) -> Vec<usize> {
    let all: Vec<usize> = (0..items.len()).collect();
    if items.len() <= CHAIN_LIMIT {
        return chain(items, &all);
    }
    let k = items.len().div_ceil(CLUSTER_SIZE);
    let (centres, members) = kmeans(items, k);
    let centre_refs: Vec<&Descriptor> = centres.iter().collect();
    let centre_ids: Vec<usize> = (0..centres.len()).collect();
    let mut order = Vec::with_capacity(items.len());
    for c in chain(&centre_refs, &centre_ids) {
        order.extend(chain(items, &members[c]));
    }
    order
}

/// A short path through `ids` (indices into `items`) by greedy edge matching: the
/// closest pairs are joined first, as long as no crop gets more than two neighbours and
/// no loop closes, until one path remains (closer to the shortest path than a
/// nearest-neighbour chain, which strands far-apart leftovers at its end).
fn chain(items: &[&Descriptor], ids: &[usize]) -> Vec<usize> {
    let n = ids.len();
    if n <= 2 {
        return ids.to_vec();
    }
    let mut edges: Vec<(f32, u32, u32)> = Vec::with_capacity(n * (n - 1) / 2);
    for a in 0..n {
        for b in a + 1..n {
            let d = items[ids[a]].distance(items[ids[b]]);
            edges.push((d, a as u32, b as u32));
        }
    }
    // Ties go to the earlier pair, so the order is deterministic.
    edges.sort_unstable_by(|x, y| x.0.total_cmp(&y.0).then((x.1, x.2).cmp(&(y.1, y.2))));
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut next: Vec<[usize; 2]> = vec![[usize::MAX; 2]; n];
    let mut degree = vec![0u8; n];
    let mut joined = 0;
    for (_, a, b) in edges {
        let (a, b) = (a as usize, b as usize);
        if degree[a] == 2 || degree[b] == 2 {
            continue;
        }
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        if ra == rb {
            continue;
        }
        parent[ra] = rb;
        next[a][degree[a] as usize] = b;
        next[b][degree[b] as usize] = a;
        degree[a] += 1;
        degree[b] += 1;
        joined += 1;
        if joined == n - 1 {
            break;
        }
    }
    // Walk from the first end.
    let mut at = (0..n).find(|&i| degree[i] < 2).unwrap_or(0);
    let mut previous = usize::MAX;
    let mut order = Vec::with_capacity(n);
    loop {
        order.push(ids[at]);
        let step = next[at]
            .into_iter()
            .find(|&j| j != usize::MAX && j != previous);
        match step {
            Some(j) if order.len() < n => {
                previous = at;
                at = j;
            }
            _ => break,
        }
    }
    order
}

/// Farthest-point starting centres: the first item, then again and again the item
/// farthest from every centre chosen so far (so that every distinct look gets one).
fn starting_centres(items: &[&Descriptor], k: usize) -> Vec<Descriptor> {
    let mut centres = vec![items[0].clone()];
    let mut closest: Vec<f32> = items.iter().map(|d| d.distance(items[0])).collect();
    while centres.len() < k {
        let (far, _) =
            closest.iter().enumerate().fold(
                (0, -1.0f32),
                |best, (i, &d)| if d > best.1 { (i, d) } else { best },
            );
        let centre = items[far].clone();
        for (c, d) in closest.iter_mut().zip(items.iter()) {
            *c = c.min(d.distance(&centre));
        }
        centres.push(centre);
    }
    centres
}

/// k-means with `k` farthest-point starting centres; returns the centres and each
/// centre's members (empty clusters dropped), members in input order.
fn kmeans(items: &[&Descriptor], k: usize) -> (Vec<Descriptor>, Vec<Vec<usize>>) {
    let n = items.len();
    let k = k.clamp(1, n);
    let mut centres = starting_centres(items, k);
    let mut assignment = vec![0usize; n];
    for _ in 0..KMEANS_ROUNDS {
        let mut moved = false;
        for (i, item) in items.iter().enumerate() {
            let best = nearest(&centres, item);
            if best != assignment[i] {
                assignment[i] = best;
                moved = true;
            }
        }
        let mut sums = vec![[0.0f32; DESCRIPTOR_LEN]; k];
        let mut counts = vec![0usize; k];
        for (i, item) in items.iter().enumerate() {
            counts[assignment[i]] += 1;
            for (s, v) in sums[assignment[i]].iter_mut().zip(item.0.iter()) {
                *s += v;
            }
        }
        for c in 0..k {
            if counts[c] > 0 {
                for (m, s) in centres[c].0.iter_mut().zip(sums[c].iter()) {
                    *m = s / counts[c] as f32;
                }
            }
        }
        if !moved {
            break;
        }
    }
    let mut members = vec![Vec::new(); k];
    for (i, &c) in assignment.iter().enumerate() {
        members[c].push(i);
    }
    let kept: Vec<(Descriptor, Vec<usize>)> = centres
        .into_iter()
        .zip(members)
        .filter(|(_, m)| !m.is_empty())
        .collect();
    kept.into_iter().unzip()
}

fn nearest(centres: &[Descriptor], item: &Descriptor) -> usize {
    centres
        .iter()
        .enumerate()
        .fold((0, f32::INFINITY), |best, (c, centre)| {
            let d = item.distance(centre);
            if d < best.1 {
                (c, d)
            } else {
                best
            }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A descriptor near look `look` (one of a few well-separated points), nudged by
    /// `noise`.
    fn near(look: usize, noise: f32) -> Descriptor {
        let mut d = Descriptor::default();
        d.0[look * 7] = 1.0;
        d.0[look * 7 + 1] = noise;
        d
    }

    /// Every look's items form one unbroken run in `order`.
    fn runs_are_unbroken(order: &[usize], look_of: impl Fn(usize) -> usize) -> bool {
        let mut seen = Vec::new();
        for w in order.windows(2) {
            if look_of(w[0]) != look_of(w[1]) {
                if seen.contains(&look_of(w[1])) {
                    return false;
                }
                seen.push(look_of(w[0]));
            }
        }
        true
    }

    #[test]
    fn similar_crops_end_adjacent() {
        // Interleaved: a, b, c, a, b, c, ...
        let items: Vec<Descriptor> = (0..12).map(|i| near(i % 3, i as f32 * 0.01)).collect();
        let refs: Vec<&Descriptor> = items.iter().collect();
        let order = order_by_look(&refs);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..12).collect::<Vec<_>>(), "a permutation");
        assert!(runs_are_unbroken(&order, |i| i % 3), "{order:?}");
    }

    #[test]
    fn the_odd_one_is_not_inside_a_run() {
        // Nine of one look and one of another: the odd one sits at an end.
        let mut items: Vec<Descriptor> = (0..9).map(|i| near(0, i as f32 * 0.01)).collect();
        items.insert(4, near(5, 0.0));
        let refs: Vec<&Descriptor> = items.iter().collect();
        let order = order_by_look(&refs);
        let at = order.iter().position(|&i| i == 4).unwrap();
        assert!(at == 0 || at == order.len() - 1, "{order:?}");
    }

    #[test]
    fn classes_come_first_then_looks() {
        let items: Vec<Descriptor> = (0..8).map(|i| near(i % 2, 0.0)).collect();
        let keyed: Vec<(usize, &Descriptor)> =
            items.iter().enumerate().map(|(i, d)| (i / 4, d)).collect();
        let order = order_by_class_then_look(&keyed);
        assert!(order[..4].iter().all(|&i| i < 4), "{order:?}");
        assert!(runs_are_unbroken(&order[..4], |i| i % 2));
        assert!(runs_are_unbroken(&order[4..], |i| i % 2));
    }

    #[test]
    fn large_groups_are_clustered_and_still_grouped() {
        let n = CHAIN_LIMIT * 2;
        let looks = 6;
        let items: Vec<Descriptor> = (0..n)
            .map(|i| near(i % looks, (i % 13) as f32 * 0.001))
            .collect();
        let refs: Vec<&Descriptor> = items.iter().collect();
        let order = order_by_look(&refs);
        assert_eq!(order.len(), n);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), n, "a permutation");
        // Neighbours share a look except at the few cluster boundaries.
        let changes = order
            .windows(2)
            .filter(|w| w[0] % looks != w[1] % looks)
            .count();
        assert!(changes <= n.div_ceil(CLUSTER_SIZE) * 2, "{changes} changes");
        assert_eq!(order, order_by_look(&refs), "deterministic");
    }
}
