//! [`EventLog::import`](composable_rust_core::backend::EventLog::import) on PostgreSQL: a batch of events
//! recorded elsewhere, written again in one transaction with their ids, versions, times and tags.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use composable_rust_core::backend::{EventTypeCache, ImportStep, plan_import, validate_import};
use composable_rust_core::{EventStoreError, GlobalPosition, InvalidInput, RecordedEvent, StreamId, Tag, Version};
use futures::TryStreamExt;
use uuid::Uuid;

use super::{Batch, PostgresEventStore, decode_event, from_db, is_unique_violation, joined, stream_id_of, to_db};
use crate::sql;

/// An import batch as bound arrays, one per column, for [`sql::IMPORT`]: the append's columns and the
/// stream, version, time and tags an import keeps.
struct ImportBatch<'a> {
    stream_ids: Vec<&'a str>,
    versions: Vec<i64>,
    events: Batch<'a>,
    recorded_at: Vec<DateTime<Utc>>,
    tags: Vec<Option<String>>,
}

impl<'a> ImportBatch<'a> {
    fn new(events: &[&'a RecordedEvent]) -> Self {
        use chrono::SubsecRound as _;
        Self {
            stream_ids: events.iter().map(|e| e.stream_id.as_str()).collect(),
            versions: events.iter().map(|e| to_db(e.version.get())).collect(),
            events: Batch::of(events.to_vec()),
            recorded_at: events.iter().map(|e| e.recorded_at.trunc_subsecs(6)).collect(),
            tags: events.iter().map(|e| (!e.tags.is_empty()).then(|| joined(&e.tags))).collect(),
        }
    }
}

/// Whether an import attempt looks its ids up before planning (see [`PostgresEventStore::import_batch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdLookup {
    /// Only when the plan without them fails; a stored id met by the insert ends the attempt.
    OnlyIfNeeded,
    /// Always, before planning.
    First,
}

impl PostgresEventStore {
    /// [`EventLog::import`](composable_rust_core::backend::EventLog::import): one transaction that takes the
    /// tags' shared locks, reads the streams' versions, applies [`plan_import`] and inserts the events to
    /// write with [`sql::IMPORT`].
    ///
    /// The ids are looked up only when they can matter. A fresh import stores none of them, so the batch is
    /// first planned as if none were stored: an event stored exactly as given fails that plan (its stream is
    /// at or past its version) and is looked up then, in the same transaction; an id stored for another
    /// event fails the insert on `events_event_id_idx`. A unique violation (that, or a version taken by a
    /// concurrent writer between the check and the insert) rolls the attempt back, and the import runs once
    /// more with its ids looked up first, so that the error names the stored event (or the retry finds it
    /// stored).
    pub(super) async fn import_batch(
        &self,
        events: Vec<RecordedEvent>,
    ) -> Result<Vec<GlobalPosition>, EventStoreError> {
        validate_import(&events)?;
        if events.len() > sql::MAX_BATCH {
            return Err(InvalidInput::Other(format!(
                "an import of {} events is too large: at most {} events fit in one import; split it",
                events.len(),
                sql::MAX_BATCH
            ))
            .into());
        }
        if let Some(event) = events.iter().find(|e| e.metadata.actor.as_deref().is_some_and(|a| a.contains('\0'))) {
            return Err(InvalidInput::Other(format!(
                "metadata.actor of event {} contains a NUL character, which PostgreSQL text cannot store",
                event.id
            ))
            .into());
        }
        match self.try_import(&events, IdLookup::OnlyIfNeeded).await {
            Err(ImportFailure::Duplicate) => match self.try_import(&events, IdLookup::First).await {
                Err(ImportFailure::Duplicate) => Err(EventStoreError::backend(
                    format!("import {} events", events.len()),
                    "another writer took a version or an id of the import twice in a row; stop the writers and retry",
                )),
                other => other.map_err(ImportFailure::into_error),
            },
            other => other.map_err(ImportFailure::into_error),
        }
    }

