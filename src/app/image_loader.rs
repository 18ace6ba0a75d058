//! Background image decoding with prefetch, and a texture cache within a memory budget.
//!
//! Worker threads decode (EXIF-upright, downscaled to the GPU's texture limit) and hand
//! the pixels back over a channel; the UI thread only uploads finished images.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};

/// A decoded image ready for upload.
pub struct Decoded {
    /// Full-resolution size after EXIF orientation (box coordinates live here).
    pub full_size: [u32; 2],
    pub pixels: egui::ColorImage,
    /// Shown over the image (a truncated JPEG).
    pub warning: Option<&'static str>,
}

/// What the cache knows about one image.
pub enum ImageSlot {
    Loading,
    Ready {
        texture: egui::TextureHandle,
        full_size: [u32; 2],
        warning: Option<&'static str>,
    },
    Failed(String),
}

struct Queue {
    jobs: VecDeque<PathBuf>,
    shutdown: bool,
}

/// Decodes images on worker threads and keeps their textures.
pub struct ImageLoader {
    queue: Arc<(Mutex<Queue>, Condvar)>,
    results: Receiver<(PathBuf, Result<Decoded, String>)>,
    slots: HashMap<PathBuf, (ImageSlot, u64)>,
    tick: u64,
    budget_bytes: usize,
    workers: Vec<std::thread::JoinHandle<()>>,
    /// The window the textures are uploaded to (and woken by the decoders).
    ctx: egui::Context,
}

impl ImageLoader {
    /// Starts `threads` decoders; images larger than `max_side` are downscaled to fit.
    pub fn new(ctx: &egui::Context, threads: usize, max_side: usize, budget_bytes: usize) -> Self {
        let queue = Arc::new((
            Mutex::new(Queue {
                jobs: VecDeque::new(),
                shutdown: false,
            }),
            Condvar::new(),
        ));
        let (tx, results) = channel();
        let workers: Vec<_> = (0..threads.max(1))
            .filter_map(|i| {
                let queue = queue.clone();
                let tx: Sender<_> = tx.clone();
                let ctx = ctx.clone();
                std::thread::Builder::new()
                    .name(format!("detlab-decode-{i}"))
                    .spawn(move || worker(&queue, &tx, &ctx, max_side))
                    .map_err(|e| eprintln!("cannot start decoder thread {i}: {e}"))
                    .ok()
            })
            .collect();
        Self {
            queue,
            results,
            slots: HashMap::new(),
            tick: 0,
            budget_bytes,
            workers,
            ctx: ctx.clone(),
        }
    }

    /// Asks for `path` (urgent requests go to the front of the queue).
    pub fn request(&mut self, path: &Path, urgent: bool) {
        self.tick += 1;
        if let Some((_, used)) = self.slots.get_mut(path) {
            *used = self.tick;
            if urgent {
                self.bump(path);
            }
            return;
        }
        if self.workers.is_empty() {
            let failed = ImageSlot::Failed("no image decoder thread could be started".into());
            self.slots.insert(path.to_path_buf(), (failed, self.tick));
            return;
        }
        self.slots
            .insert(path.to_path_buf(), (ImageSlot::Loading, self.tick));
        let (lock, cv) = &*self.queue;
        let mut q = lock.lock().unwrap_or_else(|e| e.into_inner());
        if urgent {
            q.jobs.push_front(path.to_path_buf());
        } else {
            q.jobs.push_back(path.to_path_buf());
        }
        cv.notify_one();
    }

    fn bump(&self, path: &Path) {
        let (lock, _) = &*self.queue;
        let mut q = lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = q.jobs.iter().position(|p| p == path) {
            if let Some(p) = q.jobs.remove(i) {
                q.jobs.push_front(p);
            }
        }
    }

    /// Forgets queued prefetches that have not started (when the user jumps far away).
    pub fn cancel_pending(&mut self) {
        let (lock, _) = &*self.queue;
        let mut q = lock.lock().unwrap_or_else(|e| e.into_inner());
        for p in q.jobs.drain(..) {
            self.slots.remove(&p);
        }
    }

    pub fn get(&self, path: &Path) -> Option<&ImageSlot> {
        self.slots.get(path).map(|(s, _)| s)
    }

    /// Drops the cached image (e.g. after the file changed on disk).
    pub fn forget(&mut self, path: &Path) {
        self.slots.remove(path);
    }

