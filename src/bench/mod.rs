//! Benchmarks behind `detlab bench` (results go into BENCHMARKS.md; never timed
//! assertions in tests). Each one measures the reference in the same run where there is
//! one, and reports a ratio.

pub mod detector;
pub mod detector_flops;
pub mod export;
pub mod gallery;
pub mod gui;
mod headless;
pub mod labelling;
pub mod review;
pub mod runtimes;

/// A benchmark's result lines (`name`, `value`, `unit`) plus free-form notes.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub title: String,
    pub rows: Vec<(String, f64, String)>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn row(&mut self, name: impl Into<String>, value: f64, unit: impl Into<String>) {
        self.rows.push((name.into(), value, unit.into()));
    }

    /// Markdown, as pasted into BENCHMARKS.md.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "### {}\n\n| measure | value | unit |\n| --- | ---: | --- |\n",
            self.title
        );
        for (n, v, u) in &self.rows {
            s.push_str(&format!("| {n} | {v:.3} | {u} |\n"));
        }
        for n in &self.notes {
            s.push_str(&format!("\n{n}\n"));
        }
        s
    }
}

/// Times `f` once, in seconds.
pub fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = std::time::Instant::now();
    let v = f();
    (v, t.elapsed().as_secs_f64())
}
