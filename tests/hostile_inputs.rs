//! Hostile and broken inputs: each must give a clear error (which file, what is wrong)
//! and do no damage (inputs untouched, no partial outputs).

mod common;

use common::{detlab, text};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use detlab::dataset::image_info::{decode_upright_rgb, truncation_warning, TRUNCATED_JPEG};
use detlab::dataset::{read_image_info, ClassList, ImageAnnotation, LabelBox};
use detlab::export::{export_coco, ExportOptions, Layout, SplitMode};
use detlab::formats::{voc, FormatError};
use detlab::geometry::BoxXyxy;

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

/// Every file below `dir` with its bytes, to prove that nothing changed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = walk(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A noisy image, so that most of a JPEG/PNG file is pixel data rather than header.
fn write_image(path: &Path, w: u32, h: u32) {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let v = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)).wrapping_mul(2_654_435_761);
        image::Rgb([(v >> 24) as u8, (v >> 16) as u8, (v >> 8) as u8])
    });
    img.save(path).unwrap();
}

fn write_voc(image: &Path, w: u32, h: u32, boxes: &[[f64; 4]]) {
    let mut ann = ImageAnnotation::new(image.file_name().unwrap().to_string_lossy(), w, h);
    for b in boxes {
        ann.boxes
            .push(LabelBox::new("cola", BoxXyxy::new(b[0], b[1], b[2], b[3])));
    }
    voc::write(&image.with_extension("xml"), &ann, image).unwrap();
}

fn export_options(images: &Path, out: &Path) -> ExportOptions {
    ExportOptions {
        images_dir: images.to_path_buf(),
        labels_dir: None,
        out_dir: out.to_path_buf(),
        classes: ClassList::new(),
        split: SplitMode::None,
        layout: Layout::Plain,
        difficult_as_crowd: false,
        strict: false,
    }
}

// ---------------------------------------------------------------------------------------
// Images: truncated, corrupt, 0×0 and "decompression bomb" headers.

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend(data);
    let crc = crc32(&out[start..]);
    out.extend(crc.to_be_bytes());
}

/// A PNG of a signature, an IHDR claiming `w`×`h` RGB8, an empty IDAT and IEND (valid CRCs).
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    // An (empty) zlib stream, so that the decoder gets as far as reporting the size.
    png_chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x03, 0, 0, 0, 0, 1]);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A JPEG of SOI, a baseline SOF0 claiming `w`×`h` (3 components) and EOI.
fn jpeg_sof(w: u16, h: u16) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08];
    out.extend(h.to_be_bytes());
    out.extend(w.to_be_bytes());
    out.extend([3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xD9]);
    out
}

#[test]
fn truncated_and_corrupt_images_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for ext in ["jpg", "png"] {
        let good = d.join(format!("good.{ext}"));
        write_image(&good, 256, 192);
        let bytes = std::fs::read(&good).unwrap();

        // Cut in the pixel data: the header still reads. PNG decoding fails; the JPEG
        // decoder, like browsers, fills the missing rows with grey (never other sizes).
        let half = d.join(format!("half.{ext}"));
        std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
        assert_eq!(read_image_info(&half).unwrap().width, 256);
        assert_eq!(truncation_warning(&good), None);
        assert_eq!(
            truncation_warning(&half).is_some(),
            ext == "jpg",
            "a cut JPEG is reported (the cut PNG fails to decode instead)"
        );
        match decode_upright_rgb(&half) {
            Err(e) => assert!(e.to_string().contains("half."), "{e}"),
            Ok(img) => {
                assert_eq!(ext, "jpg", "a truncated PNG must not decode");
                assert_eq!(img.dimensions(), (256, 192));
            }
        }

        // Cut inside the header, or garbage after the magic: nothing reads.
        let stub = d.join(format!("stub.{ext}"));
        std::fs::write(&stub, &bytes[..12]).unwrap();
        let corrupt = d.join(format!("corrupt.{ext}"));
        let mut garbage = bytes[..4].to_vec();
        garbage.extend((0..500u32).map(|i| (i * 7919 % 251) as u8));
        std::fs::write(&corrupt, &garbage).unwrap();
        for p in [&stub, &corrupt] {
            let err = read_image_info(p).expect_err("a broken header").to_string();
            assert!(err.contains(&p.display().to_string()), "{err}");
            assert!(decode_upright_rgb(p).is_err(), "{}", p.display());
        }
    }
    // Nothing was written or changed by reading.
    let before = snapshot(d);
    let _ = read_image_info(&d.join("corrupt.png"));
    assert_eq!(snapshot(d), before);

    // `detlab predict` (the shipped model) goes on, names each skipped file and warns
    // about the incomplete JPEG it did predict on.
    let out = tempfile::tempdir().unwrap();
    let o = detlab(&[
        "predict".as_ref(),
        "--threads".as_ref(),
        "1".as_ref(),
        "--images".as_ref(),
        d.as_os_str(),
        "--out".as_ref(),
        out.path().join("pred.json").as_os_str(),
    ]);
    let all = text(&o);
    assert!(o.status.success(), "{all}");
    for skipped in [
        "stub.jpg",
        "corrupt.jpg",
        "half.png",
        "stub.png",
        "corrupt.png",
    ] {
        assert!(
            all.contains(&format!("skipped {}", d.join(skipped).display())),
            "{all}"
        );
    }
    assert!(
        all.contains(&format!(
            "{}: {TRUNCATED_JPEG}",
            d.join("half.jpg").display()
        )),
        "{all}"
    );
    assert_eq!(snapshot(d), before, "predicting changed nothing");
}

