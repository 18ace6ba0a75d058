//! Synthetic checkpoints in both formats, well-formed and hostile.

use super::*;
use std::io::Write;

/// A tiny pickle writer for building test files.
struct P(Vec<u8>);

impl P {
    fn new() -> Self {
        P(vec![0x80, 2])
    }
    fn op(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.0.push(b'X');
        self.0.extend((s.len() as u32).to_le_bytes());
        self.op(s.as_bytes())
    }
    fn int(&mut self, i: i64) -> &mut Self {
        if (0..256).contains(&i) {
            self.op(&[b'K', i as u8])
        } else {
            self.0.push(0x8a);
            self.0.push(8);
            self.op(&i.to_le_bytes())
        }
    }
    fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.op(format!("c{module}\n{name}\n").as_bytes())
    }
    fn ints(&mut self, v: &[i64]) -> &mut Self {
        self.op(b"(");
        for &i in v {
            self.int(i);
        }
        self.op(b"t")
    }
    /// `name: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`.
    fn tensor(
        &mut self,
        name: &str,
        storage: &str,
        key: &str,
        numel: i64,
        legacy: bool,
        t: (i64, &[i64], &[i64]),
    ) -> &mut Self {
        self.str(name)
            .global("torch._utils", "_rebuild_tensor_v2")
            .op(b"(");
        self.op(b"(")
            .str("storage")
            .global("torch", storage)
            .str(key)
            .str("cpu")
            .int(numel);
        if legacy {
            self.op(b"N");
        }
        self.op(b"tQ").int(t.0).ints(t.1).ints(t.2).op(&[0x89]);
        self.global("collections", "OrderedDict")
            .op(b")R")
            .op(b"tR")
    }
}

/// (name, storage type, key, numel, (offset, size, stride)) of the sample state_dict.
type Entry = (
    &'static str,
    &'static str,
    &'static str,
    i64,
    (i64, &'static [i64], &'static [i64]),
);
const ENTRIES: [Entry; 4] = [
    ("conv.weight", "FloatStorage", "0", 6, (0, &[2, 3], &[3, 1])),
    (
        "conv.weight_t",
        "FloatStorage",
        "0",
        6,
        (0, &[3, 2], &[1, 3]),
    ),
    ("bn.half", "HalfStorage", "1", 3, (1, &[2], &[1])),
    (
        "bn.num_batches_tracked",
        "LongStorage",
        "2",
        1,
        (0, &[], &[]),
    ),
];

fn storages() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "0",
            [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
        (
            "1",
            [0x3c00u16, 0xc000, 0x3800]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
        ("2", 42i64.to_le_bytes().to_vec()),
    ]
}

fn main_pickle(legacy: bool) -> Vec<u8> {
    let mut p = P::new();
    p.global("collections", "OrderedDict")
        .op(b")R")
        .op(b"q\x00(");
    for (name, st, key, numel, t) in ENTRIES {
        p.tensor(name, st, key, numel, legacy, t);
    }
    // `_metadata` attribute, as torch.save(model.state_dict()) writes it.
    p.op(b"u}").str("_metadata").op(b"}s").op(b"b.");
    p.0
}

