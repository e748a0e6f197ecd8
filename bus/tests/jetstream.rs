//! The JetStream bus against a real nats-server: subjects, de-duplication by `Nats-Msg-Id`, durable
//! groups shared by several consumers, redelivery, replay from a sequence or a time, and reconnection
//! after the server went away.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use std::time::Duration;

use composable_rust_bus::{ConsumerConfig, EventBus, JetStreamBus, JetStreamConfig, PublishReport, StartAt};
use futures::StreamExt;

use common::{NatsServer, bus, event, events};

const WAIT: Duration = Duration::from_secs(10);

async fn next(deliveries: &mut composable_rust_bus::Deliveries) -> composable_rust_bus::Delivery {
    tokio::time::timeout(WAIT, deliveries.next()).await.expect("a delivery within 10 s").unwrap().unwrap()
}

#[tokio::test]
async fn events_travel_whole_in_publish_order_and_a_republished_batch_is_stored_once() {
    let bus = bus("dedup").await;
    let batch = events("order", 3, 30);
    assert_eq!(bus.publish(&batch).await.unwrap(), PublishReport { stored: 30, duplicates: 0 });
    // The outbox republishes a page after a crash: JetStream drops the copies by Nats-Msg-Id.
    assert_eq!(bus.publish(&batch[10..]).await.unwrap(), PublishReport { stored: 0, duplicates: 20 });
    assert_eq!(bus.stored().await.unwrap(), 30);

    let mut deliveries = bus.consume(&ConsumerConfig::group("reader")).await.unwrap();
    for (i, sent) in batch.iter().enumerate() {
        let delivery = next(&mut deliveries).await;
        assert_eq!(*delivery.event, *sent, "event {i} arrives whole and in publish order");
        assert_eq!(delivery.sequence, i as u64 + 1);
        delivery.ack.ack().await.unwrap();
    }
    bus.delete_stream().await.unwrap();
}

#[tokio::test]
async fn consumers_of_one_group_share_its_events_each_going_to_one_of_them() {
    let bus = bus("groups").await;
    bus.publish(&events("order", 4, 40)).await.unwrap();
    let group = ConsumerConfig::group("billing").max_in_flight(5);
    let (a, b) = (bus.consume(&group).await.unwrap(), bus.consume(&group).await.unwrap());
    let take = |mut deliveries: composable_rust_bus::Deliveries| async move {
        let mut seen = Vec::new();
        while let Ok(Some(Ok(delivery))) = tokio::time::timeout(Duration::from_millis(1500), deliveries.next()).await {
            seen.push(delivery.sequence);
            delivery.ack.ack().await.unwrap();
        }
        seen
    };
    let (seen_a, seen_b) = tokio::join!(take(a), take(b));
    let mut all: Vec<u64> = seen_a.iter().chain(&seen_b).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<_>>(), "every event once, none twice");
    assert!(!seen_a.is_empty() && !seen_b.is_empty(), "both consumers got work: {seen_a:?} / {seen_b:?}");
    bus.delete_stream().await.unwrap();
}

#[tokio::test]
async fn a_delivery_refused_or_left_unacknowledged_comes_again() {
    let bus = bus("redeliver").await;
    bus.publish(&events("order", 1, 2)).await.unwrap();
    let config = ConsumerConfig::group("g").ack_wait(Duration::from_secs(1));
    let mut deliveries = bus.consume(&config).await.unwrap();
    let first = next(&mut deliveries).await;
    let second = next(&mut deliveries).await;
    first.ack.nak(Duration::from_millis(10)).await.unwrap();
    second.ack.ack().await.unwrap();
    let again = next(&mut deliveries).await;
    assert_eq!((again.sequence, again.attempt), (1, 2), "the refused one, second attempt");
    // Not acknowledged now: back after the ack wait of one second.
    let third = next(&mut deliveries).await;
    assert_eq!((third.sequence, third.attempt), (1, 3));
    third.ack.ack().await.unwrap();
    let nothing = tokio::time::timeout(Duration::from_millis(1500), deliveries.next()).await;
    assert!(nothing.is_err(), "nothing left once both are acknowledged");
    bus.delete_stream().await.unwrap();
}

#[tokio::test]
async fn a_new_group_replays_from_a_sequence_or_a_time_and_filters_by_category() {
    let bus = bus("replay").await;
    bus.publish(&events("order", 1, 5)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let later = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let payments = events("payment", 1, 3);
    bus.publish(&payments).await.unwrap();

    let mut from_four = bus.consume(&ConsumerConfig::group("seq").start_at(StartAt::Sequence(4))).await.unwrap();
    assert_eq!(next(&mut from_four).await.sequence, 4);
    let mut from_time = bus.consume(&ConsumerConfig::group("time").start_at(StartAt::Time(later))).await.unwrap();
    assert_eq!(*next(&mut from_time).await.event, payments[0]);
    let mut only_payments = bus.consume(&ConsumerConfig::group("cat").category("payment")).await.unwrap();
    for sent in &payments {
        assert_eq!(*next(&mut only_payments).await.event, *sent);
    }
    let mut two = bus.consume(&ConsumerConfig::group("two").category("payment").category("order")).await.unwrap();
    assert_eq!(next(&mut two).await.sequence, 1, "several categories: read everything, keep theirs");
    bus.delete_stream().await.unwrap();
}

#[tokio::test]
async fn a_consumer_resumes_after_the_server_restarts_and_a_publish_in_between_fails_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::start(dir.path());
    let mut config = JetStreamConfig::new(server.url(), "reconnect");
    config.ack_timeout = Duration::from_secs(2);
    let bus = JetStreamBus::connect(config).await.unwrap();
    let before = events("order", 1, 3);
    bus.publish(&before).await.unwrap();
    let mut deliveries = bus.consume(&ConsumerConfig::group("g")).await.unwrap();
    for sent in &before {
        let delivery = next(&mut deliveries).await;
        assert_eq!(*delivery.event, *sent);
        delivery.ack.ack().await.unwrap();
    }

    server.kill();
    let during = event("order-0", 4, 4);
    let refused = tokio::time::timeout(Duration::from_secs(15), bus.publish(std::slice::from_ref(&during))).await;
    assert!(matches!(refused, Ok(Err(_))), "a publish without a server fails, it does not hang: {refused:?}");

    server.restart();
    // The client reconnects with backoff; the outbox would retry its page the same way.
    let mut published = None;
    for _ in 0..100 {
        if let Ok(report) = bus.publish(std::slice::from_ref(&during)).await {
            published = Some(report);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(published.is_some(), "publishing works again once the server is back");
    let mut received = None;
    for _ in 0..30 {
        match tokio::time::timeout(Duration::from_secs(1), deliveries.next()).await {
            Ok(Some(Ok(delivery))) => {
                received = Some(delivery);
                break;
            }
            Ok(Some(Err(_))) | Err(_) => {}
            Ok(None) => deliveries = bus.consume(&ConsumerConfig::group("g")).await.unwrap(),
        }
    }
    let received = received.expect("the consumer receives the event published after the restart");
    assert_eq!(*received.event, during);
    assert_eq!(received.sequence, 4, "the durable group kept its place across the restart");
}
