//! Integration tests: one binary, driving tepai through its public
//! interfaces against real SQLite files (and, for the bus, a real
//! nats-server started per suite).

mod bad_input;
mod bus;
mod crash;
mod nats_server;
mod processor;
mod purity;
mod support;
