//! A small builder for ONNX graphs: unique value names, nodes with typed attributes,
//! constant tensors (stored as initializers, little-endian `raw_data`) and typed graph
//! inputs and outputs. It knows nothing about EfficientDet.

use super::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, NodeProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// One dimension of a graph input or output: a fixed size or a named, free one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// A size known when the graph is built.
    Fixed(i64),
    /// A size chosen at run time (e.g. `"batch"`).
    Named(String),
}

/// The element types the exporter uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemType {
    /// `float32`.
    Float,
    /// `uint8`.
    Uint8,
    /// `int64`.
    Int64,
}

impl ElemType {
    /// The `TensorProto.DataType` code.
    pub fn code(self) -> i32 {
        match self {
            ElemType::Float => DataType::Float as i32,
            ElemType::Uint8 => DataType::Uint8 as i32,
            ElemType::Int64 => DataType::Int64 as i32,
        }
    }
}

/// A node attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// One integer.
    Int(i64),
    /// A list of integers.
    Ints(Vec<i64>),
    /// One float.
    Float(f32),
    /// A UTF-8 string.
    Str(String),
    /// A constant tensor (e.g. `ConstantOfShape`'s `value`).
    Tensor(Box<TensorProto>),
}

/// Builds one ONNX graph; see the module documentation.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    next_id: usize,
}

/// A tensor type with a shape, as graph inputs and outputs declare it.
pub fn value_info(name: &str, elem: ElemType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Dim::Fixed(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                Dim::Named(s) => tensor_shape_proto::dimension::Value::DimParam(s.clone()),
            }),
            denotation: None,
        })
        .collect();
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem.code()),
                shape: Some(TensorShapeProto { dim }),
            })),
        }),
        ..Default::default()
    }
}

/// A float32 tensor with these dimensions and values (row-major).
pub fn tensor_f32(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.to_string()),
        dims: dims.to_vec(),
        data_type: Some(ElemType::Float.code()),
        raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

/// An int64 tensor with these dimensions and values (row-major).
pub fn tensor_i64(name: &str, dims: &[i64], values: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.to_string()),
        dims: dims.to_vec(),
        data_type: Some(ElemType::Int64.code()),
        raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

fn attribute(name: &str, attr: Attr) -> AttributeProto {
    let mut a = AttributeProto {
        name: Some(name.to_string()),
        ..Default::default()
    };
    match attr {
        Attr::Int(v) => {
            a.r#type = Some(AttributeType::Int as i32);
            a.i = Some(v);
        }
        Attr::Ints(v) => {
            a.r#type = Some(AttributeType::Ints as i32);
            a.ints = v;
        }
        Attr::Float(v) => {
            a.r#type = Some(AttributeType::Float as i32);
            a.f = Some(v);
        }
        Attr::Str(v) => {
            a.r#type = Some(AttributeType::String as i32);
            a.s = Some(v.into_bytes());
        }
        Attr::Tensor(t) => {
            a.r#type = Some(AttributeType::Tensor as i32);
            a.t = Some(*t);
        }
    }
    a
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// A value name not used before, starting with `hint`.
    pub fn fresh(&mut self, hint: &str) -> String {
        self.next_id += 1;
        format!("{hint}_{}", self.next_id)
    }

    /// Adds a float32 constant and returns its name.
    pub fn const_f32(&mut self, hint: &str, dims: &[i64], values: &[f32]) -> String {
        let name = self.fresh(hint);
        self.initializers.push(tensor_f32(&name, dims, values));
        name
    }

    /// Adds an int64 constant and returns its name.
    pub fn const_i64(&mut self, hint: &str, dims: &[i64], values: &[i64]) -> String {
        let name = self.fresh(hint);
        self.initializers.push(tensor_i64(&name, dims, values));
        name
    }

    /// Adds a node with one output and returns the output's name. An empty input name
    /// stands for an omitted optional input.
    pub fn op(&mut self, op_type: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        let hint = op_type.to_ascii_lowercase();
        let out = self.fresh(&hint);
        self.op_into(op_type, inputs, attrs, &[out.as_str()]);
        out
    }

    /// Adds a node with `n` outputs and returns their names.
    pub fn op_n(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
        n: usize,
    ) -> Vec<String> {
        let hint = op_type.to_ascii_lowercase();
        let outs: Vec<String> = (0..n).map(|_| self.fresh(&hint)).collect();
        let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
        self.op_into(op_type, inputs, attrs, &refs);
        outs
    }

    /// Adds a node writing the given (already chosen) output names.
    pub fn op_into(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
        outputs: &[&str],
    ) {
        let name = self.fresh(&format!("n_{}", op_type.to_ascii_lowercase()));
        self.nodes.push(NodeProto {
            name: Some(name),
            op_type: Some(op_type.to_string()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs.into_iter().map(|(n, a)| attribute(n, a)).collect(),
            ..Default::default()
        });
    }

    /// Declares a graph input.
    pub fn input(&mut self, name: &str, elem: ElemType, dims: &[Dim]) {
        self.inputs.push(value_info(name, elem, dims));
    }

    /// Declares a graph output (a value some node writes).
    pub fn output(&mut self, name: &str, elem: ElemType, dims: &[Dim]) {
        self.outputs.push(value_info(name, elem, dims));
    }

    /// Number of nodes so far.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The finished graph.
    pub fn finish(self, name: &str, doc: &str) -> GraphProto {
        GraphProto {
            name: Some(name.to_string()),
            doc_string: Some(doc.to_string()),
            node: self.nodes,
            initializer: self.initializers,
            input: self.inputs,
            output: self.outputs,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_nodes_recorded() {
        let mut g = GraphBuilder::new();
        let c = g.const_f32("k", &[1], &[2.0]);
        g.input(
            "x",
            ElemType::Float,
            &[Dim::Named("batch".into()), Dim::Fixed(3)],
        );
        let y = g.op("Mul", &["x", &c], vec![]);
        let z = g.op("Mul", &[&y, &c], vec![("foo", Attr::Int(1))]);
        assert_ne!(y, z);
        g.output(
            &z,
            ElemType::Float,
            &[Dim::Named("batch".into()), Dim::Fixed(3)],
        );
        let graph = g.finish("g", "");
        assert_eq!(graph.node.len(), 2);
        assert_eq!(graph.initializer.len(), 1);
        assert_eq!(
            graph.initializer[0].raw_data.as_deref(),
            Some(&2f32.to_le_bytes()[..])
        );
        assert_eq!(graph.node[1].attribute[0].i, Some(1));
    }
}
