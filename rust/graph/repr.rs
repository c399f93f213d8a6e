//! The module tree as torch prints it (`repr(nn.Module)`), keyed by floDl's
//! node ids: one `(id): child` line per node, nested graphs indented.

use super::exec::Graph;
use super::node::NodeOp;

impl Graph {
    /// `Graph(\n  (linear_1): Linear(2 -> 16)\n  ...\n)`, torch's layout.
    pub fn module_tree(&self) -> String {
        let mut out = String::new();
        self.tree_into(&mut out, 0);
        out
    }

    fn tree_into(&self, out: &mut String, depth: usize) {
        match self.label() {
            Some(l) => out.push_str(&format!("Graph '{l}'(\n")),
            None => out.push_str("Graph(\n"),
        }
        let pad = "  ".repeat(depth + 1);
        for node in self.nodes() {
            out.push_str(&format!("{pad}({}): ", node.id));
            match &node.op {
                NodeOp::Module(m) => match m.as_graph() {
                    Some(g) => g.tree_into(out, depth + 1),
                    None => out.push_str(&m.describe()),
                },
                NodeOp::Add => out.push_str("Add()"),
                NodeOp::Mean => out.push_str("Mean()"),
                NodeOp::Input(k) => out.push_str(&format!("Input({k})")),
                NodeOp::StateRead(tag) => out.push_str(&format!("StateRead('{tag}')")),
            }
            out.push('\n');
        }
        out.push_str(&"  ".repeat(depth));
        out.push(')');
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::FlowBuilder;
    use crate::nn::{Activation, Linear};
    use std::sync::Arc;
    use tch::Device;

    #[test]
    fn one_line_per_node_with_ids() {
        let mut b =
            FlowBuilder::from_module(Arc::new(Linear::new(2, 3, true, Device::Cpu).expect("lin")));
        b.through(Arc::new(Activation::Relu));
        let g = b.build().expect("graph");
        let t = g.module_tree();
        assert!(t.starts_with("Graph(\n  (linear_1): "), "{t}");
        assert!(t.contains("\n  (relu_2): relu\n"), "{t}");
        assert!(t.ends_with("\n)"), "{t}");
    }
}
