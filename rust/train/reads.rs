//! Loss values the engine has not read yet. On CUDA every read of a device
//! value is a host sync that stalls the launch queue, so where nothing on
//! the host has to decide from the loss (no per-step non-finite check, no
//! process group), each step's loss and graph mode's skip flag stay on the
//! device and are read together, in one transfer, when a number is needed:
//! `Trainer.step`'s float, the end of a `fit` chunk, the state, the epoch.

use tch::{Device, Kind, Tensor};

use super::position::{Closes, LoopState, UpdateReport};
use crate::Result;

/// Entries above this are read at once, so a caller that never asks for a
/// number (lazy steps only) still holds a bounded set of device scalars.
pub const MAX_PENDING: usize = 1024;

/// When the engine reads losses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LossReads {
    /// Batched on CUDA when nothing needs the value per step, else per step.
    #[default]
    Auto,
    /// Every step's loss is read right away (one sync per step on CUDA).
    Step,
    /// Batched; a configuration that must read per step is an error.
    Batched,
}

impl LossReads {
    pub fn from_name(name: &str) -> crate::Result<Self> {
        match name {
            "auto" => Ok(LossReads::Auto),
            "step" => Ok(LossReads::Step),
            "batched" => Ok(LossReads::Batched),
            _ => Err(crate::Error::Value(format!(
                "loss reads must be 'auto', 'step' or 'batched', got '{name}'"
            ))),
        }
    }
}

struct Entry {
    /// 0-dim float32 on the device, detached.
    loss: Tensor,
    /// Graph mode without a GradScaler: 1 when the update was skipped.
    flag: Option<Tensor>,
    closes: Option<Closes>,
    /// Keep the closed update for `take_updates` (fit's runs).
    report: bool,
}

/// What a read gives back: the newest loss and every closed update.
#[derive(Debug, Default)]
pub struct Read {
    pub last_loss: Option<f64>,
    pub updates: Vec<UpdateReport>,
}

#[derive(Default)]
pub struct Ledger {
    entries: Vec<Entry>,
    /// Updates read but not yet taken by the run that asked for them.
    kept: Vec<UpdateReport>,
}

impl Ledger {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records one batch's loss (and skip flag) without reading it.
    pub fn push(
        &mut self,
        loss: &Tensor,
        flag: Option<&Tensor>,
        closes: Option<Closes>,
        report: bool,
    ) -> Result<()> {
        let loss = loss.f_detach()?.f_to_kind(Kind::Float)?.f_reshape([])?;
        let flag = flag
            .map(|f| f.f_detach()?.f_to_kind(Kind::Float)?.f_reshape([]))
            .transpose()?;
        self.entries.push(Entry {
            loss,
            flag,
            closes,
            report,
        });
        Ok(())
    }

    /// Reads every pending value in one transfer and books them into `st`
    /// in order ([`LoopState::book_read`]), exactly as a per-step read would
    /// have: the window's loss sum and mean, the epoch's finite sum and
    /// count, skipped updates.
    pub fn read(&mut self, st: &mut LoopState) -> Result<Read> {
        let mut out = Read::default();
        if self.is_empty() {
            return Ok(out);
        }
        let mut all: Vec<Tensor> = self
            .entries
            .iter()
            .map(|e| e.loss.shallow_clone())
            .collect();
        all.extend(
            self.entries
                .iter()
                .filter_map(|e| e.flag.as_ref().map(Tensor::shallow_clone)),
        );
        let host = Tensor::f_stack(&all, 0)?
            .f_to_device(Device::Cpu)?
            .f_to_kind(Kind::Double)?;
        let values = Vec::<f64>::try_from(&host)?;
        let (losses, flags) = values.split_at(self.entries.len());
        let mut flags = flags.iter();
        for (e, &v) in self.entries.drain(..).zip(losses) {
            let skipped = e.flag.is_some() && flags.next().is_some_and(|&f| f != 0.0);
            out.last_loss = Some(v);
            if let Some(u) = st.book_read(v, skipped, e.closes) {
                if e.report {
                    self.kept.push(u);
                }
                out.updates.push(u);
            }
        }
        Ok(out)
    }

    /// Keeps an update read per step, for the run's next take.
    pub fn keep(&mut self, u: UpdateReport) {
        self.kept.push(u);
    }

    /// The updates read for runs since the last take.
    pub fn take_updates(&mut self) -> Vec<UpdateReport> {
        std::mem::take(&mut self.kept)
    }

    /// Forgets everything (the state is being replaced).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.kept.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(v: f64) -> Tensor {
        Tensor::from(v as f32)
    }

    #[test]
    fn a_read_books_like_per_step_reads() {
        let mut l = Ledger::default();
        let mut st = LoopState::default();
        // Window of two (mean 2.0), then a non-finite batch closing its own
        // window, then a pending half window.
        l.push(&scalar(1.0), None, None, true).unwrap();
        let c = Closes { step: 1, micro: 2 };
        l.push(&scalar(3.0), None, Some(c), true).unwrap();
        let c = Closes { step: 2, micro: 1 };
        l.push(&scalar(f64::NAN), Some(&scalar(1.0)), Some(c), false)
            .unwrap();
        l.push(&scalar(5.0), None, None, true).unwrap();
        let r = l.read(&mut st).unwrap();
        assert!(l.is_empty());
        assert_eq!(r.last_loss, Some(5.0));
        assert_eq!(r.updates.len(), 2);
        assert_eq!((r.updates[0].step, r.updates[0].loss), (1, 2.0));
        assert!(!r.updates[0].skipped);
        assert!(r.updates[1].loss.is_nan() && r.updates[1].skipped);
        assert_eq!(st.epoch_loss_sum, 9.0);
        assert_eq!(st.epoch_batches, 3);
        assert_eq!(st.skipped, 1);
        assert_eq!(st.window_loss_sum, 5.0);
        // Only the reported update is kept for the run.
        let kept = l.take_updates();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].step, 1);
        assert!(l.take_updates().is_empty());
    }
}
