//! Tags, reads by query and conditional, multi-stream appends on SQLite, beyond the shared conformance
//! cases: races between store handles and between processes on one file, tags with unusual text, and
//! reads by query compared with the in-memory reference store.
//!
//! The cross-process test re-runs this test binary as a child process (the `child_process_entry` test,
//! told what to do by environment variables), so the writers have their own SQLite connections and
//! only SQLite's file lock orders them.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on any unexpected error")]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use composable_rust_core::backend::EventLog;
use composable_rust_core::{
    AppendCondition, AtomicAppend, CodecId, EventQuery, EventStoreError, ExpectedVersion, GlobalPosition, LogFilter,
    Metadata, NewEvent, QueryItem, StreamId, StreamRange, Tag, Version,
};
use composable_rust_sqlite::SqliteEventStore;
use composable_rust_testing::InMemoryEventStore;

const ROLE: &str = "COMPOSABLE_SQLITE_DCB_CHILD_ROLE";
const DB: &str = "COMPOSABLE_SQLITE_DCB_CHILD_DB";
/// Seats raced for by the two processes.
const SEATS: u64 = 60;
/// What a child prints before the seats it won, one line.
const WON: &str = "DCB-WON:";

fn event(event_type: &str, tags: impl IntoIterator<Item = Tag>) -> NewEvent {
    NewEvent::new(event_type, CodecId::Json, b"{}".to_vec(), Metadata::default()).with_tags(tags)
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name).unwrap()
}

fn seat(n: u64) -> EventQuery {
    EventQuery::tagged([Tag::of("seat", n)])
}

/// Claims every seat not yet taken, one decision per seat: read the seat's events, and if there are
/// none append a claim under the condition that none appeared since. Returns the seats won and how many
/// claims failed their condition (a race lost after both had read the seat as free).
async fn claim_seats(store: &SqliteEventStore, actor: &str) -> (Vec<u64>, usize) {
    let mut won = Vec::new();
    let mut lost = 0;
    for n in 0..SEATS {
        let page = store.read_query(&seat(n), GlobalPosition::START, 10).await.unwrap();
        if !page.events.is_empty() {
            continue;
        }
        let claim = AtomicAppend::new()
            .stream(
                stream(&format!("claim-{actor}-{n}")),
                ExpectedVersion::NoStream,
                vec![event("SeatClaimed.v1", [Tag::of("seat", n), Tag::of("actor", actor)])],
            )
            .condition(page.condition(seat(n)));
        match store.append_atomic(claim).await {
            Ok(_) => won.push(n),
            Err(EventStoreError::ConditionFailed { after, position }) => {
                assert_eq!(after, page.horizon);
                assert!(position > after, "the conflicting event lies after the horizon");
                lost += 1;
            }
            Err(other) => panic!("{actor}: claiming seat {n} failed: {other}"),
        }
    }
    (won, lost)
}

/// Exactly one claim per seat is stored, and it is the winner's.
async fn assert_one_claim_per_seat(store: &SqliteEventStore, winners: &[(&str, &BTreeSet<u64>)]) {
    for n in 0..SEATS {
        let page = store.read_query(&seat(n), GlobalPosition::START, 10).await.unwrap();
        assert_eq!(page.events.len(), 1, "seat {n} must be claimed exactly once: {:?}", page.events);
        let owners: Vec<&str> = winners.iter().filter(|(_, won)| won.contains(&n)).map(|(actor, _)| *actor).collect();
        assert_eq!(owners.len(), 1, "seat {n} must have exactly one winner, has {owners:?}");
        assert!(page.events[0].tags.contains(&Tag::of("actor", owners[0])), "seat {n}: {:?}", page.events[0]);
    }
}

