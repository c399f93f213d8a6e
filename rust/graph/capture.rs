//! Whether a model's forward can be captured in a CUDA graph: the first
//! node that needs the host mid-step (Python, a host read that picks a
//! branch or ends a loop) names why not. Fixed-count loops, gates,
//! split/merge, `also`, batched maps and forward refs are capturable.

use std::sync::Arc;

use crate::nn::Module;

/// The first blocker in `m`: (where, why). `where` is the graph node id
/// (the top-level node that contains it) or the model's description.
pub fn capture_blocker(m: &dyn Module) -> Option<(String, String)> {
    let Some(g) = m.as_graph() else {
        return module_blocker(m).map(|why| (m.describe(), why));
    };
    if let Some(why) = m.capture_blocker() {
        return Some((g.describe(), why));
    }
    for &i in g.order() {
        let node = &g.nodes()[i];
        if let Some(sub) = node.module() {
            if let Some(why) = module_blocker(sub.as_ref()) {
                return Some((node.id.clone(), why));
            }
        }
    }
    None
}

/// `m`'s own blocker, else the first of its children's (depth first),
/// naming the child when it is not `m` itself.
fn module_blocker(m: &dyn Module) -> Option<String> {
    if let Some(why) = m.capture_blocker() {
        return Some(why);
    }
    if let Some(g) = m.as_graph() {
        return capture_blocker(g).map(|(at, why)| format!("{at} in {}: {why}", g.describe()));
    }
    m.sub_modules().iter().find_map(|c: &Arc<dyn Module>| {
        module_blocker(c.as_ref()).map(|why| {
            if c.capture_blocker().is_some() {
                why
            } else {
                format!("{} inside: {why}", c.describe())
            }
        })
    })
}

/// Pins the forward-ref state of `m` and every graph nested in it
/// ([`crate::graph::Graph::pin_carried`]).
pub fn pin_state(m: &dyn Module) -> crate::Result<()> {
    if let Some(g) = m.as_graph() {
        g.pin_carried()?;
    }
    for c in m.sub_modules() {
        pin_state(c.as_ref())?;
    }
    Ok(())
}
