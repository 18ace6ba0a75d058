//! The crop gallery (View → Crop gallery, Ctrl+G): every box of the open folder as a
//! thumbnail, filtered to one class or not, grouped by class and then by look, with a
//! multi-selection that one class key (or the class list) relabels at once. Made for
//! dense shelves: draw generic boxes first, then give whole groups of similar facings
//! their SKU; a crop unlike its neighbours stands out.
//!
//! The crops are read in the background ([`scan`]); the order is computed in the
//! background too ([`grouping`]); relabelling goes through the document for the open
//! image (undoable) and through the label thread for the others ([`assign`]).

pub mod assign;
pub mod descriptor;
pub mod grouping;
pub mod look_class;
pub mod scan;
pub mod selection;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use self::descriptor::Descriptor;
use self::scan::{CropScan, ScanEvent, ScanInput, ScannedCrop};
use self::selection::{ClickKind, Selection};
use super::jobs::{repaint, Job};
use super::AppState;
use crate::geometry::BoxXyxy;

/// How long one frame spends taking in scanned crops (uploading their thumbnails).
const POLL_BUDGET: Duration = Duration::from_millis(6);

/// One box of the folder, as the gallery shows it.
pub struct Crop {
    /// Position of its image in the folder's list when scanned.
    pub image_rank: usize,
    pub image: PathBuf,
    /// The box's index in its image's labels when read.
    pub index: usize,
    /// The box as read (how it is found again when relabelled).
    pub bbox: BoxXyxy,
    /// Its class (updated at once when the gallery relabels it).
    pub class_name: String,
    pub descriptor: Descriptor,
    /// The thumbnail (`None` without a window to upload it to).
    pub texture: Option<egui::TextureHandle>,
    /// The thumbnail's size in pixels.
    pub size: [usize; 2],
}

/// What the gallery window asks for (carried out by [`AppState::gallery_action`]).
#[derive(Clone, Debug, PartialEq)]
pub enum GalleryAction {
    /// Show the gallery (reading the folder's crops the first time).
    Open,
    /// Hide it (its crops are kept until the folder changes or it is reloaded).
    Close,
    /// Read the crops again.
    Reload,
    /// Show every class (`None`) or one.
    SetFilter(Option<String>),
    /// A click on the crop at this position of [`Gallery::shown`].
    Click { at: usize, kind: ClickKind },
    /// Ctrl+A: select every crop shown.
    SelectAll,
    /// Esc: select nothing.
    ClearSelection,
    /// Give the selected crops this class (created if new).
    Assign(String),
    /// Class key `.0` (0-based, class-list order): give the selected crops that class.
    AssignKey(usize),
    /// Double-click: show this crop's image with its box selected (crop id).
    Jump(usize),
}

/// The gallery's state: the crops read so far, what is shown, the selection.
pub struct Gallery {
    /// The window is shown.
    pub visible: bool,
    /// The folder the crops come from.
    pub root: PathBuf,
    /// Every crop read (ids are indices here).
    pub crops: Vec<Crop>,
    /// The class shown (`None`: all).
    pub filter: Option<String>,
    /// The crops shown, in display order (ids).
    pub shown: Vec<usize>,
    /// `shown` is in class-then-look order (else in file order, while reading or
    /// grouping).
    pub grouped: bool,
    pub selection: Selection,
    /// Images and labels that could not be read.
    pub failures: Vec<String>,
    scan: Option<CropScan>,
    /// Images the scan reads, and how many it has read.
    pub progress: (usize, usize),
    /// The grouping in flight: the `shown` it orders.
    order_job: Option<(Vec<usize>, Job<Vec<usize>>)>,
    /// A jump waiting for its image's labels: the image and the box as read.
    pending_jump: Option<(PathBuf, usize, BoxXyxy)>,
}

impl Gallery {
    /// Whether crops are still being read.
    pub fn scanning(&self) -> bool {
        self.scan.is_some()
    }

    /// Whether the order is being computed.
    pub fn grouping(&self) -> bool {
        self.order_job.is_some()
    }

