//! The private PostgreSQL cluster fixture: it starts on a port of its own, keeps its data across a
//! restart, and breaks open connections when it restarts (which is what restart tests rely on).
#![cfg(feature = "postgres")]
#![allow(clippy::expect_used, reason = "set-up failures should fail the test loudly")]

use composable_rust_testing::postgres_cluster::PrivateCluster;
use sqlx::{Connection, PgConnection};

#[tokio::test]
async fn a_private_cluster_keeps_its_data_across_a_restart_and_breaks_connections() {
    let cluster = PrivateCluster::start().expect("a private PostgreSQL cluster (initdb/pg_ctl)");
    assert_ne!(cluster.port(), 5432, "never the shared server's port");
    let mut before = PgConnection::connect(&cluster.url()).await.expect("connect");
    sqlx::query("CREATE TABLE kept (n int)").execute(&mut before).await.expect("create");
    sqlx::query("INSERT INTO kept VALUES (42)").execute(&mut before).await.expect("write");

    cluster.restart().expect("restart");
    let broken = sqlx::query("SELECT 1").execute(&mut before).await;
    assert!(broken.is_err(), "a connection from before the restart is broken");
    let mut after = PgConnection::connect(&cluster.url()).await.expect("reconnect");
    let (n,): (i32,) = sqlx::query_as("SELECT n FROM kept").fetch_one(&mut after).await.expect("read");
    assert_eq!(n, 42, "the data survived the restart");
}
