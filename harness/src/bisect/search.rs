//! The bisection itself, over an abstract commit graph: which commit to test next, how a
//! verdict shrinks the candidates, and when the answer (one commit, or a range bordered by
//! skipped commits) is known. Pure, so every culprit position can be tested exhaustively.
//!
//! Terms are git's "old" and "new": the search finds the first commit with the new property
//! (the fault appears in `--mode fault`, disappears in `--mode fix`). Candidates are the
//! ancestors of the newest known-new commit (itself included) that are not ancestors of any
//! known-old commit; the next commit to test is the one whose ancestor count within the
//! candidates is closest to half, so a linear history halves every step (ceil(log2 N) steps
//! for N candidates). A skipped commit is never picked again; when only skipped commits are
//! left besides the known-new one, the answer is the whole remaining range.

use std::collections::BTreeSet;

/// A commit graph restricted to the commits under bisection: node i's parents, as indices.
/// Index `tip` is the new endpoint; parents outside the range are left out.
#[derive(Debug, Clone)]
pub struct Dag {
    pub parents: Vec<Vec<usize>>,
}

impl Dag {
    /// A linear history of `n` commits, oldest first: node i's parent is i − 1.
    pub fn linear(n: usize) -> Dag {
        Dag {
            parents: (0..n)
                .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.parents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parents.is_empty()
    }

    /// Ancestors of `node` (inclusive), as a membership vector.
    fn ancestors(&self, node: usize) -> Vec<bool> {
        let mut seen = vec![false; self.len()];
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            if n >= seen.len() || seen[n] {
                continue;
            }
            seen[n] = true;
            stack.extend(self.parents[n].iter().copied());
        }
        seen
    }
}

/// A verdict on one commit, in old/new terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Old,
    New,
    Skip,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Test this commit.
    Test(usize),
    /// This is the first new commit.
    Found(usize),
    /// The first new commit is one of these (skipped commits border it), oldest first.
    Range(Vec<usize>),
}

/// The state of one bisection.
#[derive(Debug, Clone)]
pub struct Bisection {
    dag: Dag,
    /// The newest known-new commit; starts at the new endpoint.
    new: usize,
    olds: Vec<usize>,
    skipped: BTreeSet<usize>,
}

impl Bisection {
    /// Starts a bisection whose new endpoint is `tip`.
    pub fn new(dag: Dag, tip: usize) -> Bisection {
        Bisection {
            dag,
            new: tip,
            olds: Vec::new(),
            skipped: BTreeSet::new(),
        }
    }

    /// Candidates for the first new commit, as a membership vector.
    fn membership(&self) -> Vec<bool> {
        let mut cand = self.dag.ancestors(self.new);
        for &o in &self.olds {
            for (c, is_anc) in cand.iter_mut().zip(self.dag.ancestors(o)) {
                if is_anc {
                    *c = false;
                }
            }
        }
        cand
    }

    /// Number of commits that could still be the first new one.
    pub fn remaining(&self) -> usize {
        self.membership().iter().filter(|&&c| c).count()
    }

    /// The commits that could still be the first new one, oldest first.
    pub fn candidates(&self) -> Vec<usize> {
        let m = self.membership();
        (0..m.len()).filter(|&i| m[i]).collect()
    }

    /// The known-old commits and the newest known-new one: what bounds the candidates.
    pub fn bounds(&self) -> (Vec<usize>, usize) {
        (self.olds.clone(), self.new)
    }

    /// Records a verdict. Verdicts on commits outside the candidates change nothing except
    /// that a commit marked new must be a candidate to move the search (an inconsistent mark
    /// is ignored rather than trusted over earlier ones).
    pub fn mark(&mut self, node: usize, mark: Mark) {
        if node >= self.dag.len() {
            return;
        }
        match mark {
            Mark::Old => self.olds.push(node),
            Mark::New => {
                if self.membership()[node] {
                    self.new = node;
                }
            }
            Mark::Skip => {
                self.skipped.insert(node);
            }
        }
    }