    /// How many crops each class has, by name.
    pub fn class_counts(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for c in &self.crops {
            *counts.entry(c.class_name.as_str()).or_insert(0) += 1;
        }
        counts
    }

    fn matches(&self, crop: &Crop) -> bool {
        self.filter.as_ref().is_none_or(|f| *f == crop.class_name)
    }

    /// The crops matching the filter, in file order.
    fn file_order(&self) -> Vec<usize> {
        let mut ids: Vec<usize> = (0..self.crops.len())
            .filter(|&i| self.matches(&self.crops[i]))
            .collect();
        ids.sort_by_key(|&i| (self.crops[i].image_rank, self.crops[i].index));
        ids
    }
}

impl AppState {
    /// Carries out a gallery action.
    pub fn gallery_action(&mut self, action: GalleryAction) {
        match action {
            GalleryAction::Open => self.open_gallery(false),
            GalleryAction::Reload => self.open_gallery(true),
            GalleryAction::Close => {
                if let Some(g) = &mut self.gallery {
                    g.visible = false;
                }
            }
            GalleryAction::SetFilter(filter) => {
                if let Some(g) = &mut self.gallery {
                    g.filter = filter;
                    g.shown = g.file_order();
                    g.selection.keep_shown(&g.shown);
                    g.grouped = false;
                }
                self.start_grouping();
            }
            GalleryAction::Click { at, kind } => {
                if let Some(g) = &mut self.gallery {
                    g.selection.click(&g.shown, at, kind);
                }
            }
            GalleryAction::SelectAll => {
                if let Some(g) = &mut self.gallery {
                    g.selection.select_all(&g.shown);
                }
            }
            GalleryAction::ClearSelection => {
                if let Some(g) = &mut self.gallery {
                    g.selection.clear();
                }
            }
            GalleryAction::Assign(label) => self.gallery_assign(&label),
            GalleryAction::AssignKey(k) => match self.workspace.classes.name(k) {
                Some(name) => {
                    let name = name.to_string();
                    self.gallery_assign(&name);
                }
                None => self.info(format!("no class {} yet", k + 1)),
            },
            GalleryAction::Jump(id) => self.gallery_jump(id),
        }
    }

    /// Shows the gallery; reads the folder's crops when there are none for this folder
    /// yet, or when `reload`.
    fn open_gallery(&mut self, reload: bool) {
        let Some(session) = &self.workspace.session else {
            self.info("open a folder first (Ctrl+U)");
            return;
        };
        let root = session.root.clone();
        if let Some(g) = self.gallery.as_mut().filter(|g| g.root == root && !reload) {
            g.visible = true;
            return;
        }
        let images: Vec<PathBuf> = session.images.iter().map(|e| e.path.clone()).collect();
        let ws = &self.workspace;
        // Labels held here are newer than their files: the open image's, failed saves.
        let mut in_memory: HashMap<PathBuf, crate::dataset::ImageAnnotation> = ws
            .unsaved
            .iter()
            .map(|(p, d)| (p.clone(), d.annotation.clone()))
            .collect();
        if let Some(doc) = ws.doc.as_ref().filter(|d| d.load_error.is_none()) {
            in_memory.insert(doc.image_path.clone(), doc.annotation.clone());
        }
        let input = ScanInput {
            images,
            save_dir: session.save_dir.clone(),
            in_memory,
            saves_done: ws.labels.barrier(),
        };
        let ctx = self.ctx.clone();
        let scan = CropScan::spawn(input, move || {
            if let Some(ctx) = &ctx {
                ctx.request_repaint();
            }
        });
        let filter = self.gallery.take().and_then(|g| g.filter);
        self.gallery = Some(Gallery {
            visible: true,
            root,
            crops: Vec::new(),
            filter,
            shown: Vec::new(),
            grouped: false,
            selection: Selection::default(),
            failures: Vec::new(),
            progress: (scan.total, 0),
            scan: Some(scan),
            order_job: None,
            pending_jump: None,
        });
    }

