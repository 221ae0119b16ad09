//! Property tests of the scheduler: thousands of random runs (files, limits, failures, backends
//! that keep batches, break the contract or fail mid-stream), each event taken in a random order,
//! checking that every file settles exactly once, every block's data is written or dropped
//! exactly once, the budgets hold, nothing stalls, and a broken backend is named.

use std::collections::{HashMap, HashSet, VecDeque};

use super::*;

/// splitmix64: the same runs on every machine; a failing seed is printed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Misbehaviour {
    None,
    /// `flush` gives nothing back while holding batches.
    EmptyFlush,
    /// The k-th call gives back a batch it already gave back (or never got).
    Duplicate(usize),
    /// Gives back the second-oldest batch first.
    OutOfOrder,
    /// The k-th batch fails.
    ErrorAt(usize),
}

#[derive(Clone, Debug)]
struct FileSpec {
    n_long: usize,
    listing_error: bool,
    decode_error_at: Option<usize>,
    write_error: bool,
    restored: bool,
}

#[derive(Debug)]
enum Task {
    Decode { file: FileId, block: BlockId },
    Call(Vec<Event<String>>),
    Write { file: FileId },
}

struct Sim {
    rng: Rng,
    files: Vec<FileSpec>,
    block_longs: usize,
    hold: usize,
    misbehaviour: Misbehaviour,
    calls: usize,
    /// Batches the backend holds, oldest first; and those it gave back.
    held: VecDeque<BatchId>,
    given_back: Vec<BatchId>,
    tasks: Vec<Task>,
    /// Long segments decoded so far, per file.
    decoded: HashMap<FileId, usize>,
    /// Data alive in the executor: decoded or computed blocks, by id, with their file.
    blocks: HashMap<BlockId, FileId>,
    batches: HashMap<BatchId, Vec<Placed>>,
    /// Long segments written, per file, and whether its output was created.
    written: HashMap<FileId, usize>,
    created: HashSet<FileId>,
    longs_of: HashMap<BlockId, usize>,
    settled: HashMap<FileId, Result<Settled, Failure<String>>>,
    forgotten: HashSet<FileId>,
    found: usize,
}

impl Sim {
    fn new(seed: u64) -> (Self, Limits) {
        let mut rng = Rng(seed);
        let n = rng.below(30);
        let files = (0..n)
            .map(|_| FileSpec {
                n_long: 1 + rng.below(7),
                listing_error: rng.chance(5),
                decode_error_at: rng.chance(10).then(|| rng.below(3)),
                write_error: rng.chance(8),
                restored: rng.chance(8),
            })
            .collect();
        let misbehaviour = match rng.below(8) {
            0 => Misbehaviour::EmptyFlush,
            1 => Misbehaviour::Duplicate(rng.below(6)),
            2 => Misbehaviour::OutOfOrder,
            3 => Misbehaviour::ErrorAt(rng.below(6)),
            _ => Misbehaviour::None,
        };
        let limits = Limits {
            decode_slots: 1 + rng.below(4),
            write_slots: 1 + rng.below(3),
            batch_longs: 1 + rng.below(8),
            ready_values: 1 + rng.below(60),
            unwritten_values: 1 + rng.below(60),
            long_output_len: 3,
        };
        let sim = Sim {
            block_longs: 1 + rng.below(4),
            hold: rng.below(3),
            rng,
            files,
            misbehaviour,
            calls: 0,
            held: VecDeque::new(),
            given_back: Vec::new(),
            tasks: Vec::new(),
            decoded: HashMap::new(),
            blocks: HashMap::new(),
            batches: HashMap::new(),
            written: HashMap::new(),
            created: HashSet::new(),
            longs_of: HashMap::new(),
            settled: HashMap::new(),
            forgotten: HashSet::new(),
            found: 0,
        };
        (sim, limits)
    }

    /// What the backend gives back now: `submit` (with a batch) or `flush`.
    fn call(&mut self, submitted: Option<BatchId>) -> Vec<Event<String>> {
        self.calls += 1;
        let call = self.calls;
        if let Some(b) = submitted {
            self.held.push_back(b);
        }
        let give = match submitted {
            Some(_) => self.held.len() > self.hold,
            None => self.misbehaviour != Misbehaviour::EmptyFlush,
        };
        if let Misbehaviour::Duplicate(k) = self.misbehaviour
            && call == k + 1
        {
            let again = self.given_back.last().copied().unwrap_or(999_999);
            return vec![Event::Returned { batch: Some(again), result: Ok(()) }];
        }
        if !give || self.held.is_empty() {
            return vec![Event::Idle];
        }
        let at = if self.misbehaviour == Misbehaviour::OutOfOrder && self.held.len() > 1 {
            1
        } else {
            0
        };
        let Some(batch) = self.held.remove(at) else { return vec![Event::Idle] };
        self.given_back.push(batch);
        let result = match self.misbehaviour {
            Misbehaviour::ErrorAt(k) if self.given_back.len() == k + 1 => {
                Err("the device fell over".to_string())
            }
            _ => Ok(()),
        };
        vec![Event::Returned { batch: Some(batch), result }]
    }

