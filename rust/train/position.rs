//! The engine's books: counters and sums, everything a resume needs besides
//! the model, optimizer, scheduler, scaler, RNG and accumulated gradients.
//! [`LoopState::book`] is the one place they change for a step, whichever
//! way it ran (eager, captured in a CUDA graph, its loss read now or later).

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

/// Where the mean loss of an update's window comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WindowMean {
    /// This rank's booked losses.
    Booked,
    /// The window's losses are not read yet (batched reads): the read that
    /// books them fills the mean ([`LoopState::book_read`]).
    Pending,
    /// Averaged over a process group's ranks.
    Ranks(f64),
}

/// How the update that closed a window ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Update {
    /// Skipped for a non-finite loss or gradient; None while the device's
    /// skip flag is unread (graph mode, batched reads): the read counts it.
    pub skipped: Option<bool>,
    pub mean: WindowMean,
}

/// What a step did, for [`LoopState::book`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    /// One batch ran: forward, loss and, unless `dropped`, backward.
    Batch {
        /// Its loss as read on the host; None while it is pending (batched
        /// reads: [`LoopState::book_read`] books it).
        loss: Option<f64>,
        /// Its loss was non-finite and checked: no backward, the window is bad.
        dropped: bool,
    },
    /// The update closing the current window ran (after a window's last
    /// batch, or on a partial window when the epoch ends).
    Update(Update),
    /// The epoch's data ran out: the position and the epoch's sums reset
    /// (the engine closes a partial window first, as Lightning does).
    EpochEnd,
}

/// An update as booked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Closed {
    pub report: UpdateReport,
    /// Batches in the window it closed.
    pub batches: u64,
}

/// The update a batch whose loss is pending closed: its number and the
/// window's batch count (the read fills in the window's mean).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closes {
    pub step: u64,
    pub micro: u64,
}

impl LoopState {
    /// Books what a step did. Pure: counters and sums only.
    pub fn book(&mut self, o: Outcome) -> Option<Closed> {
        match o {
            Outcome::Batch { loss, dropped } => {
                self.micro += 1;
                self.batch += 1;
                self.window_bad |= dropped;
                if let Some(v) = loss {
                    self.book_loss(v);
                }
                None
            }
            Outcome::Update(u) => {
                let batches = self.micro;
                let pending = u.mean == WindowMean::Pending;
                let loss = match u.mean {
                    WindowMean::Booked => self.window_loss_sum / batches.max(1) as f64,
                    WindowMean::Pending => f64::NAN,
                    WindowMean::Ranks(m) => m,
                };
                let skipped = u.skipped == Some(true);
                if skipped {
                    self.skipped += 1;
                }
                self.step += 1;
                self.next_window(pending);
                Some(Closed {
                    report: UpdateReport {
                        step: self.step,
                        loss,
                        skipped,
                    },
                    batches,
                })
            }
            Outcome::EpochEnd => {
                self.epoch += 1;
                self.batch = 0;
                self.epoch_loss_sum = 0.0;
                self.epoch_batches = 0;
                None
            }
        }
    }

    /// Books a pending batch's loss (and, graph mode, its skip flag) once
    /// read, in order: what [`LoopState::book`] would have booked had it
    /// been read at its step. `closes`: the batch's window closed there, and
    /// its mean is known now.
    pub fn book_read(
        &mut self,
        loss: f64,
        skipped: bool,
        closes: Option<Closes>,
    ) -> Option<UpdateReport> {
        self.book_loss(loss);
        if skipped {
            self.skipped += 1;
        }
        let c = closes?;
        let u = UpdateReport {
            step: c.step,
            loss: self.window_loss_sum / c.micro.max(1) as f64,
            skipped,
        };
        self.window_loss_sum = 0.0;
        Some(u)
    }

    /// A batch loss into the window's sum and, when finite, the epoch's.
    fn book_loss(&mut self, v: f64) {
        self.window_loss_sum += v;
        if v.is_finite() {
            self.epoch_loss_sum += v;
            self.epoch_batches += 1;
        }
    }

    /// A fresh accumulation window (after an update, or a dropped window).
    pub fn reset_window(&mut self) {
        self.micro = 0;
        self.window_loss_sum = 0.0;
        self.window_bad = false;
    }

    /// After an update: a fresh window, except that with the window's
    /// losses still `pending` (batched reads) their sum is left to the read
    /// that books them, which also resets it.
    fn next_window(&mut self, pending: bool) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(loss: f64) -> Outcome {
        Outcome::Batch {
            loss: Some(loss),
            dropped: false,
        }
    }

    const STEPPED: Update = Update {
        skipped: Some(false),
        mean: WindowMean::Booked,
    };

