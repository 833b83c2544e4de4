//! The last step of a command that went to the store: what the store did becomes the
//! command's outcome. A store failure is the command's error result; nothing was changed.

use super::{Context, Outcome, fail};
use crate::message as msg;
use crate::store::{Done, StoreError};

/// How a command's store results become its outcome; the names are as written in the
/// command, for the messages.
#[derive(Debug, Clone, Copy)]
pub enum Finish<'a> {
    RefreshAll { user: &'a str, realm: &'a str },
    TerminateAll { user: &'a str, realm: &'a str },
    RefreshSession { id: &'a str, realm: &'a str },
    TerminateSession { id: &'a str, realm: &'a str },
    WebsealRefresh { user: &'a str, server: &'a str },
    WebsealTerminate { user: &'a str, server: &'a str },
    WebsealTerminateSession { id: &'a str, server: &'a str },
}

fn refreshed(n: usize) -> Outcome {
    Outcome::new(&msg::CREDENTIAL_UPDATED, &[&n.to_string()]).sessions(n)
}

fn terminated(n: usize) -> Outcome {
    Outcome::new(&msg::SESSIONS_TERMINATED, &[&n.to_string()]).sessions(n)
}

fn unavailable(e: &StoreError) -> Outcome {
    fail(&msg::STORE_UNAVAILABLE, &[&e.to_string()])
}

impl Context<'_> {
    /// The outcome of a command whose store operations returned `applied` (one per
    /// operation, in order).
    pub fn finish(&self, finish: &Finish<'_>, applied: &[Result<Done, StoreError>]) -> Outcome {
        let mut sessions = 0;
        let mut first = Done::Sessions(0);
        for (i, r) in applied.iter().enumerate() {
            match r {
                Err(e) => return unavailable(e),
                Ok(Done::Sessions(n)) => sessions += n,
                Ok(other) if i == 0 => first = *other,
                Ok(_) => {}
            }
        }
        match (*finish, first) {
            (
                Finish::RefreshSession { id, realm } | Finish::TerminateSession { id, realm },
                Done::NoSession,
            ) => fail(&msg::SESSION_NOT_FOUND, &[id, realm]),
            (Finish::WebsealTerminateSession { id, server }, Done::NoSession) => {
                fail(&msg::SESSION_NOT_ON_SERVER, &[id, server])
            }
            (_, Done::UnknownUser) => {
                fail(&msg::ENTRY_NOT_FOUND, &[]).with_status(super::Status::Error)
            }
            (Finish::RefreshAll { user, realm } | Finish::TerminateAll { user, realm }, _)
                if sessions == 0 =>
            {
                fail(&msg::NO_LIVE_SESSIONS, &[user, realm])
            }
            (
                Finish::WebsealRefresh { user, server } | Finish::WebsealTerminate { user, server },
                _,
            ) if sessions == 0 => fail(&msg::NO_SESSIONS_ON_SERVER, &[user, server]),
            (
                Finish::RefreshAll { .. }
                | Finish::RefreshSession { .. }
                | Finish::WebsealRefresh { .. },
                _,
            ) => refreshed(sessions),
            _ => terminated(sessions),
        }
    }
}
