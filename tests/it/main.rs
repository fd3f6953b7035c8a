//! Integration tests: one binary, driving tepai through its public
//! interfaces against real SQLite files (and, for the bus, a real
//! nats-server started per suite).

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

mod assessment;
mod auth;
mod bad_input;
mod batch;
mod bench;
mod bus;
mod cli;
mod cluster;
mod console;
mod crash;
mod demands;
mod failover;
mod faults;
mod golden;
mod hostile;
mod http_client;
mod nats_cluster;
mod nats_server;
mod ops;
mod ops_io;
mod processor;
mod purity;
mod restart;
mod soak;
mod support;
mod tls;
mod views;
