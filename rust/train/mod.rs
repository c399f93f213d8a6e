//! The training engine: one owner for the loop.
//!
//! [`Engine`] holds the counters (optimizer step, micro-step, epoch, batch in
//! the epoch), the data position, the per-epoch loss sums and the order of a
//! step: schedule → forward → loss → check → backward → unscale → non-finite
//! check → clip → optimizer → scaler update → `end_step`. `fit`, `evaluate`,
//! `predict` and every training style drive it; [`update::Updater`] is the
//! optimizer half, shared with floDl's `Graph::step`.

mod engine;
mod graph_cache;
mod graph_driver;
pub mod graph_step;
mod loss_fn;
mod options;
mod position;
mod reads;
pub mod update;

pub use engine::{Engine, RunLimits, RunReport};
pub use graph_cache::{CaptureKey, GraphMode, WARMUP_STEPS};
pub use graph_driver::GraphDriver;
pub use graph_step::{Blocker, GraphStatus};
pub use loss_fn::{LossCallback, LossFn, StepFn, Target};
pub use options::{NonFinite, ScheduleUnit, TrainerOptions};
pub use position::{EpochSummary, LoopState, StepReport, UpdateReport};
pub use reads::LossReads;
