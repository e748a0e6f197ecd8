//! Cases about snapshots, checkpoints and the health check.

use std::sync::Arc;

use chrono::{SubsecRound, Utc};
use composable_rust_core::{CodecId, EventStore, GlobalPosition, Snapshot, StreamId, Version};

use super::{Names, assert_invalid_input, ok};

fn snapshot(stream_id: &StreamId, version: u64, payload: &[u8]) -> Snapshot {
    Snapshot {
        stream_id: stream_id.clone(),
        version: Version::new(version),
        schema_version: 1,
        codec: CodecId::Bincode,
        payload: payload.to_vec(),
        // Every backend stores microseconds; a truncated time must round-trip exactly.
        taken_at: Utc::now().trunc_subsecs(6),
    }
}

/// Saving a newer snapshot replaces the stream's previous one.
pub async fn snapshot_save_replaces_the_previous_one(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("snap");
    ok(store.save_snapshot(&snapshot(&stream, 5, b"five")).await, "save a snapshot");
    let newer = snapshot(&stream, 9, b"nine");
    ok(store.save_snapshot(&newer).await, "save a newer snapshot");
    let loaded = ok(store.load_snapshot(&stream).await, "load the snapshot");
    assert_eq!(loaded, Some(newer), "saving a snapshot must replace the previous one");
}

/// Saving many snapshots at once keeps, per stream, what saving them one by one keeps: the newest given (the
/// later of two at one version), unless the stored one is newer; and none for a stream not named.
pub async fn saving_many_snapshots_keeps_what_saving_them_one_by_one_keeps(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let [twice, stored_newer, fresh, untouched] =
        ["twice", "stored-newer", "fresh", "untouched"].map(|n| names.stream(n));
    ok(store.save_snapshot(&snapshot(&stored_newer, 7, b"seven")).await, "save a snapshot at version 7");
    let batch = [
        snapshot(&twice, 3, b"three"),
        snapshot(&stored_newer, 4, b"four"),
        snapshot(&twice, 5, b"five"),
        snapshot(&fresh, 2, b"two"),
        snapshot(&twice, 4, b"older four"),
        snapshot(&fresh, 2, b"two again"),
    ];
    ok(store.save_snapshots(&batch).await, "save six snapshots at once");
    let expected = [
        (&twice, Some(batch[2].clone()), "the newest of three must stay"),
        (&stored_newer, Some(snapshot(&stored_newer, 7, b"seven")), "an older snapshot must not replace a newer one"),
        (&fresh, Some(batch[5].clone()), "the later of two at one version must stay"),
        (&untouched, None, "a stream not named must have no snapshot"),
    ];
    for (stream, snapshot, why) in expected {
        let loaded = ok(store.load_snapshot(stream).await, "load a snapshot");
        assert_eq!(loaded.map(|s| (s.version, s.payload)), snapshot.map(|s| (s.version, s.payload)), "{stream}: {why}");
    }
    ok(store.save_snapshots(&[]).await, "save no snapshots");
}

/// Snapshots never go back in time: saving an older version than the stored snapshot succeeds and changes
/// nothing (a slow background write must not overwrite a newer snapshot), and a newer save still replaces.
pub async fn an_older_snapshot_never_replaces_a_newer_one(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("late");
    let five = snapshot(&stream, 5, b"five");
    ok(store.save_snapshot(&five).await, "save a snapshot at version 5");
    ok(store.save_snapshot(&snapshot(&stream, 3, b"three")).await, "save an older snapshot at version 3");
    assert_eq!(
        ok(store.load_snapshot(&stream).await, "load the snapshot"),
        Some(five),
        "a snapshot at version 3 must not replace the stored one at version 5"
    );
    let eight = snapshot(&stream, 8, b"eight");
    ok(store.save_snapshot(&eight).await, "save a newer snapshot at version 8");
    assert_eq!(
        ok(store.load_snapshot(&stream).await, "load the snapshot"),
        Some(eight),
        "a snapshot at version 8 must replace the stored one at version 5"
    );
}

