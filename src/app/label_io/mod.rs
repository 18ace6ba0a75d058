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
//! ours ([`merge_annotations`](super::merge::merge_annotations)); on a conflict ours is
//! saved and theirs is kept beside it as `NAME.theirs.EXT`
//! ([`theirs_path`](super::merge::theirs_path)), and the reply says so. Nothing is
//! overwritten silently. The file work itself is in [`files`].
//!
//! This is a long-lived service with a queue, not a one-shot [`crate::task::Task`]: a
//! panic while serving one request is caught and answered as that request's error.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender, SyncSender};

mod files;

use super::document::Document;
use super::merge::DiskBase;
use super::own_writes::OwnWrites;
use crate::dataset::{load_labels_upright, ClassList, ImageAnnotation, LabelBox, LabelFormat};
use crate::geometry::BoxXyxy;
use files::{check, read_document, write_checked};

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
                load_labels_upright(&image, save_dir.as_deref())
                    .map(|l| l.map(|(l, _)| l.annotation))
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

#[cfg(test)]
mod tests;