/// A complete JPEG (tables, SOF0, SOS, a scan) whose SOF0 then claims `w`×`h`: a decoder
/// reads its whole header, so only a size check can refuse it.
fn jpeg_claiming(dir: &Path, w: u16, h: u16) -> Vec<u8> {
    let small = dir.join("small.jpg");
    write_image(&small, 16, 16);
    let mut b = std::fs::read(&small).unwrap();
    std::fs::remove_file(&small).unwrap();
    // Walk the marker segments after SOI to SOF0: FF C0, length, precision, height, width.
    let mut i = 2;
    loop {
        assert_eq!(b[i], 0xFF, "a marker at byte {i}");
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        if b[i + 1] == 0xC0 {
            b[i + 5..i + 7].copy_from_slice(&h.to_be_bytes());
            b[i + 7..i + 9].copy_from_slice(&w.to_be_bytes());
            return b;
        }
        i += 2 + len;
    }
}

/// The environment variable that turns [`decode_in_a_child_process`] on.
const DECODE_DIR: &str = "DETLAB_TEST_DECODE_DIR";

/// Not a test of its own: the child half of
/// [`zero_and_huge_headers_are_refused_before_allocating`]. With `$DETLAB_TEST_DECODE_DIR`
/// set it decodes every file there and prints `DECODE name: outcome` lines; without it,
/// it does nothing.
#[test]
fn decode_in_a_child_process() {
    let Some(dir) = std::env::var_os(DECODE_DIR) else {
        return;
    };
    let mut files = walk(Path::new(&dir));
    files.sort();
    for p in files {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        match decode_upright_rgb(&p) {
            Ok(img) => println!("DECODE {name}: decoded {:?}", img.dimensions()),
            Err(e) => println!("DECODE {name}: {}", e.reason),
        }
    }
    eprintln!(
        "decoding child: VmPeak {} KiB, VmHWM {} KiB",
        proc_status_kib("VmPeak"),
        proc_status_kib("VmHWM")
    );
}

/// A field of `/proc/self/status` in KiB (`VmSize`, `VmPeak`, ...).
fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line.trim().trim_end_matches("kB").trim().parse().unwrap()
}

#[test]
fn zero_and_huge_headers_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("images");
    std::fs::create_dir_all(&files).unwrap();
    let too_large = |w: u32, h: u32| format!("{w}×{h} pixels is larger than detlab accepts");
    let cases: [(&str, Vec<u8>, String); 6] = [
        // The PNG decoder itself refuses a 0×0 IHDR.
        (
            "zero.png",
            png_header(0, 0),
            "Invalid image dimensions".into(),
        ),
        (
            "bomb.png",
            png_header(100_000, 100_000),
            too_large(100_000, 100_000),
        ),
        // Each side allowed, the area not (900 megapixels).
        (
            "area.png",
            png_header(30_000, 30_000),
            too_large(30_000, 30_000),
        ),
        (
            "wide.png",
            png_header(1_000_000, 1),
            too_large(1_000_000, 1),
        ),
        // The JPEG decoder refuses a 0×0 SOF0.
        (
            "zero.jpg",
            jpeg_sof(0, 0),
            "Image width or height is set to zero".into(),
        ),
        // 4.3 gigapixels (12.9 GB of RGB) behind a header the JPEG decoder accepts (it
        // would allocate the whole buffer): only detlab's own size check refuses it.
        (
            "bomb.jpg",
            jpeg_claiming(dir.path(), 65_535, 65_535),
            too_large(65_535, 65_535),
        ),
    ];
    let mut header_errors = Vec::new();
    for (name, bytes, reason) in &cases {
        let p = files.join(name);
        std::fs::write(&p, bytes).unwrap();
        let err = read_image_info(&p).expect_err("refused");
        assert_eq!(err.path, p.display().to_string());
        assert!(err.reason.contains(reason.as_str()), "{name}: {err}");
        header_errors.push(format!("DECODE {name}: {}", err.reason));
    }

    // Decoding, in a child (this test binary) whose address space is capped at what this
    // process maps now (libtorch and all) plus 4 GiB, far below the 12.9 GB pixel buffer
    // of bomb.jpg: each file fails with the header check's own error (it stopped at the
    // header, before the pixels were allocated), and the child survives the cap (an
    // attempt to allocate the pixels would abort it: "memory allocation ... failed").
    let cap_kib = proc_status_kib("VmSize") + (4 << 20);
    assert!(
        cap_kib < 65_535 * 65_535 * 3 / 1024,
        "the cap ({cap_kib} KiB) would not stop a 65535² RGB buffer"
    );
    let o = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v "$1" && shift && exec "$@""#)
        .arg("sh")
        .arg(cap_kib.to_string())
        .arg(std::env::current_exe().unwrap())
        .args([
            "decode_in_a_child_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DECODE_DIR, &files)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "the decoding child failed:\n{t}");
    // (The first line follows libtest's "test decode_in_a_child_process ... ".)
    let mut decoded: Vec<&str> = t
        .lines()
        .filter_map(|l| l.find("DECODE ").map(|i| &l[i..]))
        .collect();
    decoded.sort_unstable();
    header_errors.sort();
    assert_eq!(decoded, header_errors, "{t}");
}

#[test]
fn export_skips_unreadable_images_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    write_image(&images.join("ok.png"), 64, 48);
    write_voc(&images.join("ok.png"), 64, 48, &[[1.0, 1.0, 20.0, 20.0]]);
    std::fs::write(images.join("bomb.png"), png_header(100_000, 100_000)).unwrap();
    std::fs::write(images.join("truncated.jpg"), &jpeg_sof(64, 48)[..9]).unwrap();
    let before = snapshot(&images);

    let out = dir.path().join("out");
    let summary = export_coco(&export_options(&images, &out), &|_, _| {}).unwrap();
    let mut skipped: Vec<String> = summary
        .skipped
        .iter()
        .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    skipped.sort();
    assert_eq!(skipped, ["bomb.png", "truncated.jpg"]);
    let report = summary.report();
    assert!(
        report.contains("bomb.png") && report.contains("larger than"),
        "{report}"
    );
    assert_eq!(summary.total_images(), 1);
    assert_eq!(snapshot(&images), before);
}

