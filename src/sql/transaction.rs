//! Transaction blocks as PostgreSQL clients drive them: BEGIN, COMMIT, ROLLBACK, savepoints,
//! the failed state, and settings that a rollback undoes.
//!
//! Cloud Control has no transactions, so a block holds no data changes: it exists so clients
//! (psycopg's `transaction()`, SQLAlchemy, JDBC with autocommit off) see the states and status
//! bytes they expect, and so a mutation inside a block is refused instead of pretending it
//! could be rolled back (see `Session::check_mutation_allowed`). What a block does undo is
//! what PostgreSQL undoes for us too: `SET` and `SET LOCAL`.

use crate::error::{Error, Result};

use super::settings::Settings;

/// A transaction-control statement.
#[derive(Debug, Clone, PartialEq)]
pub enum TransactionCommand {
    Begin {
        read_only: Option<bool>,
    },
    Commit,
    Rollback,
    Savepoint(String),
    Release(String),
    RollbackTo(String),
    /// `SET TRANSACTION …` / `SET SESSION CHARACTERISTICS AS TRANSACTION …`.
    SetCharacteristics {
        read_only: Option<bool>,
        session: bool,
    },
}

/// The state a ReadyForQuery reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Idle,
    InBlock,
    Failed,
}

/// An open transaction block.
#[derive(Debug, Clone)]
struct Block {
    failed: bool,
    read_only: bool,
    /// Settings when the block began: ROLLBACK returns to them.
    at_begin: Settings,
    /// Savepoints, oldest first.
    savepoints: Vec<SavedPoint>,
    /// Settings as they would be without `SET LOCAL`: COMMIT keeps these.
    without_local: Option<Settings>,
}

/// What a savepoint restores.
#[derive(Debug, Clone)]
struct SavedPoint {
    name: String,
    settings: Settings,
    without_local: Option<Settings>,
}

/// The session's transaction state.
#[derive(Debug, Clone, Default)]
pub struct Transaction {
    block: Option<Block>,
}

/// What running a transaction command produced: its command tag and a warning, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub tag: &'static str,
    pub warning: Option<(&'static str, String)>,
}

impl Done {
    fn tag(tag: &'static str) -> Done {
        Done { tag, warning: None }
    }
}

impl Transaction {
    pub fn status(&self) -> Status {
        match &self.block {
            None => Status::Idle,
            Some(b) if b.failed => Status::Failed,
            Some(_) => Status::InBlock,
        }
    }

    /// Whether the current transaction (an explicit block, or a single statement) is read-only.
    pub fn read_only(&self, settings: &Settings) -> bool {
        match &self.block {
            Some(b) => b.read_only,
            None => settings.default_transaction_read_only,
        }
    }

    /// A statement failed: an open block can now only be rolled back.
    pub fn fail(&mut self) {
        if let Some(b) = &mut self.block {
            b.failed = true;
        }
    }

    /// 25P02 for anything but ending the block while it is failed.
    pub fn check_not_failed(&self) -> Result<()> {
        if self.status() == Status::Failed {
            return Err(Error::InFailedTransaction);
        }
        Ok(())
    }

    /// `SET LOCAL`: remember the settings to return to at the end of the block. Outside a
    /// block it has no effect, with the warning PostgreSQL gives.
    pub fn before_set_local(&mut self, settings: &Settings) -> Option<(&'static str, String)> {
        match &mut self.block {
            Some(b) => {
                if b.without_local.is_none() {
                    b.without_local = Some(settings.clone());
                }
                None
            }
            None => Some(("25P01", "SET LOCAL can only be used in transaction blocks".into())),
        }
    }

    /// A plain `SET` inside a block also changes what COMMIT keeps.
    pub fn after_set(&mut self, name: &str, settings: &Settings) {
        if let Some(Block {
            without_local: Some(kept), ..
        }) = &mut self.block
        {
            if let Some(v) = settings.get(name) {
                let _ = kept.set(name, super::settings::SetValue::Text(v));
            }
        }
    }