    #[test]
    fn a_normal_batch_advances_the_position_and_the_sums() {
        let mut st = LoopState {
            step: 4,
            batch: 7,
            epoch: 1,
            ..LoopState::default()
        };
        assert_eq!(st.book(batch(2.5)), None);
        assert_eq!(st.book(batch(f64::INFINITY)), None);
        assert_eq!((st.step, st.micro, st.epoch, st.batch), (4, 2, 1, 9));
        // The epoch's sums keep finite losses only; the window's keeps all.
        assert_eq!((st.epoch_loss_sum, st.epoch_batches), (2.5, 1));
        assert!(st.window_loss_sum.is_infinite());
        assert!(
            !st.window_bad,
            "an unchecked non-finite loss is backpropagated"
        );
        // A pending loss moves the position only.
        st.book(Outcome::Batch {
            loss: None,
            dropped: false,
        });
        assert_eq!((st.micro, st.batch, st.epoch_batches), (3, 10, 1));
    }

    #[test]
    fn the_last_batch_of_a_window_closes_it_with_the_mean() {
        let mut st = LoopState::default();
        st.book(batch(1.0));
        st.book(batch(2.0));
        st.book(batch(6.0));
        let c = st.book(Outcome::Update(STEPPED)).expect("closed");
        assert_eq!(c.batches, 3);
        assert_eq!(
            c.report,
            UpdateReport {
                step: 1,
                loss: 3.0,
                skipped: false
            }
        );
        assert_eq!((st.step, st.micro, st.batch, st.skipped), (1, 0, 3, 0));
        assert_eq!((st.window_loss_sum, st.window_bad), (0.0, false));
        assert_eq!((st.epoch_loss_sum, st.epoch_batches), (9.0, 3));
        // Over a process group the ranks' mean is the update's.
        st.book(batch(1.0));
        let u = Update {
            mean: WindowMean::Ranks(0.25),
            ..STEPPED
        };
        assert_eq!(
            st.book(Outcome::Update(u)).expect("closed").report.loss,
            0.25
        );
    }

    #[test]
    fn a_skipped_update_is_counted_and_still_a_step() {
        let mut st = LoopState::default();
        st.book(Outcome::Batch {
            loss: Some(f64::NAN),
            dropped: true,
        });
        assert!(st.window_bad);
        let u = Update {
            skipped: Some(true),
            mean: WindowMean::Booked,
        };
        let c = st.book(Outcome::Update(u)).expect("closed");
        assert!(c.report.skipped && c.report.loss.is_nan());
        assert_eq!(
            (st.step, st.skipped, st.micro, st.window_bad),
            (1, 1, 0, false)
        );
        assert_eq!(st.epoch_batches, 0);
        // Skipped on the device, flag unread: counted when read.
        st.book(Outcome::Batch {
            loss: None,
            dropped: false,
        });
        let u = Update {
            skipped: None,
            mean: WindowMean::Pending,
        };
        let c = st.book(Outcome::Update(u)).expect("closed");
        assert!(!c.report.skipped && c.report.loss.is_nan());
        assert_eq!((st.step, st.skipped), (2, 1));
        let closes = Closes {
            step: c.report.step,
            micro: c.batches,
        };
        let read = st.book_read(f64::NAN, true, Some(closes)).expect("update");
        assert!(read.skipped && read.loss.is_nan() && read.step == 2);
        assert_eq!((st.skipped, st.window_loss_sum), (2, 0.0));
    }

    #[test]
    fn an_epoch_ending_inside_a_window_closes_it_then_resets_the_position() {
        let mut st = LoopState {
            epoch: 2,
            ..LoopState::default()
        };
        // grad_accumulation 4; the epoch has 6 batches: one full window,
        // then two batches of a partial one when the data runs out.
        for (i, v) in [1.0, 1.0, 1.0, 1.0, 4.0, 8.0].into_iter().enumerate() {
            st.book(batch(v));
            if i == 3 {
                st.book(Outcome::Update(STEPPED));
            }
        }
        assert_eq!((st.step, st.micro, st.batch), (1, 2, 6));
        let flushed = st.book(Outcome::Update(STEPPED)).expect("closed");
        assert_eq!((flushed.report.step, flushed.report.loss), (2, 6.0));
        assert_eq!(flushed.batches, 2);
        assert_eq!((st.epoch_loss_sum, st.epoch_batches), (16.0, 6));
        assert_eq!(st.book(Outcome::EpochEnd), None);
        assert_eq!(
            st,
            LoopState {
                step: 2,
                epoch: 3,
                ..LoopState::default()
            }
        );
    }

    #[test]
    fn pending_losses_book_on_read_as_they_would_have_at_their_step() {
        // The same three batches (window of 3), read at the step or later.
        let mut now = LoopState::default();
        let mut later = LoopState::default();
        for v in [1.0, 2.0, 6.0] {
            now.book(batch(v));
            later.book(Outcome::Batch {
                loss: None,
                dropped: false,
            });
        }
        let a = now.book(Outcome::Update(STEPPED)).expect("closed");
        let pending = Update {
            mean: WindowMean::Pending,
            ..STEPPED
        };
        let b = later.book(Outcome::Update(pending)).expect("closed");
        assert_eq!(later.book_read(1.0, false, None), None);
        assert_eq!(later.book_read(2.0, false, None), None);
        let closes = Closes {
            step: b.report.step,
            micro: b.batches,
        };
        assert_eq!(later.book_read(6.0, false, Some(closes)), Some(a.report));
        assert_eq!(now, later);
    }
}
