//! [`JetStreamBus`]: the [`EventBus`] on NATS JetStream.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, StorageType};
use async_nats::jetstream::{self, Context};
use async_nats::{ConnectOptions, jetstream::message::Acker};
use composable_rust_core::{RecordedEvent, async_trait};
use futures::StreamExt;

use crate::bus::{ConsumerConfig, Deliveries, EventBus, PublishReport, StartAt};
use crate::delivery::{Ack, Acknowledge, Delivery};
use crate::error::{BusError, check_name};
use crate::wire;

/// How to reach JetStream and the stream that holds the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetStreamConfig {
    /// The server, e.g. `nats://127.0.0.1:4222` (a comma-separated list for a cluster).
    pub url: String,
    /// The first subject token: events go to `<prefix>.<category>.<stream id>`. Default `events`.
    pub prefix: String,
    /// The JetStream stream that stores `<prefix>.>`. Default: the prefix in capitals, `.` as `_`.
    pub stream: String,
    /// Copies of each event the cluster keeps (1 on a single server, 3 on a 3-node cluster).
    pub replicas: usize,
    /// How long JetStream remembers an event id to drop a second copy. Default: 2 minutes (JetStream's).
    /// An outbox that restarts later than this after a crash republishes the page it had not
    /// checkpointed, and consumers drop those copies by event id.
    pub duplicate_window: Duration,
    /// Longest wait for the server to acknowledge a publish. Default 10 s.
    pub ack_timeout: Duration,
    /// Longest wait for a connection (also the first one, which fails instead of retrying). Default 5 s.
    pub connect_timeout: Duration,
    /// Whether a failed publish may leave a stream's events out of order on the bus. Default: it may not
    /// ([`StreamOrder::Kept`]).
    pub stream_order: StreamOrder,
}

/// What a batch's publish promises about each stream's order when a publish fails midway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamOrder {
    /// One event of a stream in flight at a time (publishing in waves, see `JetStreamBus::publish`): a
    /// failed event was never followed by a later one of its stream, so the retry keeps every stream's
    /// order. Costs a round trip per event of the same stream in a batch: 12k events/s through the outbox
    /// when every page is one stream, as fast as `Pipelined` when pages mix many (docs/performance.md).
    #[default]
    Kept,
    /// The whole batch in flight at once, the fastest (58–63k events/s through the outbox). If an event is
    /// lost (a connection dropped mid-batch, a new cluster leader) while a later event of its stream is
    /// stored, the retry stores it after that one: consumers that need strict order check `version`.
    Pipelined,
}

impl JetStreamConfig {
    /// Events under `prefix` on the server at `url`, one replica.
    #[must_use]
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        Self {
            url: url.into(),
            stream: prefix.to_uppercase().replace('.', "_"),
            prefix,
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            ack_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            stream_order: StreamOrder::default(),
        }
    }

    /// Publishes with `order` (see [`StreamOrder`]).
    #[must_use]
    pub fn stream_order(mut self, order: StreamOrder) -> Self {
        self.stream_order = order;
        self
    }

    /// Keeps `replicas` copies of each event.
    #[must_use]
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas.max(1);
        self
    }
}

/// The [`EventBus`] on NATS JetStream: one stream per prefix, one durable pull consumer per group.
///
/// - Publishing is pipelined: every event of a batch is sent before the first acknowledgement is awaited
///   (async acks), each with `Nats-Msg-Id` = its event id, so JetStream drops a second copy within the
///   duplicate window.
/// - A group is a durable pull consumer with explicit acks; consumers of one group pull from it and share
///   its events. At most [`ConsumerConfig::max_in_flight`] deliveries wait for their ack
///   (`max_ack_pending`): past that the server holds the rest back.
/// - The client reconnects by itself after a lost connection, waiting longer after each failed attempt
///   (100 ms doubling up to 5 s); publishes and pulls in between fail and are retried by their callers.
#[derive(Clone)]
pub struct JetStreamBus {
    context: Context,
    config: JetStreamConfig,
}

