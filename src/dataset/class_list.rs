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
    /// A line of a class file whose line numbers are the class ids (see
    /// [`ClassList::read_indexed`]) that cannot be one class.
    #[error("class file {path}, line {line}: {reason}")]
    Line {
        path: String,
        line: usize,
        reason: String,
    },
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
    /// trimmed; blank lines, repeated names and names with a control character are
    /// skipped.
    pub fn read(path: &Path) -> Result<Self, ClassListError> {
        Self::read_noting(path).map(|(list, _)| list)
    }

    /// [`ClassList::read`], with a note naming the file and line of each repeated or
    /// skipped name (for the caller to show).
    pub fn read_noting(path: &Path) -> Result<(Self, Vec<String>), ClassListError> {
        let bytes = std::fs::read(path).map_err(|source| ClassListError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let (list, notes) = Self::parse_noting(&bytes).map_err(|line| ClassListError::NotUtf8 {
            path: path.display().to_string(),
            line,
        })?;
        let notes = notes
            .into_iter()
            .map(|n| format!("class file {}, {n}", path.display()))
            .collect();
        Ok((list, notes))
    }

    /// Parses class-file bytes; on invalid UTF-8 returns the 1-based bad line.
    pub fn parse(bytes: &[u8]) -> Result<Self, usize> {
        Self::parse_noting(bytes).map(|(list, _)| list)
    }

    /// [`ClassList::parse`], with a note ("line 4: …") for each line skipped but blank.
    fn parse_noting(bytes: &[u8]) -> Result<(Self, Vec<String>), usize> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut list = Self::new();
        let mut notes = Vec::new();
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = std::str::from_utf8(line).map_err(|_| i + 1)?;
            if line.trim().is_empty() {
                continue;
            }
            match Self::check_name(line) {
                Ok(name) => match list.id(name) {
                    Some(first) => notes.push(format!(
                        "line {}: {name:?} repeats class {} (kept once)",
                        i + 1,
                        first + 1
                    )),
                    None => {
                        list.ensure(name);
                    }
                },
                Err(reason) => notes.push(format!("line {}: {reason} (skipped)", i + 1)),
            }
        }
        Ok((list, notes))
    }

    /// Reads a class file whose line numbers are the class ids: YOLO's `classes.txt`, where
    /// class id 2 is the third line (for LabelImg and Ultralytics alike). Names are trimmed
    /// and blank lines after the last name are allowed; a blank line before it, a name that
    /// repeats an earlier line, or one with a control character is an error naming the
    /// file and the line (skipping it, as [`ClassList::read`] does, would shift every
    /// class after it onto another id).
    pub fn read_indexed(path: &Path) -> Result<Self, ClassListError> {
        let bytes = std::fs::read(path).map_err(|source| ClassListError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse_indexed(&bytes).map_err(|(line, reason)| ClassListError::Line {
            path: path.display().to_string(),
            line,
            reason,
        })
    }

    /// Parses class-file bytes as [`ClassList::read_indexed`] does; the error is the
    /// 1-based line and the reason.
    pub fn parse_indexed(bytes: &[u8]) -> Result<Self, (usize, String)> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut list = Self::new();
        let mut blank = None;
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let line_no = i + 1;
            let line = std::str::from_utf8(line)
                .map_err(|_| (line_no, "is not valid UTF-8".to_string()))?;
            if line.trim().is_empty() {
                blank.get_or_insert(line_no);
                continue;
            }
            if let Some(blank) = blank {
                return Err((
                    blank,
                    "is blank, but class names follow it; class ids are line numbers, so \
                     remove the blank line (or name the class)"
                        .to_string(),
                ));
            }
            let name = Self::check_name(line).map_err(|r| (line_no, r))?;
            if let Some(first) = list.id(name) {
                return Err((
                    line_no,
                    format!(
                        "{name:?} repeats line {}; class ids are line numbers, so each class \
                         must be listed once",
                        first + 1
                    ),
                ));
            }
            list.names.push(name.to_string());
        }
        Ok(list)
    }

    /// Checks a class name read from a file: surrounding whitespace is trimmed, and the
    /// trimmed name must not be empty nor hold a control character other than a tab (a
    /// line break would split it into two lines of `classes.txt`, NUL and the like make VOC
    /// XML that other readers refuse; LabelImg itself writes a double space as a tab). The
    /// error is the reason, for the caller to name the file and record.
    pub fn check_name(name: &str) -> Result<&str, String> {
        let trimmed = name.trim();
        if trimmed.is_empty() {
            return Err("the class name is empty".into());
        }
        if let Some(c) = trimmed.chars().find(|&c| c.is_control() && c != '\t') {
            return Err(format!(
                "the class name {name:?} contains the control character U+{:04X}; a class \
                 name is one line of printable text",
                c as u32
            ));
        }
        Ok(trimmed)
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

    /// YOLO class id 2 is the third line of `classes.txt`: a duplicate or blank line
    /// before it used to be dropped, so that id 2 was read as the fourth name.
    #[test]
    fn indexed_class_files_keep_line_numbers_or_refuse() {
        let ok = ClassList::parse_indexed(b"\xEF\xBB\xBFCola\r\n Sprite \nFanta\n\n  \n").unwrap();
        assert_eq!(ok.names(), ["Cola", "Sprite", "Fanta"]);
        assert_eq!(ok.name(2), Some("Fanta"));
        assert_eq!(ClassList::parse_indexed(b"").unwrap().len(), 0);
        for (bytes, line, reason) in [
            (&b"Cola\nCola\nSprite\nFanta\n"[..], 2, "repeats line 1"),
            (b"Cola\n\nSprite\nFanta\n", 2, "blank"),
            (b"\nCola\n", 1, "blank"),
            (b"Cola\nDiet\x01Cola\n", 2, "U+0001"),
            (b"Cola\nDiet\x00Cola\n", 2, "U+0000"),
            (b"Cola\n\xff\n", 2, "UTF-8"),
        ] {
            let (l, r) = ClassList::parse_indexed(bytes).unwrap_err();
            assert_eq!(l, line, "{bytes:?}: {r}");
            assert!(r.contains(reason), "{bytes:?}: {r}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("classes.txt");
        std::fs::write(&p, "Cola\nCola\nSprite\n").unwrap();
        let err = ClassList::read_indexed(&p).unwrap_err().to_string();
        assert!(
            err.contains("classes.txt") && err.contains("line 2") && err.contains("repeats"),
            "{err}"
        );
        // The lenient reader (the app's predefined_classes.txt) still takes such files.
        assert_eq!(ClassList::read(&p).unwrap().names(), ["Cola", "Sprite"]);
    }

    #[test]
    fn class_names_are_trimmed_and_must_be_printable() {
        assert_eq!(ClassList::check_name("  Cola \t"), Ok("Cola"));
        assert_eq!(ClassList::check_name("R&D <x>"), Ok("R&D <x>"));
        assert!(ClassList::check_name(" \n ").unwrap_err().contains("empty"));
        // LabelImg writes a double space inside a name as a tab.
        assert_eq!(ClassList::check_name("Coca\tCola"), Ok("Coca\tCola"));
        for bad in ["Diet\nCola", "a\u{1}b", "a\0b", "a\rb", "a\u{7f}"] {
            assert!(
                ClassList::check_name(bad)
                    .unwrap_err()
                    .contains("control character"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_repeated_or_unprintable_name_is_noted_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("predefined_classes.txt");
        std::fs::write(
            &p,
            "Cola\r\nSprite\r\n\r\nCola\r\nbad\u{7}name\r\nFanta\r\n",
        )
        .unwrap();
        let (list, notes) = ClassList::read_noting(&p).unwrap();
        assert_eq!(list.names(), ["Cola", "Sprite", "Fanta"]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].ends_with("line 4: \"Cola\" repeats class 1 (kept once)"),
            "{notes:?}"
        );
        assert!(
            notes[1].contains("line 5: ") && notes[1].contains("U+0007"),
            "{notes:?}"
        );
        assert!(notes[0].contains("predefined_classes.txt"), "{notes:?}");
    }

    #[test]
    fn non_utf8_line_is_reported() {
        assert_eq!(ClassList::parse(b"ok\n\xff\xfe\n"), Err(2));
    }
}
