//! Nothing a reducer asked for is silently lost: writes survive cancellation, dismissal, shutdown and the
//! drop of the store; a missing event store is answered; a replaced child's effects stop.
//!
//! Slow writes go through [`Gate`], an intercept that holds every append at a gate after it has reached
//! the event store, so a test can cancel, dismiss or shut down while the write is in flight.
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions; a failure should panic")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::{
    AppendResult, CodecId, Effect, EffectId, EventStore, EventStoreError, EventStoreOperation, ExpectedVersion,
    ForEach, Identifiable, IfLet, Metadata, NewEvent, Reducer, StreamId, async_trait, case, reducer_fn,
};
use composable_rust_runtime::Store;
use composable_rust_testing::{InMemoryEventStore, Intercept, Intercepted, TestClock};
use tokio::sync::{Notify, Semaphore};

/// Holds every append at a gate once it has reached the event store; [`Gate::open`] lets them through.
#[derive(Debug)]
struct Gate {
    started: Notify,
    open: Semaphore,
}

impl Gate {
    fn open(&self) {
        self.open.add_permits(1);
    }
}

#[async_trait]
impl Intercept for Gate {
    async fn append(
        &self,
        inner: &dyn EventStore,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, EventStoreError> {
        self.started.notify_one();
        // The permit goes back when dropped: once open, the gate stays open.
        drop(self.open.acquire().await);
        // Still writing a moment after the gate opens, so a wait that returned early would see no event.
        tokio::time::sleep(Duration::from_millis(20)).await;
        inner.append(stream_id, expected, events).await
    }
}

/// An in-memory store (to count what was written) behind a gate.
fn gated_store() -> (Arc<InMemoryEventStore>, Arc<Intercepted<Gate>>) {
    let events = Arc::new(InMemoryEventStore::new());
    let gate = Gate { started: Notify::new(), open: Semaphore::new(0) };
    let gated = Arc::new(Intercepted::new(Arc::clone(&events) as Arc<dyn EventStore>, gate));
    (events, gated)
}

fn doc_stream(id: u32) -> StreamId {
    StreamId::new(format!("doc-{id}")).unwrap()
}

/// An append of one event to `doc-{id}`, answered with `on_result`.
fn save<A: 'static>(
    id: u32,
    on_result: impl FnOnce(Result<AppendResult, Arc<EventStoreError>>) -> A + Send + 'static,
) -> Effect<A> {
    let event = NewEvent {
        id: composable_rust_core::EventId::generate(),
        event_type: "Saved.v1".into(),
        codec: CodecId::Json,
        payload: b"{}".to_vec(),
        metadata: Metadata::default(),
        tags: Vec::new(),
    };
    Effect::event_store(EventStoreOperation::append(doc_stream(id), ExpectedVersion::Any, vec![event], move |r| {
        on_result(r.map_err(Arc::new))
    }))
}

// A single document: save under a cancellable id, cancel it.

const SAVE: &str = "save";

#[derive(Debug, Clone)]
enum Doc {
    Save,
    Saved(Result<AppendResult, Arc<EventStoreError>>),
    Cancel,
}

#[derive(Debug, Default)]
struct DocState {
    /// The name of every action reduced, in order.
    log: Vec<&'static str>,
    replies: Vec<Result<AppendResult, Arc<EventStoreError>>>,
}

fn doc() -> impl Reducer<State = DocState, Action = Doc, Environment = ()> + Send + Sync + 'static {
    reducer_fn(|s: &mut DocState, action: Doc, _: &()| match action {
        Doc::Save => {
            s.log.push("Save");
            save(1, Doc::Saved).cancellable(EffectId::new(SAVE))
        }
        Doc::Saved(reply) => {
            s.log.push("Saved");
            s.replies.push(reply);
            Effect::None
        }
        Doc::Cancel => {
            s.log.push("Cancel");
            Effect::cancel(EffectId::new(SAVE))
        }
    })
}

fn doc_store(events: Arc<Intercepted<Gate>>) -> Store<impl Reducer<State = DocState, Action = Doc, Environment = ()>> {
    Store::builder(doc(), DocState::default(), ()).event_store(events).build()
}

