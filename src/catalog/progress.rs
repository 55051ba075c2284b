//! How far a statement's scans have got: each scan counts its lists, resources and reads here
//! as it goes, and the wire layer turns a snapshot into the progress NOTICE a client sees
//! while it waits (`ec2.instances: 9/17 regions listed, 4,310 resources, 1,200/4,310 read`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The scans of one statement.
#[derive(Debug, Default)]
pub struct Progress {
    tables: Mutex<Vec<Arc<TableProgress>>>,
    /// Failures a scan carried on past (`cloudpg.on_error = 'warn'`), for WARNINGs, and
    /// places skipped (a region the account has not enabled), for NOTICEs: `true` marks a
    /// warning.
    warnings: Mutex<Vec<(bool, String)>>,
}

/// One scan's counts.
#[derive(Debug)]
pub struct TableProgress {
    table: String,
    /// Lists to run (regions × parent combinations); 0 when reading named identifiers.
    lists: usize,
    /// Whether `lists` are one per region (no parent combinations).
    per_region: bool,
    listed: AtomicUsize,
    resources: AtomicUsize,
    to_read: AtomicUsize,
    read: AtomicUsize,
    /// Whether resources are read one by one (GetResource), so reads are worth showing.
    reads: bool,
    finished: std::sync::atomic::AtomicBool,
}

impl Progress {
    /// A failure the statement goes on without (its rows are missing from the result).
    pub fn warn(&self, text: String) {
        self.warnings.lock().unwrap_or_else(|p| p.into_inner()).push((true, text));
    }

    /// Something the statement skipped as it should (no rows are missing), for a NOTICE.
    pub fn note(&self, text: String) {
        self.warnings.lock().unwrap_or_else(|p| p.into_inner()).push((false, text));
    }

    /// The failures gone on without and the places skipped so far, once each; `true` marks
    /// a warning.
    pub fn take_warnings(&self) -> Vec<(bool, String)> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Starts counting a scan of `table`.
    pub fn track(&self, table: &str, lists: usize, per_region: bool, reads: bool, to_read: usize) -> Arc<TableProgress> {
        let t = Arc::new(TableProgress {
            table: table.to_string(),
            lists,
            per_region,
            listed: AtomicUsize::new(0),
            resources: AtomicUsize::new(0),
            to_read: AtomicUsize::new(to_read),
            read: AtomicUsize::new(0),
            reads,
            finished: std::sync::atomic::AtomicBool::new(false),
        });
        self.tables.lock().unwrap_or_else(|p| p.into_inner()).push(t.clone());
        t
    }

    /// One line per scan still running, or `None` when there is nothing to report.
    pub fn describe(&self) -> Option<String> {
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let lines: Vec<String> = tables
            .iter()
            .filter(|t| !t.finished.load(Ordering::Relaxed))
            .map(|t| t.describe())
            .collect();
        (!lines.is_empty()).then(|| lines.join("; "))
    }
}

impl TableProgress {
    /// A page of `n` resources was listed (and, when reading one by one, queued for reads).
    pub fn listed_page(&self, n: usize) {
        self.resources.fetch_add(n, Ordering::Relaxed);
        if self.reads {
            self.to_read.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// One list (a region, or a region and parent combination) has no more pages.
    pub fn list_done(&self) {
        self.listed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn read_one(&self) {
        self.read.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` resources read at once (a kept list sent again).
    pub fn read_many(&self, n: usize) {
        self.read.fetch_add(n, Ordering::Relaxed);
    }

    /// The scan has sent all it will.
    pub fn finish(&self) {
        self.finished.store(true, Ordering::Relaxed);
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.lists > 0 {
            let what = if self.per_region { "regions" } else { "lists" };
            parts.push(format!(
                "{}/{} {what} listed",
                thousands(self.listed.load(Ordering::Relaxed)),
                thousands(self.lists)
            ));
            parts.push(format!("{} resources", thousands(self.resources.load(Ordering::Relaxed))));
        }
        if self.reads {
            parts.push(format!(
                "{}/{} read",
                thousands(self.read.load(Ordering::Relaxed)),
                thousands(self.to_read.load(Ordering::Relaxed))
            ));
        }
        format!("{}: {}", self.table, parts.join(", "))
    }
}

/// `4310` → `4,310`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_running_scans() {
        let p = Progress::default();
        assert_eq!(p.describe(), None);
        let t = p.track("ec2.instances", 17, true, true, 0);
        for _ in 0..9 {
            t.list_done();
        }
        t.listed_page(4310);
        for _ in 0..1200 {
            t.read_one();
        }
        assert_eq!(
            p.describe().as_deref(),
            Some("ec2.instances: 9/17 regions listed, 4,310 resources, 1,200/4,310 read")
        );
        let named = p.track("ec2.vpcs", 0, true, true, 3);
        named.read_one();
        t.finish();
        assert_eq!(p.describe().as_deref(), Some("ec2.vpcs: 1/3 read"));
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }
}
