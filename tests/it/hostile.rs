//! Hostile input: the committed fuzz corpus replayed through the fuzz entry points, property
//! tests over arbitrary and mutated input (bounded cases, on stable), and a socket test where
//! many connections send random and mutated protocol messages while a normal client keeps
//! getting correct answers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{column, rows, Process};

/// Parsing recurses per nesting level; the server runs statements on deep stacks, so do these.
fn on_deep_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(cloudpg::server::WORKER_STACK_BYTES)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("corpus")
}

/// A corpus file: `<target>/<name>`, the target's entry point, the bytes.
type CorpusEntry = (String, fn(&[u8]), Vec<u8>);

/// Every corpus file, with the entry point of its directory.
fn corpus() -> Vec<CorpusEntry> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(corpus_dir()).unwrap() {
        let dir = dir.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let target = cloudpg::fuzzing::target(&name).unwrap_or_else(|| panic!("fuzz/corpus/{name} names no fuzz target"));
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            out.push((
                format!("{name}/{}", file.file_name().unwrap().to_string_lossy()),
                target,
                std::fs::read(&file).unwrap(),
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn the_fuzz_corpus_replays_cleanly() {
    let replayed = on_deep_stack(|| {
        let corpus = corpus();
        for (_, target, bytes) in &corpus {
            target(bytes);
        }
        corpus.len()
    });
    assert!(replayed >= 50, "the corpus holds {replayed} inputs");
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

/// A corpus input with some bytes flipped, inserted or cut: close to valid, so it reaches
/// deeper than random bytes do.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..8);
    (prop::sample::select(seeds), edits).prop_map(|(mut bytes, edits)| {
        for (at, byte, kind) in edits {
            match kind {
                0 if !bytes.is_empty() => {
                    let i = at.index(bytes.len());
                    bytes[i] = byte;
                }
                1 => {
                    let i = at.index(bytes.len() + 1);
                    bytes.insert(i, byte);
                }
                2 if !bytes.is_empty() => {
                    let i = at.index(bytes.len());
                    bytes.truncate(i);
                }
                _ => bytes.extend(std::iter::repeat_n(byte, usize::from(byte % 16))),
            }
        }
        bytes
    })
}

#[test]
fn arbitrary_and_mutated_input_never_panics() {
    on_deep_stack(|| {
        let corpus = corpus();
        for name in ["frontend_messages", "authentication", "sql", "dml_value", "dml"] {
            let target = cloudpg::fuzzing::target(name).unwrap();
            let seeds: Vec<Vec<u8>> = corpus
                .iter()
                .filter(|(n, _, _)| n.starts_with(&format!("{name}/")))
                .map(|(_, _, b)| b.clone())
                .collect();
            runner(300)
                .run(&prop::collection::vec(any::<u8>(), 0..512), |bytes| {
                    target(&bytes);
                    Ok(())
                })
                .unwrap();
            runner(600)
                .run(&mutated(seeds), |bytes| {
                    target(&bytes);
                    Ok(())
                })
                .unwrap();
        }
    });
}

#[test]
fn query_text_never_panics_the_classifier() {
    on_deep_stack(|| {
        let pieces = prop::sample::select(vec![
            "SELECT",
            "INSERT",
            "INTO",
            "UPDATE",
            "DELETE",
            "FROM",
            "WHERE",
            "SET",
            "BEGIN",
            "COMMIT",
            "(",
            ")",
            ",",
            ";",
            "'",
            "''",
            "$1",
            "$$",
            "\"",
            "--",
            "/*",
            "*/",
            "awscc.ec2.vpcs",
            "region",
            "=",
            "1",
            "NULL",
            "::jsonb",
            "RETURNING",
            "*",
            "DECLARE",
            "CURSOR",
            "FOR",
            "SHOW",
            "EXPLAIN",
            "COPY",
            "TO",
            "STDOUT",
            "E'\\\\",
            " ",
        ]);
        runner(1500)
            .run(&prop::collection::vec(pieces, 0..40), |words| {
                cloudpg::fuzzing::sql(words.join(" ").as_bytes());
                Ok(())
            })
            .unwrap();
    });
}

#[test]
fn dml_statements_never_panic_their_translation() {
    on_deep_stack(|| {
        let verb = prop::sample::select(vec![
            "INSERT INTO awscc.ec2.vpcs (cidr_block, tags, region) VALUES ($1, $2, $3)",
            "INSERT INTO awscc.ec2.instance_connect_endpoints (subnet_id, preserve_client_ip) VALUES ($1, $2)",
            "INSERT INTO awscc.iam.roles (role_name, assume_role_policy_document, account) VALUES ($1, $2, $3)",
            "UPDATE awscc.ec2.vpcs SET tags = $1, enable_dns_hostnames = $2",
            "UPDATE awscc.logs.log_groups SET retention_in_days = $1, PatchDocument = $2",
            "UPDATE awscc.s3.buckets SET tags = $1, ClientToken = $2",
            "DELETE FROM awscc.ec2.vpcs",
            "DELETE FROM awscc.lambda.functions",
        ]);
        let filter = prop::sample::select(vec![
            "",
            " WHERE identifier = 'a'",
            " WHERE identifier IN ('a', 'b') AND region = 'us-east-1'",
            " WHERE region = $3 AND account = 'prod'",
            " WHERE cidr_block LIKE '10.%'",
            " RETURNING *",
        ]);
        let value = prop_oneof![
            Just("NULL".to_string()),
            Just("true".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            "[a-z0-9./-]{0,12}",
            Just(r#"[{"Key":"env","Value":"x"}]"#.to_string()),
            Just(r#"[{"op":"add","path":"/Tags","value":[]}]"#.to_string()),
            Just(r#"{"deep":[[[[[[1]]]]]]}"#.to_string()),
            "\\PC{0,8}",
        ];
        runner(800)
            .run(&(verb, filter, prop::collection::vec(value, 0..4)), |(verb, filter, values)| {
                let mut input = format!("{verb}{filter}").into_bytes();
                input.push(0);
                input.extend(values.join("\u{1f}").into_bytes());
                cloudpg::fuzzing::dml(&input);
                Ok(())
            })
            .unwrap();
    });
}

#[test]
fn a_fingerprint_never_holds_a_literal() {
    runner(500)
        .run(&("[a-zA-Z0-9 '%_]{0,40}", any::<i64>()), |(text, number)| {
            let quoted = text.replace('\'', "''");
            let a = cloudpg::sql::parse::scan(&format!("SELECT * FROM t WHERE a = '{quoted}' AND b = {number}")).unwrap();
            let b = cloudpg::sql::parse::scan("SELECT * FROM t WHERE a = 'x' AND b = 1").unwrap();
            prop_assert_eq!(&a.0.text, &b.0.text);
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_built_patch_sets_exactly_what_was_assigned() {
    use cloudpg::sql::dml::patch::{build, Assignment};
    use serde_json::{Map, Value};
    let key = "[A-Za-z~/]{1,6}";
    let value = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        "[a-z]{0,5}".prop_map(Value::from),
        prop::collection::vec(any::<bool>(), 0..3).prop_map(Value::from),
    ];
    let old = prop::collection::btree_map(key, value.clone(), 0..6);
    let assigned = prop::collection::btree_map(key, value, 1..6);
    runner(1000)
        .run(&(old, assigned, any::<bool>()), |(old, assigned, known)| {
            let old: Map<String, Value> = old.into_iter().filter(|(_, v)| !v.is_null()).collect();
            let assignments: Vec<Assignment> = assigned
                .iter()
                .map(|(k, v)| Assignment {
                    property: k.clone(),
                    value: (!v.is_null()).then(|| v.clone()),
                })
                .collect();
            let present: Vec<bool> = assignments.iter().map(|a| old.contains_key(&a.property)).collect();
            // Without knowing what is there, NULL becomes `remove`, which Cloud Control (like
            // RFC 6902) refuses for an absent member: only present ones can be asserted.
            let assignments: Vec<Assignment> = assignments
                .into_iter()
                .zip(&present)
                .filter(|(a, present)| known || a.value.is_some() || **present)
                .map(|(a, _)| a)
                .collect();
            let present: Vec<bool> = assignments.iter().map(|a| old.contains_key(&a.property)).collect();
            let ops = build(&assignments, known.then_some(&present[..]));
            let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops)).unwrap();
            let mut doc = Value::Object(old.clone());
            json_patch::patch(&mut doc, &patch).unwrap();
            let mut expected = old;
            for a in &assignments {
                match &a.value {
                    Some(v) => expected.insert(a.property.clone(), v.clone()),
                    None => expected.remove(&a.property),
                };
            }
            prop_assert_eq!(doc, Value::Object(expected));
            Ok(())
        })
        .unwrap();
}

/// A valid startup for user postgres, then `messages`.
fn session_bytes(messages: &[u8]) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for s in ["user", "postgres", "database", "awscc"] {
        body.extend(s.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    out.extend(body);
    out.extend(messages);
    out
}

/// Sends `bytes` on a new connection and reads what comes back until the server closes or
/// a second passes; the server's answer does not matter, only that it lives.
async fn hostile_connection(addr: std::net::SocketAddr, bytes: Vec<u8>) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return;
    };
    let _ = stream.write_all(&bytes).await;
    let mut sink = vec![0u8; 64 * 1024];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_messages_from_many_connections_leave_other_clients_served() {
    use rand::{Rng, SeedableRng};
    let mut server = tokio::task::spawn_blocking(|| Process::serve("")).await.unwrap();
    let addr = server.addr;
    let conn = format!("host=127.0.0.1 port={} user=postgres dbname=awscc", addr.port());
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let check = "SELECT count(*) FROM awscc.ec2.vpcs WHERE region = 'us-east-1'";
    let expected = column(&rows(&client, check).await.unwrap(), 0);

    let seeds: Vec<Vec<u8>> = corpus()
        .into_iter()
        .filter(|(n, _, _)| n.starts_with("frontend_messages/"))
        .map(|(_, _, b)| b)
        .collect();
    let attackers: Vec<_> = (0..16u64)
        .map(|worker| {
            let seeds = seeds.clone();
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(worker);
                for round in 0..25 {
                    let bytes = match round % 3 {
                        // Noise from the first byte.
                        0 => (0..rng.random_range(0..2048)).map(|_| rng.random()).collect(),
                        // A valid login, then noise.
                        1 => session_bytes(&(0..rng.random_range(0..1024)).map(|_| rng.random()).collect::<Vec<u8>>()),
                        // A corpus stream with bytes changed.
                        _ => {
                            let mut b = seeds[rng.random_range(0..seeds.len())].clone();
                            for _ in 0..rng.random_range(1..6) {
                                if !b.is_empty() {
                                    let i = rng.random_range(0..b.len());
                                    b[i] = rng.random();
                                }
                            }
                            b
                        }
                    };
                    hostile_connection(addr, bytes).await;
                }
            })
        })
        .collect();
    let mut checked = 0;
    while attackers.iter().any(|a| !a.is_finished()) {
        assert_eq!(
            column(&rows(&client, check).await.unwrap(), 0),
            expected,
            "answers stay right under attack"
        );
        checked += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for a in attackers {
        a.await.unwrap();
    }
    assert!(checked > 0);
    assert!(server.alive(), "the server survives 400 hostile connections");
    // And it still takes new connections.
    let (fresh, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    assert_eq!(column(&rows(&fresh, check).await.unwrap(), 0), expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bind_whose_value_runs_past_its_message_is_08p01_not_a_dead_task() {
    let server = tokio::task::spawn_blocking(|| Process::serve("")).await.unwrap();
    // Bind: portal "", statement "", no formats, one parameter claiming 1,000 bytes.
    let mut body = vec![0u8, 0u8, 0, 0, 0, 1];
    body.extend(1000i32.to_be_bytes());
    let mut bind = vec![b'B'];
    bind.extend(((body.len() + 4) as u32).to_be_bytes());
    bind.extend(body);
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&session_bytes(&bind)).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("C08P01") && text.contains("invalid frontend message"), "{text:?}");
    // The server goes on.
    let conn = format!("host=127.0.0.1 port={} user=postgres dbname=awscc", server.addr.port());
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    assert_eq!(column(&rows(&client, "SELECT 1").await.unwrap(), 0), vec![Some("1".to_string())]);
}