#[test]
fn image_size_disagreeing_with_xml_uses_the_header_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    write_image(&images.join("a.png"), 64, 48);
    write_voc(
        &images.join("a.png"),
        640,
        480,
        &[[10.0, 10.0, 600.0, 400.0]],
    );
    write_image(&images.join("b.png"), 32, 32);
    write_voc(&images.join("b.png"), 32, 32, &[[1.0, 1.0, 20.0, 20.0]]);
    let before = snapshot(&images);

    let out = dir.path().join("out");
    let summary = export_coco(&export_options(&images, &out), &|_, _| {}).unwrap();
    assert_eq!(summary.size_mismatches.len(), 1);
    assert!(summary.size_mismatches[0].path.ends_with("a.png"));
    assert!(
        summary.size_mismatches[0].reason.contains("640×480")
            && summary.size_mismatches[0].reason.contains("64×48")
    );
    assert!(summary.report().contains("warning: label size differs"));
    let coco = detlab::formats::coco::CocoDataset::read(&out.join("instances_train.json")).unwrap();
    let a = coco.images.iter().find(|i| i.file_name == "a.png").unwrap();
    assert_eq!((a.width, a.height), (64, 48));
    // The box is clipped to the real image.
    let ann = coco
        .annotations
        .iter()
        .find(|x| x.image_id == a.id)
        .unwrap();
    assert_eq!(ann.bbox, [10.0, 10.0, 54.0, 38.0]);
    assert_eq!(snapshot(&images), before, "label files are not rewritten");
}

// ---------------------------------------------------------------------------------------
// XML and class files.

#[test]
fn xml_entities_and_huge_text_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<annotation><filename>a.jpg</filename><object><name>&lol3;</name>
<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>"#;
    let external = r#"<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<annotation><filename>&x;</filename></annotation>"#;
    for (name, xml) in [("laughs.xml", laughs), ("external.xml", external)] {
        let p = dir.path().join(name);
        std::fs::write(&p, xml).unwrap();
        let err = voc::read(&p).unwrap_err();
        assert_eq!(err.path(), p);
        let msg = err.to_string();
        assert!(
            msg.contains(name) && msg.contains("unknown entity"),
            "{msg}"
        );
        assert_eq!(std::fs::read_to_string(&p).unwrap(), xml);
    }

    // 16 MiB of text in one element reads as that text (no blow-up, no quadratic work).
    let big = "x".repeat(16 << 20);
    let xml = format!(
        "<annotation><filename>a.jpg</filename><note>{big}</note><size><width>4</width>\
         <height>4</height></size></annotation>"
    );
    let p = dir.path().join("huge.xml");
    std::fs::write(&p, &xml).unwrap();
    let ann = voc::read(&p).unwrap();
    assert_eq!(ann.extra[0].text.len(), big.len());

    // Deep nesting is refused with a position, not a stack overflow.
    let deep = format!("<annotation>{}", "<a>".repeat(100_000));
    let p = dir.path().join("deep.xml");
    std::fs::write(&p, &deep).unwrap();
    let msg = voc::read(&p).unwrap_err().to_string();
    assert!(
        msg.contains("deep.xml") && msg.contains("nesting deeper"),
        "{msg}"
    );
}

