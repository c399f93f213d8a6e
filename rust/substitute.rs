//! Parameter substitution for one call (torch's `functional_call`): a
//! [`Substitutes`] map says which tensors read as which; its
//! [`scope`](Substitutes::scope) runs a forward with every
//! [`SharedTensor`](crate::tensor::SharedTensor) holding an original read as
//! its substitute, on the calling thread only. Modules keep their tensors;
//! autograd connects the output to the substitutes.
//!
//! Why a scope and not an argument of `Module::forward`: a parameter is read
//! deep inside a forward (about 50 `Module` implementations, composites,
//! loops, a Python node that hands its torch module the substitutes of its
//! parameters) whose signature carries no context, so the caller that owns
//! the call installs the map and only [`SharedTensor::handle`] and
//! [`SharedTensor::substitute`] consult it. A read outside every scope costs
//! one relaxed atomic load: no thread-local is touched.
//!
//! [`SharedTensor::handle`]: crate::tensor::SharedTensor::handle
//! [`SharedTensor::substitute`]: crate::tensor::SharedTensor::substitute

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

use tch::Tensor;

/// (original, substitute) pairs for one call; the first pair naming an
/// original wins.
#[derive(Default)]
pub struct Substitutes(Vec<(Tensor, Tensor)>);

/// Scopes alive on any thread: zero means no thread has substitutes, so a
/// read skips the thread-local table. A thread's own scope is counted before
/// its forward runs (program order), so it always sees itself.
static SCOPES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The substitutes of this thread's open scopes, innermost last.
    static TABLE: RefCell<Vec<(Tensor, Tensor)>> = const { RefCell::new(Vec::new()) };
}

impl Substitutes {
    pub fn new(pairs: Vec<(Tensor, Tensor)>) -> Self {
        Substitutes(pairs)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The substitute of `t`, if this map names it.
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.0
            .iter()
            .find(|(orig, _)| crate::shim::is_same(orig, t))
            .map(|(_, sub)| sub)
    }

    /// Runs `f` with these substitutes in force on this thread; scopes nest
    /// (the inner one wins). Ended on return and on panic.
    pub fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        if self.is_empty() {
            return f();
        }
        let start = TABLE.with(|table| {
            let mut table = table.borrow_mut();
            let start = table.len();
            // Pushed in reverse so a reverse search finds this map's first pair.
            for (orig, sub) in self.0.iter().rev() {
                table.push((orig.shallow_clone(), sub.shallow_clone()));
            }
            start
        });
        SCOPES.fetch_add(1, Ordering::Relaxed);
        let _end = End(start);
        f()
    }
}

/// Ends a scope: drops its entries (and the handles they held).
struct End(usize);

impl Drop for End {
    fn drop(&mut self) {
        TABLE.with(|table| table.borrow_mut().truncate(self.0));
        SCOPES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The substitute of `t` in this thread's innermost scope naming it.
pub(crate) fn lookup(t: &Tensor) -> Option<Tensor> {
    if SCOPES.load(Ordering::Relaxed) == 0 {
        return None;
    }
    TABLE.with(|table| {
        table
            .borrow()
            .iter()
            .rev()
            .find(|(orig, _)| crate::shim::is_same(orig, t))
            .map(|(_, sub)| sub.shallow_clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::SharedTensor;

    fn sum(t: &SharedTensor) -> f64 {
        let s = t.handle().f_sum(tch::Kind::Float).expect("sum");
        s.f_double_value(&[]).expect("value")
    }

    #[test]
    fn substitutes_read_in_scope_and_nested_scopes_restore() {
        let w = SharedTensor::new(Tensor::from_slice(&[1.0f32, 2.0]));
        let a = Tensor::from_slice(&[5.0f32, 6.0]);
        let b = Tensor::from_slice(&[7.0f32, 8.0]);
        assert_eq!(sum(&w), 3.0);
        let own = w.own();
        let outer = Substitutes::new(vec![(own.shallow_clone(), a.shallow_clone())]);
        let inner = Substitutes::new(vec![(own.shallow_clone(), b.shallow_clone())]);
        outer.scope(|| {
            assert_eq!(sum(&w), 11.0);
            assert!(crate::shim::is_same(&w.handle(), &a));
            assert!(crate::shim::is_same(&w.own(), &own));
            inner.scope(|| assert_eq!(sum(&w), 15.0));
            assert_eq!(sum(&w), 11.0);
            // Another thread never sees this thread's substitutes.
            std::thread::scope(|s| {
                s.spawn(|| assert_eq!(sum(&w), 3.0));
            });
        });
        assert_eq!(sum(&w), 3.0);
        assert!(w.substitute().is_none());
    }

    #[test]
    fn a_scope_ends_on_panic_and_the_first_pair_wins() {
        let w = SharedTensor::new(Tensor::from_slice(&[1.0f32]));
        let own = w.own();
        let subs = Substitutes::new(vec![
            (own.shallow_clone(), Tensor::from_slice(&[2.0f32])),
            (own.shallow_clone(), Tensor::from_slice(&[4.0f32])),
        ]);
        assert!(subs.get(&own).is_some());
        subs.scope(|| assert_eq!(sum(&w), 2.0));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            subs.scope(|| panic!("inside"))
        }));
        assert!(caught.is_err());
        assert_eq!(sum(&w), 1.0);
        assert!(w.substitute().is_none());
    }
}