impl JetStreamBus {
    /// Connects and creates the stream if it does not exist.
    ///
    /// # Errors
    /// [`BusError::Connect`] when no server answers within [`JetStreamConfig::connect_timeout`];
    /// [`BusError::Setup`] when the stream cannot be created (JetStream off, a clashing stream);
    /// [`BusError::InvalidName`] for a prefix NATS cannot use.
    pub async fn connect(config: JetStreamConfig) -> Result<Self, BusError> {
        check_name("subject prefix", &config.prefix, true)?;
        check_name("stream name", &config.stream, false)?;
        let servers: Vec<&str> = config.url.split(',').map(str::trim).filter(|url| !url.is_empty()).collect();
        let client = ConnectOptions::new()
            .connection_timeout(config.connect_timeout)
            .reconnect_delay_callback(reconnect_delay)
            .connect(servers.as_slice())
            .await
            .map_err(|e| BusError::Connect { url: config.url.clone(), source: e.into() })?;
        let context = jetstream::ContextBuilder::new().timeout(config.ack_timeout).build(client);
        let stream_config = stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.>", config.prefix)],
            storage: StorageType::File,
            num_replicas: config.replicas,
            duplicate_window: config.duplicate_window,
            ..stream::Config::default()
        };
        context
            .get_or_create_stream(stream_config)
            .await
            .map_err(|e| BusError::Setup { stream: config.stream.clone(), source: e.into() })?;
        Ok(Self { context, config })
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> &JetStreamConfig {
        &self.config
    }

    /// How many events the stream holds (for tests and tools).
    ///
    /// # Errors
    /// [`BusError::Setup`] when the stream cannot be read.
    pub async fn stored(&self) -> Result<u64, BusError> {
        let mut stream = self.stream().await?;
        let info = stream
            .info()
            .await
            .map_err(|e| BusError::Setup { stream: self.config.stream.clone(), source: e.into() })?;
        Ok(info.state.messages)
    }

    /// The name of the server that leads the stream's replicas, on a cluster (for tests and tools).
    ///
    /// # Errors
    /// [`BusError::Setup`] when the stream cannot be read.
    pub async fn stream_leader(&self) -> Result<Option<String>, BusError> {
        let mut stream = self.stream().await?;
        let info = stream
            .info()
            .await
            .map_err(|e| BusError::Setup { stream: self.config.stream.clone(), source: e.into() })?;
        Ok(info.cluster.as_ref().and_then(|cluster| cluster.leader.clone()))
    }

    /// Deletes the stream with every event and consumer group in it (for tests and tools; the bus is
    /// unusable afterwards).
    ///
    /// # Errors
    /// [`BusError::Setup`] when the server refuses.
    pub async fn delete_stream(&self) -> Result<(), BusError> {
        self.context
            .delete_stream(&self.config.stream)
            .await
            .map(|_| ())
            .map_err(|e| BusError::Setup { stream: self.config.stream.clone(), source: e.into() })
    }

    async fn stream(&self) -> Result<stream::Stream, BusError> {
        self.context
            .get_stream(&self.config.stream)
            .await
            .map_err(|e| BusError::Setup { stream: self.config.stream.clone(), source: e.into() })
    }

    fn consumer_config(&self, config: &ConsumerConfig) -> pull::Config {
        // A 2.9 server takes one filter subject: several categories read everything and skip here.
        let filter_subject = match config.categories.as_slice() {
            [one] => wire::category_filter(&self.config.prefix, one),
            _ => format!("{}.>", self.config.prefix),
        };
        let deliver_policy = match config.start {
            StartAt::Beginning => DeliverPolicy::All,
            StartAt::New => DeliverPolicy::New,
            StartAt::Sequence(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
            StartAt::Time(time) => DeliverPolicy::ByStartTime { start_time: to_offset_date_time(time) },
        };
        pull::Config {
            durable_name: Some(config.group.clone()),
            filter_subject,
            deliver_policy,
            ack_policy: AckPolicy::Explicit,
            ack_wait: config.ack_wait,
            max_ack_pending: i64::try_from(config.max_in_flight).unwrap_or(i64::MAX),
            ..pull::Config::default()
        }
    }
}

impl fmt::Debug for JetStreamBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JetStreamBus").field("config", &self.config).finish_non_exhaustive()
    }
}

