//! DELETE: a DeleteResource per named resource, or per selected one when the session allows
//! bulk mutations.

use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{Delete, FromTable};

use super::target;
use super::{column_expr, item, rows_of, select, values, Verb};
use crate::catalog::TableDef;
use crate::cloudcontrol::{Change, MutationRequest, Place};
use crate::error::{Error, Result};
use crate::sql::Session;

impl Session {
    pub(super) async fn plan_delete(&mut self, table: &TableDef, delete: &Delete) -> Result<Vec<MutationRequest>> {
        let targets: Vec<(Place, String)> = match target::named(delete.selection.as_ref()) {
            Some(named) => {
                let places = self.named_places(table, &named, Verb::Delete)?;
                places
                    .iter()
                    .flat_map(|p| named.identifiers.iter().map(move |id| (p.clone(), id.clone())))
                    .collect()
            }
            None => {
                let from = match &delete.from {
                    FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t.first().cloned(),
                };
                let projection = vec![
                    item(column_expr("region")),
                    item(column_expr("identifier")),
                    item(column_expr("account")),
                ];
                let (_, batches) = self.query_batches(select(projection, from, delete.selection.clone())?).await?;
                let rows = rows_of(&batches)?;
                if !self.settings.allow_bulk {
                    return Err(bulk_refusal(Verb::Delete, table, &rows));
                }
                rows.iter()
                    .map(|r| {
                        let text = |i: usize| values::text(&r[i]).unwrap_or_default();
                        (Place::new(text(2), text(0)), text(1))
                    })
                    .collect()
            }
        };
        Ok(targets
            .into_iter()
            .map(|(place, identifier)| MutationRequest {
                place,
                type_name: table.type_name().to_string(),
                change: Change::Delete { identifier },
                client_token: uuid::Uuid::new_v4().to_string(),
                role_arn: None,
                type_version_id: None,
            })
            .collect())
    }
}

/// The refusal of an UPDATE or DELETE whose WHERE does not name its resources, saying how
/// many it would touch and how to go ahead. `rows` start with region and identifier.
pub(super) fn bulk_refusal(verb: Verb, table: &TableDef, rows: &[Vec<ScalarValue>]) -> Error {
    let ids: Vec<String> = rows.iter().take(5).filter_map(|r| r.get(1).and_then(values::text)).collect();
    let example = if ids.is_empty() {
        String::new()
    } else {
        format!(
            " (identifier IN ({}{}))",
            ids.iter().map(|i| format!("'{i}'")).collect::<Vec<_>>().join(", "),
            if rows.len() > ids.len() { ", …" } else { "" }
        )
    };
    Error::MissingFilter {
        message: format!(
            "{} would touch {} resource{} of {}{example}, but its WHERE clause does not name them",
            verb.tag(),
            rows.len(),
            if rows.len() == 1 { "" } else { "s" },
            table.qualified_name()
        ),
        hint: Some(
            "name them with WHERE identifier = '…' (or identifier IN (…)), or allow this for the session with \
             SET cloudpg.allow_bulk_mutations = on"
                .into(),
        ),
    }
}
