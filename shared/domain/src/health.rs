//! Order health indicators per channel from daily counters (in progress).