fn reconnect_delay(attempts: usize) -> Duration {
    let exponent = u32::try_from(attempts.min(6)).unwrap_or(6);
    Duration::from_millis(100 * 2_u64.pow(exponent)).min(Duration::from_secs(5))
}

fn to_offset_date_time(time: chrono::DateTime<chrono::Utc>) -> time::OffsetDateTime {
    let nanos = i128::from(time.timestamp()) * 1_000_000_000 + i128::from(time.timestamp_subsec_nanos());
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[async_trait]
impl EventBus for JetStreamBus {
    async fn publish(&self, events: &[RecordedEvent]) -> Result<PublishReport, BusError> {
        let failed = |event: &RecordedEvent, subject: String, source: async_nats::Error| BusError::Publish {
            subject,
            event_id: event.id,
            source,
        };
        // In waves (see `waves`): one round trip per wave instead of one per event, and never two events of
        // one stream in flight; or, pipelined, the whole batch as one wave.
        let mut report = PublishReport::default();
        let waves = match self.config.stream_order {
            StreamOrder::Kept => waves(events),
            StreamOrder::Pipelined => vec![events.iter().collect()],
        };
        for wave in waves {
            let mut pending = Vec::with_capacity(wave.len());
            for event in wave {
                let subject = wire::subject(&self.config.prefix, &event.stream_id);
                let message = PublishMessage::build().headers(wire::headers(event)).payload(event.payload.clone());
                match self.context.send_publish(subject.clone(), message).await {
                    Ok(ack) => pending.push((event, subject, ack)),
                    Err(e) => return Err(failed(event, subject, e.into())),
                }
            }
            for (event, subject, ack) in pending {
                let ack = ack.await.map_err(|e| failed(event, subject, e.into()))?;
                if ack.duplicate {
                    report.duplicates += 1;
                } else {
                    report.stored += 1;
                }
            }
        }
        Ok(report)
    }

    async fn consume(&self, config: &ConsumerConfig) -> Result<Deliveries, BusError> {
        config.check()?;
        let consume_error = |source: async_nats::Error| BusError::Consume { group: config.group.clone(), source };
        let stream = self.stream().await?;
        let consumer: async_nats::jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(&config.group, self.consumer_config(config))
            .await
            .map_err(|e| consume_error(e.into()))?;
        let batch = config.max_in_flight.clamp(1, 1000);
        let messages = consumer
            .stream()
            .max_messages_per_batch(batch)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| consume_error(e.into()))?;
        let group = config.group.clone();
        let wanted = config.clone();
        let deliveries = messages.filter_map(move |message| {
            let group = group.clone();
            let wanted = wanted.clone();
            async move {
                let message = match message {
                    Ok(message) => message,
                    Err(e) => return Some(Err(BusError::Consume { group, source: e.into() })),
                };
                let (sequence, attempt) = match message.info() {
                    Ok(info) => (info.stream_sequence, u64::try_from(info.delivered).unwrap_or(1)),
                    Err(_) => (0, 1),
                };
                let (message, acker) = message.split();
                match wire::decode(message.headers.as_ref(), message.payload) {
                    Ok(event) if wanted.wants(&event) => {
                        let ack = Ack::new(JetStreamAck { acker, event_id: event.id });
                        Some(Ok(Delivery { event: Arc::new(event), sequence, attempt, ack }))
                    }
                    Ok(_) => {
                        // Not one of the group's categories (a group of several reads all): settled here.
                        let _ = acker.ack().await;
                        None
                    }
                    Err(reason) => {
                        let _ = acker.ack_with(AckKind::Term).await;
                        Some(Err(BusError::Malformed { sequence, reason }))
                    }
                }
            }
        });
        Ok(deliveries.boxed())
    }
}