/// Pins: `Effect::cancel` of an append that has reached the event store does not abort the write (which
/// would leave the caller unsure whether it happened); the event is stored once and only the reply is
/// dropped. Before, the write's task was dropped at its next `.await` and nothing was stored.
#[tokio::test]
async fn a_cancelled_append_in_flight_is_stored_once_and_its_reply_is_dropped() {
    let (events, gated) = gated_store();
    let store = doc_store(Arc::clone(&gated));
    store.send(Doc::Save);
    gated.started.notified().await;
    store.send(Doc::Cancel);
    gated.open();
    store.idle().await;
    assert_eq!(events.events(&doc_stream(1)).len(), 1, "the append must complete exactly once");
    assert_eq!(store.state(|s| s.log.clone()), ["Save", "Cancel"], "the reply of a cancelled write is dropped");
}

/// Pins: dropping the last `Store` handle lets an append in flight finish; the event is stored once.
/// Before, the drop cancelled the write's task and nothing was stored.
#[tokio::test]
async fn an_append_in_flight_when_the_last_store_handle_is_dropped_is_stored_once() {
    let (events, gated) = gated_store();
    let store = doc_store(Arc::clone(&gated));
    let handle = store.send(Doc::Save);
    gated.started.notified().await;
    drop(store);
    gated.open();
    handle.finished().await;
    assert_eq!(events.events(&doc_stream(1)).len(), 1);
}

/// Pins: `Store::shutdown` lets an append in flight finish, `idle` waits for it, and its reply is not
/// reduced. Before, shutdown cancelled the write and `idle` returned at once with nothing stored.
#[tokio::test]
async fn an_append_in_flight_at_shutdown_is_stored_once_and_idle_waits_for_it() {
    let (events, gated) = gated_store();
    let store = doc_store(Arc::clone(&gated));
    store.send(Doc::Save);
    gated.started.notified().await;
    store.shutdown();
    let early = tokio::time::timeout(Duration::from_millis(50), store.idle()).await;
    assert!(early.is_err(), "idle returned while the write was still in flight");
    gated.open();
    store.idle().await;
    assert_eq!(events.events(&doc_stream(1)).len(), 1, "idle must not return before the write is stored");
    assert_eq!(store.state(|s| s.log.clone()), ["Save"], "a store that shut down reduces no reply");
}

