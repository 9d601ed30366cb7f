//! The payload types of the generated collections: plain `serde` structs, stored as
//! self-describing MessagePack maps, so tools print them without these types.

use serde::{Deserialize, Serialize};

/// `residence` payload: the permanent-residence registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Residence {
    /// Full name.
    pub full_name: String,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// `male` or `female`.
    pub gender: String,
    /// Street address.
    pub address: String,
    /// Province code of residence.
    pub province: u16,
    /// Year registered at this address.
    pub since: u16,
}

/// `tax` payload: a personal income tax registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tax {
    /// Full name.
    pub full_name: String,
    /// Employer or business.
    pub employer: String,
    /// Income bracket 1-7.
    pub bracket: u8,
    /// Year registered.
    pub registered: u16,
}

/// `health_insurance` or `social_insurance` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Insurance {
    /// Full name.
    pub full_name: String,
    /// Registered hospital or paying employer.
    pub provider: String,
    /// Benefit level 1-5.
    pub level: u8,
    /// Last year of validity.
    pub valid_until: u16,
}

/// `vehicle` payload: a vehicle registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vehicle {
    /// Owner's full name.
    pub owner: String,
    /// `motorbike` or `car`.
    pub kind: String,
    /// Make and model.
    pub model: String,
    /// Year of manufacture.
    pub year: u16,
}

/// A payload of any of the generated collections (serialized as the inner struct alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Payload {
    /// `residence`.
    Residence(Residence),
    /// `tax`.
    Tax(Tax),
    /// `health_insurance` or `social_insurance`.
    Insurance(Insurance),
    /// `vehicle`.
    Vehicle(Vehicle),
}
