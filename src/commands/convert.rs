//! `detlab convert`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};

use crate::dataset::{ClassList, LabelFormat};
use crate::export::{convert, ConvertOptions, Source};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    Voc,
    Yolo,
    Createml,
    Coco,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    #[arg(long, value_enum)]
    pub from: FormatArg,
    #[arg(long, value_enum)]
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
    /// Class order (YOLO class indices); new names are appended.
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
        Some(p) => ClassList::read(p)?,
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
