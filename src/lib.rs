//! tepai (特派): the event-sourced system of record for science and
//! technology commissioners (科技特派员) in the Hohhot–Baotou region.
//!
//! See ARCHITECTURE.md for the map. In short: [`wire`] turns protobuf into
//! [`domain`] commands, the [`processor`] decides them against in-memory
//! state and appends the events to the [`store`] in group commits.

pub mod app;
pub mod bench;
pub mod bus;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod limits;
pub mod local_nats;
pub mod ops;
pub mod processor;
pub mod projection;
pub mod query;
pub mod store;
pub mod telemetry;
pub mod wire;
