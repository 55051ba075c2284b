//! UPDATE: `SET PatchDocument = '…'` sends the user's JSON Patch; `SET column = value, …` has
//! cloudpg build the patch. Read-only and create-only columns are refused before any call.
//!
//! Constant values on named resources need no read. Values that read columns, NULLs (a remove
//! is only right for a property that has a value) and bulk WHERE clauses select the
//! resources first, with the current values of the assigned columns.

use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{AssignmentTarget, Expr, Update};

use super::patch::{self, Assignment};
use super::target::{self, Named};
use super::{column_expr, item, last_name, property_schema, resolve_field, rows_of, select, values, Field, Verb};
use crate::catalog::TableDef;
use crate::cloudcontrol::{Change, MutationRequest, Place};
use crate::error::{Error, Result};
use crate::sql::datetime::Zone;
use crate::sql::Session;

/// What one `SET` assigns.
#[derive(Debug, Clone, PartialEq)]
enum SetTarget {
    Patch,
    Field(Field),
}

impl Session {
    pub(super) async fn plan_update(&mut self, table: &TableDef, update: &Update) -> Result<Vec<MutationRequest>> {
        let sets = set_targets(table, update)?;
        let exprs: Vec<Expr> = sets.iter().map(|(_, e)| e.clone()).collect();
        let named = target::named(update.selection.as_ref());
        if let Some(named) = named.as_ref().filter(|_| !exprs.iter().any(target::reads_columns)) {
            let (_, batches) = self
                .query_batches(select(exprs.iter().cloned().map(item).collect(), None, None)?)
                .await?;
            let row = rows_of(&batches)?
                .pop()
                .ok_or_else(|| Error::internal("constant values produced no row"))?;
            let sets_null = sets
                .iter()
                .zip(&row)
                .any(|((t, _), v)| matches!(t, SetTarget::Field(Field::Property { .. })) && v.is_null());
            if !sets_null {
                return self.update_named(table, &sets, &row, named);
            }
        }
        self.update_selected(table, update, &sets, named.is_some()).await
    }

    /// The same values for every named resource, without reading them.
    fn update_named(
        &self,
        table: &TableDef,
        sets: &[(SetTarget, Expr)],
        row: &[ScalarValue],
        named: &Named,
    ) -> Result<Vec<MutationRequest>> {
        let places = self.named_places(table, named, Verb::Update)?;
        let many = places.len() * named.identifiers.len() > 1;
        let mut requests = Vec::new();
        for place in &places {
            for id in &named.identifiers {
                let to = Addressed {
                    place,
                    identifier: id,
                    many,
                };
                requests.extend(update_request(table, sets, row, None, &to, &self.settings.time_format().zone)?);
            }
        }
        Ok(requests)
    }

    /// Selects the matching resources with the values and the assigned columns' current state.
    async fn update_selected(
        &mut self,
        table: &TableDef,
        update: &Update,
        sets: &[(SetTarget, Expr)],
        named: bool,
    ) -> Result<Vec<MutationRequest>> {
        let current: Vec<String> = sets
            .iter()
            .filter_map(|(t, _)| match t {
                SetTarget::Field(Field::Property { column, .. }) => Some(column.clone()),
                _ => None,
            })
            .collect();
        let mut projection = vec![
            item(column_expr("region")),
            item(column_expr("identifier")),
            item(column_expr("account")),
        ];
        projection.extend(sets.iter().map(|(_, e)| item(e.clone())));
        projection.extend(current.iter().map(|c| item(column_expr(c))));
        let stmt = select(projection, Some(update.table.clone()), update.selection.clone())?;
        let (_, batches) = self.query_batches(stmt).await?;
        let rows = rows_of(&batches)?;
        if !named && !self.settings.allow_bulk {
            return Err(super::delete::bulk_refusal(Verb::Update, table, &rows));
        }
        let many = rows.len() > 1;
        let mut requests = Vec::new();
        for row in &rows {
            let (region, id, account) = (
                values::text(&row[0]).unwrap_or_default(),
                values::text(&row[1]).unwrap_or_default(),
                values::text(&row[2]).unwrap_or_default(),
            );
            let vals = &row[3..3 + sets.len()];
            let present: Vec<bool> = row[3 + sets.len()..].iter().map(|v| !v.is_null()).collect();
            let place = Place::new(account, region);
            let to = Addressed {
                place: &place,
                identifier: &id,
                many,
            };
            requests.extend(update_request(
                table,
                sets,
                vals,
                Some(&present),
                &to,
                &self.settings.time_format().zone,
            )?);
        }
        Ok(requests)
    }
}

