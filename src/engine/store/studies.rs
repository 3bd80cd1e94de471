//! Optimisation studies and their trials. Written synchronously (a trial is seconds to
//! minutes of work, so one small transaction each costs nothing) so that a record is on
//! disk before the optimiser moves on, and a study continues after a restart.

use std::time::SystemTime;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Store, StoreError, from_unix_ms, unix_ms};
use crate::workflow::{Direction, Optimization};

/// One optimisation study of one workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StudyRecord {
    pub id: String,
    pub workflow_id: String,
    /// What was tuned, the objective and its direction, as the study ran them.
    pub optimization: Optimization,
    /// Run parameters every trial shares.
    pub fixed: Value,
    pub seed: u64,
    #[serde(with = "crate::engine::timefmt")]
    pub created_at: SystemTime,
}

impl StudyRecord {
    pub fn direction(&self) -> Direction {
        self.optimization.direction
    }
}

/// Where a trial is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialState {
    Running,
    /// Finished with a score.
    Completed,
    /// The execution failed, or its result had no objective value.
    Failed,
    Cancelled,
    /// The process ended while it ran.
    Interrupted,
}

impl TrialState {
    pub fn as_str(self) -> &'static str {
        match self {
            TrialState::Running => "running",
            TrialState::Completed => "completed",
            TrialState::Failed => "failed",
            TrialState::Cancelled => "cancelled",
            TrialState::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => TrialState::Running,
            "completed" => TrialState::Completed,
            "failed" => TrialState::Failed,
            "cancelled" => TrialState::Cancelled,
            "interrupted" => TrialState::Interrupted,
            _ => return None,
        })
    }
}

/// One trial: a set of parameter values, the execution that ran them and its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrialRecord {
    pub study_id: String,
    /// 1 for the first trial of the study.
    pub number: u32,
    pub state: TrialState,
    /// The tuned values of this trial.
    pub params: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(with = "crate::engine::timefmt")]
    pub started_at: SystemTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, with = "crate::engine::timefmt::option")]
    pub finished_at: Option<SystemTime>,
}

pub(super) const CREATE_TABLES: &str = "
    CREATE TABLE IF NOT EXISTS studies (
        id TEXT PRIMARY KEY,
        workflow_id TEXT NOT NULL,
        optimization TEXT NOT NULL,
        fixed TEXT NOT NULL,
        seed INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS studies_by_workflow ON studies (workflow_id);
    CREATE TABLE IF NOT EXISTS trials (
        study_id TEXT NOT NULL,
        number INTEGER NOT NULL,
        state TEXT NOT NULL,
        params TEXT NOT NULL,
        score REAL,
        execution_id TEXT,
        error TEXT,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        PRIMARY KEY (study_id, number)
    );";

fn corrupt(store: &Store, what: &str, message: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        path: store.path.clone(),
        message: format!("{what}: {message}"),
    }
}

impl Store {
    pub fn save_study(&self, study: &StudyRecord) -> Result<(), StoreError> {
        let optimization =
            serde_json::to_string(&study.optimization).map_err(|e| corrupt(self, "study", e))?;
        self.reader
            .lock()
            .execute(
                "INSERT OR REPLACE INTO studies (id, workflow_id, optimization, fixed, seed, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    study.id,
                    study.workflow_id,
                    optimization,
                    study.fixed.to_string(),
                    study.seed as i64,
                    unix_ms(study.created_at)
                ],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Inserts or replaces (by study and number) a trial.
    pub fn save_trial(&self, trial: &TrialRecord) -> Result<(), StoreError> {
        self.reader
            .lock()
            .execute(
                "INSERT OR REPLACE INTO trials
                 (study_id, number, state, params, score, execution_id, error, started_at, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    trial.study_id,
                    trial.number,
                    trial.state.as_str(),
                    trial.params.to_string(),
                    trial.score,
                    trial.execution_id,
                    trial.error,
                    unix_ms(trial.started_at),
                    trial.finished_at.map(unix_ms)
                ],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    pub fn study(&self, id: &str) -> Result<Option<StudyRecord>, StoreError> {
        let raw = self
            .reader
            .lock()
            .query_row(
                "SELECT id, workflow_id, optimization, fixed, seed, created_at FROM studies WHERE id = ?1",
                params![id],
                raw_study,
            )
            .optional()
            .map_err(self.sql())?;
        raw.map(|r| self.parse_study(r)).transpose()
    }

    /// Studies, newest first; of one workflow when `workflow_id` is given.
    pub fn studies(&self, workflow_id: Option<&str>) -> Result<Vec<StudyRecord>, StoreError> {
        let raws = {
            let conn = self.reader.lock();
            let mut stmt = conn
                .prepare(
                    "SELECT id, workflow_id, optimization, fixed, seed, created_at FROM studies
                     WHERE ?1 IS NULL OR workflow_id = ?1 ORDER BY created_at DESC, id",
                )
                .map_err(self.sql())?;
            stmt.query_map(params![workflow_id], raw_study)
                .map_err(self.sql())?
                .collect::<Result<Vec<_>, _>>()
                .map_err(self.sql())?
        };
        raws.into_iter().map(|r| self.parse_study(r)).collect()
    }

    /// A study's trials in order.
    pub fn trials(&self, study_id: &str) -> Result<Vec<TrialRecord>, StoreError> {
        type Raw = (
            u32,
            String,
            String,
            Option<f64>,
            Option<String>,
            Option<String>,
            i64,
            Option<i64>,
        );
        let raws: Vec<Raw> = {
            let conn = self.reader.lock();
            let mut stmt = conn
                .prepare(
                    "SELECT number, state, params, score, execution_id, error, started_at, finished_at
                     FROM trials WHERE study_id = ?1 ORDER BY number",
                )
                .map_err(self.sql())?;
            stmt.query_map(params![study_id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())?
        };
        raws.into_iter()
            .map(
                |(number, state, params, score, execution_id, error, started, finished)| {
                    let what = format!("study {study_id} trial {number}");
                    let state = TrialState::parse(&state)
                        .ok_or_else(|| corrupt(self, &what, format!("unknown state `{state}`")))?;
                    Ok(TrialRecord {
                        study_id: study_id.to_string(),
                        number,
                        state,
                        params: serde_json::from_str(&params)
                            .map_err(|e| corrupt(self, &what, e))?,
                        score,
                        execution_id,
                        error,
                        started_at: from_unix_ms(started),
                        finished_at: finished.map(from_unix_ms),
                    })
                },
            )
            .collect()
    }

    fn parse_study(&self, raw: RawStudy) -> Result<StudyRecord, StoreError> {
        let what = format!("study {}", raw.id);
        Ok(StudyRecord {
            optimization: serde_json::from_str(&raw.optimization)
                .map_err(|e| corrupt(self, &what, e))?,
            fixed: serde_json::from_str(&raw.fixed).map_err(|e| corrupt(self, &what, e))?,
            id: raw.id,
            workflow_id: raw.workflow_id,
            seed: raw.seed as u64,
            created_at: from_unix_ms(raw.created_at),
        })
    }
}

struct RawStudy {
    id: String,
    workflow_id: String,
    optimization: String,
    fixed: String,
    seed: i64,
    created_at: i64,
}

fn raw_study(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawStudy> {
    Ok(RawStudy {
        id: r.get(0)?,
        workflow_id: r.get(1)?,
        optimization: r.get(2)?,
        fixed: r.get(3)?,
        seed: r.get(4)?,
        created_at: r.get(5)?,
    })
}
