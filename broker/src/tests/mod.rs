//! Behaviour of the log as a whole, through its public API: one module per area.

mod admin;
mod durability;
mod producer_batches;
mod read;
mod recovery;
mod retention;
mod support;