    async fn try_import(
        &self,
        events: &[RecordedEvent],
        lookup: IdLookup,
    ) -> Result<Vec<GlobalPosition>, ImportFailure> {
        let operation = || format!("import {} events", events.len());
        let fail = |e| ImportFailure::Failed(self.context.map(operation(), e));
        let mut tx = self.pool.begin().await.map_err(fail)?;
        let mut tags: Vec<&str> = events.iter().flat_map(|e| e.tags.iter().map(Tag::as_str)).collect();
        if !tags.is_empty() {
            tags.sort_unstable();
            tags.dedup();
            sqlx::query(sql::IMPORT_TAG_LOCKS).bind(&tags).execute(&mut *tx).await.map_err(fail)?;
        }
        let mut streams: Vec<&str> = events.iter().map(|e| e.stream_id.as_str()).collect();
        streams.sort_unstable();
        streams.dedup();
        let rows: Vec<(String, i64)> =
            sqlx::query_as(sql::STREAM_VERSIONS).bind(&streams).fetch_all(&mut *tx).await.map_err(fail)?;
        let mut versions = HashMap::with_capacity(rows.len());
        for (stream_id, version) in rows {
            let stream_id = StreamId::new(stream_id).map_err(|e| ImportFailure::Failed(e.into()))?;
            versions.insert(stream_id, Version::new(from_db(version)));
        }
        let planned = match lookup {
            IdLookup::OnlyIfNeeded => plan_import(events, &[], &versions).ok(),
            IdLookup::First => None,
        };
        let steps = match planned {
            Some(steps) => steps,
            None => {
                let ids: Vec<Uuid> = events.iter().map(|e| e.id.as_uuid()).collect();
                let mut stored = Vec::new();
                let mut rows = sqlx::query(sql::EVENTS_BY_ID).bind(&ids).fetch(&mut *tx);
                let mut last_stream = None;
                let mut types = EventTypeCache::default();
                while let Some(row) = rows.try_next().await.map_err(fail)? {
                    let event = stream_id_of(&row, &mut last_stream)
                        .and_then(|stream_id| decode_event(&row, stream_id, 1, &mut types))
                        .map_err(|e| ImportFailure::Failed(self.context.map_decode(operation, e)))?;
                    stored.push(event);
                }
                drop(rows);
                plan_import(events, &stored, &versions).map_err(ImportFailure::Failed)?
            }
        };
        let written: Vec<&RecordedEvent> =
            events.iter().zip(&steps).filter(|(_, step)| **step == ImportStep::Write).map(|(e, _)| e).collect();
        let mut next = 0;
        if !written.is_empty() {
            let batch = ImportBatch::new(&written);
            let inserted = sqlx::query_scalar::<_, i64>(sql::IMPORT)
                .bind(&batch.stream_ids)
                .bind(&batch.versions)
                .bind(&batch.events.ids)
                .bind(&batch.events.event_types)
                .bind(&batch.events.codecs)
                .bind(&batch.events.payloads)
                .bind(&batch.events.correlation_ids)
                .bind(&batch.events.causation_ids)
                .bind(&batch.events.actors)
                .bind(&batch.events.extras)
                .bind(&batch.recorded_at)
                .bind(&batch.tags)
                .fetch_all(&mut *tx)
                .await;
            let inserted = match inserted {
                Ok(positions) => positions,
                Err(e) if is_unique_violation(&e) => return Err(ImportFailure::Duplicate),
                Err(e) => return Err(fail(e)),
            };
            // Positions are (xid << 20) + ordinal: the smallest is the first event's.
            next = from_db(inserted.iter().copied().min().unwrap_or_default());
            tx.commit().await.map_err(fail)?;
            self.notifier.committed(&self.pool);
        }
        Ok(steps
            .iter()
            .map(|step| match step {
                ImportStep::Stored(position) => *position,
                ImportStep::Write => {
                    next += 1;
                    GlobalPosition::new(next - 1)
                }
            })
            .collect())
    }
}

/// Why one import attempt wrote nothing.
enum ImportFailure {
    /// A unique index refused a row: an id stored that was not looked up, or a concurrent writer took a
    /// version or an id.
    Duplicate,
    Failed(EventStoreError),
}

impl ImportFailure {
    fn into_error(self) -> EventStoreError {
        match self {
            Self::Duplicate => EventStoreError::backend("import events", "a unique index refused a row"),
            Self::Failed(error) => error,
        }
    }
}
