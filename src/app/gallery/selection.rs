//! The gallery's multi-selection, as in a file manager: click selects one crop,
//! Ctrl+click adds or removes one, Shift+click selects the range from the last clicked
//! crop (Ctrl+Shift+click adds the range), Ctrl+A selects every crop shown.
//!
//! Crops are kept by id (they stay selected when the order changes); the range anchor is
//! a position in the order shown.

use std::collections::BTreeSet;

/// Which crops are selected, and where a Shift+click range starts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    selected: BTreeSet<usize>,
    anchor: Option<usize>,
}

/// The modifiers held during a click.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClickKind {
    /// Ctrl (Cmd on macOS): toggle, or add a range.
    pub ctrl: bool,
    /// Shift: a range from the anchor.
    pub shift: bool,
}

impl Selection {
    /// A click on the crop at position `at` of `shown` (crop ids in display order).
    pub fn click(&mut self, shown: &[usize], at: usize, kind: ClickKind) {
        let Some(&id) = shown.get(at) else { return };
        match (kind.shift, self.anchor.filter(|&a| a < shown.len())) {
            (true, Some(anchor)) => {
                if !kind.ctrl {
                    self.selected.clear();
                }
                let (a, b) = (anchor.min(at), anchor.max(at));
                self.selected.extend(shown[a..=b].iter().copied());
            }
            _ if kind.ctrl || kind.shift => {
                if !self.selected.remove(&id) {
                    self.selected.insert(id);
                }
                self.anchor = Some(at);
            }
            _ => {
                self.selected.clear();
                self.selected.insert(id);
                self.anchor = Some(at);
            }
        }
    }

    /// Ctrl+A: every crop shown.
    pub fn select_all(&mut self, shown: &[usize]) {
        self.selected = shown.iter().copied().collect();
        self.anchor = None;
    }

    /// Selects nothing.
    pub fn clear(&mut self) {
        self.selected.clear();
        self.anchor = None;
    }

    /// Keeps only crops that are shown (after the filter changed), and forgets the
    /// anchor (positions changed).
    pub fn keep_shown(&mut self, shown: &[usize]) {
        let shown: BTreeSet<usize> = shown.iter().copied().collect();
        self.selected.retain(|id| shown.contains(id));
        self.anchor = None;
    }

    /// The order changed (same crops): the anchor's position no longer means anything.
    pub fn reordered(&mut self) {
        self.anchor = None;
    }

    /// Whether crop `id` is selected.
    pub fn contains(&self, id: usize) -> bool {
        self.selected.contains(&id)
    }

    /// The selected crop ids, ascending.
    pub fn ids(&self) -> impl Iterator<Item = usize> + '_ {
        self.selected.iter().copied()
    }

    /// How many crops are selected.
    pub fn len(&self) -> usize {
        self.selected.len()
    }

    /// Whether nothing is selected.
    pub fn is_empty(&self) -> bool {
        self.selected.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: ClickKind = ClickKind {
        ctrl: false,
        shift: false,
    };
    const CTRL: ClickKind = ClickKind {
        ctrl: true,
        shift: false,
    };
    const SHIFT: ClickKind = ClickKind {
        ctrl: false,
        shift: true,
    };
    const CTRL_SHIFT: ClickKind = ClickKind {
        ctrl: true,
        shift: true,
    };

    fn ids(s: &Selection) -> Vec<usize> {
        s.ids().collect()
    }

    #[test]
    fn click_ctrl_click_and_shift_ranges() {
        // Ids in display order differ from positions.
        let shown = [10, 11, 12, 13, 14, 15];
        let mut s = Selection::default();
        s.click(&shown, 1, PLAIN);
        assert_eq!(ids(&s), [11]);
        s.click(&shown, 3, CTRL);
        assert_eq!(ids(&s), [11, 13]);
        s.click(&shown, 1, CTRL);
        assert_eq!(ids(&s), [13], "Ctrl+click removes a selected crop");
        // The anchor is the last Ctrl+clicked crop (position 1).
        s.click(&shown, 4, SHIFT);
        assert_eq!(ids(&s), [11, 12, 13, 14]);
        s.click(&shown, 0, SHIFT);
        assert_eq!(ids(&s), [10, 11], "a new range from the same anchor");
        s.click(&shown, 5, PLAIN);
        s.click(&shown, 3, CTRL_SHIFT);
        assert_eq!(ids(&s), [13, 14, 15]);
        s.click(&shown, 2, CTRL);
        s.click(&shown, 0, CTRL_SHIFT);
        assert_eq!(ids(&s), [10, 11, 12, 13, 14, 15], "Ctrl+Shift adds a range");
    }

    #[test]
    fn shift_without_an_anchor_toggles_and_select_all_takes_what_is_shown() {
        let shown = [3, 1, 2];
        let mut s = Selection::default();
        s.click(&shown, 2, SHIFT);
        assert_eq!(ids(&s), [2]);
        s.select_all(&shown);
        assert_eq!(s.len(), 3);
        s.keep_shown(&[1, 7]);
        assert_eq!(ids(&s), [1]);
        s.click(&shown, 9, PLAIN);
        assert_eq!(ids(&s), [1], "a click past the end does nothing");
        s.clear();
        assert!(s.is_empty());
    }
}
