//! Steps 3 and 4 of the graph: box decoding against the anchors (clipped to the input),
//! and, for the `nms` variant, best-class masking, `NonMaxSuppression` and per-image ranking
//! into padded outputs.

use super::builder::Builder;
use super::names;
use crate::detector::onnx::graph::{tensor_f32, Attr, Dim, ElemType};
use crate::detector::onnx::options::ExportOptions;

impl<'a> Builder<'a> {
    /// Decoded, clipped `[B, N, 4]` boxes `(x1, y1, x2, y2)` from `[B, N, 4]` regressions.
    pub(super) fn decode(&mut self, regression: &str, anchors: &[[f32; 4]], size: f32) -> String {
        let n = anchors.len() as i64;
        // Per anchor, in the f32 order of `box_coding::decode`.
        let col = |f: &dyn Fn(&[f32; 4]) -> f32| anchors.iter().map(f).collect::<Vec<f32>>();
        let cya = col(&|a| (a[0] + a[2]) / 2.0);
        let cxa = col(&|a| (a[1] + a[3]) / 2.0);
        let ha = col(&|a| a[2] - a[0]);
        let wa = col(&|a| a[3] - a[1]);
        let mut konst = |hint: &str, v: &[f32]| self.g.const_f32(hint, &[n, 1], v);
        let (cya, cxa, ha, wa) = (
            konst("anchor_cy", &cya),
            konst("anchor_cx", &cxa),
            konst("anchor_h", &ha),
            konst("anchor_w", &wa),
        );
        let axes = self.g.const_i64("axes", &[1], &[2]);
        let mut part = |k: i64| {
            let start = self.g.const_i64("start", &[1], &[k]);
            let end = self.g.const_i64("end", &[1], &[k + 1]);
            self.g
                .op("Slice", &[regression, &start, &end, &axes], vec![])
        };
        let (dy, dx, dh, dw) = (part(0), part(1), part(2), part(3));
        let ew = self.g.op("Exp", &[&dw], vec![]);
        let w = self.g.op("Mul", &[&ew, &wa], vec![]);
        let eh = self.g.op("Exp", &[&dh], vec![]);
        let h = self.g.op("Mul", &[&eh, &ha], vec![]);
        let ty = self.g.op("Mul", &[&dy, &ha], vec![]);
        let cy = self.g.op("Add", &[&ty, &cya], vec![]);
        let tx = self.g.op("Mul", &[&dx, &wa], vec![]);
        let cx = self.g.op("Add", &[&tx, &cxa], vec![]);
        let two = self.g.const_f32("two", &[], &[2.0]);
        let half_w = self.g.op("Div", &[&w, &two], vec![]);
        let half_h = self.g.op("Div", &[&h, &two], vec![]);
        let zero = self.g.const_f32("zero", &[], &[0.0]);
        let last = self.g.const_f32("last", &[], &[size - 1.0]);
        let x1 = self.g.op("Sub", &[&cx, &half_w], vec![]);
        let x1 = self.g.op("Max", &[&x1, &zero], vec![]);
        let y1 = self.g.op("Sub", &[&cy, &half_h], vec![]);
        let y1 = self.g.op("Max", &[&y1, &zero], vec![]);
        let x2 = self.g.op("Add", &[&cx, &half_w], vec![]);
        let x2 = self.g.op("Min", &[&x2, &last], vec![]);
        let y2 = self.g.op("Add", &[&cy, &half_h], vec![]);
        let y2 = self.g.op("Min", &[&y2, &last], vec![]);
        self.g.op(
            "Concat",
            &[&x1, &y1, &x2, &y2],
            vec![("axis", Attr::Int(2))],
        )
    }

