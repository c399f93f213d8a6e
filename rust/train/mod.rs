//! The training engine: one owner for the loop.
//!
//! [`Engine`] holds the counters (optimizer step, micro-step, epoch, batch in
//! the epoch), the data position, the per-epoch loss sums and the order of a
//! step: schedule → forward → loss → check → backward → unscale → non-finite
//! check → clip → optimizer → scaler update → `end_step`. `fit`, `evaluate`,
//! `predict` and every training style drive it. By job: `engine.rs` (the
//! parts and shared plumbing), `step.rs` (one batch, eager or captured),
//! `run.rs` (a run over a loader), `eval.rs` (evaluation, prediction),
//! `position.rs` (the books: [`LoopState::book`] is where counters and sums
//! change), `reads.rs` (losses read later), `update.rs` (the optimizer half,
//! shared with floDl's `Graph::step`).

mod engine;
mod eval;
mod graph_cache;
mod graph_driver;
pub mod graph_step;
mod loss_fn;
mod options;
mod position;
mod reads;
mod run;
mod step;
pub mod update;

pub use engine::Engine;
pub use graph_cache::{CaptureKey, GraphMode, WARMUP_STEPS};
pub use graph_driver::GraphDriver;
pub use graph_step::{Blocker, GraphStatus};
pub use loss_fn::{LossCallback, LossFn, StepFn, Target};
pub use options::{NonFinite, OptionDefault, ScheduleUnit, TrainerOptions, TRAINER_OPTIONS};
pub use position::{
    Closed, Closes, EpochSummary, LoopState, Outcome, StepReport, Update, UpdateReport, WindowMean,
};
pub use reads::LossReads;
pub use run::{OrderKey, RunLimits, RunReport};
