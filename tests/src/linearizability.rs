//! A linearizability checker for a key-value store seen as one register per
//! key.
//!
//! # What is checked
//!
//! A history is a set of operations, each with the instant it was *called*
//! (the client started the request) and the instant it *returned* (the client
//! got the answer). The history is **linearizable** if every operation can be
//! given a single linearization point somewhere between its call and its
//! return such that, executed one at a time in the order of those points,
//! the operations give exactly the results the clients saw. In other words:
//! the store behaves as if each key were one register held in one place, no
//! matter how many proxies, nodes and chunks are really involved. Two
//! consequences the tests rely on:
//!
//! * an operation that returned before another was called takes effect
//!   before it (real-time order): once a PUT is acknowledged, no later GET
//!   may return an older value, and a client always reads its own writes;
//! * operations that overlap in time may take effect in either order, but in
//!   *one* order that every reader agrees on.
//!
//! Keys are independent registers (linearizability is compositional), so the
//! history is split by key and each key is checked on its own, which keeps
//! every search small.
//!
//! # The model
//!
//! A register holds either nothing or one value, identified by a
//! [`ValueId`] (the tests make every written value unique, so the id stands
//! for the bytes). `Write(v)` stores `v`; `Delete` stores "absent" (and, if
//! the client saw whether the key existed, that answer must match the state
//! it replaced); `Read` must return what the register holds, `None` meaning
//! "not found".
//!
//! # Operations with an unknown outcome
//!
//! A PUT or DELETE that failed or timed out may still have taken effect: the
//! request may have reached the proxy and been applied after the client gave
//! up, or even be applied much later (it may still be queued somewhere). So
//! it is given a return time of +infinity — it may take effect at any point
//! after its call — and it may also *never* take effect. Treating it as
//! failed would flag a later read of its value as a read of a value never
//! written; treating it as successful would flag a later read of the old
//! value as stale. Either would be a false alarm.
//!
//! A read that failed observed nothing, so it constrains nothing and is
//! dropped from the history.
//!
//! # The algorithm
//!
//! The search is the Wing & Gong algorithm with Lowe's memoisation (the
//! design of Knossos and Porcupine). The call and return events are kept in
//! one list in time order. Walking the list from the start, a call event
//! names an operation that may be linearized next (every operation that
//! returned before it was called has already been linearized, or the walk
//! would have met that return event first). If the model accepts it, the
//! operation is linearized: its two events leave the list, the choice is
//! pushed on a stack, and the walk restarts from the new start of the list.
//! Reaching a return event means the operation returning there can no longer
//! be postponed and nothing before it works: the last choice is undone and
//! the walk resumes after it. Every (set of linearized operations, register
//! state) reached is remembered; reaching one again cannot lead anywhere new,
//! which is what keeps the search small in practice (the problem is
//! NP-complete in general, hence the step budget: past it the result is
//! [`CheckError::Inconclusive`] rather than an endless search).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// Identifies one written value. Tests make every write unique, so equal ids
/// mean equal bytes.
pub type ValueId = u64;

/// The register's content: a value, or `None` when the key does not exist.
pub type State = Option<ValueId>;

/// What an operation did and, for reads and deletes, what it observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// PUT of a value.
    Write(ValueId),
    /// DELETE; `existed` is the answer the client got (whether there was a
    /// value to delete), `None` if it is unknown (the request failed).
    Delete {
        /// Whether the key existed, as the client was told.
        existed: Option<bool>,
    },
    /// GET and what it returned (`None`: not found).
    Read(State),
}

impl Action {
    /// The register after this action is applied to `state`, or `None` if
    /// the action's observed result is impossible in that state.
    fn apply(self, state: State) -> Option<State> {
        match self {
            Action::Write(value) => Some(Some(value)),
            Action::Delete { existed } => match existed {
                Some(existed) if existed != state.is_some() => None,
                _ => Some(None),
            },
            Action::Read(seen) => (seen == state).then_some(state),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Write(value) => write!(f, "write {value:#x}"),
            Action::Delete { existed: None } => write!(f, "delete"),
            Action::Delete {
                existed: Some(existed),
            } => write!(f, "delete -> existed={existed}"),
            Action::Read(seen) => write!(f, "read -> {}", StateDisplay(*seen)),
        }
    }
}

/// Displays a register state.
struct StateDisplay(State);

impl fmt::Display for StateDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => write!(f, "{value:#x}"),
            None => write!(f, "absent"),
        }
    }
}

