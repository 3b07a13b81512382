//! Behaviour of the log as a whole, through its public API: one module per area.

mod admin;
mod atomic;
mod compaction;
mod compaction_crash;
mod durability;
mod producer_batches;
mod read;
mod recovery;
mod retention;
mod support;
