//! Label files read and written on a thread of their own, so that the UI thread never
//! waits on the disk (an atomic save fsyncs, which can take tens of milliseconds).
//!
//! Requests run one at a time in the order they were made, and replies come back in
//! that order: a read always sees every write asked for before it, and writes to a shared
//! file (CreateML's one JSON per folder, YOLO's `classes.txt`) never race. Background jobs
//! that read label files themselves (export, training) first wait for a
//! [`LabelIo::barrier`]; a review run reads each image's labels through a [`LabelReader`],
//! on this thread, so it sees every save asked for before.
//!
//! Every save first checks that the label file is still the version the document was
//! read from (its [`DiskBase`]): when someone else (another window, another labeller on
//! a shared folder, `detlab convert`) changed it meanwhile, their changes are merged with
//! ours ([`merge_annotations`]); on a conflict ours is saved and theirs is kept beside it
//! as `NAME.theirs.EXT` ([`theirs_path`]), and the reply says so. Nothing is overwritten
//! silently.
//!
//! This is a long-lived service with a queue, not a one-shot [`crate::task::Task`]: a
//! panic while serving one request is caught and answered as that request's error.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender, SyncSender};

use super::document::Document;
use super::merge::{merge_annotations, same_labels, theirs_path, DiskBase, FileStamp};
use super::own_writes::OwnWrites;
use crate::dataset::{
    find_label, label_path, load_labels, read_image_info, read_label_file, save_labels, ClassList,
    ImageAnnotation, LabelBox, LabelFormat,
};
use crate::geometry::BoxXyxy;

/// Why labels are being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadPurpose {
    /// To edit them: they become the current document.
    Open,
    /// To merge their boxes into the current document (copy the previous image's boxes).
    CopyInto,
}

/// What the thread answers, in request order.
#[derive(Debug)]
pub enum LabelReply {
    /// The labels of `image` as a document (a blank one for an image without labels; a
    /// read-only one with the error when its label file cannot be read).
    Loaded {
        ticket: u64,
        purpose: LoadPurpose,
        image: PathBuf,
        doc: Document,
    },
    /// The labels of `image` are on disk at `path`.
    Saved {
        image: PathBuf,
        path: PathBuf,
        /// What was written: `sent` with the changes someone else made meanwhile.
        annotation: ImageAnnotation,
        /// What the app asked to save.
        sent: ImageAnnotation,
        /// The file as it is now (the base of the next save).
        base: DiskBase,
        /// Someone else had changed the file since it was read.
        other: Option<OtherWriter>,
    },
    /// A check of the label file of `image` ([`LabelIo::check`]): `found` is the
    /// document as now on disk when the file changed, `None` when it did not.
    Checked {
        image: PathBuf,
        found: Option<Document>,
    },
    /// A relabel of some boxes of an image ([`LabelIo::relabel`]): `missing` of them were
    /// no longer in its labels; `saved` is the reply of the save (`None` when nothing
    /// changed); `error` says why the label file could not be read (nothing written).
    Relabelled {
        image: PathBuf,
        missing: usize,
        error: Option<String>,
        saved: Option<Box<LabelReply>>,
    },
    /// Saving failed; `doc` holds the labels that are not on disk.
    SaveFailed {
        image: PathBuf,
        message: String,
        doc: Document,
    },
}

/// What a save found when someone else had changed the label file since it was read.
#[derive(Clone, Debug, PartialEq)]
pub enum OtherWriter {
    /// Their changes did not conflict with ours: the file holds both.
    Merged,
    /// They changed the same boxes: the file holds ours (with their other changes), and
    /// their whole file is kept at `theirs`; `conflicts` names the boxes.
    Conflict {
        theirs: PathBuf,
        conflicts: Vec<String>,
    },
}