    /// NMS and per-image ranking into padded `[B, max_det]` outputs.
    pub(super) fn select(
        &mut self,
        boxes: &str,
        scores: &str,
        num_classes: usize,
        num_anchors: usize,
        opts: &ExportOptions,
        batch: &Dim,
    ) {
        let g = &mut self.g;
        let max_det = opts.max_detections.min(num_anchors) as i64;
        let best = g.op(
            "ArgMax",
            &[scores],
            vec![("axis", Attr::Int(2)), ("keepdims", Attr::Int(0))],
        );
        let nms_scores = if opts.class_agnostic {
            let axes = g.const_i64("axes", &[1], &[2]);
            let top = g.op(
                "ReduceMax",
                &[scores, &axes],
                vec![("keepdims", Attr::Int(1))],
            );
            g.op(
                "Transpose",
                &[&top],
                vec![("perm", Attr::Ints(vec![0, 2, 1]))],
            )
        } else {
            // Only each anchor's best class competes (as in `Candidates::from_outputs`).
            let best_k = g.op(
                "ArgMax",
                &[scores],
                vec![("axis", Attr::Int(2)), ("keepdims", Attr::Int(1))],
            );
            let classes: Vec<i64> = (0..num_classes as i64).collect();
            let range = g.const_i64("classes", &[num_classes as i64], &classes);
            let is_best = g.op("Equal", &[&best_k, &range], vec![]);
            let minus_one = g.const_f32("minus_one", &[], &[-1.0]);
            let masked = g.op("Where", &[&is_best, scores, &minus_one], vec![]);
            g.op(
                "Transpose",
                &[&masked],
                vec![("perm", Attr::Ints(vec![0, 2, 1]))],
            )
        };
        let score_threshold = g.const_f32("score_threshold", &[], &[opts.score_threshold]);
        let iou_threshold = g.const_f32("iou_threshold", &[], &[opts.iou_threshold]);
        let max_out = g.const_i64("max_per_class", &[1], &[max_det]);
        let selected = g.op(
            "NonMaxSuppression",
            &[
                boxes,
                &nms_scores,
                &max_out,
                &iou_threshold,
                &score_threshold,
            ],
            vec![("center_point_box", Attr::Int(0))],
        );
        // Scores of the kept boxes scattered back over the anchors: [B, classes, N].
        let shape = g.op("Shape", &[&nms_scores], vec![]);
        let zero = Box::new(tensor_f32("value", &[1], &[0.0]));
        let zeros = g.op(
            "ConstantOfShape",
            &[&shape],
            vec![("value", Attr::Tensor(zero))],
        );
        let kept_scores = g.op("GatherND", &[&nms_scores, &selected], vec![]);
        let kept = g.op("ScatterND", &[&zeros, &selected, &kept_scores], vec![]);
        let axes1 = g.const_i64("axes", &[1], &[1]);
        let kept = g.op(
            "ReduceMax",
            &[&kept, &axes1],
            vec![("keepdims", Attr::Int(0))],
        );
        let k = g.const_i64("k", &[1], &[max_det]);
        let top = g.op_n(
            "TopK",
            &[&kept, &k],
            vec![
                ("axis", Attr::Int(1)),
                ("largest", Attr::Int(1)),
                ("sorted", Attr::Int(1)),
            ],
            2,
        );
        let (values, indices) = (&top[0], &top[1]);
        let axes2 = g.const_i64("axes", &[1], &[2]);
        let idx3 = g.op("Unsqueeze", &[indices, &axes2], vec![]);
        let det_boxes = g.op(
            "GatherND",
            &[boxes, &idx3],
            vec![("batch_dims", Attr::Int(1))],
        );
        let det_classes = g.op(
            "GatherElements",
            &[&best, indices],
            vec![("axis", Attr::Int(1))],
        );
        let fzero = g.const_f32("zero", &[], &[0.0]);
        let valid = g.op("Greater", &[values, &fzero], vec![]);
        let valid3 = g.op("Unsqueeze", &[&valid, &axes2], vec![]);
        g.op_into(
            "Where",
            &[&valid3, &det_boxes, &fzero],
            vec![],
            &[names::BOXES],
        );
        g.op_into("Identity", &[values], vec![], &[names::SCORES]);
        let none = g.const_i64("none", &[], &[-1]);
        g.op_into(
            "Where",
            &[&valid, &det_classes, &none],
            vec![],
            &[names::CLASS_IDS],
        );
        let count = g.op(
            "Cast",
            &[&valid],
            vec![("to", Attr::Int(ElemType::Int64.code().into()))],
        );
        g.op_into(
            "ReduceSum",
            &[&count, &axes1],
            vec![("keepdims", Attr::Int(0))],
            &[names::NUM_DETECTIONS],
        );
        let k = Dim::Fixed(max_det);
        g.output(
            names::BOXES,
            ElemType::Float,
            &[batch.clone(), k.clone(), Dim::Fixed(4)],
        );
        g.output(names::SCORES, ElemType::Float, &[batch.clone(), k.clone()]);
        g.output(names::CLASS_IDS, ElemType::Int64, &[batch.clone(), k]);
        g.output(
            names::NUM_DETECTIONS,
            ElemType::Int64,
            std::slice::from_ref(batch),
        );
    }
}