/// Pins: an `Effect::EventStore` on a store built without an event store is answered at once, inside
/// `send`, with `EventStoreError::NoEventStore` telling how to fix it. Before, it was logged and the
/// reducer never heard back.
#[test]
fn an_event_store_effect_without_an_event_store_is_answered_at_once_with_no_event_store() {
    let store = Store::new(doc(), DocState::default(), ());
    let handle = store.send(Doc::Save);
    assert!(handle.is_finished(), "the answer needs no task");
    let replies = store.state(|s| s.replies.clone());
    let [Err(error)] = replies.as_slice() else { panic!("expected one error reply, got {replies:?}") };
    assert!(matches!(**error, EventStoreError::NoEventStore { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(".event_store(") && message.contains("doc-1"), "{message}");
}

// A screen with an optional editor (IfLet) and rows of editors (ForEach).

/// An editor of one document; its identity is the document's id.
#[derive(Debug, Clone, PartialEq)]
struct Editor {
    doc: u32,
    title: &'static str,
    bumps: u32,
}

impl Editor {
    fn new(doc: u32) -> Self {
        Self { doc, title: "untitled", bumps: 0 }
    }
}

impl Identifiable for Editor {
    type Id = u32;
    fn id(&self) -> u32 {
        self.doc
    }
}

#[derive(Debug, Clone)]
enum EditorAction {
    Save,
    #[allow(dead_code, reason = "read through the parent's Debug log")]
    Saved(Result<AppendResult, Arc<EventStoreError>>),
    BumpLater,
    Bump,
}

#[derive(Debug, Clone)]
enum ScreenAction {
    Editor(EditorAction),
    /// Dismiss the editor.
    Close,
    /// Show the editor of another document (or the same one, afresh).
    Open(u32),
    /// Rename the editor in place.
    Rename(&'static str),
    Row((u32, EditorAction)),
    RemoveRow(u32),
    /// Put a fresh editor for the same document at the row's key.
    ReplaceRow(u32),
}

#[derive(Debug, Default)]
struct Screen {
    editor: Option<Editor>,
    rows: BTreeMap<u32, Editor>,
    /// Every action the parent saw, as `Debug` text.
    log: Vec<String>,
}

impl Screen {
    fn saw(&self, needle: &str) -> bool {
        self.log.iter().any(|line| line.contains(needle))
    }
}

fn editor() -> impl Reducer<State = Editor, Action = EditorAction, Environment = ()> + Send + Sync + 'static {
    reducer_fn(|e: &mut Editor, action: EditorAction, _: &()| match action {
        EditorAction::Save => save(e.doc, EditorAction::Saved),
        EditorAction::Saved(_) => Effect::None,
        EditorAction::BumpLater => Effect::delay(Duration::from_secs(1), EditorAction::Bump),
        EditorAction::Bump => {
            e.bumps += 1;
            Effect::None
        }
    })
}

fn screen() -> impl Reducer<State = Screen, Action = ScreenAction, Environment = ()> + Send + Sync + 'static {
    let parent = reducer_fn(|s: &mut Screen, action: ScreenAction, _: &()| {
        s.log.push(format!("{action:?}"));
        match action {
            ScreenAction::Close => s.editor = None,
            ScreenAction::Open(doc) => s.editor = Some(Editor::new(doc)),
            ScreenAction::Rename(title) => {
                if let Some(editor) = &mut s.editor {
                    editor.title = title;
                }
            }
            ScreenAction::RemoveRow(key) => {
                s.rows.remove(&key);
            }
            ScreenAction::ReplaceRow(key) => {
                s.rows.insert(key, Editor::new(key));
            }
            ScreenAction::Editor(_) | ScreenAction::Row(_) => {}
        }
        Effect::None
    });
    let with_editor =
        IfLet::new(parent, |s: &mut Screen| &mut s.editor, case!(ScreenAction::Editor), |e: &()| e, editor());
    ForEach::new(with_editor, |s: &mut Screen| &mut s.rows, case!(ScreenAction::Row), |e: &()| e, editor())
}

fn screen_store(
    state: Screen,
    events: Arc<Intercepted<Gate>>,
) -> Store<impl Reducer<State = Screen, Action = ScreenAction, Environment = ()>> {
    Store::builder(screen(), state, ()).event_store(events).build()
}

/// Pins: dismissing an `IfLet` child while its append is in flight cancels the child's effects but not the
/// write: the event is stored once, and the reply, which has no child to go to, is never reduced.
#[tokio::test]
async fn dismissing_an_if_let_child_with_an_append_in_flight_stores_it_once_and_drops_the_reply() {
    let (events, gated) = gated_store();
    let store = screen_store(Screen { editor: Some(Editor::new(7)), ..Screen::default() }, Arc::clone(&gated));
    store.send(ScreenAction::Editor(EditorAction::Save));
    gated.started.notified().await;
    store.send(ScreenAction::Close);
    gated.open();
    store.idle().await;
    assert_eq!(events.events(&doc_stream(7)).len(), 1);
    assert!(!store.state(|s| s.saw("Saved")), "the reply reached the parent: {:?}", store.state(|s| s.log.clone()));
}

/// Pins: removing a `ForEach` child while its append is in flight stores the event once and drops the
/// reply.
#[tokio::test]
async fn removing_a_for_each_child_with_an_append_in_flight_stores_it_once_and_drops_the_reply() {
    let (events, gated) = gated_store();
    let rows = BTreeMap::from([(3, Editor::new(3)), (4, Editor::new(4))]);
    let store = screen_store(Screen { rows, ..Screen::default() }, Arc::clone(&gated));
    store.send(ScreenAction::Row((3, EditorAction::Save)));
    gated.started.notified().await;
    store.send(ScreenAction::RemoveRow(3));
    gated.open();
    store.idle().await;
    assert_eq!(events.events(&doc_stream(3)).len(), 1);
    assert!(!store.state(|s| s.saw("Saved")), "the reply reached the parent: {:?}", store.state(|s| s.log.clone()));
}

/// Pins: replacing `Some(a)` by `Some(b)` (another identity) in one action cancels `a`'s in-flight
/// effects, so `a`'s result never lands in `b`. Before, only `Some` to `None` cancelled, and `b` received
/// `a`'s `Bump`.
#[tokio::test(start_paused = true)]
async fn replacing_an_if_let_child_by_another_identity_cancels_the_old_child_effects() {
    let (_, gated) = gated_store();
    let store = screen_store(Screen { editor: Some(Editor::new(1)), ..Screen::default() }, Arc::clone(&gated));
    store.send(ScreenAction::Editor(EditorAction::BumpLater));
    store.send(ScreenAction::Open(2));
    tokio::time::advance(Duration::from_secs(5)).await;
    store.idle().await;
    assert_eq!(store.state(|s| s.editor.clone()), Some(Editor::new(2)), "the old child's Bump reached the new one");
    assert!(!store.state(|s| s.saw("Bump)")));
}

/// Pins: editing an `IfLet` child in place, or replacing it by a child of the same identity, keeps its
/// effects running; identity, not equality, decides.
#[tokio::test(start_paused = true)]
async fn editing_an_if_let_child_in_place_keeps_its_effects() {
    let (_, gated) = gated_store();
    let store = screen_store(Screen { editor: Some(Editor::new(1)), ..Screen::default() }, Arc::clone(&gated));
    store.send(ScreenAction::Editor(EditorAction::BumpLater));
    store.send(ScreenAction::Rename("draft"));
    store.send(ScreenAction::Editor(EditorAction::BumpLater));
    store.send(ScreenAction::Open(1));
    tokio::time::advance(Duration::from_secs(5)).await;
    store.idle().await;
    assert_eq!(store.state(|s| s.editor.as_ref().map(|e| e.bumps)), Some(2));
}

/// Pins: replacing the value at a `ForEach` key keeps the child's identity (the key), so its effects keep
/// running and feed into the new value, as TCA's `IdentifiedArray` does.
#[tokio::test(start_paused = true)]
async fn replacing_a_for_each_child_at_the_same_key_keeps_its_effects() {
    let (_, gated) = gated_store();
    let store =
        screen_store(Screen { rows: BTreeMap::from([(5, Editor::new(5))]), ..Screen::default() }, Arc::clone(&gated));
    store.send(ScreenAction::Row((5, EditorAction::BumpLater)));
    store.send(ScreenAction::ReplaceRow(5));
    tokio::time::advance(Duration::from_secs(5)).await;
    store.idle().await;
    assert_eq!(store.state(|s| s.rows.get(&5).map(|e| e.bumps)), Some(1));
}

// Delays: a cancellable scope inside a delay exists from the moment the delay starts.

const TIMER: &str = "timer";

#[derive(Debug, Clone, PartialEq)]
enum Timer {
    /// `send(Tick).cancellable(TIMER).delayed(10s)`
    Start,
    /// The same, plus an uncancellable `Chime`, merged inside one delay.
    StartWithChime,
    /// The same delay, nested in another delay of 10s.
    StartNested,
    /// `send(Tick).cancel_in_flight(TIMER).delayed(10s)`: a debounce.
    Debounce,
    Stop,
    Tick,
    Chime,
}

fn timer() -> impl Reducer<State = Vec<Timer>, Action = Timer, Environment = ()> + Send + Sync + 'static {
    let ten = Duration::from_secs(10);
    let tick = move || Effect::send(Timer::Tick).cancellable(EffectId::new(TIMER));
    reducer_fn(move |log: &mut Vec<Timer>, action: Timer, _: &()| {
        log.push(action.clone());
        match action {
            Timer::Start => tick().delayed(ten),
            Timer::StartWithChime => Effect::merge([tick(), Effect::send(Timer::Chime)]).delayed(ten),
            Timer::StartNested => tick().delayed(ten).delayed(ten),
            Timer::Debounce => Effect::send(Timer::Tick).cancel_in_flight(EffectId::new(TIMER)).delayed(ten),
            Timer::Stop => Effect::cancel(EffectId::new(TIMER)),
            Timer::Tick | Timer::Chime => Effect::None,
        }
    })
}