enum Request {
    Load {
        ticket: u64,
        purpose: LoadPurpose,
        image: PathBuf,
        save_dir: Option<PathBuf>,
        default_format: LabelFormat,
    },
    Save {
        image: PathBuf,
        save_dir: Option<PathBuf>,
        format: LabelFormat,
        annotation: ImageAnnotation,
        classes: ClassList,
        base: Option<DiskBase>,
    },
    Check {
        image: PathBuf,
        save_dir: Option<PathBuf>,
        format: LabelFormat,
        base: DiskBase,
    },
    Relabel {
        image: PathBuf,
        save_dir: Option<PathBuf>,
        default_format: LabelFormat,
        boxes: Vec<(usize, BoxXyxy)>,
        label: String,
        classes: ClassList,
    },
    /// Answered (on its own channel, without a reply) once every earlier request is done.
    Barrier(SyncSender<()>),
    /// A read for another thread, answered on its own channel (not a [`LabelReply`]).
    Read {
        image: PathBuf,
        save_dir: Option<PathBuf>,
        answer: Sender<LabelsRead>,
    },
}

/// What a [`LabelReader`] answers: the image's annotation (`None` without a label file),
/// or why it could not be read.
pub type LabelsRead = Result<Option<ImageAnnotation>, String>;

/// Reads label files on the label thread for another thread (a review run), in order with
/// the app's saves: a read sees every save asked for before it.
#[derive(Clone)]
pub struct LabelReader {
    requests: Sender<Request>,
}

impl LabelReader {
    /// The labels of `image`, read on the label thread (waits for them). Without the
    /// thread they are read here.
    pub fn read(&self, image: &Path, save_dir: Option<&Path>) -> LabelsRead {
        let (answer, wait) = channel();
        let request = Request::Read {
            image: image.to_path_buf(),
            save_dir: save_dir.map(Path::to_path_buf),
            answer,
        };
        if let Err(e) = self.requests.send(request) {
            handle(e.0, &mut OwnWrites::default());
        }
        wait.recv()
            .unwrap_or_else(|_| Err("the label thread stopped".into()))
    }
}

/// The label thread's handle: send requests, poll replies.
pub struct LabelIo {
    requests: Sender<Request>,
    replies: Receiver<LabelReply>,
    /// Replies to requests carried out on the calling thread.
    done_here: VecDeque<LabelReply>,
    in_flight: usize,
    next_ticket: u64,
    /// The writes carried out on the calling thread (when the thread could not start).
    own_writes: OwnWrites,
}

impl LabelIo {
    /// Starts the thread; it repaints `ctx` after each reply.
    pub fn new(ctx: Option<egui::Context>) -> Self {
        let (requests, work) = channel::<Request>();
        let (answer, replies) = channel();
        let spawned = std::thread::Builder::new()
            .name("detlab-labels".into())
            .spawn(move || {
                let mut own_writes = OwnWrites::default();
                for request in work {
                    let Some(reply) = handle(request, &mut own_writes) else {
                        continue;
                    };
                    if answer.send(reply).is_err() {
                        break;
                    }
                    if let Some(ctx) = &ctx {
                        ctx.request_repaint();
                    }
                }
            });
        if let Err(e) = spawned {
            eprintln!("cannot start the label thread: {e}");
        }
        Self {
            requests,
            replies,
            done_here: VecDeque::new(),
            in_flight: 0,
            next_ticket: 1,
            own_writes: OwnWrites::default(),
        }
    }

