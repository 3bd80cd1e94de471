//! The context repository: what steps learned, kept as tagged items that later steps and
//! later executions can query (the plan's ContextRepository and WorkflowContextAdapter).

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

use super::store::{ContextItem, Store, StoreError};

/// Kind of the item an engine stores for every finished step.
pub const STEP_RESULT_KIND: &str = "step_result";

/// A query over context items: all `tags` must be present.
#[derive(Debug, Clone, Default)]
pub struct ContextQuery {
    pub tags: Vec<String>,
    pub kind: Option<String>,
    pub since: Option<SystemTime>,
    /// At most this many items, newest first (0 means 100).
    pub limit: usize,
}

/// What a tag query asks of step results; `None` when a tag is one step results never carry.
struct StepResultScope<'a> {
    workflow: Option<&'a str>,
    execution: Option<&'a str>,
    step: Option<&'a str>,
}

impl<'a> StepResultScope<'a> {
    fn from_tags(tags: &'a [String]) -> Option<Self> {
        let mut scope = StepResultScope {
            workflow: None,
            execution: None,
            step: None,
        };
        for tag in tags {
            let (slot, value) = if let Some(v) = tag.strip_prefix("workflow:") {
                (&mut scope.workflow, v)
            } else if let Some(v) = tag.strip_prefix("execution:") {
                (&mut scope.execution, v)
            } else if let Some(v) = tag.strip_prefix("step:") {
                (&mut scope.step, v)
            } else {
                return None;
            };
            match slot {
                Some(existing) if *existing != value => return None,
                _ => *slot = Some(value),
            }
        }
        Some(scope)
    }
}

/// Tagged items in the database.
#[derive(Clone)]
pub struct ContextRepository {
    store: Arc<Store>,
}

impl ContextRepository {
    pub fn new(store: Arc<Store>) -> Self {
        ContextRepository { store }
    }

    pub fn store(&self, kind: &str, tags: Vec<String>, payload: Value) -> ContextItem {
        let item = ContextItem {
            id: uuid::Uuid::new_v4().to_string(),
            kind: kind.to_string(),
            tags,
            payload,
            created_at: SystemTime::now(),
        };
        self.store.store_context(item.clone());
        item
    }

    /// Items matching `query`, newest first: stored items and the results of finished steps.
    /// Sees every item stored and every step finished before the call.
    pub fn query(&self, query: &ContextQuery) -> Result<Vec<ContextItem>, StoreError> {
        self.store.flush()?;
        let limit = if query.limit == 0 { 100 } else { query.limit };
        let mut items =
            self.store
                .query_context(&query.tags, query.kind.as_deref(), query.since, limit)?;
        if query.kind.as_deref().is_none_or(|k| k == STEP_RESULT_KIND)
            && let Some(scope) = StepResultScope::from_tags(&query.tags)
        {
            items.extend(self.store.query_step_results(
                scope.workflow,
                scope.execution,
                scope.step,
                query.since,
                limit,
            )?);
            items.sort_by_key(|i| std::cmp::Reverse(i.created_at));
            items.truncate(limit);
        }
        Ok(items)
    }
}

/// The plan's `WorkflowContextAdapter`: scopes storing and querying to one workflow (and,
/// optionally, one execution) by tagging items `workflow:<id>` and `execution:<id>`.
#[derive(Clone)]
pub struct WorkflowContextAdapter {
    repository: ContextRepository,
    workflow_id: String,
    execution_id: Option<String>,
}

impl WorkflowContextAdapter {
    pub fn new(
        repository: ContextRepository,
        workflow_id: &str,
        execution_id: Option<&str>,
    ) -> Self {
        WorkflowContextAdapter {
            repository,
            workflow_id: workflow_id.to_string(),
            execution_id: execution_id.map(str::to_string),
        }
    }

    fn scope_tags(&self) -> Vec<String> {
        let mut tags = vec![workflow_tag(&self.workflow_id)];
        if let Some(e) = &self.execution_id {
            tags.push(execution_tag(e));
        }
        tags
    }

    pub fn store_context(&self, kind: &str, mut tags: Vec<String>, payload: Value) -> ContextItem {
        for tag in self.scope_tags() {
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        self.repository.store(kind, tags, payload)
    }

    /// Items of this workflow (and execution, when scoped to one) matching `query`.
    pub fn get_context(&self, query: &ContextQuery) -> Result<Vec<ContextItem>, StoreError> {
        let mut scoped = query.clone();
        for tag in self.scope_tags() {
            if !scoped.tags.contains(&tag) {
                scoped.tags.push(tag);
            }
        }
        self.repository.query(&scoped)
    }

    /// The same workflow's context, across all its executions.
    pub fn whole_workflow(&self) -> WorkflowContextAdapter {
        WorkflowContextAdapter {
            execution_id: None,
            ..self.clone()
        }
    }
}

pub fn workflow_tag(id: &str) -> String {
    format!("workflow:{id}")
}

pub fn execution_tag(id: &str) -> String {
    format!("execution:{id}")
}

pub fn step_tag(id: &str) -> String {
    format!("step:{id}")
}