#[tokio::test]
async fn of_two_store_handles_deciding_on_the_same_read_exactly_one_commits_per_round() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    // Two handles, two write connections: only SQLite's file lock orders them, as between processes.
    let first = SqliteEventStore::open(&path).await.unwrap();
    let second = SqliteEventStore::open(&path).await.unwrap();
    for round in 0..20_u64 {
        let query = EventQuery::tagged([Tag::of("round", round)]);
        // Both decide on the same knowledge, then both append at once.
        let (read_1, read_2) = tokio::join!(
            first.read_query(&query, GlobalPosition::START, 10),
            second.read_query(&query, GlobalPosition::START, 10)
        );
        let (read_1, read_2) = (read_1.unwrap(), read_2.unwrap());
        assert!(read_1.events.is_empty() && read_2.events.is_empty());
        let append = |who: &str, page: &composable_rust_core::QueryPage| {
            AtomicAppend::new()
                .stream(
                    stream(&format!("{who}-{round}")),
                    ExpectedVersion::NoStream,
                    vec![event("Won.v1", [Tag::of("round", round)])],
                )
                .condition(page.condition(query.clone()))
        };
        let (one, two) = tokio::join!(
            first.append_atomic(append("first", &read_1)),
            second.append_atomic(append("second", &read_2))
        );
        let outcomes = [one.is_ok(), two.is_ok()];
        assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "round {round}: {one:?} / {two:?}");
        let failure = if one.is_ok() { two } else { one }.unwrap_err();
        assert!(
            matches!(failure, EventStoreError::ConditionFailed { .. }) && failure.is_conflict(),
            "round {round}: the loser fails its condition, got {failure}"
        );
        let stored = first.read_query(&query, GlobalPosition::START, 10).await.unwrap();
        assert_eq!(stored.events.len(), 1, "round {round}: only the winner's event is stored");
    }
    first.close().await.unwrap();
    second.close().await.unwrap();
}

#[tokio::test]
async fn a_plain_append_of_a_tagged_event_fails_a_condition_read_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let decider = SqliteEventStore::open(&path).await.unwrap();
    let other = SqliteEventStore::open(&path).await.unwrap();
    let query = EventQuery::tagged([Tag::of("username", "alice")]);
    let page = decider.read_query(&query, GlobalPosition::START, 10).await.unwrap();

    let plain = other
        .append(
            &stream("user-2"),
            ExpectedVersion::NoStream,
            vec![event("Registered.v1", [Tag::of("username", "alice")])],
        )
        .await
        .unwrap();
    let register = AtomicAppend::new()
        .stream(
            stream("user-1"),
            ExpectedVersion::NoStream,
            vec![event("Registered.v1", [Tag::of("username", "alice")])],
        )
        .condition(page.condition(query.clone()));
    match decider.append_atomic(register).await {
        Err(EventStoreError::ConditionFailed { after, position }) => {
            assert_eq!((after, position), (page.horizon, plain.positions[0]));
        }
        other => panic!("the condition must fail on the plain append's event, got {other:?}"),
    }
    assert_eq!(decider.stream_version(&stream("user-1")).await.unwrap(), Version::INITIAL, "nothing was written");
}

#[tokio::test]
async fn an_atomic_append_writes_every_stream_or_none_and_a_retry_returns_the_stored_results() {
    let store = SqliteEventStore::in_memory().await.unwrap();
    store.append(&stream("account-2"), ExpectedVersion::NoStream, vec![event("Opened.v1", [])]).await.unwrap();
    let transfer = |expected_2: u64| {
        AtomicAppend::new()
            .stream(
                stream("account-1"),
                ExpectedVersion::Any,
                vec![event("Debited.v1", [Tag::new("transfer:t1")]), event("Noted.v1", [])],
            )
            .stream(
                stream("account-2"),
                ExpectedVersion::Exact(Version::new(expected_2)),
                vec![event("Credited.v1", [Tag::new("transfer:t1"), Tag::new("transfer:t1")])],
            )
    };
    let stale = transfer(0);
    match store.append_atomic(stale).await {
        Err(EventStoreError::ConcurrencyConflict { stream_id, actual, .. }) => {
            assert_eq!((stream_id, actual), (stream("account-2"), Version::new(1)));
        }
        other => panic!("a stale second stream must fail the whole append, got {other:?}"),
    }
    assert_eq!(store.stream_version(&stream("account-1")).await.unwrap(), Version::INITIAL, "nothing of it written");

    let append = transfer(1);
    let results = store.append_atomic(append.clone()).await.unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].stream_version, Version::new(2));
    assert_eq!(results[1].stream_version, Version::new(2));
    assert_eq!(store.append_atomic(append).await.unwrap(), results, "a retry returns the stored results");

    let tagged =
        store.read_query(&EventQuery::tagged([Tag::new("transfer:t1")]), GlobalPosition::START, 10).await.unwrap();
    let types: Vec<&str> = tagged.events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["Debited.v1", "Credited.v1"], "each tagged event once, a repeated tag included");
    assert_eq!(tagged.events[1].tags, [Tag::new("transfer:t1"), Tag::new("transfer:t1")], "tags as appended");
    assert_eq!(tagged.horizon, results[1].positions[0], "the horizon is the last position committed");
}

