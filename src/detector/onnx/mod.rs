//! ONNX export of detlab's EfficientDet models (`detlab export-model`, the app's
//! **Export model…**), for serving stacks such as ONNX Runtime, Triton and TensorRT.
//!
//! Pure Rust, no libtorch: the weights are read from the model file, BatchNorms are folded
//! into the convolutions, and the graph is written as ONNX's own protobuf messages
//! (generated from the vendored `proto/onnx.proto` by `prost-build`).
//!
//! - [`proto`]: the ONNX message types.
//! - [`graph`]: a small graph builder (names, nodes, constants, inputs/outputs).
//! - [`efficientdet`]: the network, box decoding and NMS as a graph.
//! - [`metadata`]: the `metadata_props` that describe the input recipe.
//! - [`options`]: the export settings.
//! - [`export`]: model file in, `.onnx` out.

pub mod efficientdet;
pub mod export;
pub mod graph;
pub mod metadata;
pub mod options;
pub mod proto;

pub use efficientdet::{names, GraphError, GraphSummary};
pub use export::{export_model, onnx_bytes, onnx_model, ExportError, ExportReport, OPSET};
pub use options::{ExportOptions, InputDtype, Layout, OptionError, Variant};
