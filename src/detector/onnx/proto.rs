//! The ONNX message types (`ModelProto`, `GraphProto`, `NodeProto`, `TensorProto`, …),
//! generated at build time by `prost-build` from the vendored `proto/onnx.proto`
//! (Apache-2.0, see `proto/README.md`). Encoding is prost's; nothing here is written by
//! hand.

#![allow(missing_docs, clippy::all, clippy::pedantic, rustdoc::all)]

include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