fn timer_store(clock: TestClock) -> Store<impl Reducer<State = Vec<Timer>, Action = Timer, Environment = ()>> {
    Store::builder(timer(), Vec::new(), ()).clock(Arc::new(clock)).build()
}

/// Pins: `e.cancellable(id).delayed(d)` can be cancelled during the delay. Before, the scope was opened
/// only after the delay, so a cancel during it found nothing and the `Tick` still arrived.
#[tokio::test]
async fn a_cancellable_effect_inside_a_delay_can_be_cancelled_during_the_delay() {
    let clock = TestClock::new();
    let store = timer_store(clock.clone());
    let started = store.send(Timer::Start);
    clock.advance(Duration::from_secs(5));
    store.send(Timer::Stop);
    clock.advance(Duration::from_secs(60));
    started.finished().await;
    store.idle().await;
    assert_eq!(store.state(Clone::clone), [Timer::Start, Timer::Stop]);
}

/// Pins: inside a delayed `Merge`, cancelling stops the cancellable branch during the delay and leaves the
/// others; in nested delays the scope exists from the start of the outer one.
#[tokio::test]
async fn a_delayed_merge_or_nested_delay_can_be_cancelled_during_the_delay() {
    let clock = TestClock::new();
    let store = timer_store(clock.clone());
    store.send(Timer::StartWithChime);
    store.send(Timer::StartNested);
    clock.advance(Duration::from_secs(5));
    store.send(Timer::Stop);
    for _ in 0..3 {
        clock.advance(Duration::from_secs(10));
        tokio::task::yield_now().await;
    }
    store.idle().await;
    assert_eq!(store.state(Clone::clone), [Timer::StartWithChime, Timer::StartNested, Timer::Stop, Timer::Chime]);
}

