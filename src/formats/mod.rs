//! Label file formats: Pascal VOC (LabelImg-exact), YOLO, CreateML and COCO.
//! No egui and no tch in here.

pub mod coco;
pub mod createml;
mod error;
pub mod voc;
pub mod xml_tree;
pub mod yolo;

pub use error::FormatError;
