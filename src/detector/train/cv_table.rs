//! The cross-validation table (`detlab train --folds K --cv-table T.md`): one row of
//! [`CvRun`] per recipe, all on the same folds, kept as JSON and shown as Markdown.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cross_val::{CvRun, Scores};

/// Why a table cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a cross-validation table ({reason})", path.display())]
    Format { path: PathBuf, reason: String },
    #[error("{} holds recipes scored on other folds ({theirs}; this run: {ours}): they would not line up; choose another table", path.display())]
    OtherFolds {
        path: PathBuf,
        theirs: String,
        ours: String,
    },
}

/// The table: one run per recipe, all on the same folds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CvTable {
    pub runs: Vec<CvRun>,
}

fn folds_words(r: &CvRun) -> String {
    format!(
        "{} folds of {} images, fold seed {}, folds {}",
        r.folds, r.images, r.fold_seed, r.folds_id
    )
}

fn cell(s: &Scores) -> [String; 3] {
    [
        format!("{:.4}", s.ap),
        format!("{:.4}", s.ap50),
        format!("{:.4}", s.ap75),
    ]
}

impl CvTable {
    /// The JSON file beside a Markdown table: `T.md` → `T.json` (any other name gets
    /// `.json` added).
    pub fn json_path(markdown: &Path) -> PathBuf {
        if markdown.extension().is_some_and(|e| e == "md") {
            markdown.with_extension("json")
        } else {
            let mut s = markdown.as_os_str().to_owned();
            s.push(".json");
            PathBuf::from(s)
        }
    }

    /// Reads the table whose Markdown is at `markdown` (from its JSON); an empty table
    /// when there is none yet.
    pub fn read(markdown: &Path) -> Result<Self, TableError> {
        let path = Self::json_path(markdown);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| TableError::Format {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(TableError::Io { path, source }),
        }
    }

    /// Adds a recipe's run (replacing an earlier run of the same recipe); refuses a run
    /// on other folds than the table's.
    pub fn add(&mut self, run: CvRun, path: &Path) -> Result<(), TableError> {
        self.check_folds(&run, path)?;
        match self.runs.iter_mut().find(|r| r.recipe == run.recipe) {
            Some(r) => *r = run,
            None => self.runs.push(run),
        }
        Ok(())
    }

    /// Refuses a run on other folds than the table's (another K, seed or image set): its
    /// scores would not be comparable. `run`'s rows are not read.
    pub fn check_folds(&self, run: &CvRun, path: &Path) -> Result<(), TableError> {
        match self.runs.first() {
            Some(first)
                if (first.folds_id.as_str(), first.fold_seed)
                    != (run.folds_id.as_str(), run.fold_seed) =>
            {
                Err(TableError::OtherFolds {
                    path: path.to_path_buf(),
                    theirs: folds_words(first),
                    ours: folds_words(run),
                })
            }
            _ => Ok(()),
        }
    }

