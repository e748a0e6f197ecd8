//! A 3-node JetStream cluster on loopback ports, the stream kept in 3 replicas: the node that leads the
//! stream is killed while events are being published, and downstream every event is there exactly once,
//! in order per stream. Every loop is bounded in count and in time.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use composable_rust_bus::{ConsumerConfig, EventBus, JetStreamBus, JetStreamConfig};
use futures::StreamExt;

use common::{NatsServer, events, free_port};

const BATCHES: usize = 20;
const BATCH: u64 = 50;
const KILL_AFTER_BATCH: usize = 6;

fn cluster(dirs: &[tempfile::TempDir; 3]) -> Vec<NatsServer> {
    let client: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
    (0..3)
        .map(|i| {
            let others: Vec<String> =
                (0..3).filter(|j| *j != i).map(|j| format!("nats://127.0.0.1:{}", routes[j])).collect();
            let args = vec![
                "-js".to_owned(),
                "-a".to_owned(),
                "127.0.0.1".to_owned(),
                "-p".to_owned(),
                client[i].to_string(),
                "-sd".to_owned(),
                dirs[i].path().display().to_string(),
                "--name".to_owned(),
                format!("n{i}"),
                "--cluster_name".to_owned(),
                "composable".to_owned(),
                "--cluster".to_owned(),
                format!("nats://127.0.0.1:{}", routes[i]),
                "--routes".to_owned(),
                others.join(","),
            ];
            NatsServer::spawn(args, client[i])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_stream_leader_while_publishing_loses_and_duplicates_nothing() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut nodes = cluster(&dirs);
    let urls: Vec<String> = nodes.iter().map(NatsServer::url).collect();
    let mut config = JetStreamConfig::new(urls.join(","), "cluster").replicas(3);
    config.ack_timeout = Duration::from_secs(3);

    // The cluster elects its JetStream leader first: the stream can be created only then.
    let mut bus = None;
    for _ in 0..60 {
        match JetStreamBus::connect(config.clone()).await {
            Ok(connected) => {
                bus = Some(connected);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    let bus = bus.expect("the 3-node cluster serves JetStream within 30 s");

    let all = events("order", 10, BATCHES as u64 * BATCH);
    let mut retried = 0;
    for (n, batch) in all.chunks(BATCH as usize).enumerate() {
        if n == KILL_AFTER_BATCH {
            let leader = bus.stream_leader().await.unwrap().expect("a replicated stream has a leader");
            let index: usize = leader.trim_start_matches('n').parse().unwrap();
            nodes[index].kill();
        }
        // A batch whose acknowledgements were lost is published again; JetStream drops what it has.
        let mut published = false;
        for _ in 0..40 {
            match bus.publish(batch).await {
                Ok(_) => {
                    published = true;
                    break;
                }
                Err(_) => {
                    retried += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
        assert!(published, "batch {n} was published within 40 attempts after the node stopped");
    }

    eprintln!("publishes retried after the leader was killed: {retried}");
    let total = all.len();
    // The consumer group is a replicated object too: creating it right after the failover may have to wait for
    // the cluster to settle.
    let audit = ConsumerConfig::group("audit").max_in_flight(1000);
    let mut deliveries = None;
    for _ in 0..40 {
        match bus.consume(&audit).await {
            Ok(joined) => {
                deliveries = Some(joined);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    let mut deliveries = deliveries.expect("the consumer group is created within 20 s of the failover");
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    let mut last_version: HashMap<String, u64> = HashMap::new();
    let mut out_of_order = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while seen.len() < total {
        assert!(std::time::Instant::now() < deadline, "only {} of {total} events arrived within 90 s", seen.len());
        let item = tokio::time::timeout(Duration::from_secs(20), deliveries.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {total} events arrived", seen.len()))
            .expect("the deliveries go on");
        // A pull that fails while the cluster settles is reported and the stream goes on.
        let Ok(delivery) = item else { continue };
        let event = &delivery.event;
        if !seen.insert(event.id) {
            duplicates += 1;
        }
        let previous = last_version.insert(event.stream_id.to_string(), event.version.get()).unwrap_or(0);
        if event.version.get() != previous + 1 {
            out_of_order.push((event.stream_id.to_string(), previous, event.version.get()));
        }
        delivery.ack.ack().await.unwrap();
    }
    assert_eq!(duplicates, 0, "no event twice downstream (after {retried} retried publishes)");
    assert_eq!(bus.stored().await.unwrap(), total as u64, "each event stored once in the replicated stream");
    assert!(out_of_order.is_empty(), "per-stream order kept across the failover: {out_of_order:?}");
    let ids: HashSet<_> = all.iter().map(|e| e.id).collect();
    assert_eq!(seen, ids, "every published event arrived");
}