/// A snapshot at the stored snapshot's version replaces it (a re-snapshot, say after a schema change).
pub async fn a_snapshot_at_the_same_version_replaces_the_stored_one(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("resnap");
    ok(store.save_snapshot(&snapshot(&stream, 4, b"old schema")).await, "save a snapshot at version 4");
    let again = Snapshot { schema_version: 2, ..snapshot(&stream, 4, b"new schema") };
    ok(store.save_snapshot(&again).await, "save another snapshot at version 4");
    assert_eq!(
        ok(store.load_snapshot(&stream).await, "load the snapshot"),
        Some(again),
        "a snapshot at the stored version must replace the stored one"
    );
}

/// Snapshots of one stream saved concurrently, in any order, leave the newest version stored.
pub async fn concurrent_snapshot_saves_keep_the_newest(store: Arc<dyn EventStore>) {
    const SAVES: u64 = 16;
    let names = Names::new();
    let stream = names.stream("raced");
    let barrier = Arc::new(tokio::sync::Barrier::new(usize::try_from(SAVES).unwrap_or(usize::MAX)));
    // Newest first, so that in the likely order of arrival every later save is an older one.
    let tasks: Vec<_> = (1..=SAVES)
        .rev()
        .map(|version| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            let saved = snapshot(&stream, version, &version.to_le_bytes());
            tokio::spawn(async move {
                barrier.wait().await;
                store.save_snapshot(&saved).await
            })
        })
        .collect();
    for task in tasks {
        match task.await {
            Ok(result) => ok(result, "save a snapshot concurrently"),
            Err(error) => panic!("a snapshot saving task failed: {error}"),
        }
    }
    let loaded = ok(store.load_snapshot(&stream).await, "load the snapshot");
    assert_eq!(
        loaded.map(|s| (s.version, s.payload)),
        Some((Version::new(SAVES), SAVES.to_le_bytes().to_vec())),
        "after concurrent saves of versions 1 to {SAVES} the stored snapshot must be version {SAVES}"
    );
}

/// Every field of a snapshot loads exactly as saved: version, schema version, codec, payload bytes, time.
pub async fn snapshot_round_trips_every_field(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let (binary, empty) = (names.stream("binary"), names.stream("empty"));
    let saved = Snapshot {
        schema_version: 7,
        codec: CodecId::Json,
        payload: (0..=255).cycle().take(70_000).collect(),
        ..snapshot(&binary, 12_345, b"")
    };
    ok(store.save_snapshot(&saved).await, "save a snapshot");
    ok(store.save_snapshot(&snapshot(&empty, 1, b"")).await, "save a snapshot with an empty payload");
    let loaded = ok(store.load_snapshot(&binary).await, "load the snapshot");
    assert_eq!(loaded.as_ref(), Some(&saved), "a snapshot must load exactly as saved");
    let loaded = ok(store.load_snapshot(&empty).await, "load the empty snapshot");
    assert_eq!(loaded.map(|s| s.payload), Some(Vec::new()), "an empty snapshot payload must load as empty");
}

/// A stream without a snapshot loads `None`, not an error.
pub async fn load_snapshot_of_unknown_stream_is_none(store: Arc<dyn EventStore>) {
    let names = Names::new();
    let loaded = ok(store.load_snapshot(&names.stream("never")).await, "load a missing snapshot");
    assert_eq!(loaded, None, "a stream without a snapshot must load None");
}