    fn execute(&mut self, s: &mut Scheduler<String>, action: Action<String>) {
        match action {
            Action::NextInput { file } => {
                assert_eq!(file as usize, self.found, "inputs are numbered in order");
                let found = self.files.get(self.found).map(|f| {
                    self.found += 1;
                    f.listing_error.then(|| "cannot list it".to_string())
                });
                s.handle(Event::Input { found });
            }
            Action::Decode { file, block, open } => {
                assert_eq!(open, !self.decoded.contains_key(&file), "open only the first time");
                self.tasks.push(Task::Decode { file, block });
            }
            Action::Submit { batch, blocks } => {
                assert!(!blocks.is_empty(), "an empty batch");
                for p in &blocks {
                    assert_eq!(self.blocks.get(&p.block), Some(&p.file), "submitted unknown data");
                }
                self.batches.insert(batch, blocks);
                let events = self.call(Some(batch));
                self.tasks.push(Task::Call(events));
            }
            Action::Flush => {
                let events = self.call(None);
                self.tasks.push(Task::Call(events));
            }
            Action::Write { file, blocks, create, complete, n_long } => {
                assert_eq!(create, self.created.insert(file), "created once, first");
                let spec = &self.files[file as usize];
                assert_eq!(n_long, spec.n_long);
                let longs: usize = blocks.iter().map(|b| self.longs_of[b]).sum();
                let done = self.written.entry(file).or_default();
                *done += longs;
                assert!(*done <= n_long, "more written than the file holds");
                assert_eq!(complete, *done == n_long);
                for b in &blocks {
                    assert_eq!(self.blocks.remove(b), Some(file), "writes unknown data");
                }
                self.tasks.push(Task::Write { file });
            }
            Action::Discard { blocks } => {
                for b in blocks {
                    assert!(self.blocks.remove(&b).is_some(), "discards unknown block {b}");
                }
            }
            Action::Settle { file, result } => {
                assert!(self.settled.insert(file, result).is_none(), "file {file} settled twice");
            }
            Action::Forget { file } => {
                assert!(self.settled.contains_key(&file), "forgotten before settled");
                assert!(self.forgotten.insert(file), "forgotten twice");
                assert!(self.blocks.values().all(|f| *f != file), "data of {file} left behind");
                assert!(
                    self.tasks.iter().all(|t| !matches!(t,
                        Task::Decode { file: f, .. } | Task::Write { file: f } if *f == file)),
                    "forgotten while a task of it runs"
                );
            }
        }
    }

    fn complete(&mut self, task: Task, s: &mut Scheduler<String>) {
        match task {
            Task::Decode { file, block } => {
                let spec = self.files[file as usize].clone();
                let first = *self.decoded.entry(file).or_default();
                let result = if spec.restored {
                    Ok(Decoded::Restored { n_long: spec.n_long })
                } else if spec.decode_error_at.is_some_and(|k| k * self.block_longs <= first) {
                    Err(format!("cannot decode file {file}"))
                } else {
                    let n_long = self.block_longs.min(spec.n_long - first);
                    self.decoded.insert(file, first + n_long);
                    self.blocks.insert(block, file);
                    self.longs_of.insert(block, n_long);
                    Ok(Decoded::Block {
                        file_longs: spec.n_long,
                        first_long: first,
                        n_long,
                        samples: 10 * n_long,
                        more: first + n_long < spec.n_long,
                    })
                };
                s.handle(Event::Decoded { file, result });
            }
            Task::Call(events) => {
                for e in events {
                    s.handle(e);
                }
            }
            Task::Write { file } => {
                let fail = self.files[file as usize].write_error;
                let result = if fail { Err(format!("cannot write {file}")) } else { Ok(()) };
                s.handle(Event::Written { file, result });
            }
        }
    }
}

