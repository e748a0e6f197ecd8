//! The composable-rust side: `PostgresEventStore` called directly, `read_query` then `append_atomic` under
//! `page.condition(query)`, as a decision would.

use composable_rust_core::backend::EventLog;
use composable_rust_core::{
    AtomicAppend, CodecId, EventQuery, ExpectedVersion, GlobalPosition, Metadata, NewEvent, QueryPage, RecordedEvent,
    StreamId, Tag,
};
use composable_rust_postgres::PostgresEventStore;
use serde::Serialize;
use sqlx::PgPool;

use crate::events::{CourseDefined, Deposited, StudentEnrolled, UsernameRegistered};
use crate::{BenchError, Enrolment, Side};

/// Events per page of `read_query`; a decision reads on from the horizon when a page is full.
const PAGE: usize = 1_000;

/// composable-rust's PostgreSQL store on its own database.
#[derive(Clone)]
pub(crate) struct ComposableRust {
    store: PostgresEventStore,
}

impl ComposableRust {
    /// The store on `pool`, with its schema created.
    pub(crate) async fn open(pool: PgPool) -> Result<Self, BenchError> {
        let store = PostgresEventStore::from_pool(pool);
        store.migrate().await.map_err(|e| BenchError::from_store("creating the schema", &e))?;
        Ok(Self { store })
    }

    /// Every event matching `query`, page after page, with the horizon the read is complete up to.
    async fn read_all(&self, query: &EventQuery) -> Result<QueryPage, BenchError> {
        let mut events = Vec::new();
        let mut after = GlobalPosition::START;
        loop {
            let page = self
                .store
                .read_query(query, after, PAGE)
                .await
                .map_err(|e| BenchError::from_store("read_query", &e))?;
            let full = page.events.len() == PAGE;
            after = page.horizon;
            events.extend(page.events);
            if !full {
                return Ok(QueryPage { events, horizon: after });
            }
        }
    }
}

fn new_event(event_type: &str, payload: &impl Serialize, tags: Vec<Tag>) -> Result<NewEvent, BenchError> {
    let payload = serde_json::to_vec(payload).map_err(|e| BenchError::new(format!("encoding {event_type}: {e}")))?;
    Ok(NewEvent::new(event_type, CodecId::Json, payload, Metadata::default()).with_tags(tags))
}

fn stream(id: String) -> Result<StreamId, BenchError> {
    StreamId::new(id).map_err(|e| BenchError::new(format!("stream id: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(event: &RecordedEvent) -> Result<T, BenchError> {
    event.decode().map_err(|e| BenchError::new(format!("decoding {}: {e}", event.event_type)))
}

impl Side for ComposableRust {
    const NAME: &'static str = "composable-rust";

    async fn plain_append(&self, i: u64) -> Result<(), BenchError> {
        let username = format!("p{i}");
        let payload = UsernameRegistered { username: username.clone(), user_id: format!("user-p{i}") };
        let event = new_event("UsernameRegistered", &payload, vec![Tag::of("username", &username)])?;
        self.store
            .append(&stream(format!("user-p{i}"))?, ExpectedVersion::Any, vec![event])
            .await
            .map(|_| ())
            .map_err(|e| BenchError::from_store("append", &e))
    }

    async fn register(&self, i: u64) -> Result<u32, BenchError> {
        let username = format!("u{i}");
        let query = EventQuery::tagged([Tag::of("username", &username)]);
        let mut conflicts = 0;
        loop {
            let page = self.read_all(&query).await?;
            if !page.events.is_empty() {
                return Err(BenchError::new(format!("username {username} is taken: the database was not fresh")));
            }
            let payload = UsernameRegistered { username: username.clone(), user_id: format!("user-{i}") };
            let event = new_event("UsernameRegistered", &payload, vec![Tag::of("username", &username)])?;
            let append = AtomicAppend::new()
                .stream(stream(format!("user-{i}"))?, ExpectedVersion::Any, vec![event])
                .condition(page.condition(query.clone()));
            match self.store.append_atomic(append).await {
                Ok(_) => return Ok(conflicts),
                Err(e) if e.is_conflict() => conflicts += 1,
                Err(e) => return Err(BenchError::from_store("append_atomic", &e)),
            }
        }
    }

    async fn define_course(&self, course: &str, capacity: u32) -> Result<(), BenchError> {
        let payload = CourseDefined { course_id: course.to_owned(), capacity };
        let event = new_event("CourseDefined", &payload, vec![Tag::of("course", course)])?;
        self.store
            .append(&stream(format!("course-{course}"))?, ExpectedVersion::NoStream, vec![event])
            .await
            .map(|_| ())
            .map_err(|e| BenchError::from_store("append", &e))
    }

    async fn enroll(&self, course: &str, student: u64) -> Result<Enrolment, BenchError> {
        let query = EventQuery::tagged([Tag::of("course", course)]);
        let mut conflicts = 0;
        loop {
            let page = self.read_all(&query).await?;
            let (mut capacity, mut enrolled) = (0, 0);
            for event in &page.events {
                if event.event_type == "CourseDefined" {
                    capacity = decode::<CourseDefined>(event)?.capacity;
                } else if event.event_type == "StudentEnrolled" {
                    decode::<StudentEnrolled>(event)?;
                    enrolled += 1;
                }
            }
            if enrolled >= capacity {
                return Ok(Enrolment::Full { conflicts });
            }
            let student_id = format!("s{student}");
            let payload = StudentEnrolled { course_id: course.to_owned(), student_id: student_id.clone() };
            let tags = vec![Tag::of("course", course), Tag::of("student", &student_id)];
            let event = new_event("StudentEnrolled", &payload, tags)?;
            let append = AtomicAppend::new()
                .stream(stream(format!("enrolment-{course}-{student_id}"))?, ExpectedVersion::Any, vec![event])
                .condition(page.condition(query.clone()));
            match self.store.append_atomic(append).await {
                Ok(_) => return Ok(Enrolment::Enrolled { conflicts }),
                Err(e) if e.is_conflict() => conflicts += 1,
                Err(e) => return Err(BenchError::from_store("append_atomic", &e)),
            }
        }
    }

    async fn load(&self, batch: u64, first: u64, count: u64, accounts: u64) -> Result<(), BenchError> {
        let events = (first..first + count)
            .map(|i| {
                let account = format!("a{}", i % accounts);
                let payload = Deposited { account_id: account.clone(), amount: i };
                new_event("Deposited", &payload, vec![Tag::of("account", &account)])
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.store
            .append(&stream(format!("load-{batch}"))?, ExpectedVersion::NoStream, events)
            .await
            .map(|_| ())
            .map_err(|e| BenchError::from_store("append", &e))
    }

    async fn read_account(&self, account: u64) -> Result<usize, BenchError> {
        let query = EventQuery::tagged([Tag::of("account", format!("a{account}"))]);
        let page = self.read_all(&query).await?;
        for event in &page.events {
            decode::<Deposited>(event)?;
        }
        Ok(page.events.len())
    }
}
