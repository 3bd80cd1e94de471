//! Persistence: an embedded SQLite database holding workflow versions, executions, every
//! step run, context items and the cache index.
//!
//! Writes go through one writer thread that commits whatever has queued up in a single
//! transaction (group commit), so recording a step costs the engine a channel send, and a
//! crash loses at most the writes of the last few milliseconds, never a half-written row:
//! the database runs in WAL mode and every batch is one transaction.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ExecutionStatus;

mod studies;
pub use studies::{StudyRecord, TrialRecord, TrialState};

/// Bumped when the database layout changes; older layouts are migrated on open.
const SCHEMA_VERSION: i64 = 2;

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database {}: written by a newer grym-synth (layout {found}, this build knows {known})", path.display())]
    NewerLayout {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("database {}: the writer thread has stopped", path.display())]
    WriterGone { path: PathBuf },
    #[error("database {}: corrupt row: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn from_unix_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// One execution as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRecord {
    pub id: String,
    pub workflow_id: String,
    pub workflow_name: String,
    pub status: ExecutionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub parameters: Value,
    #[serde(with = "crate::engine::timefmt")]
    pub started_at: SystemTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, with = "crate::engine::timefmt::option")]
    pub finished_at: Option<SystemTime>,
    pub output_dir: PathBuf,
    /// The workflow as it was when the execution started (JSON).
    #[serde(skip)]
    pub workflow_json: String,
}

/// The status of one attempt of one visit of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepRunStatus {
    Running,
    Completed,
    Failed,
    Cancelled,
    /// The process ended while it ran.
    Interrupted,
}

impl StepRunStatus {
    fn as_str(self) -> &'static str {
        match self {
            StepRunStatus::Running => "running",
            StepRunStatus::Completed => "completed",
            StepRunStatus::Failed => "failed",
            StepRunStatus::Cancelled => "cancelled",
            StepRunStatus::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => StepRunStatus::Running,
            "completed" => StepRunStatus::Completed,
            "failed" => StepRunStatus::Failed,
            "cancelled" => StepRunStatus::Cancelled,
            "interrupted" => StepRunStatus::Interrupted,
            _ => return None,
        })
    }
}

/// One attempt at one visit of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRunRecord {
    /// Order within the execution.
    pub seq: u64,
    pub step_id: String,
    /// Which visit of the step this is (1 for the first; loops count up).
    pub iteration: u32,
    /// Which try of this visit (1 unless retried).
    pub attempt: u32,
    pub status: StepRunStatus,
    #[serde(with = "crate::engine::timefmt")]
    pub started_at: SystemTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, with = "crate::engine::timefmt::option")]
    pub finished_at: Option<SystemTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    pub cached: bool,
    /// The branch the step's condition chose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<bool>,
}

/// A context item (the plan's `ContextItem`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextItem {
    pub id: String,
    pub kind: String,
    pub tags: Vec<String>,
    pub payload: Value,
    #[serde(with = "crate::engine::timefmt")]
    pub created_at: SystemTime,
}

/// A stored version of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowVersion {
    pub workflow_id: String,
    pub version: u32,
    #[serde(with = "crate::engine::timefmt")]
    pub created_at: SystemTime,
    pub created_by: String,
    pub note: String,
    #[serde(skip)]
    pub definition: String,
}

enum Write {
    ExecutionStarted(ExecutionRecord),
    ExecutionStatus {
        id: String,
        status: ExecutionStatus,
        error: Option<String>,
        finished_at: Option<SystemTime>,
    },
    StepRun {
        execution_id: String,
        run: StepRunRecord,
    },
    Context {
        item: ContextItem,
    },
    Cache {
        key: String,
        operation: String,
        result: Value,
    },
    Flush(Sender<()>),
}