    /// The next step.
    pub fn next(&self) -> Next {
        let cand = self.membership();
        let total = cand.iter().filter(|&&c| c).count();
        if total <= 1 {
            return Next::Found(self.new);
        }
        let mut best: Option<(usize, usize)> = None; // (score, node)
        for node in 0..self.dag.len() {
            if !cand[node] || node == self.new || self.skipped.contains(&node) {
                continue;
            }
            let below = self
                .dag
                .ancestors(node)
                .iter()
                .zip(&cand)
                .filter(|(a, c)| **a && **c)
                .count();
            let score = below.min(total - below);
            // Ties go to the older commit (lower index), which keeps the choice deterministic.
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, node));
            }
        }
        match best {
            Some((_, node)) => Next::Test(node),
            None => Next::Range((0..self.dag.len()).filter(|&i| cand[i]).collect()),
        }
    }
}

/// ceil(log2(n)) for n ≥ 1: the most steps a linear bisection of n candidates takes.
pub fn max_steps(n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        (usize::BITS - (n - 1).leading_zeros()) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a bisection against an oracle; returns (answer, steps).
    fn run(dag: Dag, tip: usize, oracle: impl Fn(usize) -> Mark) -> (Next, usize) {
        let mut b = Bisection::new(dag, tip);
        let mut steps = 0;
        loop {
            match b.next() {
                Next::Test(n) => {
                    steps += 1;
                    assert!(steps < 1000, "no progress");
                    b.mark(n, oracle(n));
                }
                done => return (done, steps),
            }
        }
    }

    #[test]
    fn max_steps_values() {
        assert_eq!(
            [1, 2, 3, 4, 5, 8, 9, 1024, 1025].map(max_steps),
            [0, 1, 2, 2, 3, 3, 4, 10, 11]
        );
    }

    #[test]
    fn linear_every_culprit_within_log2_steps() {
        for n in 1..=70 {
            for culprit in 0..n {
                let (ans, steps) = run(Dag::linear(n), n - 1, |i| {
                    if i >= culprit { Mark::New } else { Mark::Old }
                });
                assert_eq!(ans, Next::Found(culprit), "n {n} culprit {culprit}");
                assert!(steps <= max_steps(n), "n {n} culprit {culprit}: {steps}");
            }
        }
    }

    #[test]
    fn skips_away_from_the_culprit_cost_a_step_each_at_most() {
        let n = 20;
        for culprit in 0..n {
            for skip in 0..n - 1 {
                if skip == culprit || skip + 1 == culprit {
                    continue;
                }
                let (ans, steps) = run(Dag::linear(n), n - 1, |i| {
                    if i == skip {
                        Mark::Skip
                    } else if i >= culprit {
                        Mark::New
                    } else {
                        Mark::Old
                    }
                });
                assert_eq!(ans, Next::Found(culprit), "culprit {culprit} skip {skip}");
                assert!(steps <= max_steps(n) + 1, "{steps}");
            }
        }
    }

    #[test]
    fn skips_bordering_the_culprit_give_a_range() {
        // 0..10, culprit 6, commits 5 and 6 cannot be tested: as far as anyone can tell the
        // first new one is 5, 6 or 7.
        let (ans, _) = run(Dag::linear(10), 9, |i| match i {
            5 | 6 => Mark::Skip,
            i if i >= 6 => Mark::New,
            _ => Mark::Old,
        });
        assert_eq!(ans, Next::Range(vec![5, 6, 7]));
        let (ans, _) = run(Dag::linear(10), 9, |i| match i {
            6 => Mark::Skip,
            i if i >= 6 => Mark::New,
            _ => Mark::Old,
        });
        assert_eq!(ans, Next::Range(vec![6, 7]));
    }

    #[test]
    fn merge_graph_finds_a_culprit_on_a_side_branch() {
        // 0 - 1 - 2 ----- 5(merge of 2 and 4) - 6
        //      \- 3 - 4 -/
        // Culprit 3: new are 3, 4 and everything after the merge.
        let dag = Dag {
            parents: vec![
                vec![],
                vec![0],
                vec![1],
                vec![1],
                vec![3],
                vec![2, 4],
                vec![5],
            ],
        };
        let descendants_of_3 = [3, 4, 5, 6];
        let (ans, steps) = run(dag, 6, |i| {
            if descendants_of_3.contains(&i) {
                Mark::New
            } else {
                Mark::Old
            }
        });
        assert_eq!(ans, Next::Found(3));
        assert!(steps <= 4, "{steps}");
    }

    #[test]
    fn single_candidate_needs_no_step() {
        let (ans, steps) = run(Dag::linear(1), 0, |_| unreachable!());
        assert_eq!((ans, steps), (Next::Found(0), 0));
    }
}