/// One operation of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The key (register) it applies to.
    pub key: String,
    /// Which client issued it (for the report only).
    pub client: usize,
    /// What it did and saw.
    pub action: Action,
    /// When it was called, in nanoseconds since a shared origin.
    pub call: u64,
    /// When it returned, in the same clock; `None` if the outcome is unknown
    /// (a write or delete that failed or timed out: it is treated as
    /// returning at +infinity and may or may not have taken effect). A read
    /// without a return is dropped: it observed nothing.
    pub ret: Option<u64>,
}

impl Operation {
    /// An operation.
    pub fn new(
        key: impl Into<String>,
        client: usize,
        action: Action,
        call: u64,
        ret: Option<u64>,
    ) -> Operation {
        Operation {
            key: key.into(),
            client,
            action,
            call,
            ret,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |ns: u64| ns as f64 / 1e6;
        write!(
            f,
            "client {} {} [{:.3} ms .. ",
            self.client,
            self.action,
            ms(self.call)
        )?;
        match self.ret {
            Some(ret) => write!(f, "{:.3} ms]", ms(ret)),
            None => write!(f, "never returned: outcome unknown]"),
        }
    }
}

/// Collects the operations of concurrent clients, timed on one clock.
#[derive(Debug)]
pub struct History {
    origin: Instant,
    operations: Mutex<Vec<Operation>>,
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

impl History {
    /// An empty history whose clock starts now.
    pub fn new() -> History {
        History {
            origin: Instant::now(),
            operations: Mutex::new(Vec::new()),
        }
    }

    /// Nanoseconds since the history was created (monotonic).
    pub fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Adds an operation.
    pub fn record(&self, operation: Operation) {
        self.operations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(operation);
    }

    /// The operations recorded so far.
    pub fn operations(&self) -> Vec<Operation> {
        self.operations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// What a successful check covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Per key: operations checked (after dropping failed reads) and search
    /// steps taken.
    pub keys: BTreeMap<String, KeySummary>,
}

/// What a successful check of one key covered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeySummary {
    /// Operations in the key's history.
    pub operations: usize,
    /// Of those, writes and deletes with an unknown outcome.
    pub unknown: usize,
    /// Steps the search took.
    pub steps: u64,
}

/// Why a history was not shown linearizable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// The history itself is malformed.
    InvalidOperation {
        /// The offending operation.
        operation: Operation,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A key's history is not linearizable.
    NotLinearizable(Box<Violation>),
    /// The search for a key ran out of its step budget.
    Inconclusive {
        /// The key.
        key: String,
        /// Operations in its history.
        operations: usize,
        /// Steps taken.
        steps: u64,
    },
}

/// A key whose history is not linearizable, and how far the search got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The key.
    pub key: String,
    /// Its whole history, in call order.
    pub history: Vec<Operation>,
    /// The longest sequence of operations the search could linearize, in
    /// linearization order.
    pub prefix: Vec<Operation>,
    /// The register after `prefix`.
    pub state: State,
    /// The operation that could not be linearized after `prefix`: it had
    /// returned, so it could not be postponed, yet neither it nor any
    /// pending operation before it fitted (`None` if the search never got
    /// that far, which cannot happen for a non-empty history).
    pub blocked: Option<Operation>,
    /// The other operations that were candidates at that point (called
    /// before `blocked` returned, not in `prefix`).
    pub candidates: Vec<Operation>,
}

/// How many operations of a long list a report shows.
const SHOWN: usize = 12;

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "key {:?} is not linearizable ({} operations).",
            self.key,
            self.history.len()
        )?;
        let skipped = self.prefix.len().saturating_sub(SHOWN);
        write!(
            f,
            "Longest linearizable prefix: {} operations",
            self.prefix.len()
        )?;
        if skipped > 0 {
            write!(f, " (the last {SHOWN} shown)")?;
        }
        writeln!(f, ":")?;
        for op in self.prefix.iter().skip(skipped) {
            writeln!(f, "    {op}")?;
        }
        writeln!(
            f,
            "after which the register holds {}.",
            StateDisplay(self.state)
        )?;
        match &self.blocked {
            Some(blocked) => {
                writeln!(
                    f,
                    "Then this operation had returned and could not be linearized, \
                     neither right away nor after any of the other candidates:"
                )?;
                writeln!(f, "    {blocked}")?;
                if !self.candidates.is_empty() {
                    writeln!(f, "Other candidates at that point:")?;
                    for op in self.candidates.iter().take(SHOWN) {
                        writeln!(f, "    {op}")?;
                    }
                    if self.candidates.len() > SHOWN {
                        writeln!(f, "    ... and {} more", self.candidates.len() - SHOWN)?;
                    }
                }
            }
            None => writeln!(f, "No operation could be linearized.")?,
        }
        if self.history.len() <= 3 * SHOWN {
            writeln!(f, "Whole history of the key, in call order:")?;
            for op in &self.history {
                writeln!(f, "    {op}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::InvalidOperation { operation, reason } => {
                write!(
                    f,
                    "invalid operation on key {:?}: {reason}: {operation}",
                    operation.key
                )
            }
            CheckError::NotLinearizable(violation) => violation.fmt(f),
            CheckError::Inconclusive {
                key,
                operations,
                steps,
            } => write!(
                f,
                "key {key:?}: inconclusive: the search gave up after {steps} steps \
                 ({operations} operations); use a smaller history or a larger budget"
            ),
        }
    }
}