    /// Runs a transaction command against the session's settings.
    pub fn run(&mut self, command: &TransactionCommand, settings: &mut Settings) -> Result<Done> {
        use TransactionCommand::*;
        let failed = self.status() == Status::Failed;
        match command {
            Begin { read_only } => {
                if failed {
                    return Err(Error::InFailedTransaction);
                }
                if self.block.is_some() {
                    return Ok(Done {
                        tag: "BEGIN",
                        warning: Some(("25001", "there is already a transaction in progress".into())),
                    });
                }
                self.block = Some(Block {
                    failed: false,
                    read_only: read_only.unwrap_or(settings.default_transaction_read_only),
                    at_begin: settings.clone(),
                    savepoints: Vec::new(),
                    without_local: None,
                });
                Ok(Done::tag("BEGIN"))
            }
            Commit => match self.block.take() {
                None => Ok(Done {
                    tag: "COMMIT",
                    warning: Some(("25P01", "there is no transaction in progress".into())),
                }),
                // COMMIT of a failed block rolls it back, and says so in its tag.
                Some(b) if b.failed => {
                    *settings = b.at_begin;
                    Ok(Done::tag("ROLLBACK"))
                }
                Some(b) => {
                    if let Some(kept) = b.without_local {
                        *settings = kept;
                    }
                    Ok(Done::tag("COMMIT"))
                }
            },
            Rollback => match self.block.take() {
                None => Ok(Done {
                    tag: "ROLLBACK",
                    warning: Some(("25P01", "there is no transaction in progress".into())),
                }),
                Some(b) => {
                    *settings = b.at_begin;
                    Ok(Done::tag("ROLLBACK"))
                }
            },
            Savepoint(name) => {
                if failed {
                    return Err(Error::InFailedTransaction);
                }
                let b = self.block.as_mut().ok_or_else(|| Error::NoActiveTransaction("SAVEPOINT".into()))?;
                b.savepoints.push(SavedPoint {
                    name: name.clone(),
                    settings: settings.clone(),
                    without_local: b.without_local.clone(),
                });
                Ok(Done::tag("SAVEPOINT"))
            }
            Release(name) => {
                if failed {
                    return Err(Error::InFailedTransaction);
                }
                let b = self
                    .block
                    .as_mut()
                    .ok_or_else(|| Error::NoActiveTransaction("RELEASE SAVEPOINT".into()))?;
                let at = find_savepoint(b, name)?;
                b.savepoints.truncate(at);
                Ok(Done::tag("RELEASE"))
            }
            RollbackTo(name) => {
                let b = self
                    .block
                    .as_mut()
                    .ok_or_else(|| Error::NoActiveTransaction("ROLLBACK TO SAVEPOINT".into()))?;
                let at = find_savepoint(b, name)?;
                // The savepoint itself stays, so it can be rolled back to again.
                b.savepoints.truncate(at + 1);
                let point = &b.savepoints[at];
                *settings = point.settings.clone();
                b.without_local = point.without_local.clone();
                b.failed = false;
                Ok(Done::tag("ROLLBACK"))
            }
            SetCharacteristics { read_only, session } => {
                if failed {
                    return Err(Error::InFailedTransaction);
                }
                if *session {
                    if let Some(ro) = read_only {
                        settings.default_transaction_read_only = *ro;
                    }
                    return Ok(Done::tag("SET"));
                }
                match &mut self.block {
                    Some(b) => {
                        if let Some(ro) = read_only {
                            b.read_only = *ro;
                        }
                        Ok(Done::tag("SET"))
                    }
                    None => Ok(Done {
                        tag: "SET",
                        warning: Some(("25P01", "SET TRANSACTION can only be used in transaction blocks".into())),
                    }),
                }
            }
        }
    }
}