#[test]
fn non_utf8_class_and_label_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let classes = dir.path().join("classes.txt");
    std::fs::write(&classes, b"cola\nsprite\nfa\xeftra\n").unwrap();
    let msg = ClassList::read(&classes).unwrap_err().to_string();
    assert!(
        msg.contains("classes.txt") && msg.contains("line 3"),
        "{msg}"
    );

    let xml = dir.path().join("latin1.xml");
    std::fs::write(
        &xml,
        b"<annotation><filename>caf\xe9.jpg</filename></annotation>",
    )
    .unwrap();
    let err = voc::read(&xml).unwrap_err();
    assert!(matches!(err, FormatError::NotUtf8 { .. }), "{err}");
    assert!(err.to_string().contains("latin1.xml"));

    // The CLI refuses before creating anything.
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    write_image(&images.join("a.png"), 8, 8);
    let out = dir.path().join("out");
    let o = detlab(&[
        os("export"),
        os("coco"),
        os("--images"),
        images.as_os_str(),
        os("--classes"),
        classes.as_os_str(),
        os("--out"),
        out.as_os_str(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("classes.txt"), "{}", text(&o));
    assert!(!out.exists(), "no output on a bad class file");
}

// ---------------------------------------------------------------------------------------
// COCO files with duplicate ids or dangling references.

const BAD_COCO: [(&str, &str, &str); 4] = [
    (
        "dup_image.json",
        r#"{"images":[{"id":1,"file_name":"a.jpg","width":8,"height":8},{"id":1,"file_name":"b.jpg","width":8,"height":8}],"annotations":[],"categories":[{"id":1,"name":"x"}]}"#,
        "duplicate image id 1",
    ),
    (
        "dup_ann.json",
        r#"{"images":[{"id":1,"file_name":"a.jpg","width":8,"height":8}],"annotations":[{"id":5,"image_id":1,"category_id":1,"bbox":[0,0,2,2]},{"id":5,"image_id":1,"category_id":1,"bbox":[1,1,2,2]}],"categories":[{"id":1,"name":"x"}]}"#,
        "annotation id 5",
    ),
    (
        "dangling_image.json",
        r#"{"images":[{"id":1,"file_name":"a.jpg","width":8,"height":8}],"annotations":[{"id":1,"image_id":9,"category_id":1,"bbox":[0,0,2,2]}],"categories":[{"id":1,"name":"x"}]}"#,
        "image_id 9",
    ),
    (
        "dangling_category.json",
        r#"{"images":[{"id":1,"file_name":"a.jpg","width":8,"height":8}],"annotations":[{"id":1,"image_id":1,"category_id":4,"bbox":[0,0,2,2]}],"categories":[{"id":1,"name":"x"}]}"#,
        "category_id 4",
    ),
];

#[test]
fn coco_import_refuses_bad_ids_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    for (name, json, reason) in BAD_COCO {
        let p = dir.path().join(name);
        std::fs::write(&p, json).unwrap();
        let out = dir.path().join(format!("out-{name}"));
        let o = detlab(&[
            os("convert"),
            os("--from"),
            os("coco"),
            os("--to"),
            os("voc"),
            os("--coco"),
            p.as_os_str(),
            os("--images"),
            images.as_os_str(),
            os("--out"),
            out.as_os_str(),
        ]);
        let t = text(&o);
        assert!(!o.status.success(), "{name}: {t}");
        assert!(t.contains(name) && t.contains(reason), "{name}: {t}");
        assert!(!out.exists(), "{name}: no output folder");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), json);
    }
}

#[test]
fn coco_eval_refuses_dangling_and_duplicate_annotations() {
    let dir = tempfile::tempdir().unwrap();
    let dt = dir.path().join("dt.json");
    std::fs::write(&dt, "[]").unwrap();
    // pycocotools keeps duplicate image ids (the evaluator matches it); the rest are errors.
    for (name, json, reason) in &BAD_COCO[1..] {
        let gt = dir.path().join(name);
        std::fs::write(&gt, json).unwrap();
        let o = detlab(&[
            os("eval"),
            os("--gt"),
            gt.as_os_str(),
            os("--dt"),
            dt.as_os_str(),
        ]);
        let t = text(&o);
        assert!(!o.status.success(), "{name}: {t}");
        assert!(t.contains(name) && t.contains(reason), "{name}: {t}");
    }
    // A detection for an image the GT lacks.
    let gt = dir.path().join("gt.json");
    std::fs::write(
        &gt,
        r#"{"images":[{"id":1}],"annotations":[],"categories":[{"id":1}]}"#,
    )
    .unwrap();
    std::fs::write(
        &dt,
        r#"[{"image_id":2,"category_id":1,"bbox":[0,0,1,1],"score":0.5}]"#,
    )
    .unwrap();
    let o = detlab(&[
        os("eval"),
        os("--gt"),
        gt.as_os_str(),
        os("--dt"),
        dt.as_os_str(),
    ]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("dt.json"), "{t}");
}

// ---------------------------------------------------------------------------------------
// Checkpoints for another architecture, or with NaNs.

/// Writes `d0.pth` (only the tensors the provisional D0 check pins, 2 classes) and
/// `nan.pth` (the same with one NaN) with the venv's PyTorch. `false` only when there is
/// no venv (reported by [`common::venv_python`]); a venv whose Python cannot run the
/// script (no torch, a bug in the script) fails the test with Python's stderr.
fn write_checkpoints(dir: &Path) -> bool {
    let Some(python) = common::venv_python() else {
        return false;
    };
    let script = r#"
import sys, torch
sd = {}
for l in range(3):
    sd[f"bifpn.{l}.conv6_up.pointwise_conv.conv.weight"] = torch.zeros(64, 64, 1, 1)
for head, out in (("regressor", 36), ("classifier", 18)):
    sd[f"{head}.conv_list.2.pointwise_conv.conv.weight"] = torch.zeros(64, 64, 1, 1)
    sd[f"{head}.header.pointwise_conv.conv.weight"] = torch.zeros(out, 64, 1, 1)
    sd[f"{head}.header.pointwise_conv.conv.bias"] = torch.zeros(out)
sd["backbone_net.model._conv_stem.conv.weight"] = torch.ones(32, 3, 3, 3)
torch.save(sd, sys.argv[1] + "/d0.pth")
sd["classifier.header.pointwise_conv.conv.bias"][7] = float("nan")
torch.save(sd, sys.argv[1] + "/nan.pth")
"#;
    let o = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        o.status.success(),
        "{} failed to write the test checkpoints ({}):\n{}",
        python.display(),
        o.status,
        text(&o)
    );
    true
}

