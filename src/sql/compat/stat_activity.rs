//! `pg_stat_activity`: one row per connection, from the server's activity registry, with
//! PostgreSQL 16's columns and `cloudpg_api_calls` (the Cloud Control calls the running or
//! last statement made). `query` is the statement's fingerprint: literals never show.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int32Array, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use crate::catalog::arrow::{extra_field, text_array, time_array, ExtraKind};
use crate::catalog::live::LiveTable;
use crate::cloudcontrol::requests::epoch_seconds;
use crate::sql::activity::{Activity, ActivityRow};

fn int4(name: &str) -> Field {
    Field::new(name, DataType::Int32, true)
}

pub fn stat_activity(activity: Arc<Activity>) -> LiveTable {
    use ExtraKind::{Text, Time};
    let schema = Arc::new(Schema::new(vec![
        int4("datid"),
        extra_field("datname", Text),
        int4("pid"),
        int4("leader_pid"),
        int4("usesysid"),
        extra_field("usename", Text),
        extra_field("application_name", Text),
        extra_field("client_addr", Text),
        extra_field("client_hostname", Text),
        int4("client_port"),
        extra_field("backend_start", Time),
        extra_field("xact_start", Time),
        extra_field("query_start", Time),
        extra_field("state_change", Time),
        extra_field("wait_event_type", Text),
        extra_field("wait_event", Text),
        extra_field("state", Text),
        extra_field("backend_xid", Text),
        extra_field("backend_xmin", Text),
        Field::new("query_id", DataType::Int64, true),
        extra_field("query", Text),
        extra_field("backend_type", Text),
        Field::new("cloudpg_api_calls", DataType::Int64, true),
    ]));
    LiveTable::new("pg_stat_activity", schema, move || {
        let rows = activity.snapshot();
        Box::pin(async move { Ok(columns(&rows)) })
    })
}

fn columns(rows: &[ActivityRow]) -> Vec<ArrayRef> {
    let none_text = || text_array(rows.iter().map(|_| None::<String>));
    let none_int = || -> ArrayRef { Arc::new(Int32Array::from(vec![None::<i32>; rows.len()])) };
    let time = |f: &dyn Fn(&ActivityRow) -> Option<std::time::SystemTime>| time_array(rows.iter().map(|r| f(r).map(epoch_seconds)));
    vec![
        none_int(),
        text_array(rows.iter().map(|r| Some(r.database.clone()))),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.pid))),
        none_int(),
        none_int(),
        text_array(rows.iter().map(|r| Some(r.user.clone()))),
        text_array(rows.iter().map(|r| Some(r.application_name.clone()))),
        text_array(rows.iter().map(|r| r.client.map(|a| a.ip().to_string()))),
        none_text(),
        Arc::new(Int32Array::from_iter(rows.iter().map(|r| r.client.map(|a| i32::from(a.port()))))),
        time(&|r| Some(r.backend_start)),
        time(&|r| r.xact_start),
        time(&|r| r.query_start),
        time(&|r| Some(r.state_change)),
        none_text(),
        none_text(),
        text_array(rows.iter().map(|r| Some(r.state.to_string()))),
        none_text(),
        none_text(),
        Arc::new(Int64Array::from(vec![None::<i64>; rows.len()])),
        text_array(rows.iter().map(|r| Some(r.query.clone()))),
        text_array(rows.iter().map(|_| Some("client backend".to_string()))),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| i64::try_from(r.api_calls).unwrap_or(i64::MAX)),
        )),
    ]
}