/// The database. Cheap to share behind an `Arc`.
pub struct Store {
    path: PathBuf,
    writer: Mutex<Option<Sender<Write>>>,
    writer_thread: Mutex<Option<thread::JoinHandle<()>>>,
    reader: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`. Executions that were running in a
    /// process that is gone are marked `interrupted`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let sql = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path).map_err(sql)?;
        configure(&conn).map_err(sql)?;
        migrate(&conn, path)?;
        mark_interrupted(&conn).map_err(sql)?;

        let writer_conn = Connection::open(path).map_err(sql)?;
        configure(&writer_conn).map_err(sql)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread_path = path.to_path_buf();
        let handle = thread::Builder::new()
            .name("grym-store".into())
            .spawn(move || writer_loop(writer_conn, rx, &thread_path))
            .map_err(|e| StoreError::Corrupt {
                path: path.to_path_buf(),
                message: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(Store {
            path: path.to_path_buf(),
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(handle)),
            reader: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send(&self, w: Write) {
        let sent = self.writer.lock().as_ref().map(|tx| tx.send(w).is_ok());
        if sent != Some(true) {
            tracing::error!(
                "{}: write dropped: the writer has stopped",
                self.path.display()
            );
        }
    }

    /// Blocks until everything sent so far is committed.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(Write::Flush(tx));
        rx.recv().map_err(|_| StoreError::WriterGone {
            path: self.path.clone(),
        })
    }

    /// Commits what is queued and stops the writer.
    pub fn close(&self) {
        let _ = self.flush();
        self.writer.lock().take();
        if let Some(handle) = self.writer_thread.lock().take() {
            let _ = handle.join();
        }
    }

    pub fn record_execution_started(&self, record: ExecutionRecord) {
        self.send(Write::ExecutionStarted(record));
    }

    pub fn record_execution_status(
        &self,
        id: &str,
        status: ExecutionStatus,
        error: Option<String>,
        finished_at: Option<SystemTime>,
    ) {
        self.send(Write::ExecutionStatus {
            id: id.to_string(),
            status,
            error,
            finished_at,
        });
    }

    /// Inserts or replaces (by execution and `seq`) a step run.
    pub fn record_step_run(&self, execution_id: &str, run: StepRunRecord) {
        self.send(Write::StepRun {
            execution_id: execution_id.to_string(),
            run,
        });
    }

    pub fn store_context(&self, item: ContextItem) {
        self.send(Write::Context { item });
    }

    pub fn store_cache(&self, key: &str, operation: &str, result: Value) {
        self.send(Write::Cache {
            key: key.to_string(),
            operation: operation.to_string(),
            result,
        });
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Stores a new version of a workflow and returns its number (1 for the first).
    pub fn save_workflow_version(
        &self,
        workflow_id: &str,
        definition: &str,
        created_by: &str,
        note: &str,
    ) -> Result<u32, StoreError> {
        let mut conn = self.reader.lock();
        // IMMEDIATE takes the write lock up front: a deferred transaction that read first
        // could not upgrade once the writer thread had committed (SQLITE_BUSY_SNAPSHOT).
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(self.sql())?;
        let latest: Option<(i64, String)> = tx
            .query_row(
                "SELECT version, definition FROM workflow_versions WHERE workflow_id = ?1 ORDER BY version DESC LIMIT 1",
                params![workflow_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.sql())?;
        if let Some((version, previous)) = &latest
            && previous == definition
        {
            return Ok(*version as u32);
        }
        let version = latest.map_or(1, |(v, _)| v + 1);
        tx.execute(
            "INSERT INTO workflow_versions (workflow_id, version, definition, created_at, created_by, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![workflow_id, version, definition, unix_ms(SystemTime::now()), created_by, note],
        )
        .map_err(self.sql())?;
        tx.commit().map_err(self.sql())?;
        Ok(version as u32)
    }

    /// The newest stored version of a workflow (possibly a deletion: empty definition).
    pub fn latest_workflow_version(
        &self,
        workflow_id: &str,
    ) -> Result<Option<WorkflowVersion>, StoreError> {
        let conn = self.reader.lock();
        conn.query_row(
            "SELECT workflow_id, version, created_at, created_by, note, definition FROM workflow_versions WHERE workflow_id = ?1 ORDER BY version DESC LIMIT 1",
            params![workflow_id],
            |r| {
                Ok(WorkflowVersion {
                    workflow_id: r.get(0)?,
                    version: r.get::<_, i64>(1)? as u32,
                    created_at: from_unix_ms(r.get(2)?),
                    created_by: r.get(3)?,
                    note: r.get(4)?,
                    definition: r.get(5)?,
                })
            },
        )
        .optional()
        .map_err(self.sql())
    }

    pub fn workflow_versions(&self, workflow_id: &str) -> Result<Vec<WorkflowVersion>, StoreError> {
        let conn = self.reader.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT workflow_id, version, created_at, created_by, note, definition FROM workflow_versions WHERE workflow_id = ?1 ORDER BY version",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![workflow_id], |r| {
                Ok(WorkflowVersion {
                    workflow_id: r.get(0)?,
                    version: r.get::<_, i64>(1)? as u32,
                    created_at: from_unix_ms(r.get(2)?),
                    created_by: r.get(3)?,
                    note: r.get(4)?,
                    definition: r.get(5)?,
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }

    /// Ids of every workflow with stored versions.
    pub fn workflow_ids(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.reader.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT DISTINCT workflow_id FROM workflow_versions ORDER BY workflow_id",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }

    /// Recorded executions, newest first.
    pub fn executions(&self, limit: usize) -> Result<Vec<ExecutionRecord>, StoreError> {
        let conn = self.reader.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, workflow_id, workflow_name, status, error, parameters, started_at, finished_at, output_dir, workflow FROM executions ORDER BY started_at DESC, rowid DESC LIMIT ?1",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![limit as i64], execution_from_row)
            .map_err(self.sql())?;
        let raw: Vec<_> = rows.collect::<Result<_, _>>().map_err(self.sql())?;
        raw.into_iter()
            .map(|r| self.finish_execution_row(r))
            .collect()
    }

    pub fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        let conn = self.reader.lock();
        let raw = conn
            .query_row(
                "SELECT id, workflow_id, workflow_name, status, error, parameters, started_at, finished_at, output_dir, workflow FROM executions WHERE id = ?1",
                params![id],
                execution_from_row,
            )
            .optional()
            .map_err(self.sql())?;
        raw.map(|r| self.finish_execution_row(r)).transpose()
    }

    fn finish_execution_row(&self, raw: RawExecution) -> Result<ExecutionRecord, StoreError> {
        let corrupt = |message: String| StoreError::Corrupt {
            path: self.path.clone(),
            message,
        };
        let status = ExecutionStatus::parse(&raw.status).ok_or_else(|| {
            corrupt(format!(
                "execution {} has unknown status `{}`",
                raw.id, raw.status
            ))
        })?;
        let parameters = serde_json::from_str(&raw.parameters)
            .map_err(|e| corrupt(format!("execution {} parameters: {e}", raw.id)))?;
        Ok(ExecutionRecord {
            id: raw.id,
            workflow_id: raw.workflow_id,
            workflow_name: raw.workflow_name,
            status,
            error: raw.error,
            parameters,
            started_at: from_unix_ms(raw.started_at),
            finished_at: raw.finished_at.map(from_unix_ms),
            output_dir: PathBuf::from(raw.output_dir),
            workflow_json: raw.workflow,
        })
    }

    /// Every step run of an execution, in order.
    pub fn step_runs(&self, execution_id: &str) -> Result<Vec<StepRunRecord>, StoreError> {
        let conn = self.reader.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, step_id, iteration, attempt, status, started_at, finished_at, duration_ms, error, result, cached, branch FROM step_runs WHERE execution_id = ?1 ORDER BY seq",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![execution_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                    r.get::<_, Option<f64>>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, bool>(10)?,
                    r.get::<_, Option<bool>>(11)?,
                ))
            })
            .map_err(self.sql())?;
        let mut runs = Vec::new();
        for row in rows {
            let (
                seq,
                step_id,
                iteration,
                attempt,
                status,
                started,
                finished,
                duration,
                error,
                result,
                cached,
                branch,
            ) = row.map_err(self.sql())?;
            let status = StepRunStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
                path: self.path.clone(),
                message: format!("step run {execution_id}/{seq} has unknown status `{status}`"),
            })?;
            let result = match result {
                Some(text) => {
                    Some(
                        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                            path: self.path.clone(),
                            message: format!("step run {execution_id}/{seq} result: {e}"),
                        })?,
                    )
                }
                None => None,
            };
            runs.push(StepRunRecord {
                seq: seq as u64,
                step_id,
                iteration: iteration as u32,
                attempt: attempt as u32,
                status,
                started_at: from_unix_ms(started),
                finished_at: finished.map(from_unix_ms),
                duration_ms: duration,
                error,
                result,
                cached,
                branch,
            });
        }
        Ok(runs)
    }

    /// A cached result, if stored.
    pub fn cache_get(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let conn = self.reader.lock();
        let text: Option<String> = conn
            .query_row(
                "SELECT result FROM cache WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sql())?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Every cache key, so that misses never touch the database.
    pub fn cache_keys(&self) -> Result<HashSet<String>, StoreError> {
        let conn = self.reader.lock();
        let mut stmt = conn.prepare("SELECT key FROM cache").map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }

    /// Completed step results as context items (kind `step_result`, tagged `workflow:`,
    /// `execution:` and `step:`), read from the step runs instead of being stored twice.
    pub fn query_step_results(
        &self,
        workflow_id: Option<&str>,
        execution_id: Option<&str>,
        step_id: Option<&str>,
        since: Option<SystemTime>,
        limit: usize,
    ) -> Result<Vec<ContextItem>, StoreError> {
        let conn = self.reader.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT r.execution_id, r.seq, r.step_id, e.workflow_id, r.result, COALESCE(r.finished_at, r.started_at)
                 FROM step_runs r JOIN executions e ON e.id = r.execution_id
                 WHERE r.status = 'completed' AND r.result IS NOT NULL
                   AND (?1 IS NULL OR e.workflow_id = ?1)
                   AND (?2 IS NULL OR r.execution_id = ?2)
                   AND (?3 IS NULL OR r.step_id = ?3)
                   AND (?4 IS NULL OR COALESCE(r.finished_at, r.started_at) >= ?4)
                 ORDER BY COALESCE(r.finished_at, r.started_at) DESC, r.rowid DESC LIMIT ?5",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(
                params![
                    workflow_id,
                    execution_id,
                    step_id,
                    since.map(unix_ms),
                    limit as i64
                ],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                },
            )
            .map_err(self.sql())?;
        let mut items = Vec::new();
        for row in rows {
            let (execution, seq, step, workflow, result, at) = row.map_err(self.sql())?;
            items.push(ContextItem {
                id: format!("{execution}/{seq}"),
                kind: super::context::STEP_RESULT_KIND.to_string(),
                tags: vec![
                    super::context::workflow_tag(&workflow),
                    super::context::execution_tag(&execution),
                    super::context::step_tag(&step),
                ],
                payload: serde_json::from_str(&result).unwrap_or(Value::Null),
                created_at: from_unix_ms(at),
            });
        }
        Ok(items)
    }

    /// Context items carrying every tag in `tags` (and of `kind`, when given), created at or
    /// after `since`, newest first.
    pub fn query_context(
        &self,
        tags: &[String],
        kind: Option<&str>,
        since: Option<SystemTime>,
        limit: usize,
    ) -> Result<Vec<ContextItem>, StoreError> {
        let conn = self.reader.lock();
        let mut sql = String::from(
            "SELECT i.id, i.kind, i.tags, i.payload, i.created_at FROM context_items i WHERE 1 = 1",
        );
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        for tag in tags {
            args.push(tag.clone().into());
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM context_tags t WHERE t.item_id = i.id AND t.tag = ?{})",
                args.len()
            ));
        }
        if let Some(kind) = kind {
            args.push(kind.to_string().into());
            sql.push_str(&format!(" AND i.kind = ?{}", args.len()));
        }
        if let Some(since) = since {
            args.push(unix_ms(since).into());
            sql.push_str(&format!(" AND i.created_at >= ?{}", args.len()));
        }
        args.push((limit as i64).into());
        sql.push_str(&format!(
            " ORDER BY i.created_at DESC, i.rowid DESC LIMIT ?{}",
            args.len()
        ));
        let mut stmt = conn.prepare_cached(&sql).map_err(self.sql())?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(self.sql())?;
        let mut items = Vec::new();
        for row in rows {
            let (id, kind, tags, payload, created) = row.map_err(self.sql())?;
            items.push(ContextItem {
                id,
                kind,
                tags: serde_json::from_str(&tags).unwrap_or_default(),
                payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
                created_at: from_unix_ms(created),
            });
        }
        Ok(items)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

struct RawExecution {
    id: String,
    workflow_id: String,
    workflow_name: String,
    status: String,
    error: Option<String>,
    parameters: String,
    started_at: i64,
    finished_at: Option<i64>,
    output_dir: String,
    workflow: String,
}

fn execution_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawExecution> {
    Ok(RawExecution {
        id: r.get(0)?,
        workflow_id: r.get(1)?,
        workflow_name: r.get(2)?,
        status: r.get(3)?,
        error: r.get(4)?,
        parameters: r.get(5)?,
        started_at: r.get(6)?,
        finished_at: r.get(7)?,
        output_dir: r.get(8)?,
        workflow: r.get(9)?,
    })
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // NORMAL in WAL mode: a committed transaction survives a process crash; only a power
    // loss can take back the last commits, and never corrupts the file.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let sql = |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerLayout {
            path: path.to_path_buf(),
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    if version < 1 {
        conn.execute_batch(
            "BEGIN;
            CREATE TABLE IF NOT EXISTS workflow_versions (
                workflow_id TEXT NOT NULL,
                version INTEGER NOT NULL,
                definition TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                created_by TEXT NOT NULL,
                note TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (workflow_id, version)
            );
            CREATE TABLE IF NOT EXISTS executions (
                id TEXT PRIMARY KEY,
                workflow_id TEXT NOT NULL,
                workflow_name TEXT NOT NULL,
                workflow TEXT NOT NULL,
                parameters TEXT NOT NULL,
                status TEXT NOT NULL,
                error TEXT,
                started_at INTEGER NOT NULL,
                finished_at INTEGER,
                output_dir TEXT NOT NULL,
                owner_pid INTEGER NOT NULL
            );
            CREATE INDEX IF NOT EXISTS executions_by_status ON executions (status);
            CREATE INDEX IF NOT EXISTS executions_by_workflow ON executions (workflow_id);
            CREATE TABLE IF NOT EXISTS step_runs (
                execution_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                step_id TEXT NOT NULL,
                iteration INTEGER NOT NULL,
                attempt INTEGER NOT NULL,
                status TEXT NOT NULL,
                started_at INTEGER NOT NULL,
                finished_at INTEGER,
                duration_ms REAL,
                error TEXT,
                result TEXT,
                cached INTEGER NOT NULL DEFAULT 0,
                branch INTEGER,
                PRIMARY KEY (execution_id, seq)
            );
            CREATE INDEX IF NOT EXISTS step_runs_by_step ON step_runs (step_id, status);
            CREATE TABLE IF NOT EXISTS context_items (
                id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                tags TEXT NOT NULL,
                payload TEXT NOT NULL,
                created_at INTEGER NOT NULL
            );
            CREATE TABLE IF NOT EXISTS context_tags (
                item_id TEXT NOT NULL,
                tag TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS context_tags_by_tag ON context_tags (tag, item_id);
            CREATE TABLE IF NOT EXISTS cache (
                key TEXT PRIMARY KEY,
                operation TEXT NOT NULL,
                result TEXT NOT NULL,
                created_at INTEGER NOT NULL
            );
            PRAGMA user_version = 1;
            COMMIT;",
        )
        .map_err(sql)?;
    }
    if version < 2 {
        conn.execute_batch(&format!(
            "BEGIN; {} PRAGMA user_version = 2; COMMIT;",
            studies::CREATE_TABLES
        ))
        .map_err(sql)?;
    }
    Ok(())
}

/// Whether the process that owned a running execution is still alive.
fn process_alive(pid: i64) -> bool {
    if pid == i64::from(std::process::id()) {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        false
    }
}

fn mark_interrupted(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn
        .prepare("SELECT id, owner_pid FROM executions WHERE status IN ('pending', 'running')")?;
    let orphans: Vec<String> = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .filter_map(Result::ok)
        .filter(|(_, pid)| !process_alive(*pid))
        .map(|(id, _)| id)
        .collect();
    for id in orphans {
        conn.execute(
            "UPDATE executions SET status = 'interrupted', error = 'the process running it ended' WHERE id = ?1",
            params![id],
        )?;
        conn.execute(
            "UPDATE step_runs SET status = 'interrupted' WHERE execution_id = ?1 AND status = 'running'",
            params![id],
        )?;
    }
    Ok(())
}

fn writer_loop(mut conn: Connection, rx: Receiver<Write>, path: &Path) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let mut acks = Vec::new();
        if let Err(e) = apply_batch(&mut conn, &mut batch, &mut acks) {
            tracing::error!(
                "{}: could not record {} writes: {e}",
                path.display(),
                batch.len()
            );
        }
        batch.clear();
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

fn apply_batch(
    conn: &mut Connection,
    batch: &mut Vec<Write>,
    acks: &mut Vec<Sender<()>>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for write in batch.drain(..) {
        // One bad row must not take the rest of the batch down with it.
        if let Err(e) = apply_one(&tx, write, acks) {
            tracing::error!("a database write failed: {e}");
        }
    }
    tx.commit()
}

fn apply_one(
    tx: &rusqlite::Transaction<'_>,
    write: Write,
    acks: &mut Vec<Sender<()>>,
) -> rusqlite::Result<()> {
    {
        match write {
            Write::ExecutionStarted(r) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO executions (id, workflow_id, workflow_name, workflow, parameters, status, error, started_at, finished_at, output_dir, owner_pid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?
                .execute(params![
                    r.id,
                    r.workflow_id,
                    r.workflow_name,
                    r.workflow_json,
                    r.parameters.to_string(),
                    r.status.as_str(),
                    r.error,
                    unix_ms(r.started_at),
                    r.finished_at.map(unix_ms),
                    r.output_dir.to_string_lossy(),
                    i64::from(std::process::id()),
                ])?;
            }
            Write::ExecutionStatus {
                id,
                status,
                error,
                finished_at,
            } => {
                tx.prepare_cached(
                    "UPDATE executions SET status = ?2, error = ?3, finished_at = ?4, owner_pid = ?5 WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    status.as_str(),
                    error,
                    finished_at.map(unix_ms),
                    i64::from(std::process::id())
                ])?;
            }
            Write::StepRun { execution_id, run } => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO step_runs (execution_id, seq, step_id, iteration, attempt, status, started_at, finished_at, duration_ms, error, result, cached, branch) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )?
                .execute(params![
                    execution_id,
                    run.seq as i64,
                    run.step_id,
                    run.iteration,
                    run.attempt,
                    run.status.as_str(),
                    unix_ms(run.started_at),
                    run.finished_at.map(unix_ms),
                    run.duration_ms,
                    run.error,
                    run.result.as_ref().map(Value::to_string),
                    run.cached,
                    run.branch,
                ])?;
            }
            Write::Context { item } => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO context_items (id, kind, tags, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    item.id,
                    item.kind,
                    serde_json::to_string(&item.tags).unwrap_or_else(|_| "[]".into()),
                    item.payload.to_string(),
                    unix_ms(item.created_at),
                ])?;
                let mut insert_tag =
                    tx.prepare_cached("INSERT INTO context_tags (item_id, tag) VALUES (?1, ?2)")?;
                for tag in &item.tags {
                    insert_tag.execute(params![item.id, tag])?;
                }
            }
            Write::Cache {
                key,
                operation,
                result,
            } => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO cache (key, operation, result, created_at) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    key,
                    operation,
                    result.to_string(),
                    unix_ms(SystemTime::now())
                ])?;
            }
            Write::Flush(ack) => acks.push(ack),
        }
    }
    Ok(())
}