/// Pins: `cancel_in_flight` inside a delay acts when the delay starts, so a second send during the wait
/// replaces the first (a debounce) and only one `Tick` arrives. Before, both delays ran to their end and
/// both ticked.
#[tokio::test]
async fn cancel_in_flight_inside_a_delay_debounces() {
    let clock = TestClock::new();
    let store = timer_store(clock.clone());
    store.send(Timer::Debounce);
    clock.advance(Duration::from_secs(5));
    store.send(Timer::Debounce);
    clock.advance(Duration::from_secs(60));
    store.idle().await;
    assert_eq!(store.state(Clone::clone), [Timer::Debounce, Timer::Debounce, Timer::Tick]);
}

// No tokio runtime: effects still run.

#[derive(Debug, Clone, PartialEq)]
enum Plain {
    Start,
    Ran,
    Delayed,
    Appended(bool),
}

/// Pins: a store built and sent to from a plain thread, outside any tokio runtime, runs its task, delay and
/// append effects (on the fallback runtime) and their actions arrive. Before, each was logged and dropped.
#[test]
fn effects_sent_from_outside_any_tokio_runtime_still_run() {
    assert!(tokio::runtime::Handle::try_current().is_err(), "this test must run outside any runtime");
    let reducer = reducer_fn(|log: &mut Vec<Plain>, action: Plain, _: &()| {
        log.push(action.clone());
        match action {
            Plain::Start => Effect::merge([
                Effect::run(|sink| async move { sink.send(Plain::Ran) }),
                Effect::delay(Duration::from_millis(20), Plain::Delayed),
                save(9, |reply| Plain::Appended(reply.is_ok())),
            ]),
            Plain::Ran | Plain::Delayed | Plain::Appended(_) => Effect::None,
        }
    });
    let events = Arc::new(InMemoryEventStore::new());
    let store = Store::builder(reducer, Vec::new(), ()).event_store(Arc::clone(&events) as Arc<dyn EventStore>).build();
    store.send(Plain::Start);

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while store.state(Vec::len) < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut log = store.state(Clone::clone);
    log.sort_by_key(|action| format!("{action:?}"));
    assert_eq!(log, [Plain::Appended(true), Plain::Delayed, Plain::Ran, Plain::Start]);
    assert_eq!(events.events(&doc_stream(9)).len(), 1);
}

