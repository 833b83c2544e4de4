//! A target (contract §14): instead of the engine's own store, commands go to a real ISVA
//! deployment — the appliance's pdadmin REST API — each as its own request, many in flight.
//! This module owns `target.yaml` ([`config`]), the client and its retries ([`client`]: the
//! [`Appliance`] boundary) and how an answer is read ([`answer`]); `run` drives them.

pub mod answer;
pub mod client;
pub mod config;

pub use answer::{Reading, Verdict};
pub use client::{Appliance, IsvaRest, Retries, Sent, TargetError};
pub use config::{Secret, TargetConfig};