#[test]
fn checkpoint_of_another_arch_or_with_nans_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    if !write_checkpoints(dir.path()) {
        return;
    }
    let import = |input: &str, arch: &str, out: &Path| {
        detlab(&[
            os("import-weights"),
            dir.path().join(input).as_os_str(),
            os("--arch"),
            os(arch),
            os("--num-classes"),
            os("2"),
            // The checkpoint holds a handful of the real keys; shapes are still checked.
            os("--partial"),
            os("--out"),
            out.as_os_str(),
        ])
    };
    let ok = dir.path().join("ok.safetensors");
    let o = import("d0.pth", "d0", &ok);
    assert!(o.status.success(), "{}", text(&o));
    assert!(ok.exists());

    let before = snapshot(dir.path());
    let out = dir.path().join("d1.safetensors");
    let o = import("d0.pth", "d1", &out);
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("d0.pth") && t.contains("does not fit"),
        "{t}"
    );
    assert!(!out.exists());

    let out = dir.path().join("nan.safetensors");
    let o = import("nan.pth", "d0", &out);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("nan.pth")
            && t.contains("classifier.header.pointwise_conv.conv.bias")
            && t.contains("non-finite"),
        "{t}"
    );
    assert!(!out.exists());
    assert_eq!(
        snapshot(dir.path()),
        before,
        "inputs untouched, no partial output"
    );
}

// ---------------------------------------------------------------------------------------
// Output folders that cannot be written: read-only, a file in the way, a full disk.

fn small_dataset(images: &Path, n: usize) {
    std::fs::create_dir_all(images).unwrap();
    for i in 0..n {
        let img = images.join(format!("i{i:03}.png"));
        if !img.exists() {
            write_image(&img, 64, 48);
        }
        write_voc(
            &img,
            64,
            48,
            &[[1.0, 1.0, 20.0, 20.0], [5.0, 5.0, 30.0, 40.0]],
        );
    }
}

/// `detlab export coco --images IMAGES --out OUT`'s arguments.
fn export_args<'a>(images: &'a Path, out: &'a Path) -> [&'a std::ffi::OsStr; 6] {
    [
        os("export"),
        os("coco"),
        os("--images"),
        images.as_os_str(),
        os("--out"),
        out.as_os_str(),
    ]
}

fn export_cli(images: &Path, out: &Path) -> Output {
    detlab(&export_args(images, out))
}

#[test]
fn output_path_that_is_a_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    small_dataset(&images, 3);
    let out = dir.path().join("out");
    std::fs::write(&out, b"not a folder").unwrap();
    let o = export_cli(&images, &out);
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("cannot write") && t.contains("out"),
        "{t}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"not a folder");
}

/// The capabilities that let root ignore permission bits.
const PERMISSION_OVERRIDES: &str = "--bounding-set=-dac_override,-dac_read_search,-fowner";

/// Runs `detlab args` so that the mode bits of `read_only` (a 0o555 folder) apply to it.
/// An ordinary user is bound by them already. Root (as CI containers run) is not: there
/// the child runs under `setpriv` (util-linux) without CAP_DAC_OVERRIDE,
/// CAP_DAC_READ_SEARCH and CAP_FOWNER, after a probe has shown that this makes the folder
/// unwritable. `None` (reported through [`common::missing`]) when that cannot be done.
fn detlab_bound_by_permissions(read_only: &Path, args: &[&std::ffi::OsStr]) -> Option<Output> {
    let probe = read_only.join("probe");
    if std::fs::write(&probe, b"").is_err() {
        return Some(detlab(args));
    }
    std::fs::remove_file(&probe).unwrap();
    let o = Command::new("setpriv")
        .args([PERMISSION_OVERRIDES, "--", "sh", "-c"])
        .arg(r#"if (: > "$1/probe") 2>/dev/null; then echo WRITABLE; else echo REFUSED; fi"#)
        .arg("sh")
        .arg(read_only)
        .output();
    let probed = match &o {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => format!("setpriv failed: {}", text(o)),
        Err(e) => format!("cannot run setpriv: {e}"),
    };
    if probed != "REFUSED" {
        let _ = std::fs::remove_file(&probe);
        common::missing(format!(
            "running as root, and `setpriv {PERMISSION_OVERRIDES}` does not make a 0o555 \
             folder unwritable ({probed}); the read-only-folder test needs it"
        ));
        return None;
    }
    Some(
        Command::new("setpriv")
            .args([PERMISSION_OVERRIDES, "--"])
            .arg(env!("CARGO_BIN_EXE_detlab-torch"))
            .args(args)
            .output()
            .expect("run detlab under setpriv"),
    )
}

#[test]
fn read_only_output_folder_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    small_dataset(&images, 3);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("instances_train.json"), b"old").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o555)).unwrap();
    let o = detlab_bound_by_permissions(&out, &export_args(&images, &out));
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
    let Some(o) = o else { return };
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains(&format!("cannot write {}", out.display())) && t.contains("Permission denied"),
        "{t}"
    );
    assert_eq!(
        std::fs::read(out.join("instances_train.json")).unwrap(),
        b"old"
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
}

/// A full disk, simulated with a file-size limit (`ulimit -f`, SIGXFSZ ignored so that
/// writes fail with EFBIG as they would with ENOSPC): the old output stays whole and no
/// temp file is left.
#[test]
fn full_disk_keeps_the_old_output() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    small_dataset(&images, 40);
    let out = dir.path().join("out");
    let o = export_cli(&images, &out);
    assert!(o.status.success(), "{}", text(&o));
    let before = snapshot(&out);
    assert!(before.iter().any(|(_, b)| b.len() > 2048));

    small_dataset(&images, 41);
    let o = Command::new("sh")
        .arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f 2 && exec "$@""#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_detlab-torch"))
        .args([os("export"), os("coco"), os("--images"), images.as_os_str()])
        .args([os("--out"), out.as_os_str()])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("cannot write") && t.contains("instances_train.json"),
        "{t}"
    );
    assert_eq!(
        snapshot(&out),
        before,
        "old output untouched, no temp file left"
    );
}

