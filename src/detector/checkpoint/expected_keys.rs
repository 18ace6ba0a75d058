//! Comparing a set of named tensors with the keys and shapes a model expects.

use std::collections::HashMap;
use std::fmt;

/// The expected parameters of a model: `(name, shape)` in the model's order.
pub type ExpectedKeys = [(String, Vec<i64>)];

/// Differences between what a file holds and what the model expects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyMismatch {
    /// Expected but absent.
    pub missing: Vec<String>,
    /// Present but not expected.
    pub unexpected: Vec<String>,
    /// `(name, shape in the file, expected shape)`.
    pub misshaped: Vec<(String, Vec<i64>, Vec<i64>)>,
}

impl KeyMismatch {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.misshaped.is_empty()
    }
}

/// At most this many names per category are printed.
const SHOWN: usize = 12;

impl fmt::Display for KeyMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} missing, {} unexpected and {} mis-shaped parameters",
            self.missing.len(),
            self.unexpected.len(),
            self.misshaped.len()
        )?;
        let list = |f: &mut fmt::Formatter<'_>,
                    what: &str,
                    names: &mut dyn Iterator<Item = String>,
                    n: usize| {
            if n == 0 {
                return Ok(());
            }
            let shown: Vec<String> = names.take(SHOWN).collect();
            write!(
                f,
                "\n  {what}: {}{}",
                shown.join(", "),
                if n > SHOWN {
                    format!(", ... ({} more)", n - SHOWN)
                } else {
                    String::new()
                }
            )
        };
        list(
            f,
            "missing",
            &mut self.missing.iter().cloned(),
            self.missing.len(),
        )?;
        list(
            f,
            "unexpected",
            &mut self.unexpected.iter().cloned(),
            self.unexpected.len(),
        )?;
        list(
            f,
            "mis-shaped (file vs model)",
            &mut self
                .misshaped
                .iter()
                .map(|(n, got, want)| format!("{n} {got:?} vs {want:?}")),
            self.misshaped.len(),
        )
    }
}

impl std::error::Error for KeyMismatch {}

/// Compares `actual` `(name, shape)` pairs with `expected`.
pub fn compare_keys<'a>(
    actual: impl IntoIterator<Item = (&'a str, Vec<i64>)>,
    expected: &ExpectedKeys,
) -> KeyMismatch {
    let want: HashMap<&str, &Vec<i64>> = expected.iter().map(|(n, s)| (n.as_str(), s)).collect();
    let mut seen = std::collections::HashSet::new();
    let mut m = KeyMismatch::default();
    for (name, shape) in actual {
        seen.insert(name);
        match want.get(name) {
            None => m.unexpected.push(name.to_string()),
            Some(&w) if *w != shape => m.misshaped.push((name.to_string(), shape, w.clone())),
            Some(_) => {}
        }
    }
    m.missing = expected
        .iter()
        .filter(|(n, _)| !seen.contains(n.as_str()))
        .map(|(n, _)| n.clone())
        .collect();
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_all_three_kinds() {
        let expected = vec![
            ("a".to_string(), vec![2]),
            ("b".to_string(), vec![3, 1]),
            ("c".to_string(), vec![]),
        ];
        let m = compare_keys([("a", vec![2]), ("b", vec![3]), ("z", vec![1])], &expected);
        assert_eq!(m.missing, vec!["c"]);
        assert_eq!(m.unexpected, vec!["z"]);
        assert_eq!(m.misshaped, vec![("b".to_string(), vec![3], vec![3, 1])]);
        let text = m.to_string();
        assert!(
            text.contains("1 missing, 1 unexpected and 1 mis-shaped"),
            "{text}"
        );
        assert!(text.contains("b [3] vs [3, 1]"), "{text}");
        assert!(compare_keys(
            [("a", vec![2]), ("b", vec![3, 1]), ("c", vec![])],
            &expected
        )
        .is_empty());
    }
}
