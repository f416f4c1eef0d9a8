//! The benchmark's rows: eight columns shaped like event data — a sequential id, an increasing
//! timestamp, a category of 100 values, a unique 24-character key, three doubles, a flag —
//! drawn from a seeded generator, so every run measures the same bytes.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("price", DataType::Float64, false),
        Field::new("score", DataType::Float64, false),
        Field::new("weight", DataType::Float64, false),
        Field::new("flag", DataType::Boolean, false),
    ]))
}

/// splitmix64's finalizer: a bijection on u64, so distinct ids give distinct keys.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Rows `first..first + rows`; the same arguments give the same batch.
pub fn batch(seed: u64, first: u64, rows: usize) -> RecordBatch {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed ^ mix(first)));
    let mut id = Int64Builder::with_capacity(rows);
    let mut ts = Int64Builder::with_capacity(rows);
    let mut category = StringBuilder::with_capacity(rows, rows * 11);
    let mut key = StringBuilder::with_capacity(rows, rows * 24);
    let mut price = Float64Builder::with_capacity(rows);
    let mut score = Float64Builder::with_capacity(rows);
    let mut weight = Float64Builder::with_capacity(rows);
    let mut flag = BooleanBuilder::with_capacity(rows);
    // 2026-01-01T00:00:00Z in milliseconds, then about 10 ms per row.
    const EPOCH_MS: i64 = 1_767_225_600_000;
    for n in first..first + rows as u64 {
        id.append_value(n as i64);
        ts.append_value(EPOCH_MS + n as i64 * 10 + rng.gen_range(0..10));
        category.append_value(format!("category-{:02}", rng.gen_range(0..100)));
        key.append_value(format!("{:016x}{:08x}", mix(n ^ seed), rng.r#gen::<u32>()));
        price.append_value((rng.gen_range(100..100_000) as f64) / 100.0);
        score.append_value(rng.r#gen::<f64>());
        weight.append_value(rng.gen_range(-1000.0..1000.0));
        flag.append_value(rng.gen_bool(0.3));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(ts.finish()),
        Arc::new(category.finish()),
        Arc::new(key.finish()),
        Arc::new(price.finish()),
        Arc::new(score.finish()),
        Arc::new(weight.finish()),
        Arc::new(flag.finish()),
    ];
    RecordBatch::try_new(schema(), columns).expect("columns match the schema")
}

/// `rows` rows in batches of `batch_rows`.
pub fn batches(seed: u64, rows: u64, batch_rows: usize) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut first = 0;
    while first < rows {
        let n = (rows - first).min(batch_rows as u64) as usize;
        out.push(batch(seed, first, n));
        first += n as u64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_arguments_same_rows_and_keys_unique() {
        let a = batch(7, 1000, 500);
        assert_eq!(a, batch(7, 1000, 500));
        assert_ne!(a, batch(8, 1000, 500));
        let keys = a
            .column(3)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        let distinct: std::collections::BTreeSet<&str> = keys.iter().flatten().collect();
        assert_eq!(distinct.len(), 500);
        assert!(keys.iter().flatten().all(|k| k.len() == 24));
    }
}