#[tokio::test]
async fn tags_with_unusual_valid_text_round_trip_on_every_read_and_match_only_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteEventStore::open(dir.path().join("events.db")).await.unwrap();
    let longest = "é".repeat(127) + "x"; // 255 bytes
    let unusual: Vec<Tag> = [
        "ünïcødé:日本語 🦀",
        "quote:' OR 1=1 --",
        "json:[\"a\",1]",
        "like:%_*?",
        "  spaces  around  ",
        "back\\slash",
        "x",
        longest.as_str(),
    ]
    .into_iter()
    .map(Tag::new)
    .collect();
    for tag in &unusual {
        tag.validate().unwrap();
    }
    let tagged = event("Odd.v1", unusual.clone());
    let decoy = event("Odd.v1", [Tag::new("like:%"), Tag::new("quote:'"), Tag::new("X")]);
    let written =
        store.append(&stream("odd-1"), ExpectedVersion::NoStream, vec![tagged.clone(), decoy.clone()]).await.unwrap();

    let from_stream = store.load_stream(&stream("odd-1"), StreamRange::all()).await.unwrap();
    assert_eq!(from_stream[0].tags, unusual);
    assert_eq!(from_stream[1].tags, decoy.tags);
    let from_log = store.read_all(GlobalPosition::START, &LogFilter::all(), 10).await.unwrap();
    assert_eq!(from_log, from_stream);
    assert_eq!(store.load_event(tagged.id).await.unwrap().unwrap(), from_stream[0]);
    // A retry compares the stored tags with the new ones: equal, so it is recognised.
    let retried = store.append(&stream("odd-1"), ExpectedVersion::NoStream, vec![tagged.clone(), decoy]).await;
    assert_eq!(retried.unwrap(), written);

    for tag in &unusual {
        let page = store.read_query(&EventQuery::tagged([tag.clone()]), GlobalPosition::START, 10).await.unwrap();
        assert_eq!(page.events, from_stream[..1], "tag {tag:?} finds its event and nothing else");
    }
    let all_of_them = store.read_query(&EventQuery::tagged(unusual.clone()), GlobalPosition::START, 10).await.unwrap();
    assert_eq!(all_of_them.events, from_stream[..1]);
    for prefix in ["like:", "quote:", "ünïcødé:日本語", "X"] {
        let page = store.read_query(&EventQuery::tagged([Tag::new(prefix)]), GlobalPosition::START, 10).await.unwrap();
        assert!(page.events.iter().all(|e| e.tags.contains(&Tag::new(prefix))), "{prefix:?} matches exactly");
    }
}

/// A small deterministic pseudo-random generator (xorshift), so a failure is reproducible.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::test]
async fn reads_by_query_return_what_the_in_memory_reference_returns() {
    const TYPES: [&str; 3] = ["A.v1", "B.v1", "C.v1"];
    const TAGS: [&str; 4] = ["t:a", "t:b", "t:c", "t:d"];
    let sqlite = SqliteEventStore::in_memory().await.unwrap();
    let memory = InMemoryEventStore::new();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for n in 0..150 {
        let tags: Vec<Tag> = TAGS.iter().filter(|_| rng.below(3) == 0).map(|t| Tag::new(*t)).collect();
        let new = event(TYPES[rng.below(3) as usize], tags);
        let id = stream(&format!("s-{}", n % 7));
        let a = sqlite.append(&id, ExpectedVersion::Any, vec![new.clone()]).await.unwrap();
        let b = memory.append(&id, ExpectedVersion::Any, vec![new]).await.unwrap();
        assert_eq!(a, b, "both stores hand out the same positions");
    }
    for case in 0..300 {
        let mut query = EventQuery::default();
        for _ in 0..rng.below(4) {
            let mut item = QueryItem::default();
            for tag in TAGS {
                if rng.below(4) == 0 {
                    item = item.tag(Tag::new(tag));
                }
            }
            let types: Vec<&str> = TYPES.iter().copied().filter(|_| rng.below(3) == 0).collect();
            query = query.or(item.types(types));
        }
        let after = GlobalPosition::new(rng.below(160));
        let limit = [1, 3, 10, 1000][rng.below(4) as usize];
        let got = sqlite.read_query(&query, after, limit).await.unwrap();
        let want = memory.read_query(&query, after, limit).await.unwrap();
        let ids =
            |page: &composable_rust_core::QueryPage| page.events.iter().map(|e| (e.position, e.id)).collect::<Vec<_>>();
        assert_eq!(ids(&got), ids(&want), "case {case}: {query:?} after {after} limit {limit}");
        assert_eq!(got.horizon, want.horizon, "case {case}: horizon of {query:?} after {after} limit {limit}");
        assert!(got.events.iter().all(|e| query.matches_event(e)));
    }
}