fn zip_checkpoint(pickle: &[u8], storages: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("archive/data.pkl", opts).unwrap();
    w.write_all(pickle).unwrap();
    w.start_file("archive/byteorder", opts).unwrap();
    w.write_all(b"little").unwrap();
    for (key, bytes) in storages {
        w.start_file(format!("archive/data/{key}"), opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn legacy_checkpoint(pickle: &[u8], storages: &[(&str, Vec<u8>)], elem: &[usize]) -> Vec<u8> {
    let mut out = vec![
        0x80, 2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.',
    ];
    out.extend(P::new().op(&[b'M', 0xe9, 0x03, b'.']).0.clone());
    out.extend(
        P::new()
            .op(b"}(")
            .str("little_endian")
            .op(&[0x88, b'u', b'.'])
            .0
            .clone(),
    );
    out.extend_from_slice(pickle);
    let mut keys = P::new();
    keys.op(b"](");
    for (k, _) in storages {
        keys.str(k);
    }
    out.extend(keys.op(b"e.").0.clone());
    for ((_, bytes), es) in storages.iter().zip(elem) {
        out.extend(((bytes.len() / es) as u64).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

fn check_sample(tensors: &[CheckpointTensor]) {
    let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "conv.weight",
            "conv.weight_t",
            "bn.half",
            "bn.num_batches_tracked"
        ]
    );
    assert_eq!(tensors[0].to_f32(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(
        (tensors[1].shape.clone(), tensors[1].to_f32()),
        (vec![3, 2], vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0])
    );
    assert_eq!(
        (tensors[2].dtype, tensors[2].to_f32()),
        (DType::F16, vec![-2.0, 0.5])
    );
    assert_eq!(
        (
            tensors[3].dtype,
            tensors[3].shape.len(),
            tensors[3].to_f32()
        ),
        (DType::I64, 0, vec![42.0])
    );
}

#[test]
fn reads_zip_ordered_dict_with_views() {
    let bytes = zip_checkpoint(&main_pickle(false), &storages());
    check_sample(&read_checkpoint_bytes(&bytes).unwrap());
}

#[test]
fn reads_legacy_format() {
    let bytes = legacy_checkpoint(&main_pickle(true), &storages(), &[4, 2, 8]);
    check_sample(&read_checkpoint_bytes(&bytes).unwrap());
}

#[test]
fn reads_wrapped_plain_dicts() {
    // {'epoch': 3, 'model': {'w': tensor}}
    let mut p = P::new();
    p.op(b"}(").str("epoch").int(3).str("model").op(b"}(");
    p.tensor("w", "FloatStorage", "0", 6, false, (2, &[2], &[2]));
    p.op(b"uu.");
    let t = read_checkpoint_bytes(&zip_checkpoint(&p.0, &storages()[..1])).unwrap();
    assert_eq!((t[0].name.as_str(), t[0].to_f32()), ("w", vec![2.0, 4.0]));
}

#[test]
fn every_truncated_legacy_file_is_an_error() {
    let bytes = legacy_checkpoint(&main_pickle(true), &storages(), &[4, 2, 8]);
    for n in (0..bytes.len() - 1).step_by(3) {
        assert!(read_checkpoint_bytes(&bytes[..n]).is_err(), "prefix {n}");
    }
}

#[test]
fn every_truncated_or_corrupted_zip_is_handled() {
    let bytes = zip_checkpoint(&main_pickle(false), &storages());
    for n in (0..bytes.len() - 1).step_by(7) {
        assert!(read_checkpoint_bytes(&bytes[..n]).is_err(), "prefix {n}");
    }
    for i in (0..bytes.len()).step_by(5) {
        let mut b = bytes.clone();
        b[i] ^= 0xa5;
        let _ = read_checkpoint_bytes(&b); // no panic
    }
}

#[test]
fn huge_claimed_storage_is_refused() {
    let mut p = P::new();
    p.op(b"}(");
    p.tensor(
        "w",
        "FloatStorage",
        "0",
        1 << 40,
        false,
        (0, &[1 << 20, 1 << 20], &[1 << 20, 1]),
    );
    p.op(b"u.");
    let err = read_checkpoint_bytes(&zip_checkpoint(&p.0, &storages()[..1])).unwrap_err();
    assert!(matches!(err, ReadError::StorageSize { .. }), "{err}");
    // Legacy: the element count header is checked against what remains.
    let mut p = P::new();
    p.op(b"}(");
    p.tensor("w", "FloatStorage", "0", 1 << 40, true, (0, &[4], &[1]));
    p.op(b"u.");
    let mut bytes = legacy_checkpoint(&p.0, &[("0", vec![0; 16])], &[4]);
    let at = bytes.len() - 24;
    bytes[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let err = read_checkpoint_bytes(&bytes).unwrap_err();
    assert!(err.to_string().contains("ends inside storage"), "{err}");
}

#[test]
fn out_of_bounds_view_and_missing_storage_are_errors() {
    let mut p = P::new();
    p.op(b"}(");
    p.tensor("w", "FloatStorage", "0", 6, false, (4, &[3], &[1]));
    p.op(b"u.");
    let err = read_checkpoint_bytes(&zip_checkpoint(&p.0, &storages()[..1])).unwrap_err();
    assert!(
        matches!(&err, ReadError::BadTensor { name, .. } if name == "w"),
        "{err}"
    );
    let err =
        read_checkpoint_bytes(&zip_checkpoint(&main_pickle(false), &storages()[..2])).unwrap_err();
    assert!(matches!(err, ReadError::MissingStorage { .. }), "{err}");
}

#[test]
fn foreign_files_get_clear_errors() {
    assert!(matches!(
        read_checkpoint_bytes(b"hello world"),
        Err(ReadError::UnknownFormat)
    ));
    let mut tar = vec![0u8; 600];
    tar[257..262].copy_from_slice(b"ustar");
    assert!(matches!(
        read_checkpoint_bytes(&tar),
        Err(ReadError::LegacyTar)
    ));
    let evil = P::new()
        .global("os", "system")
        .str("rm -rf /")
        .op(b"\x85R.")
        .0
        .clone();
    let err = read_checkpoint_bytes(&zip_checkpoint(&evil, &[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("os.system"), "{err}");
    let list = P::new().op(b"].").0.clone();
    assert!(matches!(
        read_checkpoint_bytes(&zip_checkpoint(&list, &[])),
        Err(ReadError::NoStateDict(_))
    ));
    let path = std::path::Path::new("/no/such/file.pth");
    let err = read_checkpoint(path).unwrap_err().to_string();
    assert!(err.contains("/no/such/file.pth"), "{err}");
}

#[test]
fn many_views_of_one_storage_are_capped() {
    // 200 tensors each viewing a whole 40 KB storage: 8 MB of output from a ~60 KB file.
    let big: Vec<u8> = vec![0; 40_000];
    let mut p = P::new();
    p.op(b"}(");
    for i in 0..200 {
        p.tensor(
            &format!("t{i}"),
            "FloatStorage",
            "0",
            10_000,
            false,
            (0, &[10_000], &[1]),
        );
    }
    p.op(b"u.");
    let err = match read_checkpoint_bytes(&zip_checkpoint(&p.0, &[("0", big)])) {
        Ok(t) => panic!("read {} tensors", t.len()),
        Err(e) => e,
    };
    assert!(
        matches!(&err, ReadError::BadTensor { msg, .. } if msg.contains("4x")),
        "{err}"
    );
}

/// Found by the `checkpoint` fuzz target (LeakSanitizer): a legacy file whose pickle puts a
/// dict inside itself (DUP + SETITEMS) leaked it. Now refused, and the cycle freed.
#[test]
fn fuzz_self_containing_dict_is_refused() {
    let hex = "80028a0a6cfc9c46f9206aa850192e80024de9032e80027d710028581000000070726f746f636f6c5f76657273696f6e71014de903580d0000006c6974746c655f656e6469616e710288580a000000747970655f736978657371037d710428580500000073686f727471054b025803000000696e7471064b0458040000006c6f6e6771074b0475752e80027d7100325805000000745f76657273696f6e6d6f64656c71017d7102285808040000612e770000736565642d7a000039333835313832323434363234307107580300000063707571084b0c4e747109514b004b034b0486710a4b323430711168084b0c4e747112514b044b024b028671134b044b89680c2952711e74711f5271205803000000632effffffffffffffffffffffffffffffffffffffffffffff68002400f900000000000038010000000000000003000000000000000c00000000";
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    // The main pickle (from byte 137) is `{}`, DUP, 't_ver', SETITEM, which makes the dict
    // a key of itself, then the unsupported opcode `i` (INST) 17 bytes in: that error is
    // the refusal, and the cycle is freed on the way out (what LeakSanitizer checked).
    let err = match read_checkpoint_bytes(&bytes) {
        Ok(t) => panic!("read {} tensors", t.len()),
        Err(e) => e,
    };
    assert!(
        matches!(
            &err,
            ReadError::Pickle {
                what: "main pickle",
                source: pickle::PickleError::UnsupportedOpcode {
                    opcode: b'i',
                    offset: 17
                },
            }
        ),
        "{err}"
    );
}