    /// Asks for the labels of `image`; the reply carries the returned ticket.
    pub fn load(
        &mut self,
        purpose: LoadPurpose,
        image: &Path,
        save_dir: Option<&Path>,
        default_format: LabelFormat,
    ) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.send(Request::Load {
            ticket,
            purpose,
            image: image.to_path_buf(),
            save_dir: save_dir.map(Path::to_path_buf),
            default_format,
        });
        ticket
    }

    /// Asks for `annotation` to be written as the labels of `image`. With a `base` (the
    /// file as the labels were read from it), a file changed since by someone else is
    /// merged, never overwritten; without one (the user chose to overwrite an unreadable
    /// file) it is replaced.
    pub fn save(
        &mut self,
        image: &Path,
        save_dir: Option<&Path>,
        format: LabelFormat,
        annotation: ImageAnnotation,
        classes: ClassList,
        base: Option<DiskBase>,
    ) {
        self.send(Request::Save {
            image: image.to_path_buf(),
            save_dir: save_dir.map(Path::to_path_buf),
            format,
            annotation,
            classes,
            base,
        });
    }

    /// Gives the boxes `boxes` (index and corners as last read) of `image` the class
    /// `label`, on the label thread: it reads the labels (in order with every save asked
    /// for before), finds each box (at its index, else by its corners), and saves them as
    /// [`Self::save`] does, merging with changes someone else made. Answered by
    /// [`LabelReply::Relabelled`]. For an image that is not open in the app.
    pub fn relabel(
        &mut self,
        image: &Path,
        save_dir: Option<&Path>,
        default_format: LabelFormat,
        boxes: Vec<(usize, BoxXyxy)>,
        label: String,
        classes: ClassList,
    ) {
        self.send(Request::Relabel {
            image: image.to_path_buf(),
            save_dir: save_dir.map(Path::to_path_buf),
            default_format,
            boxes,
            label,
            classes,
        });
    }

    /// Asks whether the label file of `image` changed on disk since `base`; answered by
    /// [`LabelReply::Checked`].
    pub fn check(
        &mut self,
        image: &Path,
        save_dir: Option<&Path>,
        format: LabelFormat,
        base: DiskBase,
    ) {
        self.send(Request::Check {
            image: image.to_path_buf(),
            save_dir: save_dir.map(Path::to_path_buf),
            format,
            base,
        });
    }

    /// A handle another thread reads label files with, through this thread.
    pub fn reader(&self) -> LabelReader {
        LabelReader {
            requests: self.requests.clone(),
        }
    }

    /// A channel that receives `()` (or hangs up) once every request made so far has been
    /// carried out: a job that reads label files waits on it, on its own thread.
    pub fn barrier(&self) -> Receiver<()> {
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        // Without the thread, `done` is dropped at once, and so is the wait.
        let _ = self.requests.send(Request::Barrier(done));
        wait
    }

    fn send(&mut self, request: Request) {
        self.in_flight += 1;
        // Without the thread (it could not start), the request is carried out here, so
        // that nothing is lost.
        if let Err(e) = self.requests.send(request) {
            self.done_here.extend(handle(e.0, &mut self.own_writes));
        }
    }

    /// The next reply, if one is ready.
    pub fn poll(&mut self) -> Option<LabelReply> {
        let reply = match self.done_here.pop_front() {
            Some(reply) => reply,
            None => self.replies.try_recv().ok()?,
        };
        self.in_flight -= 1;
        Some(reply)
    }

    /// The next reply, waiting for it; `None` when nothing is in flight.
    pub fn wait(&mut self) -> Option<LabelReply> {
        if self.in_flight == 0 {
            return None;
        }
        let reply = match self.done_here.pop_front() {
            Some(reply) => reply,
            None => self.replies.recv().ok()?,
        };
        self.in_flight -= 1;
        Some(reply)
    }

    /// Whether requests are still being carried out.
    pub fn busy(&self) -> bool {
        self.in_flight > 0
    }
}

fn handle(request: Request, own_writes: &mut OwnWrites) -> Option<LabelReply> {
    Some(match request {
        Request::Load {
            ticket,
            purpose,
            image,
            save_dir,
            default_format,
        } => {
            let doc = guarded(|| read_document(&image, save_dir.as_deref(), default_format))
                .unwrap_or_else(|reason| {
                    let blank = ImageAnnotation::new(String::new(), 0, 0);
                    Document::failed(image.clone(), blank, default_format, reason)
                });
            LabelReply::Loaded {
                ticket,
                purpose,
                image,
                doc,
            }
        }
        Request::Save {
            image,
            save_dir,
            format,
            annotation,
            classes,
            base,
        } => {
            // A base from before this thread's own last writes is stale only by them.
            let base = base.map(|b| own_writes.current(&image, b));
            let reply = save_reply(
                image,
                save_dir.as_deref(),
                format,
                annotation,
                classes,
                base.clone(),
            );
            if let LabelReply::Saved {
                image, base: new, ..
            } = &reply
            {
                own_writes.record(image, base.as_ref(), new);
            }
            reply
        }
        Request::Relabel {
            image,
            save_dir,
            default_format,
            boxes,
            label,
            classes,
        } => guarded(|| {
            relabel(
                image.clone(),
                save_dir.as_deref(),
                default_format,
                &boxes,
                label,
                classes,
            )
        })
        .unwrap_or_else(|reason| LabelReply::Relabelled {
            image,
            missing: boxes.len(),
            error: Some(reason),
            saved: None,
        }),
        Request::Check {
            image,
            save_dir,
            format,
            base,
        } => {
            let found = guarded(|| check(&image, save_dir.as_deref(), format, &base))
                .ok()
                .flatten();
            LabelReply::Checked { image, found }
        }
        Request::Barrier(done) => {
            let _ = done.send(());
            return None;
        }
        Request::Read {
            image,
            save_dir,
            answer,
        } => {
            let read = guarded(|| {
                load_labels(&image, save_dir.as_deref())
                    .map(|l| l.map(|l| l.annotation))
                    .map_err(|e| e.to_string())
            })
            .and_then(|read| read);
            let _ = answer.send(read);
            return None;
        }
    })
}

