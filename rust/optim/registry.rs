//! The optimizer registry: every algorithm by its torch name, written once.
//! The bindings build optimizers through it and Python reads its names and
//! defaults (`ferrotorch.optim`'s signatures take their defaults from here).

use std::sync::{Arc, Mutex};

use super::{
    Adagrad, Adam, Adamax, Algorithm, Hyper, Impl, Lamb, NAdam, Optim, Optimizer, ParamGroup,
    RAdam, RMSprop, Sgd,
};
use crate::{Error, Result};

/// Something to do with an algorithm whose type the name selects (a generic
/// method, so each algorithm keeps its concrete `Optim<A>`).
pub trait WithAlgorithm {
    type Out;
    fn call<A: Algorithm>(self, algorithm: A) -> Self::Out;
}

macro_rules! registry {
    ($($name:literal => $algorithm:expr),* $(,)?) => {
        /// Every optimizer name, lower case, in torch's spelling.
        pub const NAMES: &[&str] = &[$($name),*];

        /// Runs `w` with the algorithm called `name` (case-insensitive).
        pub fn with_algorithm<W: WithAlgorithm>(name: &str, w: W) -> Result<W::Out> {
            Ok(match name.to_ascii_lowercase().as_str() {
                $($name => w.call($algorithm),)*
                _ => {
                    return Err(Error::Value(format!(
                        "unknown optimizer '{name}'; valid names are {NAMES:?}"
                    )))
                }
            })
        }
    };
}

registry! {
    "sgd" => Sgd,
    "adam" => Adam { decoupled: false },
    "adamw" => Adam { decoupled: true },
    "rmsprop" => RMSprop,
    "adagrad" => Adagrad,
    "radam" => RAdam,
    "nadam" => NAdam,
    "lamb" => Lamb,
    "adamax" => Adamax,
}

/// Every hyperparameter of the optimizer `name` with its default.
pub fn defaults(name: &str) -> Result<Hyper> {
    struct Defaults;
    impl WithAlgorithm for Defaults {
        type Out = Hyper;
        fn call<A: Algorithm>(self, a: A) -> Hyper {
            a.defaults()
        }
    }
    with_algorithm(name, Defaults)
}

/// What building an optimizer needs besides its name.
struct Build {
    defaults: Hyper,
    groups: Vec<ParamGroup>,
    imp: Option<Impl>,
}

impl WithAlgorithm for Build {
    type Out = Result<Box<dyn Optimizer>>;
    fn call<A: Algorithm>(self, a: A) -> Self::Out {
        Ok(Box::new(Optim::new(
            a,
            self.defaults,
            self.groups,
            self.imp,
        )?))
    }
}

/// [`Build`], shared with the engine (`Arc<Mutex<..>>`, as the Trainer holds it).
struct Shared(Build);

impl WithAlgorithm for Shared {
    type Out = Result<Arc<Mutex<dyn Optimizer>>>;
    fn call<A: Algorithm>(self, a: A) -> Self::Out {
        let Build {
            defaults,
            groups,
            imp,
        } = self.0;
        Ok(Arc::new(Mutex::new(Optim::new(a, defaults, groups, imp)?)))
    }
}

/// The optimizer `name` over `groups`; `defaults` override the algorithm's.
pub fn build(
    name: &str,
    defaults: Hyper,
    groups: Vec<ParamGroup>,
    imp: Option<Impl>,
) -> Result<Box<dyn Optimizer>> {
    with_algorithm(
        name,
        Build {
            defaults,
            groups,
            imp,
        },
    )?
}

/// As [`build`], shared (the engine and the binding hold it together).
pub fn build_shared(
    name: &str,
    defaults: Hyper,
    groups: Vec<ParamGroup>,
    imp: Option<Impl>,
) -> Result<Arc<Mutex<dyn Optimizer>>> {
    with_algorithm(
        name,
        Shared(Build {
            defaults,
            groups,
            imp,
        }),
    )?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_resolves_to_its_defaults() {
        for name in NAMES {
            let d = defaults(name).unwrap();
            assert!(d.f("lr").unwrap() > 0.0, "{name}");
            assert!(!d.b("maximize").unwrap(), "{name}");
        }
        assert_eq!(defaults("AdamW").unwrap(), defaults("adamw").unwrap());
    }

    #[test]
    fn unknown_name_lists_the_registry() {
        let e = defaults("adadelta").unwrap_err().to_string();
        assert!(e.contains("unknown optimizer 'adadelta'"), "{e}");
        for name in NAMES {
            assert!(e.contains(&format!("\"{name}\"")), "{e}");
        }
    }
}
