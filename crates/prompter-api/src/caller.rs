//! Who is calling: the tenant scope and role every handler acts under.
//!
//! With auth off (the default on loopback) every caller is [`Caller::unrestricted`]
//! and a template id alone addresses a template, as in V7. With auth on, the
//! auth middleware resolves the API key and stores a [`Caller`] in the request
//! extensions; handlers take it as an extractor.

use crate::error::ApiError;
use actix_web::{dev::Payload, FromRequest, HttpMessage, HttpRequest};
use prompter_service::Scope;
use std::future::{ready, Ready};

/// What a key may do; ordered: `Read` < `Write` < `Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// GET routes.
    Read,
    /// Also create, ensure-version, run, delete, restore.
    Write,
    /// Everything.
    Admin,
}

impl Role {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?} (read, write, admin)")),
        }
    }
}

/// The caller of the current request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Tenancy every query is restricted to.
    pub scope: Scope,
    /// What the caller may do.
    pub role: Role,
    /// Public prefix of the API key, when authenticated (for rate limiting and logs).
    pub key_prefix: Option<String>,
}

impl Caller {
    /// The caller when auth is off.
    pub fn unrestricted() -> Self {
        Caller {
            scope: Scope::Unrestricted,
            role: Role::Admin,
            key_prefix: None,
        }
    }

    /// Fails with 403 unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::new(
                crate::error::Code::Forbidden,
                format!(
                    "this API key has role {}; {} is required",
                    self.role.as_str(),
                    role.as_str()
                ),
            ))
        }
    }

    /// Fails with 403 `SCOPE_FORBIDDEN` when a body names an org or
    /// workspace outside the caller's scope (the caller's own body: nothing
    /// leaks; rows of other tenants addressed by id are 404 in storage).
    pub fn check_body_scope(
        &self,
        org_id: Option<&str>,
        workspace_id: Option<&str>,
    ) -> Result<(), ApiError> {
        if let Scope::Tenant {
            org_id: o,
            workspace_id: w,
        } = &self.scope
        {
            let org_ok = org_id.is_none_or(|b| b == o);
            let ws_ok = match (w, workspace_id) {
                (Some(w), Some(b)) => w == b,
                _ => true,
            };
            if !org_ok || !ws_ok {
                return Err(ApiError::new(
                    crate::error::Code::ScopeForbidden,
                    "org_id/workspace_id are outside this API key's scope",
                ));
            }
        }
        Ok(())
    }
}

/// `id` lower-case hyphenated when `fold` is set and it is UUID-shaped (any
/// spelling PostgreSQL's `uuid` type accepted: upper case, braces, no
/// hyphens); otherwise unchanged. V7 on PostgreSQL typed caller ids as UUID,
/// so `ABC…` and `abc…` were the same org there.
pub fn fold_uuid_id(fold: bool, id: String) -> String {
    if !fold {
        return id;
    }
    match uuid::Uuid::try_parse(id.trim()) {
        Ok(u) => u.hyphenated().to_string(),
        Err(_) => id,
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let mut caller = req
            .extensions()
            .get::<Caller>()
            .cloned()
            .unwrap_or_else(Caller::unrestricted);
        // Adopted from V7's PostgreSQL: a key's ids match like V7's did.
        if let Some(state) = req.app_data::<actix_web::web::Data<crate::state::AppState>>() {
            if let Scope::Tenant {
                org_id,
                workspace_id,
            } = caller.scope
            {
                caller.scope = Scope::Tenant {
                    org_id: state.fold_id(org_id),
                    workspace_id: state.fold_opt(workspace_id),
                };
            }
        }
        ready(Ok(caller))
    }
}
