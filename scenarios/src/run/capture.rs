//! Crash-point capture: after every mutating call of a lifetime, the crash image of that moment
//! (or every persistence variant of it), with what had been acknowledged before the call.
//!
//! Capture happens inside the disk's observer, synchronously with the call: nothing else runs
//! between a call and its image, so the image and the progress beside it are of one moment.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tally_sim::{CrashModel, OpRecord, SimFs};

use super::drive::Progress;
use super::lock;
use super::spec::{Depth, Images, RunSpec};
use crate::coverage::SharedRecorder;
use crate::oracle::SourceProgress;
use crate::trace::Trace;

/// A crash image waiting to be checked.
pub(super) struct CrashPoint {
    pub op: OpRecord,
    /// Which persistence variant, when a point has several.
    pub variant: Option<String>,
    /// `None` when the run only counts points ([`Depth::Count`]).
    pub image: Option<SimFs>,
    pub progress: BTreeMap<String, SourceProgress>,
    /// The protocol marks that fired while the disk was this image (after this point's call
    /// and before the next mutating one): they count once the image is checked.
    pub marks: Vec<&'static str>,
}

/// The seed of the crash image after call `index` of lifetime `life`: distinct per point,
/// fixed by the run's seed.
pub(crate) fn point_seed(seed: u64, life: u32, index: u64) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream((u64::from(life) << 48) ^ index);
    rng.r#gen()
}

/// Collects the crash points of one lifetime on its disk, and traces every call on it, from
/// [`Capture::install`] to [`Capture::finish`].
pub(super) struct Capture {
    captured: Arc<Mutex<Captured>>,
    images: Images,
    recorder: SharedRecorder,
}

/// What a lifetime's observer has seen so far.
#[derive(Default)]
struct Captured {
    points: Vec<CrashPoint>,
    /// Index of the last call observed.
    last_call: Option<u64>,
    /// Mutating calls observed: each one has its crash points.
    mutating_calls: u64,
    /// Marks fired before the lifetime's first mutating call: they go to its first point.
    early: Vec<&'static str>,
}

impl Capture {
    /// From now on, every call on `disk` is traced, and every mutating one captured.
    pub fn install(
        disk: &SimFs,
        life: u32,
        spec: &RunSpec,
        images: Images,
        progress: &Progress,
        trace: &Trace,
        recorder: &SharedRecorder,
    ) -> Self {
        let captured = Arc::<Mutex<Captured>>::default();
        let (sink, progress, trace) = (captured.clone(), progress.clone(), trace.clone());
        let marks = recorder.clone();
        lock(recorder).capturing = Some(Vec::new());
        let (seed, model) = (spec.seed, spec.model);
        disk.set_observer(move |disk, op| {
            trace.line(format!("L{life} {op}"));
            let mut captured = lock(&sink);
            captured.call(op);
            if !op.kind.is_mutating() {
                return;
            }
            // What fired since the last mutating call saw the disk as that call left it.
            captured.attach(take_marks(&marks));
            let progress = lock(&progress).clone();
            let taken = take(disk, images, model, || point_seed(seed, life, op.index));
            captured.add(op, &progress, taken);
        });
        Self {
            captured,
            images,
            recorder: recorder.clone(),
        }
    }

    /// Stops capturing; returns the points in the order of their calls.
    pub fn finish(self, disk: &SimFs) -> Vec<CrashPoint> {
        disk.set_observer(|_, _| {});
        let mut captured = std::mem::take(&mut *lock(&self.captured));
        captured.attach(take_marks(&self.recorder));
        lock(&self.recorder).capturing = None;
        // One point per mutating call, or, exploring, at least one (`explore::variants`
        // never comes back empty).
        match self.images {
            Images::Exhaustive => {
                debug_assert!(captured.points.len() as u64 >= captured.mutating_calls)
            }
            _ => debug_assert_eq!(captured.points.len() as u64, captured.mutating_calls),
        }
        captured.points
    }
}

/// The marks the recorder holds for the capture.
fn take_marks(recorder: &SharedRecorder) -> Vec<&'static str> {
    lock(recorder)
        .capturing
        .as_mut()
        .map(std::mem::take)
        .unwrap_or_default()
}

impl Captured {
    /// Gives `marks` to the latest point: the disk they saw is that point's.
    fn attach(&mut self, marks: Vec<&'static str>) {
        match self.points.last_mut() {
            Some(point) => point.marks.extend(marks),
            None => self.early.extend(marks),
        }
    }

    /// Every call reaches the observer once, in the order of the disk's op log: the observer
    /// runs synchronously after each call, before the next can start.
    fn call(&mut self, op: &OpRecord) {
        debug_assert!(
            self.last_call.is_none_or(|last| op.index == last + 1),
            "call {op} observed after call #{:?}",
            self.last_call
        );
        self.last_call = Some(op.index);
    }

    fn add(
        &mut self,
        op: &OpRecord,
        progress: &BTreeMap<String, SourceProgress>,
        taken: Vec<(Option<String>, Option<SimFs>)>,
    ) {
        debug_assert!(!taken.is_empty(), "a mutating call without a crash image");
        debug_assert!(
            self.points
                .last()
                .is_none_or(|last| last.op.index < op.index && grew(&last.progress, progress)),
            "crash points in call order, with what was acknowledged never shrinking"
        );
        debug_assert!(
            progress.values().all(|p| p.acked <= p.attempted),
            "rows acknowledged that were never attempted"
        );
        self.mutating_calls += 1;
        for (variant, image) in taken {
            self.points.push(CrashPoint {
                op: op.clone(),
                variant,
                image,
                progress: progress.clone(),
                marks: std::mem::take(&mut self.early),
            });
        }
    }
}

/// The images of the moment, each with its persistence variant when there are several.
/// `seed` is drawn only for an image under the run's model.
fn take(
    disk: &SimFs,
    images: Images,
    model: CrashModel,
    seed: impl FnOnce() -> u64,
) -> Vec<(Option<String>, Option<SimFs>)> {
    match images {
        Images::Sampled | Images::Measure(Depth::Image | Depth::Recover) => {
            vec![(None, Some(disk.crash(model, seed())))]
        }
        Images::Measure(Depth::Clone) => vec![(None, Some(disk.snapshot()))],
        Images::Measure(Depth::Count) => vec![(None, None)],
        Images::Exhaustive => crate::explore::variants(disk, model)
            .into_iter()
            .map(|(variant, plan)| {
                let image = disk
                    .crash_with(&plan)
                    .expect("variants are dependency-closed plans of pending ops");
                (Some(variant), Some(image))
            })
            .collect(),
    }
}

/// Progress only grows: an acknowledgement is never taken back, an attempt never forgotten, so
/// the oracle holds each crash image to at least what it held the one before to.
fn grew(before: &BTreeMap<String, SourceProgress>, now: &BTreeMap<String, SourceProgress>) -> bool {
    before.iter().all(|(source, was)| {
        now.get(source)
            .is_some_and(|is| is.acked >= was.acked && is.attempted >= was.attempted)
    })
}