    /// Takes in what the crop scan and the grouping have finished (within a frame's
    /// budget), and settles a jump once its image's labels are shown.
    pub fn poll_gallery(&mut self) {
        let root = self.workspace.session.as_ref().map(|s| s.root.clone());
        if self
            .gallery
            .as_ref()
            .is_some_and(|g| Some(&g.root) != root.as_ref())
        {
            // Another folder: its crops are not these.
            self.gallery = None;
        }
        let Some(g) = &mut self.gallery else { return };
        let start = Instant::now();
        let mut finished = false;
        if let Some(scan) = &g.scan {
            g.progress = (scan.total, scan.done());
            while start.elapsed() < POLL_BUDGET {
                match scan.poll() {
                    Ok(Some(ScanEvent::Crops(crops))) => {
                        for crop in crops {
                            let id = g.crops.len();
                            let crop = take_crop(self.ctx.as_ref(), id, crop);
                            let shown = g.filter.as_ref().is_none_or(|f| *f == crop.class_name);
                            g.crops.push(crop);
                            if shown {
                                g.shown.push(id);
                            }
                        }
                    }
                    Ok(Some(ScanEvent::Failed(reason))) => g.failures.push(reason),
                    Ok(None) => break,
                    Err(()) => {
                        finished = true;
                        break;
                    }
                }
            }
        }
        if finished {
            g.scan = None;
            g.shown = g.file_order();
            g.selection.reordered();
            let n = g.crops.len();
            let failed = g.failures.len();
            self.info(format!(
                "crop gallery: {n} box(es){}",
                if failed > 0 {
                    format!(", {failed} image(s) could not be read")
                } else {
                    String::new()
                }
            ));
            self.start_grouping();
        }
        self.poll_grouping();
        self.settle_jump();
    }

    /// Computes the class-then-look order of the crops shown, in the background.
    fn start_grouping(&mut self) {
        let ranks: HashMap<String, usize> = self
            .workspace
            .classes
            .names()
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        let Some(g) = &mut self.gallery else { return };
        if g.scan.is_some() {
            return; // once every crop is in
        }
        let ids = g.file_order();
        let items: Vec<(usize, Descriptor)> = ids
            .iter()
            .map(|&i| {
                let c = &g.crops[i];
                let rank = ranks.get(&c.class_name).copied().unwrap_or(usize::MAX);
                (rank, c.descriptor.clone())
            })
            .collect();
        let job = Job::spawn("gallery-order", repaint(self.ctx.clone()), move |_| {
            let refs: Vec<(usize, &Descriptor)> = items.iter().map(|(r, d)| (*r, d)).collect();
            grouping::order_by_class_then_look(&refs)
        });
        g.order_job = Some((ids, job));
    }

    fn poll_grouping(&mut self) {
        let Some(g) = &mut self.gallery else { return };
        let Some((ids, job)) = &g.order_job else {
            return;
        };
        let Some(result) = job.result() else { return };
        let ids = ids.clone();
        g.order_job = None;
        match result {
            // Only for the crops it was asked for (the filter may have changed since).
            Ok(order) if ids == g.file_order() => {
                g.shown = order.into_iter().map(|k| ids[k]).collect();
                g.grouped = true;
                g.selection.reordered();
            }
            Ok(_) => {}
            Err(e) => self.info(format!("crop gallery: {e}")),
        }
    }
}

/// A scanned crop with its thumbnail uploaded.
fn take_crop(ctx: Option<&egui::Context>, id: usize, crop: ScannedCrop) -> Crop {
    let size = crop.thumb.size;
    let texture = ctx.map(|ctx| {
        ctx.load_texture(
            format!("gallery-crop-{id}"),
            crop.thumb,
            egui::TextureOptions::LINEAR,
        )
    });
    Crop {
        image_rank: crop.image_rank,
        image: crop.image,
        index: crop.index,
        bbox: crop.bbox,
        class_name: crop.class_name,
        descriptor: crop.descriptor,
        texture,
        size,
    }
}
