//! Integration tests for tally live in `tests/tests/`.