/// Saves `annotation` as the labels of `image` (see [`LabelIo::save`]); the reply.
fn save_reply(
    image: PathBuf,
    save_dir: Option<&Path>,
    format: LabelFormat,
    mut annotation: ImageAnnotation,
    mut classes: ClassList,
    base: Option<DiskBase>,
) -> LabelReply {
    let sent = annotation.clone();
    match guarded(|| {
        write_checked(
            &image,
            save_dir,
            format,
            &mut annotation,
            &mut classes,
            base.as_ref(),
        )
    })
    .and_then(|written| written)
    {
        Ok((path, new_base, other)) => LabelReply::Saved {
            image,
            path,
            annotation,
            sent,
            base: new_base,
            other,
        },
        Err(message) => {
            // The labels that are not on disk, still based on the file as read.
            let mut doc = Document::new(image.clone(), sent, format);
            doc.base = base;
            doc.mark_unsaved();
            LabelReply::SaveFailed {
                image,
                message,
                doc,
            }
        }
    }
}

/// Reads the labels of `image`, gives `boxes` the class `label` and saves them (see
/// [`LabelIo::relabel`]).
fn relabel(
    image: PathBuf,
    save_dir: Option<&Path>,
    default_format: LabelFormat,
    boxes: &[(usize, BoxXyxy)],
    label: String,
    classes: ClassList,
) -> LabelReply {
    let doc = read_document(&image, save_dir, default_format);
    if let Some(error) = doc.load_error {
        return LabelReply::Relabelled {
            image,
            missing: boxes.len(),
            error: Some(error),
            saved: None,
        };
    }
    let mut annotation = doc.annotation;
    let found = find_boxes(&annotation.boxes, boxes);
    let missing = found.iter().filter(|f| f.is_none()).count();
    let mut changed = false;
    for i in found.into_iter().flatten() {
        if annotation.boxes[i].class_name != label {
            annotation.boxes[i].class_name = label.clone();
            changed = true;
        }
    }
    let saved = changed.then(|| {
        Box::new(save_reply(
            image.clone(),
            save_dir,
            doc.format,
            annotation,
            classes,
            doc.base,
        ))
    });
    LabelReply::Relabelled {
        image,
        missing,
        error: None,
        saved,
    }
}

/// Where each of `wanted` (index and corners as last read) is in `boxes` now: at its
/// index when the corners still match, else the first other box with those corners;
/// `None` when it is gone. No box is found twice.
pub fn find_boxes(boxes: &[LabelBox], wanted: &[(usize, BoxXyxy)]) -> Vec<Option<usize>> {
    let mut taken = vec![false; boxes.len()];
    let mut found = vec![None; wanted.len()];
    // First every box still at its index, then the moved ones.
    for (k, (index, bbox)) in wanted.iter().enumerate() {
        if boxes.get(*index).is_some_and(|b| b.bbox == *bbox) && !taken[*index] {
            taken[*index] = true;
            found[k] = Some(*index);
        }
    }
    for (k, (_, bbox)) in wanted.iter().enumerate() {
        if found[k].is_some() {
            continue;
        }
        if let Some(i) = (0..boxes.len()).find(|&i| !taken[i] && boxes[i].bbox == *bbox) {
            taken[i] = true;
            found[k] = Some(i);
        }
    }
    found
}

/// Runs one request's work; a panic in it (a bug in a reader or writer) becomes that
/// request's error, so the thread lives on and every request still gets its reply.
fn guarded<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(|p| {
        format!(
            "unexpected failure in the label thread: {}",
            crate::task::panic_message(p)
        )
    })
}

