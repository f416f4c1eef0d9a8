//! The table's columns as Delta's schema (`metaData.schemaString`), and the protocol a
//! schema needs. Delta has fewer types than Arrow: a column it cannot describe exactly is
//! refused when the first batch fixes the schema, never published under another type.

use arrow_schema::{DataType, Field, Schema, TimeUnit};
use serde_json::{Value, json};

use super::action::Protocol;
use crate::table::SEQ_COLUMN;

/// The writer feature tally's state needs: `domainMetadata` (protocol writer version 7).
pub const DOMAIN_METADATA: &str = "domainMetadata";
/// The feature a timestamp without a time zone needs (reader version 3, writer version 7).
pub const TIMESTAMP_NTZ: &str = "timestampNtz";

/// A column Delta has no type for, by its path (`a.b` inside structs).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "column {column:?} has type {data_type}, which a Delta table cannot hold exactly; \
     cast it in the input (an unsigned integer to a wider signed one or a string, \
     for example) and ingest again"
)]
pub struct Unsupported {
    pub column: String,
    pub data_type: String,
}

/// `schemaString` of a table whose user columns are `user` (none yet: `tally_seq` alone).
pub fn schema_string(user: Option<&Schema>) -> Result<String, Unsupported> {
    let mut fields = Vec::new();
    for field in user.map(|s| s.fields().iter()).into_iter().flatten() {
        fields.push(field_json(field, "")?);
    }
    fields.push(json!({
        "name": SEQ_COLUMN, "type": "long", "nullable": false, "metadata": {},
    }));
    Ok(json!({ "type": "struct", "fields": fields }).to_string())
}

/// Refuses a schema Delta cannot describe exactly, naming the first such column.
pub fn check(user: &Schema) -> Result<(), Unsupported> {
    schema_string(Some(user)).map(drop)
}

/// The protocol a table with these columns needs: reader version 1 unless a column is a
/// timestamp without a time zone.
pub fn protocol_for(user: Option<&Schema>) -> Protocol {
    let ntz = user.is_some_and(|s| s.fields().iter().any(|f| has_ntz(f.data_type())));
    let mut writer_features = vec![DOMAIN_METADATA.to_string()];
    if ntz {
        writer_features.push(TIMESTAMP_NTZ.to_string());
    }
    Protocol {
        min_reader_version: if ntz { 3 } else { 1 },
        min_writer_version: 7,
        reader_features: ntz.then(|| vec![TIMESTAMP_NTZ.to_string()]),
        writer_features: Some(writer_features),
    }
}

fn has_ntz(data_type: &DataType) -> bool {
    match data_type {
        DataType::Timestamp(_, None) => true,
        DataType::Struct(fields) => fields.iter().any(|f| has_ntz(f.data_type())),
        DataType::List(f) | DataType::LargeList(f) | DataType::Map(f, _) => has_ntz(f.data_type()),
        _ => false,
    }
}

fn field_json(field: &Field, parent: &str) -> Result<Value, Unsupported> {
    let path = if parent.is_empty() {
        field.name().clone()
    } else {
        format!("{parent}.{}", field.name())
    };
    Ok(json!({
        "name": field.name(),
        "type": type_json(field.data_type(), &path)?,
        "nullable": field.is_nullable(),
        "metadata": {},
    }))
}

fn type_json(data_type: &DataType, path: &str) -> Result<Value, Unsupported> {
    let primitive = |name: &str| Ok(Value::String(name.to_string()));
    match data_type {
        DataType::Boolean => primitive("boolean"),
        DataType::Int8 => primitive("byte"),
        DataType::Int16 => primitive("short"),
        DataType::Int32 => primitive("integer"),
        DataType::Int64 => primitive("long"),
        DataType::Float32 => primitive("float"),
        DataType::Float64 => primitive("double"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => primitive("string"),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => primitive("binary"),
        DataType::Date32 => primitive("date"),
        // Delta's timestamps count microseconds; a coarser unit widens exactly.
        DataType::Timestamp(
            TimeUnit::Second | TimeUnit::Millisecond | TimeUnit::Microsecond,
            tz,
        ) => primitive(if tz.is_some() {
            "timestamp"
        } else {
            "timestamp_ntz"
        }),
        DataType::Decimal128(precision, scale) if *precision <= 38 && *scale >= 0 => {
            primitive(&format!("decimal({precision},{scale})"))
        }
        DataType::Struct(fields) => {
            let fields: Result<Vec<Value>, _> =
                fields.iter().map(|f| field_json(f, path)).collect();
            Ok(json!({ "type": "struct", "fields": fields? }))
        }
        DataType::List(item) | DataType::LargeList(item) => Ok(json!({
            "type": "array",
            "elementType": type_json(item.data_type(), path)?,
            "containsNull": item.is_nullable(),
        })),
        _ => Err(Unsupported {
            column: path.to_string(),
            data_type: data_type.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_seq_is_a_long_and_comes_last() {
        let user = Schema::new(vec![Field::new("a", DataType::Utf8, true)]);
        let parsed: Value = serde_json::from_str(&schema_string(Some(&user)).unwrap()).unwrap();
        let fields = parsed["fields"].as_array().unwrap();
        assert_eq!(fields[0]["type"], "string");
        assert_eq!(fields[1]["name"], SEQ_COLUMN);
        assert_eq!(fields[1]["type"], "long");
    }

    #[test]
    fn a_type_delta_cannot_hold_is_refused_naming_its_column() {
        let inner = Field::new("n", DataType::UInt32, true);
        let user = Schema::new(vec![Field::new(
            "s",
            DataType::Struct(vec![inner].into()),
            true,
        )]);
        let err = check(&user).unwrap_err();
        assert_eq!(err.column, "s.n");
        assert!(err.to_string().contains("UInt32"), "{err}");
    }

    #[test]
    fn a_timestamp_without_a_zone_needs_reader_version_3() {
        let naive = Schema::new(vec![Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        )]);
        assert_eq!(protocol_for(Some(&naive)).min_reader_version, 3);
        let utc = Schema::new(vec![Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        )]);
        assert_eq!(protocol_for(Some(&utc)).min_reader_version, 1);
        assert_eq!(
            protocol_for(None).writer_features.unwrap(),
            [DOMAIN_METADATA]
        );
    }
}
