//! The engine's counters and sums: everything a resume needs besides the
//! model, optimizer, scheduler, scaler, RNG and accumulated gradients.

/// Where the loop stands. Saved whole in training-state files.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LoopState {
    /// Optimizer steps taken (updates, skipped ones included).
    pub step: u64,
    /// Micro-batches into the current accumulation window.
    pub micro: u64,
    /// Epochs completed.
    pub epoch: u64,
    /// Batches consumed in the current epoch.
    pub batch: u64,
    /// Updates skipped for a non-finite loss or gradient.
    pub skipped: u64,
    /// Sum and count of the finite batch losses of the current epoch.
    pub epoch_loss_sum: f64,
    pub epoch_batches: u64,
    /// Sum of the batch losses in the current accumulation window, and
    /// whether one of them was non-finite.
    pub window_loss_sum: f64,
    pub window_bad: bool,
}

impl LoopState {
    /// A fresh accumulation window (after an update, or a dropped window).
    pub fn reset_window(&mut self) {
        self.micro = 0;
        self.window_loss_sum = 0.0;
        self.window_bad = false;
    }

    /// After an update: a fresh window, except that with the window's
    /// losses still `pending` (batched reads) their sum is left to the read
    /// that books them, which also resets it.
    pub fn next_window(&mut self, pending: bool) {
        let sum = self.window_loss_sum;
        self.reset_window();
        if pending {
            self.window_loss_sum = sum;
        }
    }
}

/// One optimizer update, as reported to `report` and the history.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpdateReport {
    /// Optimizer steps taken after this one (1-based number of the update).
    pub step: u64,
    /// Mean of the window's batch losses.
    pub loss: f64,
    pub skipped: bool,
}

/// One batch through the engine.
#[derive(Clone, Copy, Debug)]
pub struct StepReport {
    pub loss: f64,
    /// Set when this batch closed an accumulation window.
    pub update: Option<UpdateReport>,
}

/// What `end_epoch` hands back.
#[derive(Clone, Copy, Debug)]
pub struct EpochSummary {
    /// Epochs completed, this one included (1-based number of the epoch).
    pub epoch: u64,
    /// Mean of its finite batch losses (NaN if none).
    pub loss: f64,
    pub batches: u64,
}