    /// Uploads finished decodes; returns whether anything arrived. Keeps `keep` resident.
    pub fn poll(&mut self, keep: Option<&Path>) -> bool {
        let mut any = false;
        while let Ok((path, result)) = self.results.try_recv() {
            any = true;
            let Some((slot, _)) = self.slots.get_mut(&path) else {
                continue;
            };
            *slot = match result {
                Ok(decoded) => {
                    let name = path.to_string_lossy().into_owned();
                    let texture =
                        self.ctx
                            .load_texture(name, decoded.pixels, egui::TextureOptions::LINEAR);
                    ImageSlot::Ready {
                        texture,
                        full_size: decoded.full_size,
                        warning: decoded.warning,
                    }
                }
                Err(reason) => ImageSlot::Failed(reason),
            };
        }
        if any {
            self.evict(keep);
        }
        any
    }

    fn evict(&mut self, keep: Option<&Path>) {
        let bytes = |s: &ImageSlot| match s {
            ImageSlot::Ready { texture, .. } => texture.size()[0] * texture.size()[1] * 4,
            _ => 0,
        };
        let mut total: usize = self.slots.values().map(|(s, _)| bytes(s)).sum();
        while total > self.budget_bytes {
            let oldest = self
                .slots
                .iter()
                .filter(|(p, (s, _))| Some(p.as_path()) != keep && bytes(s) > 0)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(p, _)| p.clone());
            let Some(p) = oldest else { break };
            if let Some((s, _)) = self.slots.remove(&p) {
                total -= bytes(&s);
            }
        }
    }
}

impl Drop for ImageLoader {
    fn drop(&mut self) {
        {
            let (lock, cv) = &*self.queue;
            let mut q = lock.lock().unwrap_or_else(|e| e.into_inner());
            q.shutdown = true;
            q.jobs.clear();
            cv.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker(
    queue: &(Mutex<Queue>, Condvar),
    tx: &Sender<(PathBuf, Result<Decoded, String>)>,
    ctx: &egui::Context,
    max_side: usize,
) {
    loop {
        let path = {
            let (lock, cv) = queue;
            let mut q = lock.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if q.shutdown {
                    return;
                }
                if let Some(p) = q.jobs.pop_front() {
                    break p;
                }
                q = cv.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        // A panic in a decoder is this image's error; the worker lives on.
        let result = std::panic::catch_unwind(|| decode_for_display(&path, max_side))
            .unwrap_or_else(|p| {
                Err(format!(
                    "the decoder failed: {}",
                    crate::task::panic_message(p)
                ))
            });
        if tx.send((path, result)).is_err() {
            return;
        }
        ctx.request_repaint();
    }
}

/// Decodes `path` upright and shrinks it to fit `max_side` (aspect kept).
pub fn decode_for_display(path: &Path, max_side: usize) -> Result<Decoded, String> {
    let rgb = crate::dataset::image_info::decode_upright_rgb(path).map_err(|e| e.reason)?;
    let full_size = [rgb.width(), rgb.height()];
    let longest = rgb.width().max(rgb.height()) as usize;
    let rgb = if longest > max_side {
        let scale = max_side as f64 / longest as f64;
        let w = ((rgb.width() as f64 * scale).floor() as u32).max(1);
        let h = ((rgb.height() as f64 * scale).floor() as u32).max(1);
        image::imageops::resize(&rgb, w, h, image::imageops::FilterType::Triangle)
    } else {
        rgb
    };
    let pixels =
        egui::ColorImage::from_rgb([rgb.width() as usize, rgb.height() as usize], rgb.as_raw());
    Ok(Decoded {
        full_size,
        pixels,
        warning: crate::dataset::image_info::truncation_warning(path),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG cut in its pixel data still shows (grey rows), with the warning the canvas
    /// paints over it; the complete file has none.
    #[test]
    fn a_cut_jpeg_shows_with_a_warning() {
        let dir = std::env::temp_dir().join(format!("detlab-loader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = image::RgbImage::from_fn(96, 64, |x, y| {
            image::Rgb([
                (x * 37 % 251) as u8,
                (y * 91 % 241) as u8,
                ((x ^ y) * 13) as u8,
            ])
        });
        let good = dir.join("good.jpg");
        img.save(&good).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let cut = dir.join("cut.jpg");
        std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let whole = decode_for_display(&good, 4096).unwrap();
        assert_eq!(whole.warning, None);
        let partial = decode_for_display(&cut, 4096).unwrap();
        assert_eq!(partial.full_size, [96, 64]);
        assert_eq!(
            partial.warning,
            Some(crate::dataset::image_info::TRUNCATED_JPEG)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