/// The SET list, checked: which targets are properties (not read-only, not create-only), the
/// patch document, or request parameters.
fn set_targets(table: &TableDef, update: &Update) -> Result<Vec<(SetTarget, Expr)>> {
    let mut sets: Vec<(SetTarget, Expr)> = Vec::with_capacity(update.assignments.len());
    for a in &update.assignments {
        let AssignmentTarget::ColumnName(name) = &a.target else {
            return Err(Error::NotSupported(
                "UPDATE … SET (a, b) = (…): assign each column on its own".into(),
            ));
        };
        let text = last_name(name);
        let lower = text.to_lowercase();
        let is_patch =
            matches!(lower.as_str(), "patchdocument" | "data__patchdocument") && !table.resource.properties().contains_key(&text);
        let set = if is_patch {
            SetTarget::Patch
        } else {
            SetTarget::Field(checked_field(table, resolve_field(table, &text)?)?)
        };
        if sets.iter().any(|(s, _)| *s == set) {
            return Err(Error::DuplicateColumn(text));
        }
        sets.push((set, a.value.clone()));
    }
    let has_patch = sets.iter().any(|(s, _)| *s == SetTarget::Patch);
    let has_property = sets.iter().any(|(s, _)| matches!(s, SetTarget::Field(Field::Property { .. })));
    if has_patch && has_property {
        return Err(Error::NotSupported(
            "set either PatchDocument or columns in one UPDATE, not both".into(),
        ));
    }
    if !has_patch && !has_property {
        return Err(Error::Syntax(format!(
            "UPDATE of {} sets no property: SET column = value, or SET PatchDocument = '[…]'",
            table.qualified_name()
        )));
    }
    Ok(sets)
}

fn checked_field(table: &TableDef, field: Field) -> Result<Field> {
    match &field {
        Field::Account => Err(Error::NotUpdatable {
            message: format!(
                "column \"account\" of {} cannot be updated: a resource stays in its account",
                table.qualified_name()
            ),
            hint: Some("name the account in the WHERE clause instead: WHERE account = '…'".into()),
        }),
        Field::Region => Err(Error::NotUpdatable {
            message: format!(
                "column \"region\" of {} cannot be updated: a resource stays in its region",
                table.qualified_name()
            ),
            hint: None,
        }),
        Field::Property { column, property } if table.resource.is_read_only(property) => Err(Error::GeneratedColumn {
            message: format!(
                "column \"{column}\" of {} is read-only: Cloud Control sets {property}",
                table.qualified_name()
            ),
            hint: None,
        }),
        Field::Property { column, property } if table.resource.is_create_only(property) => Err(Error::NotUpdatable {
            message: format!(
                "column \"{column}\" of {} can only be set when the resource is created ({property} is create-only)",
                table.qualified_name()
            ),
            hint: Some("delete the resource and INSERT it again with the new value".into()),
        }),
        _ => Ok(field),
    }
}

/// The UpdateResource an UPDATE would send to `identifier` with `vals` as its SET values:
/// translation without reading anything (the offline check, see `translate_offline`).
pub(super) fn offline_request(table: &TableDef, update: &Update, vals: &[ScalarValue]) -> Result<Option<MutationRequest>> {
    let sets = set_targets(table, update)?;
    let row: Vec<ScalarValue> = (0..sets.len())
        .map(|i| {
            if vals.is_empty() {
                ScalarValue::Null
            } else {
                vals[i % vals.len()].clone()
            }
        })
        .collect();
    let present: Vec<bool> = row.iter().map(|v| !v.is_null()).collect();
    let to = Addressed {
        place: &Place::new("offline", "us-east-1"),
        identifier: "offline",
        many: false,
    };
    update_request(table, &sets, &row, Some(&present), &to, &Zone::utc())
}

/// The resource one UpdateResource goes to, and whether the UPDATE changes several.
struct Addressed<'a> {
    place: &'a Place,
    identifier: &'a str,
    many: bool,
}

/// One resource's UpdateResource; `None` when the assignments change nothing.
fn update_request(
    table: &TableDef,
    sets: &[(SetTarget, Expr)],
    vals: &[ScalarValue],
    present: Option<&[bool]>,
    to: &Addressed,
    zone: &Zone,
) -> Result<Option<MutationRequest>> {
    let mut assignments = Vec::new();
    let mut patch_text = None;
    let (mut client_token, mut role_arn, mut type_version_id) = (None, None, None);
    for ((set, _), value) in sets.iter().zip(vals) {
        match set {
            SetTarget::Patch => {
                let text =
                    values::text(value).ok_or_else(|| Error::invalid_parameter("PatchDocument is NULL; give a JSON Patch array", None))?;
                patch_text = Some(patch::check(&text)?);
            }
            SetTarget::Field(Field::Property { column, property }) => assignments.push(Assignment {
                property: property.clone(),
                value: values::to_json(
                    value,
                    property_schema(table, property),
                    column,
                    table.resource.holds_write_only(property),
                    zone,
                )?,
            }),
            SetTarget::Field(Field::ClientToken) => client_token = values::text(value),
            SetTarget::Field(Field::RoleArn) => role_arn = values::text(value),
            SetTarget::Field(Field::TypeVersionId) => type_version_id = values::text(value),
            SetTarget::Field(Field::Region | Field::Account) => {}
        }
    }
    if to.many && client_token.is_some() {
        return Err(Error::invalid_parameter(
            "a ClientToken names one request, but this UPDATE changes several resources",
            Some("leave ClientToken out: cloudpg gives each request its own".into()),
        ));
    }
    let patch = match patch_text {
        Some(p) => p,
        None => {
            let ops = patch::build(&assignments, present);
            if ops.is_empty() {
                return Ok(None);
            }
            serde_json::Value::Array(ops).to_string()
        }
    };
    Ok(Some(MutationRequest {
        place: to.place.clone(),
        type_name: table.type_name().to_string(),
        change: Change::Update {
            identifier: to.identifier.to_string(),
            patch,
        },
        client_token: client_token.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        role_arn,
        type_version_id,
    }))
}