/// A real ENOSPC (from /dev/full) inside an atomic write: the error comes back and the
/// destination is untouched. (/dev/full itself is never the destination: the temp file
/// would be created in /dev.)
#[test]
fn enospc_during_an_atomic_write_keeps_the_old_file() {
    use std::io::Write;
    // Some sandboxes have no /dev/full; CI's container has (there its absence fails).
    let mut full = require!(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .ok(),
        "/dev/full cannot be opened for writing"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("labels.xml");
    std::fs::write(&p, b"old").unwrap();
    let err = detlab::atomic::write_atomic_with(&p, |f| {
        f.write_all(b"new, partial")?;
        full.write_all(b"x")?;
        full.flush()
    })
    .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(28), "{err}"); // ENOSPC
    assert_eq!(std::fs::read(&p).unwrap(), b"old");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

// ---------------------------------------------------------------------------------------
// Issue 21: ways to lose labels without a word (defects 2, 3, 4, 7–12 and 13's eval ids).

/// `detlab convert ARGS...`.
fn convert_cli(args: &[&std::ffi::OsStr]) -> Output {
    detlab(&[&[os("convert")], args].concat())
}

/// A YOLO folder: `n` images `y{i}.png` (64×48) with `y{i}.txt` and `classes.txt`.
fn yolo_folder(dir: &Path, n: usize, classes: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("classes.txt"), classes).unwrap();
    for i in 0..n {
        write_image(&dir.join(format!("y{i}.png")), 64, 48);
        std::fs::write(
            dir.join(format!("y{i}.txt")),
            "0 0.5 0.5 0.25 0.25\n1 0.25 0.25 0.125 0.125\n",
        )
        .unwrap();
    }
}

/// Defect 2: `convert --to voc --out` the YOLO folder itself emptied `classes.txt`, which
/// broke every YOLO file beside it; `--from coco` too.
#[test]
fn convert_into_a_yolo_folder_keeps_its_classes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("yolo");
    yolo_folder(&d, 3, "Cola\nSprite\n");
    let o = convert_cli(&[
        os("--from"),
        os("yolo"),
        os("--to"),
        os("voc"),
        os("--images"),
        d.as_os_str(),
        os("--out"),
        d.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(d.join("classes.txt")).unwrap(),
        "Cola\nSprite\n"
    );
    // The YOLO files beside it still read (the VOC files take priority, so read directly).
    let y = detlab::dataset::read_label_file(
        &d.join("y0.png"),
        &d.join("y0.txt"),
        detlab::dataset::LabelFormat::Yolo,
    )
    .unwrap();
    assert_eq!(y.boxes.len(), 2);
    assert_eq!(
        voc::read(&d.join("y0.xml")).unwrap().boxes[1].class_name,
        "Sprite"
    );

    // A COCO import into the same folder keeps the names and appends new ones.
    let coco = dir.path().join("c.json");
    std::fs::write(
        &coco,
        r#"{"images":[{"id":1,"file_name":"y1.png","width":64,"height":48}],"annotations":[{"id":1,"image_id":1,"category_id":7,"bbox":[1,1,5,5]}],"categories":[{"id":7,"name":"Fanta"}]}"#,
    )
    .unwrap();
    let o = convert_cli(&[
        os("--from"),
        os("coco"),
        os("--coco"),
        coco.as_os_str(),
        os("--to"),
        os("voc"),
        os("--images"),
        d.as_os_str(),
        os("--out"),
        d.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(d.join("classes.txt")).unwrap(),
        "Cola\nSprite\nFanta\n"
    );
}

/// Defect 3: `s1/x.xml` and `s2/x.xml` both became `OUT/x.txt` ("converted 2").
#[test]
fn convert_refuses_two_images_into_one_label_file_and_keeps_sub_folders_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    for sub in ["s1", "s2"] {
        std::fs::create_dir_all(images.join(sub)).unwrap();
        let img = images.join(sub).join("x.png");
        write_image(&img, 64, 48);
        write_voc(&img, 64, 48, &[[1.0, 1.0, 20.0, 20.0]]);
    }
    let before = snapshot(&images);
    let out = dir.path().join("out");
    let o = convert_cli(&[
        os("--from"),
        os("voc"),
        os("--to"),
        os("yolo"),
        os("--images"),
        images.as_os_str(),
        os("--out"),
        out.as_os_str(),
    ]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("s1/x.png") && t.contains("s2/x.png") && t.contains("x.txt"),
        "{t}"
    );
    assert!(!out.exists(), "nothing written: {t}");
    assert_eq!(snapshot(&images), before);

    // Into the images folder itself: each label file beside its image.
    let o = convert_cli(&[
        os("--from"),
        os("voc"),
        os("--to"),
        os("createml"),
        os("--images"),
        images.as_os_str(),
        os("--out"),
        images.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(images.join("s1/x.json").is_file() && images.join("s2/x.json").is_file());
    assert!(!images.join("x.json").exists());
}

/// Defect 7: a read-only label file was replaced by `convert` (and the app), its mode
/// reset to 0644. (Enforced from the mode bits, so this holds as root too.)
#[test]
fn convert_refuses_to_replace_a_read_only_label_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("yolo");
    yolo_folder(&d, 2, "Cola\nSprite\n");
    let out = dir.path().join("voc");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("y1.xml"), b"<annotation/>").unwrap();
    std::fs::set_permissions(out.join("y1.xml"), std::fs::Permissions::from_mode(0o444)).unwrap();
    let o = convert_cli(&[
        os("--from"),
        os("yolo"),
        os("--to"),
        os("voc"),
        os("--images"),
        d.as_os_str(),
        os("--out"),
        out.as_os_str(),
    ]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("y1.xml") && t.contains("read-only"), "{t}");
    assert_eq!(std::fs::read(out.join("y1.xml")).unwrap(), b"<annotation/>");
    let mode = std::fs::metadata(out.join("y1.xml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o444);
}

/// Defect 8: a missing `--labels` path, a file, or a symlink loop meant "no labels":
/// `export coco` wrote 0 boxes with exit 0 (even with `--strict`), `convert` "converted 0".
#[test]
fn a_wrong_labels_path_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    small_dataset(&images, 2);
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let looped = dir.path().join("loop");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    let missing = dir.path().join("no-such-folder");
    for (labels, reason) in [
        (&missing, "does not exist"),
        (&file, "is a file"),
        (&looped, "symbolic links"),
    ] {
        let out = dir.path().join("out");
        let o = detlab(
            &[
                &export_args(&images, &out)[..],
                &[os("--labels"), labels.as_os_str(), os("--strict")],
            ]
            .concat(),
        );
        let t = text(&o);
        assert!(!o.status.success(), "export {reason}: {t}");
        assert!(
            t.contains(&labels.display().to_string()) && t.contains(reason),
            "export {reason}: {t}"
        );
        assert!(!out.exists(), "export {reason}: no output");
        let o = convert_cli(&[
            os("--from"),
            os("voc"),
            os("--to"),
            os("yolo"),
            os("--images"),
            images.as_os_str(),
            os("--labels"),
            labels.as_os_str(),
            os("--out"),
            out.as_os_str(),
        ]);
        let t = text(&o);
        assert!(!o.status.success(), "convert {reason}: {t}");
        assert!(t.contains(reason), "convert {reason}: {t}");
        assert!(!out.exists(), "convert {reason}: no output");
    }
}

/// Defect 9: a 0-byte or text-as-.jpg image with a label file went into the COCO file
/// (its size taken from the label), without a warning even with `--strict`.
#[test]
fn export_skips_unreadable_images_that_have_labels() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    small_dataset(&images, 2);
    std::fs::write(images.join("empty.jpg"), b"").unwrap();
    write_voc(&images.join("empty.jpg"), 64, 48, &[[1.0, 1.0, 9.0, 9.0]]);
    std::fs::write(images.join("text.jpg"), b"this is not a JPEG\n").unwrap();
    write_voc(&images.join("text.jpg"), 64, 48, &[[1.0, 1.0, 9.0, 9.0]]);
    let out = dir.path().join("out");
    let o = export_cli(&images, &out);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("skipped files: 2") && t.contains("empty.jpg") && t.contains("text.jpg"),
        "{t}"
    );
    let coco = detlab::formats::coco::CocoDataset::read(&out.join("instances_train.json")).unwrap();
    let names: Vec<&str> = coco.images.iter().map(|i| i.file_name.as_str()).collect();
    assert_eq!(names, ["i000.png", "i001.png"]);
    let o = detlab(&[&export_args(&images, &out)[..], &[os("--strict")]].concat());
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("2 file(s) would be skipped"),
        "{t}"
    );
}

