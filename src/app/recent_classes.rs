//! The classes the user assigned last, newest first, for the label picker's "Recent" row.
//! Bounded and kept in memory only (a new session starts empty).

/// How many recent classes are kept.
pub const RECENT_CLASSES: usize = 5;

/// The last few distinct classes given to boxes (a new box's label, a relabel, a class
/// key), newest first, at most [`RECENT_CLASSES`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecentClasses {
    names: Vec<String>,
}

impl RecentClasses {
    /// Notes that `name` was just assigned: it moves to the front (once), and the oldest
    /// falls off past [`RECENT_CLASSES`]. Blank names are ignored.
    pub fn push(&mut self, name: &str) {
        let name = name.trim();
        if name.is_empty() {
            return;
        }
        self.names.retain(|n| n != name);
        self.names.insert(0, name.to_string());
        self.names.truncate(RECENT_CLASSES);
    }

    /// The recent classes, newest first.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The recent classes that are in `classes` (a class list of another folder may lack
    /// some), newest first.
    pub fn known<'a>(&'a self, classes: &[String]) -> Vec<&'a String> {
        self.names.iter().filter(|n| classes.contains(n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_without_repeats_and_bounded() {
        let mut r = RecentClasses::default();
        for n in ["a", "b", "a", " ", "c", "d", "e", "f"] {
            r.push(n);
        }
        assert_eq!(r.names(), ["f", "e", "d", "c", "a"]);
        r.push("d");
        assert_eq!(r.names(), ["d", "f", "e", "c", "a"]);
    }

    #[test]
    fn known_keeps_only_classes_of_the_list() {
        let mut r = RecentClasses::default();
        r.push("gone");
        r.push("kept");
        let classes = vec!["kept".to_string(), "other".to_string()];
        assert_eq!(r.known(&classes), [&classes[0]]);
    }
}
