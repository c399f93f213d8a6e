//! Scoped parameter substitution (torch's `functional_call`): inside
//! [`with_substitutes`], every [`SharedTensor`](crate::tensor::SharedTensor)
//! holding one of the given originals reads as its substitute, on this thread
//! only. Modules keep their tensors; a forward run in the scope computes with
//! the substitutes, so autograd connects the output to them.

use std::cell::{Cell, RefCell};

use tch::Tensor;

thread_local! {
    /// Whether any substitution is active on this thread (the fast path).
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    /// (original, slot) pairs of the active scopes, innermost last.
    static TABLE: RefCell<Vec<(Tensor, &'static Tensor)>> = const { RefCell::new(Vec::new()) };
    /// Slots handed out by reference. They are leaked on purpose (a handful
    /// per thread, never freed) and only their C++ handle is reassigned, so a
    /// reference taken in a scope can never dangle: after the scope it reads
    /// an undefined tensor.
    static SLOTS: RefCell<Vec<&'static Tensor>> = const { RefCell::new(Vec::new()) };
}

/// The substitute of `t` in the innermost active scope, if any.
pub(crate) fn lookup(t: &Tensor) -> Option<&'static Tensor> {
    if !ACTIVE.with(Cell::get) {
        return None;
    }
    TABLE.with(|table| {
        table
            .borrow()
            .iter()
            .rev()
            .find(|(orig, _)| crate::shim::is_same(orig, t))
            .map(|(_, slot)| *slot)
    })
}

/// Runs `f` with each `(original, substitute)` pair in force on this thread;
/// scopes nest (the inner one wins). Restored on return and on panic.
pub fn with_substitutes<R>(pairs: &[(Tensor, Tensor)], f: impl FnOnce() -> R) -> R {
    let start = TABLE.with(|table| table.borrow().len());
    SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        while slots.len() < start + pairs.len() {
            slots.push(Box::leak(Box::new(Tensor::new())));
        }
        TABLE.with(|table| {
            let mut table = table.borrow_mut();
            for (i, (orig, sub)) in pairs.iter().enumerate() {
                let slot = slots[start + i];
                crate::shim::assign(slot, sub);
                table.push((orig.shallow_clone(), slot));
            }
        });
    });
    ACTIVE.with(|a| a.set(true));
    let _restore = Restore(start);
    f()
}

/// Ends a scope: drops its entries and releases the substitutes it held.
struct Restore(usize);

impl Drop for Restore {
    fn drop(&mut self) {
        let undefined = Tensor::new();
        TABLE.with(|table| {
            let mut table = table.borrow_mut();
            for (_, slot) in table.drain(self.0..) {
                crate::shim::assign(slot, &undefined);
            }
            ACTIVE.with(|a| a.set(!table.is_empty()));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::SharedTensor;

    #[test]
    fn substitutes_read_in_scope_and_nested_scopes_restore() {
        let w = SharedTensor::new(Tensor::from_slice(&[1.0f32, 2.0]));
        let a = Tensor::from_slice(&[5.0f32, 6.0]);
        let b = Tensor::from_slice(&[7.0f32, 8.0]);
        let sum = |t: &Tensor| t.sum(tch::Kind::Float).double_value(&[]);
        assert_eq!(sum(&w), 3.0);
        // Scopes are keyed by the module's own tensor (inside a scope,
        // `handle()` already gives the substitute).
        let own = w.handle();
        with_substitutes(&[(own.shallow_clone(), a.shallow_clone())], || {
            assert_eq!(sum(&w), 11.0);
            assert!(crate::shim::is_same(&w.handle(), &a));
            with_substitutes(&[(own.shallow_clone(), b.shallow_clone())], || {
                assert_eq!(sum(&w), 15.0)
            });
            assert_eq!(sum(&w), 11.0);
            // Another thread never sees this thread's substitutes.
            std::thread::scope(|s| {
                s.spawn(|| assert_eq!(sum(&w), 3.0));
            });
        });
        assert_eq!(sum(&w), 3.0);
        assert!(lookup(&w).is_none());
    }
}