/// Defect 10: `caf\xe9.jpg` was exported as `caf\u{FFFD}.jpg` (a file that does not
/// exist) without a warning; `convert --from coco` then wrote a label for no image.
#[test]
fn non_utf8_image_names_are_reported_not_mangled() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    small_dataset(&images, 1);
    let cafe = images.join(std::ffi::OsStr::from_bytes(b"caf\xe9.png"));
    write_image(&cafe, 64, 48);
    write_voc(&cafe, 64, 48, &[[1.0, 1.0, 9.0, 9.0]]);
    let out = dir.path().join("out");
    let o = export_cli(&images, &out);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("skipped files: 1") && t.contains("not valid UTF-8"),
        "{t}"
    );
    let json = std::fs::read_to_string(out.join("instances_train.json")).unwrap();
    assert!(
        !json.contains('\u{FFFD}') && !json.contains("caf"),
        "{json}"
    );

    // A COCO file naming an image that is not there: reported, no orphan label file.
    let coco = dir.path().join("c.json");
    std::fs::write(
        &coco,
        "{\"images\":[{\"id\":1,\"file_name\":\"caf\u{FFFD}.png\",\"width\":64,\"height\":48},\
         {\"id\":2,\"file_name\":\"i000.png\",\"width\":64,\"height\":48}],\"annotations\":[],\
         \"categories\":[]}",
    )
    .unwrap();
    let labels = dir.path().join("labels");
    let o = convert_cli(&[
        os("--from"),
        os("coco"),
        os("--coco"),
        coco.as_os_str(),
        os("--to"),
        os("voc"),
        os("--images"),
        images.as_os_str(),
        os("--out"),
        labels.as_os_str(),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("skipped") && t.contains("no such image"), "{t}");
    let mut written: Vec<String> = std::fs::read_dir(&labels)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written, ["classes.txt", "i000.xml"]);
}