impl std::error::Error for CheckError {}

/// The default search budget, in steps (list entries visited). Histories of
/// a few hundred operations from a handful of clients need far fewer.
pub const DEFAULT_BUDGET: u64 = 20_000_000;

/// Checks a history with the default budget; see [`Checker::check`].
pub fn check(operations: &[Operation]) -> Result<Summary, CheckError> {
    Checker::default().check(operations)
}

/// A linearizability checker with a search budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checker {
    budget: u64,
}

impl Default for Checker {
    fn default() -> Self {
        Checker {
            budget: DEFAULT_BUDGET,
        }
    }
}

impl Checker {
    /// A checker that gives up on a key after `steps` steps.
    pub fn with_budget(steps: u64) -> Checker {
        Checker { budget: steps }
    }

    /// Checks every key of the history independently.
    ///
    /// Reads without a return (failed reads) are dropped; writes and deletes
    /// without one have an unknown outcome. Every key is checked; if some
    /// are not linearizable the first of them (in key order) is reported,
    /// else the first inconclusive one.
    pub fn check(&self, operations: &[Operation]) -> Result<Summary, CheckError> {
        let mut by_key: BTreeMap<&str, Vec<Operation>> = BTreeMap::new();
        for op in operations {
            if let Some(ret) = op.ret
                && ret < op.call
            {
                return Err(CheckError::InvalidOperation {
                    operation: op.clone(),
                    reason: "returned before it was called",
                });
            }
            if op.ret.is_none() && matches!(op.action, Action::Read(_)) {
                continue;
            }
            by_key.entry(&op.key).or_default().push(op.clone());
        }
        let mut summary = Summary::default();
        let mut inconclusive = None;
        for (key, ops) in by_key {
            match self.check_key(key, ops) {
                Ok(key_summary) => {
                    summary.keys.insert(key.to_string(), key_summary);
                }
                Err(err @ CheckError::Inconclusive { .. }) => {
                    inconclusive.get_or_insert(err);
                }
                Err(err) => return Err(err),
            }
        }
        match inconclusive {
            Some(err) => Err(err),
            None => Ok(summary),
        }
    }

    /// Checks the history of one key (failed reads already dropped).
    fn check_key(&self, key: &str, mut ops: Vec<Operation>) -> Result<KeySummary, CheckError> {
        ops.sort_by_key(|op| (op.call, op.ret.is_none(), op.ret));
        let unknown = ops.iter().filter(|op| op.ret.is_none()).count();
        match search(&ops, self.budget) {
            Search::Linearizable { steps } => Ok(KeySummary {
                operations: ops.len(),
                unknown,
                steps,
            }),
            Search::OutOfBudget { steps } => Err(CheckError::Inconclusive {
                key: key.to_string(),
                operations: ops.len(),
                steps,
            }),
            Search::Violation(deepest) => {
                let pick = |indices: &[usize]| -> Vec<Operation> {
                    indices
                        .iter()
                        .filter_map(|&i| ops.get(i).cloned())
                        .collect()
                };
                Err(CheckError::NotLinearizable(Box::new(Violation {
                    key: key.to_string(),
                    prefix: pick(&deepest.prefix),
                    state: deepest.state,
                    blocked: deepest.blocked.and_then(|i| ops.get(i).cloned()),
                    candidates: pick(&deepest.candidates),
                    history: ops,
                })))
            }
        }
    }
}

/// The result of the search on one key; operations are indices.
enum Search {
    Linearizable { steps: u64 },
    OutOfBudget { steps: u64 },
    Violation(Deepest),
}

/// The deepest point the search reached before it had to backtrack.
#[derive(Default)]
struct Deepest {
    prefix: Vec<usize>,
    state: State,
    blocked: Option<usize>,
    candidates: Vec<usize>,
}

/// A set of operations (by index), hashable for the memo.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Bits {
        Bits(vec![0; len.div_ceil(64)])
    }

    fn set(&mut self, i: usize) {
        if let Some(word) = self.0.get_mut(i / 64) {
            *word |= 1 << (i % 64);
        }
    }

    fn clear(&mut self, i: usize) {
        if let Some(word) = self.0.get_mut(i / 64) {
            *word &= !(1 << (i % 64));
        }
    }
}

