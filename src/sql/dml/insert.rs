//! INSERT: each row of the source (VALUES or any SELECT, which may read other tables) becomes
//! a CreateResource with a DesiredState built from the named columns.

use datafusion::sql::sqlparser::ast::{Insert, Statement};
use serde_json::{Map, Value};

use super::{last_name, property_schema, resolve_field, rows_of, values, Field, Verb};
use crate::catalog::TableDef;
use crate::cloudcontrol::{Change, MutationRequest, Place};
use crate::error::{Error, Result};
use crate::sql::datetime::Zone;
use crate::sql::Session;

impl Session {
    pub(super) async fn plan_insert(&mut self, table: &TableDef, insert: &Insert) -> Result<Vec<MutationRequest>> {
        let fields = insert_fields(table, insert)?;
        let source = insert
            .source
            .as_ref()
            .ok_or_else(|| Error::NotSupported("INSERT … DEFAULT VALUES: name the properties and give their values".into()))?;
        let (schema, batches) = self.query_batches(Statement::Query(source.clone())).await?;
        match schema.fields().len().cmp(&fields.len()) {
            std::cmp::Ordering::Greater => return Err(Error::Syntax("INSERT has more expressions than target columns".into())),
            std::cmp::Ordering::Less => return Err(Error::Syntax("INSERT has more target columns than expressions".into())),
            std::cmp::Ordering::Equal => {}
        }
        let rows = rows_of(&batches)?;
        let mut requests = Vec::with_capacity(rows.len());
        let mut missing: Vec<String> = Vec::new();
        for row in &rows {
            let (request, lacking) = self.create_request(table, &fields, row)?;
            for m in lacking {
                if !missing.contains(&m) {
                    missing.push(m);
                }
            }
            requests.push(request);
        }
        if !missing.is_empty() {
            let named: Vec<String> = missing
                .iter()
                .map(|p| match table.column_of_property(p) {
                    Some(c) if c.name != *p => format!("{p} ({})", c.name),
                    _ => p.clone(),
                })
                .collect();
            return Err(Error::NotNullViolation {
                message: format!(
                    "INSERT into {} lacks required properties: {}",
                    table.qualified_name(),
                    named.join(", ")
                ),
                hint: Some(format!(
                    "add them to the column list; DESCRIBE {} shows every property",
                    table.qualified_name()
                )),
            });
        }
        Ok(requests)
    }

    /// One row's request, and the required properties it lacks.
    fn create_request(
        &self,
        table: &TableDef,
        fields: &[Field],
        row: &[datafusion::common::ScalarValue],
    ) -> Result<(MutationRequest, Vec<String>)> {
        let mut desired = Map::new();
        let (mut region, mut account, mut client_token, mut role_arn, mut type_version_id) = (None, None, None, None, None);
        for (field, value) in fields.iter().zip(row) {
            match field {
                Field::Property { column, property } => {
                    if let Some(v) = property_value(table, column, property, value, &self.settings.time_format().zone)? {
                        desired.insert(property.clone(), v);
                    }
                }
                Field::Region => region = values::text(value),
                Field::Account => account = values::text(value),
                Field::ClientToken => client_token = values::text(value),
                Field::RoleArn => role_arn = values::text(value),
                Field::TypeVersionId => type_version_id = values::text(value),
            }
        }
        let account = self.mutation_account(account.as_ref().map(std::slice::from_ref))?;
        let region = match region {
            Some(r) => self.mutation_region(table, &r)?,
            None => self.default_region(table, Verb::Insert, &account)?,
        };
        let lacking = missing_required(table, &desired);
        let request = MutationRequest {
            place: Place::new(account, region),
            type_name: table.type_name().to_string(),
            change: Change::Create {
                desired_state: Value::Object(desired).to_string(),
            },
            client_token: client_token.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            role_arn,
            type_version_id,
        };
        Ok((request, lacking))
    }
}

/// A value given for a property, as the JSON its schema asks for (`None`: NULL, left out).
fn property_value(
    table: &TableDef,
    column: &str,
    property: &str,
    value: &datafusion::common::ScalarValue,
    zone: &Zone,
) -> Result<Option<Value>> {
    values::to_json(
        value,
        property_schema(table, property),
        column,
        table.resource.holds_write_only(property),
        zone,
    )
}

/// The DesiredState an INSERT would send for a row of `vals` (repeated to fill its columns):
/// translation without reading anything (the offline check, see `translate_offline`).
pub(super) fn offline_desired_state(table: &TableDef, insert: &Insert, vals: &[datafusion::common::ScalarValue]) -> Result<String> {
    let fields = insert_fields(table, insert)?;
    let mut desired = Map::new();
    for (i, field) in fields.iter().enumerate() {
        let (Field::Property { column, property }, Some(value)) = (field, vals.get(i % vals.len().max(1))) else {
            continue;
        };
        if let Some(v) = property_value(table, column, property, value, &Zone::utc())? {
            desired.insert(property.clone(), v);
        }
    }
    Ok(Value::Object(desired).to_string())
}

/// The INSERT's column list, resolved, with read-only properties and repeats refused.
fn insert_fields(table: &TableDef, insert: &Insert) -> Result<Vec<Field>> {
    if insert.columns.is_empty() {
        return Err(Error::Syntax(format!(
            "INSERT into {} needs a column list: INSERT INTO {} (column, …, region) VALUES (…)",
            table.qualified_name(),
            table.qualified_name()
        )));
    }
    let mut fields: Vec<Field> = Vec::with_capacity(insert.columns.len());
    for name in &insert.columns {
        let text = last_name(name);
        let field = resolve_field(table, &text)?;
        if let Field::Property { column, property } = &field {
            if table.resource.is_read_only(property) {
                return Err(Error::GeneratedColumn {
                    message: format!(
                        "column \"{column}\" of {} is read-only: Cloud Control sets {property}",
                        table.qualified_name()
                    ),
                    hint: Some(format!("leave it out; INSERT … RETURNING {column} reads it back")),
                });
            }
        }
        if fields.contains(&field) {
            return Err(Error::DuplicateColumn(text));
        }
        fields.push(field);
    }
    Ok(fields)
}

/// Required top-level properties a DesiredState lacks.
fn missing_required(table: &TableDef, given: &Map<String, Value>) -> Vec<String> {
    table
        .resource
        .required
        .iter()
        .filter(|p| !given.contains_key(*p) && !table.resource.is_read_only(p))
        .cloned()
        .collect()
}