// A reducer panic poisons the store.

#[derive(Debug, Clone)]
enum Risky {
    Add(u32),
    /// Adds 100, then panics: a half-done update.
    Boom,
    /// Starts an append (held at the gate) and a task that feeds `Boom` back.
    SaveThenBoom,
    Saved,
}

fn risky() -> impl Reducer<State = u32, Action = Risky, Environment = ()> + Send + Sync + 'static {
    reducer_fn(|n: &mut u32, action: Risky, _: &()| match action {
        Risky::Add(by) => {
            *n += by;
            Effect::None
        }
        Risky::Boom => {
            *n += 100;
            panic!("the reducer hit a bug");
        }
        Risky::SaveThenBoom => Effect::merge([save(2, |_| Risky::Saved), Effect::future(async { Risky::Boom })]),
        Risky::Saved => {
            *n += 1000;
            Effect::None
        }
    })
}

/// The text of a panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// Pins: a reducer panic inside `send` reaches the caller unchanged and poisons the store; every later
/// `send` panics naming the action type, who sent it and the panic message, `try_send` returns the same
/// as an error, and the half-updated state is not touched again. Before, the store went on reducing.
#[test]
fn a_reducer_panic_in_send_poisons_the_store_and_later_sends_fail_naming_the_action_type() {
    let store = Store::new(risky(), 0, ());
    store.send(Risky::Add(1));
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.send(Risky::Boom)))
        .expect_err("the reducer's panic must reach the caller");
    assert_eq!(panic_text(payload.as_ref()), "the reducer hit a bug");
    assert!(store.is_poisoned() && store.is_shut_down());

    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.send(Risky::Add(1))))
        .expect_err("a poisoned store must refuse the action");
    let message = panic_text(refused.as_ref());
    for needle in
        [std::any::type_name::<Risky>(), "the reducer hit a bug", "sent by the store's caller", "half-updated"]
    {
        assert!(message.contains(needle), "{needle:?} is missing from: {message}");
    }

    let error = store.try_send(Risky::Add(1)).expect_err("try_send must return the poison");
    assert_eq!(error.action_type(), std::any::type_name::<Risky>());
    assert_eq!(error.panic_message(), "the reducer hit a bug");
    assert_eq!(error.to_string().lines().count(), 4, "one cause per line: {error}");
    assert_eq!(store.state(|n| *n), 101, "only the actions before the panic, and the panic's half-update");
}

/// Pins: a reducer panic while reducing an action an effect fed back poisons the store as well: running
/// effects are cancelled except the write in flight, which completes and is stored once, its reply is
/// dropped, and later sends fail saying the action was fed back by an effect. Before, the task's
/// `catch_unwind` swallowed the panic and the store went on with the half-updated state.
#[tokio::test]
async fn a_reducer_panic_on_an_action_fed_back_by_an_effect_poisons_the_store() {
    let (events, gated) = gated_store();
    let store = Store::builder(risky(), 0, ()).event_store(Arc::clone(&gated) as Arc<dyn EventStore>).build();
    store.send(Risky::SaveThenBoom);
    gated.started.notified().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !store.is_poisoned() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(store.is_poisoned(), "the panic on the fed-back Boom must poison the store");

    let error = store.try_send(Risky::Add(1)).expect_err("a poisoned store must refuse the action");
    assert!(error.to_string().contains("fed back by one of its effects"), "{error}");
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.send(Risky::Add(1))));
    assert!(refused.is_err(), "send to a poisoned store must panic");

    gated.open();
    store.idle().await;
    assert_eq!(events.events(&doc_stream(2)).len(), 1, "the write in flight completes");
    assert_eq!(store.state(|n| *n), 100, "nothing is reduced after the panic, not even the write's reply");
}
