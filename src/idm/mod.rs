//! The IDM's side of the conversation: the token endpoint's wire format (forms, answers,
//! errors, `Retry-After`) and the transport that carries it (reqwest, or the in-memory
//! fake of the `testing` feature). The manager decides when to talk; this says how.

#[cfg(test)]
mod fuzz;
pub(crate) mod transport;
pub(crate) mod wire;