/// Loading the snapshots of many streams at once returns exactly what loading each would: the snapshot of
/// each stream that has one, every field intact, in the order asked, a stream named twice once, none for
/// streams without one (ids with quotes, commas, brackets and non-ASCII characters included).
pub async fn load_snapshots_returns_each_existing_snapshot_in_the_order_asked(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let (a, b, c, d) = (names.stream("a"), names.stream("b 'quoted' \"x\""), names.stream("c,[d]"), names.stream("ü✉"));
    let none = names.stream("none");
    let snap_a = Snapshot { schema_version: 3, codec: CodecId::Json, ..snapshot(&a, 7, b"{\"a\":1}") };
    let (snap_c, snap_d) = (snapshot(&c, 1, b""), snapshot(&d, 40, &[0, 255, 1]));
    for saved in [&snap_a, &snap_c, &snap_d] {
        ok(store.save_snapshot(saved).await, "save a snapshot");
    }
    let asked = [d.clone(), none.clone(), a.clone(), b.clone(), d.clone(), c.clone(), a.clone()];
    let loaded = ok(store.load_snapshots(&asked).await, "load the snapshots of several streams");
    assert_eq!(
        loaded,
        vec![snap_d.clone(), snap_a.clone(), snap_c.clone()],
        "load_snapshots must return the snapshot of each stream that has one, in the order asked, each once"
    );
    for stream in [&a, &b, &c, &d, &none] {
        let one = ok(store.load_snapshot(stream).await, "load a snapshot");
        let many = ok(store.load_snapshots(std::slice::from_ref(stream)).await, "load the snapshot of one stream");
        assert_eq!(many, one.into_iter().collect::<Vec<_>>(), "load_snapshots must agree with load_snapshot");
    }
    assert_eq!(ok(store.load_snapshots(&[]).await, "load no snapshots"), Vec::new(), "asking for no stream loads none");
    assert_eq!(
        ok(store.load_snapshots(&[b, none]).await, "load snapshots of streams without one"),
        Vec::new(),
        "streams without snapshots load none"
    );
}

/// Deleting removes the snapshot and reports whether there was one.
pub async fn delete_snapshot_reports_whether_one_existed(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("deleted");
    assert!(
        !ok(store.delete_snapshot(&stream).await, "delete a missing snapshot"),
        "deleting no snapshot must report false"
    );
    ok(store.save_snapshot(&snapshot(&stream, 3, b"three")).await, "save a snapshot");
    assert!(ok(store.delete_snapshot(&stream).await, "delete the snapshot"), "deleting a snapshot must report true");
    assert_eq!(
        ok(store.load_snapshot(&stream).await, "load a deleted snapshot"),
        None,
        "a deleted snapshot must be gone"
    );
    assert!(
        !ok(store.delete_snapshot(&stream).await, "delete again"),
        "deleting twice must report false the second time"
    );
}

/// Each stream has its own snapshot; saving or deleting one leaves the others alone.
pub async fn snapshots_are_isolated_per_stream(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let (a, b) = (names.stream("1"), names.stream("10"));
    let (snap_a, snap_b) = (snapshot(&a, 1, b"a"), snapshot(&b, 2, b"b"));
    ok(store.save_snapshot(&snap_a).await, "save a snapshot");
    ok(store.save_snapshot(&snap_b).await, "save a snapshot");
    assert_eq!(
        ok(store.load_snapshot(&a).await, "load").as_ref(),
        Some(&snap_a),
        "each stream must keep its own snapshot"
    );
    ok(store.delete_snapshot(&a).await, "delete a snapshot");
    assert_eq!(ok(store.load_snapshot(&a).await, "load"), None);
    assert_eq!(
        ok(store.load_snapshot(&b).await, "load"),
        Some(snap_b),
        "deleting one stream's snapshot must not touch another's"
    );
}

/// Checkpoints are kept per handler, start missing, and move forward when saved.
pub async fn checkpoints_are_per_handler_and_move_forward(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let (first, second) = (names.handler("projection"), names.handler("mailer ✉"));
    assert_eq!(
        ok(store.load_checkpoint(&first).await, "load a missing checkpoint"),
        None,
        "a new handler has no checkpoint"
    );

    ok(store.save_checkpoint(&first, GlobalPosition::new(5)).await, "save a checkpoint");
    ok(store.save_checkpoint(&second, GlobalPosition::new(9)).await, "save a checkpoint");
    assert_eq!(ok(store.load_checkpoint(&first).await, "load"), Some(GlobalPosition::new(5)));
    assert_eq!(
        ok(store.load_checkpoint(&second).await, "load"),
        Some(GlobalPosition::new(9)),
        "handlers must not share checkpoints"
    );

    ok(store.save_checkpoint(&first, GlobalPosition::new(12)).await, "move a checkpoint forward");
    assert_eq!(
        ok(store.load_checkpoint(&first).await, "load"),
        Some(GlobalPosition::new(12)),
        "saving a later position must move the checkpoint forward"
    );
    ok(store.save_checkpoint(&first, GlobalPosition::new(12)).await, "save the same checkpoint again");
    assert_eq!(ok(store.load_checkpoint(&first).await, "load"), Some(GlobalPosition::new(12)));
    assert_eq!(
        ok(store.load_checkpoint(&second).await, "load"),
        Some(GlobalPosition::new(9)),
        "saving one handler's checkpoint must not touch another's"
    );
}