/// The labels of `image` as a document, with the file's version as its base.
fn read_document(image: &Path, save_dir: Option<&Path>, default_format: LabelFormat) -> Document {
    // The stamp is taken before the labels are read: if the file changes in between, the
    // next save sees another stamp, re-reads the file and compares labels, so nothing of
    // the newer version is lost.
    let found = find_label(image, save_dir);
    let stamp = found
        .as_ref()
        .and_then(|(p, _)| FileStamp::read(p).ok().flatten())
        .map(|(s, _)| s);
    match load_labels(image, save_dir) {
        Ok(Some(loaded)) => {
            let base = DiskBase {
                path: loaded.path.clone(),
                stamp,
                annotation: loaded.annotation.clone(),
            };
            let mut doc = Document::new(image.to_path_buf(), loaded.annotation, loaded.format);
            doc.base = Some(base);
            doc
        }
        Ok(None) => {
            let annotation = blank_annotation(image);
            let mut doc = Document::new(image.to_path_buf(), annotation.clone(), default_format);
            doc.base = Some(DiskBase {
                path: label_path(image, save_dir, default_format),
                stamp: None,
                annotation,
            });
            doc
        }
        Err(e) => {
            let format = find_label(image, save_dir).map_or(default_format, |(_, f)| f);
            Document::failed(
                image.to_path_buf(),
                blank_annotation(image),
                format,
                e.to_string(),
            )
        }
    }
}

/// Whether the label file of `image` changed since `base`: the document as now on disk
/// when it did, `None` when it did not.
fn check(
    image: &Path,
    save_dir: Option<&Path>,
    format: LabelFormat,
    base: &DiskBase,
) -> Option<Document> {
    let found = find_label(image, save_dir).map(|(p, _)| p);
    let moved = found.as_ref().is_some_and(|p| *p != base.path);
    let now = FileStamp::read(&base.path).ok()?.map(|(s, _)| s);
    if !moved && now == base.stamp {
        return None;
    }
    Some(read_document(image, save_dir, format))
}

/// Writes the labels (first reading the image size when the annotation lacks it), after
/// checking that the file is still `base`: when someone else changed it, their changes
/// are merged into `annotation` (see the module documentation). Returns the file, its new
/// base and what was found.
fn write_checked(
    image: &Path,
    save_dir: Option<&Path>,
    format: LabelFormat,
    annotation: &mut ImageAnnotation,
    classes: &mut ClassList,
    base: Option<&DiskBase>,
) -> Result<(PathBuf, DiskBase, Option<OtherWriter>), String> {
    if !annotation.has_size() {
        let info = read_image_info(image).map_err(|e| e.to_string())?;
        (annotation.width, annotation.height) = (info.width, info.height);
    }
    let target = label_path(image, save_dir, format);
    let other = match base {
        Some(base) => reconcile(image, &target, format, annotation, base)?,
        None => None,
    };
    let path =
        save_labels(image, save_dir, format, annotation, classes).map_err(|e| e.to_string())?;
    // The new base: the file as it is now (stamp first, see `read_document`).
    let stamp = FileStamp::read(&path).ok().flatten().map(|(s, _)| s);
    let on_disk = read_label_file(image, &path, format).unwrap_or_else(|_| annotation.clone());
    let new_base = DiskBase {
        path: path.clone(),
        stamp,
        annotation: on_disk,
    };
    Ok((path, new_base, other))
}

