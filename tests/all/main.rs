//! End-to-end tests: the real `weir` binary and the library's `Worker`, real components built
//! from this repo, real files. One test binary so linking happens once.

mod cdc;
mod containment;
mod errors;
mod http_sink;
mod incremental;
mod kafka;
mod manifests;
mod oracle;
mod pg;
mod pgsink;
mod pipeline;
mod plugins;
mod rest;
mod rest_router;
mod restarts;
mod support;
