//! An ordered list of class names with stable ids.

use std::path::Path;

/// Class names in a fixed order: the id of a class is its position (0-based here;
/// COCO category ids are `id + 1`). New names are appended in order of first appearance,
/// so existing ids never change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassList {
    names: Vec<String>,
}

/// A class file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ClassListError {
    #[error("cannot read class file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("class file {path} is not valid UTF-8 (line {line})")]
    NotUtf8 { path: String, line: usize },
}

impl ClassList {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_names<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        let mut list = Self::new();
        for n in names {
            list.ensure(&n.into());
        }
        list
    }

    /// Reads `predefined_classes.txt` / `classes.txt` / `labels.txt`: one name per line,
    /// trimmed; blank lines and duplicates are skipped.
    pub fn read(path: &Path) -> Result<Self, ClassListError> {
        let bytes = std::fs::read(path).map_err(|source| ClassListError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&bytes).map_err(|line| ClassListError::NotUtf8 {
            path: path.display().to_string(),
            line,
        })
    }

    /// Parses class-file bytes; on invalid UTF-8 returns the 1-based bad line.
    pub fn parse(bytes: &[u8]) -> Result<Self, usize> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut list = Self::new();
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = std::str::from_utf8(line).map_err(|_| i + 1)?;
            let name = line.trim();
            if !name.is_empty() {
                list.ensure(name);
            }
        }
        Ok(list)
    }

    /// The file content: one name per line.
    pub fn to_file_content(&self) -> String {
        self.names.iter().map(|n| format!("{n}\n")).collect()
    }

    /// The id of `name`, adding it at the end if new.
    pub fn ensure(&mut self, name: &str) -> usize {
        match self.id(name) {
            Some(id) => id,
            None => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
        }
    }

    pub fn id(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    pub fn name(&self, id: usize) -> Option<&str> {
        self.names.get(id).map(String::as_str)
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_appended() {
        let mut c = ClassList::parse(b"\xEF\xBB\xBFSprite\n\n Cola \nSprite\n").unwrap();
        assert_eq!(c.names(), ["Sprite", "Cola"]);
        assert_eq!(c.ensure("Fanta"), 2);
        assert_eq!(c.ensure("Cola"), 1);
        assert_eq!(c.to_file_content(), "Sprite\nCola\nFanta\n");
    }

    #[test]
    fn non_utf8_line_is_reported() {
        assert_eq!(ClassList::parse(b"ok\n\xff\xfe\n"), Err(2));
    }
}
