//! Step 1 of the graph: the image input (float32 or uint8, NCHW or NHWC), cast,
//! transposed to NCHW and normalised inside the graph.

use super::builder::{Builder, Map};
use super::names;
use crate::detector::checkpoint::ModelFile;
use crate::detector::onnx::graph::{Attr, Dim, ElemType};
use crate::detector::onnx::options::{ExportOptions, InputDtype, Layout};

impl<'a> Builder<'a> {
    /// The image input: cast, NCHW, normalised.
    pub(super) fn input(&mut self, file: &ModelFile, opts: &ExportOptions, batch: &Dim) -> Map {
        let s = i64::from(file.meta.input_size);
        let elem = match opts.input_dtype {
            InputDtype::Float32 => ElemType::Float,
            InputDtype::Uint8 => ElemType::Uint8,
        };
        let dims = match opts.layout {
            Layout::Nchw => [batch.clone(), Dim::Fixed(3), Dim::Fixed(s), Dim::Fixed(s)],
            Layout::Nhwc => [batch.clone(), Dim::Fixed(s), Dim::Fixed(s), Dim::Fixed(3)],
        };
        self.g.input(names::IMAGES, elem, &dims);
        let mut x = names::IMAGES.to_string();
        if opts.input_dtype == InputDtype::Uint8 {
            x = self.g.op(
                "Cast",
                &[&x],
                vec![("to", Attr::Int(ElemType::Float.code().into()))],
            );
        }
        if opts.layout == Layout::Nhwc {
            x = self.g.op(
                "Transpose",
                &[&x],
                vec![("perm", Attr::Ints(vec![0, 3, 1, 2]))],
            );
        }
        let norm = file.meta.normalization;
        if norm.pixel_scale != 1.0 {
            let ps = self.g.const_f32("pixel_scale", &[], &[norm.pixel_scale]);
            x = self.g.op("Div", &[&x, &ps], vec![]);
        }
        let mean = self.g.const_f32("mean", &[1, 3, 1, 1], &norm.mean);
        x = self.g.op("Sub", &[&x, &mean], vec![]);
        let std = self.g.const_f32("std", &[1, 3, 1, 1], &norm.std);
        x = self.g.op("Div", &[&x, &std], vec![]);
        Map {
            name: x,
            channels: 3,
            h: s,
            w: s,
        }
    }
}
