//! Dataset-level operations shared by the CLI and the GUI: COCO export, format
//! conversion and COCO import.

mod coco_export;
mod convert;
mod error;
mod split;
mod transaction;

pub use coco_export::{export_coco, zylo117_project_yml, ExportOptions, ExportSummary, Layout};
pub use convert::{
    coco_to_annotations, convert, ConvertError, ConvertOptions, ConvertSummary, Source,
};
pub use error::{ExportError, Skipped};
pub use split::{stratified_split, SplitMode};
