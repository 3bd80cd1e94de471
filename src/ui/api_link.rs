//! The editor's "Serve API" switch: the REST API served from this process on the editor's
//! engine, so that what a program or an LLM saves through it shows up on the canvas.

use crossbeam_channel::Receiver;

use crate::api::{ApiConfig, ServerHandle};
use crate::engine::{Engine, Event};

/// A workflow version stored by someone else while the link was on.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedElsewhere {
    pub workflow_id: String,
    pub version: u32,
    pub created_by: String,
    pub deleted: bool,
}

pub struct ApiLink {
    /// Loopback port to serve on.
    pub port: u16,
    pub error: Option<String>,
    /// Workflows saved through the API while it was on, newest last.
    pub saved: Vec<SavedElsewhere>,
    server: Option<ServerHandle>,
    events: Option<Receiver<Event>>,
}

impl Default for ApiLink {
    fn default() -> Self {
        ApiLink {
            port: 7878,
            error: None,
            saved: Vec::new(),
            server: None,
            events: None,
        }
    }
}

impl ApiLink {
    pub fn is_serving(&self) -> bool {
        self.server.is_some()
    }

    /// Where the API answers, while it is served.
    pub fn url(&self) -> Option<String> {
        self.server
            .as_ref()
            .map(|s| format!("http://{}/api", s.addr))
    }

    /// Serves the API on loopback (a token from `$GRYM_API_TOKEN` is required of clients
    /// when set); paths in requests are confined to the current folder.
    pub fn start(&mut self, engine: &Engine) {
        if self.server.is_some() {
            return;
        }
        let roots = match std::env::current_dir() {
            Ok(dir) => vec![dir],
            Err(e) => {
                self.error = Some(format!("no current folder to confine paths to: {e}"));
                return;
            }
        };
        let config = ApiConfig {
            bind: std::net::SocketAddr::from(([127, 0, 0, 1], self.port)),
            token: std::env::var("GRYM_API_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            roots,
        };
        // Subscribed first, so nothing saved right after the start is missed.
        let events = engine.subscribe();
        match crate::api::spawn(engine.clone(), config) {
            Ok(server) => {
                self.server = Some(server);
                self.events = Some(events);
                self.error = None;
            }
            Err(e) => self.error = Some(format!("{e:#}")),
        }
    }

    /// Stops serving (requests in flight finish first).
    pub fn stop(&mut self) {
        self.events = None;
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }

    /// Workflow versions stored since the last frame.
    pub fn poll(&mut self) -> Vec<SavedElsewhere> {
        let Some(rx) = &self.events else {
            return Vec::new();
        };
        let mut saved = Vec::new();
        while let Ok(event) = rx.try_recv() {
            if let Event::WorkflowSaved {
                workflow_id,
                version,
                created_by,
                deleted,
            } = event
            {
                saved.push(SavedElsewhere {
                    workflow_id,
                    version,
                    created_by,
                    deleted,
                });
            }
        }
        saved
    }
}