/// One random run; returns the breaches it named and the files written.
fn run(seed: u64) -> (Vec<Breach>, usize) {
    let (mut sim, limits) = Sim::new(seed);
    let mut s = Scheduler::<String>::new(limits);
    let (max_block, per_long) = (10 * sim.block_longs, limits.long_output_len);
    for step in 0.. {
        assert!(step < 100_000, "seed {seed}: no end");
        while let Some(action) = s.next_action() {
            sim.execute(&mut s, action);
        }
        assert!(s.ready_values() < limits.ready_values + limits.decode_slots * max_block);
        let batch_out = (limits.batch_longs + sim.block_longs) * per_long;
        assert!(s.unwritten_values() <= limits.unwritten_values + (sim.hold + 2) * batch_out);
        if sim.tasks.is_empty() {
            break;
        }
        // Results come back in any order; one call's events stay in their order.
        let task = sim.tasks.swap_remove(sim.rng.below(sim.tasks.len()));
        sim.complete(task, &mut s);
    }
    assert!(s.finished(), "seed {seed}: idle before the end");
    let n = sim.files.len();
    assert_eq!(sim.settled.len(), n, "seed {seed}: every file settles");
    assert_eq!(sim.forgotten.len(), n, "seed {seed}: every file is forgotten");
    assert!(sim.blocks.is_empty(), "seed {seed}: data left: {:?}", sim.blocks);
    let broke = sim.settled.values().any(|r| matches!(r, Err(Failure::Breach(_))));
    for (i, spec) in sim.files.iter().enumerate() {
        let result = &sim.settled[&(i as u64)];
        assert!(!matches!(result, Err(Failure::Breach(Breach::Stalled))), "seed {seed}: stalled");
        match result {
            Ok(Settled::Written { n_long }) => {
                assert_eq!(*n_long, spec.n_long);
                assert_eq!(sim.written[&(i as u64)], spec.n_long, "seed {seed}: all written");
                assert!(!spec.write_error && !spec.listing_error && !spec.restored);
            }
            Ok(Settled::Restored { n_long }) => assert!(spec.restored && *n_long == spec.n_long),
            Err(Failure::Task(_)) => {}
            Err(Failure::Breach(_)) => {
                assert_ne!(sim.misbehaviour, Misbehaviour::None, "seed {seed}");
            }
        }
        let clean = !spec.listing_error && spec.decode_error_at.is_none() && !spec.write_error;
        let honest =
            matches!(sim.misbehaviour, Misbehaviour::None | Misbehaviour::Duplicate(_)) && !broke;
        if clean && honest && sim.misbehaviour == Misbehaviour::None {
            assert!(result.is_ok(), "seed {seed}: file {i} failed: {result:?}");
        }
    }
    if sim.misbehaviour == Misbehaviour::EmptyFlush && broke {
        let named = sim
            .settled
            .values()
            .any(|r| matches!(r, Err(Failure::Breach(Breach::EmptyFlush { held })) if *held > 0));
        assert!(named, "seed {seed}");
    }
    let breaches = sim
        .settled
        .values()
        .filter_map(|r| match r {
            Err(Failure::Breach(b)) => Some(b.clone()),
            _ => None,
        })
        .collect();
    let written = sim.settled.values().filter(|r| matches!(r, Ok(Settled::Written { .. }))).count();
    (breaches, written)
}

#[test]
fn random_runs_settle_every_file_once_within_the_budgets() {
    let (mut breaches, mut written) = (HashSet::new(), 0);
    for seed in 0..5000 {
        let (b, w) = run(seed);
        breaches.extend(b.into_iter().map(|b| std::mem::discriminant(&b)));
        written += w;
    }
    // The runs did reach every kind of breach, and wrote files.
    let kinds = [Breach::Unknown, Breach::OutOfOrder, Breach::EmptyFlush { held: 1 }];
    for kind in kinds {
        assert!(breaches.contains(&std::mem::discriminant(&kind)), "{kind:?} never seen");
    }
    assert!(written > 10_000, "{written}");
}

#[test]
fn a_flush_that_gives_nothing_while_holding_a_batch_is_named_not_a_hang() {
    let limits = Limits {
        decode_slots: 1,
        write_slots: 1,
        batch_longs: 1,
        ready_values: 100,
        unwritten_values: 100,
        long_output_len: 1,
    };
    let mut s = Scheduler::<String>::new(limits);
    assert_eq!(s.next_action(), Some(Action::NextInput { file: 0 }));
    s.handle(Event::Input { found: Some(None) });
    assert_eq!(s.next_action(), Some(Action::Decode { file: 0, block: 0, open: true }));
    assert_eq!(s.next_action(), None);
    let block = Decoded::Block { file_longs: 1, first_long: 0, n_long: 1, samples: 4, more: false };
    s.handle(Event::Decoded { file: 0, result: Ok(block) });
    let placed = Placed { file: 0, block: 0, n_long: 1, whole: true };
    assert_eq!(s.next_action(), Some(Action::Submit { batch: 0, blocks: vec![placed] }));
    assert_eq!(s.next_action(), Some(Action::NextInput { file: 1 }));
    s.handle(Event::Input { found: None });
    assert_eq!(s.next_action(), None);
    s.handle(Event::Idle);
    assert_eq!(s.next_action(), Some(Action::Flush));
    s.handle(Event::Idle);
    assert_eq!(s.next_action(), Some(Action::Discard { blocks: vec![0] }));
    let breach = Breach::EmptyFlush { held: 1 };
    assert_eq!(
        s.next_action(),
        Some(Action::Settle { file: 0, result: Err(Failure::Breach(breach.clone())) })
    );
    assert_eq!(s.next_action(), Some(Action::Forget { file: 0 }));
    assert_eq!(s.next_action(), None);
    assert!(s.finished());
    assert_eq!(breach.to_string(), "its flush gave nothing back while it held 1 batches");
}
