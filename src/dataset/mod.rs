//! The annotation data model and dataset folders (no egui, no tch here).

mod annotation;
mod class_list;
pub mod folds;
pub mod image_info;
mod load;
pub mod lookup;
pub mod scan;

pub use annotation::{ImageAnnotation, LabelBox};
pub use class_list::{ClassList, ClassListError};
pub use folds::{FoldError, Folds};
pub use image_info::{fit_boxes_to_image, fit_labels_to_image, read_image_info, ImageInfo};
pub use load::{
    load_labels, load_labels_upright, read_label_file, save_labels, upright_stored_frame,
    LoadedLabels,
};
pub use lookup::{check_label_folder, find_label, label_path, LabelFolderError, LabelFormat};
pub use scan::{is_image_path, scan_images};