/// Before a save to `target`: when the file is no longer `base`, merges what is there
/// into `annotation` and, on a conflict, keeps their file as `NAME.theirs.EXT`.
fn reconcile(
    image: &Path,
    target: &Path,
    format: LabelFormat,
    annotation: &mut ImageAnnotation,
    base: &DiskBase,
) -> Result<Option<OtherWriter>, String> {
    let now = FileStamp::read(target)
        .map_err(|e| format!("cannot read {} before saving: {e}", target.display()))?;
    // A base for another file (the format changed): that file was expected absent, and
    // whatever is there now was added by someone else.
    let (expected, base_labels) = if base.path == target {
        (base.stamp.as_ref(), base.annotation.clone())
    } else {
        let mut empty = base.annotation.clone();
        empty.boxes.clear();
        empty.verified = false;
        (None, empty)
    };
    let Some((stamp, bytes)) = now else {
        // Deleted meanwhile: ours is written again.
        return Ok(None);
    };
    if Some(&stamp) == expected {
        return Ok(None);
    }
    let keep_theirs = |conflicts: Vec<String>| -> Result<Option<OtherWriter>, String> {
        let theirs = theirs_path(target);
        crate::atomic::write_atomic(&theirs, &bytes).map_err(|e| {
            format!(
                "{} was changed by someone else, and their version cannot be kept as {}: {e}; not saved",
                target.display(),
                theirs.display()
            )
        })?;
        Ok(Some(OtherWriter::Conflict { theirs, conflicts }))
    };
    match read_label_file(image, target, format) {
        // The same labels (rewritten, or another image's entry in a shared file).
        Ok(theirs) if same_labels(&theirs, &base_labels) => Ok(None),
        Ok(theirs) => {
            let merged = merge_annotations(&base_labels, annotation, &theirs);
            *annotation = merged.annotation;
            if merged.conflicts.is_empty() {
                Ok(Some(OtherWriter::Merged))
            } else {
                keep_theirs(merged.conflicts)
            }
        }
        Err(e) => keep_theirs(vec![format!("their file cannot be read: {e}")]),
    }
}