/// Defect 11: a VOC file with `xmax` = 1e308 was accepted and broke the canvas for the
/// session; now it is refused at load with a message naming the file and the value.
#[test]
fn absurd_voc_coordinates_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("a.png");
    write_image(&img, 64, 48);
    let xml = "<annotation><size><width>64</width><height>48</height></size><object>\
               <name>Cola</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>1e308</xmax>\
               <ymax>9</ymax></bndbox></object></annotation>";
    std::fs::write(dir.path().join("a.xml"), xml).unwrap();
    let err = detlab::dataset::load_labels(&img, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a.xml") && err.contains("<xmax>") && err.contains("outside the range"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.xml")).unwrap(),
        xml
    );
}

/// Defect 12: `convert` passed garbage through: YOLO `1e308` became VOC `xmax
/// 9223372036854775807`, a box wholly left of the image `xmin 1 > xmax -100`, and a VOC
/// box outside the image negative sizes in YOLO.
#[test]
fn convert_clips_boxes_and_refuses_absurd_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("yolo");
    yolo_folder(&d, 2, "Cola\nSprite\n");
    std::fs::write(d.join("y0.txt"), "0 1e308 0.5 0.1 0.1\n").unwrap();
    std::fs::write(d.join("y1.txt"), "0 -0.5 0.5 0.1 0.1\n1 0.5 0.5 0.5 0.5\n").unwrap();
    let out = dir.path().join("voc");
    let o = convert_cli(&[
        os("--from"),
        os("yolo"),
        os("--to"),
        os("voc"),
        os("--images"),
        d.as_os_str(),
        os("--out"),
        out.as_os_str(),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("skipped") && t.contains("y0.txt") && t.contains("1e308"),
        "{t}"
    );
    assert!(t.contains("boxes dropped") && t.contains("y1.png"), "{t}");
    assert!(!out.join("y0.xml").exists());
    let ann = voc::read(&out.join("y1.xml")).unwrap();
    assert_eq!(ann.boxes.len(), 1);
    let [x1, y1, x2, y2] = voc::labelimg_int_box(&ann.boxes[0].bbox);
    assert!(
        x1 <= x2 && y1 <= y2 && x2 <= 64 && y2 <= 48,
        "{:?}",
        ann.boxes[0].bbox
    );

    // VOC boxes partly and wholly outside the image → YOLO without negative sizes.
    let v = dir.path().join("v");
    std::fs::create_dir_all(&v).unwrap();
    let img = v.join("a.png");
    write_image(&img, 64, 48);
    std::fs::write(
        v.join("a.xml"),
        "<annotation><size><width>64</width><height>48</height></size>\
         <object><name>Cola</name><bndbox><xmin>-500</xmin><ymin>1</ymin><xmax>-100</xmax>\
         <ymax>9</ymax></bndbox></object><object><name>Cola</name><bndbox><xmin>50</xmin>\
         <ymin>40</ymin><xmax>90</xmax><ymax>60</ymax></bndbox></object></annotation>",
    )
    .unwrap();
    let out = dir.path().join("y");
    let o = convert_cli(&[
        os("--from"),
        os("voc"),
        os("--to"),
        os("yolo"),
        os("--images"),
        v.as_os_str(),
        os("--out"),
        out.as_os_str(),
    ]);
    let t = text(&o);
    assert!(o.status.success() && t.contains("boxes dropped"), "{t}");
    let lines = std::fs::read_to_string(out.join("a.txt")).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
    for v in lines.split_whitespace().skip(1) {
        let v: f64 = v.parse().unwrap();
        assert!((0.0..=1.0).contains(&v), "{lines}");
    }
}

/// Issue 21, item 13: `eval` accepted duplicate image and category ids (pycocotools
/// merges them silently) that `convert` refuses.
#[test]
fn coco_eval_refuses_duplicate_image_and_category_ids() {
    let dir = tempfile::tempdir().unwrap();
    let dt = dir.path().join("dt.json");
    std::fs::write(&dt, "[]").unwrap();
    for (name, json, reason) in [
        (
            "dup_image.json",
            BAD_COCO[0].1,
            "images[1] (id 1): id 1 is also used by images[0]",
        ),
        (
            "dup_category.json",
            r#"{"images":[{"id":1}],"annotations":[],"categories":[{"id":3,"name":"a"},{"id":3,"name":"b"}]}"#,
            "categories[1] (id 3): id 3 is also used by categories[0]",
        ),
    ] {
        let gt = dir.path().join(name);
        std::fs::write(&gt, json).unwrap();
        let o = detlab(&[
            os("eval"),
            os("--gt"),
            gt.as_os_str(),
            os("--dt"),
            dt.as_os_str(),
        ]);
        let t = text(&o);
        assert!(!o.status.success(), "{name}: {t}");
        assert!(t.contains(name) && t.contains(reason), "{name}: {t}");
    }
}

/// Defect 4, zylo117 layout: a failed export (a full disk, simulated with `ulimit -f`)
/// left the images it had already linked or copied into `datasets/NAME/…`. Now nothing
/// of it is left, and the message says the output folder is unchanged.
#[test]
fn failed_zylo117_export_leaves_no_images_behind() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    small_dataset(&images, 40);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), b"mine").unwrap();
    let before = snapshot(&out);
    let o = Command::new("sh")
        .arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f 2 && exec "$@""#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_detlab-torch"))
        .args(export_args(&images, &out))
        .args([
            "--layout",
            "zylo117",
            "--project",
            "shelf",
            "--val-fraction",
            "0.5",
        ])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert_eq!(
        snapshot(&out),
        before,
        "no image, folder or temp file left: {t}"
    );
    assert!(!out.join("datasets").exists() && !out.join("projects").exists());
    assert!(
        t.contains("cannot write") && t.contains("was changed"),
        "{t}"
    );
}
