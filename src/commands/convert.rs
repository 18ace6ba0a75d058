//! `detlab convert`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};

use crate::dataset::{ClassList, LabelFormat};
use crate::export::{convert, ConvertOptions, Source};

/// A label format on the command line.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    Voc,
    Yolo,
    Createml,
    Coco,
}

/// The formats `--to` accepts (COCO is written by `detlab export coco`).
fn to_format(s: &str) -> Result<FormatArg, String> {
    match s {
        "voc" => Ok(FormatArg::Voc),
        "yolo" => Ok(FormatArg::Yolo),
        "createml" => Ok(FormatArg::Createml),
        "coco" => Err("convert does not write COCO: use `detlab export coco`".into()),
        _ => Err("one of voc, yolo, createml".into()),
    }
}

/// The arguments of `detlab convert`.
#[derive(Args, Debug)]
pub struct ConvertArgs {
    #[arg(long, value_enum)]
    pub from: FormatArg,
    /// The format to write [possible values: voc, yolo, createml]; to write COCO, use
    /// `detlab export coco`.
    #[arg(long, value_parser = to_format)]
    pub to: FormatArg,
    /// Folder of images (for --from coco: the root that file_name is relative to).
    #[arg(long)]
    pub images: PathBuf,
    /// Folder of the source label files (default: beside the images).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// The COCO file, for --from coco.
    #[arg(long, required_if_eq("from", "coco"))]
    pub coco: Option<PathBuf>,
    /// Output folder of the converted label files.
    #[arg(long)]
    pub out: PathBuf,
    /// Class order (YOLO class indices: line 1 is id 0); new names are appended. A blank or
    /// repeated line before the last name is an error.
    #[arg(long)]
    pub classes: Option<PathBuf>,
}

fn label_format(f: FormatArg) -> Option<LabelFormat> {
    match f {
        FormatArg::Voc => Some(LabelFormat::Voc),
        FormatArg::Yolo => Some(LabelFormat::Yolo),
        FormatArg::Createml => Some(LabelFormat::CreateMl),
        FormatArg::Coco => None,
    }
}

/// Runs `detlab convert`: an error (exit status non-zero) when nothing was converted.
pub fn run(args: ConvertArgs) -> anyhow::Result<()> {
    let Some(to) = label_format(args.to) else {
        bail!("--to coco: use `detlab export coco` to write COCO");
    };
    let source = match label_format(args.from) {
        Some(format) => Source::Labels {
            format,
            labels_dir: args.labels.clone(),
        },
        None => Source::Coco(args.coco.clone().context("--from coco needs --coco FILE")?),
    };
    let classes = match &args.classes {
        Some(p) => ClassList::read_indexed(p)?,
        None => ClassList::new(),
    };
    let options = ConvertOptions {
        source,
        to,
        images_dir: args.images,
        out_dir: args.out.clone(),
        classes,
    };
    let summary = convert(&options)?;
    println!(
        "converted {} label files ({} boxes) into {}",
        summary.written,
        summary.boxes,
        args.out.display()
    );
    if !summary.size_mismatches.is_empty() {
        println!(
            "warning: label size differs from the image header (header size used): {}",
            summary.size_mismatches.len()
        );
        for s in &summary.size_mismatches {
            println!("  {}: {}", s.path.display(), s.reason);
        }
    }
    for s in &summary.skipped {
        println!("skipped {}: {}", s.path.display(), s.reason);
    }
    if !summary.dropped_boxes.is_empty() {
        println!(
            "boxes dropped (empty after clipping to the image): {}",
            summary.dropped_boxes.len()
        );
        for s in &summary.dropped_boxes {
            println!("  {}: {}", s.path.display(), s.reason);
        }
    }
    Ok(())
}
