//! Sign-in trust: classify a carrier sign, score it 0–100 (in progress).
