//! Signature schemes of every source, inbound and outbound (in progress).
