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
//! This is a long-lived service with a queue, not a one-shot [`crate::task::Task`]: a
//! panic while serving one request is caught and answered as that request's error.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender, SyncSender};

use super::document::Document;
use crate::dataset::{
    find_label, load_labels, read_image_info, save_labels, ClassList, ImageAnnotation, LabelFormat,
};

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
        annotation: ImageAnnotation,
    },
    /// Saving failed; `doc` holds the labels that are not on disk.
    SaveFailed {
        image: PathBuf,
        message: String,
        doc: Document,
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
            handle(e.0);
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
}

impl LabelIo {
    /// Starts the thread; it repaints `ctx` after each reply.
    pub fn new(ctx: Option<egui::Context>) -> Self {
        let (requests, work) = channel::<Request>();
        let (answer, replies) = channel();
        let spawned = std::thread::Builder::new()
            .name("detlab-labels".into())
            .spawn(move || {
                for request in work {
                    let Some(reply) = handle(request) else {
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

    /// Asks for `annotation` to be written as the labels of `image`.
    pub fn save(
        &mut self,
        image: &Path,
        save_dir: Option<&Path>,
        format: LabelFormat,
        annotation: ImageAnnotation,
        classes: ClassList,
    ) {
        self.send(Request::Save {
            image: image.to_path_buf(),
            save_dir: save_dir.map(Path::to_path_buf),
            format,
            annotation,
            classes,
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
            self.done_here.extend(handle(e.0));
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

fn handle(request: Request) -> Option<LabelReply> {
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
            mut annotation,
            mut classes,
        } => match guarded(|| {
            write(
                &image,
                save_dir.as_deref(),
                format,
                &mut annotation,
                &mut classes,
            )
        })
        .and_then(|written| written)
        {
            Ok(path) => LabelReply::Saved {
                image,
                path,
                annotation,
            },
            Err(message) => {
                let mut doc = Document::new(image.clone(), annotation, format);
                doc.mark_unsaved();
                LabelReply::SaveFailed {
                    image,
                    message,
                    doc,
                }
            }
        },
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

/// The labels of `image` as a document.
fn read_document(image: &Path, save_dir: Option<&Path>, default_format: LabelFormat) -> Document {
    match load_labels(image, save_dir) {
        Ok(Some(loaded)) => Document::new(image.to_path_buf(), loaded.annotation, loaded.format),
        Ok(None) => Document::new(image.to_path_buf(), blank_annotation(image), default_format),
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

/// Writes the labels, first reading the image size when the annotation lacks it.
fn write(
    image: &Path,
    save_dir: Option<&Path>,
    format: LabelFormat,
    annotation: &mut ImageAnnotation,
    classes: &mut ClassList,
) -> Result<PathBuf, String> {
    if !annotation.has_size() {
        let info = read_image_info(image).map_err(|e| e.to_string())?;
        (annotation.width, annotation.height) = (info.width, info.height);
    }
    save_labels(image, save_dir, format, annotation, classes).map_err(|e| e.to_string())
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