/// The position of the newest savepoint called `name` (savepoint names may repeat; the
/// newest wins, as in PostgreSQL).
fn find_savepoint(b: &Block, name: &str) -> Result<usize> {
    b.savepoints
        .iter()
        .rposition(|p| p.name == name)
        .ok_or_else(|| Error::InvalidSavepoint(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::TransactionCommand::*;
    use super::*;
    use crate::config::Config;
    use crate::sql::settings::SetValue;

    fn settings() -> Settings {
        Settings::new(&Config::default(), &Default::default(), crate::auth::Role::Writer)
    }

    #[test]
    fn begin_commit_rollback_and_their_warnings() {
        let (mut t, mut s) = (Transaction::default(), settings());
        assert_eq!(t.status(), Status::Idle);
        let w = t.run(&Commit, &mut s).unwrap();
        assert_eq!(w.warning.unwrap().0, "25P01");
        t.run(&Begin { read_only: None }, &mut s).unwrap();
        assert_eq!(t.status(), Status::InBlock);
        assert_eq!(t.run(&Begin { read_only: None }, &mut s).unwrap().warning.unwrap().0, "25001");
        assert_eq!(t.run(&Commit, &mut s).unwrap().tag, "COMMIT");
        assert_eq!(t.status(), Status::Idle);
    }

    #[test]
    fn a_failed_block_refuses_everything_but_its_end() {
        let (mut t, mut s) = (Transaction::default(), settings());
        t.run(&Begin { read_only: None }, &mut s).unwrap();
        t.run(&Savepoint("a".into()), &mut s).unwrap();
        t.fail();
        assert_eq!(t.status(), Status::Failed);
        assert_eq!(t.check_not_failed().unwrap_err().sqlstate(), "25P02");
        assert_eq!(t.run(&Savepoint("b".into()), &mut s).unwrap_err().sqlstate(), "25P02");
        assert_eq!(t.run(&Release("a".into()), &mut s).unwrap_err().sqlstate(), "25P02");
        // ROLLBACK TO recovers the block; the savepoint stays.
        assert_eq!(t.run(&RollbackTo("a".into()), &mut s).unwrap().tag, "ROLLBACK");
        assert_eq!(t.status(), Status::InBlock);
        t.fail();
        assert_eq!(
            t.run(&Commit, &mut s).unwrap().tag,
            "ROLLBACK",
            "COMMIT of a failed block rolls back"
        );
        assert_eq!(t.status(), Status::Idle);
    }

    #[test]
    fn savepoints_nest_and_unknown_ones_are_named() {
        let (mut t, mut s) = (Transaction::default(), settings());
        assert_eq!(t.run(&Savepoint("x".into()), &mut s).unwrap_err().sqlstate(), "25P01");
        t.run(&Begin { read_only: None }, &mut s).unwrap();
        for n in ["a", "b", "c"] {
            t.run(&Savepoint(n.into()), &mut s).unwrap();
        }
        t.run(&Release("b".into()), &mut s).unwrap();
        let e = t.run(&RollbackTo("c".into()), &mut s).unwrap_err();
        assert_eq!(e.sqlstate(), "3B001");
        assert!(e.to_string().contains("\"c\""), "{e}");
        t.run(&RollbackTo("a".into()), &mut s).unwrap();
    }

    #[test]
    fn rollback_undoes_set_and_commit_drops_set_local() {
        let (mut t, mut s) = (Transaction::default(), settings());
        t.run(&Begin { read_only: None }, &mut s).unwrap();
        s.set("statement_timeout", SetValue::Text("5s".into())).unwrap();
        t.run(&Rollback, &mut s).unwrap();
        assert_eq!(s.get("statement_timeout").unwrap(), "0");

        t.run(&Begin { read_only: None }, &mut s).unwrap();
        s.set("statement_timeout", SetValue::Text("5s".into())).unwrap();
        t.after_set("statement_timeout", &s);
        assert!(t.before_set_local(&s).is_none());
        s.set("cloudpg.nowait", SetValue::Text("on".into())).unwrap();
        t.run(&Savepoint("p".into()), &mut s).unwrap();
        s.set("statement_timeout", SetValue::Text("9s".into())).unwrap();
        t.after_set("statement_timeout", &s);
        t.run(&RollbackTo("p".into()), &mut s).unwrap();
        assert_eq!(s.get("statement_timeout").unwrap(), "5s");
        t.run(&Commit, &mut s).unwrap();
        assert_eq!(s.get("statement_timeout").unwrap(), "5s", "a plain SET survives COMMIT");
        assert_eq!(s.get("cloudpg.nowait").unwrap(), "off", "SET LOCAL ends with the block");
        assert_eq!(t.before_set_local(&s).unwrap().0, "25P01");
    }

    #[test]
    fn read_only_blocks() {
        let (mut t, mut s) = (Transaction::default(), settings());
        assert!(!t.read_only(&s));
        t.run(&Begin { read_only: Some(true) }, &mut s).unwrap();
        assert!(t.read_only(&s));
        t.run(&Commit, &mut s).unwrap();
        t.run(
            &SetCharacteristics {
                read_only: Some(true),
                session: true,
            },
            &mut s,
        )
        .unwrap();
        assert!(t.read_only(&s));
    }
}
