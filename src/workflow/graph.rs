//! The control-flow graph of a workflow (steps joined by `nextSteps`), with the reachability
//! questions validation and the editor ask of it.
//!
//! Reachability is answered from the condensation into strongly connected components, with a
//! bitset of descendants per component, so that a 10,000-step workflow validates in
//! milliseconds and deep chains never recurse.

use indexmap::IndexMap;

use super::model::Workflow;

/// Index-based control-flow graph over the steps that exist.
#[derive(Debug)]
pub struct ControlGraph {
    ids: Vec<String>,
    index: IndexMap<String, usize>,
    edges: Vec<Vec<usize>>,
    component: Vec<usize>,
    /// Whether a component contains a cycle (more than one step, or a step that loops to itself).
    cyclic: Vec<bool>,
    /// Per component: bitset of the components reachable by one or more edges, itself excluded.
    descendants: Vec<Vec<u64>>,
    members: Vec<Vec<usize>>,
}

impl ControlGraph {
    pub fn new(workflow: &Workflow) -> Self {
        let ids: Vec<String> = workflow.steps.keys().cloned().collect();
        let index: IndexMap<String, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i))
            .collect();
        let edges: Vec<Vec<usize>> = workflow
            .steps
            .values()
            .map(|step| {
                let mut next: Vec<usize> = step
                    .successors()
                    .filter_map(|s| index.get(s).copied())
                    .collect();
                next.dedup();
                next
            })
            .collect();
        let (component, count) = strongly_connected_components(&edges);
        let mut members = vec![Vec::new(); count];
        for (node, &c) in component.iter().enumerate() {
            members[c].push(node);
        }
        let mut cyclic = vec![false; count];
        for (node, next) in edges.iter().enumerate() {
            let c = component[node];
            if members[c].len() > 1 || next.contains(&node) {
                cyclic[c] = true;
            }
        }
        // Tarjan numbers components in reverse topological order: every edge goes from a
        // component to one with a smaller or equal number, so ascending order sees children
        // first.
        let words = count.div_ceil(64);
        let mut descendants = vec![vec![0u64; words]; count];
        for c in 0..count {
            let mut acc = vec![0u64; words];
            for &node in &members[c] {
                for &next in &edges[node] {
                    let d = component[next];
                    if d != c {
                        acc[d / 64] |= 1 << (d % 64);
                        for (a, b) in acc.iter_mut().zip(&descendants[d]) {
                            *a |= *b;
                        }
                    }
                }
            }
            descendants[c] = acc;
        }
        ControlGraph {
            ids,
            index,
            edges,
            component,
            cyclic,
            descendants,
            members,
        }
    }

    pub fn node(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub fn id(&self, node: usize) -> &str {
        &self.ids[node]
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn successors(&self, node: usize) -> &[usize] {
        &self.edges[node]
    }

    /// Whether control can go from `from` to `to` through one or more `nextSteps` edges.
    pub fn reaches(&self, from: usize, to: usize) -> bool {
        let (a, b) = (self.component[from], self.component[to]);
        if a == b {
            return self.cyclic[a];
        }
        self.descendants[a][b / 64] & (1 << (b % 64)) != 0
    }

    /// Whether `to` can run in an execution that starts at `start` (`start` itself included).
    pub fn reachable_from(&self, start: usize, to: usize) -> bool {
        start == to || self.reaches(start, to)
    }

    /// The loops: components that contain a cycle, each as its steps in file order.
    pub fn loops(&self) -> Vec<Vec<usize>> {
        let mut loops: Vec<Vec<usize>> = self
            .members
            .iter()
            .enumerate()
            .filter(|(c, _)| self.cyclic[*c])
            .map(|(_, m)| {
                let mut m = m.clone();
                m.sort_unstable();
                m
            })
            .collect();
        loops.sort_by_key(|m| m[0]);
        loops
    }

    /// Whether any edge leaves the loop that `members` forms.
    pub fn loop_has_exit(&self, members: &[usize]) -> bool {
        let c = self.component[members[0]];
        members
            .iter()
            .any(|&n| self.edges[n].iter().any(|&next| self.component[next] != c))
    }

    /// One shortest chain of steps from `from` to `to` (both included), for messages.
    pub fn path(&self, from: usize, to: usize) -> Option<Vec<usize>> {
        let mut previous = vec![usize::MAX; self.len()];
        let mut queue = std::collections::VecDeque::from([from]);
        let mut seen = vec![false; self.len()];
        while let Some(node) = queue.pop_front() {
            for &next in &self.edges[node] {
                if next == to {
                    let mut path = vec![to, node];
                    let mut at = node;
                    while at != from {
                        at = previous[at];
                        path.push(at);
                    }
                    path.reverse();
                    return Some(path);
                }
                if !seen[next] {
                    seen[next] = true;
                    previous[next] = node;
                    queue.push_back(next);
                }
            }
        }
        None
    }
}

/// Iterative Tarjan: returns each node's component number and the number of components.
/// Components come out in reverse topological order.
fn strongly_connected_components(edges: &[Vec<usize>]) -> (Vec<usize>, usize) {
    const UNVISITED: usize = usize::MAX;
    let n = edges.len();
    let mut order = vec![UNVISITED; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut component = vec![UNVISITED; n];
    let mut stack = Vec::new();
    let mut next_order = 0;
    let mut count = 0;
    // (node, index of the next edge to look at)
    let mut call_stack: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if order[root] != UNVISITED {
            continue;
        }
        call_stack.push((root, 0));
        order[root] = next_order;
        low[root] = next_order;
        next_order += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (node, ref mut edge)) = call_stack.last_mut() {
            if let Some(&next) = edges[node].get(*edge) {
                *edge += 1;
                if order[next] == UNVISITED {
                    order[next] = next_order;
                    low[next] = next_order;
                    next_order += 1;
                    stack.push(next);
                    on_stack[next] = true;
                    call_stack.push((next, 0));
                } else if on_stack[next] {
                    low[node] = low[node].min(order[next]);
                }
                continue;
            }
            call_stack.pop();
            if let Some(&(parent, _)) = call_stack.last() {
                low[parent] = low[parent].min(low[node]);
            }
            if low[node] == order[node] {
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    component[member] = count;
                    if member == node {
                        break;
                    }
                }
                count += 1;
            }
        }
    }
    (component, count)
}