/// One event of the time-ordered list: the call or the return of `op`.
#[derive(Clone, Copy)]
struct Event {
    op: usize,
    is_call: bool,
}

/// The call and return events in one doubly linked list, from which the
/// events of linearized operations are unlinked (and relinked on
/// backtracking, in reverse order, which restores the list exactly).
///
/// Node 0 is the head sentinel, node `len + 1` the tail sentinel, and event
/// `i` of the sorted events is node `i + 1`.
struct EventList {
    events: Vec<Event>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For the node of a call event: the node of its return event.
    partner: Vec<usize>,
}

impl EventList {
    fn new(ops: &[Operation]) -> EventList {
        // Order: by time; at equal times calls first, so that operations
        // that touch are treated as concurrent (the lenient choice: nothing
        // is flagged on the strength of a tie of the clock). Unknown returns
        // come after everything: they are at +infinity.
        let mut keyed: Vec<((bool, u64, bool, usize), Event)> = Vec::with_capacity(2 * ops.len());
        for (op, operation) in ops.iter().enumerate() {
            keyed.push((
                (false, operation.call, false, op),
                Event { op, is_call: true },
            ));
            let ret = match operation.ret {
                Some(ret) => (false, ret),
                None => (true, 0),
            };
            keyed.push(((ret.0, ret.1, true, op), Event { op, is_call: false }));
        }
        keyed.sort_by_key(|(key, _)| *key);
        let events: Vec<Event> = keyed.into_iter().map(|(_, event)| event).collect();
        let nodes = events.len() + 2;
        let next: Vec<usize> = (0..nodes).map(|node| node + 1).collect();
        let prev: Vec<usize> = (0..nodes).map(|node| node.saturating_sub(1)).collect();
        let mut return_node = vec![0; ops.len()];
        for (i, event) in events.iter().enumerate() {
            if !event.is_call
                && let Some(slot) = return_node.get_mut(event.op)
            {
                *slot = i + 1;
            }
        }
        let mut partner = vec![0; nodes];
        for (i, event) in events.iter().enumerate() {
            if event.is_call
                && let (Some(slot), Some(&ret)) =
                    (partner.get_mut(i + 1), return_node.get(event.op))
            {
                *slot = ret;
            }
        }
        EventList {
            events,
            next,
            prev,
            partner,
        }
    }

    fn head(&self) -> usize {
        0
    }

    fn tail(&self) -> usize {
        self.events.len() + 1
    }

    fn first(&self) -> usize {
        self.next[self.head()]
    }

    fn event(&self, node: usize) -> Option<Event> {
        node.checked_sub(1)
            .and_then(|i| self.events.get(i))
            .copied()
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        self.prev[next] = prev;
    }

    fn relink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        self.prev[next] = node;
    }

    /// Removes an operation: its call event `node` and its return event.
    fn lift(&mut self, node: usize) {
        self.unlink(node);
        self.unlink(self.partner[node]);
    }

    /// Undoes the matching [`EventList::lift`].
    fn unlift(&mut self, node: usize) {
        self.relink(self.partner[node]);
        self.relink(node);
    }
}

/// The WGL search with memoisation over (linearized set, register state).
fn search(ops: &[Operation], budget: u64) -> Search {
    let mut list = EventList::new(ops);
    let tail = list.tail();
    // Operations whose return is known and that are not linearized yet. Once
    // none is left, the remaining (unknown) operations may all be taken as
    // never having happened: the history is linearizable.
    let mut known_left = ops.iter().filter(|op| op.ret.is_some()).count();
    let mut linearized = Bits::new(ops.len());
    let mut state: State = None;
    let mut seen: HashSet<(Bits, State)> = HashSet::new();
    // The call nodes of the linearized operations, and the state before each.
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut deepest: Option<Deepest> = None;
    let mut steps: u64 = 0;
    let mut node = list.first();
    loop {
        if known_left == 0 {
            return Search::Linearizable { steps };
        }
        steps += 1;
        if steps > budget {
            return Search::OutOfBudget { steps };
        }
        let event = list.event(node);
        if let Some(Event { op, is_call: true }) = event {
            let after = ops
                .get(op)
                .and_then(|operation| operation.action.apply(state));
            if let Some(after) = after {
                let mut with_op = linearized.clone();
                with_op.set(op);
                if seen.insert((with_op.clone(), after)) {
                    stack.push((node, state));
                    linearized = with_op;
                    state = after;
                    if ops.get(op).is_some_and(|operation| operation.ret.is_some()) {
                        known_left -= 1;
                    }
                    list.lift(node);
                    node = list.first();
                    continue;
                }
            }
            node = list.next[node];
            continue;
        }
        // A return event (or, defensively, the tail): the operation returning
        // here cannot be postponed, and nothing before it could be
        // linearized. (The return of an unknown operation is never reached:
        // by then no known operation is left.)
        if deepest
            .as_ref()
            .is_none_or(|d| stack.len() > d.prefix.len())
        {
            deepest = Some(describe(&list, &stack, state, node, tail));
        }
        let Some((call_node, before)) = stack.pop() else {
            return Search::Violation(deepest.unwrap_or_default());
        };
        if let Some(Event { op, .. }) = list.event(call_node) {
            linearized.clear(op);
            if ops.get(op).is_some_and(|operation| operation.ret.is_some()) {
                known_left += 1;
            }
        }
        state = before;
        list.unlift(call_node);
        node = list.next[call_node];
    }
}

