//! `detlab import-weights`: a PyTorch checkpoint (`.pth`/`.pt`, zip or legacy format) →
//! a detlab model file (`.safetensors` with all settings in its metadata).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use detlab::detector::checkpoint::import::{
    first_non_finite, import_tensors, provisional_expected_keys,
};
use detlab::detector::checkpoint::keymap::normalize_names;
use detlab::detector::checkpoint::{read_checkpoint, ImportOptions, ModelArch, ModelMeta};

/// Import PyTorch EfficientDet weights (Zylo117 names, or a lukemelas EfficientNet backbone).
#[derive(clap::Args, Debug)]
pub struct ImportWeightsArgs {
    /// The PyTorch checkpoint (`torch.save(model.state_dict())`, zip or legacy format).
    #[arg(value_name = "IN.pth")]
    pub input: PathBuf,
    /// Architecture: d0..d8 (d8 = D7x) or lite0.
    #[arg(long)]
    pub arch: ModelArch,
    /// Number of classes the checkpoint's classifier was trained for.
    #[arg(long)]
    pub num_classes: usize,
    /// Class names: one per line, or a JSON array of strings. Default: class1..classN.
    #[arg(long, value_name = "FILE")]
    pub classes: Option<PathBuf>,
    /// The model file to write (atomically; never over the checkpoint or --classes).
    #[arg(long, value_name = "OUT.safetensors")]
    pub out: PathBuf,
    /// Accept missing parameters (e.g. an ImageNet backbone only); the file is marked
    /// partial and can seed fine-tuning but not run detection.
    #[arg(long)]
    pub partial: bool,
    /// Square input size, if not the architecture's native one (a multiple of 8, at most
    /// 2048).
    #[arg(long)]
    pub input_size: Option<u32>,
}

/// The exact `(name, shape)` list of the model for `arch` with `num_classes` classes: the
/// model is built in a CPU `tch::nn::VarStore` and its variables listed
/// ([`detlab::detector::inference::expected_keys`]). `None` only if the network cannot be
/// built, in which case the command falls back to [`provisional_expected_keys`].
fn model_expected_keys(arch: ModelArch, num_classes: usize) -> Option<Vec<(String, Vec<i64>)>> {
    detlab::detector::inference::expected_keys(arch, num_classes).ok()
}

/// Runs the command.
pub fn run(args: ImportWeightsArgs) -> anyhow::Result<()> {
    // Before any work: the output can be written and replaces no input.
    super::output_checks::check_output_file("--out", &args.out)?;
    super::output_checks::check_not_an_input(
        "--out",
        &args.out,
        std::iter::once(("the checkpoint", args.input.as_path()))
            .chain(args.classes.iter().map(|c| ("the class list", c.as_path()))),
    )?;
    let max_classes = detlab::detector::settings::MAX_CLASSES;
    if args.num_classes == 0 || args.num_classes > max_classes {
        bail!("--num-classes must be from 1 to {max_classes}");
    }
    let class_names = match &args.classes {
        Some(path) => read_class_names(path)?,
        None => (1..=args.num_classes)
            .map(|i| format!("class{i}"))
            .collect(),
    };
    if class_names.len() != args.num_classes {
        bail!(
            "--classes lists {} names but --num-classes is {}",
            class_names.len(),
            args.num_classes
        );
    }
    let mut meta = ModelMeta::for_arch(args.arch, class_names);
    if let Some(size) = args.input_size {
        // The model file's own limits: a file that `predict` could not load is never written.
        if let Err(m) = detlab::detector::settings::check_input_size(size, 8) {
            bail!("--input-size: {m}");
        }
        meta.input_size = size;
    }
    meta.source = args
        .input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());

    let mut tensors = read_checkpoint(&args.input)?;
    let style = normalize_names(&mut tensors);
    let expected = model_expected_keys(args.arch, args.num_classes).unwrap_or_else(|| {
        let present: Vec<(String, Vec<i64>)> = tensors
            .iter()
            .map(|t| (t.name.clone(), t.shape_i64()))
            .collect();
        provisional_expected_keys(args.arch, args.num_classes, &present)
    });
    let (model, report) = import_tensors(
        tensors,
        &expected,
        meta,
        ImportOptions {
            partial: args.partial,
        },
    )
    .map_err(|(arch, mismatch)| {
        anyhow::anyhow!(
            "{} does not fit {arch} with {} classes: {mismatch}{}",
            args.input.display(),
            args.num_classes,
            if !mismatch.missing.is_empty() && mismatch.misshaped.is_empty() {
                "\n(a backbone-only checkpoint? pass --partial)"
            } else {
                ""
            }
        )
    })?;
    if let Some(found) = first_non_finite(&model.tensors) {
        bail!("{}: {found}", args.input.display());
    }
    model.write(&args.out)?;
    let params: usize = model.tensors.iter().map(|t| t.numel()).sum();
    println!(
        "imported {} tensors ({params} values, {style:?} names) from {} as {} with {} classes → {}",
        model.tensors.len(),
        args.input.display(),
        args.arch,
        args.num_classes,
        args.out.display()
    );
    if model.meta.partial {
        println!(
            "partial: {} parameters missing (left to initialisation), {} checkpoint tensors dropped",
            report.missing.len(),
            report.dropped.len()
        );
    }
    Ok(())
}

/// Class names from a file: a JSON array of strings, or one name per non-empty line.
fn read_class_names(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading class names from {}", path.display()))?;
    let names: Vec<String> = if text.trim_start().starts_with('[') {
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a JSON array of strings", path.display()))?
    } else {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    if names.is_empty() {
        bail!("{} lists no class names", path.display());
    }
    // Class id i is the i-th name: a repeated one would make two ids one class.
    let mut seen = std::collections::HashSet::new();
    for (i, name) in names.iter().enumerate() {
        detlab::dataset::ClassList::check_name(name)
            .map_err(|why| anyhow::anyhow!("{}: name {}: {why}", path.display(), i + 1))?;
        if !seen.insert(name.as_str()) {
            bail!(
                "{}: name {} repeats {name:?}: each class id needs its own name",
                path.display(),
                i + 1
            );
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_from_lines_or_json() {
        let dir = tempfile::tempdir().unwrap();
        let lines = dir.path().join("c.txt");
        std::fs::write(&lines, "Sprite\n\n  Cola \n").unwrap();
        assert_eq!(read_class_names(&lines).unwrap(), vec!["Sprite", "Cola"]);
        let json = dir.path().join("c.json");
        std::fs::write(&json, r#"["a b", "c"]"#).unwrap();
        assert_eq!(read_class_names(&json).unwrap(), vec!["a b", "c"]);
        std::fs::write(&json, "").unwrap();
        assert!(read_class_names(&json).is_err());
        std::fs::write(&lines, "a\nb\na\n").unwrap();
        let err = read_class_names(&lines).unwrap_err().to_string();
        assert!(err.contains("name 3 repeats \"a\""), "{err}");
        std::fs::write(&json, r#"["a", "b\nc"]"#).unwrap();
        let err = read_class_names(&json).unwrap_err().to_string();
        assert!(
            err.contains("name 2") && err.contains("control character"),
            "{err}"
        );
    }
}
