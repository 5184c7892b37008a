//! Typed ids: UUIDs the service generates, opaque strings the caller owns.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::DomainError;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered (v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            /// Hyphenated lowercase form.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = DomainError;

            /// Any form `uuid` accepts (hyphenated, simple, braced, urn).
            fn from_str(s: &str) -> Result<Self, DomainError> {
                Uuid::parse_str(s).map(Self).map_err(|_| DomainError::InvalidId {
                    kind: $kind,
                    value: s.to_owned(),
                })
            }
        }
    };
}

uuid_id!(
    /// Id of a prompt template (`prompt_templates.id`).
    TemplateId,
    "template id"
);
uuid_id!(
    /// Id of a provider version row (`prompt_versions.id`).
    VersionId,
    "version id"
);
uuid_id!(
    /// Id of a run result (`prompt_results.id`).
    ResultId,
    "result id"
);

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// Wraps a caller-owned id.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// Caller-owned org id: an opaque string (V7 accepted any string).
    OrgId
);
string_id!(
    /// Caller-owned workspace (brand) id: an opaque string.
    WorkspaceId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_ids_round_trip() {
        let id = TemplateId::new();
        let text = id.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(text.parse::<TemplateId>().unwrap(), id);
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{text}\""));
        let back: TemplateId = serde_json::from_str(&format!("\"{text}\"")).unwrap();
        assert_eq!(back, id);
        let e = "nope".parse::<VersionId>().unwrap_err();
        assert_eq!(e.code(), "invalid_id");
        assert!(e.to_string().contains("version id"));
        let u = Uuid::nil();
        assert_eq!(
            ResultId::from(u).to_string(),
            "00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(Uuid::from(ResultId(u)), u);
        assert_ne!(ResultId::default(), ResultId::default());
    }

    #[test]
    fn string_ids() {
        let org = OrgId::from("acme");
        assert_eq!(org.as_str(), "acme");
        assert_eq!(org.to_string(), "acme");
        assert_eq!(
            serde_json::to_string(&WorkspaceId::new("w 1")).unwrap(),
            "\"w 1\""
        );
        let ws: WorkspaceId = serde_json::from_str("\"中\"").unwrap();
        assert_eq!(ws.as_ref(), "中");
    }
}