/// A save at a position before the stored checkpoint succeeds and leaves the stored checkpoint: a slow
/// instance that lost its lease never moves a handler back over events handled since.
pub async fn a_lower_checkpoint_save_does_not_move_it_back(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let handler = names.handler("fenced");
    ok(store.save_checkpoint(&handler, GlobalPosition::new(12)).await, "save a checkpoint");
    for lower in [GlobalPosition::new(11), GlobalPosition::new(1), GlobalPosition::START] {
        ok(store.save_checkpoint(&handler, lower).await, "save a checkpoint before the stored one");
        assert_eq!(
            ok(store.load_checkpoint(&handler).await, "load"),
            Some(GlobalPosition::new(12)),
            "saving position {lower} moved the checkpoint back from 12: saves must only move it forward"
        );
    }
}

/// Deleting a checkpoint is the way back to the start (a rebuild): the handler then has none, saves
/// start over from any position, and other handlers keep theirs.
pub async fn delete_checkpoint_moves_it_back_to_the_start(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let (rebuilt, other) = (names.handler("rebuilt"), names.handler("other"));
    ok(store.save_checkpoint(&rebuilt, GlobalPosition::new(12)).await, "save a checkpoint");
    ok(store.save_checkpoint(&other, GlobalPosition::new(7)).await, "save a checkpoint");
    assert!(ok(store.delete_checkpoint(&rebuilt).await, "delete a checkpoint"), "there was a checkpoint to delete");
    assert_eq!(
        ok(store.load_checkpoint(&rebuilt).await, "load a deleted checkpoint"),
        None,
        "a deleted checkpoint must be gone"
    );
    assert!(
        !ok(store.delete_checkpoint(&rebuilt).await, "delete a missing checkpoint"),
        "deleting a missing checkpoint must report that there was none"
    );
    ok(store.save_checkpoint(&rebuilt, GlobalPosition::new(3)).await, "save after the delete");
    assert_eq!(
        ok(store.load_checkpoint(&rebuilt).await, "load"),
        Some(GlobalPosition::new(3)),
        "after a delete, the rebuild's first save must be stored, however low"
    );
    assert_eq!(
        ok(store.load_checkpoint(&other).await, "load"),
        Some(GlobalPosition::new(7)),
        "deleting one handler's checkpoint must not touch another's"
    );
    assert_invalid_input(store.delete_checkpoint("").await, "deleting the checkpoint of an empty handler name");
}

/// Empty, over-long and control-character handler names are invalid input; 255 bytes is fine.
pub async fn invalid_handler_names_are_invalid_input(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let too_long = format!("{}{}", names.handler(""), "h".repeat(256));
    for (what, handler) in [
        ("an empty handler name", String::new()),
        ("a handler name with a newline", names.handler("a\nb")),
        ("a handler name over 255 bytes", too_long),
    ] {
        assert_invalid_input(store.save_checkpoint(&handler, GlobalPosition::new(1)).await, what);
    }
    let base = names.handler("");
    let longest = format!("{base}{}", "h".repeat(255 - base.len()));
    ok(store.save_checkpoint(&longest, GlobalPosition::new(3)).await, "save a checkpoint with a 255-byte handler name");
    assert_eq!(ok(store.load_checkpoint(&longest).await, "load"), Some(GlobalPosition::new(3)));
}

/// The health check answers on a working store.
pub async fn health_check_answers(store: Arc<dyn EventStore>) {
    let report = ok(store.health_check().await, "health_check");
    assert!(!report.backend.is_empty(), "the health report must name the backend");
}