struct JetStreamAck {
    acker: Acker,
    event_id: composable_rust_core::EventId,
}

#[async_trait]
impl Acknowledge for JetStreamAck {
    async fn ack(&self) -> Result<(), BusError> {
        // A double ack: the server confirms it, so an acknowledged event is not delivered again.
        self.acker.double_ack().await.map_err(|source| BusError::Ack { event_id: self.event_id, source })
    }

    async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        self.acker
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(|source| BusError::Ack { event_id: self.event_id, source })
    }
}

/// `events` split into waves to publish one after the other: wave `n` holds the `n`-th event of each stream
/// (in the batch's order). Only one event of a stream is in flight at a time, so when a publish fails no later
/// event of its stream has been sent, and a retry of the batch cannot store a stream's events out of order (a
/// later one stored before an earlier one that was lost, as a connection dropped mid-batch or a new cluster
/// leader could do). A batch over many streams is one wave; a batch of one stream is one event per wave.
fn waves(events: &[RecordedEvent]) -> Vec<Vec<&RecordedEvent>> {
    let mut waves: Vec<Vec<&RecordedEvent>> = Vec::new();
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for event in events {
        let nth = seen.entry(event.stream_id.as_str()).or_insert(0);
        match waves.get_mut(*nth) {
            Some(wave) => wave.push(event),
            None => waves.push(vec![event]),
        }
        *nth += 1;
    }
    waves
}

#[cfg(test)]
mod wave_tests {
    use composable_rust_core::{
        CodecId, EventId, EventType, GlobalPosition, Metadata, RecordedEvent, StreamId, Version,
    };
    use proptest::prelude::*;

    use super::waves;

    fn event(stream: u8, position: u64) -> RecordedEvent {
        RecordedEvent {
            id: EventId::generate(),
            stream_id: StreamId::new(format!("s-{stream}")).expect("a valid stream id"),
            version: Version::new(position),
            position: GlobalPosition::new(position),
            event_type: EventType::from("Noted.v1"),
            codec: CodecId::Json,
            payload: b"{}".to_vec().into(),
            metadata: Metadata::default(),
            recorded_at: chrono::Utc::now(),
            tags: Vec::new(),
        }
    }

    proptest! {
        #[test]
        fn a_wave_holds_each_stream_once_and_the_waves_keep_every_event_in_stream_order(
            streams in proptest::collection::vec(0u8..5, 0..60)
        ) {
            let events: Vec<RecordedEvent> = (1..).zip(&streams).map(|(p, s)| event(*s, p)).collect();
            let waves = waves(&events);
            let mut published: Vec<&RecordedEvent> = Vec::new();
            for wave in &waves {
                let mut in_wave: Vec<&str> = wave.iter().map(|e| e.stream_id.as_str()).collect();
                let len = in_wave.len();
                in_wave.sort_unstable();
                in_wave.dedup();
                prop_assert_eq!(in_wave.len(), len, "two events of one stream in one wave");
                published.extend(wave);
            }
            prop_assert_eq!(published.len(), events.len());
            for stream in 0..5u8 {
                let id = format!("s-{stream}");
                let order = |list: &[&RecordedEvent]| list.iter().filter(|e| e.stream_id.as_str() == id).map(|e| e.position).collect::<Vec<_>>();
                let given: Vec<&RecordedEvent> = events.iter().collect();
                prop_assert_eq!(order(&published), order(&given), "stream {} out of order", stream);
            }
            let most = (0..5u8).map(|s| streams.iter().filter(|x| **x == s).count()).max().unwrap_or(0);
            prop_assert_eq!(waves.len(), most, "one wave per event of the longest stream");
        }
    }
}