#[tokio::test]
async fn a_condition_item_without_a_tag_or_an_invalid_tag_is_refused_before_anything_is_written() {
    let store = SqliteEventStore::in_memory().await.unwrap();
    let untagged = AtomicAppend::new()
        .stream(stream("s-1"), ExpectedVersion::Any, vec![event("A.v1", [])])
        .condition(AppendCondition::none_exist(EventQuery::item(QueryItem::of_types(["A.v1"]))));
    assert!(matches!(store.append_atomic(untagged).await, Err(EventStoreError::InvalidInput(_))));
    let bad_tag = vec![event("A.v1", [Tag::new("a\u{1f}b")])];
    assert!(matches!(
        store.append(&stream("s-1"), ExpectedVersion::Any, bad_tag).await,
        Err(EventStoreError::InvalidInput(_))
    ));
    let bad_query = EventQuery::tagged([Tag::new("")]);
    assert!(matches!(
        store.read_query(&bad_query, GlobalPosition::START, 1).await,
        Err(EventStoreError::InvalidInput(_))
    ));
    assert_eq!(store.stream_version(&stream("s-1")).await.unwrap(), Version::INITIAL);
}

/// Starts this test binary as a child that claims seats in the file at `db` as `role`.
fn spawn_child(role: &str, db: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["child_process_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(DB, db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The seats a child reported, after checking that it succeeded.
async fn seats_won(child: std::process::Child) -> BTreeSet<u64> {
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if let Some(lost) = stdout.lines().find(|l| l.contains("races on a condition")) {
        println!("{lost}");
    }
    assert!(output.status.success(), "child failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let line = stdout.lines().find_map(|l| Some(&l[l.find(WON)? + WON.len()..]));
    let line = line.unwrap_or_else(|| panic!("no result in:\n{stdout}"));
    line.split(',').filter(|s| !s.is_empty()).map(|s| s.trim().parse().unwrap()).collect()
}

#[tokio::test]
async fn of_two_processes_claiming_the_same_seats_exactly_one_wins_each_seat() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    // Create the schema first, so the children do not race to migrate.
    SqliteEventStore::open(&db).await.unwrap().close().await.unwrap();
    let first = spawn_child("first", &db);
    let second = spawn_child("second", &db);
    // Whether the two actually raced depends on timing; the outcome must hold either way. The children
    // print how many condition failures they saw (visible with --nocapture).
    let (won_1, won_2) = (seats_won(first).await, seats_won(second).await);
    assert!(won_1.is_disjoint(&won_2), "a seat won twice: {:?}", won_1.intersection(&won_2).collect::<Vec<_>>());
    assert_eq!(won_1.len() + won_2.len(), SEATS as usize, "every seat is won: {won_1:?} {won_2:?}");
    let store = SqliteEventStore::open(&db).await.unwrap();
    assert_one_claim_per_seat(&store, &[("first", &won_1), ("second", &won_2)]).await;
    store.close().await.unwrap();
}

/// The child side of the cross-process test; does nothing when run as an ordinary test.
#[tokio::test]
async fn child_process_entry() {
    let (Ok(role), Ok(db)) = (std::env::var(ROLE), std::env::var(DB)) else { return };
    let store = SqliteEventStore::open(&db).await.unwrap();
    // Start together: say ready, then wait until both children are.
    let folder = Path::new(&db).parent().unwrap().to_path_buf();
    std::fs::write(folder.join(format!("ready-{role}")), b"").unwrap();
    while !(folder.join("ready-first").exists() && folder.join("ready-second").exists()) {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let (won, lost) = claim_seats(&store, &role).await;
    let list: Vec<String> = won.iter().map(u64::to_string).collect();
    println!("\n{role} lost {lost} races on a condition");
    println!("{WON}{}", list.join(","));
    store.close().await.unwrap();
}
