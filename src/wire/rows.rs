//! Arrow batches as DataRow messages, each row's values encoded by arrow-pg.
//!
//! pgwire's `DataRowEncoder` gives every row a buffer of its own, grown by reallocation as
//! the fields are written: on a cached `SELECT *` that was half of the server's CPU (malloc
//! and the copies of realloc). Here rows are written one after another into a shared buffer
//! of [`CHUNK`] bytes and split off it, so a batch costs a few allocations, not several per row.

use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::RecordBatch;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;
use pgwire::types::ToSqlText;
use postgres_types::{IsNull, ToSql};

/// Bytes set aside at a time for the rows of a batch; a row longer than what is left gets a
/// buffer of its own size.
const CHUNK: usize = 64 * 1024;

/// The rows of `batch` as DataRow messages, up to and including the first value that cannot
/// be encoded (after which the statement fails; arrow-pg would repeat the error forever).
pub fn data_rows(batch: &RecordBatch, fields: &[FieldInfo]) -> Vec<PgWireResult<DataRow>> {
    let mut rows = Vec::with_capacity(batch.num_rows());
    let mut encoder = ChunkedRows::default();
    let schema = batch.schema_ref();
    for row in 0..batch.num_rows() {
        encoder.start_row();
        for (column, (array, pg_field)) in batch.columns().iter().zip(fields).enumerate() {
            let encoded = arrow_pg::encoder::encode_value(&mut encoder, array, row, schema.field(column), pg_field);
            if let Err(e) = encoded {
                rows.push(Err(e));
                return rows;
            }
        }
        rows.push(Ok(arrow_pg::encoder::Encoder::take_row(&mut encoder)));
    }
    rows
}

/// Writes fields as pgwire's `DataRowEncoder` does (a length, -1 for NULL, then the value
/// in the field's format), into [`CHUNK`]-sized buffers shared by consecutive rows.
#[derive(Default)]
struct ChunkedRows {
    buffer: BytesMut,
    fields: i16,
}

impl ChunkedRows {
    /// Makes room before a row, so that a row is split off a buffer it shares with the rows
    /// before it instead of growing one of its own.
    fn start_row(&mut self) {
        if self.buffer.capacity() - self.buffer.len() < CHUNK / 8 {
            self.buffer.reserve(CHUNK);
        }
    }
}

impl arrow_pg::encoder::Encoder for ChunkedRows {
    type Item = DataRow;

    fn encode_field<T>(&mut self, value: &T, pg_field: &FieldInfo) -> PgWireResult<()>
    where
        T: ToSql + ToSqlText + Sized,
    {
        let at = self.buffer.len();
        self.buffer.put_i32(-1);
        let is_null = match pg_field.format() {
            FieldFormat::Text => value.to_sql_text(pg_field.datatype(), &mut self.buffer, pg_field.format_options())?,
            FieldFormat::Binary => value.to_sql(pg_field.datatype(), &mut self.buffer)?,
        };
        if let IsNull::No = is_null {
            let length = self.buffer.len() - at - 4;
            let length = i32::try_from(length)
                .map_err(|_| pgwire::error::PgWireError::ApiError(format!("a value of {length} bytes is too long for a row").into()))?;
            self.buffer[at..at + 4].copy_from_slice(&length.to_be_bytes());
        }
        self.fields += 1;
        Ok(())
    }

    fn take_row(&mut self) -> DataRow {
        let fields = std::mem::take(&mut self.fields);
        DataRow::new(self.buffer.split(), fields)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, BooleanArray, Decimal128Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use pgwire::api::portal::Format;

    use super::*;

    fn batch(rows: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("size", DataType::Int64, true),
            Field::new("open", DataType::Boolean, true),
        ]));
        // Every 97th name is longer than a whole chunk: such a row never fits what is left.
        let length = |i: usize| if i % 97 == 1 { CHUNK + 1_000 } else { i % 5000 };
        let names: StringArray = (0..rows).map(|i| (i % 3 != 0).then(|| "q".repeat(length(i)))).collect();
        let sizes: Int64Array = (0..rows).map(|i| (i % 4 != 0).then_some(i as i64 * 7)).collect();
        let open: BooleanArray = (0..rows).map(|i| (i % 5 != 0).then_some(i % 2 == 0)).collect();
        let columns: Vec<ArrayRef> = vec![Arc::new(names), Arc::new(sizes), Arc::new(open)];
        RecordBatch::try_new(schema, columns).unwrap()
    }

    /// The same bytes as pgwire's own encoder, text and binary, NULLs and rows longer than
    /// what is left of a chunk included.
    #[test]
    fn rows_are_encoded_as_pgwire_encodes_them() {
        let batch = batch(300);
        for format in [Format::UnifiedText, Format::UnifiedBinary] {
            let fields = Arc::new(arrow_pg::datatypes::arrow_schema_to_pg_fields(batch.schema_ref(), &format, None).unwrap());
            let ours: Vec<DataRow> = data_rows(&batch, &fields).into_iter().map(Result::unwrap).collect();
            let theirs: Vec<DataRow> = arrow_pg::datatypes::encode_recordbatch(fields.clone(), batch.clone())
                .map(Result::unwrap)
                .collect();
            assert_eq!(ours.len(), 300);
            assert_eq!(ours, theirs);
        }
    }

    /// A value arrow-pg cannot encode (a numeric beyond rust_decimal's range) fails its row,
    /// and no row after it is encoded.
    #[test]
    fn rows_stop_at_the_first_value_that_cannot_be_encoded() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Decimal128(38, 0), true)]));
        let values = Decimal128Array::from(vec![1, 10i128.pow(37), 2])
            .with_precision_and_scale(38, 0)
            .unwrap();
        let batch = RecordBatch::try_new(schema, vec![Arc::new(values)]).unwrap();
        let fields = arrow_pg::datatypes::arrow_schema_to_pg_fields(batch.schema_ref(), &Format::UnifiedText, None).unwrap();
        let rows = data_rows(&batch, &fields);
        assert_eq!(rows.len(), 2);
        assert!(rows[0].is_ok());
        assert!(rows[1].is_err());
    }

    #[test]
    fn an_empty_batch_has_no_rows() {
        let batch = batch(0);
        let fields = arrow_pg::datatypes::arrow_schema_to_pg_fields(batch.schema_ref(), &Format::UnifiedText, None).unwrap();
        assert!(data_rows(&batch, &fields).is_empty());
    }
}