/// Records where the search is stuck: at the return event `node`.
fn describe(
    list: &EventList,
    stack: &[(usize, State)],
    state: State,
    node: usize,
    tail: usize,
) -> Deepest {
    let op_of = |node: usize| list.event(node).map(|event| event.op);
    let prefix = stack.iter().filter_map(|&(call, _)| op_of(call)).collect();
    let mut candidates = Vec::new();
    let mut walk = list.first();
    while walk != node && walk != tail {
        if let Some(Event { op, is_call: true }) = list.event(walk) {
            candidates.push(op);
        }
        walk = list.next[walk];
    }
    let blocked = if node == tail { None } else { op_of(node) };
    candidates.retain(|&op| Some(op) != blocked);
    Deepest {
        prefix,
        state,
        blocked,
        candidates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const K: &str = "k";

    fn write(client: usize, value: ValueId, call: u64, ret: u64) -> Operation {
        Operation::new(K, client, Action::Write(value), call, Some(ret))
    }

    fn write_unknown(client: usize, value: ValueId, call: u64) -> Operation {
        Operation::new(K, client, Action::Write(value), call, None)
    }

    fn delete(client: usize, existed: Option<bool>, call: u64, ret: u64) -> Operation {
        Operation::new(K, client, Action::Delete { existed }, call, Some(ret))
    }

    fn read(client: usize, seen: State, call: u64, ret: u64) -> Operation {
        Operation::new(K, client, Action::Read(seen), call, Some(ret))
    }

    fn violation(ops: &[Operation]) -> Violation {
        match check(ops) {
            Err(CheckError::NotLinearizable(violation)) => *violation,
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    fn empty_and_sequential_histories_are_linearizable() {
        assert_eq!(check(&[]).expect("empty"), Summary::default());
        let ops = [
            read(0, None, 0, 10),
            write(0, 1, 20, 30),
            read(1, Some(1), 40, 50),
            write(1, 2, 60, 70),
            read(0, Some(2), 80, 90),
            delete(0, Some(true), 100, 110),
            read(1, None, 120, 130),
            delete(1, Some(false), 140, 150),
        ];
        let summary = check(&ops).expect("sequential history");
        assert_eq!(summary.keys[K].operations, 8);
        assert_eq!(summary.keys[K].unknown, 0);
    }

    #[test]
    fn a_stale_read_after_an_acknowledged_write_is_caught() {
        let ops = [
            write(0, 1, 0, 10),
            write(0, 2, 20, 30),
            read(1, Some(1), 40, 50),
        ];
        let v = violation(&ops);
        assert_eq!(v.key, K);
        assert_eq!(v.prefix.len(), 2, "{v}");
        assert_eq!(v.state, Some(2));
        assert_eq!(v.blocked.as_ref(), Some(&ops[2]), "{v}");
    }

    #[test]
    fn a_read_of_a_value_never_written_is_caught() {
        let ops = [write(0, 1, 0, 10), read(1, Some(7), 5, 50)];
        let v = violation(&ops);
        assert_eq!(v.blocked.as_ref(), Some(&ops[1]), "{v}");
        let text = v.to_string();
        assert!(text.contains("read -> 0x7"), "{text}");
    }

    #[test]
    fn read_your_writes_is_required() {
        let ops = [write(0, 1, 0, 10), read(0, None, 20, 30)];
        let v = violation(&ops);
        assert_eq!(v.prefix, vec![ops[0].clone()]);
        assert_eq!(v.blocked.as_ref(), Some(&ops[1]));
    }

    #[test]
    fn concurrent_writes_may_take_effect_in_either_order() {
        let w1 = write(0, 1, 0, 100);
        let w2 = write(1, 2, 10, 90);
        for seen in [1, 2] {
            let ops = [w1.clone(), w2.clone(), read(2, Some(seen), 110, 120)];
            check(&ops).expect("either order");
        }
        // ... but in one order that every reader agrees on.
        let ops = [
            w1,
            w2,
            read(2, Some(1), 110, 120),
            read(3, Some(2), 130, 140),
        ];
        violation(&ops);
    }

    #[test]
    fn a_read_concurrent_with_a_write_may_see_either_value() {
        for seen in [None, Some(1)] {
            let ops = [write(0, 1, 0, 100), read(1, seen, 10, 20)];
            check(&ops).expect("concurrent read");
        }
        // Once a reader saw the new value, a later reader may not see the
        // old one, even while the write is still in progress.
        let ops = [
            write(0, 1, 0, 100),
            read(1, Some(1), 10, 20),
            read(2, None, 30, 40),
        ];
        violation(&ops);
    }

    #[test]
    fn an_unknown_write_may_take_effect_late_or_never() {
        // Observed long after the client gave up on it.
        let ops = [
            write_unknown(0, 1, 0),
            read(1, None, 10, 20),
            read(1, Some(1), 1000, 1010),
        ];
        let summary = check(&ops).expect("late effect");
        assert_eq!(summary.keys[K].unknown, 1);
        // Never observed.
        let ops = [
            write(0, 1, 0, 5),
            write_unknown(0, 2, 10),
            read(1, Some(1), 20, 30),
        ];
        check(&ops).expect("no effect");
        // But not before it was called ...
        let ops = [read(1, Some(2), 0, 5), write_unknown(0, 2, 10)];
        violation(&ops);
        // ... and once seen, it has taken effect for good.
        let ops = [
            write(0, 1, 0, 5),
            write_unknown(0, 2, 10),
            read(1, Some(2), 20, 30),
            read(1, Some(1), 40, 50),
        ];
        violation(&ops);
    }

    #[test]
    fn an_unknown_delete_may_take_effect_or_not() {
        let ops = [
            write(0, 1, 0, 5),
            Operation::new(K, 0, Action::Delete { existed: None }, 10, None),
            read(1, Some(1), 20, 30),
            read(1, None, 40, 50),
        ];
        check(&ops).expect("the delete took effect between the reads");
    }

    #[test]
    fn delete_then_read_not_found() {
        let ops = [
            write(0, 1, 0, 10),
            delete(1, Some(true), 20, 30),
            read(2, None, 40, 50),
        ];
        check(&ops).expect("delete then not found");
        let ops = [
            write(0, 1, 0, 10),
            delete(1, Some(true), 20, 30),
            read(2, Some(1), 40, 50),
        ];
        violation(&ops);
    }

    #[test]
    fn the_existed_answer_of_a_delete_is_checked() {
        let ops = [delete(0, Some(true), 0, 10)];
        violation(&ops);
        let ops = [write(0, 1, 0, 10), delete(0, Some(false), 20, 30)];
        violation(&ops);
        let ops = [write(0, 1, 0, 10), delete(1, Some(false), 5, 30)];
        check(&ops).expect("the delete went first");
    }

    #[test]
    fn failed_reads_are_dropped() {
        let ops = [
            write(0, 1, 0, 10),
            Operation::new(K, 1, Action::Read(Some(99)), 20, None),
        ];
        let summary = check(&ops).expect("failed read dropped");
        assert_eq!(summary.keys[K].operations, 1);
    }

    #[test]
    fn keys_are_checked_independently() {
        let on = |key: &str, op: Operation| Operation {
            key: key.into(),
            ..op
        };
        let ops = [
            on("a", write(0, 1, 0, 10)),
            on("b", write(1, 2, 0, 10)),
            on("a", read(2, Some(1), 20, 30)),
            // Key b has no value 1: a per-key register, not a global one.
            on("b", read(2, Some(1), 20, 30)),
            on("c", read(3, None, 20, 30)),
        ];
        let v = violation(&ops);
        assert_eq!(v.key, "b");
        assert_eq!(v.history.len(), 2);
        let text = CheckError::NotLinearizable(Box::new(v)).to_string();
        assert!(text.contains("key \"b\" is not linearizable"), "{text}");
        assert!(text.contains("client 2 read -> 0x1"), "{text}");

        let ok = [on("a", write(0, 1, 0, 10)), on("c", read(3, None, 20, 30))];
        assert_eq!(check(&ok).expect("two keys").keys.len(), 2);
    }

    #[test]
    fn a_return_before_the_call_is_rejected() {
        let err = check(&[write(0, 1, 10, 5)]).expect_err("malformed");
        assert!(matches!(err, CheckError::InvalidOperation { .. }), "{err}");
    }

    #[test]
    fn touching_operations_are_concurrent() {
        // A returns at the very instant B is called: either order.
        let ops = [read(0, None, 0, 10), write(1, 1, 10, 20)];
        check(&ops).expect("touching");
        let ops = [write(1, 1, 0, 10), read(0, None, 10, 20)];
        check(&ops).expect("touching");
    }

    #[test]
    fn the_budget_makes_a_hard_search_inconclusive() {
        // Many overlapping writes and a read of a value nobody wrote: the
        // search must try many orders before giving up.
        let mut ops: Vec<Operation> = (0..12)
            .map(|i| write(i, i as u64, i as u64, 1000))
            .collect();
        ops.push(read(99, Some(1000), 500, 2000));
        match Checker::with_budget(100).check(&ops) {
            Err(CheckError::Inconclusive {
                key, operations, ..
            }) => {
                assert_eq!(key, K);
                assert_eq!(operations, 13);
            }
            other => panic!("expected inconclusive, got {other:?}"),
        }
        // With the default budget the memo keeps it small: at most 2^12 sets
        // of writes, each with one of 12 states.
        violation(&ops);
    }

    #[test]
    fn the_violation_names_the_candidates() {
        let ops = [
            write(0, 1, 0, 10),
            read(1, Some(5), 20, 30),
            read(2, Some(5), 20, 40),
        ];
        let v = violation(&ops);
        assert_eq!(v.prefix, vec![ops[0].clone()]);
        assert_eq!(v.state, Some(1));
        assert_eq!(v.blocked.as_ref(), Some(&ops[1]));
        assert_eq!(v.candidates, vec![ops[2].clone()]);
        let text = v.to_string();
        assert!(text.contains("Other candidates"), "{text}");
    }

    #[test]
    fn the_history_recorder_keeps_time() {
        let history = History::new();
        let call = history.now();
        let ret = history.now();
        assert!(ret >= call);
        history.record(Operation::new(K, 0, Action::Write(1), call, Some(ret)));
        assert_eq!(history.operations().len(), 1);
        check(&history.operations()).expect("one write");
    }

    // ---- Comparison with a brute-force checker --------------------------

    /// Linearizable by exhaustion: some subset of the unknown operations
    /// (all known ones included) has a permutation that respects real-time
    /// order and the register's semantics.
    fn brute_force(ops: &[Operation]) -> bool {
        let ops: Vec<&Operation> = ops
            .iter()
            .filter(|op| op.ret.is_some() || !matches!(op.action, Action::Read(_)))
            .collect();
        let unknown: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret.is_none()).collect();
        for mask in 0u32..(1 << unknown.len()) {
            let chosen: Vec<usize> = (0..ops.len())
                .filter(|i| match unknown.iter().position(|u| u == i) {
                    Some(bit) => mask & (1 << bit) != 0,
                    None => true,
                })
                .collect();
            let mut order = Vec::new();
            let mut used = vec![false; chosen.len()];
            if permute(&ops, &chosen, &mut used, &mut order) {
                return true;
            }
        }
        false
    }

    /// Tries every permutation of `chosen`, checking each complete one.
    fn permute(
        ops: &[&Operation],
        chosen: &[usize],
        used: &mut [bool],
        order: &mut Vec<usize>,
    ) -> bool {
        if order.len() == chosen.len() {
            return valid(ops, order);
        }
        for i in 0..chosen.len() {
            if !used[i] {
                used[i] = true;
                order.push(chosen[i]);
                let found = permute(ops, chosen, used, order);
                order.pop();
                used[i] = false;
                if found {
                    return true;
                }
            }
        }
        false
    }

    /// Whether the sequence respects real-time order and the model.
    fn valid(ops: &[&Operation], order: &[usize]) -> bool {
        for (i, &a) in order.iter().enumerate() {
            for &b in &order[i + 1..] {
                // b is placed after a, so b must not have returned before a
                // was called.
                if ops[b].ret.is_some_and(|ret| ret < ops[a].call) {
                    return false;
                }
            }
        }
        let mut state = None;
        for &i in order {
            match ops[i].action.apply(state) {
                Some(after) => state = after,
                None => return false,
            }
        }
        true
    }

    /// A random operation: kind, value, client, timing, outcome, and where
    /// in its interval it takes effect when the history is simulated.
    #[derive(Debug, Clone)]
    struct RawOp {
        kind: u8,
        value: u64,
        client: usize,
        call: u64,
        duration: u64,
        unknown: bool,
        point: u64,
        applied: bool,
        report_existed: bool,
    }

    fn raw_op() -> impl Strategy<Value = RawOp> {
        (
            (0u8..10, 0u64..3, 0usize..4),
            (0u64..30, 0u64..15, 0u8..5),
            (0u64..=100, any::<bool>(), any::<bool>()),
        )
            .prop_map(
                |(
                    (kind, value, client),
                    (call, duration, unknown),
                    (point, applied, report_existed),
                )| {
                    RawOp {
                        kind,
                        value,
                        client,
                        call,
                        duration,
                        unknown: unknown == 0,
                        point,
                        applied,
                        report_existed,
                    }
                },
            )
    }

    /// Builds a history. Unsimulated: reads and deletes report random
    /// results (mostly not linearizable). Simulated: every operation takes
    /// effect at a point of its interval (unknown ones possibly never) and
    /// results are computed from that execution (linearizable), then
    /// `mutate` may change one read's result.
    fn build(raw: &[RawOp], simulate: bool, mutate: Option<(usize, u64)>) -> Vec<Operation> {
        let mut ops: Vec<Operation> = raw
            .iter()
            .map(|r| {
                let action = match r.kind {
                    0..=3 => Action::Write(r.value),
                    4 => Action::Delete {
                        existed: r.report_existed.then_some(r.applied),
                    },
                    _ => Action::Read(r.value.checked_sub(1)),
                };
                let unknown = r.unknown && !matches!(action, Action::Read(_));
                let ret = (!unknown).then_some(r.call + r.duration);
                Operation::new(K, r.client, action, r.call, ret)
            })
            .collect();
        if simulate {
            // Linearization points: within the interval, or anywhere after
            // the call for unknown operations (which may also never apply).
            let mut points: Vec<(u64, usize)> = Vec::new();
            for (i, (op, r)) in ops.iter().zip(raw).enumerate() {
                let span = match op.ret {
                    Some(ret) => ret - op.call,
                    None if r.applied => 60,
                    None => continue,
                };
                points.push((op.call * 100 + span * r.point, i));
            }
            points.sort();
            let mut state: State = None;
            for (_, i) in points {
                let op = &mut ops[i];
                op.action = match op.action {
                    Action::Write(v) => {
                        state = Some(v);
                        Action::Write(v)
                    }
                    Action::Delete { existed } => {
                        let was = state.is_some();
                        state = None;
                        Action::Delete {
                            existed: existed.map(|_| was),
                        }
                    }
                    Action::Read(_) => Action::Read(state),
                };
            }
            if let Some((index, value)) = mutate {
                let reads: Vec<usize> = (0..ops.len())
                    .filter(|&i| matches!(ops[i].action, Action::Read(_)))
                    .collect();
                if !reads.is_empty() {
                    let i = reads[index % reads.len()];
                    ops[i].action = Action::Read(value.checked_sub(1));
                }
            }
        }
        ops
    }

    /// The random histories of the property below must exercise both
    /// answers, and unknown operations, or the comparison proves little.
    #[test]
    fn the_random_histories_cover_both_answers() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let strategy = (
            proptest::collection::vec(raw_op(), 0..=7),
            any::<bool>(),
            proptest::option::of((0usize..7, 0u64..4)),
        );
        let mut runner = TestRunner::deterministic();
        let (mut yes, mut no, mut with_unknown) = (0, 0, 0);
        for _ in 0..1000 {
            let (raw, simulate, mutate) = strategy
                .new_tree(&mut runner)
                .expect("generate a history")
                .current();
            let ops = build(&raw, simulate, mutate);
            if ops.iter().any(|op| op.ret.is_none()) {
                with_unknown += 1;
            }
            if brute_force(&ops) {
                yes += 1;
            } else {
                no += 1;
            }
        }
        assert!(yes >= 200 && no >= 200, "{yes} linearizable, {no} not");
        assert!(with_unknown >= 200, "{with_unknown} with unknown outcomes");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn wgl_agrees_with_brute_force(
            raw in proptest::collection::vec(raw_op(), 0..=7),
            simulate in any::<bool>(),
            mutate in proptest::option::of((0usize..7, 0u64..4)),
        ) {
            let ops = build(&raw, simulate, mutate);
            let expected = brute_force(&ops);
            let got = check(&ops);
            prop_assert_eq!(
                got.is_ok(),
                expected,
                "checker says {:?}, brute force says {} for {:#?}",
                got,
                expected,
                ops
            );
            if simulate && mutate.is_none() {
                prop_assert!(expected, "a simulated history must be linearizable: {:#?}", ops);
            }
            if let Err(CheckError::NotLinearizable(v)) = &got {
                // The reported prefix is itself a valid linearization start.
                prop_assert!(v.prefix.len() < v.history.len());
                prop_assert!(v.blocked.is_some());
            }
        }
    }
}