    /// The table in Markdown: the recipes side by side, then each recipe's folds.
    pub fn to_markdown(&self) -> String {
        let mut md = String::from("# Cross-validation\n\n");
        let Some(first) = self.runs.first() else {
            return md;
        };
        md.push_str(&format!(
            "{}. Mean ± sample standard deviation over the folds. *Last*: the held-out fold's \
             score after the last epoch, the estimate for a model trained that many epochs. \
             *Best*: at the epoch that scored best on the held-out fold, chosen on it, so \
             optimistic.\n\n",
            folds_words(first)
        ));
        md.push_str("| # | recipe | epochs | AP (last) | AP50 (last) | AP75 (last) | AP (best) | median best epoch |\n");
        md.push_str("|---|---|---|---|---|---|---|---|\n");
        for (i, r) in self.runs.iter().enumerate() {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                i + 1,
                r.recipe,
                r.epochs,
                r.last.ap,
                r.last.ap50,
                r.last.ap75,
                r.best.ap,
                r.median_best_epoch
            ));
        }
        for (i, r) in self.runs.iter().enumerate() {
            md.push_str(&format!("\n## {}. {}\n\n", i + 1, r.recipe));
            md.push_str(&fold_table(r));
        }
        md
    }

    /// Writes the Markdown and the JSON atomically, as a pair: either both new files are
    /// in place or (on a failure before the renames) both old ones; a write killed
    /// between the two renames is completed by the next one (see [`crate::atomic::commit_all`]).
    pub fn write(&self, markdown: &Path) -> Result<(), TableError> {
        let json_path = Self::json_path(markdown);
        let json = serde_json::to_string_pretty(self).map_err(|e| TableError::Format {
            path: json_path.clone(),
            reason: e.to_string(),
        })?;
        let md = self.to_markdown();
        let stage = |path: &Path, bytes: &[u8]| {
            crate::atomic::stage_with(path, |f| std::io::Write::write_all(f, bytes)).map_err(
                |source| TableError::Io {
                    path: path.to_path_buf(),
                    source,
                },
            )
        };
        // A pair whose renames a killed process left half done is completed first.
        let journal = markdown.with_file_name(crate::atomic::COMMIT_JOURNAL);
        crate::atomic::finish_interrupted_commit(&journal).map_err(|source| TableError::Io {
            path: journal.clone(),
            source,
        })?;
        let staged = vec![
            stage(&json_path, json.as_bytes())?,
            stage(markdown, md.as_bytes())?,
        ];
        crate::atomic::commit_all(staged, &journal).map_err(|(k, source)| TableError::Io {
            path: if k == 0 {
                json_path
            } else {
                markdown.to_path_buf()
            },
            source,
        })
    }
}

/// One recipe's folds: a row per fold, then the mean ± sd.
pub fn fold_table(r: &CvRun) -> String {
    let mut md = String::from(
        "| fold | train | val | AP | AP50 | AP75 | best epoch | AP (best) | AP50 (best) | AP75 (best) |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for f in &r.rows {
        let [a, b, c] = cell(&f.last);
        let [d, e, g] = cell(&f.best);
        md.push_str(&format!(
            "| {} | {} | {} | {a} | {b} | {c} | {} | {d} | {e} | {g} |\n",
            f.fold, f.train_images, f.val_images, f.best_epoch
        ));
    }
    md.push_str(&format!(
        "| mean ± sd | | | {} | {} | {} | {} | {} | {} | {} |\n",
        r.last.ap,
        r.last.ap50,
        r.last.ap75,
        r.median_best_epoch,
        r.best.ap,
        r.best.ap50,
        r.best.ap75
    ));
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::train::cross_val::tests::run;

    /// The Markdown has a row per fold and a mean row; a second recipe lines up beside the
    /// first; a run on other folds is refused.
    #[test]
    fn table_lines_up_recipes_on_the_same_folds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cv.md");
        let mut t = CvTable::read(&path).unwrap();
        t.add(run("a", &[(0.2, 0.4), (0.6, 0.2)]), &path).unwrap();
        t.write(&path).unwrap();
        let mut t = CvTable::read(&path).unwrap();
        t.add(run("b", &[(0.3, 0.4), (0.5, 0.6)]), &path).unwrap();
        t.add(run("b", &[(0.3, 0.4), (0.5, 0.7)]), &path).unwrap();
        t.write(&path).unwrap();
        let t = CvTable::read(&path).unwrap();
        assert_eq!(t.runs.len(), 2);
        let md = std::fs::read_to_string(&path).unwrap();
        assert!(
            md.contains("| 1 | a | 2 |") && md.contains("| 2 | b | 2 |"),
            "{md}"
        );
        assert_eq!(md.matches("| mean ± sd |").count(), 2, "{md}");
        assert!(md.contains("| 2 | 8 | 4 | 0.7000 |"), "{md}");
        let mut other = run("c", &[(0.1, 0.1), (0.1, 0.1)]);
        other.folds_id = "def".into();
        let mut t = t;
        let err = t.add(other, &path).unwrap_err().to_string();
        assert!(err.contains("other folds"), "{err}");
        assert_eq!(
            CvTable::json_path(Path::new("x/cv.md")),
            Path::new("x/cv.json")
        );
        assert_eq!(
            CvTable::json_path(Path::new("x/cv")),
            Path::new("x/cv.json")
        );
    }
}