/// An empty annotation for an image without labels (its size from the image header, or
/// 0×0 until it is saved).
fn blank_annotation(path: &Path) -> ImageAnnotation {
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (w, h) = read_image_info(path)
        .map(|i| (i.width, i.height))
        .unwrap_or((0, 0));
    ImageAnnotation::new(name, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::LabelBox;
    use crate::geometry::BoxXyxy;

    fn annotation() -> ImageAnnotation {
        let mut ann = ImageAnnotation::new("a.jpg", 64, 48);
        ann.boxes
            .push(LabelBox::new("Cola", BoxXyxy::new(5.0, 6.0, 30.0, 40.0)));
        ann
    }

    fn save_voc(io: &mut LabelIo, image: &Path) {
        io.save(
            image,
            None,
            LabelFormat::Voc,
            annotation(),
            ClassList::new(),
            None,
        );
    }

    #[test]
    fn requests_run_in_order_and_a_barrier_waits_for_the_saves_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("a.jpg");
        let mut io = LabelIo::new(None);
        save_voc(&mut io, &image);
        let ticket = io.load(LoadPurpose::Open, &image, None, LabelFormat::Yolo);
        io.barrier().recv().unwrap();
        assert!(dir.path().join("a.xml").is_file());
        assert!(matches!(io.wait(), Some(LabelReply::Saved { .. })));
        match io.wait() {
            Some(LabelReply::Loaded { ticket: t, doc, .. }) => {
                assert_eq!(t, ticket);
                assert_eq!(doc.format, LabelFormat::Voc);
                assert_eq!(doc.annotation.boxes, annotation().boxes);
            }
            other => panic!("{other:?}"),
        }
        assert!(!io.busy() && io.wait().is_none());
    }

    #[test]
    fn a_reader_on_another_thread_sees_the_saves_asked_for_before() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("a.jpg");
        let mut io = LabelIo::new(None);
        let reader = io.reader();
        save_voc(&mut io, &image);
        let read = std::thread::spawn(move || reader.read(&image, None))
            .join()
            .unwrap();
        assert_eq!(read.unwrap().unwrap().boxes, annotation().boxes);
        assert!(matches!(io.wait(), Some(LabelReply::Saved { .. })));
        assert!(io.wait().is_none(), "a read answers on its own channel");
    }

    /// Two saves asked for before the first reply (an accept, then a relabel of the
    /// accepted box) carry the same base: the second is not merged with the first as if
    /// someone else had written it (that gave one box of each class).
    #[test]
    fn saves_in_quick_succession_do_not_merge_with_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("a.jpg");
        let mut io = LabelIo::new(None);
        io.load(LoadPurpose::Open, &image, None, LabelFormat::Voc);
        let Some(LabelReply::Loaded { doc, .. }) = io.wait() else {
            panic!("no document")
        };
        let base = doc.base.clone().expect("a base");
        let mut sprite = annotation();
        sprite.boxes[0].class_name = "Sprite".into();
        for ann in [sprite, annotation(), annotation()] {
            let base = Some(base.clone());
            io.save(&image, None, LabelFormat::Voc, ann, ClassList::new(), base);
        }
        for _ in 0..3 {
            match io.wait() {
                Some(LabelReply::Saved {
                    annotation, other, ..
                }) => {
                    assert_eq!(other, None);
                    assert_eq!(annotation.boxes.len(), 1, "{annotation:?}");
                }
                other => panic!("{other:?}"),
            }
        }
        let on_disk = load_labels(&image, None).unwrap().unwrap().annotation;
        assert_eq!(on_disk.boxes, annotation().boxes);
    }

    #[test]
    fn a_save_merges_what_someone_else_wrote_since_the_read() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("a.jpg");
        let mut io = LabelIo::new(None);
        // Read: no label file yet.
        io.load(LoadPurpose::Open, &image, None, LabelFormat::Voc);
        let Some(LabelReply::Loaded { doc, .. }) = io.wait() else {
            panic!("no document")
        };
        let base = doc.base.clone().expect("a base");
        assert!(base.stamp.is_none());
        // Someone else saves a box meanwhile.
        save_voc(&mut io, &image);
        assert!(matches!(
            io.wait(),
            Some(LabelReply::Saved { other: None, .. })
        ));
        // We save another box, based on the read.
        let mut ours = annotation();
        ours.boxes[0] = LabelBox::new("Fanta", BoxXyxy::new(40.0, 6.0, 60.0, 40.0));
        io.save(
            &image,
            None,
            LabelFormat::Voc,
            ours,
            ClassList::new(),
            Some(base),
        );
        match io.wait() {
            Some(LabelReply::Saved {
                annotation: written,
                other,
                base,
                ..
            }) => {
                assert_eq!(other, Some(OtherWriter::Merged));
                assert_eq!(written.boxes.len(), 2);
                assert_eq!(base.annotation.boxes.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        let on_disk = load_labels(&image, None).unwrap().unwrap().annotation;
        assert_eq!(on_disk.boxes.len(), 2, "both boxes are in the file");
    }

    #[test]
    fn a_relabel_finds_moved_boxes_and_saves() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("a.jpg");
        let mut io = LabelIo::new(None);
        let mut two = annotation();
        two.boxes
            .push(LabelBox::new("Cola", BoxXyxy::new(40.0, 6.0, 60.0, 40.0)));
        io.save(&image, None, LabelFormat::Voc, two, ClassList::new(), None);
        assert!(matches!(io.wait(), Some(LabelReply::Saved { .. })));
        // Box 1 as read, and a box that is gone; box 0 is asked for at a stale index.
        let wanted = vec![
            (0, BoxXyxy::new(40.0, 6.0, 60.0, 40.0)),
            (1, BoxXyxy::new(1.0, 1.0, 2.0, 2.0)),
        ];
        let (v, c) = (LabelFormat::Voc, ClassList::new());
        io.relabel(&image, None, v, wanted, "Fanta".into(), c);
        match io.wait() {
            Some(LabelReply::Relabelled {
                missing: 1,
                error: None,
                saved: Some(saved),
                ..
            }) => assert!(matches!(*saved, LabelReply::Saved { .. })),
            other => panic!("{other:?}"),
        }
        let on_disk = load_labels(&image, None).unwrap().unwrap().annotation;
        let names: Vec<&str> = on_disk
            .boxes
            .iter()
            .map(|b| b.class_name.as_str())
            .collect();
        assert_eq!(names, ["Cola", "Fanta"]);
    }

    #[test]
    fn a_failed_save_hands_the_labels_back() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the label file should go: the atomic rename onto it fails.
        std::fs::create_dir(dir.path().join("a.xml")).unwrap();
        let mut io = LabelIo::new(None);
        let image = dir.path().join("a.jpg");
        save_voc(&mut io, &image);
        match io.wait() {
            Some(LabelReply::SaveFailed { doc, message, .. }) => {
                assert!(doc.is_dirty(), "{message}");
                assert_eq!(doc.annotation.boxes, annotation().boxes);
            }
            other => panic!("{other:?}"),
        }
    }
}
